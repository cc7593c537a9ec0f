/**
 * Collector health and problems, kept as data.
 *
 * A collector never throws into a route: each run ends as a {@link RunOutcome} recorded here, and
 * what keeps the pod from working normally becomes a {@link Problem} with a stable code. `/ready`,
 * `/debug/status` and `/metrics` only read this board.
 */
import { iso } from '../format.js';

export type Component = 'gpu' | 'comfyui' | 'websocket' | 'logs' | 'host' | 'artifacts' | 'podscope';

export interface Problem {
  component: Component;
  /** The ComfyUI instance the problem is about; absent for the pod's own (GPU, host, podscope). */
  instance?: string;
  code: string;
  message: string;
  /** ISO time the problem was first seen in its current streak. */
  since: string;
  /** Whether this problem keeps the pod from working normally (makes status `degraded`). */
  severity: 'error' | 'warning';
}

export interface CollectorHealth {
  name: string;
  /** The ComfyUI instance this collector follows; absent for the pod's own collectors. */
  instance?: string;
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

/** What happened to a problem: it started, its severity changed, or it ended. */
export interface ProblemChange {
  kind: 'started' | 'severity' | 'ended';
  problem: Problem;
  /** Epoch ms of the change. */
  at: number;
}

export type RunOutcome = { ok: true; durationMs: number } | { ok: false; durationMs: number; code: string; message: string };

/**
 * What a collector does with the board: for the pod's own collectors the board itself, for a
 * ComfyUI instance's collectors its {@link HealthBoard.scope}, so their problems and runs carry the
 * instance and one instance's problem never clears another's.
 */
export interface HealthWriter {
  declare(name: string): void;
  record(name: string, outcome: RunOutcome): void;
  raise(component: Component, code: string, message: string, severity?: Problem['severity']): void;
  clear(component: Component, code?: string): void;
  clearExcept(component: Component, keep: readonly string[]): void;
  hasProblem(component: Component, code?: string): boolean;
  /** The problems this writer raised and still stand (the board's own: every one). */
  problems(): Problem[];
  onChange(listener: (change: ProblemChange) => void): () => void;
}

const keyOf = (instance: string | null, name: string) => (instance === null ? name : `${instance}\u0000${name}`);

export class HealthBoard implements HealthWriter {
  private readonly collectors = new Map<string, CollectorHealth>();
  private readonly problemMap = new Map<string, Problem>();
  private readonly listeners = new Set<(change: ProblemChange) => void>();
  private readonly scopes = new Map<string, HealthWriter>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The board as one ComfyUI instance's collectors write it: everything they raise or record names `instance`. */
  scope(instance: string): HealthWriter {
    let s = this.scopes.get(instance);
    if (!s) {
      s = {
        declare: (name) => this.declareIn(instance, name),
        record: (name, outcome) => this.recordIn(instance, name, outcome),
        raise: (component, code, message, severity = 'error') => this.raiseIn(instance, component, code, message, severity),
        clear: (component, code) => this.clearIn(instance, component, code),
        clearExcept: (component, keep) => this.clearExceptIn(instance, component, keep),
        hasProblem: (component, code) => this.has(instance, component, code),
        problems: () => this.problems().filter((p) => p.instance === instance),
        onChange: (listener) => this.onChange(listener),
      };
      this.scopes.set(instance, s);
    }
    return s;
  }

  /** Declares a collector so it shows (as not yet run) before its first result. */
  declare(name: string): void {
    this.declareIn(null, name);
  }

  private declareIn(instance: string | null, name: string): CollectorHealth {
    const key = keyOf(instance, name);
    let h = this.collectors.get(key);
    if (!h) {
      h = {
        name,
        ...(instance === null ? {} : { instance }),
        ok: null,
        runs: 0,
        failures: 0,
        consecutive_failures: 0,
        last_run_at: null,
        last_success_at: null,
        last_duration_ms: null,
        last_error: null,
      };
      this.collectors.set(key, h);
    }
    return h;
  }

  record(name: string, outcome: RunOutcome): void {
    this.recordIn(null, name, outcome);
  }

  private recordIn(instance: string | null, name: string, outcome: RunOutcome): void {
    const h = this.declareIn(instance, name);
    const at = iso(this.now());
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

  /** The pod's own collector of that name (an instance's collectors are in the snapshot). */
  get(name: string): CollectorHealth | undefined {
    const h = this.collectors.get(name);
    return h ? { ...h } : undefined;
  }

  collectorsSnapshot(): CollectorHealth[] {
    return [...this.collectors.values()].map((h) => ({ ...h }));
  }

  /** Calls `listener` on every start, severity change and end of a problem; returns the unsubscribe. */
  onChange(listener: (change: ProblemChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(kind: ProblemChange['kind'], problem: Problem): void {
    const change = { kind, problem: { ...problem }, at: this.now() };
    for (const l of this.listeners) {
      try {
        l(change);
      } catch {
        /* a listener's failure is its own */
      }
    }
  }

  /** Raises (or keeps) a problem; `since` stays at the first time it was raised. */
  raise(component: Component, code: string, message: string, severity: Problem['severity'] = 'error'): void {
    this.raiseIn(null, component, code, message, severity);
  }

  private raiseIn(instance: string | null, component: Component, code: string, message: string, severity: Problem['severity']): void {
    const key = keyOf(instance, `${component}:${code}`);
    const existing = this.problemMap.get(key);
    if (existing) {
      existing.message = message;
      if (existing.severity !== severity) {
        existing.severity = severity;
        this.emit('severity', existing);
      }
      return;
    }
    const problem: Problem = { component, ...(instance === null ? {} : { instance }), code, message, since: iso(this.now()), severity };
    this.problemMap.set(key, problem);
    this.emit('started', problem);
  }

  private drop(key: string): void {
    const problem = this.problemMap.get(key);
    if (!problem) return;
    this.problemMap.delete(key);
    this.emit('ended', problem);
  }

  private matches(p: Problem, instance: string | null, component: Component): boolean {
    return p.component === component && (p.instance ?? null) === instance;
  }

  /** Clears one problem, or with no code every problem of the component. */
  clear(component: Component, code?: string): void {
    this.clearIn(null, component, code);
  }

  private clearIn(instance: string | null, component: Component, code?: string): void {
    if (code !== undefined) {
      this.drop(keyOf(instance, `${component}:${code}`));
      return;
    }
    for (const [key, p] of this.problemMap) if (this.matches(p, instance, component)) this.drop(key);
  }

  /** Clears the component's problems except the listed codes. */
  clearExcept(component: Component, keep: readonly string[]): void {
    this.clearExceptIn(null, component, keep);
  }

  private clearExceptIn(instance: string | null, component: Component, keep: readonly string[]): void {
    for (const [key, p] of this.problemMap) {
      if (this.matches(p, instance, component) && !keep.includes(p.code)) this.drop(key);
    }
  }

  problems(): Problem[] {
    return [...this.problemMap.values()].map((p) => ({ ...p }));
  }

  /** Whether the pod's own component has the problem (an instance's: through its scope). */
  hasProblem(component: Component, code?: string): boolean {
    return this.has(null, component, code);
  }

  private has(instance: string | null, component: Component, code?: string): boolean {
    for (const p of this.problemMap.values()) {
      if (this.matches(p, instance, component) && (code === undefined || p.code === code)) return true;
    }
    return false;
  }
}

/** What readers (routes, views, metrics) may do with the board: look. */
export type HealthReader = Readonly<Pick<HealthBoard, 'problems' | 'hasProblem' | 'get' | 'collectorsSnapshot'>>;
