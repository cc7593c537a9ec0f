/**
 * podscope's own process metrics that need /proc, and host disk space: read from the host
 * collector's sample (every 5 s), so a scrape does no I/O.
 */
import { Gauge, type Registry } from 'prom-client';
import type { HostSnapshot } from '../shared/host.js';
import { optionalGauge } from './registry.js';

export function registerHostMetrics(registry: Registry, host: { snapshot(): HostSnapshot }): void {
  // Absent until the first sample: 0 would be a reading nobody took.
  optionalGauge(registry, 'process_resident_memory_bytes', 'Resident memory size in bytes (sampled every 5 s).', () => host.snapshot().process?.rss_bytes ?? null);
  optionalGauge(registry, 'process_open_fds', 'Number of open file descriptors (sampled every 5 s).', () => host.snapshot().process?.open_fds ?? null);
  new Gauge({
    name: 'podscope_disk_free_bytes',
    help: "Free space on the filesystems holding ComfyUI's output directory and the workspace volume, in bytes.",
    labelNames: ['role'],
    registers: [registry],
    collect() {
      this.reset();
      for (const d of host.snapshot().disks) this.set({ role: d.role }, d.free_bytes);
    },
  });
}
