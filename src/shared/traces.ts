/**
 * A job's trace as plain data: what the trace collector reads from the job model and the OTLP
 * exporter turns into spans. Nothing here knows OpenTelemetry, so the shape of a job's trace is
 * specified (and tested) without loading it.
 *
 * Times are ms since the epoch, on ComfyUI's clock wherever ComfyUI gave one.
 */

export type AttributeValue = string | number | boolean | string[];
export type Attributes = Record<string, AttributeValue>;

export interface SpanEventPlan {
  name: string;
  at: number;
  attributes: Attributes;
}

export interface SpanPlan {
  name: string;
  start: number;
  end: number;
  attributes: Attributes;
  events: SpanEventPlan[];
  /** The span's status: null is unset (it did not fail), a string the error's description. */
  error: string | null;
  children: SpanPlan[];
}

/** The platform's span a job continues (the `traceparent` in its extra_data). */
export interface TraceParent {
  trace_id: string;
  span_id: string;
  /** W3C trace flags; bit 0 says the caller sampled the trace. */
  flags: number;
}

export interface JobTrace {
  parent: TraceParent | null;
  /** The trace id the job's log lines carry; a root span (no parent) takes it. */
  trace_id: string | null;
  root: SpanPlan;
}

/** What the exporter has done, for /metrics and /debug/status. */
export interface TraceExportStats {
  url: string;
  protocol: string;
  /** Spans handed to the collector and accepted. */
  exported: number;
  /** Spans lost, by why: `queue_full` (the collector is slower than the pod), `export_failed` (refused or unreachable). */
  dropped: { queue_full: number; export_failed: number };
  /** Spans waiting in the queue now, and its cap. */
  queued: number;
  capacity: number;
  /** Jobs the sampler left out. */
  jobs_unsampled: number;
  last_success_at: number | null;
  last_error: string | null;
  last_error_at: number | null;
}

/** Where finished jobs' traces go; implemented over OTLP by sources/otlp.ts. */
export interface TraceSink {
  export(trace: JobTrace): void;
  stats(): TraceExportStats;
  /** Sends what is queued, within `deadlineMs`, and stops. */
  shutdown(deadlineMs: number): Promise<void>;
}
