/**
 * podscope's own process metrics that need /proc (resident set, descriptors, and the heap figures
 * process.memoryUsage() gives with it) or cost too much to read at a scrape (the event-loop
 * delay), and host disk space: read from the host collector's sample (every 5 s), so a scrape
 * does no I/O.
 */
import type { Registry } from 'prom-client';
import type { EventLoopDelay } from '../shared/host.js';
import type { HostReader } from '../state/host.js';
import { optionalGauge, readFamily } from './registry.js';

export function registerHostMetrics(registry: Registry, host: HostReader): void {
  // Absent until the first sample: 0 would be a reading nobody took.
  optionalGauge(registry, 'process_resident_memory_bytes', 'Resident memory size in bytes (sampled every 5 s).', () => host.snapshot().process?.rss_bytes ?? null);
  optionalGauge(registry, 'process_open_fds', 'Number of open file descriptors (sampled every 5 s).', () => host.snapshot().process?.open_fds ?? null);
  optionalGauge(registry, 'nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes (sampled every 5 s).', () => host.snapshot().process?.heap_total_bytes ?? null);
  optionalGauge(registry, 'nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes (sampled every 5 s).', () => host.snapshot().process?.heap_used_bytes ?? null);
  optionalGauge(registry, 'nodejs_external_memory_bytes', 'Node.js external memory size in bytes (sampled every 5 s).', () => host.snapshot().process?.external_bytes ?? null);
  // prom-client's event-loop families, under their names, from the sample: reading the delay
  // histogram costs a third of a millisecond, too much to pay at every scrape.
  const loop = (name: string, help: string, pick: (d: EventLoopDelay) => number) =>
    optionalGauge(registry, name, `${help} (sampled every 5 s).`, () => {
      const d = host.snapshot().event_loop;
      return d ? pick(d) : null;
    });
  loop('nodejs_eventloop_lag_seconds', 'Lag of event loop in seconds', (d) => d.lag_s);
  loop('nodejs_eventloop_lag_min_seconds', 'The minimum recorded event loop delay', (d) => d.min_s);
  loop('nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay', (d) => d.max_s);
  loop('nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays', (d) => d.mean_s);
  loop('nodejs_eventloop_lag_stddev_seconds', 'The standard deviation of the recorded event loop delays', (d) => d.stddev_s);
  loop('nodejs_eventloop_lag_p50_seconds', 'The 50th percentile of the recorded event loop delays', (d) => d.p50_s);
  loop('nodejs_eventloop_lag_p90_seconds', 'The 90th percentile of the recorded event loop delays', (d) => d.p90_s);
  loop('nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays', (d) => d.p99_s);
  readFamily(registry, 'podscope_disk_free_bytes', "Free space on the filesystems holding ComfyUI's output directory and the workspace volume, in bytes.", 'gauge', (out) => {
    for (const d of host.snapshot().disks) out.push({ labels: { role: d.role }, value: d.free_bytes });
  });
}
