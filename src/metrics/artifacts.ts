/**
 * Artifact and OOM metrics: outputs produced by kind, and jobs that failed for lack of memory.
 */
import { Counter, type Registry } from 'prom-client';
import type { ArtifactLedger } from '../state/artifacts.js';
import type { ComfyState } from '../state/comfy.js';
import { isGpuOom } from '../state/forensics.js';
import { readFamily } from './registry.js';

export function registerArtifactMetrics(registry: Registry, ledger: ArtifactLedger, comfy: ComfyState): void {
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
  comfy.tracker.onFinish((job, refined) => {
    if (refined) return;
    if (job.status === 'error' && isGpuOom(job)) oom.inc({ kind: 'gpu' });
    else if (job.error?.exception_type === 'ProbableSystemRamOom') oom.inc({ kind: 'ram_probable' });
  });
}
