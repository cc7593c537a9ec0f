/**
 * The job reducer: typed ComfyUI events (sources/comfy-events.ts) and the caller's clock in, jobs
 * out. Synchronous and free of I/O; no input can make it throw.
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
 *
 * Beside it: job-book.ts (the jobs known, their identities and graphs, every read), job-nodes.ts
 * (how events move a node), job-progress.ts (progress and size), job-payload.ts (what a prompt's
 * payload says), job-graph.ts (the graph's order and what each node needs).
 */
import type { ComfyEvent, ExecutionEvent, HistoryRecord } from '../shared/comfy-event-types.js';
import { isFinal, isRecord, type Job, type JobError, type JobStatus, type JobUsage, type QueueItem, type ReadonlyJob, type TimeSource } from '../shared/job-types.js';
import { addOutput, completeNode, keepNodesInsideRun, markStarted, nodeOf, ownsBar, progressState, progressTick, retime, setError, setInterrupted, startNode } from './job-nodes.js';
import { rejectionReasons, text } from './job-payload.js';
import { recompute } from './job-progress.js';
import { JobBook, type JobBookOptions } from './job-book.js';

export type { JobsReader } from './job-book.js';

export * from '../shared/job-types.js';
export { ancestors, neededNodes, topologicalOrder } from './job-graph.js';
export { parseTraceParent, redactExtra, rejectionReasons } from './job-payload.js';
export { RUNNING_PROGRESS_CAP } from './job-progress.js';

/** Told of a job's outcome: the finish pipeline (see {@link JobTracker.finishWith}). */
export type FinishHandler = (job: ReadonlyJob, refined: boolean) => void;

export type JobTrackerOptions = JobBookOptions;

export class JobTracker extends JobBook {
  /** The finish pipeline (composed in main.ts): told of every outcome, set once. */
  private finisher: FinishHandler | null = null;

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
        markStarted(job, e.t ?? now, e.t !== null ? 'comfyui' : 'observed');
        break;
      case 'node_start': {
        if (isFinal(job.status)) break;
        job.source.add('tap');
        const t = e.t ?? now;
        markStarted(job, t, 'observed');
        const node = nodeOf(job, e.node_id);
        if (e.class_type && node.class_type === 'unknown') node.class_type = e.class_type;
        startNode(job, node, t, e.t !== null ? 'comfyui' : 'observed');
        break;
      }
      case 'node_end': {
        job.source.add('tap');
        const node = nodeOf(job, e.node_id);
        if (e.peak_vram_bytes !== null) node.peak_vram_bytes = Math.max(node.peak_vram_bytes ?? 0, e.peak_vram_bytes);
        if (e.outcome === 'success') completeNode(node, e.t ?? now, e.t !== null ? 'comfyui' : 'observed');
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
        markStarted(job, now, 'observed');
        // A new node starting means the one running before it finished.
        for (const n of job.nodes.values()) if (n.status === 'running' && n.node_id !== e.node) completeNode(n, now, 'observed');
        startNode(job, nodeOf(job, e.node), now, 'observed');
        break;
      }
      case 'executed': {
        job.source.add('frames');
        const node = nodeOf(job, e.node);
        if (node.status !== 'cached') completeNode(node, now, 'observed');
        if (e.output) addOutput(job, e.node, e.output);
        break;
      }
      case 'progress':
        if (isFinal(job.status)) break;
        job.source.add('progress');
        progressTick(job, e.node, e.value, e.max, now);
        break;
      case 'progress_state':
        if (isFinal(job.status)) break;
        job.source.add('progress_state');
        progressState(job, e.nodes, now);
        break;
      default:
        job.source.add('frames');
        this.execution(job, e, now);
    }
    if (!isFinal(job.status)) job.last_activity = now;
    recompute(job);
    this.sizes.delete(job.prompt_id);
    this.touch(now);
  }

  private execution(job: Job, e: ExecutionEvent, now: number): void {
    const ts = e.ts ?? now;
    // The frame's own time is ComfyUI's; without one, it is when podscope saw the frame.
    const timing: TimeSource = e.ts !== null ? 'comfyui' : 'observed';
    switch (e.type) {
      case 'execution_start':
        if (!isFinal(job.status)) markStarted(job, ts, timing);
        else if (e.ts !== null) job.started_at = e.ts;
        break;
      case 'execution_cached':
        for (const id of e.nodes) {
          const node = nodeOf(job, id);
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
        setError(job, e.error, e.executed, ts);
        this.finish(job, 'error', ts, false, timing);
        break;
      case 'execution_interrupted':
        setInterrupted(job, e.node_id, e.node_type, e.executed, ts);
        this.finish(job, 'interrupted', ts, false, timing);
        break;
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
      class_type: first && isRecord(first[1]) ? text(first[1].class_type) : null,
      exception_type: 'PromptRejected',
      exception_message: reasons.join('\n'),
      traceback: [],
      rejection: { type: e.error ? text(e.error.type) : null, reasons },
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
      if (!isFinal(job.status)) markStarted(job, now, 'observed');
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
          setError(job, m.error, m.executed, m.ts ?? now);
          break;
        case 'execution_interrupted':
          outcome = 'interrupted';
          end = m.ts;
          setInterrupted(job, m.node_id, m.node_type, m.executed, m.ts ?? now);
          break;
      }
    }
    for (const o of record.outputs) addOutput(job, o.node_id, o.ui);
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
    keepNodesInsideRun(job);
    recompute(job);
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
      startNode(job, node, now, 'observed');
    }
    if (node.status !== 'running') return;
    node.steps = step.value;
    node.total = step.total;
    job.source.add('logs');
    recompute(job);
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
        if (outcome === 'success') completeNode(node, ts, 'observed');
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
    if (!silent && !wasFinal) this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
    keepNodesInsideRun(job);
    if (!silent) this.finisher?.(job, wasFinal);
  }
}
