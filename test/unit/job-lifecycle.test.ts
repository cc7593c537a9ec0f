/**
 * The job tracker's bookkeeping around a job's life (state/jobs.ts): which job runs, what the
 * queue looks like, what happens when ComfyUI goes away, what the log says about the running
 * job, and what is forgotten.
 */
import { describe, expect, it } from 'vitest';
import { JobTracker } from '../../src/state/jobs.js';
import { decodeQueueItem } from '../../src/sources/comfy-events.js';

const SAMPLER_GRAPH = {
  '4': { class_type: 'CheckpointLoaderSimple', inputs: {} },
  '3': { class_type: 'KSampler', inputs: { model: ['4', 0], steps: 20 } },
  '9': { class_type: 'SaveImage', inputs: { images: ['3', 0] } },
};

const item = (n: number, promptId: string, jobId?: string, graph: Record<string, unknown> = SAMPLER_GRAPH) =>
  decodeQueueItem([n, promptId, graph, jobId ? { job_id: jobId } : {}, ['9']])!;

const tracker = (historyLimit = 10) => new JobTracker({ jobIdKey: 'job_id', historyLimit });

describe('the queue', () => {
  it('lists running and pending prompts in execution order', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], [item(3, 'C'), item(2, 'B')]);
    expect(t.queueOrder()).toEqual({ running: ['A'], pending: ['B', 'C'] });
  });

  it('marks a running prompt started when /queue first shows it running, on podscope’s clock', () => {
    const t = tracker();
    t.applyQueue(1000, [], [item(1, 'A')]);
    expect(t.get('A')).toMatchObject({ status: 'queued', started_at: null });
    t.applyQueue(2000, [item(1, 'A')], []);
    expect(t.get('A')).toMatchObject({ status: 'running', started_at: 2000, started_timing: 'observed' });
  });

  it('names the prompts that left the queue without an outcome, for the caller to ask /history', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], [item(2, 'B')]);
    expect(t.applyQueue(2000, [item(2, 'B')], [])).toEqual(['A']);
  });

  it('shows a job the tap says runs before /queue does, so every answer names the same job', () => {
    const t = tracker();
    t.applyQueue(1000, [], [item(1, 'A')]);
    t.apply(1500, { type: 'execution_start', prompt_id: 'A', ts: 1500 });
    expect(t.queueOrder()).toEqual({ running: ['A'], pending: [] });
  });

  it('refreshes the running job’s sign of life when the queue changes, not when it stays the same', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.applyQueue(5000, [item(1, 'A')], []);
    expect(t.get('A')!.last_activity).toBe(1000);
    t.applyQueue(6000, [item(1, 'A')], [item(2, 'B')]);
    expect(t.get('A')!.last_activity).toBe(6000);
  });
});

describe('finding a job', () => {
  it('by the platform’s job id or by ComfyUI’s prompt id', () => {
    const t = tracker();
    t.applyQueue(1000, [], [item(1, 'P1', 'job-1')]);
    expect(t.get('job-1')?.prompt_id).toBe('P1');
    expect(t.get('P1')?.job_id).toBe('job-1');
    expect(t.get('nope')).toBeUndefined();
  });

  it('knows whether a prompt has its outcome', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    expect(t.isFinished('A')).toBe(false);
    t.apply(2000, { type: 'execution_success', prompt_id: 'A', ts: 2000 });
    expect(t.isFinished('A')).toBe(true);
    expect(t.isFinished('unknown')).toBe(false);
  });

  it('gives the running job as the latest, else the one that started or finished last', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], [item(2, 'B')]);
    expect(t.latest()?.prompt_id).toBe('A');
    t.apply(2000, { type: 'execution_success', prompt_id: 'A', ts: 2000 });
    t.applyQueue(2100, [], [item(2, 'B')]);
    expect(t.running()).toBeUndefined();
    expect(t.latest()?.prompt_id).toBe('A');
  });

  it('lists the unfinished jobs', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], [item(2, 'B')]);
    t.apply(2000, { type: 'execution_success', prompt_id: 'A', ts: 2000 });
    expect(t.unfinished().map((j) => j.prompt_id)).toEqual(['B']);
  });
});

describe('when ComfyUI goes away', () => {
  it('loses every unfinished job with the reason, and empties the queue', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], [item(2, 'B')]);
    const lost = t.loseUnfinished(3000, 'ComfyUI restarted (its queue was emptied)');
    expect(lost.map((j) => j.prompt_id).sort()).toEqual(['A', 'B']);
    expect(t.get('A')).toMatchObject({ status: 'lost', lost_reason: 'ComfyUI restarted (its queue was emptied)', finished_at: 3000 });
    expect(t.queueOrder()).toEqual({ running: [], pending: [] });
  });

  it('marks the node that was running interrupted and the rest skipped', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.apply(1100, { type: 'executing', prompt_id: 'A', node: '3' });
    t.loseUnfinished(3000, 'gone');
    const status = (id: string) => t.get('A')!.nodes.get(id)!.status;
    expect([status('3'), status('9')]).toEqual(['interrupted', 'skipped']);
  });

  it('leaves finished jobs as they were', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.apply(2000, { type: 'execution_success', prompt_id: 'A', ts: 2000 });
    expect(t.loseUnfinished(3000, 'gone')).toEqual([]);
    expect(t.get('A')!.status).toBe('success');
  });
});

describe('/history bookkeeping', () => {
  it('names the finished jobs whose history has not been read, newest first, never lost ones', () => {
    const t = tracker();
    for (const id of ['A', 'B', 'C']) {
      t.applyQueue(1000, [item(1, id)], []);
      t.apply(2000, { type: 'execution_success', prompt_id: id, ts: 2000 });
    }
    t.applyQueue(3000, [item(4, 'D')], []);
    t.applyMissing(3000, 'D', 'gone', { atOnce: true });
    expect(t.withoutHistory(10)).toEqual(['C', 'B', 'A']);
    expect(t.withoutHistory(2)).toEqual(['C', 'B']);
  });

  it('stops asking for a history ComfyUI no longer has', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.apply(2000, { type: 'execution_success', prompt_id: 'A', ts: 2000 });
    t.historyUnavailable('A');
    expect(t.withoutHistory(10)).toEqual([]);
  });

  it('needs two misses in a row to call a job lost', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.applyMissing(2000, 'A', 'not in queue or history');
    expect(t.get('A')!.status).toBe('running');
    t.applyMissing(3000, 'A', 'not in queue or history');
    expect(t.get('A')).toMatchObject({ status: 'lost', lost_reason: 'not in queue or history' });
  });

  it('starts counting misses again when the prompt shows up in the queue', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.applyMissing(2000, 'A', 'x');
    t.applyQueue(2500, [item(1, 'A')], []);
    t.applyMissing(3000, 'A', 'x');
    expect(t.get('A')!.status).toBe('running');
  });
});

describe('the log of the running job', () => {
  it('is a sign of life', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.applyLogActivity(4000);
    expect(t.get('A')!.last_activity).toBe(4000);
  });

  it('changes nothing while no job runs', () => {
    const t = tracker();
    t.applyQueue(1000, [], [item(1, 'A')]);
    t.applyLogActivity(4000, { value: 1, total: 20 });
    expect(t.get('A')).toMatchObject({ status: 'queued', last_activity: 1000 });
  });

  it('gives a tqdm step to the running node that owns the bar', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.apply(1100, { type: 'executing', prompt_id: 'A', node: '3' });
    t.applyLogActivity(1200, { value: 5, total: 20 });
    expect(t.get('A')!.nodes.get('3')).toMatchObject({ status: 'running', steps: 5, total: 20 });
    expect(t.get('A')!.source.has('logs')).toBe(true);
  });

  it('starts the sampler that plans that many steps when no frame said which node runs', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.applyLogActivity(1200, { value: 1, total: 20 });
    expect(t.get('A')!.nodes.get('3')).toMatchObject({ status: 'running', steps: 1, total: 20, started_at: 1200 });
  });

  it('says nothing about any node when no pending node can own the bar', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A', undefined, { '9': { class_type: 'SaveImage', inputs: {} } })], []);
    t.applyLogActivity(1200, { value: 1, total: 20 });
    expect(t.get('A')!.nodes.get('9')!.status).toBe('pending');
  });
});

describe('errors found later', () => {
  it('are added to the job’s error', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.apply(1100, { type: 'execution_error', prompt_id: 'A', ts: 1100, executed: [], blocker: false, error: { node_id: '3', node_type: 'KSampler', exception_type: 'torch.OutOfMemoryError', exception_message: 'CUDA out of memory', traceback: [] } });
    t.annotateError('A', { oom: true });
    expect(t.get('A')!.error).toMatchObject({ exception_type: 'torch.OutOfMemoryError', oom: true });
  });

  it('make a minimal error, naming the node that ran, when ComfyUI gave none', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.apply(1100, { type: 'executing', prompt_id: 'A', node: '3' });
    t.annotateError('A', { oom: true });
    expect(t.get('A')!.error).toEqual({ node_id: '3', class_type: 'KSampler', exception_type: 'unknown', exception_message: '', traceback: [], oom: true });
  });

  it('are dropped for a job podscope does not know', () => {
    const t = tracker();
    expect(() => t.annotateError('nope', { oom: true })).not.toThrow();
    expect(t.size).toBe(0);
  });
});

describe('what is forgotten', () => {
  it('is the oldest finished job, with its job id', () => {
    const t = tracker(2);
    for (const [n, id] of [[1, 'A'], [2, 'B'], [3, 'C']] as const) {
      t.applyQueue(n * 1000, [item(n, id, `job-${id}`)], []);
      t.apply(n * 1000 + 500, { type: 'execution_success', prompt_id: id, ts: n * 1000 + 500 });
    }
    expect(t.all().map((j) => j.prompt_id)).toEqual(['B', 'C']);
    expect(t.get('job-A')).toBeUndefined();
  });

  it('is never an unfinished job, however many there are', () => {
    const t = tracker(1);
    t.applyQueue(1000, [item(1, 'A')], [item(2, 'B'), item(3, 'C')]);
    expect(t.size).toBe(3);
  });

  it('keeps a job id pointing at the newest prompt that carries it', () => {
    const t = tracker(1);
    t.applyQueue(1000, [item(1, 'P1', 'job-x')], []);
    t.apply(1500, { type: 'execution_error', prompt_id: 'P1', ts: 1500, executed: [], blocker: false, error: { node_id: null, node_type: null, exception_type: null, exception_message: 'x', traceback: [] } });
    t.applyQueue(2000, [item(2, 'P2', 'job-x')], []);
    t.apply(2500, { type: 'execution_success', prompt_id: 'P2', ts: 2500 });
    expect(t.get('job-x')?.prompt_id).toBe('P2');
  });
});

describe('a snapshot', () => {
  it('counts the needed nodes and those done, in graph order', () => {
    const t = tracker();
    t.applyQueue(1000, [item(1, 'A')], []);
    t.apply(1100, { type: 'execution_cached', prompt_id: 'A', nodes: ['4'], ts: 1100 });
    const s = t.snapshot(t.get('A')!);
    expect(s.nodes.map((n) => n.node_id)).toEqual(['4', '3', '9']);
    expect([s.nodes_total, s.nodes_completed]).toEqual([3, 1]);
    expect(s.source).toEqual(expect.arrayContaining(['queue']));
  });
});
