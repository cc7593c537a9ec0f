/**
 * A job's nodes, as ComfyUI's events move them: pending → running → completed (or cached, error,
 * interrupted, skipped). The job tracker calls these; they change only the job they are given.
 *
 * A node never seen running gets no times: they are unknown. ComfyUI's own times replace ones
 * podscope observed for the same moment.
 */
import type { ErrorInfo, ProgressNode } from '../shared/comfy-event-types.js';
import type { Job, JobNode, NodeStatus, TimeSource } from '../shared/job-types.js';

/** A node's summary timing: ComfyUI's when every time it has is, observed when one is podscope's. */
export function retime(node: JobNode): void {
  const times = [node.started_at !== null ? node.start_timing : null, node.finished_at !== null ? node.end_timing : null].filter((t) => t !== null);
  node.timing = times.length === 0 ? null : times.every((t) => t === 'comfyui') ? 'comfyui' : 'observed';
}

/**
 * Keeps the times podscope observed for a job's nodes inside the job's run as ComfyUI timed it: a
 * frame is received a moment after ComfyUI sends it, so an observed end can land a millisecond
 * past the job's end on ComfyUI's clock. ComfyUI's own times are left as they are.
 */
export function keepNodesInsideRun(job: Job): void {
  const from = job.started_timing === 'comfyui' ? job.started_at : null;
  const to = job.finished_timing === 'comfyui' ? job.finished_at : null;
  for (const node of job.nodes.values()) {
    const clamp = (t: number | null, timing: TimeSource | null) => (t === null || timing === 'comfyui' ? t : Math.min(Math.max(t, from ?? t), to ?? t));
    node.started_at = clamp(node.started_at, node.start_timing);
    node.finished_at = clamp(node.finished_at, node.end_timing);
  }
}

/** Whether a node's work is done: it ran to its end, or its output came from the cache. */
export const done = (s: NodeStatus) => s === 'completed' || s === 'cached';

/**
 * Whether a tqdm bar of `total` steps can be this running node's: its ProgressBar or its `steps`
 * input says that many, or nothing says otherwise and it is a sampler. A SaveImage that started
 * while the sampler's last line was still on its way is not.
 */
export function ownsBar(node: JobNode, total: number): boolean {
  if (node.total !== null && node.total > 1) return node.total === total;
  if (node.planned_steps !== null) return node.planned_steps === total;
  return /sampler/i.test(node.class_type);
}


export function markStarted(job: Job, t: number, timing: TimeSource): void {
  if (job.status === 'queued') job.status = 'running';
  if (job.started_at === null || (timing === 'comfyui' && job.started_timing !== 'comfyui')) {
    job.started_at = t;
    job.started_timing = timing;
  }
  if (job.queued_at !== null && job.queued_at > job.started_at) job.queued_at = job.started_at;
}

/** `progress`: one ProgressBar tick of a node (it runs now). */
export function progressTick(job: Job, nodeId: string, value: number | null, max: number | null, now: number): void {
  markStarted(job, now, 'observed');
  const node = nodeOf(job, nodeId);
  startNode(job, node, now, 'observed');
  if (value !== null) node.steps = value;
  if (max !== null) node.total = max;
}

/** `progress_state`: a snapshot of every node that is not pending. */
export function progressState(job: Job, nodes: ProgressNode[], now: number): void {
  markStarted(job, now, 'observed');
  for (const p of nodes) {
    if (p.parent_node_id) continue; // subgraph internals: the parent node stands for them
    const node = nodeOf(job, p.node_id);
    if (p.state === 'finished') {
      if (node.status !== 'cached') completeNode(node, now, 'observed');
    } else if (p.state === 'running') {
      startNode(job, node, now, 'observed');
    }
    // A 0/1 placeholder at node start says nothing about steps.
    if (p.max !== null && !(p.max === 1 && node.total !== null && node.total > 1)) {
      node.total = p.max;
      if (p.value !== null) node.steps = p.value;
    }
  }
}

export function startNode(job: Job, node: JobNode, t: number, timing: TimeSource): void {
  if (node.status === 'pending') {
    node.status = 'running';
    node.started_at = t;
    node.start_timing = timing;
    retime(node);
    // A node runs only once all its inputs exist: everything upstream is done. When it was seen
    // running, it finished by now; when it was never seen, its times are unknown.
    for (const up of job.upstream.get(node.node_id) ?? []) {
      const n = job.nodes.get(up);
      if (n && n.status === 'running') completeNode(n, t, timing);
      else if (n && n.status === 'pending') n.status = 'completed';
    }
  } else if ((node.status === 'running' || node.status === 'completed') && timing === 'comfyui' && node.start_timing === 'observed') {
    // ComfyUI's own time replaces podscope's observation of the same start.
    node.started_at = t;
    node.start_timing = timing;
    if (node.finished_at !== null && node.finished_at < t) node.finished_at = t;
    retime(node);
  }
  if (node.status === 'running') job.current_node = node.node_id;
}

/**
 * A node finished at `t`. A node never seen running gets no times: they are unknown. ComfyUI's
 * own end time replaces an end podscope observed first (a frame can arrive before the tap's
 * report of the same end).
 */
export function completeNode(node: JobNode, t: number | null, timing: TimeSource): void {
  if (node.status === 'cached' || node.status === 'error' || node.status === 'interrupted') return;
  if (node.status === 'completed' && !(timing === 'comfyui' && node.started_at !== null && node.end_timing !== 'comfyui')) return;
  const seen = node.started_at !== null;
  node.status = 'completed';
  node.finished_at = seen && t !== null ? Math.max(t, node.started_at!) : null;
  node.end_timing = node.finished_at !== null ? timing : null;
  retime(node);
  if (node.total !== null) node.steps = node.total;
}

export function setError(job: Job, info: ErrorInfo, executed: string[], ts: number): void {
  const nodeId = info.node_id;
  job.error = {
    ...(job.error ?? {}),
    node_id: nodeId,
    class_type: info.node_type ?? (nodeId ? (job.nodes.get(nodeId)?.class_type ?? null) : null),
    exception_type: info.exception_type ?? 'unknown',
    exception_message: info.exception_message,
    traceback: info.traceback,
  };
  settleNodes(job, executed, nodeId, 'error', ts);
}

export function setInterrupted(job: Job, nodeId: string | null, nodeType: string | null, executed: string[], ts: number): void {
  job.error = {
    node_id: nodeId,
    class_type: nodeType ?? (nodeId ? (job.nodes.get(nodeId)?.class_type ?? null) : null),
    exception_type: 'Interrupted',
    exception_message: 'Processing interrupted',
    traceback: [],
  };
  settleNodes(job, executed, nodeId, 'interrupted', ts);
}

/** After an error or interrupt: executed nodes completed, the node it happened in marked. */
export function settleNodes(job: Job, executed: string[], failed: string | null, status: 'error' | 'interrupted', ts: number): void {
  for (const id of executed) {
    const node = nodeOf(job, id);
    if (node.status === 'pending' || node.status === 'running') completeNode(node, node.status === 'running' ? ts : null, 'observed');
  }
  if (failed) {
    const node = nodeOf(job, failed);
    if (node.status === 'completed' || node.status === 'cached') return;
    node.status = status;
    if (node.started_at !== null) node.finished_at = Math.max(node.finished_at ?? ts, node.started_at);
  }
}

export function addOutput(job: Job, nodeId: string, ui: Record<string, unknown>): void {
  const cached = job.nodes.get(nodeId)?.status === 'cached';
  const existing = job.outputs.find((o) => o.node_id === nodeId);
  if (existing) {
    existing.ui = ui;
    existing.cached = cached;
  } else {
    job.outputs.push({ node_id: nodeId, ui, cached });
  }
}

/** The job's node `nodeId`, made pending (and put last in its order) the first time it is named. */
export function nodeOf(job: Job, nodeId: string): JobNode {
  let node = job.nodes.get(nodeId);
  if (!node) {
    node = { node_id: nodeId, class_type: 'unknown', title: null, status: 'pending', steps: null, total: null, planned_steps: null, started_at: null, finished_at: null, timing: null, start_timing: null, end_timing: null, peak_vram_bytes: null, needed: true };
    job.nodes.set(nodeId, node);
    job.order.push(nodeId);
  }
  return node;
}
