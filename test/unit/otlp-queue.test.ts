/**
 * The export queue between finished spans and the OTLP collector (sources/otlp.ts): bounded,
 * one export in flight, every lost span counted by why, and a collector that never answers
 * cut at the export timeout. The exporter here is a stand-in that answers when told to.
 */
import { describe, expect, it } from 'vitest';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { BoundedSpanProcessor, createOtlpTraceSink } from '../../src/sources/otlp.js';
import type { TraceConfig } from '../../src/config.js';
import type { JobTrace, TraceExportStats } from '../../src/shared/traces.js';
import { until } from '../helpers/wait.js';

class HeldExporter implements SpanExporter {
  readonly calls: Array<{ spans: ReadableSpan[]; done: (r: ExportResult) => void }> = [];
  inFlightMax = 0;
  private inFlight = 0;
  shutdowns = 0;

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.inFlight++;
    this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
    this.calls.push({
      spans,
      done: (r) => {
        this.inFlight--;
        done(r);
      },
    });
  }

  answer(code: ExportResultCode, error?: Error): void {
    const call = this.calls.find((c) => !(c as { answered?: boolean }).answered)!;
    (call as { answered?: boolean }).answered = true;
    call.done({ code, error });
  }

  async shutdown(): Promise<void> {
    this.shutdowns++;
  }
}

const span = (sampled = true) => ({ spanContext: () => ({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: sampled ? 1 : 0 }) }) as unknown as ReadableSpan;

function stats(capacity: number): TraceExportStats {
  return { url: 'http://x', protocol: 'http/protobuf', exported: 0, dropped: { queue_full: 0, export_failed: 0 }, queued: 0, capacity, jobs_unsampled: 0, last_success_at: null, last_error: null, last_error_at: null };
}

function processor(limits: Partial<{ maxQueueSize: number; maxExportBatchSize: number; scheduleDelayMs: number; exportTimeoutMs: number }> = {}) {
  const exporter = new HeldExporter();
  const l = { maxQueueSize: 4, maxExportBatchSize: 2, scheduleDelayMs: 60_000, exportTimeoutMs: 60_000, ...limits };
  const changes: Array<[boolean, string]> = [];
  const p = new BoundedSpanProcessor(exporter, l, stats(l.maxQueueSize), (ok, m) => changes.push([ok, m]), () => 42);
  return { p, exporter, changes };
}

describe('the export queue', () => {
  it('sends a batch as soon as one is full', () => {
    const { p, exporter } = processor();
    p.onEnd(span());
    expect(exporter.calls).toHaveLength(0);
    p.onEnd(span());
    expect(exporter.calls.map((c) => c.spans.length)).toEqual([2]);
  });

  it('sends what waits after the schedule delay, without a full batch', async () => {
    const { p, exporter } = processor({ scheduleDelayMs: 10 });
    p.onEnd(span());
    await until(() => exporter.calls.length === 1, 10_000, 5);
    expect(exporter.calls[0]!.spans).toHaveLength(1);
  });

  it('keeps one export in flight, whatever the load', () => {
    const { p, exporter } = processor({ maxQueueSize: 100, maxExportBatchSize: 2 });
    for (let i = 0; i < 50; i++) p.onEnd(span());
    expect(exporter.calls).toHaveLength(1);
    expect(exporter.inFlightMax).toBe(1);
  });

  it('drops spans past its cap and counts them as queue_full, holding no more than the cap', () => {
    const { p } = processor({ maxQueueSize: 4, maxExportBatchSize: 2 });
    for (let i = 0; i < 20; i++) p.onEnd(span());
    // Two went out in the first batch, four wait, fourteen were dropped.
    expect(p.stats).toMatchObject({ queued: 4, dropped: { queue_full: 14, export_failed: 0 } });
  });

  it('counts the spans the collector accepted, and when', async () => {
    const { p, exporter } = processor();
    p.onEnd(span());
    p.onEnd(span());
    exporter.answer(ExportResultCode.SUCCESS);
    await until(() => p.stats.exported === 2);
    expect(p.stats.last_success_at).toBe(42);
  });

  it('counts the spans of a refused batch as export_failed, with the reason', async () => {
    const { p, exporter } = processor();
    p.onEnd(span());
    p.onEnd(span());
    exporter.answer(ExportResultCode.FAILED, new Error('OTLP export failed with status 503'));
    await until(() => p.stats.dropped.export_failed === 2);
    expect(p.stats.last_error).toBe('OTLP export failed with status 503');
  });

  it('cuts an export the collector never answers at the export timeout, and goes on with the next', async () => {
    const { p, exporter } = processor({ exportTimeoutMs: 20 });
    for (let i = 0; i < 4; i++) p.onEnd(span());
    await until(() => exporter.calls.length === 2, 10_000, 5);
    expect(p.stats.dropped.export_failed).toBe(2);
    expect(p.stats.last_error).toBe('the collector did not answer within 20 ms');
  });

  it('says when exports start failing and when they work again, once each', async () => {
    const { p, exporter, changes } = processor({ maxQueueSize: 100, maxExportBatchSize: 1 });
    for (let i = 0; i < 4; i++) p.onEnd(span());
    exporter.answer(ExportResultCode.FAILED, new Error('down'));
    await until(() => exporter.calls.length === 2);
    exporter.answer(ExportResultCode.FAILED, new Error('down'));
    await until(() => exporter.calls.length === 3);
    exporter.answer(ExportResultCode.SUCCESS);
    await until(() => exporter.calls.length === 4);
    exporter.answer(ExportResultCode.SUCCESS);
    await until(() => p.stats.exported === 2);
    expect(changes).toEqual([
      [false, 'down'],
      [true, 'exported'],
    ]);
  });

  it('leaves unsampled spans out', () => {
    const { p, exporter } = processor({ maxExportBatchSize: 1 });
    p.onEnd(span(false));
    expect(exporter.calls).toHaveLength(0);
    expect(p.stats.queued).toBe(0);
  });

  it('sends everything queued when shut down, then shuts the exporter', async () => {
    const { p, exporter } = processor({ maxQueueSize: 10, maxExportBatchSize: 4 });
    for (let i = 0; i < 3; i++) p.onEnd(span());
    const done = p.shutdown();
    await until(() => exporter.calls.length === 1);
    exporter.answer(ExportResultCode.SUCCESS);
    await done;
    expect(p.stats.exported).toBe(3);
    expect(exporter.shutdowns).toBe(1);
  });

  it('takes nothing more once shut down, and counts it', async () => {
    const { p } = processor();
    await p.shutdown();
    p.onEnd(span());
    expect(p.stats).toMatchObject({ queued: 0, dropped: { queue_full: 1 } });
  });
});

const CONFIG: TraceConfig = {
  url: 'http://user:pw@127.0.0.1:9/v1/traces',
  protocol: 'http/protobuf',
  headers: {},
  timeoutMs: 1000,
  compression: 'none',
  serviceName: 'comfyui',
  resourceAttributes: {},
  sampler: 'parentbased_always_on',
  samplerRatio: 1,
  maxQueueSize: 100,
  maxExportBatchSize: 100,
  scheduleDelayMs: 60_000,
  exportTimeoutMs: 1000,
};

const trace = (flags: number | null): JobTrace => ({
  parent: flags === null ? null : { trace_id: 'd'.repeat(32), span_id: 'e'.repeat(16), flags },
  trace_id: null,
  root: { name: 'comfyui.job', start: 1000, end: 2000, attributes: {}, events: [], error: null, children: [{ name: 'KSampler', start: 1100, end: 1900, attributes: {}, events: [], error: null, children: [] }] },
});

describe('the trace sink', () => {
  it('never shows the endpoint’s password', () => {
    expect(createOtlpTraceSink({ config: CONFIG, version: 't', resource: () => ({}), exporter: new HeldExporter() }).stats().url).toBe('http://user:[REDACTED]@127.0.0.1:9/v1/traces');
  });

  it('follows the caller’s sampling decision: a traceparent without the sampled flag exports nothing', async () => {
    const exporter = new HeldExporter();
    const sink = createOtlpTraceSink({ config: CONFIG, version: 't', resource: () => ({}), exporter });
    sink.export(trace(0));
    sink.export(trace(1));
    const done = sink.shutdown(5000);
    await until(() => exporter.calls.length === 1);
    expect(exporter.calls[0]!.spans.map((s) => s.name).sort()).toEqual(['KSampler', 'comfyui.job']);
    expect(sink.stats().jobs_unsampled).toBe(1);
    exporter.answer(ExportResultCode.SUCCESS);
    await done;
  });

  it('samples roots by OTEL_TRACES_SAMPLER', async () => {
    const exporter = new HeldExporter();
    const sink = createOtlpTraceSink({ config: { ...CONFIG, sampler: 'always_off' }, version: 't', resource: () => ({}), exporter });
    sink.export(trace(null));
    await sink.shutdown(1000);
    expect(exporter.calls).toHaveLength(0);
    expect(sink.stats().jobs_unsampled).toBe(1);
  });

  it('stops within its deadline even when the collector never answers', async () => {
    const exporter = new HeldExporter();
    const sink = createOtlpTraceSink({ config: CONFIG, version: 't', resource: () => ({}), exporter });
    sink.export(trace(1));
    const started = Date.now();
    await sink.shutdown(50);
    expect(exporter.calls).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});

describe('the resource of the traces', () => {
  it('says what is known of the pod when each job’s trace goes out: the GPUs once they are seen', async () => {
    const exporter = new HeldExporter();
    let pod: Record<string, string | number> = { 'runpod.pod.id': 'p1' };
    const sink = createOtlpTraceSink({ config: { ...CONFIG, maxExportBatchSize: 4 }, version: 't', resource: () => pod, exporter });
    sink.export(trace(1));
    pod = { 'runpod.pod.id': 'p1', 'podscope.gpu.count': 2, 'podscope.gpu.name': 'NVIDIA H200' };
    sink.export(trace(1));
    await until(() => exporter.calls.length === 1);
    const [first, second] = [exporter.calls[0]!.spans[0]!, exporter.calls[0]!.spans[2]!];
    expect(first.resource.attributes['podscope.gpu.count']).toBeUndefined();
    expect(second.resource.attributes).toMatchObject({ 'runpod.pod.id': 'p1', 'podscope.gpu.count': 2, 'podscope.gpu.name': 'NVIDIA H200', 'service.name': 'comfyui' });
    exporter.answer(ExportResultCode.SUCCESS);
    await sink.shutdown(1000);
  });
});
