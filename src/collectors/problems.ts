/**
 * The problem journal: every problem on the health board is logged once when it starts (at `warn`
 * or `error`, by its severity), again at a slow interval while it lasts, and once at `info` when it
 * ends. Collectors raise and clear problems; only this journal writes them to the log, so an
 * on-call engineer reading the log sees the same problems /debug/status lists, and no more often
 * than once per interval.
 */
import type { Logger } from '../logger.js';
import type { HealthBoard, Problem, ProblemChange } from '../state/health.js';
import type { Collector } from './collector.js';

export interface ProblemJournalOptions {
  health: HealthBoard;
  logger: Logger;
  /** Milliseconds between "still" records for a problem that lasts. */
  remindMs: number;
  now?: () => number;
}

const keyOf = (p: Problem) => `${p.component}:${p.code}`;

function lasted(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 360) / 10} h`;
}

export class ProblemJournal implements Collector {
  readonly name = 'problems';
  private readonly now: () => number;
  /** When each live problem was last written to the log. */
  private readonly lastLogged = new Map<string, number>();
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: ProblemJournalOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(signal: AbortSignal): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.opts.health.onChange((change) => this.record(change));
    // Problems raised before the journal started are logged now, as started.
    for (const p of this.opts.health.problems()) this.record({ kind: 'started', problem: p, at: this.now() });
    this.timer = setInterval(() => this.remind(), Math.min(this.opts.remindMs, 10_000));
    this.timer.unref();
    signal.addEventListener('abort', () => void this.stop(), { once: true });
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Logs one change of the board. */
  record(change: ProblemChange): void {
    const p = change.problem;
    const key = keyOf(p);
    const data = { component: p.component, code: p.code, severity: p.severity, since: p.since };
    if (change.kind === 'ended') {
      if (!this.lastLogged.delete(key)) return;
      this.opts.logger.info({ data }, `problem ended after ${lasted(change.at - Date.parse(p.since))}: ${p.component} ${p.code}`);
      return;
    }
    if (change.kind === 'started' && this.lastLogged.has(key)) return;
    this.lastLogged.set(key, change.at);
    const verb = change.kind === 'started' ? 'problem' : `problem now ${p.severity}`;
    this.opts.logger[p.severity === 'error' ? 'error' : 'warn']({ data }, `${verb}: ${p.component} ${p.code}: ${p.message}`);
  }

  /** Logs each problem that has lasted a whole interval since it was last logged. */
  remind(): void {
    const now = this.now();
    for (const p of this.opts.health.problems()) {
      const key = keyOf(p);
      const last = this.lastLogged.get(key);
      if (last === undefined || now - last < this.opts.remindMs) continue;
      this.lastLogged.set(key, now);
      const data = { component: p.component, code: p.code, severity: p.severity, since: p.since };
      this.opts.logger[p.severity === 'error' ? 'error' : 'warn']({ data }, `problem continues (${lasted(now - Date.parse(p.since))} so far): ${p.component} ${p.code}: ${p.message}`);
    }
  }
}
