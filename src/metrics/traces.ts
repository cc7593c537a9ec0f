/**
 * OTLP trace export metrics, present only when an endpoint is configured: spans exported, spans
 * dropped and why, the export queue's fill and cap, jobs the sampler left out.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TraceExportStats } from '../shared/traces.js';

export function registerTraceMetrics(registry: Registry, stats: () => TraceExportStats): void {
  new Counter({
    name: 'podscope_trace_spans_exported_total',
    help: 'Spans the OTLP collector accepted.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats().exported);
    },
  });
  new Counter({
    name: 'podscope_trace_spans_dropped_total',
    help: 'Spans lost before the OTLP collector accepted them: queue_full (the export queue was at its cap), export_failed (refused, unreachable or timed out).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      const { dropped } = stats();
      this.inc({ reason: 'queue_full' }, dropped.queue_full);
      this.inc({ reason: 'export_failed' }, dropped.export_failed);
    },
  });
  new Gauge({
    name: 'podscope_trace_queue_spans',
    help: 'Spans waiting to be exported.',
    registers: [registry],
    collect() {
      this.set(stats().queued);
    },
  });
  new Gauge({
    name: 'podscope_trace_queue_capacity_spans',
    help: 'The most spans the export queue holds (OTEL_BSP_MAX_QUEUE_SIZE).',
    registers: [registry],
    collect() {
      this.set(stats().capacity);
    },
  });
  new Counter({
    name: 'podscope_trace_jobs_unsampled_total',
    help: 'Finished jobs whose trace the sampler left out (OTEL_TRACES_SAMPLER, or the caller\'s traceparent flags).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats().jobs_unsampled);
    },
  });
}
