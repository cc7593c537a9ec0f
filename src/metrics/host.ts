/**
 * podscope's own process metrics that need /proc (resident set, descriptors, and the heap figures
 * process.memoryUsage() gives with it), and host disk space: read from the host
 * collector's sample (every 5 s), so a scrape does no I/O.
 */
import type { Registry } from 'prom-client';
import type { HostSnapshot } from '../shared/host.js';
import { optionalGauge, readFamily } from './registry.js';

export function registerHostMetrics(registry: Registry, host: { snapshot(): HostSnapshot }): void {
  // Absent until the first sample: 0 would be a reading nobody took.
  optionalGauge(registry, 'process_resident_memory_bytes', 'Resident memory size in bytes (sampled every 5 s).', () => host.snapshot().process?.rss_bytes ?? null);
  optionalGauge(registry, 'process_open_fds', 'Number of open file descriptors (sampled every 5 s).', () => host.snapshot().process?.open_fds ?? null);
  optionalGauge(registry, 'nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes (sampled every 5 s).', () => host.snapshot().process?.heap_total_bytes ?? null);
  optionalGauge(registry, 'nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes (sampled every 5 s).', () => host.snapshot().process?.heap_used_bytes ?? null);
  optionalGauge(registry, 'nodejs_external_memory_bytes', 'Node.js external memory size in bytes (sampled every 5 s).', () => host.snapshot().process?.external_bytes ?? null);
  readFamily(registry, 'podscope_disk_free_bytes', "Free space on the filesystems holding ComfyUI's output directory and the workspace volume, in bytes.", 'gauge', (out) => {
    for (const d of host.snapshot().disks) out.push({ labels: { role: d.role }, value: d.free_bytes });
  });
}
