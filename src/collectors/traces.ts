/**
 * Turns each finished job into a trace (a span for the job, a child for its time in the queue and
 * one per executed node) and hands it to the trace sink, which exports it over OTLP.
 *
 * Spans are placed on ComfyUI's clock (the tap's reports, /history's messages) wherever ComfyUI
 * gave a time. A time only podscope saw (a broadcast frame's arrival, a /queue poll) is used and
 * the span says so (`podscope.timing: observed`). A start nobody knows is never filled in: the span
 * starts where it ends and carries `podscope.start_unknown: true`.
 */
import type { Collector } from './collector.js';
import type { Instances } from '../state/instances.js';
import type { HealthBoard, ProblemChange } from '../state/health.js';

import { isGpuOom, type DeepReadonly, type JobNode, type NodeStatus, type ReadonlyJob } from '../shared/job-types.js';
import type { Attributes, JobTrace, SpanEventPlan, SpanPlan, TraceSink } from '../shared/traces.js';
import type { Scrubber } from '../secrets.js';

/** Nodes that ran, or were replayed from cache: each gets a span. */
const EXECUTED: ReadonlySet<NodeStatus> = new Set(['completed', 'cached', 'error', 'interrupted']);

/** Longest exception message and traceback an attribute carries. */
const MESSAGE_CHARS = 4096;
const STACK_CHARS = 16_384;
/** Stalls remembered per job (a job that stalls, wakes and stalls again). */
const STALLS_PER_JOB = 20;

export interface Stall {
  at: number;
  message: string;
}

export interface JobTraceOptions {
  /** Stalls podscope declared while the job ran. */
  stalls?: readonly Stall[];
  /** Scrubs secrets out of every string that becomes an attribute. */
  scrub?: (text: string) => string;
  /** The version of the ComfyUI instance that ran it (the resource names the first instance's). */
  comfyuiVersion?: string | null;
}

/** A job's trace; null while it has not finished (its spans would have no end). */
export function jobTrace(job: ReadonlyJob, opts: JobTraceOptions = {}): JobTrace | null {
  if (job.finished_at === null) return null;
  const end = job.finished_at;
  const started = job.started_at;
  const comfyStart = job.started_timing === 'comfyui' ? started : null;
  const start = job.queued_at ?? comfyStart;
  const startTiming = job.queued_at !== null || job.started_timing === 'comfyui' ? 'comfyui' : started !== null ? 'observed' : null;
  const timing = startTiming === null ? null : startTiming === 'comfyui' && job.finished_timing !== 'observed' ? 'comfyui' : 'observed';

  const root = span('comfyui.job', start ?? started, end, timing, {
    'comfyui.prompt.id': job.prompt_id,
    'comfyui.instance': job.instance,
    'podscope.job.id': job.job_id,
    'comfyui.job.status': job.status,
    'comfyui.job.nodes': job.order.filter((id) => job.nodes.get(id)?.needed).length,
    'comfyui.job.nodes_executed': [...job.nodes.values()].filter((n) => EXECUTED.has(n.status)).length,
    'comfyui.job.outputs': job.outputs.length,
  });
  const a = root.attributes;
  if (job.number !== null) a['comfyui.prompt.number'] = job.number;
  if (opts.comfyuiVersion) a['comfyui.version'] = opts.comfyuiVersion;
  if (job.usage) {
    a['podscope.job.gpu_seconds'] = job.usage.gpu_seconds;
    a['podscope.job.busy_gpu_seconds'] = job.usage.busy_gpu_seconds;
    if (job.usage.peak_vram_mb !== null) a['podscope.job.peak_vram_mb'] = job.usage.peak_vram_mb;
  }
  if (job.retry_of) a['podscope.job.retry_of'] = job.retry_of;

  // The time in the queue: from ComfyUI's acceptance to the start (or the end, for a job that never ran).
  const queueEnd = started ?? end;
  root.children.push(span('comfyui.queue', job.queued_at, queueEnd, job.queued_at !== null ? (started === null || job.started_timing === 'comfyui' ? 'comfyui' : 'observed') : null, {}));

  const nodeSpans = new Map<string, SpanPlan>();
  for (const id of job.order) {
    const node = job.nodes.get(id);
    if (!node || !EXECUTED.has(node.status)) continue;
    const s = nodeSpan(node, started, end);
    nodeSpans.set(id, s);
    root.children.push(s);
  }

  outcome(job, root, nodeSpans, end);
  for (const stall of opts.stalls ?? []) {
    root.events.push({ name: 'comfyui.stall', at: stall.at, attributes: { message: stall.message, 'podscope.timing': 'observed' } });
  }
  if (opts.scrub) scrubPlan(root, opts.scrub);
  return { parent: job.trace_parent, trace_id: job.trace_id, root };
}

function span(name: string, start: number | null, end: number, timing: 'comfyui' | 'observed' | null, attributes: Attributes): SpanPlan {
  const known = start !== null;
  const attrs: Attributes = { ...attributes, 'podscope.timing': known ? (timing ?? 'observed') : 'unknown' };
  if (!known) attrs['podscope.start_unknown'] = true;
  return { name, start: known ? Math.min(start, end) : end, end, attributes: attrs, events: [], error: null, children: [] };
}

function nodeSpan(node: DeepReadonly<JobNode>, jobStart: number | null, jobEnd: number): SpanPlan {
  // A node still running when the job ended (interrupted, lost) ended with it.
  const end = node.finished_at ?? (node.started_at !== null ? jobEnd : (jobStart ?? jobEnd));
  const s = span(node.class_type, node.started_at, end, node.timing, {
    'comfyui.node.id': node.node_id,
    'comfyui.node.class_type': node.class_type,
    'comfyui.node.status': node.status,
    'comfyui.node.cached': node.status === 'cached',
  });
  if (node.title) s.attributes['comfyui.node.title'] = node.title;
  if (node.steps !== null) s.attributes['comfyui.node.steps'] = node.steps;
  if (node.total !== null) s.attributes['comfyui.node.steps_total'] = node.total;
  if (node.peak_vram_bytes !== null) s.attributes['podscope.node.peak_vram_bytes'] = node.peak_vram_bytes;
  return s;
}

/** The job's outcome on its spans: status, `error.type`, and events for OOM, interruption and a lost ComfyUI. */
function outcome(job: ReadonlyJob, root: SpanPlan, nodes: Map<string, SpanPlan>, end: number): void {
  // An interruption is someone stopping the job, not a failure of it: said by an event, status unset.
  const e = job.status === 'interrupted' ? null : job.error;
  if (e) {
    const where = (e.node_id !== null ? nodes.get(e.node_id) : undefined) ?? root;
    const failedAt = where === root ? end : where.end;
    const exception: SpanEventPlan = {
      name: 'exception',
      at: failedAt,
      attributes: { 'exception.type': e.exception_type, 'exception.message': e.exception_message.slice(0, MESSAGE_CHARS) },
    };
    if (e.traceback.length) exception.attributes['exception.stacktrace'] = e.traceback.join('').slice(0, STACK_CHARS);
    where.events.push(exception);
    where.attributes['error.type'] = e.exception_type;
    where.error = e.exception_message.slice(0, MESSAGE_CHARS) || e.exception_type;
    root.attributes['error.type'] = e.exception_type;
    root.error ??= `${e.exception_type}${e.class_type ? ` in ${e.class_type}` : ''}`;
    if (isGpuOom(job) || e.exception_type === 'ProbableSystemRamOom') {
      const oom: Attributes = { 'podscope.oom.kind': e.exception_type === 'ProbableSystemRamOom' ? 'system_ram_probable' : 'gpu' };
      if (e.node_id !== null) oom['comfyui.node.id'] = e.node_id;
      if (e.class_type !== null) oom['comfyui.node.class_type'] = e.class_type;
      const forensics = e.forensics as { peak_vram_mb?: unknown } | undefined;
      if (typeof forensics?.peak_vram_mb === 'number') oom['podscope.job.peak_vram_mb'] = forensics.peak_vram_mb;
      root.events.push({ name: 'comfyui.oom', at: failedAt, attributes: oom });
    }
  }
  if (job.status === 'interrupted') {
    const stopped = [...nodes.values()].find((s) => s.attributes['comfyui.node.status'] === 'interrupted');
    const attributes: Attributes = stopped ? { 'comfyui.node.id': stopped.attributes['comfyui.node.id']!, 'comfyui.node.class_type': stopped.attributes['comfyui.node.class_type']! } : {};
    root.events.push({ name: 'comfyui.interrupted', at: end, attributes });
    stopped?.events.push({ name: 'comfyui.interrupted', at: stopped.end, attributes: {} });
  }
  if (job.status === 'lost') {
    const reason = job.lost_reason ?? 'ComfyUI lost the job';
    root.events.push({ name: 'comfyui.lost', at: end, attributes: { 'podscope.lost_reason': reason, 'podscope.timing': 'observed' } });
    root.attributes['error.type'] ??= 'comfyui_lost';
    root.error ??= reason;
  }
}

function scrubPlan(plan: SpanPlan, scrub: (text: string) => string): void {
  const clean = (attrs: Attributes) => {
    for (const [k, v] of Object.entries(attrs)) {
      if (typeof v === 'string') attrs[k] = scrub(v);
      else if (Array.isArray(v)) attrs[k] = v.map(scrub);
    }
  };
  clean(plan.attributes);
  for (const e of plan.events) clean(e.attributes);
  if (plan.error) plan.error = scrub(plan.error);
  for (const c of plan.children) scrubPlan(c, scrub);
}

export interface TraceCollectorOptions {
  sink: TraceSink;
  /** The instances, to find the job a STALLED problem of one of them is about. */
  instances: Instances;
  health: HealthBoard;
  scrubber: Scrubber;
  /** How long stopping may wait for queued spans to go out. */
  shutdownMs?: number;
}

/** Exports each job's trace when it finishes, with the stalls declared while it ran. */
export class TraceCollector implements Collector {
  readonly name = 'traces';
  private readonly stalls = new Map<string, Stall[]>();
  private running = false;

  constructor(private readonly opts: TraceCollectorOptions) {
    opts.health.onChange((c) => this.problem(c));
  }

  start(_signal: AbortSignal): void {
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.opts.sink.shutdown(this.opts.shutdownMs ?? 2000);
  }

  /** A step of the finish pipeline: the job's trace, with the stalls declared while it ran. */
  jobFinished(job: ReadonlyJob, refined: boolean): void {
    const stalls = this.stalls.get(job.prompt_id);
    this.stalls.delete(job.prompt_id);
    // A refinement (ComfyUI's record of a job podscope had called lost) comes after its trace left.
    if (!this.running || refined) return;
    const scrubber = this.opts.scrubber;
    const trace = jobTrace(job, { stalls, scrub: (t) => (scrubber.needsScrub(t) ? scrubber.scrub(t) : t), comfyuiVersion: this.opts.instances.byName(job.instance)?.version ?? null });
    if (trace) this.opts.sink.export(trace);
  }

  private problem(c: ProblemChange): void {
    if (c.kind !== 'started' || c.problem.code !== 'STALLED' || c.problem.component !== 'comfyui') return;
    const comfy = c.problem.instance === undefined ? this.opts.instances.first : this.opts.instances.byName(c.problem.instance);
    if (!comfy) return;
    const tracker = comfy.tracker;
    const job = tracker.running();
    if (!job) return;
    const list = this.stalls.get(job.prompt_id) ?? [];
    if (list.length < STALLS_PER_JOB) list.push({ at: c.at, message: c.problem.message });
    this.stalls.set(job.prompt_id, list);
    // Jobs the trackers forgot without finishing leave nothing behind.
    for (const id of this.stalls.keys()) if (!this.opts.instances.all.some((i) => i.tracker.has(id))) this.stalls.delete(id);
  }
}
