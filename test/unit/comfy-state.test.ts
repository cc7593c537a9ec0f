/**
 * What podscope keeps of ComfyUI (state/comfy.ts): whether it is up and why not, its rejections,
 * previews and /system_stats, and the running job as /debug/status shows it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ComfyState, PROGRESS_UNKNOWN, type Rejection } from '../../src/state/comfy.js';
import { decodeQueueItem } from '../../src/sources/comfy-events.js';
import type { RawInput } from '../../src/collectors/comfy-inputs.js';

const URL_ = 'http://127.0.0.1:8188';
const comfyState = () => new ComfyState(URL_, { jobIdKey: 'job_id', historyLimit: 10 }, null);

const rejection = (over: Partial<Rejection>): Rejection => ({ at: 1000, job_id: null, prompt_id: null, reasons: [], lines: [], source: 'log', ...over });

describe('whether ComfyUI is up', () => {
  it('is starting, with the last error, until ComfyUI first answers', () => {
    const c = comfyState();
    c.lastHttpError = 'connect ECONNREFUSED 127.0.0.1:8188';
    expect(c.httpCheck()).toEqual({ ok: false, starting: true, message: 'ComfyUI at http://127.0.0.1:8188 has not answered yet (connect ECONNREFUSED 127.0.0.1:8188)' });
    expect(c.everReached()).toBe(false);
  });

  it('is down, with the error, once it stops answering after it had', () => {
    const c = comfyState();
    c.lastHttpOkAt = 1000;
    c.httpFailingSince = 2000;
    c.lastHttpError = 'timed out after 5000 ms';
    expect(c.httpCheck()).toEqual({ ok: false, message: 'ComfyUI at http://127.0.0.1:8188 does not answer: timed out after 5000 ms' });
  });

  it('says the websocket is starting before it ever connected, and down with its reason after', () => {
    const c = comfyState();
    expect(c.websocketCheck()).toMatchObject({ ok: false, starting: true });
    c.wsEverConnected = true;
    c.wsLastCloseReason = 'no pong within 10000 ms';
    expect(c.websocketCheck()).toEqual({ ok: false, message: 'websocket to ComfyUI is down: no pong within 10000 ms' });
    c.wsConnected = true;
    expect(c.websocketCheck()).toEqual({ ok: true });
  });

  it('is alive while HTTP answers and the websocket is open', () => {
    const c = comfyState();
    c.lastHttpOkAt = 1000;
    c.wsConnected = true;
    expect(c.alive()).toBe(true);
  });

  it('is alive when HTTP answered after the websocket closed, not before', () => {
    const c = comfyState();
    c.wsDownSince = 2000;
    c.lastHttpOkAt = 1500;
    expect(c.alive()).toBe(false);
    c.lastHttpOkAt = 2500;
    expect(c.alive()).toBe(true);
  });

  it('is not alive while HTTP fails, whatever the websocket says', () => {
    const c = comfyState();
    c.lastHttpOkAt = 1000;
    c.wsConnected = true;
    c.httpFailingSince = 1500;
    expect(c.alive()).toBe(false);
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
    expect(comfyState().systemStats()).toBeNull();
  });

  it('reads the real ComfyUI’s answer: version, RAM and devices in MiB', () => {
    const c = comfyState();
    c.systemStatsRaw = recorded.body as Record<string, unknown>;
    c.systemStatsAt = Date.parse('2026-11-23T10:00:00Z');
    const s = c.systemStats()!;
    expect(s).toMatchObject({ sampled_at: '2026-11-23T10:00:00.000Z', version: '0.3.64' });
    expect(s.ram_total_mb).toBe(Math.round(25276502016 / 1024 / 1024));
    expect((s.devices as unknown[]).length).toBeGreaterThan(0);
    expect((s.devices as Array<Record<string, unknown>>)[0]).toMatchObject({ type: 'cpu' });
  });

  it('says null for fields of the wrong type, never 0', () => {
    const c = comfyState();
    c.systemStatsRaw = { system: { ram_total: 'lots' }, devices: [{ name: 3, vram_total: null }] };
    expect(c.systemStats()).toMatchObject({ version: null, ram_total_mb: null, devices: [{ name: null, vram_total_mb: null, index: null }] });
  });
});

describe('the running job', () => {
  it('is null while no job runs', () => {
    expect(comfyState().currentJob(0)).toBeNull();
  });

  it('shows its ids, elapsed time and last activity, with progress unknown and why before its graph is read', () => {
    const c = comfyState();
    c.tracker.applyQueue(10_000, [decodeQueueItem([1, 'P1', {}, { job_id: 'j1' }, []])!], []);
    const job = c.currentJob(12_500)!;
    expect(job).toMatchObject({ job_id: 'j1', prompt_id: 'P1', gpu_seconds: null, last_activity_s: 2.5 });
    expect(job.progress_percent).toBeNull();
    expect(job.progress_unknown_reason).toBe(PROGRESS_UNKNOWN);
  });
});

describe('what podscope can see', () => {
  it('says every prompt, node by node, with the tap', () => {
    const c = comfyState();
    c.tap = true;
    expect(c.visibility().mode).toBe('tap');
  });

  it('says what it cannot see without the tap', () => {
    const v = comfyState().visibility();
    expect(v.mode).toBe('observer');
    expect(v.sees).toMatch(/otherwise null/);
  });
});
