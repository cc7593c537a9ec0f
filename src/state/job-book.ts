/**
 * The jobs podscope knows: every job by prompt id, the platform job id's index (a retry takes the
 * id over), each prompt's identity and graph as its payload says them, the bounded memory of
 * finished jobs, and every read. The job tracker (jobs.ts) extends it with what events do.
 */
import { ancestors, neededNodes, plannedSteps, topologicalOrder } from './job-graph.js';
import { isFinal, isRecord, type DeepReadonly, type Job, type JobSnapshot, type JobStatus, type QueueItem, type ReadonlyJob } from '../shared/job-types.js';
import { done, nodeOf } from './job-nodes.js';
import { parseTraceParent, redactExtra, text } from './job-payload.js';
import { estimateBytes, recompute } from './job-progress.js';

export interface JobBookOptions {
  jobIdKey: string;
  historyLimit: number;
  /** The ComfyUI instance whose jobs these are; every job carries its name (default "comfyui"). */
  instance?: string;
}

export class JobBook {
  /** Every known job by prompt_id; finished ones are bounded by historyLimit. */
  protected readonly jobs = new Map<string, Job>();
  /** Finished prompt ids, oldest first (for eviction). */
  protected readonly finished: string[] = [];
  /** Platform job id → the newest prompt carrying it. */
  protected readonly byJobId = new Map<string, string>();
  protected pendingOrder: string[] = [];
  protected runningIds: string[] = [];
  private readonly changeListeners: Array<() => void> = [];
  /** Size estimates of finished jobs (see {@link approxBytes}). */
  protected readonly sizes = new Map<string, number>();
  /** Bumped on every change, so views can tell whether a snapshot is stale. */
  version = 0;
  /** When the state last changed, by the caller's clock. */
  updatedAt: number | null = null;

  constructor(protected readonly opts: JobBookOptions) {}

  /** Every job known: the finished ones remembered, and those queued or running. */
  get size(): number {
    return this.jobs.size;
  }

  /**
   * Jobs that reached an outcome since podscope started, by their first outcome (a job called
   * lost that ComfyUI's record later refines stays counted as lost), whether or not still remembered;
   * jobs imported from ComfyUI's history of before are not counted.
   */
  readonly outcomes = new Map<JobStatus, number>();

  /** Finished jobs remembered, at most historyLimit: the bounded part /debug/memory reports. */
  get rememberedCount(): number {
    return this.finished.length;
  }

  protected touch(now: number): void {
    this.version++;
    this.updatedAt = now;
    for (const l of this.changeListeners) l();
  }

  /** Calls `listener` after anything about the jobs changed (it should defer its own work). */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  protected ensure(promptId: string, now: number): Job {
    let job = this.jobs.get(promptId);
    if (!job) {
      job = {
        instance: this.opts.instance ?? 'comfyui',
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
  protected absorbExtra(job: Job, extra: Record<string, unknown>): void {
    const jobId = text(extra[this.opts.jobIdKey]) ?? job.prompt_id;
    job.identity_known = true;
    if (jobId !== job.job_id || !this.byJobId.has(jobId)) {
      if (this.byJobId.get(job.job_id) === job.prompt_id && job.job_id !== jobId) this.byJobId.delete(job.job_id);
      job.job_id = jobId;
      this.link(job);
    }
    job.client_id = text(extra.client_id) ?? job.client_id;
    const parent = parseTraceParent(extra.traceparent);
    job.trace_parent = parent ?? job.trace_parent;
    job.trace_id = parent?.trace_id ?? text(extra.trace_id) ?? job.trace_id;
    // Newer ComfyUI stamps the POST time (ms) into extra_data.
    const created = typeof extra.create_time === 'number' && Number.isFinite(extra.create_time) ? extra.create_time : null;
    if (created !== null && job.queued_at === null) job.queued_at = created;
    job.extra = { ...job.extra, ...redactExtra(extra) };
  }

  /** Points the job id at this prompt unless a newer prompt already carries it. */
  protected link(job: Job): void {
    const other = this.jobs.get(this.byJobId.get(job.job_id) ?? '');
    if (other && other !== job) {
      const newer = other.number !== null && job.number !== null ? job.number > other.number : job.first_seen_at >= other.first_seen_at;
      if (!newer) return;
      job.retry_of = other.prompt_id;
    }
    this.byJobId.set(job.job_id, job.prompt_id);
  }

  protected absorbItem(job: Job, item: QueueItem): void {
    job.number = item.number ?? job.number;
    this.absorbExtra(job, item.extra_data);
    this.absorbGraph(job, item.graph, item.outputs_to_execute);
  }

  /** Learns the graph once: class types, titles, planned steps, which nodes run, a dependency order. */
  protected absorbGraph(job: Job, graph: Record<string, unknown>, outputs: string[]): void {
    if (outputs.length > 0 && job.outputs_to_execute.length === 0) job.outputs_to_execute = outputs;
    if (job.graph_known || Object.keys(graph).length === 0) return;
    job.graph_known = true;
    const needed = neededNodes(graph, job.outputs_to_execute);
    for (const id of Object.keys(graph)) {
      const raw = graph[id];
      const node = nodeOf(job, id);
      node.class_type = (isRecord(raw) ? text(raw.class_type) : null) ?? node.class_type;
      node.title = isRecord(raw) && isRecord(raw._meta) ? text(raw._meta.title) : node.title;
      node.planned_steps = plannedSteps(raw);
      node.needed = needed === null || needed.has(id);
    }
    job.upstream = ancestors(graph);
    const ordered = topologicalOrder(graph);
    job.order = [...ordered, ...job.order.filter((id) => !(id in graph))];
    recompute(job);
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

  /** A finished job learned something after its outcome: its size is measured again, readers see a new version. */
  protected changed(job: Job): void {
    this.sizes.delete(job.prompt_id);
    this.version++;
  }

  protected evict(): void {
    while (this.finished.length > this.opts.historyLimit) {
      const id = this.finished.shift()!;
      const job = this.jobs.get(id);
      this.jobs.delete(id);
      this.sizes.delete(id);
      if (job && this.byJobId.get(job.job_id) === id) this.byJobId.delete(job.job_id);
    }
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
        bytes = estimateBytes(job);
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

/** The jobs as readers see them: read-only, with the queue's order; never an event applied. */
export interface JobsReader
  extends Readonly<Pick<JobBook, 'size' | 'rememberedCount' | 'version' | 'updatedAt' | 'has' | 'isFinished' | 'queueOrder' | 'snapshot' | 'approxBytes'>> {
  readonly outcomes: ReadonlyMap<JobStatus, number>;
  get(idOrJobId: string): ReadonlyJob | undefined;
  running(): ReadonlyJob | undefined;
  latest(): ReadonlyJob | undefined;
  all(): ReadonlyJob[];
  unfinished(): ReadonlyJob[];
}
