/**
 * Running a short-lived child process that may hang, flood, or never die.
 *
 * The child runs without a shell, as the leader of its own process group, so a timeout can kill
 * it together with anything it started. A child in uninterruptible sleep (a wedged driver) may
 * survive SIGKILL: the result then says so, and `exited` stays pending until it really goes, so the
 * caller can refuse to start another run on top of it.
 */
import { spawn } from 'node:child_process';

export type RunResult =
  | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; durationMs: number; truncated: boolean }
  | { kind: 'spawn-error'; errno: string; message: string; durationMs: number }
  | { kind: 'timeout'; stdout: string; stderr: string; durationMs: number; /** false when it outlived SIGKILL */ died: boolean };

export interface RunningProcess {
  pid: number | undefined;
  startedAt: number;
  /** Settles once: with the outcome, or with a timeout when the deadline passed first. */
  result: Promise<RunResult>;
  /** Settles when the child has really gone (never, for a child stuck in the kernel). */
  exited: Promise<void>;
}

export interface RunOptions {
  timeoutMs: number;
  /** Output kept per stream; beyond it the child is killed and the result marked truncated. */
  maxBytes?: number;
  /** How long to wait for the exit after SIGKILL before calling the child unkillable. */
  killGraceMs?: number;
  env?: NodeJS.ProcessEnv;
}

export function runBounded(file: string, args: readonly string[], opts: RunOptions): RunningProcess {
  const started = performance.now();
  const maxBytes = opts.maxBytes ?? 1024 * 1024;
  const killGraceMs = opts.killGraceMs ?? 2000;
  let settle!: (r: RunResult) => void;
  let settled = false;
  const result = new Promise<RunResult>((resolve) => (settle = resolve));
  let markExited!: () => void;
  const exited = new Promise<void>((resolve) => (markExited = resolve));
  const finish = (r: RunResult) => {
    if (!settled) {
      settled = true;
      settle(r);
    }
  };
  const elapsed = () => performance.now() - started;

  let child;
  try {
    child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, windowsHide: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    finish({ kind: 'spawn-error', errno: e.code ?? 'ERR', message: e.message, durationMs: elapsed() });
    markExited();
    return { pid: undefined, startedAt: Date.now(), result, exited };
  }

  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let outBytes = 0;
  let errBytes = 0;
  let truncated = false;
  let timedOut = false;

  const killGroup = () => killProcessGroup(child);

  const collect = (chunks: Buffer[], which: 'out' | 'err') => (chunk: Buffer) => {
    const used = which === 'out' ? outBytes : errBytes;
    if (used >= maxBytes) return;
    const room = maxBytes - used;
    const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
    chunks.push(piece);
    if (which === 'out') outBytes += piece.length;
    else errBytes += piece.length;
    if (chunk.length > room) {
      truncated = true;
      killGroup();
    }
  };
  child.stdout!.on('data', collect(out, 'out'));
  child.stderr!.on('data', collect(err, 'err'));

  let graceTimer: NodeJS.Timeout | undefined;
  const deadline = setTimeout(() => {
    timedOut = true;
    killGroup();
    // If it has not exited within the grace period, it is stuck where signals do not reach.
    graceTimer = setTimeout(() => {
      finish({ kind: 'timeout', stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), durationMs: elapsed(), died: false });
    }, killGraceMs);
    graceTimer.unref();
  }, opts.timeoutMs);
  deadline.unref();

  child.on('error', (e: NodeJS.ErrnoException) => {
    clearTimeout(deadline);
    if (graceTimer) clearTimeout(graceTimer);
    finish({ kind: 'spawn-error', errno: e.code ?? 'ERR', message: e.message, durationMs: elapsed() });
    markExited();
  });

  child.on('close', (code, signal) => {
    clearTimeout(deadline);
    if (graceTimer) clearTimeout(graceTimer);
    const stdout = Buffer.concat(out).toString('utf8');
    const stderr = Buffer.concat(err).toString('utf8');
    if (timedOut) finish({ kind: 'timeout', stdout, stderr, durationMs: elapsed(), died: true });
    else finish({ kind: 'exited', code, signal, stdout, stderr, durationMs: elapsed(), truncated });
    markExited();
  });

  return { pid: child.pid, startedAt: Date.now(), result, exited };
}

/** SIGKILL to a child started `detached` and to its whole process group (the child alone when the group is gone). */
export function killProcessGroup(child: { pid?: number; kill(signal: NodeJS.Signals): boolean }): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
