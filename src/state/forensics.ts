/**
 * OOM forensics: when a job dies of GPU out-of-memory, its error gains the evidence on-call needs
 * (the node, the GPU memory timeline around the failure and its peak, ComfyUI's own memory view,
 * the last log lines). A job lost because ComfyUI vanished mid-run without logging an error is
 * reported as a probable system-RAM OOM kill, which logs nothing.
 */
import type { GpuState } from './gpu.js';
import type { Job } from './jobs.js';
import type { LogStore } from './logs.js';
import type { ComfyState } from './comfy.js';
import { isOomText } from '../shared/log-levels.js';

export function isGpuOom(job: Job): boolean {
  const e = job.error;
  if (!e) return false;
  return /OutOfMemoryError/.test(e.exception_type) || isOomText(e.exception_message) || e.oom === true;
}

export interface ForensicsSources {
  gpu: GpuState | null;
  logs: LogStore | null;
  comfy: ComfyState;
}

function lastLines(logs: LogStore | null, job: Job, n: number): string[] {
  if (!logs) return [];
  const ids = new Set([job.job_id]);
  return logs.query({ lines: n, jobIds: ids, source: 'comfyui' }).map((e) => e.value.message);
}

export function attachForensics(job: Job, src: ForensicsSources, now: number): void {
  const at = job.finished_at ?? now;
  if (job.status === 'error' && isGpuOom(job)) {
    // The job's own run: the same window as the job's peak, so the two always agree.
    const from = job.started_at ?? at - 60_000;
    const points = src.gpu ? src.gpu.timeline.select((p) => p.t >= from && p.t <= at, 240).map((e) => e.value) : [];
    let peak: number | null = job.usage?.peak_vram_mb ?? null;
    if (peak === null) for (const p of points) for (const mb of p.used_mb) if (mb !== null && (peak === null || mb > peak)) peak = mb;
    const node = job.error!.node_id ? job.nodes.get(job.error!.node_id) : undefined;
    job.error!.forensics = {
      kind: 'gpu_oom',
      node_id: job.error!.node_id,
      class_type: job.error!.class_type ?? node?.class_type ?? null,
      failed_at: new Date(at).toISOString(),
      peak_vram_mb: peak,
      gpu_memory_timeline: points.map((p) => ({ t: new Date(p.t).toISOString(), used_mb: p.used_mb, utilization_percent: p.util })),
      comfyui_system_stats: src.comfy.systemStats(),
      last_log_lines: lastLines(src.logs, job, 20),
    };
    return;
  }
  if (job.status === 'lost' && job.started_at !== null && !job.error) {
    const lines = lastLines(src.logs, job, 20);
    const loggedError = src.logs?.query({ lines: 1, jobIds: new Set([job.job_id]), level: 'error' }).length ?? 0;
    if (/restarted|stopped|has not answered/.test(job.lost_reason ?? '') && loggedError === 0) {
      job.error = {
        node_id: job.current_node,
        class_type: job.current_node ? (job.nodes.get(job.current_node)?.class_type ?? null) : null,
        exception_type: 'ProbableSystemRamOom',
        exception_message:
          'ComfyUI vanished while this job ran and logged no error. The usual cause is the kernel killing it for lack of system RAM: check the pod memory limit, and dmesg for an oom-kill.',
        traceback: [],
        forensics: { kind: 'ram_oom_probable', last_log_lines: lines, comfyui_system_stats: src.comfy.systemStats() },
      };
    }
  }
}
