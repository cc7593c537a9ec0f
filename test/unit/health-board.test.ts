/**
 * The health board (state/health.ts): how collector runs are counted and how problems start,
 * change and end, on an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { HealthBoard, type ProblemChange } from '../../src/state/health.js';

const T0 = Date.parse('2026-11-23T03:00:00.000Z');

function board() {
  let now = T0;
  const health = new HealthBoard(() => now);
  const changes: ProblemChange[] = [];
  health.onChange((c) => changes.push(c));
  return { health, changes, advance: (ms: number) => (now += ms) };
}

describe('collector runs', () => {
  it('shows a declared collector as not yet run', () => {
    const { health } = board();
    health.declare('gpu');
    expect(health.get('gpu')).toEqual({
      name: 'gpu',
      ok: null,
      runs: 0,
      failures: 0,
      consecutive_failures: 0,
      last_run_at: null,
      last_success_at: null,
      last_duration_ms: null,
      last_error: null,
    });
  });

  it('keeps what a collector has done when it is declared again', () => {
    const { health } = board();
    health.record('gpu', { ok: true, durationMs: 3 });
    health.declare('gpu');
    expect(health.get('gpu')?.runs).toBe(1);
  });

  it('records a success with its time and duration to the microsecond', () => {
    const { health } = board();
    health.record('gpu', { ok: true, durationMs: 12.345678 });
    expect(health.get('gpu')).toMatchObject({ ok: true, runs: 1, last_run_at: '2026-11-23T03:00:00.000Z', last_success_at: '2026-11-23T03:00:00.000Z', last_duration_ms: 12.346 });
  });

  it('counts failures in a row and in all, and keeps the last error with its time', () => {
    const { health, advance } = board();
    health.record('gpu', { ok: false, durationMs: 5000, code: 'GPU_TIMEOUT', message: 'nvidia-smi did not answer within 5 s' });
    advance(1000);
    health.record('gpu', { ok: false, durationMs: 5000, code: 'GPU_TIMEOUT', message: 'again' });
    expect(health.get('gpu')).toMatchObject({
      ok: false,
      runs: 2,
      failures: 2,
      consecutive_failures: 2,
      last_success_at: null,
      last_error: { code: 'GPU_TIMEOUT', message: 'again', at: '2026-11-23T03:00:01.000Z' },
    });
  });

  it('ends a streak of failures with a success, keeping the count of all failures and the last error', () => {
    const { health, advance } = board();
    health.record('gpu', { ok: false, durationMs: 1, code: 'X', message: 'x' });
    advance(1000);
    health.record('gpu', { ok: true, durationMs: 1 });
    expect(health.get('gpu')).toMatchObject({ ok: true, failures: 1, consecutive_failures: 0, last_error: { code: 'X' }, last_success_at: '2026-11-23T03:00:01.000Z' });
  });

  it('records a collector it was never told of', () => {
    const { health } = board();
    health.record('surprise', { ok: true, durationMs: 1 });
    expect(health.collectorsSnapshot().map((c) => c.name)).toEqual(['surprise']);
  });

  it('hands out copies that a caller cannot use to change the board', () => {
    const { health } = board();
    health.declare('gpu');
    health.get('gpu')!.runs = 99;
    health.collectorsSnapshot()[0]!.ok = false;
    expect(health.get('gpu')).toMatchObject({ runs: 0, ok: null });
  });

  it('lists collectors in the order they were declared', () => {
    const { health } = board();
    for (const n of ['gpu', 'comfyui', 'logs']) health.declare(n);
    expect(health.collectorsSnapshot().map((c) => c.name)).toEqual(['gpu', 'comfyui', 'logs']);
  });
});

describe('problems', () => {
  it('start with the time they were first raised and an error severity by default', () => {
    const { health, changes } = board();
    health.raise('comfyui', 'COMFYUI_UNREACHABLE', 'connection refused');
    expect(health.problems()).toEqual([{ component: 'comfyui', code: 'COMFYUI_UNREACHABLE', message: 'connection refused', since: '2026-11-23T03:00:00.000Z', severity: 'error' }]);
    expect(changes.map((c) => [c.kind, c.problem.code, c.at])).toEqual([['started', 'COMFYUI_UNREACHABLE', T0]]);
  });

  it('keep their first time and take the newest message when raised again, without a new start', () => {
    const { health, changes, advance } = board();
    health.raise('comfyui', 'COMFYUI_UNREACHABLE', 'refused');
    advance(5000);
    health.raise('comfyui', 'COMFYUI_UNREACHABLE', 'refused again');
    expect(health.problems()[0]).toMatchObject({ message: 'refused again', since: '2026-11-23T03:00:00.000Z' });
    expect(changes).toHaveLength(1);
  });

  it('report a change of severity once', () => {
    const { health, changes, advance } = board();
    health.raise('gpu', 'GPU_MEMORY_ERRORS', 'm', 'warning');
    advance(1);
    health.raise('gpu', 'GPU_MEMORY_ERRORS', 'm', 'error');
    health.raise('gpu', 'GPU_MEMORY_ERRORS', 'm', 'error');
    expect(changes.map((c) => [c.kind, c.problem.severity])).toEqual([
      ['started', 'warning'],
      ['severity', 'error'],
    ]);
  });

  it('end once when cleared, and clearing again changes nothing', () => {
    const { health, changes, advance } = board();
    health.raise('gpu', 'GPU_LOST', 'gone');
    advance(60_000);
    health.clear('gpu', 'GPU_LOST');
    health.clear('gpu', 'GPU_LOST');
    expect(health.problems()).toEqual([]);
    expect(changes.map((c) => [c.kind, c.at])).toEqual([
      ['started', T0],
      ['ended', T0 + 60_000],
    ]);
  });

  it('start a new streak, with a new time, when raised after they ended', () => {
    const { health, advance } = board();
    health.raise('gpu', 'GPU_LOST', 'gone');
    health.clear('gpu', 'GPU_LOST');
    advance(2000);
    health.raise('gpu', 'GPU_LOST', 'gone again');
    expect(health.problems()[0]!.since).toBe('2026-11-23T03:00:02.000Z');
  });

  it('are kept apart by component: the same code under two components is two problems', () => {
    const { health } = board();
    health.raise('gpu', 'STALE', 'a');
    health.raise('host', 'STALE', 'b');
    health.clear('gpu', 'STALE');
    expect(health.problems().map((p) => p.component)).toEqual(['host']);
  });

  it('of one component are all cleared when no code is named', () => {
    const { health } = board();
    health.raise('gpu', 'A', 'a');
    health.raise('gpu', 'B', 'b');
    health.raise('comfyui', 'C', 'c');
    health.clear('gpu');
    expect(health.problems().map((p) => p.code)).toEqual(['C']);
  });

  it('of one component are cleared except the codes to keep', () => {
    const { health, changes } = board();
    health.raise('gpu', 'A', 'a');
    health.raise('gpu', 'B', 'b');
    health.raise('comfyui', 'A', 'c');
    health.clearExcept('gpu', ['B']);
    expect(health.problems().map((p) => `${p.component}:${p.code}`)).toEqual(['gpu:B', 'comfyui:A']);
    expect(changes.filter((c) => c.kind === 'ended').map((c) => c.problem.code)).toEqual(['A']);
  });

  it('are found by component, and by component and code', () => {
    const { health } = board();
    health.raise('gpu', 'GPU_LOST', 'x');
    expect(health.hasProblem('gpu')).toBe(true);
    expect(health.hasProblem('gpu', 'GPU_LOST')).toBe(true);
    expect(health.hasProblem('gpu', 'GPU_MISSING')).toBe(false);
    expect(health.hasProblem('comfyui')).toBe(false);
  });

  it('are handed out as copies', () => {
    const { health } = board();
    health.raise('gpu', 'GPU_LOST', 'x');
    health.problems()[0]!.message = 'changed';
    expect(health.problems()[0]!.message).toBe('x');
  });

  it('reach every listener even when one throws', () => {
    const { health, changes } = board();
    health.onChange(() => {
      throw new Error('listener bug');
    });
    const late: string[] = [];
    health.onChange((c) => late.push(c.kind));
    health.raise('gpu', 'GPU_LOST', 'x');
    expect(changes).toHaveLength(1);
    expect(late).toEqual(['started']);
  });

  it('stop reaching a listener once it unsubscribes', () => {
    const { health } = board();
    const seen: string[] = [];
    const off = health.onChange((c) => seen.push(c.kind));
    health.raise('gpu', 'A', 'a');
    off();
    health.clear('gpu', 'A');
    expect(seen).toEqual(['started']);
  });

  it('give each listener a copy frozen at the change, not the live problem', () => {
    const { health, changes } = board();
    health.raise('gpu', 'A', 'first');
    health.raise('gpu', 'A', 'second');
    expect(changes[0]!.problem.message).toBe('first');
  });
});

describe("an instance's scope of the board", () => {
  it('raises problems that name the instance, and clears only its own', () => {
    const board = new HealthBoard(() => 0);
    const gpu0 = board.scope('gpu0');
    const gpu1 = board.scope('gpu1');
    gpu0.raise('comfyui', 'COMFYUI_UNREACHABLE', 'ComfyUI at http://127.0.0.1:8188 does not answer');
    gpu1.raise('comfyui', 'COMFYUI_UNREACHABLE', 'ComfyUI at http://127.0.0.1:8189 does not answer');
    gpu0.clear('comfyui');
    expect(board.problems().map((p) => [p.instance, p.code])).toEqual([['gpu1', 'COMFYUI_UNREACHABLE']]);
    expect(gpu0.hasProblem('comfyui')).toBe(false);
    expect(gpu1.hasProblem('comfyui', 'COMFYUI_UNREACHABLE')).toBe(true);
    expect(board.hasProblem('comfyui')).toBe(false);
  });

  it('keeps each instance’s collector runs apart, named by the instance', () => {
    const board = new HealthBoard(() => 0);
    board.scope('gpu0').record('comfyui', { ok: true, durationMs: 1 });
    board.scope('gpu1').record('comfyui', { ok: false, durationMs: 1, code: 'X', message: 'y' });
    expect(board.collectorsSnapshot().map((c) => [c.name, c.instance, c.ok])).toEqual([
      ['comfyui', 'gpu0', true],
      ['comfyui', 'gpu1', false],
    ]);
  });
});
