/**
 * The Node.js process families a Prometheus user expects from prom-client's default metrics,
 * under the same names, read at a scrape only where that is cheap: CPU time, start time, Node's
 * version, active resources, V8's heap spaces and garbage-collection pauses. What needs /proc or
 * costs more to read (resident set, descriptors, heap totals, event-loop delay) comes from the
 * host sample, in metrics/host.ts.
 *
 * prom-client's collectDefaultMetrics() is not used: it starts an event-loop monitor and a GC
 * observer for every registry it is given (one per app, many in a test run), walks the delay
 * histogram at each scrape, and lists every libuv handle through Node's private
 * `_getActiveHandles()`.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { getHeapSpaceStatistics, type HeapSpaceInfo } from 'node:v8';
import type { Registry } from 'prom-client';
import { readFamily, type Series } from './exposition.js';

const START_SECONDS = Math.round(Date.now() / 1000 - process.uptime());
const [MAJOR, MINOR, PATCH] = process.version.slice(1).split('.');

/** Seconds a GC pause can fall under, as prom-client buckets them. */
const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];
const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

interface GcKind {
  /** Per-bucket (not cumulative) counts for GC_BUCKETS; pauses over the last bucket only count. */
  buckets: number[];
  sum: number;
  count: number;
}

/** GC pauses by kind, for the whole process: one observer however many registries read it. */
const gcPauses = new Map<string, GcKind>();
let gcObserver: PerformanceObserver | null = null;

function observeGc(): void {
  if (gcObserver) return;
  gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = GC_KINDS[((entry as { detail?: { kind?: number } }).detail)?.kind ?? -1] ?? 'unknown';
      let k = gcPauses.get(kind);
      if (!k) gcPauses.set(kind, (k = { buckets: GC_BUCKETS.map(() => 0), sum: 0, count: 0 }));
      const seconds = entry.duration / 1000;
      const i = GC_BUCKETS.findIndex((b) => seconds <= b);
      if (i >= 0) k.buckets[i]!++;
      k.sum += seconds;
      k.count++;
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
}

export function registerProcessMetrics(registry: Registry): void {
  // One reading per scrape serves the families that share it (families are read in order).
  let cpu = process.cpuUsage();
  readFamily(registry, 'process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', 'counter', (out) => {
    cpu = process.cpuUsage();
    out.push({ labels: {}, value: cpu.user / 1e6 });
  });
  readFamily(registry, 'process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', 'counter', (out) => out.push({ labels: {}, value: cpu.system / 1e6 }));
  readFamily(registry, 'process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', 'counter', (out) => out.push({ labels: {}, value: (cpu.user + cpu.system) / 1e6 }));
  readFamily(registry, 'process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', (out) => out.push({ labels: {}, value: START_SECONDS }));
  readFamily(registry, 'nodejs_version_info', 'Node.js version info.', 'gauge', (out) =>
    out.push({ labels: { version: process.version, major: MAJOR!, minor: MINOR!, patch: PATCH! }, value: 1 }),
  );

  readFamily(registry, 'nodejs_active_resources', 'Number of active resources that are currently keeping the event loop alive, grouped by async resource type.', 'gauge', (out) => {
    const byType = new Map<string, number>();
    for (const type of process.getActiveResourcesInfo()) byType.set(type, (byType.get(type) ?? 0) + 1);
    for (const [type, n] of byType) out.push({ labels: { type }, value: n });
  });

  let spaces: HeapSpaceInfo[] = [];
  const space = (name: string, help: string, pick: (s: HeapSpaceInfo) => number, read = false) =>
    readFamily(registry, name, help, 'gauge', (out) => {
      if (read) spaces = getHeapSpaceStatistics();
      for (const s of spaces) out.push({ labels: { space: s.space_name.replace(/_space$/, '') }, value: pick(s) });
    });
  space('nodejs_heap_space_size_total_bytes', 'Process heap space size total from Node.js in bytes.', (s) => s.space_size, true);
  space('nodejs_heap_space_size_used_bytes', 'Process heap space size used from Node.js in bytes.', (s) => s.space_used_size);
  space('nodejs_heap_space_size_available_bytes', 'Process heap space size available from Node.js in bytes.', (s) => s.space_available_size);

  observeGc();
  readFamily(registry, 'nodejs_gc_duration_seconds', 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.', 'histogram', (out: Series[]) => {
    for (const [kind, k] of gcPauses) {
      let cumulative = 0;
      for (let i = 0; i < GC_BUCKETS.length; i++) {
        cumulative += k.buckets[i]!;
        out.push({ labels: { kind, le: String(GC_BUCKETS[i]) }, value: cumulative, suffix: '_bucket' });
      }
      out.push({ labels: { kind, le: '+Inf' }, value: k.count, suffix: '_bucket' });
      out.push({ labels: { kind }, value: k.sum, suffix: '_sum' });
      out.push({ labels: { kind }, value: k.count, suffix: '_count' });
    }
  });
}
