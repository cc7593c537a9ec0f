/**
 * A job's progress and the memory it holds, both computed from its nodes.
 */
import { isFinal, type Job } from '../shared/job-types.js';
import { done } from './job-nodes.js';

/** A running job's progress stays below this until ComfyUI reports its outcome. */
export const RUNNING_PROGRESS_CAP = 94;

/**
 * Progress from the work done: each needed node weighs the steps it runs (its ProgressBar's
 * total, else the `steps` input in the graph), 1 without steps; a running node counts its step
 * fraction. Unknown (null) until the graph is known; below {@link RUNNING_PROGRESS_CAP} until
 * the outcome; 100 on success; never lower than before.
 */
export function recompute(job: Job): void {
  if (job.status === 'success') {
    job.progress = 100;
    return;
  }
  if (!job.graph_known || isFinal(job.status)) return;
  let total = 0;
  let work = 0;
  for (const n of job.nodes.values()) {
    if (!n.needed) continue;
    const planned = n.total !== null && n.total > 1 ? n.total : (n.planned_steps ?? 1);
    total += planned;
    if (done(n.status)) work += planned;
    else if (n.status === 'running' && n.steps !== null) work += planned * Math.min(1, n.steps / planned);
  }
  if (total === 0) return;
  const pct = Math.min(RUNNING_PROGRESS_CAP, Math.floor((work / total) * 1000) / 10);
  job.progress = Math.max(job.progress ?? 0, pct);
}

/**
 * Bytes a job holds, estimated: strings at two bytes a character, a fixed cost per job and per
 * node, outputs and the error by their JSON size.
 */
export function estimateBytes(job: Job): number {
  let bytes = 600 + 2 * (job.prompt_id.length + job.job_id.length) + 2 * JSON.stringify(job.extra).length;
  for (const n of job.nodes.values()) bytes += 220 + 2 * (n.class_type.length + (n.title?.length ?? 0));
  if (job.error) bytes += 2 * JSON.stringify(job.error).length;
  for (const o of job.outputs) bytes += 64 + 2 * JSON.stringify(o.ui).length;
  return bytes;
}
