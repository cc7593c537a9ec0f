/**
 * /debug/events metrics: events recorded by type, streams open, streams dropped for reading too
 * slowly.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventReader } from '../state/events.js';
import { readFamily } from './registry.js';

export function registerEventMetrics(registry: Registry, journal: EventReader): void {
  readFamily(registry, 'podscope_events_total', 'Events recorded for /debug/events, by type.', 'counter', (out) => {
    for (const [type, n] of journal.counts) out.push({ labels: { type }, value: n });
  });
  new Gauge({
    name: 'podscope_event_streams',
    help: 'Clients following /debug/events now.',
    registers: [registry],
    collect() {
      this.set(journal.streams.open);
    },
  });
  new Counter({
    name: 'podscope_event_streams_dropped_total',
    help: 'Clients of /debug/events dropped for falling more than 1 MiB behind.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(journal.streams.dropped);
    },
  });
}
