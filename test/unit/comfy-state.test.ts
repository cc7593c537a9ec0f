/**
 * What podscope keeps of ComfyUI (state/comfy.ts), told through its intent methods: whether it is
 * up and why not, its rejections, previews and /system_stats; and how views/comfy.ts shows it (the
 * running job as /debug/status shows it, what podscope can see).
 */
import { readFileSync } from 'node:fs';
import { gpuUse } from '../helpers/gpu-use.js';
import { describe, expect, it } from 'vitest';
import { ComfyState, type Rejection } from '../../src/state/comfy.js';
import { comfyInfoView, currentJobView, PROGRESS_UNKNOWN, systemStatsView, visibility } from '../../src/views/comfy.js';
import { decodeFrame, decodeQueueItem } from '../../src/sources/comfy-events.js';
import type { RawInput } from '../../src/collectors/comfy-inputs.js';

const URL_ = 'http://127.0.0.1:8188';
const comfyState = () => new ComfyState(URL_, { jobIdKey: 'job_id', historyLimit: 10 });

const rejection = (over: Partial<Rejection>): Rejection => ({ at: 1000, job_id: null, prompt_id: null, reasons: [], lines: [], source: 'log', ...over });

describe('whether ComfyUI is up', () => {
  it('is starting, with the last error, until ComfyUI first answers', () => {
    const c = comfyState();
    c.httpFailed(500, 'connect ECONNREFUSED 127.0.0.1:8188', true);
    expect(c.httpCheck()).toEqual({ ok: false, starting: true, message: 'ComfyUI at http://127.0.0.1:8188 has not answered yet (connect ECONNREFUSED 127.0.0.1:8188)' });
    expect(c.everReached()).toBe(false);
  });

  it('is down, with the error, once it stops answering after it had', () => {
    const c = comfyState();
    c.httpAnswered(1000);
    c.httpFailed(2000, 'timed out after 5000 ms', false);
    expect(c.httpCheck()).toEqual({ ok: false, message: 'ComfyUI at http://127.0.0.1:8188 does not answer: timed out after 5000 ms' });
  });

  it('says the websocket is starting before it ever connected, and down with its reason after', () => {
    const c = comfyState();
    expect(c.websocketCheck()).toMatchObject({ ok: false, starting: true });
    c.connected('podscope-1');
    c.disconnected(2000, 'no pong within 10000 ms');
    expect(c.websocketCheck()).toEqual({ ok: false, message: 'websocket to ComfyUI is down: no pong within 10000 ms' });
    c.connected('podscope-2');
    expect(c.websocketCheck()).toEqual({ ok: true });
  });

  it('is alive while HTTP answers and the websocket is open', () => {
    const c = comfyState();
    c.httpAnswered(1000);
    c.connected('podscope-1');
    expect(c.alive()).toBe(true);
  });

  it('is alive when HTTP answered after the websocket closed, not before', () => {
    const c = comfyState();
    c.connected('podscope-1');
    c.httpAnswered(1500);
    c.disconnected(2000, 'closed');
    expect(c.alive()).toBe(false);
    c.httpAnswered(2500);
    expect(c.alive()).toBe(true);
  });

  it('is not alive while HTTP fails, whatever the websocket says', () => {
    const c = comfyState();
    c.httpAnswered(1000);
    c.connected('podscope-1');
    c.httpFailed(1500, 'timed out', false);
    expect(c.alive()).toBe(false);
  });
});

describe('what the collector tells it', () => {
  it('keeps when HTTP started failing, and whether the port refuses, across repeated failures', () => {
    const c = comfyState();
    expect(c.httpAnswered(1000)).toBe(true);
    expect(c.httpAnswered(1500)).toBe(false);
    c.httpFailed(2000, 'timed out', false);
    c.httpFailed(3000, 'connect ECONNREFUSED', true);
    c.httpFailed(4000, 'connect ECONNREFUSED', true);
    expect([c.httpFailingSince, c.refusedSince, c.lastDownAt, c.lastHttpError]).toEqual([2000, 3000, 2000, 'connect ECONNREFUSED']);
    c.httpAnswered(5000);
    expect([c.httpFailingSince, c.refusedSince, c.lastHttpError, c.reachedAt]).toEqual([null, null, null, 1000]);
  });

  it('counts a reconnect only when an open websocket closed, and keeps since when it has been down', () => {
    const c = comfyState();
    expect(c.disconnected(1000, 'refused')).toBe(false);
    c.connected('podscope-1');
    expect(c.disconnected(2000, 'no pong')).toBe(true);
    expect(c.disconnected(3000, 'refused again')).toBe(false);
    expect([c.wsReconnects, c.wsDownSince, c.lastDownAt, c.wsLastCloseReason, c.wsClientId]).toEqual([1, 2000, 2000, 'refused again', 'podscope-1']);
  });

  it('counts frames by known type, every other type as one, and binary and malformed ones apart', () => {
    const c = comfyState();
    for (const t of ['status', 'executing', 'something.new', 'another.new']) c.frameArrived(10, { type: t });
    c.frameArrived(20, 'binary');
    c.frameArrived(30, 'malformed');
    expect(Object.fromEntries(c.framesByType)).toEqual({ status: 1, executing: 1, other: 2 });
    expect([c.binaryFrames, c.malformedFrames, c.lastFrameAt]).toEqual([1, 1, 30]);
  });

  it('reads its version and command line from /system_stats, and forgets a command line it no longer reports', () => {
    const c = comfyState();
    c.systemStatsRead(10, { system: { comfyui_version: '0.3.64', argv: ['main.py', '--output-directory', '/out', 7] } });
    expect([c.version, c.argv]).toEqual(['0.3.64', ['main.py', '--output-directory', '/out']]);
    c.systemStatsRead(20, { system: {} });
    expect([c.version, c.argv]).toEqual(['0.3.64', null]);
  });
});

describe('rejections', () => {
  it('keeps the tap’s report and the log’s block of one rejection as one entry, with the tap’s ids and the log’s lines', () => {
    const c = comfyState();
    c.addRejection(rejection({ at: 1000, source: 'log', reasons: ['from log'], lines: ['Failed to validate prompt for output 9:'] }));
    c.addRejection(rejection({ at: 1100, source: 'tap', job_id: 'j1', prompt_id: 'P1', reasons: ['KSampler 3: Value smaller than min'] }));
    expect(c.rejections).toEqual([
      { at: 1100, job_id: 'j1', prompt_id: 'P1', reasons: ['KSampler 3: Value smaller than min'], lines: ['Failed to validate prompt for output 9:'], source: 'tap+log' },
    ]);
  });

  it('keeps the log’s reasons when the tap gave none', () => {
    const c = comfyState();
    c.addRejection(rejection({ at: 1000, source: 'tap', prompt_id: 'P1' }));
    c.addRejection(rejection({ at: 1000, source: 'log', reasons: ['from log'] }));
    expect(c.rejections[0]).toMatchObject({ reasons: ['from log'], source: 'tap+log' });
  });

  it('keeps two rejections from one source apart, however close', () => {
    const c = comfyState();
    c.addRejection(rejection({ at: 1000, source: 'log' }));
    c.addRejection(rejection({ at: 1001, source: 'log' }));
    expect(c.rejections).toHaveLength(2);
  });

  it('keeps the tap’s and the log’s reports apart when far apart in time', () => {
    const c = comfyState();
    c.addRejection(rejection({ at: 1000, source: 'log' }));
    c.addRejection(rejection({ at: 60_000, source: 'tap' }));
    expect(c.rejections.map((r) => r.source)).toEqual(['log', 'tap']);
  });

  it('keeps the newest 20', () => {
    const c = comfyState();
    for (let i = 0; i < 25; i++) c.addRejection(rejection({ at: i * 100_000, source: 'log', reasons: [String(i)] }));
    expect(c.rejections.map((r) => r.reasons[0])).toEqual(Array.from({ length: 20 }, (_, i) => String(i + 5)));
  });

  it('forgets rejections older than the given age and says how many remain', () => {
    const c = comfyState();
    for (const at of [1000, 5000, 9000]) c.addRejection(rejection({ at: at * 1000, source: 'log' }));
    expect(c.pruneRejections(10_000_000, 6_000_000)).toBe(2);
    expect(c.rejections.map((r) => r.at)).toEqual([5_000_000, 9_000_000]);
  });
});

describe('previews', () => {
  it('keeps the latest preview of a remembered job', () => {
    const c = comfyState();
    c.tracker.applyQueue(1000, [decodeQueueItem([1, 'P1', {}, {}, []])!], []);
    c.setPreview({ prompt_id: 'P1', node_id: '3', format: 'image/jpeg', bytes: 10, at: 1 });
    c.setPreview({ prompt_id: 'P1', node_id: '3', format: 'image/jpeg', bytes: 20, at: 2 });
    expect(c.preview('P1')).toMatchObject({ bytes: 20, at: 2 });
  });

  it('drops the previews of jobs no longer remembered', () => {
    const c = comfyState();
    c.setPreview({ prompt_id: 'gone', node_id: '3', format: 'image/jpeg', bytes: 10, at: 1 });
    c.setPreview({ prompt_id: null, node_id: null, format: 'image/png', bytes: 5, at: 2 });
    expect(c.preview('gone')).toBeUndefined();
    expect(c.preview('unknown')).toMatchObject({ bytes: 5 });
  });
});

describe('/system_stats', () => {
  const recorded = readFileSync(new URL('../fixtures/comfyui/recordings/tap-success.jsonl', import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RawInput)
    .find((i): i is Extract<RawInput, { kind: 'http' }> => i.kind === 'http' && i.path === '/system_stats')!;

  it('is null before it is read', () => {
    expect(systemStatsView(comfyState())).toBeNull();
  });

  it('reads the real ComfyUI’s answer: version, RAM and devices in MiB', () => {
    const c = comfyState();
    c.systemStatsRead(Date.parse('2026-11-23T10:00:00Z'), recorded.body as Record<string, unknown>);
    expect(c.version).toBe('0.3.64');
    const s = systemStatsView(c)!;
    expect(s).toMatchObject({ sampled_at: '2026-11-23T10:00:00.000Z', version: '0.3.64' });
    expect(s.ram_total_mb).toBe(Math.round(25276502016 / 1024 / 1024));
    expect((s.devices as unknown[]).length).toBeGreaterThan(0);
    expect((s.devices as Array<Record<string, unknown>>)[0]).toMatchObject({ type: 'cpu' });
  });

  it('says null for fields of the wrong type, never 0', () => {
    const c = comfyState();
    c.systemStatsRead(1000, { system: { ram_total: 'lots' }, devices: [{ name: 3, vram_total: null }] });
    expect(systemStatsView(c)).toMatchObject({ version: null, ram_total_mb: null, devices: [{ name: null, vram_total_mb: null, index: null }] });
  });
});

describe('the running job', () => {
  it('is null while no job runs', () => {
    expect(currentJobView(comfyState(), gpuUse(null), 0)).toBeNull();
  });

  it('shows its ids, elapsed time and last activity, with progress unknown and why before its graph is read', () => {
    const c = comfyState();
    c.tracker.applyQueue(10_000, [decodeQueueItem([1, 'P1', {}, { job_id: 'j1' }, []])!], []);
    const job = currentJobView(c, gpuUse(null, c), 12_500)!;
    expect(job).toMatchObject({ job_id: 'j1', prompt_id: 'P1', gpu_seconds: null, last_activity_s: 2.5 });
    expect(job.progress_percent).toBeNull();
    expect(job.progress_unknown_reason).toBe(PROGRESS_UNKNOWN);
  });
});

describe('what podscope can see', () => {
  it('says every prompt, node by node, with the tap', () => {
    const c = comfyState();
    c.tapFound({ version: '2' });
    expect(visibility(c).mode).toBe('tap');
    expect(comfyInfoView(c)).toMatchObject({ tap: true, tap_version: '2', visibility: { mode: 'tap' } });
  });

  it('says what it cannot see without the tap', () => {
    const v = visibility(comfyState());
    expect(v.mode).toBe('observer');
    expect(v.sees).toMatch(/otherwise null/);
  });

  /** A client's prompt that ran to success, with or without ComfyUI's progress_state reaching podscope. */
  function ranClientPrompt(c: ReturnType<typeof comfyState>, progressState: boolean) {
    c.tracker.applyQueue(1000, [decodeQueueItem([1, 'P1', { '1': { class_type: 'EmptyImage', inputs: {} } }, { job_id: 'j1', client_id: 'worker' }, ['1']])!], []);
    if (progressState) c.tracker.apply(1100, decodeFrame('progress_state', { prompt_id: 'P1', nodes: { '1': { node_id: '1', display_node_id: '1', value: 0, max: 1, state: 'running' } } })!);
    c.tracker.apply(1200, { type: 'execution_success', prompt_id: 'P1', ts: 1200 });
  }

  it('does not yet say whether other clients’ prompts show node by node before one has finished', () => {
    expect(visibility(comfyState()).node_progress).toMatchObject({ seen: null });
  });

  it('says other clients’ prompts show node by node once ComfyUI broadcast their progress_state', () => {
    const c = comfyState();
    ranClientPrompt(c, true);
    expect(visibility(c).node_progress).toMatchObject({ seen: true, how: expect.stringMatching(/broadcasts progress_state/) });
  });

  it('says their node times are unknown when a client’s prompt finished without any progress reaching podscope', () => {
    const c = comfyState();
    ranClientPrompt(c, false);
    expect(visibility(c).node_progress).toMatchObject({ seen: false, how: expect.stringMatching(/node times are unknown/) });
  });
});
