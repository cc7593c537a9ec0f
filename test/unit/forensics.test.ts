import { describe, expect, it } from 'vitest';
import { gpuUse } from '../helpers/gpu-use.js';
import { attributionStep, FinishPipeline, forensicsStep } from '../../src/finish/pipeline.js';
import { ComfyState } from '../../src/state/comfy.js';
import { LogStore } from '../../src/state/logs.js';
import { GpuState } from '../../src/state/gpu.js';
import { decodeHistoryEntry } from '../../src/sources/comfy-events.js';
import { gpuRows } from '../helpers/gpu-rows.js';

const T0 = 1_700_000_000_000;

/** One GPU whose used memory is `mb(second)` at each second from T0. */
function gpuWith(mb: (s: number) => number, seconds: number): GpuState {
  const gpu = new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: 1, timelineCapacity: 1000 });
  for (let s = 0; s <= seconds; s++) gpu.applySample(T0 + s * 1000, gpuRows(1, { memory_used_mb: mb(s) }));
  return gpu;
}

/** ComfyUI's record of job J: its KSampler ran out of GPU memory, from second 10 to 20. */
function oomFromSecond10To20(comfy: ComfyState): void {
  const oom = { exception_type: 'torch.OutOfMemoryError', exception_message: 'Allocation on device ', node_id: '3', node_type: 'KSampler', traceback: [], executed: [], current_inputs: {}, current_outputs: [] };
  comfy.tracker.applyHistory(
    T0 + 20_500,
    decodeHistoryEntry('P', {
      prompt: [1, 'P', { '3': { class_type: 'KSampler', inputs: {} } }, { job_id: 'J' }, ['3']],
      outputs: {},
      status: { status_str: 'error', completed: false, messages: [['execution_start', { timestamp: T0 + 10_000 }], ['execution_error', { ...oom, timestamp: T0 + 20_000 }]] },
    })!,
  );
}

describe('OOM forensics', () => {
  it("takes the job's own run as its window, so its peak is the job's peak", () => {
    // An earlier job peaked at 90 GB at second 3; this one ran from second 10 to 20 and peaked at 40 GB.
    const gpu = gpuWith((s) => (s === 3 ? 90_000 : s >= 10 ? 30_000 + (s - 10) * 1000 : 10_000), 20);
    const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 10 });
    const logs = new LogStore(100, 1024 * 1024);
    const steps = [attributionStep(comfy, gpuUse(gpu, comfy)), forensicsStep(comfy, { gpu, logs }, () => T0 + 20_500)];
    comfy.tracker.finishWith(new FinishPipeline(steps, (step, _job, err) => expect.fail(`${step}: ${String(err)}`)).run);
    oomFromSecond10To20(comfy);
    const job = comfy.tracker.get('J')!;
    const forensics = job.error!.forensics as { peak_vram_mb: number; gpu_memory_timeline: Array<{ t: string }> };
    expect(job.usage!.peak_vram_mb).toBe(40_000);
    expect(forensics.peak_vram_mb).toBe(40_000);
    for (const p of forensics.gpu_memory_timeline) expect(Date.parse(p.t)).toBeGreaterThanOrEqual(T0 + 10_000);
  });

  it("shows only its instance's GPU on a pod of several ComfyUIs", () => {
    // Two GPUs: the job's (GPU-b, pinned by --cuda-device 1) and another instance's at 90 GB.
    const gpu = new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: 2, timelineCapacity: 1000 });
    const rows = gpuRows(2);
    for (let s = 0; s <= 20; s++) gpu.applySample(T0 + s * 1000, [{ ...rows[0]!, uuid: 'GPU-a', memory_used_mb: 90_000 }, { ...rows[1]!, uuid: 'GPU-b', memory_used_mb: 20_000 + s * 1000 }]);
    const comfy = new ComfyState('http://127.0.0.1:8189', { name: 'gpu1', jobIdKey: 'job_id', historyLimit: 10 });
    const other = new ComfyState('http://127.0.0.1:8188', { name: 'gpu0', jobIdKey: 'job_id', historyLimit: 10 });
    comfy.systemStatsRead(T0, { system: { argv: ['main.py', '--cuda-device', '1'] }, devices: [] });
    const use = gpuUse(gpu, other, comfy);
    const logs = new LogStore(100, 1024 * 1024);
    comfy.tracker.finishWith(new FinishPipeline([attributionStep(comfy, use), forensicsStep(comfy, { gpu, logs }, () => T0 + 20_500, use)], (step, _job, err) => expect.fail(`${step}: ${String(err)}`)).run);
    oomFromSecond10To20(comfy);
    const forensics = comfy.tracker.get('J')!.error!.forensics as { peak_vram_mb: number; gpu_memory_timeline: Array<{ gpus: string[]; used_mb: number[] }> };
    expect(forensics.peak_vram_mb).toBe(40_000);
    expect(new Set(forensics.gpu_memory_timeline.flatMap((p) => p.gpus))).toEqual(new Set(['GPU-b']));
  });
});
