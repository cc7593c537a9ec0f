/**
 * The Prometheus registry and the metrics every part of podscope shares. podscope uses its own
 * Registry, never prom-client's global one, so tests and a second app in one process stay apart.
 *
 * Metric families owned by one area (GPU, jobs, logs) are registered by that area's module in this
 * folder, reading state at scrape time: a scrape never runs nvidia-smi or calls ComfyUI.
 */
import { Registry, Gauge } from 'prom-client';
import { registerProcessMetrics } from './process.js';
import type { HealthBoard } from '../state/health.js';
import { HTTP_METHODS } from '../shared/http-methods.js';

export interface CoreMetrics {
  registry: Registry;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
}

export function createCoreMetrics(opts: { version: string; health: HealthBoard }): CoreMetrics {
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
  const perCollector = (name: string, help: string, pick: (c: ReturnType<HealthBoard['collectorsSnapshot']>[number]) => number | null) =>
    readFamily(registry, name, help, 'gauge', (out) => {
      for (const c of health.collectorsSnapshot()) {
        const value = pick(c);
        if (value !== null) out.push({ labels: { collector: c.name }, value });
      }
    });
  perCollector('podscope_collector_up', 'Whether the collector\'s last run succeeded (1) or failed (0); absent before its first run.', (c) => (c.ok === null ? null : c.ok ? 1 : 0));
  perCollector('podscope_collector_last_duration_seconds', 'Duration of the collector\'s last run, in seconds.', (c) => (c.last_duration_ms === null ? null : c.last_duration_ms / 1000));
  perCollector('podscope_collector_last_success_timestamp_seconds', 'Unix time of the collector\'s last successful run, in seconds.', (c) => (c.last_success_at ? Date.parse(c.last_success_at) / 1000 : null));
  perCollector('podscope_collector_consecutive_failures', 'Runs in a row that failed, per collector.', (c) => c.consecutive_failures);
  readFamily(registry, 'podscope_problems', 'Problems currently listed in /debug/status, by component and code.', 'gauge', (out) => {
    for (const p of health.problems()) out.push({ labels: { component: p.component, code: p.code }, value: 1 });
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

export interface Series {
  labels: Record<string, string>;
  value: number;
  /** Added to the family's name: a histogram's `_bucket`, `_sum` and `_count`. */
  suffix?: string;
}

type FamilyType = 'gauge' | 'counter' | 'histogram';

interface ReadFamily {
  name: string;
  /** `# HELP` and `# TYPE`, escaped once. */
  head: string;
  read: (out: Series[]) => void;
}

/**
 * podscope's registry: prom-client's, plus families read from state at each scrape and written
 * straight into the exposition. prom-client's Gauge and Counter validate and hash the labels of
 * every set() after a reset, then build the text through label objects and arrays; for the
 * hundreds of per-GPU series that was most of a scrape, and most of its garbage. The text is the
 * same as prom-client writes; these families come after prom-client's.
 */
export class Exposition extends Registry {
  private readonly families: ReadFamily[] = [];
  private readonly names = new Set<string>();

  addReadFamily(name: string, help: string, type: FamilyType, read: (out: Series[]) => void): void {
    if (this.names.has(name) || this.getSingleMetric(name)) throw new Error(`A metric with the name ${name} has already been registered.`);
    this.names.add(name);
    this.families.push({ name, head: `# HELP ${name} ${escapeText(help)}\n# TYPE ${name} ${type}`, read });
  }

  override registerMetric(metric: Parameters<Registry['registerMetric']>[0]): void {
    const name = (metric as unknown as { name: string }).name;
    if (this.names.has(name)) throw new Error(`A metric with the name ${name} has already been registered.`);
    super.registerMetric(metric);
  }

  override async metrics(): Promise<string> {
    const base = await super.metrics();
    const parts = base === '\n' ? [] : [base.slice(0, -1)];
    const series: Series[] = [];
    for (const f of this.families) {
      series.length = 0;
      f.read(series);
      parts.push(familyText(f, series.length > 1 ? lastOfEach(series) : series));
    }
    return `${parts.join('\n\n')}\n`;
  }
}

function familyText(f: ReadFamily, series: readonly Series[]): string {
  let text = f.head;
  for (const { labels, value, suffix } of series) {
    text += suffix ? `\n${f.name}${suffix}` : `\n${f.name}`;
    let first = true;
    for (const key in labels) {
      text += `${first ? '{' : ','}${key}="${escapeLabelValue(labels[key]!)}"`;
      first = false;
    }
    text += `${first ? '' : '}'} ${valueText(value)}`;
  }
  return text;
}

/** As prom-client escapes HELP text: backslash and newline. */
function escapeText(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(s: string): string {
  return /[\\\n"]/.test(s) ? escapeText(s).replace(/"/g, '\\"') : s;
}

/** As prom-client writes a value: `Nan`, `+Inf`, `-Inf`, else the number. */
function valueText(v: number): string {
  return Number.isNaN(v) ? 'Nan' : Number.isFinite(v) ? `${v}` : v < 0 ? '-Inf' : '+Inf';
}

/**
 * A family whose series are read from state at each scrape. In podscope's {@link Exposition} it is
 * written straight into the text; in a plain prom-client Registry it is registered as a metric
 * whose get() hands the same series over. Series with the same labels keep the last value, as
 * set() would.
 */
export function readFamily(registry: Registry, name: string, help: string, type: FamilyType, read: (out: Series[]) => void): void {
  if (registry instanceof Exposition) return registry.addReadFamily(name, help, type, read);
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    get() {
      const values: Series[] = [];
      read(values);
      return { name, help, type, aggregator: 'sum', values: (values.length > 1 ? lastOfEach(values) : values).map((v) => (v.suffix ? { labels: v.labels, value: v.value, metricName: name + v.suffix } : v)) };
    },
    reset() {},
  };
  registry.registerMetric(metric as never);
}

/** The series with the same labels kept once, with the last value (a duplicate would void the scrape). */
function lastOfEach(values: Series[]): Series[] {
  const at = new Map<string, number>();
  const out: Series[] = [];
  for (const v of values) {
    const key = `${v.suffix ?? ''}\u0000${Object.values(v.labels).join('\u0000')}`;
    const i = at.get(key);
    if (i === undefined) {
      at.set(key, out.length);
      out.push(v);
    } else out[i] = v;
  }
  return out;
}

/**
 * A gauge without labels that is absent from the exposition while its value is unknown (null):
 * prom-client's own Gauge always shows a label-less series, as 0 once reset, and 0 would be a
 * reading nobody took.
 */
export function optionalGauge(registry: Registry, name: string, help: string, read: () => number | null): void {
  readFamily(registry, name, help, 'gauge', (out) => {
    const value = read();
    if (value !== null) out.push({ labels: {}, value });
  });
}
