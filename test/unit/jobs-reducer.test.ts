import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { JobTracker, neededNodes, parseQueueItem, redactExtra, topologicalOrder } from '../../src/state/jobs.js';

const fx = (name: string) => readFileSync(new URL(`../fixtures/comfyui/${name}`, import.meta.url), 'utf8');
const frames = (name: string) => fx(name).trim().split('\n').map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> });
const queue = JSON.parse(fx('queue-running.json')) as { queue_running: unknown[] };

function tracker() {
  return new JobTracker({ jobIdKey: 'job_id', historyLimit: 3 });
}

/** Feeds frames the way the collector does. */
function feed(t: JobTracker, seq: Array<{ type: string; data: Record<string, unknown> }>, now = 1000) {
  for (const f of seq) {
    if (f.type === 'progress') t.applyProgress(now, f.data);
    else if (f.type === 'progress_state') t.applyProgressState(now, f.data);
    else if (f.type !== 'status') t.applyFrame(now, f.type, f.data);
  }
}

describe('job reconstruction from execution frames (the tap, or the submitter view)', () => {
  it('follows a prompt with a cached loader to success, every node settled', () => {
    const t = tracker();
    t.applyQueue(900, queue.queue_running.map(parseQueueItem).map((i) => i!), []);
    feed(t, frames('frames-success-cached.jsonl'));
    const s = t.snapshot(t.get('job_1')!);
    expect(s.status).toBe('success');
    expect(s.nodes.map((n) => [n.node_id, n.status])).toEqual([
      ['4', 'cached'],
      ['3', 'completed'],
      ['9', 'completed'],
    ]);
    expect(s.nodes_completed).toBe(3);
    expect(s.progress).toBe(100);
    expect(s.started_at).toBe(1760270000123);
    expect(s.finished_at).toBe(1760270003333);
    expect(s.outputs).toEqual([{ node_id: '9', ui: { images: [{ filename: 'ComfyUI_00001_.png', subfolder: '', type: 'output' }] }, cached: false }]);
  });

  it('follows an OOM to error with the exception, the node, and the trailing newline trimmed', () => {
    const t = tracker();
    t.applyQueue(900, queue.queue_running.map(parseQueueItem).map((i) => i!), []);
    feed(t, frames('frames-oom.jsonl'));
    const s = t.snapshot(t.get('P')!);
    expect(s.status).toBe('error');
    expect(s.error).toMatchObject({ node_id: '3', class_type: 'KSampler', exception_type: 'torch.OutOfMemoryError' });
    expect(s.error!.exception_message.endsWith('large number.')).toBe(true);
    expect(s.error!.traceback).toHaveLength(1);
    expect(s.nodes.map((n) => [n.node_id, n.status])).toEqual([
      ['4', 'cached'],
      ['3', 'error'],
      ['9', 'skipped'],
    ]);
  });

  it('reads steps from progress frames for the running node', () => {
    const t = tracker();
    const seq = frames('frames-success-cached.jsonl');
    feed(t, seq.slice(0, 10)); // through the second step
    const ks = t.get('P')!.nodes.get('3')!;
    expect(ks).toMatchObject({ status: 'running', steps: 2, total: 4 });
  });

  it('never lets progress go down', () => {
    const t = tracker();
    const seq = frames('frames-success-cached.jsonl');
    const seen: number[] = [];
    for (const f of seq) {
      feed(t, [f]);
      seen.push(t.get('P')?.progress ?? 0);
    }
    expect(seen.every((v, i) => i === 0 || v >= seen[i - 1]!)).toBe(true);
    expect(seen.at(-1)).toBe(100);
  });
});

describe('job reconstruction from /queue and /history (another client\'s prompt)', () => {
  it('takes ids, trace and graph from the queue item', () => {
    const t = tracker();
    t.applyQueue(1000, queue.queue_running.map((i) => parseQueueItem(i)!), []);
    const j = t.snapshot(t.get('job_1')!);
    expect(j).toMatchObject({ prompt_id: 'P', job_id: 'job_1', client_id: 'C', status: 'running', number: 7, nodes_total: 3 });
    expect(j.nodes.map((n) => n.class_type)).toEqual(['CheckpointLoaderSimple', 'KSampler', 'SaveImage']);
  });

  it('asks for history when the prompt leaves the queue, then takes the outcome from it', () => {
    const t = tracker();
    t.applyQueue(1000, queue.queue_running.map((i) => parseQueueItem(i)!), []);
    expect(t.applyQueue(2000, [], [])).toEqual(['P']);
    t.applyHistory(2100, 'P', JSON.parse(fx('history-success-cached.json')).P);
    const s = t.snapshot(t.get('P')!);
    expect(s.status).toBe('success');
    expect(s.nodes.map((n) => n.status)).toEqual(['cached', 'completed', 'completed']);
    expect(s.nodes_completed).toBe(s.nodes_total);
  });

  it('takes an error and its node from history', () => {
    const t = tracker();
    t.applyHistory(2100, 'P', JSON.parse(fx('history-oom.json')).P);
    const s = t.snapshot(t.get('job_1')!);
    expect(s.status).toBe('error');
    expect(s.error).toMatchObject({ node_id: '3', exception_type: 'torch.OutOfMemoryError' });
  });

  it('makes a job lost after it is missing from queue and history twice', () => {
    const t = tracker();
    t.applyQueue(1000, queue.queue_running.map((i) => parseQueueItem(i)!), []);
    t.applyMissing(2000, 'P', 'gone');
    expect(t.get('P')!.status).toBe('running');
    t.applyMissing(3000, 'P', 'gone');
    expect(t.get('P')).toMatchObject({ status: 'lost', lost_reason: 'gone' });
  });

  it('sorts pending prompts by number, not in heap order', () => {
    const t = tracker();
    const item = (n: number, id: string) => parseQueueItem([n, id, {}, {}, []])!;
    t.applyQueue(1000, [], [item(5, 'e'), item(2, 'b'), item(3, 'c')]);
    expect(t.queueOrder().pending).toEqual(['b', 'c', 'e']);
  });

  it('remembers at most historyLimit finished jobs', () => {
    const t = tracker();
    for (let i = 0; i < 10; i++) t.applyHistory(1000 + i, `p${i}`, JSON.parse(fx('history-success-cached.json')).P);
    expect(t.all().map((j) => j.prompt_id)).toEqual(['p7', 'p8', 'p9']);
  });

  it('tells finish listeners once per job, and not for a silent import', () => {
    const t = tracker();
    const done: string[] = [];
    t.onFinish((j) => done.push(j.prompt_id));
    const h = JSON.parse(fx('history-success-cached.json')).P;
    t.applyHistory(1, 'old', h, { silent: true });
    t.applyHistory(2, 'new', h);
    t.applyHistory(3, 'new', h);
    expect(done).toEqual(['new']);
  });

  it('ignores garbage without throwing', () => {
    const t = tracker();
    expect(parseQueueItem('nope')).toBeNull();
    expect(parseQueueItem([1])).toBeNull();
    t.applyHistory(1, 'x', 'not an object');
    t.applyProgress(1, { value: 'a' });
    t.applyProgressState(1, { prompt_id: 'x', nodes: 'no' });
    t.applyFrame(1, 'execution_error', {});
    expect(t.get('x')).toBeUndefined();
  });
});

describe('helpers', () => {
  it('strips secrets and the UI workflow blob from extra_data', () => {
    expect(redactExtra({ client_id: 'c', api_key_comfy_org: 'k', auth_token_comfy_org: 't', extra_pnginfo: { workflow: {} }, job_id: 'j' })).toEqual({
      client_id: 'c',
      api_key_comfy_org: '[REDACTED]',
      auth_token_comfy_org: '[REDACTED]',
      extra_pnginfo: '[omitted]',
      job_id: 'j',
    });
  });

  it('orders nodes after their inputs', () => {
    const g = { '9': { inputs: { images: ['8', 0] } }, '8': { inputs: { samples: ['3', 0] } }, '3': { inputs: { model: ['4', 0] } }, '4': { inputs: {} } };
    expect(topologicalOrder(g)).toEqual(['4', '3', '8', '9']);
  });

  it('knows which nodes feed the outputs', () => {
    const g = { '1': { inputs: {} }, '2': { inputs: { x: ['1', 0] } }, '3': { inputs: {} } };
    expect([...neededNodes(g, ['2'])!].sort()).toEqual(['1', '2']);
  });
});
