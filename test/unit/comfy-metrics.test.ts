/**
 * ComfyUI and job metrics (metrics/comfyui.ts): what a scrape says after the real ComfyUI's
 * recorded prompts are replayed into the state, and how the labels stay bounded.
 */
import { readFileSync } from 'node:fs';
import { Instances } from '../../src/state/instances.js';
import { Exposition } from '../../src/metrics/registry.js';
import { describe, expect, it } from 'vitest';
import { registerComfyMetrics } from '../../src/metrics/comfyui.js';
import { ComfyState } from '../../src/state/comfy.js';
import { replay, type RawInput } from '../../src/collectors/comfy-inputs.js';
import { decodeQueueItem } from '../../src/sources/comfy-events.js';

function recording(name: string): RawInput[] {
  return readFileSync(new URL(`../fixtures/comfyui/recordings/${name}.jsonl`, import.meta.url), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as RawInput);
}

function setup() {
  const comfy = new ComfyState('http://127.0.0.1:8188', { jobIdKey: 'job_id', historyLimit: 100 });
  const registry = new Exposition();
  const metrics = registerComfyMetrics(registry, new Instances(comfy));
  // The finish pipeline's step that counts a finished job, alone.
  comfy.tracker.finishWith(metrics.jobFinished);
  /** The value of one series, or undefined when the scrape does not have it. */
  const value = async (series: string): Promise<number | undefined> => {
    const text = await registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  return { comfy, registry, value };
}

describe('finished jobs', () => {
  it('are counted from zero under every status before any job ends', async () => {
    const { value } = setup();
    for (const s of ['success', 'error', 'interrupted', 'lost']) {
      expect(await value(`podscope_jobs_finished_total{comfyui="8188",status="${s}"}`)).toBe(0);
      expect(await value(`podscope_job_gpu_seconds_total{comfyui="8188",status="${s}"}`)).toBe(0);
    }
  });

  it('are counted by outcome as podscope saw them end, and not when read from the history of before it started', async () => {
    const { comfy, value } = setup();
    // Each recording holds one prompt run while podscope watched, after a history of earlier ones.
    for (const r of ['tap-success', 'tap-error', 'tap-interrupt']) replay(comfy.tracker, recording(r));
    expect(comfy.tracker.all().filter((j) => j.status === 'success').length).toBeGreaterThan(1);
    const n = async (s: string) => value(`podscope_jobs_finished_total{comfyui="8188",status="${s}"}`);
    expect([await n('success'), await n('error'), await n('interrupted'), await n('lost')]).toEqual([1, 1, 1, 0]);
  });

  it('have their run time observed on ComfyUI’s clock', async () => {
    const { comfy, value } = setup();
    replay(comfy.tracker, recording('tap-error'));
    const job = comfy.tracker.all().find((j) => j.status === 'error')!;
    expect(await value('podscope_job_duration_seconds_count{comfyui="8188",status="error"}')).toBe(1);
    expect(await value('podscope_job_duration_seconds_sum{comfyui="8188",status="error"}')).toBeCloseTo((job.finished_at! - job.started_at!) / 1000, 6);
  });

  it('count a job podscope inferred lost once, even when ComfyUI’s record later refines it', async () => {
    const { comfy, value } = setup();
    const item = decodeQueueItem([1, 'P1', { '1': { class_type: 'KSampler', inputs: {} } }, { job_id: 'j1' }, ['1']])!;
    comfy.tracker.applyQueue(1000, [item], []);
    comfy.tracker.applyMissing(2000, 'P1', 'gone', { atOnce: true });
    expect(await value('podscope_jobs_finished_total{comfyui="8188",status="lost"}')).toBe(1);
    comfy.tracker.applyHistory(3000, { prompt_id: 'P1', item, messages: [{ type: 'execution_start', prompt_id: 'P1', ts: 1000 }, { type: 'execution_success', prompt_id: 'P1', ts: 1500 }], outputs: [], status_str: 'success', completed: true });
    expect(comfy.tracker.get('P1')!.status).toBe('success');
    expect((await value('podscope_jobs_finished_total{comfyui="8188",status="lost"}'))! + (await value('podscope_jobs_finished_total{comfyui="8188",status="success"}'))!).toBe(1);
  });

  it('add no GPU-seconds when their GPU use is unknown', async () => {
    const { comfy, value } = setup();
    replay(comfy.tracker, recording('tap-success'));
    expect(comfy.tracker.all().every((j) => j.usage === null)).toBe(true);
    expect(await value('podscope_job_gpu_seconds_total{comfyui="8188",status="success"}')).toBe(0);
  });
});

describe('node run times', () => {
  it('are observed per class_type for executed nodes', async () => {
    const { comfy, registry } = setup();
    replay(comfy.tracker, recording('tap-success'));
    const job = comfy.tracker.all().find((j) => j.job_id.startsWith('job-found-'))!;
    const executed = [...job.nodes.values()].filter((n) => n.status === 'completed').map((n) => n.class_type);
    expect(executed.length).toBeGreaterThan(0);
    const text = await registry.metrics();
    const observed = [...text.matchAll(/^podscope_node_duration_seconds_count\{class_type="([^"]+)"\} (\d+)/gm)].map((m) => m[1]);
    expect(new Set(observed)).toEqual(new Set(executed));
  });

  it('are not observed for nodes ComfyUI took from its cache', async () => {
    const { comfy, registry } = setup();
    replay(comfy.tracker, recording('tap-cached'));
    const job = comfy.tracker.all().find((j) => j.job_id.startsWith('job-cached-'))!;
    expect([...job.nodes.values()].every((n) => n.status === 'cached')).toBe(true);
    expect(await registry.metrics()).not.toMatch(/^podscope_node_duration_seconds_count\{/m);
  });

  it('keep at most 500 class_type labels, then count the rest as other, and cut a label at 100 characters', async () => {
    const { comfy, registry } = setup();
    for (let i = 0; i < 510; i++) {
      const id = `P${i}`;
      const cls = i === 0 ? 'X'.repeat(300) : `Node${i}`;
      const item = decodeQueueItem([i, id, { '1': { class_type: cls, inputs: {} } }, {}, ['1']])!;
      comfy.tracker.applyQueue(i * 10, [item], []);
      comfy.tracker.apply(i * 10, { type: 'node_start', prompt_id: id, node_id: '1', class_type: cls, t: i * 10 });
      comfy.tracker.apply(i * 10 + 5, { type: 'node_end', prompt_id: id, node_id: '1', class_type: cls, t: i * 10 + 5, outcome: 'success', peak_vram_bytes: null });
      comfy.tracker.apply(i * 10 + 6, { type: 'execution_success', prompt_id: id, ts: i * 10 + 6 });
    }
    const text = await registry.metrics();
    const labels = new Set([...text.matchAll(/^podscope_node_duration_seconds_count\{class_type="([^"]+)"\}/gm)].map((m) => m[1]!));
    expect(labels.size).toBe(501);
    expect(labels.has('other')).toBe(true);
    expect(labels.has('X'.repeat(100))).toBe(true);
    expect([...labels].every((l) => l.length <= 100)).toBe(true);
  });
});

describe('ComfyUI’s connection', () => {
  it('is down before any poll has answered', async () => {
    const { value } = setup();
    expect(await value('podscope_comfyui_up{comfyui="8188"}')).toBe(0);
    expect(await value('podscope_comfyui_websocket_connected{comfyui="8188"}')).toBe(0);
  });

  it('is up while its HTTP polls answer, and down while they fail', async () => {
    const { comfy, value } = setup();
    comfy.httpAnswered(1000);
    expect(await value('podscope_comfyui_up{comfyui="8188"}')).toBe(1);
    comfy.httpFailed(2000, 'timed out', false);
    expect(await value('podscope_comfyui_up{comfyui="8188"}')).toBe(0);
  });

  it('counts websocket reconnects, frames by type, malformed and binary frames', async () => {
    const { comfy, value } = setup();
    for (let i = 0; i < 3; i++) {
      comfy.connected(`podscope-${i}`);
      if (i < 2) comfy.disconnected(1000 + i, 'closed');
    }
    for (const t of ['status', 'status', 'progress', 'crystools.monitor', 'x-unknown']) comfy.frameArrived(2000, { type: t });
    for (let i = 0; i < 3; i++) comfy.frameArrived(2000, 'malformed');
    for (let i = 0; i < 4; i++) comfy.frameArrived(2000, 'binary');
    expect(await value('podscope_comfyui_websocket_connected{comfyui="8188"}')).toBe(1);
    expect(await value('podscope_comfyui_websocket_reconnects_total{comfyui="8188"}')).toBe(2);
    expect(await value('podscope_comfyui_frames_total{comfyui="8188",type="status"}')).toBe(2);
    expect(await value('podscope_comfyui_frames_total{comfyui="8188",type="progress"}')).toBe(1);
    // crystools.monitor is a type ComfyUI extensions commonly send: counted by name.
    expect(await value('podscope_comfyui_frames_total{comfyui="8188",type="crystools.monitor"}')).toBe(1);
    expect(await value('podscope_comfyui_frames_total{comfyui="8188",type="other"}')).toBe(1);
    expect(await value('podscope_comfyui_malformed_frames_total{comfyui="8188"}')).toBe(3);
    expect(await value('podscope_comfyui_binary_frames_total{comfyui="8188"}')).toBe(4);
  });
});

describe('the queue', () => {
  it('counts running and pending prompts', async () => {
    const { comfy, value } = setup();
    const item = (n: number) => decodeQueueItem([n, `P${n}`, {}, {}, []])!;
    comfy.tracker.applyQueue(1000, [item(1)], [item(2), item(3)]);
    expect(await value('podscope_queue_jobs{comfyui="8188",state="running"}')).toBe(1);
    expect(await value('podscope_queue_jobs{comfyui="8188",state="pending"}')).toBe(2);
  });

  it('leaves the running job’s activity age out when no job runs', async () => {
    const { value } = setup();
    expect(await value('podscope_job_last_activity_age_seconds{comfyui="8188"}')).toBeUndefined();
  });

  it('gives the running job’s activity age in seconds', async () => {
    const { comfy, value } = setup();
    comfy.tracker.applyQueue(Date.now() - 5000, [decodeQueueItem([1, 'P1', {}, {}, []])!], []);
    const age = (await value('podscope_job_last_activity_age_seconds{comfyui="8188"}'))!;
    expect(age).toBeGreaterThanOrEqual(4.9);
    expect(age).toBeLessThan(60);
  });
});
