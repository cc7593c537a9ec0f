/**
 * NVML, off podscope's event loop: the sampler process (nvml-child.ts) loads libnvidia-ml and
 * sends every sample, process list and Xid over IPC. A sample later than its period plus
 * PODSCOPE_GPU_TIMEOUT_MS means a call is stuck in the driver: the sampler is killed with its
 * process group (SIGKILL reaches a process blocked in a driver call, which a thread's terminate
 * does not) and started again after a growing delay. One sampler at a time, never more.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { NvmlMessage, NvmlStart } from './nvml-protocol.js';
import { killProcessGroup } from './process.js';

export type { NvmlMessage } from './nvml-protocol.js';

/** The sampler's script: beside this file when running from dist/, else the built one. */
export function samplerScript(): string {
  const here = fileURLToPath(new URL('./nvml-child.js', import.meta.url));
  if (existsSync(here)) return here;
  return here.replace(/([/\\])src([/\\])sources([/\\])nvml-child\.js$/, '$1dist$2sources$3nvml-child.js');
}

export type NvmlState =
  | { kind: 'starting' }
  | { kind: 'ready'; since: number }
  /** NVML cannot be used here (no library, no GPU, init refused): the reason, for the fallback. */
  | { kind: 'unavailable'; reason: string }
  /** A call did not return in time; the sampler was killed and starts again at `retryAt`. */
  | { kind: 'hung'; since: number; detail: string; retryAt: number }
  | { kind: 'stopped' };

export interface NvmlSamplerOptions extends NvmlStart {
  timeoutMs: number;
  /** Told of every message (samples, process lists, Xids, ready). */
  onMessage: (m: NvmlMessage) => void;
  /** Told when the sampler's state changes. */
  onState: (s: NvmlState) => void;
  script?: string;
  env?: NodeJS.ProcessEnv;
}

const MAX_BACKOFF_MS = 60_000;
/** Loading the library and finding the GPUs may take longer than a sample. */
const START_GRACE_MS = 10_000;

export class NvmlSampler {
  private child: ChildProcess | null = null;
  private state: NvmlState = { kind: 'starting' };
  private lastMessageAt = 0;
  private startedAt = 0;
  private watchdog: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private backoffMs = 1000;
  private stderr = '';
  private stopped = false;
  /** Samplers started since podscope started (a restart after a hang counts). */
  starts = 0;

  constructor(private readonly opts: NvmlSamplerOptions) {}

  get current(): NvmlState {
    return this.state;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    this.stopped = false;
    this.launch();
    this.watchdog = setInterval(() => this.check(), Math.max(50, Math.min(1000, this.opts.periodMs / 2)));
    this.watchdog.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.retry) clearTimeout(this.retry);
    const child = this.child;
    this.kill();
    if (child && child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
    this.set({ kind: 'stopped' });
  }

  private set(s: NvmlState): void {
    this.state = s;
    this.opts.onState(s);
  }

  private launch(): void {
    if (this.stopped) return;
    this.stderr = '';
    this.startedAt = Date.now();
    this.lastMessageAt = 0;
    this.starts++;
    // A small heap: the sampler holds a few buffers per GPU, nothing more.
    const child = spawn(process.execPath, ['--max-old-space-size=24', '--max-semi-space-size=1', this.opts.script ?? samplerScript()], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // Its own process group, so a kill reaches anything it started too.
      detached: true,
      env: this.opts.env ?? process.env,
      serialization: 'advanced',
    });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-2000)));
    child.on('message', (m: NvmlMessage) => this.received(child, m));
    child.on('error', (err) => this.ended(child, `the NVML sampler could not start: ${err.message}`));
    child.on('exit', (code, signal) => this.ended(child, `the NVML sampler exited (${signal ?? `status ${code}`})${this.stderr.trim() ? `: ${this.stderr.trim().split('\n').at(-1)}` : ''}`));
    const { library, fastMs, periodMs, appsMs } = this.opts;
    child.send({ library, fastMs, periodMs, appsMs } satisfies NvmlStart);
  }

  private received(child: ChildProcess, m: NvmlMessage): void {
    if (child !== this.child) return;
    this.lastMessageAt = Date.now();
    if (m.type === 'failed') {
      this.set({ kind: 'unavailable', reason: m.reason });
      this.kill();
      return;
    }
    if (m.type === 'ready') {
      this.backoffMs = 1000;
      this.set({ kind: 'ready', since: this.lastMessageAt });
    }
    this.opts.onMessage(m);
  }

  /** The child went away by itself: a crash is retried like a hang; a clean "cannot" is final. */
  private ended(child: ChildProcess, why: string): void {
    if (child !== this.child) return;
    this.child = null;
    if (this.stopped || this.state.kind === 'unavailable' || this.state.kind === 'hung') return;
    this.scheduleRetry(why);
  }

  private check(): void {
    if (this.stopped || !this.child) return;
    const now = Date.now();
    const ready = this.state.kind === 'ready';
    const quiet = now - (this.lastMessageAt || this.startedAt);
    const allowed = ready ? this.opts.periodMs + this.opts.timeoutMs : this.opts.timeoutMs + START_GRACE_MS;
    if (quiet <= allowed) return;
    const detail = ready
      ? `no GPU sample for ${Math.round(quiet / 1000)} s: an NVML call has not returned within PODSCOPE_GPU_TIMEOUT_MS (${this.opts.timeoutMs} ms); the sampler (pid ${this.child.pid}) was killed`
      : `NVML did not start within ${Math.round(allowed / 1000)} s; the sampler (pid ${this.child.pid}) was killed`;
    this.kill();
    this.scheduleRetry(detail);
  }

  /** A sampler that hung or died: another one after a delay that doubles (1 s … 60 s) while it keeps failing. */
  private scheduleRetry(detail: string): void {
    const retryAt = Date.now() + this.backoffMs;
    this.set({ kind: 'hung', since: Date.now(), detail, retryAt });
    if (this.retry) clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = null;
      this.launch();
    }, this.backoffMs);
    this.retry.unref();
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
  }

  private kill(): void {
    const child = this.child;
    this.child = null;
    if (child) killProcessGroup(child);
  }
}
