/**
 * The finish pipeline: what happens when a job reaches its outcome, as one ordered list of steps.
 *
 * The job tracker hands every outcome here (once, and again with `refined` when ComfyUI's record
 * later turns a job podscope called lost into its real outcome). Each step sees the job read-only;
 * a step that learns something about it (its GPU use, forensics) tells the tracker, which writes
 * it, so the steps after it read the complete job. The order is the story of a finished job, and
 * main.ts composes it in one place. A step that throws is reported and the next one still runs.
 */
import type { ComfyState } from '../state/comfy.js';
import type { GpuUse } from '../state/instance-gpus.js';
import type { ReadonlyJob } from '../shared/job-types.js';
import { measureUsage } from '../views/comfy.js';
import { examine, xidsDuring, type ForensicsSources } from './forensics.js';

export interface FinishStep {
  /** What the step does, in a few words; named when it fails. */
  readonly name: string;
  run(job: ReadonlyJob, refined: boolean): void;
}

export class FinishPipeline {
  constructor(
    private readonly steps: readonly FinishStep[],
    private readonly onError: (step: string, job: ReadonlyJob, err: unknown) => void,
  ) {}

  /** Runs every step, in order, on one finished job. */
  readonly run = (job: ReadonlyJob, refined: boolean): void => {
    for (const step of this.steps) {
      try {
        step.run(job, refined);
      } catch (err) {
        this.onError(step.name, job, err);
      }
    }
  };
}

/** Attribution: the job's GPU-seconds, busy seconds and peak VRAM over its own run on its instance's GPUs, recorded in the job. */
export function attributionStep(comfy: ComfyState, use: GpuUse): FinishStep {
  return {
    name: 'attribute its GPU use',
    run: (job) => {
      if (job.finished_at !== null && use.gpu) comfy.tracker.recordUsage(job.prompt_id, measureUsage(job, use, job.finished_at));
    },
  };
}

/** Forensics: the evidence of an OOM on the job's error, or the diagnosis of a silent death. */
export function forensicsStep(comfy: ComfyState, sources: Omit<ForensicsSources, 'comfy' | 'scope'>, now: () => number, use?: GpuUse): FinishStep {
  return {
    name: 'explain how it died',
    run: (job) => {
      const finding = examine(job, { ...sources, comfy, scope: use?.scopeOf(job.instance) }, now());
      if (finding?.kind === 'evidence') comfy.tracker.annotateError(job.prompt_id, { forensics: finding.forensics });
      else if (finding?.kind === 'diagnosis') comfy.tracker.diagnose(job.prompt_id, finding.error);
    },
  };
}

/** The GPU's own fault reports: Xids its GPUs sent while a job that failed ran, on its error. */
export function xidStep(comfy: ComfyState, use: GpuUse, now: () => number): FinishStep {
  return {
    name: "note its GPU's fault reports",
    run: (job) => {
      if (job.status === 'success' || !use.gpu) return;
      const found = xidsDuring(job, use.gpu.xids(), use.scopeOf(job.instance), now());
      if (found.length > 0) comfy.tracker.annotateError(job.prompt_id, { gpu_xids: found });
    },
  };
}
