/**
 * Job reconstruction: a pure, synchronous reducer over everything podscope can see of ComfyUI.
 *
 * ComfyUI sends a prompt's execution frames only to the client that submitted it, so a job is
 * rebuilt from several partial sources: /queue (graph, ids, running or pending), broadcast
 * progress frames, execution frames when they do reach podscope (the tap node, or prompts without
 * a client), /history when the prompt leaves the queue, and log lines. Every input is optional;
 * none may throw. Time comes from the caller.
 */
import { REDACTED, isSecretName } from '../secrets.js';

export type JobStatus = 'queued' | 'running' | 'success' | 'error' | 'interrupted' | 'lost';
export type NodeStatus = 'pending' | 'running' | 'completed' | 'cached' | 'error' | 'skipped';

export interface JobNode {
  node_id: string;
  class_type: string;
  title: string | null;
  status: NodeStatus;
  steps: number | null;
  total: number | null;
  started_at: number | null;
  finished_at: number | null;
  /** Whether the node feeds an output the prompt executes (others never run). */
  needed: boolean;
}

export interface JobError {
  node_id: string | null;
  class_type: string | null;
  exception_type: string;
  exception_message: string;
  traceback: string[];
  /** Extra evidence attached later (OOM forensics). */
  [extra: string]: unknown;
}

export interface Output {
  node_id: string;
  /** The ui dict as ComfyUI reported it (images, gifs, audio, …). */
  ui: Record<string, unknown>;
  /** Replayed from cache: the files come from an earlier run. */
  cached: boolean;
}

export interface Job {
  prompt_id: string;
  job_id: string;
  trace_id: string | null;
  client_id: string | null;
  number: number | null;
  status: JobStatus;
  queued_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  nodes: Map<string, JobNode>;
  /** Node ids in graph order. */
  order: string[];
  outputs_to_execute: string[];
  error: JobError | null;
  outputs: Output[];
  /** 0..100, never decreasing within a job. */
  progress: number;
  current_node: string | null;
  /** Last sign of life: a frame, a log line, a queue change. */
  last_activity: number;
  /** Where the outcome came from: history, frames, queue. */
  source: Set<string>;
  /** Times this job was found missing from both queue and history. */
  missing_checks: number;
  /** Extra data with secrets removed, for /debug/queue. */
  extra: Record<string, unknown>;
  lost_reason: string | null;
  /** Whether the prompt's graph has been read (from /queue or /history). */
  graph_known: boolean;
  /** Every node's transitive inputs, from the graph. */
  upstream: Map<string, Set<string>>;
  /** GPU use over the job's run, from the GPU collector; null without GPU data. */
  usage: { gpu_seconds: number; busy_gpu_seconds: number; peak_vram_mb: number | null } | null;
}

export interface QueueItem {
  number: number | null;
  prompt_id: string;
  graph: Record<string, unknown>;
  extra_data: Record<string, unknown>;
  outputs_to_execute: string[];
}

/** `[number, prompt_id, graph, extra_data, outputs_to_execute, …]` → QueueItem, or null. */
export function parseQueueItem(raw: unknown): QueueItem | null {
  if (!Array.isArray(raw) || raw.length < 2 || typeof raw[1] !== 'string') return null;
  const [number, promptId, graph, extra, outputs] = raw as unknown[];
  return {
    number: typeof number === 'number' && Number.isFinite(number) ? number : null,
    prompt_id: promptId as string,
    graph: isRecord(graph) ? graph : {},
    extra_data: isRecord(extra) ? extra : {},
    outputs_to_execute: Array.isArray(outputs) ? outputs.filter((o): o is string | number => typeof o === 'string' || typeof o === 'number').map(String) : [],
  };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/;

/** extra_data without secrets (api_key_comfy_org, auth_token_comfy_org, anything named like one) and without the UI's workflow blob. */
export function redactExtra(extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(extra)) {
    if (k === 'extra_pnginfo') {
      out[k] = '[omitted]';
      continue;
    }
    if (isSecretName(k)) {
      out[k] = REDACTED;
      continue;
    }
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v === null) out[k] = typeof v === 'string' && v.length > 200 ? `${v.slice(0, 200)}…` : v;
    else out[k] = '[object]';
  }
  return out;
}

function str(v: unknown): string | null {
  if (typeof v === 'string' && v.length > 0) return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

export interface JobTrackerOptions {
  jobIdKey: string;
  historyLimit: number;
}

/** Snapshot of one job for the views, with times as ms epoch. */
export type JobSnapshot = Omit<Job, 'nodes' | 'source'> & { nodes: JobNode[]; source: string[]; nodes_total: number; nodes_completed: number };

export class JobTracker {
  /** Every known job by prompt_id; finished ones are bounded by historyLimit. */
  private readonly jobs = new Map<string, Job>();
  /** Finished prompt ids, oldest first (for eviction). */
  private readonly finished: string[] = [];
  private readonly byJobId = new Map<string, string>();
  private pendingOrder: string[] = [];
  private runningIds: string[] = [];
  private lastSeenJob: string | null = null;
  /** Listeners told when a job reaches an outcome (metrics, artifacts). */
  private readonly finishListeners: Array<(job: Job) => void> = [];

  constructor(private readonly opts: JobTrackerOptions) {}

  onFinish(listener: (job: Job) => void): void {
    this.finishListeners.push(listener);
  }

  get size(): number {
    return this.jobs.size;
  }

  private ensure(promptId: string, now: number): Job {
    let job = this.jobs.get(promptId);
    if (!job) {
      job = {
        prompt_id: promptId,
        job_id: promptId,
        trace_id: null,
        client_id: null,
        number: null,
        status: 'queued',
        queued_at: now,
        started_at: null,
        finished_at: null,
        nodes: new Map(),
        order: [],
        outputs_to_execute: [],
        error: null,
        outputs: [],
        progress: 0,
        current_node: null,
        last_activity: now,
        source: new Set(),
        missing_checks: 0,
        extra: {},
        lost_reason: null,
        graph_known: false,
        upstream: new Map(),
        usage: null,
      };
      this.jobs.set(promptId, job);
      this.byJobId.set(promptId, promptId);
    }
    return job;
  }

  private isFinal(job: Job): boolean {
    return job.status === 'success' || job.status === 'error' || job.status === 'interrupted' || job.status === 'lost';
  }

  /** Fills graph, ids and extra data from a queue item (first time only for the graph). */
  private absorbItem(job: Job, item: QueueItem): void {
    job.number = item.number ?? job.number;
    const extra = item.extra_data;
    const jobId = str(extra[this.opts.jobIdKey]);
    if (jobId && jobId !== job.job_id) {
      job.job_id = jobId;
      this.byJobId.set(jobId, job.prompt_id);
    }
    job.client_id = str(extra.client_id) ?? job.client_id;
    const tp = typeof extra.traceparent === 'string' ? TRACEPARENT.exec(extra.traceparent) : null;
    job.trace_id = tp ? tp[1]! : (str(extra.trace_id) ?? job.trace_id);
    job.extra = redactExtra(extra);
    if (item.outputs_to_execute.length > 0) job.outputs_to_execute = item.outputs_to_execute;
    if (!job.graph_known && Object.keys(item.graph).length > 0) this.absorbGraph(job, item.graph);
  }

  /** Learns the graph once: class types and titles, which nodes run, and a dependency order. */
  private absorbGraph(job: Job, graph: Record<string, unknown>): void {
    job.graph_known = true;
    const needed = neededNodes(graph, job.outputs_to_execute);
    for (const id of Object.keys(graph)) {
      const n = graph[id];
      const classType = isRecord(n) ? (str(n.class_type) ?? 'unknown') : 'unknown';
      const meta = isRecord(n) && isRecord(n._meta) ? n._meta : null;
      const known = job.nodes.get(id);
      if (known) {
        // Seen in progress frames before the graph: keep its status, learn what it is.
        known.class_type = classType;
        known.title = meta ? str(meta.title) : null;
        known.needed = needed === null || needed.has(id);
      } else {
        job.nodes.set(id, {
          node_id: id,
          class_type: classType,
          title: meta ? str(meta.title) : null,
          status: 'pending',
          steps: null,
          total: null,
          started_at: null,
          finished_at: null,
          needed: needed === null || needed.has(id),
        });
      }
    }
    job.upstream = ancestors(graph);
    const ordered = topologicalOrder(graph);
    job.order = [...ordered, ...job.order.filter((id) => !(id in graph))];
  }

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
      if (!this.isFinal(job) && job.status !== 'running') {
        job.status = 'running';
        job.started_at ??= now;
        job.last_activity = now;
      }
      job.source.add('queue');
      this.lastSeenJob = job.prompt_id;
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
      if (!this.isFinal(job) && !present.has(job.prompt_id)) left.push(job.prompt_id);
      else if (present.has(job.prompt_id)) job.missing_checks = 0;
    }
    const changed = this.runningIds.join() !== running.map((r) => r.prompt_id).join() || this.pendingOrder.join() !== sorted.map((p) => p.prompt_id).join();
    if (changed) for (const id of [...running.map((r) => r.prompt_id)]) this.jobs.get(id)!.last_activity = now;
    this.runningIds = running.map((r) => r.prompt_id);
    this.pendingOrder = sorted.map((p) => p.prompt_id);
    return left;
  }

  /** Ids ComfyUI lists as running or pending, in execution order. */
  queueOrder(): { running: string[]; pending: string[] } {
    return { running: [...this.runningIds], pending: [...this.pendingOrder] };
  }

  /**
   * A /history entry for a prompt that finished. `silent` imports it without telling finish
   * listeners (jobs that ended before podscope started are shown, not counted in metrics).
   */
  applyHistory(now: number, promptId: string, entry: unknown, opts: { silent?: boolean } = {}): void {
    if (!isRecord(entry)) return;
    const job = this.ensure(promptId, now);
    if (Array.isArray(entry.prompt)) {
      const item = parseQueueItem(entry.prompt);
      if (item) this.absorbItem(job, item);
    }
    job.source.add('history');
    const status = isRecord(entry.status) ? entry.status : {};
    const messages = Array.isArray(status.messages) ? status.messages : [];
    let outcome: JobStatus | null = null;
    for (const m of messages) {
      if (!Array.isArray(m) || typeof m[0] !== 'string' || !isRecord(m[1])) continue;
      const [type, data] = m as [string, Record<string, unknown>];
      const ts = typeof data.timestamp === 'number' ? data.timestamp : null;
      switch (type) {
        case 'execution_start':
          if (ts) job.started_at = ts;
          break;
        case 'execution_cached':
          this.markCached(job, data.nodes, ts ?? now);
          break;
        case 'execution_success':
          outcome = 'success';
          if (ts) job.finished_at = ts;
          break;
        case 'execution_error':
          outcome = 'error';
          this.setError(job, data, ts ?? now);
          if (ts) job.finished_at = ts;
          break;
        case 'execution_interrupted':
          outcome = 'interrupted';
          this.setInterrupted(job, data, ts ?? now);
          if (ts) job.finished_at = ts;
          break;
      }
    }
    if (isRecord(entry.outputs)) {
      for (const [nodeId, ui] of Object.entries(entry.outputs)) if (isRecord(ui)) this.addOutput(job, nodeId, ui);
    }
    if (!outcome) {
      const s = str(status.status_str);
      if (s === 'success') outcome = 'success';
      else if (s === 'error') outcome = 'error';
      else if (status.completed === true) outcome = 'success';
    }
    if (!outcome) return; // history without an outcome yet: wait for the next look
    this.finish(job, outcome, job.finished_at ?? now, opts.silent);
  }

  /** A prompt left the queue and history does not know it. Two misses in a row make it lost. */
  applyMissing(now: number, promptId: string, reason: string): void {
    const job = this.jobs.get(promptId);
    if (!job || this.isFinal(job)) return;
    job.missing_checks++;
    if (job.missing_checks >= 2) {
      job.lost_reason = reason;
      this.finish(job, 'lost', now);
    }
  }

  /** ComfyUI restarted (or vanished for good): every unfinished job is lost. */
  loseUnfinished(now: number, reason: string): Job[] {
    const lost: Job[] = [];
    for (const job of this.jobs.values()) {
      if (this.isFinal(job)) continue;
      job.lost_reason = reason;
      this.finish(job, 'lost', now);
      lost.push(job);
    }
    this.runningIds = [];
    this.pendingOrder = [];
    return lost;
  }

  /** Broadcast `progress`: one ProgressBar tick of a node. */
  applyProgress(now: number, data: Record<string, unknown>): void {
    const promptId = str(data.prompt_id);
    const nodeId = str(data.node);
    if (!promptId || !nodeId) return;
    const job = this.ensure(promptId, now);
    if (this.isFinal(job)) return;
    this.markRunning(job, now);
    const node = this.node(job, nodeId);
    const value = typeof data.value === 'number' ? data.value : null;
    const max = typeof data.max === 'number' ? data.max : null;
    this.startNode(job, node, now);
    if (value !== null) node.steps = value;
    if (max !== null) node.total = max;
    job.source.add('progress');
    this.bump(job);
  }

  /** Broadcast `progress_state`: a snapshot of every non-pending node. */
  applyProgressState(now: number, data: Record<string, unknown>): void {
    const promptId = str(data.prompt_id);
    if (!promptId || !isRecord(data.nodes)) return;
    const job = this.ensure(promptId, now);
    if (this.isFinal(job)) return;
    this.markRunning(job, now);
    for (const [id, raw] of Object.entries(data.nodes)) {
      if (!isRecord(raw)) continue;
      const nodeId = str(raw.display_node_id) ?? str(raw.node_id) ?? id;
      if (str(raw.parent_node_id)) continue; // subgraph internals: the parent node stands for them
      const node = this.node(job, nodeId);
      const value = typeof raw.value === 'number' ? raw.value : null;
      const max = typeof raw.max === 'number' ? raw.max : null;
      if (raw.state === 'finished') {
        if (node.status !== 'cached') this.completeNode(node, now);
      } else if (raw.state === 'running') {
        this.startNode(job, node, now);
      }
      // A 0/1 placeholder at node start says nothing about steps.
      if (max !== null && !(max === 1 && node.total !== null && node.total > 1)) {
        node.total = max;
        if (value !== null) node.steps = value;
      }
    }
    job.source.add('progress_state');
    this.bump(job);
  }

  /** An execution frame that reached podscope (the tap, or a prompt without a client_id). */
  applyFrame(now: number, type: string, data: Record<string, unknown>): void {
    const promptId = str(data.prompt_id);
    if (!promptId) return;
    const job = this.ensure(promptId, now);
    job.source.add('frames');
    const ts = typeof data.timestamp === 'number' ? data.timestamp : now;
    switch (type) {
      case 'execution_start':
        if (!this.isFinal(job)) {
          job.status = 'running';
          job.started_at = ts;
        }
        break;
      case 'execution_cached':
        this.markCached(job, data.nodes, ts);
        break;
      case 'executing': {
        if (this.isFinal(job)) break;
        const nodeId = str(data.display_node) ?? str(data.node);
        if (data.node === null) break; // the end marker; the outcome frame or history decides
        if (!nodeId) break;
        this.markRunning(job, now);
        // A new node starting means the previous running one finished.
        for (const n of job.nodes.values()) if (n.status === 'running' && n.node_id !== nodeId) this.completeNode(n, now);
        this.startNode(job, this.node(job, nodeId), now);
        break;
      }
      case 'executed': {
        const nodeId = str(data.display_node) ?? str(data.node);
        if (!nodeId) break;
        const node = this.node(job, nodeId);
        if (node.status !== 'cached') this.completeNode(node, now);
        if (isRecord(data.output)) this.addOutput(job, nodeId, data.output);
        break;
      }
      case 'execution_success':
        this.finish(job, 'success', ts);
        break;
      case 'execution_error':
        // An ExecutionBlocker error has no timestamp and does not stop the prompt.
        if (typeof data.timestamp !== 'number' && Array.isArray(data.current_inputs)) break;
        this.setError(job, data, ts);
        this.finish(job, 'error', ts);
        break;
      case 'execution_interrupted':
        this.setInterrupted(job, data, ts);
        this.finish(job, 'interrupted', ts);
        break;
    }
    this.bump(job);
    if (!this.isFinal(job)) job.last_activity = now;
  }

  /** A log line while a job runs counts as a sign of life; a tqdm step feeds the running node. */
  applyLogActivity(now: number, step?: { value: number; total: number }): void {
    const job = this.running();
    if (!job) return;
    job.last_activity = now;
    if (step && !job.current_node) {
      // No frame says which node runs: a tqdm bar comes from a sampler, so take the first one not done.
      const sampler = job.order.map((id) => job.nodes.get(id)!).find((n) => n && n.needed && n.status === 'pending' && /Sampler/i.test(n.class_type));
      if (sampler) this.startNode(job, sampler, now);
    }
    if (step && job.current_node) {
      const node = job.nodes.get(job.current_node);
      if (node && node.status === 'running' && (node.total === null || node.total === step.total || node.total <= 1)) {
        node.steps = step.value;
        node.total = step.total;
        job.source.add('logs');
        this.bump(job);
      }
    }
  }

  /** Attaches extra fields to a job's error (forensics); creates a minimal error when none exists. */
  annotateError(promptId: string, extra: Record<string, unknown>): void {
    const job = this.jobs.get(promptId);
    if (!job) return;
    job.error ??= { node_id: job.current_node, class_type: job.current_node ? (job.nodes.get(job.current_node)?.class_type ?? null) : null, exception_type: 'unknown', exception_message: '', traceback: [] };
    Object.assign(job.error, extra);
  }

  private markRunning(job: Job, now: number): void {
    if (job.status === 'queued') {
      job.status = 'running';
      job.started_at ??= now;
    }
    job.last_activity = now;
  }

  private node(job: Job, nodeId: string): JobNode {
    let node = job.nodes.get(nodeId);
    if (!node) {
      node = { node_id: nodeId, class_type: 'unknown', title: null, status: 'pending', steps: null, total: null, started_at: null, finished_at: null, needed: true };
      job.nodes.set(nodeId, node);
      job.order.push(nodeId);
    }
    return node;
  }

  private startNode(job: Job, node: JobNode, now: number): void {
    if (node.status === 'pending') {
      node.status = 'running';
      node.started_at = now;
      // A node runs only once all its inputs exist: everything upstream is done (or cached).
      for (const up of job.upstream.get(node.node_id) ?? []) {
        const n = job.nodes.get(up);
        if (n && (n.status === 'pending' || n.status === 'running')) {
          n.status = 'completed';
          n.finished_at ??= now;
        }
      }
    }
    if (node.status === 'running') job.current_node = node.node_id;
  }

  private completeNode(node: JobNode, now: number): void {
    if (node.status === 'completed' || node.status === 'cached' || node.status === 'error') return;
    node.started_at ??= now;
    node.status = 'completed';
    node.finished_at = now;
    if (node.total !== null) node.steps = node.total;
  }

  private markCached(job: Job, nodes: unknown, ts: number): void {
    if (!Array.isArray(nodes)) return;
    for (const id of nodes) {
      const nodeId = str(id);
      if (!nodeId) continue;
      const node = this.node(job, nodeId);
      // An inferred completion (never seen starting) may in truth have been cached.
      if (node.status === 'pending' || node.status === 'running' || (node.status === 'completed' && node.started_at === null)) {
        node.status = 'cached';
        node.finished_at = ts;
      }
    }
    this.bump(job);
  }

  private setError(job: Job, data: Record<string, unknown>, ts: number): void {
    const nodeId = str(data.node_id);
    const tb = Array.isArray(data.traceback) ? data.traceback.filter((t): t is string => typeof t === 'string') : typeof data.traceback === 'string' ? [data.traceback] : [];
    job.error = {
      ...(job.error ?? {}),
      node_id: nodeId,
      class_type: str(data.node_type) ?? (nodeId ? (job.nodes.get(nodeId)?.class_type ?? null) : null),
      exception_type: str(data.exception_type) ?? 'unknown',
      exception_message: typeof data.exception_message === 'string' ? data.exception_message.replace(/\n+$/, '') : '',
      traceback: tb,
    };
    this.settleNodes(job, data.executed, nodeId, 'error', ts);
  }

  private setInterrupted(job: Job, data: Record<string, unknown>, ts: number): void {
    const nodeId = str(data.node_id);
    job.error = {
      node_id: nodeId,
      class_type: str(data.node_type) ?? (nodeId ? (job.nodes.get(nodeId)?.class_type ?? null) : null),
      exception_type: 'Interrupted',
      exception_message: 'Processing interrupted',
      traceback: [],
    };
    this.settleNodes(job, data.executed, nodeId, 'skipped', ts);
  }

  /** After an error or interrupt: executed nodes completed, the failing node marked, the rest skipped. */
  private settleNodes(job: Job, executed: unknown, failed: string | null, failedStatus: NodeStatus, ts: number): void {
    if (Array.isArray(executed)) {
      for (const id of executed) {
        const nodeId = str(id);
        if (nodeId) this.completeNode(this.node(job, nodeId), ts);
      }
    }
    if (failed) {
      const node = this.node(job, failed);
      node.started_at ??= ts;
      node.status = failedStatus;
      node.finished_at = ts;
    }
  }

  private addOutput(job: Job, nodeId: string, ui: Record<string, unknown>): void {
    const node = job.nodes.get(nodeId);
    const cached = node?.status === 'cached';
    const existing = job.outputs.find((o) => o.node_id === nodeId);
    if (existing) {
      existing.ui = ui;
      existing.cached = cached;
    } else {
      job.outputs.push({ node_id: nodeId, ui, cached });
    }
  }

  private finish(job: Job, outcome: JobStatus, ts: number, silent = false): void {
    if (this.isFinal(job)) {
      // History may refine an outcome first learned from frames; never the other way round.
      if (job.status === outcome || job.status === 'lost') return;
    }
    const wasFinal = this.isFinal(job);
    job.status = outcome;
    job.finished_at = ts;
    job.current_node = null;
    for (const node of job.nodes.values()) {
      if (outcome === 'success') {
        if (node.status === 'pending' || node.status === 'running') {
          if (node.needed) this.completeNode(node, ts);
          else node.status = 'skipped';
        }
      } else if (node.status === 'pending' || node.status === 'running') {
        node.status = node.status === 'running' && outcome === 'error' && !job.error?.node_id ? 'error' : 'skipped';
        node.finished_at = ts;
      }
    }
    if (outcome === 'success') job.progress = 100;
    this.runningIds = this.runningIds.filter((id) => id !== job.prompt_id);
    this.pendingOrder = this.pendingOrder.filter((id) => id !== job.prompt_id);
    if (!wasFinal) {
      this.finished.push(job.prompt_id);
      this.evict();
      if (!silent) for (const l of this.finishListeners) l(job);
    }
  }

  private evict(): void {
    while (this.finished.length > this.opts.historyLimit) {
      const id = this.finished.shift()!;
      const job = this.jobs.get(id);
      this.jobs.delete(id);
      if (job && this.byJobId.get(job.job_id) === id) this.byJobId.delete(job.job_id);
      this.byJobId.delete(id);
      if (this.lastSeenJob === id) this.lastSeenJob = null;
    }
  }

  /** Recomputes progress: settled nodes plus the running node's step fraction; never goes down. */
  private bump(job: Job): void {
    const counted = [...job.nodes.values()].filter((n) => n.needed);
    const total = counted.length;
    if (total === 0) return;
    let done = 0;
    for (const n of counted) {
      if (n.status === 'completed' || n.status === 'cached') done += 1;
      else if (n.status === 'running' && n.total && n.total > 0 && n.steps !== null) done += Math.min(1, n.steps / n.total);
    }
    const pct = job.status === 'success' ? 100 : Math.min(99, Math.floor((done / total) * 1000) / 10);
    if (pct > job.progress) job.progress = pct;
  }

  /** Whether the job is known and has its outcome. */
  isFinished(promptId: string): boolean {
    const j = this.jobs.get(promptId);
    return j !== undefined && this.isFinal(j);
  }

  get(idOrJobId: string): Job | undefined {
    return this.jobs.get(idOrJobId) ?? this.jobs.get(this.byJobId.get(idOrJobId) ?? '');
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
    const key = (j: Job) => Math.max(j.finished_at ?? 0, j.started_at ?? 0, j.queued_at ?? 0);
    for (const j of this.jobs.values()) if (!best || key(j) >= key(best)) best = j;
    return best;
  }

  all(): Job[] {
    return [...this.jobs.values()];
  }

  unfinished(): Job[] {
    return [...this.jobs.values()].filter((j) => !this.isFinal(j));
  }

  snapshot(job: Job): JobSnapshot {
    const nodes = job.order.map((id) => job.nodes.get(id)!).filter(Boolean);
    const needed = nodes.filter((n) => n.needed);
    return {
      ...job,
      nodes,
      source: [...job.source],
      nodes_total: needed.length,
      nodes_completed: needed.filter((n) => n.status === 'completed' || n.status === 'cached').length,
    };
  }
}

/** Node ids ordered so each comes after its inputs; ties go to the lower id (numeric when ids are numbers). */
export function topologicalOrder(graph: Record<string, unknown>): string[] {
  const ids = Object.keys(graph);
  const deps = new Map<string, Set<string>>();
  const users = new Map<string, string[]>();
  for (const id of ids) {
    const node = graph[id];
    const inputs = isRecord(node) && isRecord(node.inputs) ? node.inputs : {};
    const set = new Set<string>();
    for (const v of Object.values(inputs)) {
      if (Array.isArray(v) && v.length === 2 && (typeof v[0] === 'string' || typeof v[0] === 'number')) {
        const up = String(v[0]);
        if (up in graph && up !== id) set.add(up);
      }
    }
    deps.set(id, set);
    for (const up of set) users.set(up, [...(users.get(up) ?? []), id]);
  }
  const cmp = (a: string, b: string) => (Number(a) - Number(b)) || a.localeCompare(b);
  const ready = ids.filter((id) => deps.get(id)!.size === 0).sort(cmp);
  const out: string[] = [];
  while (ready.length > 0) {
    const id = ready.shift()!;
    out.push(id);
    for (const u of users.get(id) ?? []) {
      const d = deps.get(u)!;
      d.delete(id);
      if (d.size === 0) {
        ready.push(u);
        ready.sort(cmp);
      }
    }
  }
  // A cycle (invalid graph) leaves nodes behind: keep them, in id order.
  for (const id of ids.sort(cmp)) if (!out.includes(id)) out.push(id);
  return out;
}

/** For each node, every node upstream of it (its inputs, their inputs, …). */
export function ancestors(graph: Record<string, unknown>): Map<string, Set<string>> {
  const direct = new Map<string, string[]>();
  for (const id of Object.keys(graph)) {
    const node = graph[id];
    const inputs = isRecord(node) && isRecord(node.inputs) ? node.inputs : {};
    const ups: string[] = [];
    for (const v of Object.values(inputs)) {
      if (Array.isArray(v) && v.length === 2 && (typeof v[0] === 'string' || typeof v[0] === 'number') && String(v[0]) in graph) ups.push(String(v[0]));
    }
    direct.set(id, ups);
  }
  const out = new Map<string, Set<string>>();
  for (const id of direct.keys()) {
    const seen = new Set<string>();
    const stack = [...direct.get(id)!];
    while (stack.length > 0) {
      const up = stack.pop()!;
      if (seen.has(up) || up === id) continue;
      seen.add(up);
      stack.push(...(direct.get(up) ?? []));
    }
    out.set(id, seen);
  }
  return out;
}

/**
 * The nodes an execution needs: the outputs and everything upstream of them (inputs given as
 * `[node_id, slot]` links). Null when the graph does not say which outputs run.
 */
export function neededNodes(graph: Record<string, unknown>, outputs: readonly string[]): Set<string> | null {
  if (outputs.length === 0) return null;
  const needed = new Set<string>();
  const stack = outputs.filter((o) => o in graph);
  if (stack.length === 0) return null;
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (needed.has(id)) continue;
    needed.add(id);
    const node = graph[id];
    const inputs = isRecord(node) && isRecord(node.inputs) ? node.inputs : {};
    for (const v of Object.values(inputs)) {
      if (Array.isArray(v) && v.length === 2 && (typeof v[0] === 'string' || typeof v[0] === 'number') && typeof v[1] === 'number') {
        const up = String(v[0]);
        if (up in graph && !needed.has(up)) stack.push(up);
      }
    }
  }
  return needed;
}
