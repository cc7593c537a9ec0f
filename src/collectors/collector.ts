/**
 * The collector contract: a named thing with a symmetric lifecycle that keeps state up to date and
 * records its own health as data. Nothing a collector does may throw into a route.
 */
import type { HealthWriter } from '../state/health.js';

export interface Collector {
  readonly name: string;
  /** Starts work; the signal aborts it. Never throws. */
  start(signal: AbortSignal): void;
  /** Stops timers, sockets and children; resolves when they are released. */
  stop(): Promise<void>;
}

/** What one unit of work ended as; `stopped` is work podscope itself cut short by stopping. */
export type WorkOutcome = { ok: true } | { ok: false; code: string; message: string } | { stopped: true };

/**
 * Runs one unit of collector work, timing it and recording the outcome on the health board. A
 * thrown error is recorded as a failure (code `EXCEPTION`), never rethrown. Work cut short because
 * podscope stops is not a run: nothing is recorded.
 */
export async function tracked(health: HealthWriter, name: string, work: () => Promise<WorkOutcome>): Promise<boolean> {
  const started = performance.now();
  let outcome: WorkOutcome;
  try {
    outcome = await work();
  } catch (err) {
    outcome = { ok: false, code: 'EXCEPTION', message: err instanceof Error ? err.message : String(err) };
  }
  if ('stopped' in outcome) return false;
  const durationMs = performance.now() - started;
  health.record(name, outcome.ok ? { ok: true, durationMs } : { ok: false, durationMs, code: outcome.code, message: outcome.message });
  return outcome.ok;
}

/** Resolves after `ms`, or at once when the signal aborts. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done() {
      signal?.removeEventListener('abort', done);
      clearTimeout(timer);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
