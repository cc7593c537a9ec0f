/**
 * Readiness (contract 2.2) and the pod's condition: one rule that /ready and /debug/status both
 * answer from, so the two never contradict each other.
 *
 * Each dependency contributes one check, answered from state the collectors keep: "ok", or a
 * sentence saying what is wrong and whether it is merely still coming up. The condition is
 *   - `degraded` when a check fails for a reason other than start-up, or an error problem is raised;
 *   - `starting` when the only failing checks are still coming up;
 *   - `ok` otherwise (which /debug/status refines into `idle` or `processing`).
 */
import type { Problem } from './health.js';

export type CheckResult = { ok: true } | { ok: false; message: string; /** still coming up, not broken */ starting?: boolean };
export type CheckFn = () => CheckResult;

export const READY_CHECKS = ['comfyui', 'websocket', 'gpu'] as const;
export type CheckName = (typeof READY_CHECKS)[number];

export type Condition = 'ok' | 'starting' | 'degraded';

export interface ReadyReport {
  ready: boolean;
  status: Condition;
  checks: Record<CheckName, string>;
  /** The error problems that make the pod degraded although every check may pass. */
  problems: Pick<Problem, 'component' | 'code' | 'message'>[];
}

/**
 * The checks and the condition they make together with the raised problems. A check that throws
 * counts as failing, with its message.
 */
export function readinessReport(fns: Record<CheckName, CheckFn>, problems: readonly Problem[] = []): ReadyReport {
  const checks = {} as Record<CheckName, string>;
  let broken = 0;
  let starting = 0;
  for (const name of READY_CHECKS) {
    let r: CheckResult;
    try {
      r = fns[name]();
    } catch (err) {
      r = { ok: false, message: `${name} check failed: ${(err as Error).message}` };
    }
    if (r.ok) {
      checks[name] = 'ok';
    } else {
      checks[name] = r.message;
      if (r.starting) starting++;
      else broken++;
    }
  }
  const errors = problems.filter((p) => p.severity === 'error').map(({ component, code, message }) => ({ component, code, message }));
  const status: Condition = broken > 0 || errors.length > 0 ? 'degraded' : starting > 0 ? 'starting' : 'ok';
  return { ready: status === 'ok', status, checks, problems: errors };
}
