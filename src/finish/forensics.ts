/**
 * OOM forensics, a step of the finish pipeline: when a job dies of GPU out-of-memory, its error
 * gains the evidence on-call needs (the node, the GPU memory timeline around the failure and its
 * peak, ComfyUI's own memory view, the last log lines). A job lost because ComfyUI vanished mid-run
 * without logging an error is diagnosed as a probable system-RAM OOM kill, which logs nothing.
 *
 * It reads the finished job and the state around it, and says what it found; the job tracker
 * writes it into the job (`annotateError`, `diagnose`).
 */
import type { GpuReader } from '../state/gpu.js';
import type { LogReader } from '../state/logs.js';
import type { ComfyReader } from '../state/comfy.js';
import { isGpuOom, type JobError, type ReadonlyJob } from '../shared/job-types.js';
import { systemStatsView } from '../views/comfy.js';
import { iso } from '../format.js';
import type { XidEvent } from '../state/gpu.js';
import { xidSentence } from '../shared/xid-catalog.js';

export interface ForensicsSources {
  gpu: GpuReader | null;
  logs: LogReader;
  comfy: ComfyReader;
  /** The GPUs the job's instance runs on (uuids); undefined for every GPU of the pod. */
  scope?: ReadonlySet<string> | null;
}

/** What forensics found: evidence for the job's error, or the error a silent death points to. */
export type Finding = { kind: 'evidence'; forensics: Record<string, unknown> } | { kind: 'diagnosis'; error: JobError } | null;

function lastLines(logs: LogReader, job: ReadonlyJob, n: number): string[] {
  return logs.query({ lines: n, jobIds: new Set([job.job_id]), source: 'comfyui', instance: job.instance }).map((e) => e.value.message);
}

export function examine(job: ReadonlyJob, src: ForensicsSources, now: number): Finding {
  const at = job.finished_at ?? now;
  if (job.status === 'error' && isGpuOom(job)) {
    // The job's own run: the same window as the job's peak, so the two always agree.
    const from = job.started_at ?? at - 60_000;
    // Only the job's own GPUs: on a pod of several ComfyUIs the others' memory says nothing of it.
    const mine = (uuid: string) => !src.scope || src.scope.has(uuid);
    const points = (src.gpu ? src.gpu.timeline.select((p) => p.t >= from && p.t <= at, 240).map((e) => e.value) : []).map((p) => {
      const keep = p.uuids.map((u, i) => (mine(u) ? i : -1)).filter((i) => i >= 0);
      return { t: p.t, uuids: keep.map((i) => p.uuids[i]!), used_mb: keep.map((i) => (p.used_max_mb ?? p.used_mb)[i] ?? null), util: keep.map((i) => p.util[i] ?? null) };
    });
    let peak: number | null = job.usage?.peak_vram_mb ?? null;
    if (peak === null) for (const p of points) for (const mb of p.used_mb) if (mb !== null && (peak === null || mb > peak)) peak = mb;
    const error = job.error!;
    const node = error.node_id ? job.nodes.get(error.node_id) : undefined;
    return {
      kind: 'evidence',
      forensics: {
        kind: 'gpu_oom',
        node_id: error.node_id,
        class_type: error.class_type ?? node?.class_type ?? null,
        failed_at: iso(at),
        peak_vram_mb: peak,
        gpu_memory_timeline: points.map((p) => ({ t: iso(p.t), gpus: p.uuids, used_mb: p.used_mb, utilization_percent: p.util })),
        comfyui_system_stats: systemStatsView(src.comfy),
        last_log_lines: lastLines(src.logs, job, 20),
      },
    };
  }
  if (job.status === 'lost' && job.started_at !== null && !job.error) {
    const loggedError = src.logs.query({ lines: 1, jobIds: new Set([job.job_id]), level: 'error' }).length;
    if (/restarted|stopped|has not answered/.test(job.lost_reason ?? '') && loggedError === 0) {
      return {
        kind: 'diagnosis',
        error: {
          node_id: job.current_node,
          class_type: job.current_node ? (job.nodes.get(job.current_node)?.class_type ?? null) : null,
          exception_type: 'ProbableSystemRamOom',
          exception_message:
            'ComfyUI vanished while this job ran and logged no error. The usual cause is the kernel killing it for lack of system RAM: check the pod memory limit, and dmesg for an oom-kill.',
          traceback: [],
          forensics: { kind: 'ram_oom_probable', last_log_lines: lastLines(src.logs, job, 20), comfyui_system_stats: systemStatsView(src.comfy) },
        },
      };
    }
  }
  return null;
}

/** How long after a job's end an Xid may still be its GPU's report about it. */
const XID_SLACK_MS = 5000;

/**
 * The Xids the job's GPUs reported while it ran (and just after), each as a sentence: whose failure
 * it was, from NVIDIA's catalog. `scope` is the job's instance's GPUs (undefined: every GPU).
 */
export function xidsDuring(job: ReadonlyJob, xids: readonly XidEvent[], scope: ReadonlySet<string> | undefined | null, now: number): string[] {
  const from = job.started_at ?? job.first_seen_at;
  const to = (job.finished_at ?? now) + XID_SLACK_MS;
  return xids.filter((x) => x.at >= from && x.at <= to && (scope === undefined || (scope !== null && x.uuid !== null && scope.has(x.uuid)))).map((x) => xidSentence(x.index, x.xid, iso(x.at)!));
}
