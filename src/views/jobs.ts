/**
 * /debug/workflow (contract 2.4) and /debug/queue (contract 2.6).
 */
import type { ComfyState } from '../state/comfy.js';
import type { Job, JobSnapshot } from '../state/jobs.js';
import { iso } from '../format.js';


export function workflowView(comfy: ComfyState, job: Job, now: number) {
  const s: JobSnapshot = comfy.tracker.snapshot(job);
  const usage = job.usage ?? comfy.usageFor(job, now);
  const end = job.finished_at ?? now;
  return {
    job_id: s.job_id,
    prompt_id: s.prompt_id,
    trace_id: s.trace_id,
    client_id: s.client_id,
    status: s.status,
    progress_percent: s.progress,
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
      duration_ms: n.started_at !== null && n.finished_at !== null ? Math.max(0, n.finished_at - n.started_at) : null,
      ...(n.needed ? {} : { needed: false }),
    })),
    error: s.error,
    queued_at: iso(s.queued_at),
    started_at: iso(s.started_at),
    finished_at: iso(s.finished_at),
    duration_s: s.started_at !== null ? Math.round((end - s.started_at) / 100) / 10 : null,
    gpu_seconds: usage?.gpu_seconds ?? null,
    busy_gpu_seconds: usage?.busy_gpu_seconds ?? null,
    peak_vram_mb: usage?.peak_vram_mb ?? null,
    lost_reason: s.lost_reason,
    outputs: s.outputs.length,
    sources: s.source,
    last_activity_at: iso(s.last_activity),
  };
}

function queueJob(job: Job) {
  return {
    job_id: job.job_id,
    prompt_id: job.prompt_id,
    number: job.number,
    client_id: job.client_id,
    status: job.status,
    queued_at: iso(job.queued_at),
    started_at: iso(job.started_at),
    nodes_total: [...job.nodes.values()].filter((n) => n.needed).length,
    extra_data: job.extra,
  };
}

export function queueView(comfy: ComfyState, now: number) {
  const order = comfy.tracker.queueOrder();
  const pick = (ids: string[]) => ids.map((id) => comfy.tracker.get(id)).filter((j): j is Job => j !== undefined);
  return {
    running: pick(order.running).map(queueJob),
    pending: pick(order.pending).map((j, i) => ({ ...queueJob(j), position: i + 1 })),
    queue_remaining: comfy.queueRemaining ?? order.running.length + order.pending.length,
    rejected: comfy.rejections.map((r) => ({ at: iso(r.at), message: r.message, lines: r.lines })),
    as_of: iso(comfy.lastHttpOkAt) ?? iso(now),
  };
}
