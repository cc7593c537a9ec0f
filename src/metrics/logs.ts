/**
 * Log buffer metrics: lines by source and level, lines dropped, buffer fill; lines stdout did not
 * take.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { LogReader } from '../state/logs.js';
import { readFamily } from './registry.js';
import { PENDING_BYTES } from '../logger.js';

export function registerLogMetrics(registry: Registry, store: LogReader, stdout: { readonly dropped: number }): void {
  readFamily(registry, 'podscope_log_lines_total', 'Log lines taken into the buffer, by source (comfyui, podscope) and level.', 'counter', (out) => {
    for (const [key, n] of store.counts) {
      const [source, level] = key.split('\u0000') as [string, string];
      out.push({ labels: { source, level }, value: n });
    }
  });
  new Counter({
    name: 'podscope_log_lines_dropped_total',
    help: 'Log lines evicted from the full buffer (oldest first), or refused as larger than it.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(store.ring.dropped);
    },
  });
  new Counter({
    name: 'podscope_stdout_lines_dropped_total',
    help: `podscope log lines not written to stdout because its reader had stopped taking them (${PENDING_BYTES / 1024 / 1024} MiB already waiting).`,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stdout.dropped);
    },
  });
  new Gauge({
    name: 'podscope_log_buffer_lines',
    help: 'Log lines in the buffer now.',
    registers: [registry],
    collect() {
      this.set(store.ring.size);
    },
  });
  new Gauge({
    name: 'podscope_log_buffer_bytes',
    help: 'Bytes the log buffer holds now (as counted against PODSCOPE_LOG_BYTES).',
    registers: [registry],
    collect() {
      this.set(store.ring.bytes);
    },
  });
}
