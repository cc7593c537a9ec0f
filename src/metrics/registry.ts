/**
 * The Prometheus registry and the metrics every part of podscope shares. podscope uses its own
 * Registry, never prom-client's global one, so tests and a second app in one process stay apart.
 *
 * Metric families owned by one area (GPU, jobs, logs) are registered by that area's module in this
 * folder, reading state at scrape time: a scrape never runs nvidia-smi or calls ComfyUI.
 */
import { Registry, Gauge } from 'prom-client';
import { registerProcessMetrics } from './process.js';
import { Exposition, readFamily } from './exposition.js';
import type { HealthReader } from '../state/health.js';
import { HTTP_METHODS } from '../shared/http-methods.js';

export { Exposition, LabelSet, optionalGauge, readFamily, type Series } from './exposition.js';

export interface CoreMetrics {
  registry: Registry;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
}

export function createCoreMetrics(opts: { version: string; health: HealthReader }): CoreMetrics {
  const registry = new Exposition();
  registerProcessMetrics(registry);

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
  readFamily(registry, 'podscope_http_requests_total', 'HTTP requests answered, by method, route template and status code.', 'counter', (out) => {
    for (const slot of slots.all()) for (const [status, n] of slot.byStatus) out.push({ labels: { ...slot.labels, status: String(status) }, value: n });
  });
  // Cumulative buckets, `+Inf`, sum and count per method and route, from the per-bucket counts.
  readFamily(registry, 'podscope_http_request_duration_seconds', 'Time to answer an HTTP request, in seconds, by method and route template.', 'histogram', (out) => {
    for (const d of slots.all()) {
      let cumulative = 0;
      for (let i = 0; i < DURATION_BUCKETS.length; i++) {
        cumulative += d.buckets[i]!;
        out.push({ labels: { ...d.labels, le: DURATION_LABELS[i]! }, value: cumulative, suffix: '_bucket' });
      }
      out.push({ labels: { ...d.labels, le: '+Inf' }, value: d.count, suffix: '_bucket' });
      out.push({ labels: d.labels, value: d.sum, suffix: '_sum' });
      out.push({ labels: d.labels, value: d.count, suffix: '_count' });
    }
  });

  const { health } = opts;
  const perCollector = (name: string, help: string, pick: (c: ReturnType<HealthReader['collectorsSnapshot']>[number]) => number | null) =>
    readFamily(registry, name, help, 'gauge', (out) => {
      for (const c of health.collectorsSnapshot()) {
        const value = pick(c);
        if (value !== null) out.push({ labels: c.instance === undefined ? { collector: c.name } : { collector: c.name, comfyui: c.instance }, value });
      }
    });
  perCollector('podscope_collector_up', 'Whether the collector\'s last run succeeded (1) or failed (0); absent before its first run.', (c) => (c.ok === null ? null : c.ok ? 1 : 0));
  perCollector('podscope_collector_last_duration_seconds', 'Duration of the collector\'s last run, in seconds.', (c) => (c.last_duration_ms === null ? null : c.last_duration_ms / 1000));
  perCollector('podscope_collector_last_success_timestamp_seconds', 'Unix time of the collector\'s last successful run, in seconds.', (c) => (c.last_success_at ? Date.parse(c.last_success_at) / 1000 : null));
  perCollector('podscope_collector_consecutive_failures', 'Runs in a row that failed, per collector.', (c) => c.consecutive_failures);
  readFamily(registry, 'podscope_problems', 'Problems currently listed in /debug/status, by component and code.', 'gauge', (out) => {
    for (const p of health.problems()) out.push({ labels: p.instance === undefined ? { component: p.component, code: p.code } : { component: p.component, code: p.code, comfyui: p.instance }, value: 1 });
  });

  return {
    registry,
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
const DURATION_LABELS = DURATION_BUCKETS.map(String);

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

}
