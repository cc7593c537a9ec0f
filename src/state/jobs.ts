/**
 * The job reducer: typed ComfyUI events (sources/comfy-events.ts) and the caller's clock in, jobs
 * out. Pure and synchronous; no input can make it throw.
 *
 * ComfyUI sends a prompt's execution frames only to the client that submitted it, so a job is
 * rebuilt from partial sources. When they disagree, this is who wins:
 *
 * 1. /history: ComfyUI's own record of the outcome, its timestamps and outputs. It can turn a job
 *    podscope inferred to be lost into its real outcome; nothing overrides it.
 * 2. The tap node and execution frames: ComfyUI's own events, with its clock (`t`, `timestamp`).
 *    Their times replace observed ones.
 * 3. /queue: what runs and waits now, the graph, the ids, extra_data.
 * 4. Inference: a node started ⇒ its inputs are done; a tqdm bar in the log ⇒ a sampler's steps;
 *    ComfyUI gone ⇒ its jobs lost. Inferred facts carry no invented times: a node known to have
 *    finished only because a later one started has null start, end and duration.
 *
 * A new prompt with the same job id as an old one (a retry) takes the id over: lookups by job id
 * find the newest prompt, and the old one stays reachable by its prompt_id.
 */
import { REDACTED, isSecretName } from '../secrets.js';
import type { ComfyEvent, ErrorInfo, ExecutionEvent, HistoryRecord, ProgressNode } from '../shared/comfy-events.js';
import { ancestors, neededNodes, plannedSteps, topologicalOrder } from './job-graph.js';
import { isFinal, isRecord, type DeepReadonly, type Job, type JobError, type JobNode, type JobSnapshot, type JobStatus, type JobUsage, type NodeStatus, type QueueItem, type ReadonlyJob, type TimeSource } from '../shared/job-types.js';
import type { TraceParent } from '../shared/traces.js';

export * from '../shared/job-types.js';
export { ancestors, neededNodes, topologicalOrder } from './job-graph.js';

/** A running job's progress stays below this until ComfyUI reports its outcome. */
export const RUNNING_PROGRESS_CAP = 94;

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:$|-)/;

/** A node's summary timing: ComfyUI's when every time it has is, observed when one is podscope's. */
function retime(node: JobNode): void {
  const times = [node.started_at !== null ? node.start_timing : null, node.finished_at !== null ? node.end_timing : null].filter((t) => t !== null);
  node.timing = times.length === 0 ? null : times.every((t) => t === 'comfyui') ? 'comfyui' : 'observed';
}

/** A W3C traceparent's parent; null when invalid (version ff, an all-zero id, a bad shape). */
export function parseTraceParent(header: unknown): TraceParent | null {
  const m = typeof header === 'string' ? TRACEPARENT.exec(header.trim()) : null;
  if (!m || m[1] === 'ff' || /^0+$/.test(m[2]!) || /^0+$/.test(m[3]!)) return null;
  return { trace_id: m[2]!, span_id: m[3]!, flags: parseInt(m[4]!, 16) };
}

/** extra_data without secrets (api_key_comfy_org, auth_token_comfy_org, anything named like one) and without the UI's workflow blob. */
export function redactExtra(extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extra)) {
    if (k === 'extra_pnginfo') out[k] = '[omitted]';
    else if (isSecretName(k)) out[k] = REDACTED;
    else if (typeof v === 'string') out[k] = v.length > 200 ? `${v.slice(0, 200)}…` : v;
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null) out[k] = v;
    else out[k] = '[object]';
  }
  return out;
}

function str(v: unknown): string | null {
  if (typeof v === 'string' && v.length > 0) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

/**
 * ComfyUI's validation verdict as sentences: one per failing input (`KSampler 3: Value smaller
 * than min: steps: -1`), else the prompt-level message.
 */
export function rejectionReasons(error: Record<string, unknown> | null, nodeErrors: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [nodeId, v] of Object.entries(nodeErrors)) {
    if (!isRecord(v)) continue;
    const who = `${str(v.class_type) ?? 'node'} ${nodeId}`;
    for (const err of Array.isArray(v.errors) ? v.errors : []) {
      if (!isRecord(err)) continue;
      const message = str(err.message) ?? str(err.type) ?? 'invalid';
      const details = str(err.details);
      out.push(`${who}: ${message}${details ? `: ${details}` : ''}`.slice(0, 500));
    }
  }
  if (out.length === 0 && error) out.push((str(error.message) ?? str(error.type) ?? 'ComfyUI rejected the prompt').slice(0, 500));
  return out.slice(0, 20);
}

/** Told of a job's outcome: the finish pipeline (see {@link JobTracker.finishWith}). */
export type FinishHandler = (job: ReadonlyJob, refined: boolean) => void;

export interface JobTrackerOptions {
  jobIdKey: string;
  historyLimit: number;
}

const done = (s: NodeStatus) => s === 'completed' || s === 'cached';

/**
 * Whether a tqdm bar of `total` steps can be this running node's: its ProgressBar or its `steps`
 * input says that many, or nothing says otherwise and it is a sampler. A SaveImage that started
 * while the sampler's last line was still on its way is not.
 */
function ownsBar(node: JobNode, total: number): boolean {
  if (node.total !== null && node.total > 1) return node.total === total;
  if (node.planned_steps !== null) return node.planned_steps === total;
  return /sampler/i.test(node.class_type);
}

export class JobTracker {
  /** Every known job by prompt_id; finished ones are bounded by historyLimit. */
  private readonly jobs = new Map<string, Job>();
  /** Finished prompt ids, oldest first (for eviction). */
  private readonly finished: string[] = [];
  /** Platform job id → the newest prompt carrying it. */
  private readonly byJobId = new Map<string, string>();
  private pendingOrder: string[] = [];
  private runningIds: string[] = [];
  /** The finish pipeline (composed in main.ts): told of every outcome, set once. */
  private finisher: FinishHandler | null = null;
  private readonly changeListeners: Array<() => void> = [];
  /** Size estimates of finished jobs (see {@link approxBytes}). */
  private readonly sizes = new Map<string, number>();
  /** Bumped on every change, so views can tell whether a snapshot is stale. */
  version = 0;
  /** When the state last changed, by the caller's clock. */
  updatedAt: number | null = null;

  constructor(private readonly opts: JobTrackerOptions) {}

  /**
   * Hands every outcome to the finish pipeline: once when a job reaches one, and again with
   * `refined` when ComfyUI's record later turns a job podscope inferred lost into its real outcome.
   * The pipeline sees the job read-only; what it learns goes back through {@link recordUsage},
   * {@link annotateError} and {@link diagnose}. Set once, by the composition root.
   */
  finishWith(handler: FinishHandler): void {
    if (this.finisher) throw new Error('the job tracker already has its finish pipeline');
    this.finisher = handler;
  }

  /** Every job known: the finished ones remembered, and those queued or running. */
  get size(): number {
    return this.jobs.size;
  }

  /** Finished jobs remembered, at most historyLimit: the bounded part /debug/memory reports. */
  get rememberedCount(): number {
    return this.finished.length;
  }

  private touch(now: number): void {
    this.version++;
    this.updatedAt = now;
    for (const l of this.changeListeners) l();
  }

  /** Calls `listener` after anything about the jobs changed (it should defer its own work). */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  private ensure(promptId: string, now: number): Job {
    let job = this.jobs.get(promptId);
    if (!job) {
      job = {
        prompt_id: promptId,
        job_id: promptId,
        identity_known: false,
        trace_id: null,
        trace_parent: null,
        client_id: null,
        number: null,
        status: 'queued',
        queued_at: null,
        first_seen_at: now,
        started_at: null,
        started_timing: null,
        finished_at: null,
        finished_timing: null,
        nodes: new Map(),
        order: [],
        outputs_to_execute: [],
        error: null,
        outputs: [],
        progress: null,
        current_node: null,
        seen_running_at: null,
        last_activity: now,
        source: new Set(),
        history_read: false,
        missing_checks: 0,
        extra: {},
        lost_reason: null,
        graph_known: false,
        upstream: new Map(),
        usage: null,
        retry_of: null,
      };
      this.jobs.set(promptId, job);
    }
    return job;
  }

  /** Whether a prompt with this id is known to podscope. */
  has(promptId: string): boolean {
    return this.jobs.has(promptId);
  }

  // ── identity and graph ─────────────────────────────────────────────────────────────────────

  /** Reads the ids a prompt's extra_data carries: job id, client id, trace id, creation time. */
  private absorbExtra(job: Job, extra: Record<string, unknown>): void {
    const jobId = str(extra[this.opts.jobIdKey]) ?? job.prompt_id;
    job.identity_known = true;
    if (jobId !== job.job_id || !this.byJobId.has(jobId)) {
      if (this.byJobId.get(job.job_id) === job.prompt_id && job.job_id !== jobId) this.byJobId.delete(job.job_id);
      job.job_id = jobId;
      this.link(job);
    }
    job.client_id = str(extra.client_id) ?? job.client_id;
    const parent = parseTraceParent(extra.traceparent);
    job.trace_parent = parent ?? job.trace_parent;
    job.trace_id = parent?.trace_id ?? str(extra.trace_id) ?? job.trace_id;
    // Newer ComfyUI stamps the POST time (ms) into extra_data.
    const created = typeof extra.create_time === 'number' && Number.isFinite(extra.create_time) ? extra.create_time : null;
    if (created !== null && job.queued_at === null) job.queued_at = created;
    job.extra = { ...job.extra, ...redactExtra(extra) };
  }

  /** Points the job id at this prompt unless a newer prompt already carries it. */
  private link(job: Job): void {
    const other = this.jobs.get(this.byJobId.get(job.job_id) ?? '');
    if (other && other !== job) {
      const newer = other.number !== null && job.number !== null ? job.number > other.number : job.first_seen_at >= other.first_seen_at;
      if (!newer) return;
      job.retry_of = other.prompt_id;
    }
    this.byJobId.set(job.job_id, job.prompt_id);
  }

  private absorbItem(job: Job, item: QueueItem): void {
    job.number = item.number ?? job.number;
    this.absorbExtra(job, item.extra_data);
    this.absorbGraph(job, item.graph, item.outputs_to_execute);
  }

  /** Learns the graph once: class types, titles, planned steps, which nodes run, a dependency order. */
  private absorbGraph(job: Job, graph: Record<string, unknown>, outputs: string[]): void {
    if (outputs.length > 0 && job.outputs_to_execute.length === 0) job.outputs_to_execute = outputs;
    if (job.graph_known || Object.keys(graph).length === 0) return;
    job.graph_known = true;
    const needed = neededNodes(graph, job.outputs_to_execute);
    for (const id of Object.keys(graph)) {
      const raw = graph[id];
      const node = this.node(job, id);
      node.class_type = (isRecord(raw) ? str(raw.class_type) : null) ?? node.class_type;
      node.title = isRecord(raw) && isRecord(raw._meta) ? str(raw._meta.title) : node.title;
      node.planned_steps = plannedSteps(raw);
      node.needed = needed === null || needed.has(id);
    }
    job.upstream = ancestors(graph);
    const ordered = topologicalOrder(graph);
    job.order = [...ordered, ...job.order.filter((id) => !(id in graph))];
    this.recompute(job);
  }

  private node(job: Job, nodeId: string): JobNode {
    let node = job.nodes.get(nodeId);
    if (!node) {
      node = { node_id: nodeId, class_type: 'unknown', title: null, status: 'pending', steps: null, total: null, planned_steps: null, started_at: null, finished_at: null, timing: null, start_timing: null, end_timing: null, peak_vram_bytes: null, needed: true };
      job.nodes.set(nodeId, node);
      job.order.push(nodeId);
    }
    return node;
  }

  // ── events ─────────────────────────────────────────────────────────────────────────────────

  /** One decoded event (frames and tap events; /queue and /history have their own methods). */
  apply(now: number, e: ComfyEvent): void {
    switch (e.type) {
      case 'queue':
        this.applyQueue(now, e.running, e.pending);
        return;
      case 'history':
        this.applyHistory(now, e.record);
        return;
      case 'prompt_rejected':
        this.applyRejection(now, e);
        return;
      case 'status':
      case 'logs':
      case 'other':
        return;
      default:
        break;
    }
    const job = this.ensure(e.prompt_id, now);
    switch (e.type) {
      case 'prompt_queued':
        job.source.add('tap');
        job.queued_at ??= e.t ?? now;
        this.absorbExtra(job, e.extra);
        break;
      case 'prompt_start':
        job.source.add('tap');
        this.absorbExtra(job, e.extra);
        this.absorbGraph(job, e.graph, e.outputs);
        this.markStarted(job, e.t ?? now, e.t !== null ? 'comfyui' : 'observed');
        break;
      case 'node_start': {
        if (isFinal(job.status)) break;
        job.source.add('tap');
        const t = e.t ?? now;
        this.markStarted(job, t, 'observed');
        const node = this.node(job, e.node_id);
        if (e.class_type && node.class_type === 'unknown') node.class_type = e.class_type;
        this.startNode(job, node, t, e.t !== null ? 'comfyui' : 'observed');
        break;
      }
      case 'node_end': {
        job.source.add('tap');
        const node = this.node(job, e.node_id);
        if (e.peak_vram_bytes !== null) node.peak_vram_bytes = Math.max(node.peak_vram_bytes ?? 0, e.peak_vram_bytes);
        if (e.outcome === 'success') this.completeNode(node, e.t ?? now, e.t !== null ? 'comfyui' : 'observed');
        else if (e.outcome === 'error' && e.t !== null && node.status === 'running') {
          node.finished_at = e.t;
          node.end_timing = 'comfyui';
          retime(node);
        }
        if (job.current_node === node.node_id && node.status !== 'running') job.current_node = null;
        break;
      }
      case 'executing': {
        if (isFinal(job.status) || e.node === null) break; // node null is the end marker; the outcome decides
        job.source.add('frames');
        this.markStarted(job, now, 'observed');
        // A new node starting means the one running before it finished.
        for (const n of job.nodes.values()) if (n.status === 'running' && n.node_id !== e.node) this.completeNode(n, now, 'observed');
        this.startNode(job, this.node(job, e.node), now, 'observed');
        break;
      }
      case 'executed': {
        job.source.add('frames');
        const node = this.node(job, e.node);
        if (node.status !== 'cached') this.completeNode(node, now, 'observed');
        if (e.output) this.addOutput(job, e.node, e.output);
        break;
      }
      case 'progress':
        if (isFinal(job.status)) break;
        job.source.add('progress');
        this.progressTick(job, e.node, e.value, e.max, now);
        break;
      case 'progress_state':
        if (isFinal(job.status)) break;
        job.source.add('progress_state');
        this.progressState(job, e.nodes, now);
        break;
      default:
        job.source.add('frames');
        this.execution(job, e, now);
    }
    if (!isFinal(job.status)) job.last_activity = now;
    this.recompute(job);
    this.sizes.delete(job.prompt_id);
    this.touch(now);
  }

  private markStarted(job: Job, t: number, timing: TimeSource): void {
    if (job.status === 'queued') job.status = 'running';
    if (job.started_at === null || (timing === 'comfyui' && job.started_timing !== 'comfyui')) {
      job.started_at = t;
      job.started_timing = timing;
    }
    if (job.queued_at !== null && job.queued_at > job.started_at) job.queued_at = job.started_at;
  }

  private execution(job: Job, e: ExecutionEvent, now: number): void {
    const ts = e.ts ?? now;
    // The frame's own time is ComfyUI's; without one, it is when podscope saw the frame.
    const timing: TimeSource = e.ts !== null ? 'comfyui' : 'observed';
    switch (e.type) {
      case 'execution_start':
        if (!isFinal(job.status)) this.markStarted(job, ts, timing);
        else if (e.ts !== null) job.started_at = e.ts;
        break;
      case 'execution_cached':
        for (const id of e.nodes) {
          const node = this.node(job, id);
          // Completion inferred from a later node may in truth have been a cache hit.
          if (node.status === 'pending' || node.status === 'running' || (node.status === 'completed' && node.timing === null)) {
            node.status = 'cached';
            node.started_at = null;
            node.finished_at = null;
            node.timing = node.start_timing = node.end_timing = null;
          }
        }
        break;
      case 'execution_success':
        this.finish(job, 'success', ts, false, timing);
        break;
      case 'execution_error':
        if (e.blocker) break;
        this.setError(job, e.error, e.executed, ts);
        this.finish(job, 'error', ts, false, timing);
        break;
      case 'execution_interrupted':
        this.setInterrupted(job, e.node_id, e.node_type, e.executed, ts);
        this.finish(job, 'interrupted', ts, false, timing);
        break;
    }
  }

  /** `progress`: one ProgressBar tick of a node (it runs now). */
  private progressTick(job: Job, nodeId: string, value: number | null, max: number | null, now: number): void {
    this.markStarted(job, now, 'observed');
    const node = this.node(job, nodeId);
    this.startNode(job, node, now, 'observed');
    if (value !== null) node.steps = value;
    if (max !== null) node.total = max;
  }

  /** `progress_state`: a snapshot of every node that is not pending. */
  private progressState(job: Job, nodes: ProgressNode[], now: number): void {
    this.markStarted(job, now, 'observed');
    for (const p of nodes) {
      if (p.parent_node_id) continue; // subgraph internals: the parent node stands for them
      const node = this.node(job, p.node_id);
      if (p.state === 'finished') {
        if (node.status !== 'cached') this.completeNode(node, now, 'observed');
      } else if (p.state === 'running') {
        this.startNode(job, node, now, 'observed');
      }
      // A 0/1 placeholder at node start says nothing about steps.
      if (p.max !== null && !(p.max === 1 && node.total !== null && node.total > 1)) {
        node.total = p.max;
        if (p.value !== null) node.steps = p.value;
      }
    }
  }

  private startNode(job: Job, node: JobNode, t: number, timing: TimeSource): void {
    if (node.status === 'pending') {
      node.status = 'running';
      node.started_at = t;
      node.start_timing = timing;
      retime(node);
      // A node runs only once all its inputs exist: everything upstream is done. When it was seen
      // running, it finished by now; when it was never seen, its times are unknown.
      for (const up of job.upstream.get(node.node_id) ?? []) {
        const n = job.nodes.get(up);
        if (n && n.status === 'running') this.completeNode(n, t, timing);
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
  private completeNode(node: JobNode, t: number | null, timing: TimeSource): void {
    if (node.status === 'cached' || node.status === 'error' || node.status === 'interrupted') return;
    if (node.status === 'completed' && !(timing === 'comfyui' && node.started_at !== null && node.end_timing !== 'comfyui')) return;
    const seen = node.started_at !== null;
    node.status = 'completed';
    node.finished_at = seen && t !== null ? Math.max(t, node.started_at!) : null;
    node.end_timing = node.finished_at !== null ? timing : null;
    retime(node);
    if (node.total !== null) node.steps = node.total;
  }

  private setError(job: Job, info: ErrorInfo, executed: string[], ts: number): void {
    const nodeId = info.node_id;
    job.error = {
      ...(job.error ?? {}),
      node_id: nodeId,
      class_type: info.node_type ?? (nodeId ? (job.nodes.get(nodeId)?.class_type ?? null) : null),
      exception_type: info.exception_type ?? 'unknown',
      exception_message: info.exception_message,
      traceback: info.traceback,
    };
    this.settleNodes(job, executed, nodeId, 'error', ts);
  }

  private setInterrupted(job: Job, nodeId: string | null, nodeType: string | null, executed: string[], ts: number): void {
    job.error = {
      node_id: nodeId,
      class_type: nodeType ?? (nodeId ? (job.nodes.get(nodeId)?.class_type ?? null) : null),
      exception_type: 'Interrupted',
      exception_message: 'Processing interrupted',
      traceback: [],
    };
    this.settleNodes(job, executed, nodeId, 'interrupted', ts);
  }

  /** After an error or interrupt: executed nodes completed, the node it happened in marked. */
  private settleNodes(job: Job, executed: string[], failed: string | null, status: 'error' | 'interrupted', ts: number): void {
    for (const id of executed) {
      const node = this.node(job, id);
      if (node.status === 'pending' || node.status === 'running') this.completeNode(node, node.status === 'running' ? ts : null, 'observed');
    }
    if (failed) {
      const node = this.node(job, failed);
      if (node.status === 'completed' || node.status === 'cached') return;
      node.status = status;
      if (node.started_at !== null) node.finished_at = Math.max(node.finished_at ?? ts, node.started_at);
    }
  }

  private addOutput(job: Job, nodeId: string, ui: Record<string, unknown>): void {
    const cached = job.nodes.get(nodeId)?.status === 'cached';
    const existing = job.outputs.find((o) => o.node_id === nodeId);
    if (existing) {
      existing.ui = ui;
      existing.cached = cached;
    } else {
      job.outputs.push({ node_id: nodeId, ui, cached });
    }
  }

  /**
   * A prompt ComfyUI refused at POST /prompt (the tap saw it): never queued, it is a job that
   * failed validation, findable by its job id, with ComfyUI's reasons as the error. Not counted in
   * job metrics (it never ran).
   */
  private applyRejection(now: number, e: Extract<ComfyEvent, { type: 'prompt_rejected' }>): void {
    const job = this.ensure(e.prompt_id, now);
    if (isFinal(job.status)) return;
    job.source.add('tap');
    job.queued_at = null;
    this.absorbExtra(job, e.extra);
    const reasons = rejectionReasons(e.error, e.node_errors);
    const first = Object.entries(e.node_errors).find(([, v]) => isRecord(v));
    job.error = {
      node_id: first ? first[0] : null,
      class_type: first && isRecord(first[1]) ? str(first[1].class_type) : null,
      exception_type: 'PromptRejected',
      exception_message: reasons.join('\n'),
      traceback: [],
      rejection: { type: e.error ? str(e.error.type) : null, reasons },
    };
    this.finish(job, 'error', e.t ?? now, true, e.t !== null ? 'comfyui' : 'observed');
    this.touch(now);
  }

  // ── /queue and /history ────────────────────────────────────────────────────────────────────

  /**
   * A /queue answer. Returns the prompt ids that left the queue without a known outcome: the
   * caller asks /history for each and reports back with {@link applyHistory} or {@link applyMissing}.
   */
  applyQueue(now: number, running: readonly QueueItem[], pending: readonly QueueItem[]): string[] {
    const present = new Set<string>();
    for (const item of running) {
      present.add(item.prompt_id);
      const job = this.ensure(item.prompt_id, now);
      this.absorbItem(job, item);
      if (!isFinal(job.status)) this.markStarted(job, now, 'observed');
      job.seen_running_at = now;
      job.source.add('queue');
    }
    const sorted = [...pending].sort((a, b) => (a.number ?? 0) - (b.number ?? 0) || a.prompt_id.localeCompare(b.prompt_id));
    for (const item of sorted) {
      present.add(item.prompt_id);
      const job = this.ensure(item.prompt_id, now);
      this.absorbItem(job, item);
      job.source.add('queue');
    }
    const left: string[] = [];
    for (const job of this.jobs.values()) {
      if (present.has(job.prompt_id)) job.missing_checks = 0;
      else if (!isFinal(job.status)) left.push(job.prompt_id);
    }
    const runningIds = running.map((r) => r.prompt_id);
    const pendingIds = sorted.map((p) => p.prompt_id);
    if (this.runningIds.join() !== runningIds.join() || this.pendingOrder.join() !== pendingIds.join()) {
      for (const id of runningIds) this.jobs.get(id)!.last_activity = now;
    }
    this.runningIds = runningIds;
    this.pendingOrder = pendingIds;
    this.touch(now);
    return left;
  }

  /**
   * Ids running and pending, in execution order: what /queue listed, plus a job that frames or
   * the tap show running before the next /queue look does (so every answer names the same job).
   */
  queueOrder(): { running: string[]; pending: string[] } {
    const running = [...this.runningIds];
    const current = this.running();
    if (current && !running.includes(current.prompt_id)) running.push(current.prompt_id);
    return { running, pending: this.pendingOrder.filter((id) => !running.includes(id)) };
  }

  /**
   * ComfyUI's record of a finished prompt. `silent` imports it without telling finish listeners
   * (jobs that ended before podscope started are shown, not counted in metrics).
   */
  applyHistory(now: number, record: HistoryRecord, opts: { silent?: boolean } = {}): void {
    const job = this.ensure(record.prompt_id, now);
    if (record.item) this.absorbItem(job, record.item);
    job.source.add('history');
    job.history_read = true;
    let outcome: JobStatus | null = null;
    let end: number | null = null;
    for (const m of record.messages) {
      switch (m.type) {
        case 'execution_start':
          if (m.ts !== null) {
            job.started_at = m.ts;
            job.started_timing = 'comfyui';
            if (job.queued_at !== null && job.queued_at > m.ts) job.queued_at = m.ts;
          }
          break;
        case 'execution_cached':
          this.execution(job, m, now);
          break;
        case 'execution_success':
          outcome = 'success';
          end = m.ts;
          break;
        case 'execution_error':
          if (m.blocker) break;
          outcome = 'error';
          end = m.ts;
          this.setError(job, m.error, m.executed, m.ts ?? now);
          break;
        case 'execution_interrupted':
          outcome = 'interrupted';
          end = m.ts;
          this.setInterrupted(job, m.node_id, m.node_type, m.executed, m.ts ?? now);
          break;
      }
    }
    for (const o of record.outputs) this.addOutput(job, o.node_id, o.ui);
    this.sizes.delete(job.prompt_id);
    if (!outcome) {
      if (record.status_str === 'success' || record.completed === true) outcome = 'success';
      else if (record.status_str === 'error') outcome = 'error';
    }
    if (outcome) {
      if (end !== null) {
        job.finished_at = end;
        job.finished_timing = 'comfyui';
      }
      this.finish(job, outcome, end ?? job.finished_at ?? now, opts.silent ?? false, end !== null ? 'comfyui' : (job.finished_timing ?? 'observed'));
    }
    this.recompute(job);
    this.touch(now);
  }

  /** A prompt left the queue and history does not know it. Two misses in a row make it lost. */
  applyMissing(now: number, promptId: string, reason: string, opts: { atOnce?: boolean } = {}): void {
    const job = this.jobs.get(promptId);
    if (!job || isFinal(job.status)) return;
    job.missing_checks++;
    if (opts.atOnce || job.missing_checks >= 2) {
      job.lost_reason = reason;
      this.finish(job, 'lost', now, false, 'observed');
      this.touch(now);
    }
  }

  /** ComfyUI restarted or is gone: every unfinished job is lost, with the reason. */
  loseUnfinished(now: number, reason: string): Job[] {
    const lost: Job[] = [];
    for (const job of this.jobs.values()) {
      if (isFinal(job.status)) continue;
      job.lost_reason = reason;
      this.finish(job, 'lost', now, false, 'observed');
      lost.push(job);
    }
    this.runningIds = [];
    this.pendingOrder = [];
    if (lost.length > 0) this.touch(now);
    return lost;
  }

  /** Finished jobs ComfyUI's /history has not been read for (learned from frames or the tap), newest first. */
  withoutHistory(limit: number): string[] {
    const out: string[] = [];
    for (let i = this.finished.length - 1; i >= 0 && out.length < limit; i--) {
      const job = this.jobs.get(this.finished[i]!);
      if (job && !job.history_read && job.status !== 'lost') out.push(job.prompt_id);
    }
    return out;
  }

  /** Marks a job whose history entry cannot be had (ComfyUI forgot it), so it is not asked again. */
  historyUnavailable(promptId: string): void {
    const job = this.jobs.get(promptId);
    if (job) job.history_read = true;
  }

  // ── the log ────────────────────────────────────────────────────────────────────────────────

  /**
   * A log line while a job runs: a sign of life. A tqdm step (`value`/`total`) feeds the running
   * node; when no frame says which node runs (another client's prompt, no tap), it goes to the
   * first pending node that plans that many steps, else to the first pending sampler.
   */
  applyLogActivity(now: number, step?: { value: number; total: number }): void {
    const job = this.running();
    if (!job) return;
    job.last_activity = now;
    if (!step) return;
    let node = job.current_node ? job.nodes.get(job.current_node) : undefined;
    if (!node || node.status !== 'running' || !ownsBar(node, step.total)) {
      // No running node can own this bar (a line that arrived late, after its sampler finished, or
      // another client's prompt seen without frames): a pending node that plans that many steps,
      // else the first pending sampler, starts; otherwise the line says nothing about any node.
      const candidates = job.order.map((id) => job.nodes.get(id)!).filter((n) => n && n.needed && n.status === 'pending');
      node = candidates.find((n) => n.planned_steps === step.total) ?? candidates.find((n) => /sampler/i.test(n.class_type) && n.planned_steps === null);
      if (!node) return;
      this.startNode(job, node, now, 'observed');
    }
    if (node.status !== 'running') return;
    node.steps = step.value;
    node.total = step.total;
    job.source.add('logs');
    this.recompute(job);
    this.touch(now);
  }

  /** Attaches extra fields to a job's error (forensics); creates a minimal error when none exists. */
  annotateError(promptId: string, extra: Record<string, unknown>): void {
    const job = this.jobs.get(promptId);
    if (!job) return;
    job.error ??= { node_id: job.current_node, class_type: job.current_node ? (job.nodes.get(job.current_node)?.class_type ?? null) : null, exception_type: 'unknown', exception_message: '', traceback: [] } satisfies JobError;
    Object.assign(job.error, extra);
    this.changed(job);
  }

  /** Gives a job that ended without an error the one its evidence points to (a probable RAM OOM kill). */
  diagnose(promptId: string, error: JobError): void {
    const job = this.jobs.get(promptId);
    if (!job || job.error) return;
    job.error = error;
    this.changed(job);
  }

  /** Records a finished job's GPU use over its own run (the attribution step). */
  recordUsage(promptId: string, usage: JobUsage | null): void {
    const job = this.jobs.get(promptId);
    if (!job) return;
    job.usage = usage;
    this.changed(job);
  }

  /** A finished job learned something after its outcome: its size is measured again, readers see a new version. */
  private changed(job: Job): void {
    this.sizes.delete(job.prompt_id);
    this.version++;
  }

  // ── outcome ────────────────────────────────────────────────────────────────────────────────

  private finish(job: Job, outcome: JobStatus, ts: number, silent: boolean, timing: TimeSource): void {
    const wasFinal = isFinal(job.status);
    // ComfyUI's record refines an outcome podscope inferred (lost); one ComfyUI reported stands.
    if (wasFinal && (job.status === outcome || job.status !== 'lost')) return;
    job.status = outcome;
    job.lost_reason = outcome === 'lost' ? job.lost_reason : null;
    job.finished_at = Math.max(ts, job.started_at ?? ts);
    job.finished_timing = timing;
    job.current_node = null;
    for (const node of job.nodes.values()) {
      if (node.status === 'running') {
        if (outcome === 'success') this.completeNode(node, ts, 'observed');
        else node.status = 'interrupted'; // it started and never finished
      } else if (node.status === 'pending') {
        node.status = outcome === 'success' && node.needed ? 'completed' : 'skipped';
      }
    }
    if (outcome === 'success') job.progress = 100;
    this.runningIds = this.runningIds.filter((id) => id !== job.prompt_id);
    this.pendingOrder = this.pendingOrder.filter((id) => id !== job.prompt_id);
    if (!wasFinal) {
      this.finished.push(job.prompt_id);
      this.evict();
    }
    if (!silent) this.finisher?.(job, wasFinal);
  }

  private evict(): void {
    while (this.finished.length > this.opts.historyLimit) {
      const id = this.finished.shift()!;
      const job = this.jobs.get(id);
      this.jobs.delete(id);
      this.sizes.delete(id);
      if (job && this.byJobId.get(job.job_id) === id) this.byJobId.delete(job.job_id);
    }
  }

  /**
   * Progress from the work done: each needed node weighs the steps it runs (its ProgressBar's
   * total, else the `steps` input in the graph), 1 without steps; a running node counts its step
   * fraction. Unknown (null) until the graph is known; below {@link RUNNING_PROGRESS_CAP} until
   * the outcome; 100 on success; never lower than before.
   */
  private recompute(job: Job): void {
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

  // ── reads ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Bytes the remembered jobs hold, estimated (strings at two bytes a character, a fixed cost per
   * job and per node, outputs and the error by their JSON size). A finished job's estimate is kept;
   * only open jobs are measured again.
   */
  approxBytes(): number {
    let total = 0;
    for (const job of this.jobs.values()) {
      let bytes = this.sizes.get(job.prompt_id);
      if (bytes === undefined) {
        bytes = 600 + 2 * (job.prompt_id.length + job.job_id.length) + 2 * JSON.stringify(job.extra).length;
        for (const n of job.nodes.values()) bytes += 220 + 2 * (n.class_type.length + (n.title?.length ?? 0));
        if (job.error) bytes += 2 * JSON.stringify(job.error).length;
        for (const o of job.outputs) bytes += 64 + 2 * JSON.stringify(o.ui).length;
        if (isFinal(job.status)) this.sizes.set(job.prompt_id, bytes);
      }
      total += bytes;
    }
    return total;
  }

  /** Whether the job is known and has its outcome. */
  isFinished(promptId: string): boolean {
    const j = this.jobs.get(promptId);
    return j !== undefined && isFinal(j.status);
  }

  /** A job by platform job id (the newest prompt carrying it) or by prompt_id. */
  get(idOrJobId: string): Job | undefined {
    return this.jobs.get(this.byJobId.get(idOrJobId) ?? '') ?? this.jobs.get(idOrJobId);
  }

  /** The running job (the one ComfyUI runs now), if any. */
  running(): Job | undefined {
    for (const id of this.runningIds) {
      const j = this.jobs.get(id);
      if (j && j.status === 'running') return j;
    }
    let best: Job | undefined;
    for (const j of this.jobs.values()) if (j.status === 'running' && (!best || (j.started_at ?? 0) > (best.started_at ?? 0))) best = j;
    return best;
  }

  /** The running job, else the most recently started or finished one. */
  latest(): Job | undefined {
    const r = this.running();
    if (r) return r;
    let best: Job | undefined;
    const key = (j: Job) => Math.max(j.finished_at ?? 0, j.started_at ?? 0, j.first_seen_at);
    for (const j of this.jobs.values()) if (!best || key(j) >= key(best)) best = j;
    return best;
  }

  all(): Job[] {
    return [...this.jobs.values()];
  }

  unfinished(): Job[] {
    return [...this.jobs.values()].filter((j) => !isFinal(j.status));
  }

  snapshot(job: ReadonlyJob): DeepReadonly<JobSnapshot> {
    const nodes = job.order.map((id) => job.nodes.get(id)!).filter(Boolean);
    const needed = nodes.filter((n) => n.needed);
    return {
      ...job,
      nodes,
      source: [...job.source],
      nodes_total: needed.length,
      nodes_completed: needed.filter((n) => done(n.status)).length,
    };
  }
}

/** The tracker as readers see it: jobs, read-only, and the queue's order; never an event applied. */
export interface JobsReader
  extends Readonly<Pick<JobTracker, 'size' | 'rememberedCount' | 'version' | 'updatedAt' | 'has' | 'isFinished' | 'queueOrder' | 'snapshot' | 'approxBytes'>> {
  get(idOrJobId: string): ReadonlyJob | undefined;
  running(): ReadonlyJob | undefined;
  latest(): ReadonlyJob | undefined;
  all(): ReadonlyJob[];
  unfinished(): ReadonlyJob[];
}
