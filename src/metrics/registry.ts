/**
 * The Prometheus registry and the metrics every part of podscope shares. podscope uses its own
 * Registry, never prom-client's global one, so tests and a second app in one process stay apart.
 *
 * Metric families owned by one area (GPU, jobs, logs) are registered by that area's module in this
 * folder, reading state at scrape time: a scrape never runs nvidia-smi or calls ComfyUI.
 */
import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import type { HealthBoard } from '../state/health.js';
import { HTTP_METHODS } from '../shared/http-methods.js';

/** prom-client's default gauges named `_total`, which promtool rejects; their twins without it stay. */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
/**
 * prom-client's default metrics that read /proc synchronously at every scrape; a scrape must do
 * no I/O, so metrics/host.ts exports these from the host collector's periodic sample instead.
 */
const IO_AT_SCRAPE_DEFAULTS = ['process_resident_memory_bytes', 'process_virtual_memory_bytes', 'process_heap_bytes', 'process_open_fds'];


export interface CoreMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
}

export function createCoreMetrics(opts: { version: string; health: HealthBoard }): CoreMetrics {
  const registry = new Registry();
  // The event-loop delay monitor wakes every eventLoopMonitoringPrecision ms, even on an idle pod.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  for (const name of [...MISNAMED_DEFAULTS, ...IO_AT_SCRAPE_DEFAULTS]) registry.removeSingleMetric(name);

  new Gauge({
    name: 'podscope_build_info',
    help: 'podscope build information; always 1.',
    labelNames: ['version', 'node_version'],
    registers: [registry],
  }).set({ version: opts.version, node_version: process.version }, 1);

  // Requests are counted in one slot per route and method (counts by status, duration buckets),
  // made on first use and turned into series at scrape time: prom-client validates and hashes
  // label values on every observe, which would cost more than the rest of a request.
  const slots = new RequestSlots();
  const httpRequests = new Counter({
    name: 'podscope_http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const slot of slots.all()) for (const [status, n] of slot.byStatus) this.inc({ ...slot.labels, status: String(status) }, n);
    },
  });
  const httpDuration = new RequestDurationHistogram(slots);
  registry.registerMetric(httpDuration as never);

  const { health } = opts;
  new Gauge({
    name: 'podscope_collector_up',
    help: 'Whether the collector\'s last run succeeded (1) or failed (0); absent before its first run.',
    labelNames: ['collector'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of health.collectorsSnapshot()) if (c.ok !== null) this.set({ collector: c.name }, c.ok ? 1 : 0);
    },
  });
  new Gauge({
    name: 'podscope_collector_last_duration_seconds',
    help: 'Duration of the collector\'s last run, in seconds.',
    labelNames: ['collector'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of health.collectorsSnapshot()) {
        if (c.last_duration_ms !== null) this.set({ collector: c.name }, c.last_duration_ms / 1000);
      }
    },
  });
  new Gauge({
    name: 'podscope_collector_last_success_timestamp_seconds',
    help: 'Unix time of the collector\'s last successful run, in seconds.',
    labelNames: ['collector'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of health.collectorsSnapshot()) {
        if (c.last_success_at) this.set({ collector: c.name }, Date.parse(c.last_success_at) / 1000);
      }
    },
  });
  new Gauge({
    name: 'podscope_collector_consecutive_failures',
    help: 'Runs in a row that failed, per collector.',
    labelNames: ['collector'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of health.collectorsSnapshot()) this.set({ collector: c.name }, c.consecutive_failures);
    },
  });
  new Gauge({
    name: 'podscope_problems',
    help: 'Problems currently listed in /debug/status, by component and code.',
    labelNames: ['component', 'code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of health.problems()) this.set({ component: p.component, code: p.code }, 1);
    },
  });

  return {
    registry,
    httpRequests,
    observeRequest(method, route, status, seconds) {
      const slot = slots.get(HTTP_METHODS.has(method) ? method : 'OTHER', route);
      slot.byStatus.set(status, (slot.byStatus.get(status) ?? 0) + 1);
      let i = 0;
      while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++;
      if (i < DURATION_BUCKETS.length) slot.buckets[i]!++;
      slot.sum += seconds;
      slot.count++;
    },
  };
}

const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/** What is known of the requests to one route by one method. */
interface RequestSlot {
  labels: { method: string; route: string };
  /** Answers by status code. */
  byStatus: Map<number, number>;
  /** Per-bucket (not cumulative) counts of durations, for DURATION_BUCKETS. */
  buckets: number[];
  sum: number;
  count: number;
}

/** Request slots by route, then method: two lookups and no string built per request. */
class RequestSlots {
  private readonly byRoute = new Map<string, Map<string, RequestSlot>>();

  get(method: string, route: string): RequestSlot {
    let methods = this.byRoute.get(route);
    if (!methods) this.byRoute.set(route, (methods = new Map()));
    let slot = methods.get(method);
    if (!slot) methods.set(method, (slot = { labels: { method, route }, byStatus: new Map(), buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 }));
    return slot;
  }

  *all(): Iterable<RequestSlot> {
    for (const methods of this.byRoute.values()) yield* methods.values();
  }

  clear(): void {
    this.byRoute.clear();
  }
}

/**
 * `podscope_http_request_duration_seconds`, a histogram prom-client's registry formats from the
 * counts observeRequest keeps (cumulative buckets, `+Inf`, sum and count per method and route).
 */
class RequestDurationHistogram {
  readonly name = 'podscope_http_request_duration_seconds';
  readonly help = 'Time to answer an HTTP request, in seconds, by method and route template.';
  readonly type = 'histogram';
  readonly aggregator = 'sum';

  constructor(private readonly slots: RequestSlots) {}

  get() {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const d of this.slots.all()) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += d.buckets[i]!;
        values.push({ labels: { ...d.labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...d.labels, le: '+Inf' }, value: d.count, metricName: `${this.name}_bucket` });
      values.push({ labels: d.labels, value: d.sum, metricName: `${this.name}_sum` });
      values.push({ labels: d.labels, value: d.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.slots.clear();
  }
}

/**
 * A gauge without labels that is absent from the exposition while its value is unknown (null):
 * prom-client's own Gauge always shows a label-less series, as 0 once reset, and 0 would be a
 * reading nobody took.
 */
export function optionalGauge(registry: Registry, name: string, help: string, read: () => number | null): void {
  const metric = {
    name,
    help,
    type: 'gauge',
    aggregator: 'omit',
    get() {
      const value = read();
      return { name, help, type: 'gauge', aggregator: 'omit', values: value === null ? [] : [{ labels: {}, value }] };
    },
    reset() {},
  };
  registry.registerMetric(metric as never);
}
