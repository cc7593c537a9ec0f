/**
 * Decoding what ComfyUI says into typed events (sources/comfy-events.ts): every frame and HTTP
 * answer the real ComfyUI 0.3.64 sent in the recordings, the wire shapes of the protocol notes,
 * and what a broken or hostile sender could put in their place.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeFrame, decodeHistory, decodeHistoryEntry, decodeQueue, decodeQueueItem } from '../../src/sources/comfy-events.js';
import type { RawInput } from '../../src/collectors/comfy-inputs.js';

const FIXTURES = new URL('../fixtures/comfyui/', import.meta.url);
const RECORDINGS = new URL('recordings/', FIXTURES);

function recording(name: string): RawInput[] {
  return readFileSync(new URL(name, RECORDINGS), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RawInput);
}

const ALL = readdirSync(RECORDINGS).filter((f) => f.endsWith('.jsonl'));
const frames = ALL.flatMap((f) => recording(f).filter((i): i is Extract<RawInput, { kind: 'frame' }> => i.kind === 'frame').map((i) => ({ file: f, ...i })));
const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(name, FIXTURES), 'utf8'));

/** Frame types podscope reads; any other is kept only by name. */
const READ = new Map([
  ['status', 'status'],
  ['executing', 'executing'],
  ['executed', 'executed'],
  ['progress', 'progress'],
  ['progress_state', 'progress_state'],
  ['execution_start', 'execution_start'],
  ['execution_cached', 'execution_cached'],
  ['execution_success', 'execution_success'],
  ['execution_error', 'execution_error'],
  ['execution_interrupted', 'execution_interrupted'],
  ['podscope.prompt_queued', 'prompt_queued'],
  ['podscope.prompt_rejected', 'prompt_rejected'],
  ['podscope.prompt_start', 'prompt_start'],
  ['podscope.node_start', 'node_start'],
  ['podscope.node_end', 'node_end'],
]);

describe('every frame the real ComfyUI sent', () => {
  it('has recordings to read', () => {
    expect(ALL.length).toBeGreaterThanOrEqual(12);
    expect(frames.length).toBeGreaterThan(200);
  });

  it.each(ALL)('%s: each frame of a type podscope reads decodes into that event, with its prompt id', (file) => {
    for (const f of frames.filter((x) => x.file === file)) {
      const e = decodeFrame(f.type, f.data);
      const want = READ.get(f.type);
      if (!want) {
        expect(e).toEqual({ type: 'other', name: f.type });
        continue;
      }
      // `executing` with node null and no prompt id is ComfyUI's resume-after-reconnect frame.
      if (f.type === 'executing' && typeof f.data.prompt_id !== 'string') {
        expect(e).toBeNull();
        continue;
      }
      expect(e, `${file}: ${f.type}`).not.toBeNull();
      expect(e!.type).toBe(want);
      // A frame's prompt id is the event's; a frame without one (status, logs) makes an event without one.
      expect((e as { prompt_id?: string }).prompt_id, `${file}: ${f.type}`).toBe(f.data.prompt_id);
    }
  });

  it('decodes every tap node_end with an outcome ComfyUI can give', () => {
    const ends = frames.filter((f) => f.type === 'podscope.node_end').map((f) => decodeFrame(f.type, f.data));
    expect(ends.length).toBeGreaterThan(10);
    for (const e of ends) expect(['success', 'error', 'pending']).toContain((e as { outcome: string }).outcome);
  });

  it('keeps the real execution_error whole: node, exception, message and traceback', () => {
    const f = frames.find((x) => x.type === 'execution_error')!;
    const e = decodeFrame(f.type, f.data) as Extract<ReturnType<typeof decodeFrame>, { type: 'execution_error' }>;
    expect(e.error.node_id).toBe(f.data.node_id);
    expect(e.error.exception_type).toBe(f.data.exception_type);
    expect(e.error.exception_message).toBe(String(f.data.exception_message).replace(/\n+$/, ''));
    expect(e.error.traceback.length).toBeGreaterThan(0);
    expect(e.blocker).toBe(false);
    expect(e.ts).toEqual(expect.any(Number));
  });

  it('keeps the real rejection with its error and node errors', () => {
    const f = frames.find((x) => x.type === 'podscope.prompt_rejected')!;
    const e = decodeFrame(f.type, f.data) as Extract<ReturnType<typeof decodeFrame>, { type: 'prompt_rejected' }>;
    expect(e.error).toMatchObject({ type: 'prompt_outputs_failed_validation' });
    expect(Object.keys(e.node_errors).length).toBeGreaterThan(0);
  });
});

describe('decodeFrame: status', () => {
  it('reads the queue length', () => {
    expect(decodeFrame('status', { status: { exec_info: { queue_remaining: 3 } } })).toEqual({ type: 'status', queue_remaining: 3 });
  });

  it('says null when the queue length is missing or not a number', () => {
    expect(decodeFrame('status', {})).toEqual({ type: 'status', queue_remaining: null });
    expect(decodeFrame('status', { status: { exec_info: { queue_remaining: '3' } } })).toEqual({ type: 'status', queue_remaining: null });
  });
});

describe('decodeFrame: executing and executed', () => {
  it('names the display node over the node inside a subgraph', () => {
    expect(decodeFrame('executing', { prompt_id: 'P', node: '12:3', display_node: '12' })).toEqual({ type: 'executing', prompt_id: 'P', node: '12' });
  });

  it('reads node null as the prompt done', () => {
    expect(decodeFrame('executing', { prompt_id: 'P', node: null })).toEqual({ type: 'executing', prompt_id: 'P', node: null });
  });

  it('drops the resume frame that has no prompt id', () => {
    expect(decodeFrame('executing', { node: null })).toBeNull();
  });

  it('keeps an executed output object, and says null for any other output', () => {
    expect(decodeFrame('executed', { prompt_id: 'P', node: '9', output: { images: [] } })).toMatchObject({ node: '9', output: { images: [] } });
    expect(decodeFrame('executed', { prompt_id: 'P', node: '9', output: 'x' })).toMatchObject({ output: null });
  });

  it('drops an executed frame without a node', () => {
    expect(decodeFrame('executed', { prompt_id: 'P', output: {} })).toBeNull();
  });
});

describe('decodeFrame: progress', () => {
  it('reads step and total', () => {
    expect(decodeFrame('progress', { prompt_id: 'P', node: '3', value: 2, max: 20 })).toEqual({ type: 'progress', prompt_id: 'P', node: '3', value: 2, max: 20 });
  });

  it('says null for a step that is not a finite number', () => {
    expect(decodeFrame('progress', { prompt_id: 'P', node: '3', value: 'two', max: Infinity })).toMatchObject({ value: null, max: null });
  });

  it('reads a progress_state node under its display id, with its parent', () => {
    const e = decodeFrame('progress_state', { prompt_id: 'P', nodes: { '5:1': { node_id: '5:1', display_node_id: '5', parent_node_id: '5', value: 1, max: 4, state: 'running' } } });
    expect(e).toEqual({ type: 'progress_state', prompt_id: 'P', nodes: [{ node_id: '5', value: 1, max: 4, state: 'running', parent_node_id: '5' }] });
  });

  it('falls back to the key when a progress_state node carries no id', () => {
    const e = decodeFrame('progress_state', { prompt_id: 'P', nodes: { '7': { value: 0, max: 1, state: 'finished' } } });
    expect(e).toMatchObject({ nodes: [{ node_id: '7', state: 'finished' }] });
  });

  it('says null for a state it does not know, and skips entries that are not objects', () => {
    const e = decodeFrame('progress_state', { prompt_id: 'P', nodes: { '1': { state: 'paused' }, '2': 'x', '3': null } });
    expect(e).toMatchObject({ nodes: [{ node_id: '1', state: null }] });
  });
});

describe('decodeFrame: logs', () => {
  it('keeps entries with a message, and a missing time as empty', () => {
    const e = decodeFrame('logs', { entries: [{ t: '2026-11-23T10:00:00', m: 'a\n' }, { m: 'b' }, { t: 'x' }, 'c', null] });
    expect(e).toEqual({ type: 'logs', entries: [{ t: '2026-11-23T10:00:00', m: 'a\n' }, { t: '', m: 'b' }] });
  });

  it('reads a logs frame without entries as none', () => {
    expect(decodeFrame('logs', { entries: 'nope' })).toEqual({ type: 'logs', entries: [] });
  });
});

describe('decodeFrame: execution messages', () => {
  it('keeps a traceback sent as one string as one line', () => {
    const e = decodeFrame('execution_error', { prompt_id: 'P', timestamp: 1, node_id: '3', exception_message: 'boom\n\n', traceback: 'Traceback…' });
    expect(e).toMatchObject({ error: { exception_message: 'boom', traceback: ['Traceback…'] } });
  });

  it('drops traceback lines that are not strings', () => {
    expect(decodeFrame('execution_error', { prompt_id: 'P', timestamp: 1, traceback: ['a', 3, null, 'b'] })).toMatchObject({ error: { traceback: ['a', 'b'] } });
  });

  it('tells the ExecutionBlocker variant (no timestamp, a list of inputs) from an error that stops the prompt', () => {
    expect(decodeFrame('execution_error', { prompt_id: 'P', current_inputs: [] })).toMatchObject({ blocker: true, ts: null });
    expect(decodeFrame('execution_error', { prompt_id: 'P', timestamp: 5, current_inputs: {} })).toMatchObject({ blocker: false, ts: 5 });
  });

  it('reads an interruption with the node it stopped at', () => {
    expect(decodeFrame('execution_interrupted', { prompt_id: 'P', node_id: '3', node_type: 'KSampler', executed: ['4'], timestamp: 9 })).toEqual({
      type: 'execution_interrupted',
      prompt_id: 'P',
      ts: 9,
      executed: ['4'],
      node_id: '3',
      node_type: 'KSampler',
    });
  });

  it('keeps only ids in execution_cached, numbers as strings', () => {
    expect(decodeFrame('execution_cached', { prompt_id: 'P', nodes: ['4', 7, null, {}, ''] })).toMatchObject({ nodes: ['4', '7'] });
  });

  it('drops an execution message without a prompt id', () => {
    expect(decodeFrame('execution_start', { timestamp: 1 })).toBeNull();
  });
});

describe('decodeFrame: the tap node', () => {
  it('reads an outcome it does not know as an error, never a success', () => {
    expect(decodeFrame('podscope.node_end', { prompt_id: 'P', node_id: '3', outcome: 'weird', t: 1 })).toMatchObject({ outcome: 'error' });
  });

  it('reads peak VRAM when given, null otherwise', () => {
    expect(decodeFrame('podscope.node_end', { prompt_id: 'P', node_id: '3', outcome: 'success', peak_vram_bytes: 1024 })).toMatchObject({ peak_vram_bytes: 1024 });
    expect(decodeFrame('podscope.node_end', { prompt_id: 'P', node_id: '3', outcome: 'success' })).toMatchObject({ peak_vram_bytes: null });
  });

  it('names a node by its display id', () => {
    expect(decodeFrame('podscope.node_start', { prompt_id: 'P', node_id: '5:2', display_node_id: '5' })).toMatchObject({ type: 'node_start', node_id: '5' });
  });

  it('drops a node event without a node', () => {
    expect(decodeFrame('podscope.node_start', { prompt_id: 'P' })).toBeNull();
  });

  it('keeps a prompt start with its graph, outputs and ComfyUI time', () => {
    expect(decodeFrame('podscope.prompt_start', { prompt_id: 'P', graph: { '1': {} }, outputs: ['9'], extra: { job_id: 'j' }, t: 42 })).toEqual({
      type: 'prompt_start',
      prompt_id: 'P',
      graph: { '1': {} },
      outputs: ['9'],
      extra: { job_id: 'j' },
      t: 42,
    });
  });
});

describe('decodeFrame: what no ComfyUI sends', () => {
  it('keeps an unknown type by name only', () => {
    expect(decodeFrame('crystools.monitor', { cpu_utilization: 3 })).toEqual({ type: 'other', name: 'crystools.monitor' });
  });

  it.each([
    ['an empty prompt id', ''],
    ['a prompt id longer than 256 characters', 'p'.repeat(257)],
    ['a prompt id that is an object', { id: 1 }],
    ['a prompt id that is not finite', NaN],
  ])('drops a frame with %s', (_name, promptId) => {
    expect(decodeFrame('progress', { prompt_id: promptId, node: '3', value: 1, max: 2 })).toBeNull();
  });

  it('reads a numeric prompt id as a string', () => {
    expect(decodeFrame('execution_start', { prompt_id: 12, timestamp: 1 })).toMatchObject({ prompt_id: '12' });
  });
});

describe('decodeQueueItem', () => {
  it('reads number, prompt id, graph, extra data and outputs', () => {
    expect(decodeQueueItem([3, 'P', { '1': {} }, { client_id: 'c' }, ['9']])).toEqual({ number: 3, prompt_id: 'P', graph: { '1': {} }, extra_data: { client_id: 'c' }, outputs_to_execute: ['9'] });
  });

  it('fills what a short item lacks with empties', () => {
    expect(decodeQueueItem([null, 'P'])).toEqual({ number: null, prompt_id: 'P', graph: {}, extra_data: {}, outputs_to_execute: [] });
  });

  it.each([['not a list', { prompt_id: 'P' }], ['too short', [1]], ['without a prompt id', [1, null, {}]]])('drops an item %s', (_name, raw) => {
    expect(decodeQueueItem(raw)).toBeNull();
  });
});

describe('decodeQueue', () => {
  it('reads the recorded /queue answer', () => {
    const q = decodeQueue(fixture('queue-running.json'));
    expect(q?.running.map((i) => i.prompt_id)).toEqual(['P']);
    expect(q?.running[0]!.extra_data).toMatchObject({ client_id: 'C' });
  });

  it('reads every /queue answer the real ComfyUI gave', () => {
    const answers = ALL.flatMap((f) => recording(f)).filter((i): i is Extract<RawInput, { kind: 'http' }> => i.kind === 'http' && i.path.startsWith('/queue'));
    expect(answers.length).toBeGreaterThan(0);
    for (const a of answers) expect(decodeQueue(a.body)).not.toBeNull();
  });

  it('drops malformed items and keeps the rest', () => {
    expect(decodeQueue({ queue_running: [[1, 'A'], 'junk'], queue_pending: [[2]] })).toMatchObject({ running: [{ prompt_id: 'A' }], pending: [] });
  });

  it.each([['an error body', { error: 'HTTP_STATUS' }], ['a list', []], ['one list missing', { queue_running: [] }], ['null', null]])('is null for %s', (_name, body) => {
    expect(decodeQueue(body)).toBeNull();
  });
});

describe('decodeHistoryEntry and decodeHistory', () => {
  it('reads the recorded /history answer of an OOM: its messages in order, status and outputs', () => {
    const [r] = decodeHistory(fixture('history-oom.json'));
    expect(r!.prompt_id).toBe('P');
    expect(r!.messages.map((m) => m.type)).toEqual(['execution_start', 'execution_cached', 'execution_error']);
    expect(r!.status_str).toBe('error');
    expect(r!.completed).toBe(false);
    expect(r!.item?.extra_data).toMatchObject({ client_id: 'C' });
  });

  it('reads the recorded /history answer of a success with its outputs', () => {
    const [r] = decodeHistory(fixture('history-success-cached.json'));
    expect(r!.status_str).toBe('success');
    expect(r!.outputs.map((o) => o.node_id)).toEqual(['9']);
  });

  it('reads every /history answer the real ComfyUI gave', () => {
    const answers = ALL.flatMap((f) => recording(f)).filter((i): i is Extract<RawInput, { kind: 'http' }> => i.kind === 'http' && i.path.startsWith('/history'));
    const records = answers.flatMap((a) => decodeHistory(a.body));
    expect(records.length).toBeGreaterThan(0);
    for (const r of records) {
      expect(['success', 'error']).toContain(r.status_str);
      expect(r.messages[0]?.type).toBe('execution_start');
    }
  });

  it('gives every message of an entry the entry’s prompt id', () => {
    const r = decodeHistoryEntry('P', { status: { messages: [['execution_start', { timestamp: 1 }]] } });
    expect(r?.messages).toEqual([{ type: 'execution_start', prompt_id: 'P', ts: 1 }]);
  });

  it('skips messages that are not [type, object] pairs, and types it does not read', () => {
    const r = decodeHistoryEntry('P', { status: { messages: [['execution_start'], 'x', [1, {}], ['progress', { node: '1' }], ['execution_success', { timestamp: 2 }]] } });
    expect(r?.messages).toEqual([{ type: 'execution_success', prompt_id: 'P', ts: 2 }]);
  });

  it('says null for a status it was not given', () => {
    expect(decodeHistoryEntry('P', {})).toMatchObject({ status_str: null, completed: null, item: null, messages: [], outputs: [] });
  });

  it('keeps only output entries that are objects', () => {
    expect(decodeHistoryEntry('P', { outputs: { '9': { images: [] }, '10': 'x' } })?.outputs).toEqual([{ node_id: '9', ui: { images: [] } }]);
  });

  it('drops an entry that is not an object', () => {
    expect(decodeHistoryEntry('P', 'nope')).toBeNull();
  });

  it('reads an answer that is not an object as no entries', () => {
    expect(decodeHistory([1, 2])).toEqual([]);
    expect(decodeHistory('x')).toEqual([]);
  });

  it('keeps the order ComfyUI gave, oldest first', () => {
    expect(decodeHistory({ A: {}, B: {}, C: {} }).map((r) => r.prompt_id)).toEqual(['A', 'B', 'C']);
  });
});
