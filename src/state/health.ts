/**
 * Collector health and problems, kept as data.
 *
 * A collector never throws into a route: each run ends as a {@link RunOutcome} recorded here, and
 * what keeps the pod from working normally becomes a {@link Problem} with a stable code. `/ready`,
 * `/debug/status` and `/metrics` only read this board.
 */

export type Component = 'gpu' | 'comfyui' | 'websocket' | 'logs' | 'host' | 'artifacts' | 'podscope';

export interface Problem {
  component: Component;
  code: string;
  message: string;
  /** ISO time the problem was first seen in its current streak. */
  since: string;
  /** Whether this problem keeps the pod from working normally (makes status `degraded`). */
  severity: 'error' | 'warning';
}

export interface CollectorHealth {
  name: string;
  /** null until the first run ends. */
  ok: boolean | null;
  runs: number;
  failures: number;
  consecutive_failures: number;
  last_run_at: string | null;
  last_success_at: string | null;
  last_duration_ms: number | null;
  last_error: { code: string; message: string; at: string } | null;
}

export type RunOutcome = { ok: true; durationMs: number } | { ok: false; durationMs: number; code: string; message: string };

export class HealthBoard {
  private readonly collectors = new Map<string, CollectorHealth>();
  private readonly problemMap = new Map<string, Problem>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Declares a collector so it shows (as not yet run) before its first result. */
  declare(name: string): void {
    if (!this.collectors.has(name)) {
      this.collectors.set(name, {
        name,
        ok: null,
        runs: 0,
        failures: 0,
        consecutive_failures: 0,
        last_run_at: null,
        last_success_at: null,
        last_duration_ms: null,
        last_error: null,
      });
    }
  }

  record(name: string, outcome: RunOutcome): void {
    this.declare(name);
    const h = this.collectors.get(name)!;
    const at = new Date(this.now()).toISOString();
    h.runs++;
    h.last_run_at = at;
    h.last_duration_ms = Math.round(outcome.durationMs * 1000) / 1000;
    if (outcome.ok) {
      h.ok = true;
      h.consecutive_failures = 0;
      h.last_success_at = at;
    } else {
      h.ok = false;
      h.failures++;
      h.consecutive_failures++;
      h.last_error = { code: outcome.code, message: outcome.message, at };
    }
  }

  get(name: string): CollectorHealth | undefined {
    const h = this.collectors.get(name);
    return h ? { ...h } : undefined;
  }

  collectorsSnapshot(): CollectorHealth[] {
    return [...this.collectors.values()].map((h) => ({ ...h }));
  }

  /** Raises (or keeps) a problem; `since` stays at the first time it was raised. */
  raise(component: Component, code: string, message: string, severity: Problem['severity'] = 'error'): void {
    const key = `${component}:${code}`;
    const existing = this.problemMap.get(key);
    if (existing) {
      existing.message = message;
      existing.severity = severity;
      return;
    }
    this.problemMap.set(key, { component, code, message, since: new Date(this.now()).toISOString(), severity });
  }

  /** Clears one problem, or with no code every problem of the component. */
  clear(component: Component, code?: string): void {
    if (code !== undefined) {
      this.problemMap.delete(`${component}:${code}`);
      return;
    }
    for (const [key, p] of this.problemMap) if (p.component === component) this.problemMap.delete(key);
  }

  /** Clears the component's problems except the listed codes. */
  clearExcept(component: Component, keep: readonly string[]): void {
    for (const [key, p] of this.problemMap) {
      if (p.component === component && !keep.includes(p.code)) this.problemMap.delete(key);
    }
  }

  problems(): Problem[] {
    return [...this.problemMap.values()].map((p) => ({ ...p }));
  }

  hasProblem(component: Component, code?: string): boolean {
    for (const p of this.problemMap.values()) {
      if (p.component === component && (code === undefined || p.code === code)) return true;
    }
    return false;
  }
}
