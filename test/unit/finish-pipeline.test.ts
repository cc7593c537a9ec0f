/**
 * The finish pipeline (finish/pipeline.ts): one ordered list of steps a finished job runs through,
 * each seeing the job read-only and telling the job tracker what it learned.
 */
import { describe, expect, it } from 'vitest';
import { gpuUse } from '../helpers/gpu-use.js';
import { attributionStep, FinishPipeline, type FinishStep } from '../../src/finish/pipeline.js';
import { ComfyState } from '../../src/state/comfy.js';
import { GpuState } from '../../src/state/gpu.js';
import { decodeQueueItem } from '../../src/sources/comfy-events.js';
import type { ReadonlyJob } from '../../src/shared/job-types.js';
import { gpuRows } from '../helpers/gpu-rows.js';

const T0 = 1_700_000_000_000;

/** A tracker with one job, started at T0 and finished 10 s later, run through `steps`. */
function finishOne(steps: FinishStep[], onError: (step: string, job: ReadonlyJob, err: unknown) => void = () => undefined) {
  const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 10 });
  comfy.tracker.finishWith(new FinishPipeline(steps, onError).run);
  comfy.tracker.applyQueue(T0, [decodeQueueItem([1, 'P', {}, { job_id: 'J' }, []])!], []);
  comfy.tracker.apply(T0 + 10_000, { type: 'execution_success', prompt_id: 'P', ts: T0 + 10_000 });
  return comfy;
}

describe('the finish pipeline', () => {
  it('runs every step once, in its order, with the finished job', () => {
    const seen: string[] = [];
    finishOne(['first', 'second', 'third'].map((name) => ({ name, run: (job: ReadonlyJob) => seen.push(`${name}:${job.job_id}:${job.status}`) })));
    expect(seen).toEqual(['first:J:success', 'second:J:success', 'third:J:success']);
  });

  it('reports a step that throws, by name, and still runs the steps after it', () => {
    const errors: string[] = [];
    const seen: string[] = [];
    finishOne(
      [
        { name: 'breaks', run: () => { throw new Error('boom'); } },
        { name: 'goes on', run: () => seen.push('goes on') },
      ],
      (step, job, err) => errors.push(`${step} on ${job.job_id}: ${(err as Error).message}`),
    );
    expect(errors).toEqual(['breaks on J: boom']);
    expect(seen).toEqual(['goes on']);
  });

  it('lets a step see what an earlier step recorded through the tracker: the job’s GPU use', () => {
    const gpu = new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: 1, timelineCapacity: 100 });
    for (let s = 0; s <= 10; s++) gpu.applySample(T0 + s * 1000, gpuRows(1, { memory_used_mb: 1000 + s * 100 }));
    const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 10 });
    let seenByLater: ReadonlyJob['usage'] | undefined;
    const steps = [attributionStep(comfy, gpuUse(gpu, comfy)), { name: 'reads', run: (job: ReadonlyJob) => (seenByLater = job.usage) }];
    comfy.tracker.finishWith(new FinishPipeline(steps, (step) => expect.fail(step)).run);
    comfy.tracker.applyQueue(T0, [decodeQueueItem([1, 'P', {}, { job_id: 'J' }, []])!], []);
    comfy.tracker.apply(T0 + 10_000, { type: 'execution_success', prompt_id: 'P', ts: T0 + 10_000 });
    expect(seenByLater).toEqual({ gpu_seconds: 10, busy_gpu_seconds: expect.any(Number), peak_vram_mb: 2000 });
    expect(comfy.tracker.get('J')!.usage).toEqual(seenByLater);
  });
});

describe('the job tracker and its finish pipeline', () => {
  it('takes one pipeline, set once', () => {
    const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 10 });
    comfy.tracker.finishWith(() => undefined);
    expect(() => comfy.tracker.finishWith(() => undefined)).toThrow(/already has its finish pipeline/);
  });

  it('gives a job that ended without an error the diagnosis, and never replaces an error it has', () => {
    const comfy = finishOne([]);
    const diagnosis = { node_id: null, class_type: null, exception_type: 'ProbableSystemRamOom', exception_message: 'vanished', traceback: [] };
    comfy.tracker.diagnose('P', diagnosis);
    expect(comfy.tracker.get('J')!.error).toMatchObject({ exception_type: 'ProbableSystemRamOom' });
    comfy.tracker.diagnose('P', { ...diagnosis, exception_type: 'Other' });
    expect(comfy.tracker.get('J')!.error).toMatchObject({ exception_type: 'ProbableSystemRamOom' });
  });

  it('shows readers a new version after a step records something', () => {
    const comfy = finishOne([]);
    const before = comfy.tracker.version;
    comfy.tracker.recordUsage('P', { gpu_seconds: 1, busy_gpu_seconds: 1, peak_vram_mb: null });
    expect(comfy.tracker.version).toBeGreaterThan(before);
  });
});
