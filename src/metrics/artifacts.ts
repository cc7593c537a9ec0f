/**
 * Artifact and OOM metrics: outputs produced by kind, and jobs that failed for lack of memory.
 */
import { Counter, type Registry } from 'prom-client';
import type { ArtifactReader } from '../state/artifacts.js';
import { isGpuOom, type ReadonlyJob } from '../shared/job-types.js';
import { readFamily } from './registry.js';

/** Registers the families; returns the finish pipeline's step that counts a finished job's OOM. */
export function registerArtifactMetrics(registry: Registry, ledger: ArtifactReader): { jobFinished(job: ReadonlyJob, refined: boolean): void } {
  readFamily(registry, 'podscope_artifacts_produced_total', 'Outputs written by finished jobs (cached replays not counted), by kind (image, animated, video, audio, 3d, …).', 'counter', (out) => {
    for (const [kind, n] of ledger.producedByKind) out.push({ labels: { kind }, value: n });
  });
  const oom = new Counter({
    name: 'podscope_oom_failures_total',
    help: 'Jobs that failed for lack of memory: kind="gpu" (torch OutOfMemoryError) or kind="ram_probable" (ComfyUI vanished mid-job, logging nothing).',
    labelNames: ['kind'],
    registers: [registry],
  });
  oom.inc({ kind: 'gpu' }, 0);
  oom.inc({ kind: 'ram_probable' }, 0);
  return {
    jobFinished(job, refined) {
      if (refined) return;
      if (job.status === 'error' && isGpuOom(job)) oom.inc({ kind: 'gpu' });
      else if (job.error?.exception_type === 'ProbableSystemRamOom') oom.inc({ kind: 'ram_probable' });
    },
  };
}
