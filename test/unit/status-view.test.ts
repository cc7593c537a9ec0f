/**
 * /debug/status as a view of the pod's state (views/status.ts): the one answer a harness polls,
 * its status from the same rule as /ready, the GPU ComfyUI uses, and the running job.
 */
import { describe, expect, it } from 'vitest';
import { statusView } from '../../src/views/status.js';
import { renderStatus } from '../../src/shared/text-views.js';
import { PodState } from '../../src/state/pod.js';
import { GpuState } from '../../src/state/gpu.js';
import { ComfyState } from '../../src/state/comfy.js';
import { loadConfig } from '../../src/config.js';
import { Scrubber } from '../../src/secrets.js';
import { decodeQueueItem } from '../../src/sources/comfy-events.js';
import { fixtureRows } from '../helpers/gpu-rows.js';

const T0 = Date.parse('2026-11-24T00:00:00Z');

/** A pod whose GPU part is `gpu`: by default none, GPU sampling off as on a pod without GPUs (nothing to wait for). */
function pod(gpu: GpuState | null = null) {
  const config = loadConfig({ RUNPOD_POD_ID: 'pod_abc', COMFYUI_URL: 'http://127.0.0.1:8188' });
  const comfy = new ComfyState(config.comfyuiUrl, { jobIdKey: 'job_id', historyLimit: 10 });
  const state = new PodState({ config, version: 't', scrubber: new Scrubber([]), env: {}, now: () => T0, parts: { comfy, gpu } });
  return { state, comfy };
}

/** A ComfyUI that answers. */
function up(comfy: ComfyState) {
  comfy.httpAnswered(T0 - 100);
  comfy.connected('podscope-test');
}

describe('status', () => {
  it('is starting while ComfyUI has not answered yet', () => {
    expect(statusView(pod().state).status).toBe('starting');
  });

  it('is idle when everything works and no job runs', () => {
    const { state, comfy } = pod();
    up(comfy);
    expect(statusView(state).status).toBe('idle');
  });

  it('is processing while a job runs, and shows that job', () => {
    const { state, comfy } = pod();
    up(comfy);
    comfy.tracker.applyQueue(T0 - 2000, [decodeQueueItem([1, 'P1', {}, { job_id: 'job-1' }, []])!], []);
    const v = statusView(state);
    expect(v.status).toBe('processing');
    expect(v.current_job).toMatchObject({ job_id: 'job-1', prompt_id: 'P1', elapsed_s: 2 });
    expect(v.queue).toEqual({ running: 1, pending: 0 });
  });

  it('is degraded by an error problem, which it lists with its component, code, time and severity', () => {
    const { state, comfy } = pod();
    up(comfy);
    state.health.raise('gpu', 'GPU_LOST', 'GPU 3 is lost');
    const v = statusView(state);
    expect(v.status).toBe('degraded');
    expect(v.problems).toEqual([{ component: 'gpu', code: 'GPU_LOST', message: 'GPU 3 is lost', since: '2026-11-24T00:00:00.000Z', severity: 'error' }]);
  });

  it('is degraded when ComfyUI stops answering after it had', () => {
    const { state, comfy } = pod();
    up(comfy);
    comfy.httpFailed(T0 - 50, 'connect ECONNREFUSED', true);
    expect(statusView(state).status).toBe('degraded');
  });

  it('agrees with /ready: ready exactly when idle or processing', () => {
    const { state, comfy } = pod();
    for (const step of [() => undefined, () => up(comfy), () => state.health.raise('host', 'DISK_NEARLY_FULL', 'full')]) {
      step();
      const status = statusView(state).status;
      expect(state.condition().ready).toBe(status === 'idle' || status === 'processing');
    }
  });
});

describe('GPUs', () => {
  it('names the first GPU that answers as the one ComfyUI uses, and lists them all', () => {
    const gpu = new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 10 });
    const { state } = pod(gpu);
    const [h] = fixtureRows('h200-x1.drv590.load');
    gpu.applySample(T0, [{ ...h!, index: 1, uuid: 'GPU-b', pci_bus_id: '00000000:84:00.0' }], [{ pci_bus_id: '0000:83:00.0', reason: 'Unable to determine the device handle for GPU0000:83:00.0: Unknown Error', index: 0 }]);
    const v = statusView(state);
    expect(v.gpus.map((g) => [g.index, g.lost])).toEqual([
      [0, true],
      [1, false],
    ]);
    expect(v.gpu?.uuid).toBe('GPU-b');
  });

  it('is null with no GPU list on a pod without GPU sampling', () => {
    const v = statusView(pod().state);
    expect(v.gpu).toBeNull();
    expect(v.gpus).toEqual([]);
  });
});

describe('the rest of the answer', () => {
  it('names the pod, says how ComfyUI is reached and when the answer was made', () => {
    const { state, comfy } = pod();
    up(comfy);
    const v = statusView(state);
    expect(v.pod_id).toBe('pod_abc');
    expect(v.comfyui).toMatchObject({ connected: true, url: 'http://127.0.0.1:8188', http_ok: true, websocket: true, tap: false });
    expect(v.sampled_at).toBe('2026-11-24T00:00:00.000Z');
    expect(v.current_job).toBeNull();
  });
});

describe('status of a pod with two ComfyUIs', () => {
  function two() {
    const config = loadConfig({ RUNPOD_POD_ID: 'pod_abc', COMFYUI_URLS: 'gpu0=http://127.0.0.1:8188,gpu1=http://127.0.0.1:8189', PODSCOPE_GPU: 'off' });
    const state = new PodState({ config, version: 't', scrubber: new Scrubber([]), env: {}, now: () => T0 });
    const [gpu0, gpu1] = state.instances.all as ComfyState[];
    return { state, gpu0: gpu0!, gpu1: gpu1! };
  }
  const graph = { '1': { class_type: 'A', inputs: {} }, '2': { class_type: 'SaveImage', inputs: { images: ['1', 0] } } };
  const running = (comfy: ComfyState, id: string, at: number) => comfy.tracker.applyQueue(at, [decodeQueueItem([1, id, graph, { job_id: `job-${id}` }, ['2']])!], []);

  it('lists each instance with its condition, and is degraded while one is down', () => {
    const { state, gpu0, gpu1 } = two();
    up(gpu0);
    gpu1.httpAnswered(T0 - 5000);
    gpu1.connected('podscope-test');
    gpu1.disconnected(T0 - 1000, 'closed');
    gpu1.httpFailed(T0 - 1000, 'connect ECONNREFUSED 127.0.0.1:8189', true);
    const s = statusView(state);
    expect(s.instances.map((i) => [i.name, i.status, i.connected])).toEqual([
      ['gpu0', 'idle', true],
      ['gpu1', 'degraded', false],
    ]);
    expect(s.status).toBe('degraded');
    expect(state.condition('gpu0').ready).toBe(true);
    expect(state.condition().checks.comfyui).toMatch(/^gpu1: ComfyUI at http:\/\/127\.0\.0\.1:8189 does not answer/);
  });

  it('shows every running job in current_jobs, the one that started first as current_job, and the queues summed', () => {
    const { state, gpu0, gpu1 } = two();
    up(gpu0);
    up(gpu1);
    running(gpu1, 'B', T0 - 3000);
    running(gpu0, 'A', T0 - 1000);
    const s = statusView(state);
    expect(s.current_jobs.map((j) => `${j.instance}:${j.job_id}`)).toEqual(['gpu1:job-B', 'gpu0:job-A']);
    expect(s.current_job?.job_id).toBe('job-B');
    expect(s.queue).toEqual({ running: 2, pending: 0 });
    expect(s.status).toBe('processing');
    expect(s.comfyui.url).toBe('http://127.0.0.1:8188');
  });

  it('says an instance’s GPUs are unknown, and why, when nothing names them', () => {
    const { state, gpu0 } = two();
    up(gpu0);
    const row = statusView(state).instances[0]!;
    expect(row.gpus).toBeNull();
    expect(row).toMatchObject({ gpus_unknown_reason: expect.stringMatching(/not answered \/system_stats/) });
  });

  it('reads, as text, as one row per instance and each current job with its instance', () => {
    const { state, gpu0, gpu1 } = two();
    up(gpu0);
    up(gpu1);
    running(gpu1, 'B', T0 - 3000);
    const text = renderStatus(JSON.parse(JSON.stringify(statusView(state))));
    expect(text).toMatch(/^COMFYUI\s+STATUS\s+GPU\s+VERSION\s+RUN\+WAIT\s+CURRENT JOB\s+URL$/m);
    expect(text).toMatch(/^gpu0\s+idle\s+\?\s+-\s+0\+0\s+-\s+http:\/\/127\.0\.0\.1:8188$/m);
    expect(text).toMatch(/^gpu1\s+processing\s+\?\s+-\s+1\+0\s+job-B \S+%\s+http:\/\/127\.0\.0\.1:8189$/m);
    expect(text).toMatch(/^current job job-B \(prompt B\) on gpu1$/m);
  });
});
