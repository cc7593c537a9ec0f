/**
 * Readiness (contract 2.2): each dependency contributes one check, answered from state the
 * collectors keep. A check is "ok" or a sentence saying what is wrong.
 */

export type CheckResult = { ok: true } | { ok: false; message: string; /** still coming up, not broken */ starting?: boolean };
export type CheckFn = () => CheckResult;

export const READY_CHECKS = ['comfyui', 'websocket', 'gpu'] as const;
export type CheckName = (typeof READY_CHECKS)[number];

export interface ReadyReport {
  ready: boolean;
  status: 'ok' | 'starting' | 'degraded';
  checks: Record<CheckName, string>;
}

export class Readiness {
  private readonly fns = new Map<CheckName, CheckFn>();

  set(name: CheckName, fn: CheckFn): void {
    this.fns.set(name, fn);
  }

  report(): ReadyReport {
    const checks = {} as Record<CheckName, string>;
    let failing = 0;
    let starting = 0;
    for (const name of READY_CHECKS) {
      const fn = this.fns.get(name);
      let r: CheckResult;
      try {
        r = fn ? fn() : { ok: false, message: `${name} is not monitored by this podscope.` };
      } catch (err) {
        r = { ok: false, message: `${name} check failed: ${(err as Error).message}` };
      }
      if (r.ok) {
        checks[name] = 'ok';
      } else {
        checks[name] = r.message;
        failing++;
        if (r.starting) starting++;
      }
    }
    const status = failing === 0 ? 'ok' : starting === failing ? 'starting' : 'degraded';
    return { ready: failing === 0, status, checks };
  }
}
