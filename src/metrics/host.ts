/**
 * podscope's own process metrics that need /proc, and host disk space: read from the host
 * collector's sample (every 5 s), so a scrape does no I/O.
 */
import { Gauge, type Registry } from 'prom-client';
import type { HostSnapshot } from '../shared/host.js';

export function registerHostMetrics(registry: Registry, host: { snapshot(): HostSnapshot }): void {
  new Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory size in bytes (sampled every 5 s).',
    registers: [registry],
    collect() {
      const p = host.snapshot().process;
      if (p) this.set(p.rss_bytes);
    },
  });
  new Gauge({
    name: 'process_open_fds',
    help: 'Number of open file descriptors (sampled every 5 s).',
    registers: [registry],
    collect() {
      const fds = host.snapshot().process?.open_fds;
      if (fds !== null && fds !== undefined) this.set(fds);
    },
  });
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
