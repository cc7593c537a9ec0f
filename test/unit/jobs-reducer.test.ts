import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { JobTracker, neededNodes, redactExtra, rejectionReasons, topologicalOrder, type QueueItem } from '../../src/state/jobs.js';
import { decodeFrame, decodeHistoryEntry, decodeQueueItem as parseQueueItem, type ComfyEvent } from '../../src/sources/comfy-events.js';

const fx = (name: string) => readFileSync(new URL(`../fixtures/comfyui/${name}`, import.meta.url), 'utf8');
const frames = (name: string) => fx(name).trim().split('\n').map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> });
const queue = JSON.parse(fx('queue-running.json')) as { queue_running: unknown[] };

function tracker() {
  return new JobTracker({ jobIdKey: 'job_id', historyLimit: 3 });
}

/** Feeds frames through the real decoder, as the collector does. */
function feed(t: JobTracker, seq: Array<{ type: string; data: Record<string, unknown> }>, now = 1000) {
  for (const f of seq) {
    const e = decodeFrame(f.type, f.data);
    if (e) t.apply(now, e);
  }
}

const history = (id: string, entry: unknown) => decodeHistoryEntry(id, entry)!;

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
    t.applyHistory(2100, history('P', JSON.parse(fx('history-success-cached.json')).P));
    const s = t.snapshot(t.get('P')!);
    expect(s.status).toBe('success');
    expect(s.nodes.map((n) => n.status)).toEqual(['cached', 'completed', 'completed']);
    expect(s.nodes_completed).toBe(s.nodes_total);
  });

  it('takes an error and its node from history', () => {
    const t = tracker();
    t.applyHistory(2100, history('P', JSON.parse(fx('history-oom.json')).P));
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
    const item = (n: number, id: string): QueueItem => parseQueueItem([n, id, {}, {}, []])!;
    t.applyQueue(1000, [], [item(5, 'e'), item(2, 'b'), item(3, 'c')]);
    expect(t.queueOrder().pending).toEqual(['b', 'c', 'e']);
  });

  it('remembers at most historyLimit finished jobs', () => {
    const t = tracker();
    for (let i = 0; i < 10; i++) t.applyHistory(1000 + i, history(`p${i}`, JSON.parse(fx('history-success-cached.json')).P));
    expect(t.all().map((j) => j.prompt_id)).toEqual(['p7', 'p8', 'p9']);
  });

  it('counts the finished jobs it remembers apart from those still queued or running', () => {
    const t = tracker();
    for (let i = 0; i < 5; i++) t.applyHistory(1000 + i, history(`p${i}`, JSON.parse(fx('history-success-cached.json')).P));
    const queued = (n: number, id: string): QueueItem => parseQueueItem([n, id, {}, {}, []])!;
    t.applyQueue(2000, [queued(6, 'run')], [queued(7, 'wait')]);
    expect(t.size).toBe(5);
    expect(t.rememberedCount).toBe(3);
  });

  it('hands each job to the finish pipeline once, and not for a silent import', () => {
    const t = tracker();
    const done: string[] = [];
    t.finishWith((j) => done.push(j.prompt_id));
    const h = JSON.parse(fx('history-success-cached.json')).P;
    t.applyHistory(1, history('old', h), { silent: true });
    t.applyHistory(2, history('new', h));
    t.applyHistory(3, history('new', h));
    expect(done).toEqual(['new']);
  });

  it('ignores garbage without throwing', () => {
    const t = tracker();
    expect(parseQueueItem('nope')).toBeNull();
    expect(parseQueueItem([1])).toBeNull();
    expect(decodeHistoryEntry('x', 'not an object')).toBeNull();
    expect(decodeFrame('progress', { value: 'a' })).toBeNull();
    expect(decodeFrame('execution_error', {})).toBeNull();
    feed(t, [{ type: 'progress_state', data: { prompt_id: 'x', nodes: 'no' } }]);
    expect(t.get('x')!.nodes.size).toBe(0);
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

describe('the job model: what is known, what is not', () => {
  const graph = {
    '1': { class_type: 'EmptyImage', inputs: {} },
    '2': { class_type: 'Loader', inputs: { image: ['1', 0] } },
    '3': { class_type: 'KSampler', inputs: { image: ['2', 0], steps: 20 } },
    '4': { class_type: 'SaveImage', inputs: { images: ['3', 0] } },
  };
  const item = (id: string, jobId: string, number = 1): QueueItem => parseQueueItem([number, id, graph, { job_id: jobId, client_id: 'w' }, ['4']])!;
  const ev = (e: ComfyEvent) => e;

  it('keeps progress unknown (null) until the graph is known', () => {
    const t = tracker();
    t.apply(1000, ev({ type: 'progress', prompt_id: 'P', node: '3', value: 15, max: 60 }));
    expect(t.get('P')!.progress).toBeNull();
    t.applyQueue(1010, [item('P', 'J')], []);
    expect(t.get('P')!.progress).not.toBeNull();
    expect(t.get('P')!.progress!).toBeLessThan(95);
  });

  it("weighs nodes by the steps they plan, so a sampler's steps move progress most", () => {
    const t = tracker();
    t.applyQueue(1000, [item('P', 'J')], []);
    t.apply(1001, ev({ type: 'progress', prompt_id: 'P', node: '3', value: 10, max: 20 }));
    // 1 + 1 done (inputs of the running sampler), 10 of 20 steps, the saver to go: 12 of 23.
    expect(t.get('P')!.progress).toBe(52.1);
  });

  it('stays below 95 while the job runs, whatever is done, and reads 100 on success', () => {
    const t = tracker();
    t.applyQueue(1000, [item('P', 'J')], []);
    t.apply(1001, ev({ type: 'progress', prompt_id: 'P', node: '3', value: 20, max: 20 }));
    t.apply(1002, ev({ type: 'executing', prompt_id: 'P', node: '4' }));
    expect(t.get('P')!.progress).toBe(94);
    t.apply(1003, ev({ type: 'execution_success', prompt_id: 'P', ts: 1003 }));
    expect(t.get('P')!.progress).toBe(100);
  });

  it('shows no job id until the prompt\u2019s extra_data is read, then the platform\u2019s', () => {
    const t = tracker();
    t.apply(1000, ev({ type: 'progress', prompt_id: 'P', node: '3', value: 1, max: 20 }));
    expect(t.get('P')!.identity_known).toBe(false);
    t.applyQueue(1010, [item('P', 'J')], []);
    expect(t.get('J')!.prompt_id).toBe('P');
    expect(t.get('P')!.identity_known).toBe(true);
  });

  it('gives a retried job id to the newest prompt, which names the one it replaced', () => {
    const t = tracker();
    t.applyQueue(1000, [item('old', 'J', 1)], []);
    t.apply(1100, ev({ type: 'execution_success', prompt_id: 'old', ts: 1100 }));
    t.applyQueue(1200, [], [item('new', 'J', 2)]);
    expect(t.get('J')!.prompt_id).toBe('new');
    expect(t.get('J')!.retry_of).toBe('old');
    expect(t.get('old')!.status).toBe('success');
  });

  it('leaves the times of a node known to be done only by inference null', () => {
    const t = tracker();
    t.applyQueue(1000, [item('P', 'J')], []);
    t.apply(2000, ev({ type: 'progress', prompt_id: 'P', node: '3', value: 1, max: 20 }));
    const loader = t.get('P')!.nodes.get('2')!;
    expect(loader).toMatchObject({ status: 'completed', started_at: null, finished_at: null, timing: null });
    const sampler = t.get('P')!.nodes.get('3')!;
    expect(sampler).toMatchObject({ status: 'running', started_at: 2000, timing: 'observed' });
  });

  it('takes node times from the tap on ComfyUI\u2019s clock, with peak VRAM when reported', () => {
    const t = tracker();
    t.apply(5000, ev({ type: 'prompt_start', prompt_id: 'P', extra: { job_id: 'J' }, graph, outputs: ['4'], t: 1000 }));
    t.apply(5001, ev({ type: 'node_start', prompt_id: 'P', node_id: '2', class_type: 'Loader', t: 1100 }));
    t.apply(5002, ev({ type: 'node_end', prompt_id: 'P', node_id: '2', class_type: 'Loader', t: 1600, outcome: 'success', peak_vram_bytes: 2048 }));
    const loader = t.get('J')!.nodes.get('2')!;
    expect(loader).toMatchObject({ status: 'completed', started_at: 1100, finished_at: 1600, timing: 'comfyui', peak_vram_bytes: 2048 });
    expect(t.get('J')!).toMatchObject({ started_at: 1000, started_timing: 'comfyui' });
  });

  it('marks a node that started and never finished interrupted, and nodes that never ran skipped', () => {
    const t = tracker();
    t.applyQueue(1000, [item('P', 'J')], []);
    t.apply(2000, ev({ type: 'progress', prompt_id: 'P', node: '3', value: 5, max: 20 }));
    t.loseUnfinished(3000, 'ComfyUI stopped');
    const s = t.snapshot(t.get('J')!);
    expect(s.nodes.map((n) => [n.node_id, n.status])).toEqual([['1', 'completed'], ['2', 'completed'], ['3', 'interrupted'], ['4', 'skipped']]);
    expect(s.nodes[2]!.steps).toBe(5);
  });

  it('lets ComfyUI\u2019s record turn an inferred loss into the real outcome, telling the finish pipeline it is a refinement', () => {
    const t = tracker();
    const calls: Array<[string, boolean]> = [];
    t.finishWith((j, refined) => calls.push([j.status, refined]));
    t.applyQueue(1000, [item('P', 'J')], []);
    t.loseUnfinished(2000, 'ComfyUI stopped');
    t.applyHistory(3000, history('P', { prompt: [1, 'P', graph, { job_id: 'J' }, ['4']], outputs: {}, status: { status_str: 'success', completed: true, messages: [['execution_success', { timestamp: 1900 }]] } }));
    expect(t.get('J')!.status).toBe('success');
    expect(calls).toEqual([['lost', false], ['success', true]]);
  });

  it('never shows a queued time after the start', () => {
    const t = tracker();
    t.apply(1000, ev({ type: 'prompt_queued', prompt_id: 'P', extra: { job_id: 'J' }, t: 900 }));
    t.apply(1001, ev({ type: 'execution_start', prompt_id: 'P', ts: 950 }));
    expect(t.get('J')).toMatchObject({ queued_at: 900, started_at: 950 });
    const other = tracker();
    other.applyQueue(5000, [item('Q', 'K')], []);
    expect(other.get('K')!.queued_at).toBeNull(); // first seen already running: when it was queued is unknown
  });

  it('turns a rejection the tap saw into a failed job with ComfyUI\u2019s reasons as sentences', () => {
    const t = tracker();
    const nodeErrors = { '3': { class_type: 'KSampler', dependent_outputs: ['4'], errors: [{ type: 'value_smaller_than_min', message: 'Value 0 smaller than min of 1', details: 'steps', extra_info: {} }] } };
    t.apply(1000, ev({ type: 'prompt_rejected', prompt_id: 'R', extra: { job_id: 'J' }, t: 990, error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation' }, node_errors: nodeErrors }));
    const j = t.get('J')!;
    expect(j.status).toBe('error');
    expect(j.error).toMatchObject({ exception_type: 'PromptRejected', node_id: '3', class_type: 'KSampler', exception_message: 'KSampler 3: Value 0 smaller than min of 1: steps' });
    expect(rejectionReasons({ type: 'no_prompt', message: 'No prompt provided' }, {})).toEqual(['No prompt provided']);
  });

  it("gives a tqdm bar's steps to the pending node that plans that many steps", () => {
    const t = tracker();
    t.applyQueue(1000, [item('P', 'J')], []);
    t.applyLogActivity(1100, { value: 7, total: 20 });
    expect(t.get('J')!.nodes.get('3')).toMatchObject({ status: 'running', steps: 7, total: 20 });
  });
});

describe('tqdm lines that arrive late', () => {
  it("never give a finished sampler's steps to the node that started after it", () => {
    const t = new JobTracker({ jobIdKey: 'job_id', historyLimit: 3 });
    const graph = {
      '1': { class_type: 'EmptyImage', inputs: {} },
      '3': { class_type: 'KSampler', inputs: { image: ['1', 0], steps: 6 } },
      '4': { class_type: 'SaveImage', inputs: { images: ['3', 0] } },
    };
    t.applyQueue(1000, [parseQueueItem([1, 'P', graph, { job_id: 'J' }, ['4']])!], []);
    t.apply(1100, { type: 'node_start', prompt_id: 'P', node_id: '3', class_type: 'KSampler', t: 1100 });
    t.apply(1200, { type: 'node_end', prompt_id: 'P', node_id: '3', class_type: 'KSampler', t: 1200, outcome: 'success', peak_vram_bytes: null });
    t.apply(1210, { type: 'progress_state', prompt_id: 'P', nodes: [{ node_id: '4', value: 0, max: 1, state: 'running', parent_node_id: null }] });
    t.applyLogActivity(1220, { value: 6, total: 6 }); // the sampler's last bar, from the log file
    expect(t.get('J')!.nodes.get('4')).toMatchObject({ status: 'running', steps: 0, total: 1 });
  });
});

describe('the size of what is remembered', () => {
  it('grows with the jobs kept, and shrinks when old ones are forgotten', () => {
    const t = new JobTracker({ jobIdKey: 'job_id', historyLimit: 2 });
    const h = JSON.parse(fx('history-success-cached.json')).P;
    expect(t.approxBytes()).toBe(0);
    t.applyHistory(1, history('a', h));
    const one = t.approxBytes();
    expect(one).toBeGreaterThan(1000);
    t.applyHistory(2, history('b', h));
    expect(t.approxBytes()).toBeGreaterThan(one);
    const two = t.approxBytes();
    t.applyHistory(3, history('c', h)); // the oldest is forgotten
    expect(t.approxBytes()).toBe(two);
  });

  it("counts what forensics adds to a finished job's error", () => {
    const t = new JobTracker({ jobIdKey: 'job_id', historyLimit: 2 });
    t.applyHistory(1, history('P', JSON.parse(fx('history-oom.json')).P));
    const before = t.approxBytes();
    t.annotateError('P', { forensics: { last_log_lines: ['x'.repeat(1000)] } });
    expect(t.approxBytes()).toBeGreaterThan(before + 1000);
  });
});

describe('whose clock a node’s times are on', () => {
  const prompt = 'p-clock';
  const tap = (type: string, data: Record<string, unknown>) => decodeFrame(type, { prompt_id: prompt, ...data })!;
  const state = (node: string, s: 'running' | 'finished') => decodeFrame('progress_state', { prompt_id: prompt, nodes: { [node]: { value: 1, max: 1, state: s, node_id: node, prompt_id: prompt, display_node_id: node, parent_node_id: null, real_node_id: node } } })!;

  function started() {
    const t = tracker();
    t.apply(1000, tap('podscope.prompt_start', { extra: { job_id: 'job-clock' }, graph: { '1': { class_type: 'EmptyImage', inputs: {} } }, outputs: ['1'], t: 990 }));
    t.apply(1001, tap('podscope.node_start', { node_id: '1', display_node_id: '1', class_type: 'EmptyImage', t: 995 }));
    return t;
  }

  it('takes ComfyUI’s end from the tap even when a frame said the node finished first (as the real ComfyUI 0.3.64 sends them)', () => {
    const t = started();
    t.apply(1010, state('1', 'finished'));
    expect(t.get(prompt)!.nodes.get('1')).toMatchObject({ finished_at: 1010, timing: 'observed', end_timing: 'observed' });
    t.apply(1011, tap('podscope.node_end', { node_id: '1', display_node_id: '1', class_type: 'EmptyImage', t: 1002, outcome: 'success' }));
    expect(t.get(prompt)!.nodes.get('1')).toMatchObject({ started_at: 995, finished_at: 1002, timing: 'comfyui', start_timing: 'comfyui', end_timing: 'comfyui' });
  });

  it('keeps ComfyUI’s end over a frame that comes after it', () => {
    const t = started();
    t.apply(1011, tap('podscope.node_end', { node_id: '1', display_node_id: '1', class_type: 'EmptyImage', t: 1002, outcome: 'success' }));
    t.apply(1012, state('1', 'finished'));
    expect(t.get(prompt)!.nodes.get('1')).toMatchObject({ finished_at: 1002, timing: 'comfyui' });
  });

  it('ends a job on ComfyUI’s clock when ComfyUI says the outcome, and on podscope’s when podscope calls it lost', () => {
    const t = started();
    t.apply(1020, tap('execution_success', { timestamp: 1015 }));
    expect(t.get(prompt)).toMatchObject({ status: 'success', finished_at: 1015, finished_timing: 'comfyui' });
    const lost = started();
    lost.loseUnfinished(1030, 'ComfyUI restarted');
    expect(lost.get(prompt)).toMatchObject({ status: 'lost', finished_at: 1030, finished_timing: 'observed' });
  });

  it('keeps a node’s observed end inside the job’s run when ComfyUI’s end is a moment earlier than the frame arrived', () => {
    const t = tracker();
    t.apply(1000, state('1', 'running'));
    // The last node's finished frame reached podscope at 1016; ComfyUI ended the prompt at 1015 by its clock.
    t.apply(1016, state('1', 'finished'));
    t.applyHistory(1100, history(prompt, { prompt: [1, prompt, { '1': { class_type: 'EmptyImage', inputs: {} } }, { job_id: 'job-clock', client_id: 'worker' }, ['1']], outputs: {}, status: { status_str: 'success', completed: true, messages: [['execution_start', { timestamp: 998 }], ['execution_success', { timestamp: 1015 }]] } }));
    expect(t.get(prompt)!.nodes.get('1')).toMatchObject({ started_at: 1000, finished_at: 1015, end_timing: 'observed' });
  });

  it('calls a node observed when one of its times is podscope’s', () => {
    const t = tracker();
    t.apply(1000, tap('podscope.prompt_start', { extra: { job_id: 'job-clock' }, graph: { '1': { class_type: 'EmptyImage', inputs: {} } }, outputs: ['1'], t: 990 }));
    t.apply(1005, state('1', 'running'));
    t.apply(1011, tap('podscope.node_end', { node_id: '1', display_node_id: '1', class_type: 'EmptyImage', t: 1002, outcome: 'success' }));
    expect(t.get(prompt)!.nodes.get('1')).toMatchObject({ started_at: 1005, start_timing: 'observed', end_timing: 'comfyui', timing: 'observed' });
  });
});

describe('the outcomes counted since podscope started', () => {
  it('count each job once by its first outcome, whether or not it is still remembered, and not jobs of before', () => {
    const t = new JobTracker({ jobIdKey: 'job_id', historyLimit: 1 });
    const h = JSON.parse(fx('history-success-cached.json')).P;
    t.applyHistory(1, history('before', h), { silent: true });
    t.applyHistory(2, history('a', h));
    t.applyHistory(3, history('b', h));
    t.applyHistory(4, history('b', h));
    expect(t.rememberedCount).toBe(1);
    expect(Object.fromEntries(t.outcomes)).toEqual({ success: 2 });
  });
});
