/**
 * Job traces out over OTLP/HTTP (protobuf or JSON) with OpenTelemetry's own SDK and exporters.
 * main.ts imports this module only when an endpoint is configured: without one, nothing of
 * OpenTelemetry is loaded.
 *
 * The SDK's batch processor is replaced by a bounded one that counts what it drops: the queue
 * holds at most OTEL_BSP_MAX_QUEUE_SIZE spans, one export is in flight at a time, and each is cut
 * at OTEL_BSP_EXPORT_TIMEOUT, so a collector that is slow, down or refusing never slows podscope
 * and never makes it grow.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ROOT_CONTEXT, TraceFlags, SpanStatusCode, trace, type Context, type HrTime, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type IdGenerator,
  type ReadableSpan,
  type Sampler,
  type Span,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import type { TraceConfig } from '../config.js';
import { redactUrlCredentials } from '../secrets.js';
import type { Attributes, JobTrace, SpanPlan, TraceExportStats, TraceSink } from '../shared/traces.js';

/** Longest attribute value a span carries (tracebacks are cut before this). */
const ATTRIBUTE_CHARS = 16_384;

export interface OtlpTraceOptions {
  config: TraceConfig;
  version: string;
  /** Resource attributes known only once the pod has been looked at (GPUs, ComfyUI's version); read at each export. */
  resource: () => Attributes;
  /** Told when exports start failing and when they work again (not at every failure). */
  onExportState?: (ok: boolean, message: string) => void;
  /** Replaces the OTLP exporter (tests of the queue). */
  exporter?: SpanExporter;
  now?: () => number;
}

/** Spans waiting for the collector, at most `maxQueueSize`, sent one batch at a time. */
export class BoundedSpanProcessor implements SpanProcessor {
  private readonly queue: ReadableSpan[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private closed = false;
  private failing = false;

  constructor(
    private readonly exporter: SpanExporter,
    private readonly limits: Pick<TraceConfig, 'maxQueueSize' | 'maxExportBatchSize' | 'scheduleDelayMs' | 'exportTimeoutMs'>,
    readonly stats: TraceExportStats,
    private readonly onExportState: (ok: boolean, message: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.closed || this.queue.length >= this.limits.maxQueueSize) {
      this.stats.dropped.queue_full++;
      return;
    }
    this.queue.push(span);
    this.stats.queued = this.queue.length;
    if (this.queue.length >= this.limits.maxExportBatchSize) void this.drain();
    else this.schedule();
  }

  /** Sends everything queued; resolves when the queue is empty and nothing is in flight. */
  async forceFlush(): Promise<void> {
    while (this.inFlight || this.queue.length) await this.drain();
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    await this.forceFlush();
    await this.exporter.shutdown();
  }

  private schedule(): void {
    if (this.timer || this.inFlight) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.drain();
    }, this.limits.scheduleDelayMs);
    this.timer.unref();
  }

  private drain(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.queue.length) return Promise.resolve();
    const batch = this.queue.splice(0, this.limits.maxExportBatchSize);
    this.stats.queued = this.queue.length;
    this.inFlight = this.send(batch).then(() => {
      this.inFlight = null;
      if (this.queue.length >= this.limits.maxExportBatchSize) void this.drain();
      else if (this.queue.length) this.schedule();
    });
    return this.inFlight;
  }

  private send(batch: ReadableSpan[]): Promise<void> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (ok: boolean, message: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(cut);
        const { stats } = this;
        if (ok) {
          stats.exported += batch.length;
          stats.last_success_at = this.now();
        } else {
          stats.dropped.export_failed += batch.length;
          stats.last_error = message;
          stats.last_error_at = this.now();
        }
        if (ok === this.failing) {
          this.failing = !ok;
          this.onExportState(ok, message);
        }
        resolve();
      };
      const cut = setTimeout(() => settle(false, `the collector did not answer within ${this.limits.exportTimeoutMs} ms`), this.limits.exportTimeoutMs);
      cut.unref();
      try {
        this.exporter.export(batch, (r: ExportResult) => settle(r.code === ExportResultCode.SUCCESS, r.code === ExportResultCode.SUCCESS ? 'exported' : describeError(r.error)));
      } catch (err) {
        settle(false, describeError(err));
      }
    });
  }
}

function describeError(err: unknown): string {
  const message = err instanceof Error ? err.message : err === undefined ? 'export failed' : String(err);
  return redactUrlCredentials(message).slice(0, 500);
}

/**
 * Trace ids for root spans: the job's own trace id (the one its log lines carry) when it has one,
 * else a random one. Span ids are random.
 */
class JobIdGenerator implements IdGenerator {
  next: string | null = null;

  generateTraceId(): string {
    const id = this.next ?? randomBytes(16).toString('hex');
    this.next = null;
    return id;
  }

  generateSpanId(): string {
    return randomBytes(8).toString('hex');
  }
}

export function samplerFor(config: Pick<TraceConfig, 'sampler' | 'samplerRatio'>): Sampler {
  const ratio = () => new TraceIdRatioBasedSampler(config.samplerRatio);
  switch (config.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** ms since the epoch as OpenTelemetry's [seconds, nanoseconds] (a bare number would be read as performance time when it is older than the process). */
function hr(ms: number): HrTime {
  const s = Math.floor(ms / 1000);
  return [s, Math.min(999_999_999, Math.round((ms - s * 1000) * 1e6))];
}

const TRACE_ID = /^(?!0{32})[0-9a-f]{32}$/;

export function createOtlpTraceSink(opts: OtlpTraceOptions): TraceSink {
  const { config } = opts;
  const stats: TraceExportStats = {
    url: redactUrlCredentials(config.url),
    protocol: config.protocol,
    exported: 0,
    dropped: { queue_full: 0, export_failed: 0 },
    queued: 0,
    capacity: config.maxQueueSize,
    jobs_unsampled: 0,
    last_success_at: null,
    last_error: null,
    last_error_at: null,
  };
  const exporterOptions = {
    url: config.url,
    headers: { ...config.headers },
    timeoutMillis: config.timeoutMs,
    compression: config.compression as never,
    // One batch is in flight at a time; a second only if the first outlived its export timeout.
    concurrencyLimit: 2,
  };
  const exporter = opts.exporter ?? (config.protocol === 'http/json' ? new JsonExporter(exporterOptions) : new ProtobufExporter(exporterOptions));
  const processor = new BoundedSpanProcessor(exporter, config, stats, opts.onExportState, opts.now);
  const ids = new JobIdGenerator();
  let provider: TracerProvider | null = null;
  let resourceKey = '';

  // The resource says what is known of the pod when a job's trace goes out: the GPUs once
  // nvidia-smi has answered, ComfyUI's version once it has. A provider is made anew when that
  // changes; every provider hands its spans to the one bounded processor.
  const tracer = (): Tracer => {
    const pod = opts.resource();
    const key = JSON.stringify(pod);
    if (!provider || key !== resourceKey) {
      resourceKey = key;
      provider = new TracerProvider({
        resource: defaultResource()
          .merge(resourceFromAttributes({ 'host.name': hostname(), ...pod }))
          .merge(resourceFromAttributes(config.resourceAttributes))
          .merge(resourceFromAttributes({ 'service.name': config.serviceName })),
        sampler: samplerFor(config),
        idGenerator: ids,
        spanProcessors: [processor],
        spanLimits: { attributeValueLengthLimit: ATTRIBUTE_CHARS, eventCountLimit: 256, attributeCountLimit: 64 },
      });
    }
    return provider.getTracer('podscope', opts.version);
  };

  /** Starts and ends the plan's span and its children's; false when the sampler left it out. */
  function emit(t: Tracer, plan: SpanPlan, parent: Context): boolean {
    const span = t.startSpan(plan.name, { startTime: hr(plan.start), attributes: plan.attributes }, parent) as Span;
    if (!span.isRecording()) return false;
    for (const e of plan.events) span.addEvent(e.name, e.attributes, hr(e.at));
    if (plan.error !== null) span.setStatus({ code: SpanStatusCode.ERROR, message: plan.error });
    const context = trace.setSpan(ROOT_CONTEXT, span);
    for (const child of plan.children) emit(t, child, context);
    span.end(hr(plan.end));
    return true;
  }

  return {
    export(job: JobTrace): void {
      try {
        const p = job.parent;
        const parent = p ? trace.setSpanContext(ROOT_CONTEXT, { traceId: p.trace_id, spanId: p.span_id, traceFlags: p.flags & 0xff, isRemote: true }) : ROOT_CONTEXT;
        ids.next = !p && job.trace_id && TRACE_ID.test(job.trace_id) ? job.trace_id : null;
        if (!emit(tracer(), job.root, parent)) stats.jobs_unsampled++;
      } catch (err) {
        // A span the SDK refuses is a lost trace, never a crash of the collector that finished the job.
        stats.dropped.export_failed++;
        stats.last_error = describeError(err);
        stats.last_error_at = (opts.now ?? Date.now)();
      } finally {
        ids.next = null;
      }
    },
    stats: () => stats,
    async shutdown(deadlineMs: number): Promise<void> {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
        timer.unref();
      });
      await Promise.race([(provider ? provider.shutdown() : processor.shutdown()).catch(() => {}), deadline]);
      clearTimeout(timer);
    },
  };
}
