/**
 * /debug/workflow (contract 2.4) and /debug/queue (contract 2.6).
 */
import type { ComfyReader } from '../state/comfy.js';
import type { NodeStatus } from '../shared/job-types.js';
import type { GpuUse } from '../state/instance-gpus.js';
import { iso } from '../format.js';
import { isFinal, type ReadonlyJob } from '../shared/job-types.js';
import { jobIdentity, jobUsage, PROGRESS_UNKNOWN } from './comfy.js';
import type { JobsAnswer, QueueAnswer, WorkflowAnswer } from '../shared/api-schema.js';


/** Why a node has no duration: it has not run, is running, did not run at all, or a time was not seen. */
function durationUnknown(status: NodeStatus, startedAt: number | null): string {
  switch (status) {
    case 'pending':
      return 'not started yet';
    case 'running':
      return startedAt === null ? 'running; its start was not seen' : 'still running';
    case 'cached':
      return 'cached: ComfyUI reused an earlier result and did not run it';
    case 'skipped':
      return 'never ran';
    default:
      return startedAt === null ? 'its start was not seen (without the tap node ComfyUI reports no time per node)' : 'its end was not seen';
  }
}

export function workflowView(comfy: ComfyReader, use: GpuUse, job: ReadonlyJob, now: number): WorkflowAnswer {
  const s = comfy.tracker.snapshot(job);
  const usage = jobUsage(job, use, now);
  const end = job.finished_at ?? now;
  return {
    ...jobIdentity(job),
    trace_id: s.trace_id,
    client_id: s.client_id,
    status: s.status,
    progress_percent: s.progress,
    ...(s.progress === null ? { progress_unknown_reason: PROGRESS_UNKNOWN } : {}),
    nodes_total: s.nodes_total,
    nodes_completed: s.nodes_completed,
    nodes: s.nodes.map((n) => ({
      id: `${n.class_type}_${n.node_id}`,
      node_id: n.node_id,
      class_type: n.class_type,
      title: n.title,
      status: n.status,
      progress: n.total !== null ? { steps: n.steps ?? 0, total: n.total } : null,
      started_at: iso(n.started_at),
      finished_at: iso(n.finished_at),
      duration_ms: n.started_at !== null && n.finished_at !== null ? Math.max(0, n.finished_at - n.started_at) : null,
      ...(n.started_at !== null && n.finished_at !== null ? {} : { duration_unknown_reason: durationUnknown(n.status, n.started_at) }),
      timing: n.timing,
      ...(n.peak_vram_bytes !== null ? { peak_vram_mb: Math.round(n.peak_vram_bytes / 1024 / 1024) } : {}),
      ...(n.needed ? {} : { needed: false }),
    })),
    error: s.error,
    queued_at: iso(s.queued_at),
    first_seen_at: iso(s.first_seen_at),
    started_at: iso(s.started_at),
    started_timing: s.started_timing,
    finished_at: iso(s.finished_at),
    finished_timing: s.finished_timing,
    duration_s: s.started_at !== null ? Math.round((end - s.started_at) / 100) / 10 : null,
    gpu_seconds: usage?.gpu_seconds ?? null,
    busy_gpu_seconds: usage?.busy_gpu_seconds ?? null,
    peak_vram_mb: usage?.peak_vram_mb ?? null,
    lost_reason: s.lost_reason,
    retry_of: s.retry_of,
    outputs: s.outputs.length,
    sources: s.source,
    last_activity_at: iso(s.last_activity),
    sampled_at: iso(now),
  };
}

function queueJob(job: ReadonlyJob) {
  return {
    ...jobIdentity(job),
    number: job.number,
    client_id: job.client_id,
    status: job.status,
    queued_at: iso(job.queued_at),
    first_seen_at: iso(job.first_seen_at),
    started_at: iso(job.started_at),
    nodes_total: [...job.nodes.values()].filter((n) => n.needed).length,
    extra_data: job.extra,
  };
}

/**
 * /debug/queue over the instances given (every one, or the one `?instance=` names): each instance's
 * running and pending prompts in its own execution order, positions counted within its queue.
 */
export function queueView(instances: readonly ComfyReader[], now: number): QueueAnswer {
  const running: Array<ReturnType<typeof queueJob>> = [];
  const pending: Array<ReturnType<typeof queueJob> & { position: number }> = [];
  const rejected: QueueAnswer['rejected'] = [];
  let remaining = 0;
  let asOf: number | null = null;
  for (const comfy of instances) {
    const order = comfy.tracker.queueOrder();
    const pick = (ids: string[]) => ids.map((id) => comfy.tracker.get(id)).filter((j): j is ReadonlyJob => j !== undefined);
    running.push(...pick(order.running).map(queueJob));
    pending.push(...pick(order.pending).map((j, i) => ({ ...queueJob(j), position: i + 1 })));
    remaining += comfy.queueRemaining ?? order.running.length + order.pending.length;
    for (const r of comfy.rejections) rejected.push({ at: iso(r.at), instance: comfy.name, job_id: r.job_id, prompt_id: r.prompt_id, reasons: r.reasons, lines: r.lines, source: r.source });
    const t = comfy.tracker.updatedAt ?? comfy.lastHttpOkAt;
    if (t !== null && (asOf === null || t > asOf)) asOf = t;
  }
  rejected.sort((a, b) => a.at.localeCompare(b.at));
  return {
    running,
    pending,
    queue_remaining: remaining,
    rejected,
    // The time of the newest fact this answer holds (a /queue poll, a frame), so answers can be ordered.
    as_of: iso(asOf) ?? iso(now),
    sampled_at: iso(now),
  };
}

/** One remembered job as /debug/jobs lists it: outcome, times, GPU use and the error in brief. */
function jobSummary(use: GpuUse, job: ReadonlyJob, now: number) {
  const usage = jobUsage(job, use, now);
  const end = job.finished_at ?? now;
  const e = job.error;
  return {
    ...jobIdentity(job),
    status: job.status,
    queued_at: iso(job.queued_at),
    started_at: iso(job.started_at),
    finished_at: iso(job.finished_at),
    duration_s: job.started_at !== null ? Math.round((end - job.started_at) / 100) / 10 : null,
    gpu_seconds: usage?.gpu_seconds ?? null,
    peak_vram_mb: usage?.peak_vram_mb ?? null,
    nodes_total: [...job.nodes.values()].filter((n) => n.needed).length,
    outputs: job.outputs.length,
    error: e ? { node_id: e.node_id, class_type: e.class_type, exception_type: e.exception_type, message: e.exception_message.split('\n')[0]!.slice(0, 300), ...(e.oom === true ? { oom: true as const } : {}) } : null,
    lost_reason: job.lost_reason,
  };
}

/**
 * /debug/jobs: the jobs podscope remembers, unfinished ones first, then the finished newest
 * first, each by its own times (a job read from ComfyUI's history sorts by when it ended, not by
 * when podscope read it).
 */
export function jobsView(instances: readonly ComfyReader[], use: GpuUse, now: number, opts: { status?: string; limit: number }): JobsAnswer {
  const key = (j: ReadonlyJob) => (isFinal(j.status) ? (j.finished_at ?? j.started_at ?? j.queued_at ?? j.first_seen_at) : Number.POSITIVE_INFINITY);
  const jobs = instances
    .flatMap((comfy) => comfy.tracker.all())
    .filter((j) => opts.status === undefined || j.status === opts.status || (opts.status === 'finished' && isFinal(j.status)))
    .sort((a, b) => key(b) - key(a) || b.first_seen_at - a.first_seen_at);
  return {
    jobs: jobs.slice(0, opts.limit).map((j) => jobSummary(use, j, now)),
    total: jobs.length,
    sampled_at: iso(now),
  };
}
