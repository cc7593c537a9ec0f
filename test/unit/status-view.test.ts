/**
 * /debug/status as a view of the pod's state (views/status.ts): the one answer a harness polls,
 * its status from the same rule as /ready, the GPU ComfyUI uses, and the running job.
 */
import { describe, expect, it } from 'vitest';
import { statusView } from '../../src/views/status.js';
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
