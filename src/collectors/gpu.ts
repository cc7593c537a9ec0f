/**
 * The GPU collector: reads the GPUs through NVML (a sampler process) or, where NVML cannot be
 * used, through nvidia-smi, and writes GpuState.
 *
 * Through nvidia-smi, samples come from one long-lived `nvidia-smi --query-gpu=… -lms` (and one
 * for processes), read as they stream: a loop that goes silent is killed with its process group
 * and started again with backoff, and never two of a kind live at once. An nvidia-smi that does not
 * loop (exits after each sample) is sampled by one run per period instead. The slow health queries
 * are single runs. A run that hangs is killed with its group at the timeout; a child that will not
 * die is reported (NVIDIA_SMI_STUCK) and nothing new starts until it is gone. Every failure
 * becomes a problem with a stable code; routes keep answering from the last state.
 */
import type { Logger } from '../logger.js';
import type { HealthBoard } from '../state/health.js';
import type { GpuState } from '../state/gpu.js';
import { runBounded, type RunningProcess, type RunResult } from '../sources/process.js';
import { SmiLoop, type LoopExit } from '../sources/nvidia-smi-loop.js';
import {
  classifyFailure,
  COMPUTE_APP_FIELDS,
  HEALTH_FIELDS,
  parseComputeApps,
  parseCsvRows,
  parseHelpQueryGpu,
  planFields,
  rejectedField,
  REQUIRED_KEYS,
  toGpuHealth,
  toGpuRow,
  type FieldPlan,
} from '../sources/nvidia-smi.js';
import { migDevicesOf, parseGpuList, parseQueryText, queryProcessesOf } from '../sources/nvidia-smi-text.js';
import { normalizeBusId, type GpuHealth, type GpuRow, type MigDevice } from '../shared/gpu-readings.js';
import { healthVerdict } from '../shared/gpu-health.js';
import { sleep, tracked, type Collector } from './collector.js';
import { iso } from '../format.js';
import { NvmlSampler, type NvmlMessage, type NvmlState } from '../sources/nvml.js';
import type { XidEvent } from '../state/gpu.js';
import { xidSentence, xidSeverity } from '../shared/xid-catalog.js';

export interface GpuCollectorOptions {
  bin: string;
  intervalMs: number;
  timeoutMs: number;
  appsIntervalMs: number;
  /** Period of the memory-health query, `-L` and (under MIG) `-q`; 60 s by default. */
  healthIntervalMs?: number;
  state: GpuState;
  health: HealthBoard;
  logger: Logger;
  now?: () => number;
  /** Called after every sample: a run's duration (null for a loop's sample) and, when it failed, the failure code. */
  onRun?: (durationMs: number | null, failure: string | null) => void;
  /**
   * How nvidia-smi samples: one long-lived `-lms` loop (the default), or one run per period (what
   * an nvidia-smi that does not loop falls back to).
   */
  sampling?: 'loop' | 'runs';
  env?: NodeJS.ProcessEnv;
  /**
   * NVML, read by a sampler process; null reads through nvidia-smi alone. Unless `required`, a
   * library that cannot be used falls back to nvidia-smi.
   */
  nvml?: { library: string; fastMs: number; required: boolean; script?: string; crosscheckMs?: number } | null;
}

/** How long a warning Xid (an application fault) stays a problem after the last one. */
const XID_WARNING_MS = 15 * 60_000;

const NAME = 'gpu';

/** Problems the slow health run and the GPU count own; a sampling run leaves them alone. */
const HEALTH_CODES = ['GPU_LOST', 'GPU_MISSING', 'GPU_NEEDS_RESET', 'GPU_MEMORY_ERRORS'];

type Failure = { code: string; message: string };

/** The first wait before a failed nvidia-smi loop starts again; it doubles up to LOOP_BACKOFF_MAX_MS. */
const LOOP_BACKOFF_MS = 1000;
const LOOP_BACKOFF_MAX_MS = 30_000;
/** Loops that exit by themselves after printing, in a row, before sampling falls back to runs. */
const NOT_LOOPING_LIMIT = 3;
/** How long a loop killed by podscope may take to go before it counts as stuck. */
const KILL_GRACE_MS = 2000;

export class GpuCollector implements Collector {
  readonly name = NAME;
  private readonly now: () => number;
  private plan: FieldPlan | null = null;
  private readonly rejected = new Set<string>();
  private current: RunningProcess | null = null;
  /** A child that outlived SIGKILL; while it lives, no new run starts. */
  private stuck: { pid: number | undefined; since: number; exited: boolean } | null = null;
  private lastAppsAt = 0;
  private lastHealthAt = Number.NEGATIVE_INFINITY;
  private lastRowCount = 0;
  /** Field names this driver lists in --help-query-gpu; null when it did not say. */
  private accepted: Set<string> | null = null;
  private readonly healthRejected = new Set<string>();
  private loop: Promise<void> | null = null;
  private warnings: string[] = [];
  /** Set by stop(): a run killed on the way out is not a failure of nvidia-smi. */
  private stopping = false;
  private readonly nvml: NvmlSampler | null;
  /** Xids of the last minutes, for the GPU_XID problem. */
  private recentXids: XidEvent[] = [];
  private sampling: 'loop' | 'runs';
  /** The live loops, one of each kind at most; set to null only once the process has gone. */
  private gpuLoop: SmiLoop | null = null;
  private appsLoop: SmiLoop | null = null;
  /** Loops podscope killed itself (silence, stop): their exit is not a failure of nvidia-smi. */
  private readonly killed = new WeakSet<SmiLoop>();
  /** Wall-clock time of the GPU loop's last complete sample. */
  private loopSampleAt: number | null = null;
  private loopRetryAt = 0;
  private loopBackoffMs = 0;
  private notLooping = 0;
  private appsLoopRetryAt = 0;
  /** Set once this nvidia-smi refused the compute-apps query: no process list through it. */
  private appsRefused = false;

  constructor(private readonly opts: GpuCollectorOptions) {
    this.now = opts.now ?? Date.now;
    this.sampling = opts.sampling ?? 'loop';
    opts.health.declare(NAME);
    const n = opts.nvml;
    this.nvml = n
      ? new NvmlSampler({
          library: n.library,
          fastMs: n.fastMs,
          periodMs: opts.intervalMs,
          appsMs: opts.appsIntervalMs,
          timeoutMs: opts.timeoutMs,
          script: n.script,
          env: opts.env,
          onMessage: (m) => this.nvmlMessage(m),
          onState: (s) => this.nvmlState(s),
        })
      : null;
    opts.state.setBackend({
      name: n ? 'nvml' : 'nvidia-smi',
      reason: n ? `loading ${n.library}` : 'PODSCOPE_GPU_BACKEND=nvidia-smi',
      driver: null,
      xid_events: { ok: false, reason: n ? 'NVML not loaded yet' : 'nvidia-smi does not report Xid events' },
      missing_functions: [],
    });
  }

  start(signal: AbortSignal): void {
    this.nvml?.start();
    this.loop = this.run(signal);
  }

  /** Whether the samples come from NVML (or, when it is required, must). */
  private nvmlInUse(): boolean {
    if (!this.nvml) return false;
    return this.nvml.current.kind !== 'unavailable' || this.opts.nvml!.required;
  }

  private nvmlState(s: NvmlState): void {
    const { state, logger } = this.opts;
    if (s.kind === 'unavailable' && !this.opts.nvml!.required) {
      logger.info({ data: { reason: s.reason } }, `NVML cannot be used (${s.reason}); sampling through nvidia-smi`);
      state.setBackend({ name: 'nvidia-smi', reason: `NVML cannot be used: ${s.reason}`, driver: null, xid_events: { ok: false, reason: 'nvidia-smi does not report Xid events' }, missing_functions: [] });
    } else if (s.kind === 'hung') {
      logger.warn({ data: { detail: s.detail, retry_at: iso(s.retryAt) } }, `GPU sampling hung: ${s.detail}`);
    }
  }

  private nvmlMessage(m: NvmlMessage): void {
    const { state, health, logger } = this.opts;
    const now = this.now();
    switch (m.type) {
      case 'ready':
        state.setBackend({ name: 'nvml', reason: `NVML loaded from ${this.opts.nvml!.library}`, driver: m.driver, xid_events: m.xid, missing_functions: m.missing });
        logger.info({ data: { driver: m.driver, gpus: m.gpus.length, missing: m.missing } }, `sampling ${m.gpus.length} GPU(s) through NVML (driver ${m.driver ?? 'unknown'})`);
        if (!m.xid.ok) logger.warn({ data: { reason: m.xid.reason } }, `Xid events are not received: ${m.xid.reason}`);
        health.clear('gpu', 'GPU_SAMPLING_HUNG');
        break;
      case 'sample':
        if (m.rows.length === 0 && m.lost.length === 0) {
          this.fail({ code: 'NVML_NO_GPU', message: 'NVML reports no GPU' }, 0);
          health.record(NAME, { ok: false, durationMs: 0, code: 'NVML_NO_GPU', message: 'NVML reports no GPU' });
          break;
        }
        if (m.rows.length === 0) {
          this.fail({ code: 'GPU_LOST', message: m.lost.map((l) => `GPU ${l.index}: ${l.reason}`).join('; ') }, 0);
          health.record(NAME, { ok: false, durationMs: 0, code: 'GPU_LOST', message: 'every GPU is lost' });
          break;
        }
        this.applyRows(now, m.rows, m.lost, 0, []);
        health.record(NAME, { ok: true, durationMs: 0 });
        break;
      case 'apps':
        state.setComputeApps(now, m.apps);
        break;
      case 'xid':
        this.xid({ at: m.at, index: m.index, uuid: m.uuid, xid: m.xid });
        break;
      case 'failed':
        break;
    }
  }

  /** An Xid: kept and counted, and a problem naming it (an error when the GPU needs a reset or more). */
  private xid(e: XidEvent): void {
    this.opts.state.recordXid(e);
    this.recentXids.push(e);
    this.opts.logger[xidSeverity(e.xid) === 'error' ? 'error' : 'warn']({ data: { gpu: e.index, uuid: e.uuid, xid: e.xid } }, xidSentence(e.index, e.xid, iso(e.at)!));
    this.raiseXids();
  }

  private raiseXids(): void {
    const now = this.now();
    // Errors stay until podscope restarts (the GPU needs a reset); application faults for 15 minutes.
    this.recentXids = this.recentXids.filter((x) => xidSeverity(x.xid) === 'error' || now - x.at < XID_WARNING_MS).slice(-20);
    if (this.recentXids.length === 0) {
      this.opts.health.clear('gpu', 'GPU_XID');
      return;
    }
    const severity = this.recentXids.some((x) => xidSeverity(x.xid) === 'error') ? 'error' : 'warning';
    this.opts.health.raise('gpu', 'GPU_XID', this.recentXids.slice(-5).map((x) => xidSentence(x.index, x.xid, iso(x.at)!)).join('; '), severity);
  }

  /** A sampling step while NVML reads the GPUs: what its state says, and the slow health queries. */
  private async nvmlTick(): Promise<void> {
    const { health, state } = this.opts;
    const s = this.nvml!.current;
    const now = this.now();
    this.raiseXids();
    if (s.kind === 'unavailable') {
      health.raise('gpu', 'NVML_UNAVAILABLE', `PODSCOPE_GPU_BACKEND=nvml, but NVML cannot be used: ${s.reason}`);
      health.record(NAME, { ok: false, durationMs: 0, code: 'NVML_UNAVAILABLE', message: s.reason });
      state.applyFailure(now);
      return;
    }
    if (s.kind === 'hung') {
      health.raise('gpu', 'GPU_SAMPLING_HUNG', `${s.detail}; a new sampler starts at ${iso(s.retryAt)}`);
      health.record(NAME, { ok: false, durationMs: 0, code: 'GPU_SAMPLING_HUNG', message: s.detail });
      state.applyFailure(now);
      this.markStale();
      return;
    }
    this.markStale();
    if (s.kind === 'ready' && !this.stopping) await this.maybeHealth(now);
    if (s.kind === 'ready' && !this.stopping) await this.maybeCrosscheck(now);
  }

  private lastCrosscheckAt = Number.NEGATIVE_INFINITY;

  /**
   * nvidia-smi as the witness: at start and every PODSCOPE_GPU_CROSSCHECK_S, one nvidia-smi query
   * compared with NVML's latest reading field by field. A disagreement beyond what a moment apart
   * explains raises GPU_READING_MISMATCH naming the field and both values.
   */
  private async maybeCrosscheck(now: number): Promise<void> {
    const { state, health } = this.opts;
    if (now - this.lastCrosscheckAt < (this.opts.nvml?.crosscheckMs ?? 3_600_000) || state.lastSuccess === null) return;
    this.lastCrosscheckAt = now;
    if (!this.plan) await this.discover();
    const plan = this.plan;
    const r = plan ? await this.exec([`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits']) : null;
    if (!plan || !r || r.kind !== 'exited' || r.code !== 0) {
      state.setCrosscheck({ at: now, agreed: null, reason: `nvidia-smi did not answer (${r?.kind === 'exited' ? `exit ${r.code}` : (r?.kind ?? 'no field plan')}); NVML's readings are not witnessed`, mismatches: [] });
      return;
    }
    const witness = parseCsvRows(r.stdout, plan.fields.length).rows.map((c) => toGpuRow(c, plan.keys)).filter((x): x is GpuRow => x !== null);
    const mismatches = crosscheck(state.readings(), witness);
    state.setCrosscheck({ at: now, agreed: mismatches.length === 0, reason: null, mismatches });
    if (mismatches.length > 0) health.raise('gpu', 'GPU_READING_MISMATCH', `NVML and nvidia-smi disagree: ${mismatches.slice(0, 5).join('; ')}`, 'warning');
    else health.clear('gpu', 'GPU_READING_MISMATCH');
  }

  async stop(): Promise<void> {
    // A run in flight is killed with its group: stopping must leave no nvidia-smi behind.
    this.stopping = true;
    await this.nvml?.stop();
    await Promise.all([this.gpuLoop, this.appsLoop].map((l) => (l ? this.killLoop(l) : null)));
    const pid = this.current?.pid;
    if (pid !== undefined) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await this.loop;
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const started = performance.now();
      await this.tick();
      const spent = performance.now() - started;
      await sleep(this.opts.intervalMs - spent, signal);
    }
  }

  /** One sampling step. Public for tests that drive the collector without its timer. */
  async tick(): Promise<void> {
    if (this.nvmlInUse()) return this.nvmlTick();
    if (this.stuckChild()) return;
    if (this.sampling === 'loop') return this.loopTick();
    const ok = await tracked(this.opts.health, NAME, async () => {
      const failure = await this.sample();
      if (this.stopping) return { stopped: true };
      return failure ? { ok: false, ...failure } : { ok: true };
    });
    if (ok) await this.maybeComputeApps(this.now());
    if (ok && !this.stopping) await this.maybeHealth(this.now());
  }

  /** While a child that outlived SIGKILL lives, nothing new starts: says so, and true. */
  private stuckChild(): boolean {
    if (this.stuck && !this.stuck.exited) {
      const { health } = this.opts;
      const seconds = Math.round((this.now() - this.stuck.since) / 1000);
      health.raise('gpu', 'NVIDIA_SMI_STUCK', `nvidia-smi (pid ${this.stuck.pid}) did not die after SIGKILL ${seconds} s ago; it is probably stuck in the driver. No new run starts until it exits.`);
      health.record(NAME, { ok: false, durationMs: 0, code: 'NVIDIA_SMI_STUCK', message: 'previous nvidia-smi is still running' });
      this.opts.state.applyFailure(this.now());
      this.markStale();
      return true;
    }
    this.stuck = null;
    this.opts.health.clear('gpu', 'NVIDIA_SMI_STUCK');
    return false;
  }

  /**
   * A sampling step while nvidia-smi loops: start the loops when none is live (after the backoff),
   * kill one that has gone silent, and run the slow health queries. Samples are applied as they
   * arrive, not here.
   */
  private async loopTick(): Promise<void> {
    if (!this.plan) {
      const f = await this.discover();
      if (f) {
        this.fail(f, null);
        this.backOff();
        return;
      }
    }
    const wall = Date.now();
    const loop = this.gpuLoop;
    if (!loop) {
      if (wall >= this.loopRetryAt && !this.stopping) this.startLoops();
      else this.markStale();
      return;
    }
    const since = this.loopSampleAt !== null && this.loopSampleAt > loop.startedAt ? this.loopSampleAt : loop.startedAt;
    const silentMs = wall - since;
    if (silentMs > this.opts.timeoutMs + this.opts.intervalMs) {
      this.backOff();
      this.fail({ code: 'NVIDIA_SMI_TIMEOUT', message: `nvidia-smi's sampling loop (pid ${loop.pid}) printed no sample for ${Math.round(silentMs / 1000)} s and was killed with its process group; a new one starts in ${Math.round(this.loopBackoffMs / 1000)} s` }, null);
      await Promise.all([loop, this.appsLoop].map((l) => (l ? this.killLoop(l) : null)));
      return;
    }
    this.markStale();
    const now = this.now();
    if (!this.appsLoop && !this.appsRefused && wall >= this.appsLoopRetryAt) this.startAppsLoop();
    // In CSV, nvidia-smi prints nothing for a period without compute processes.
    const apps = this.appsLoop;
    if (apps && wall - (apps.lastLineAt ?? apps.startedAt) > 2 * this.opts.appsIntervalMs + this.opts.timeoutMs) this.opts.state.setComputeApps(now, []);
    if (this.loopSampleAt !== null && !this.stopping) await this.maybeHealth(now);
  }

  private startLoops(): void {
    const plan = this.plan!;
    const loop = new SmiLoop({
      bin: this.opts.bin,
      args: [`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits', '-lms', String(this.opts.intervalMs)],
      env: this.opts.env,
      quietMs: Math.min(100, this.opts.intervalMs / 4),
      onSample: (lines, ending) => this.loopSample(loop, plan, lines, ending),
    });
    this.gpuLoop = loop;
    void loop.exited.then((e) => this.loopExited(loop, plan, e));
    this.startAppsLoop();
  }

  private startAppsLoop(): void {
    if (this.appsLoop || this.appsRefused) return;
    const apps = new SmiLoop({
      bin: this.opts.bin,
      args: [`--query-compute-apps=${COMPUTE_APP_FIELDS.join(',')}`, '--format=csv,noheader,nounits', '-lms', String(this.opts.appsIntervalMs)],
      env: this.opts.env,
      quietMs: Math.min(100, this.opts.appsIntervalMs / 4),
      // A GPU runs several processes: a sample's key is the GPU and the pid.
      keyOf: (line) => line.split(',').slice(0, 2).join(',').trim(),
      onSample: (lines) => {
        const { apps: list } = parseComputeApps(lines.join('\n'));
        if (list.length > 0) this.opts.state.setComputeApps(this.now(), list);
      },
    });
    this.appsLoop = apps;
    void apps.exited.then((e) => {
      this.appsLoop = null;
      if (this.killed.has(apps) || this.stopping) return;
      if (rejectedField(e.tail)) {
        // Older drivers call it used_gpu_memory; the process list stays empty.
        this.appsRefused = true;
        this.opts.logger.debug('compute-apps query rejected; process list stays empty');
      }
      this.appsLoopRetryAt = Date.now() + Math.max(LOOP_BACKOFF_MS, this.opts.appsIntervalMs);
    });
  }

  /** A sample from the GPU loop: the same parsing and state as a run's output. */
  private loopSample(loop: SmiLoop, plan: FieldPlan, lines: string[], ending: boolean): void {
    if (this.gpuLoop !== loop || this.stopping) return;
    // A header (printed once or before every sample) is not a GPU.
    const text = lines.filter((l) => l.split(',')[0]!.trim() !== plan.fields[0]).join('\n');
    if (text === '') return;
    // What a loop prints as it exits without a GPU row is its error: judged with its exit status.
    if (ending && parseCsvRows(text, plan.fields.length).rows.length === 0) return;
    const failure = this.applyText(text, '', 0, plan, null);
    this.opts.health.record(NAME, failure ? { ok: false, durationMs: 0, ...failure } : { ok: true, durationMs: 0 });
    if (!failure) {
      this.loopSampleAt = Date.now();
      this.loopBackoffMs = 0;
    }
  }

  /** A GPU loop that ended by itself: why, and when the next one starts. */
  private loopExited(loop: SmiLoop, plan: FieldPlan, e: LoopExit): void {
    this.gpuLoop = null;
    if (this.stuck && this.stuck.pid === loop.pid) this.stuck.exited = true;
    if (this.appsLoop && !this.killed.has(loop)) void this.killLoop(this.appsLoop);
    if (this.killed.has(loop) || this.stopping) return;
    const bad = rejectedField(e.tail);
    if (bad) {
      this.rejected.add(bad);
      this.plan = planFields(new Set(plan.fields.filter((f) => f !== bad)), this.rejected);
      if (REQUIRED_KEYS.some((k) => this.plan!.missing.includes(k))) {
        this.fail({ code: 'NVIDIA_SMI_FIELD_REJECTED', message: `nvidia-smi rejects required field "${bad}"; cannot identify GPUs` }, null);
        this.backOff();
      } else {
        this.opts.logger.warn({ data: { field: bad } }, 'nvidia-smi rejected a field; querying without it');
        this.loopRetryAt = 0;
      }
      return;
    }
    if (e.errno) {
      this.fail(spawnFailure(this.opts.bin, e.errno, e.tail), null);
      this.backOff();
      return;
    }
    if (e.code === 0 && loop.samples > 0) {
      // It printed and ended: an nvidia-smi (or a wrapper) that ignores -lms.
      this.notLooping++;
      if (this.notLooping >= NOT_LOOPING_LIMIT) {
        this.sampling = 'runs';
        this.opts.logger.warn({ data: { bin: this.opts.bin } }, `${this.opts.bin} exits after each sample instead of looping with -lms; sampling with one run per period`);
      }
      this.loopRetryAt = 0;
      return;
    }
    this.notLooping = 0;
    const failure = e.code === 0 ? { code: 'NVIDIA_SMI_UNPARSABLE', message: describeUnparsable(e.tail, []) } : classifyFailure(e.code, e.tail);
    this.backOff();
    this.fail({ code: failure.code, message: `${failure.message} (the sampling loop ended with ${e.signal ?? `exit ${e.code}`}; a new one starts in ${Math.round(this.loopBackoffMs / 1000)} s)` }, null);
  }

  private backOff(): void {
    this.loopBackoffMs = Math.min(LOOP_BACKOFF_MAX_MS, this.loopBackoffMs === 0 ? LOOP_BACKOFF_MS : this.loopBackoffMs * 2);
    this.loopRetryAt = Date.now() + this.loopBackoffMs;
  }

  /** Kills a loop with its group and waits for it to go; one that outlives SIGKILL is stuck. */
  private async killLoop(loop: SmiLoop): Promise<void> {
    this.killed.add(loop);
    loop.kill();
    let timer: NodeJS.Timeout | undefined;
    const gone = await Promise.race([loop.exited.then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), KILL_GRACE_MS)))]);
    clearTimeout(timer);
    if (gone || this.stuck) return;
    const stuck = { pid: loop.pid, since: this.now(), exited: false };
    this.stuck = stuck;
    void loop.exited.then(() => (stuck.exited = true));
  }

  private exec(args: string[]): Promise<RunResult> {
    const proc = runBounded(this.opts.bin, args, { timeoutMs: this.opts.timeoutMs, env: this.opts.env });
    this.current = proc;
    void proc.exited.then(() => {
      if (this.current === proc) this.current = null;
      if (this.stuck && this.stuck.pid === proc.pid) this.stuck.exited = true;
    });
    return proc.result.then((r) => {
      if (r.kind === 'timeout' && !r.died) this.stuck = { pid: proc.pid, since: this.now(), exited: false };
      return r;
    });
  }

  private async discover(): Promise<Failure | null> {
    const r = await this.exec(['--help-query-gpu']);
    if (r.kind === 'spawn-error') return spawnFailure(this.opts.bin, r.errno, r.message);
    if (r.kind === 'timeout') return timeoutFailure(this.opts.timeoutMs, r.died);
    const accepted = r.code === 0 ? parseHelpQueryGpu(r.stdout) : null;
    this.accepted = accepted && accepted.size > 0 ? accepted : null;
    this.plan = planFields(this.accepted, this.rejected);
    if (this.plan.missing.length > 0) {
      this.opts.logger.info({ data: { missing: this.plan.missing } }, 'this nvidia-smi offers no field for some readings; they will be null');
    }
    return null;
  }

  /** Runs the query (re-planning after a rejected field) and applies the result to state. */
  private async sample(): Promise<Failure | null> {
    if (!this.plan) {
      const f = await this.discover();
      if (f) return this.fail(f, 0);
    }
    for (let attempt = 0; attempt < 8 && !this.stopping; attempt++) {
      const plan = this.plan!;
      const started = performance.now();
      const r = await this.exec([`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits']);
      const durationMs = performance.now() - started;
      if (r.kind === 'spawn-error') return this.fail(spawnFailure(this.opts.bin, r.errno, r.message), durationMs);
      if (r.kind === 'timeout') return this.fail(timeoutFailure(this.opts.timeoutMs, r.died), durationMs);
      const text = `${r.stdout}\n${r.stderr}`;
      const bad = rejectedField(text);
      if (bad && r.code !== 0) {
        this.rejected.add(bad);
        this.plan = planFields(new Set(plan.fields.filter((f) => f !== bad)), this.rejected);
        const lostRequired = REQUIRED_KEYS.filter((k) => this.plan!.missing.includes(k));
        if (lostRequired.length > 0) {
          return this.fail({ code: 'NVIDIA_SMI_FIELD_REJECTED', message: `nvidia-smi rejects required field "${bad}"; cannot identify GPUs` }, durationMs);
        }
        this.opts.logger.warn({ data: { field: bad } }, 'nvidia-smi rejected a field; querying without it');
        continue;
      }
      return this.applyText(r.stdout, r.stderr, r.code, plan, durationMs);
    }
    return this.fail({ code: 'NVIDIA_SMI_FIELD_REJECTED', message: 'nvidia-smi kept rejecting fields' }, 0);
  }

  /** What a run (or a loop's sample) printed, into the state: null, or the failure it shows. */
  private applyText(stdout: string, stderr: string, code: number | null, plan: FieldPlan, durationMs: number | null): Failure | null {
    const r = { stdout, stderr, code };
    const parsed = parseCsvRows(r.stdout, plan.fields.length);
    const fromStderr = parseCsvRows(r.stderr, plan.fields.length);
    const lost = [...parsed.lost, ...fromStderr.lost];
    const rows: GpuRow[] = [];
    for (const cells of parsed.rows) {
      const row = toGpuRow(cells, plan.keys);
      if (row) rows.push(row);
    }
    if (rows.length === 0) {
      const failure =
        r.code === 0 && lost.length === 0
          ? { code: 'NVIDIA_SMI_UNPARSABLE', message: describeUnparsable(r.stdout, parsed.unparsed) }
          : lost.length > 0
            ? { code: 'GPU_LOST', message: lost.map((l) => `GPU ${l.pci_bus_id}: ${l.reason}`).join('; ') }
            : classifyFailure(r.code, `${r.stderr}\n${r.stdout}`);
      return this.fail(failure, durationMs);
    }
    this.applyRows(this.now(), rows, lost, durationMs, [...parsed.unparsed, ...fromStderr.unparsed]);
    return null;
  }

  /** A good sample, from either backend: into the state, and the problems it settles or raises. */
  private applyRows(now: number, rows: GpuRow[], lost: ReadonlyArray<{ pci_bus_id: string; reason: string; index?: number | null }>, durationMs: number | null, unparsed: string[]): void {
    const { state, health } = this.opts;
    state.applySample(now, rows, lost);
    // Fewer GPUs answered than last time: ask `-L` again at once whether they should be there.
    if (rows.length < this.lastRowCount) this.lastHealthAt = Number.NEGATIVE_INFINITY;
    this.lastRowCount = rows.length;
    // A GPU absent from five runs in a row (not reported lost, simply gone) stops being shown and exported.
    state.forgetOlderThan(now, 5 * this.opts.intervalMs);
    this.opts.onRun?.(durationMs, null);
    const keep: string[] = ['GPU_NEEDS_RESET', 'GPU_MEMORY_ERRORS'];
    const readings = state.readings();
    const lostNow = readings.filter((g) => g.lost);
    if (lostNow.length > 0) {
      keep.push('GPU_LOST');
      const name = (g: (typeof lostNow)[number]) =>
        g.never_seen ? `GPU ${g.index ?? '?'} ${g.pci_bus_id ? `at ${g.pci_bus_id}` : `(${g.uuid})`} (never answered since podscope started)` : `GPU ${g.index} (${g.uuid}, ${g.pci_bus_id ?? 'bus unknown'})`;
      health.raise('gpu', 'GPU_LOST', lostNow.map((g) => `${name(g)} is lost: ${g.lost_reason}`).join('; '));
    }
    // RunPod bills for the GPUs it holds; fewer of them in nvidia-smi's answer (lost ones counted) is a problem.
    const held = state.heldByRunpod;
    if (held !== undefined && readings.length < held) {
      keep.push('GPU_MISSING');
      health.raise('gpu', 'GPU_MISSING', `RunPod holds ${held} GPUs for this pod (RUNPOD_GPU_COUNT) but nvidia-smi shows ${readings.length}${lostNow.length > 0 ? `, ${lostNow.length} of them lost` : ''}`);
    }
    this.warnings = unparsed.length > 0 ? [`${unparsed.length} line(s) of nvidia-smi output were not GPU rows: ${unparsed[0]}`] : [];
    health.clearExcept('gpu', [...keep, 'GPU_XID', 'GPU_READING_MISMATCH']);
  }

  private async maybeComputeApps(now: number): Promise<void> {
    if (now - this.lastAppsAt < this.opts.appsIntervalMs) return;
    this.lastAppsAt = now;
    // Never two runs at once: the query's child must have fully exited first.
    if (this.current) await this.current.exited;
    const r = await this.exec([`--query-compute-apps=${COMPUTE_APP_FIELDS.join(',')}`, '--format=csv,noheader,nounits']);
    if (r.kind === 'exited' && r.code === 0) {
      this.opts.state.setComputeApps(this.now(), parseComputeApps(r.stdout).apps);
    } else if (r.kind === 'exited' && rejectedField(r.stdout + r.stderr)) {
      // Older drivers call it used_gpu_memory; the position is what matters.
      this.opts.logger.debug('compute-apps query rejected; process list stays empty');
    }
  }

  private fail(f: Failure, durationMs: number | null): Failure {
    const { state, health } = this.opts;
    if (this.stopping) return f; // killed by podscope's own stop: nothing failed
    state.applyFailure(this.now());
    this.opts.onRun?.(durationMs, f.code);
    health.clearExcept('gpu', [f.code, 'GPU_DATA_STALE', 'GPU_XID', 'GPU_SAMPLING_HUNG', 'GPU_READING_MISMATCH', ...HEALTH_CODES]);
    health.raise('gpu', f.code, f.message);
    this.markStale();
    return f;
  }

  /** Raises GPU_DATA_STALE once the last good sample is older than three intervals. */
  private markStale(): void {
    const { state, health } = this.opts;
    const last = state.lastSuccess;
    if (last !== null && this.now() - last > 3 * this.opts.intervalMs) {
      const age = Math.round((this.now() - last) / 1000);
      health.raise('gpu', 'GPU_DATA_STALE', `the newest GPU data is ${age} s old; GPU values shown are from then`, 'warning');
    }
  }

  /**
   * The slow run: memory health (only the fields this driver offers), `nvidia-smi -L` for MIG
   * profiles, and `nvidia-smi -q` for MIG devices and their processes when a GPU is in MIG mode.
   * A failure here leaves the last health in place; the sampling run is what says nvidia-smi works.
   */
  private async maybeHealth(now: number): Promise<void> {
    if (now - this.lastHealthAt < (this.opts.healthIntervalMs ?? 60_000)) return;
    this.lastHealthAt = now;
    const { state } = this.opts;
    const plan = planFields(this.accepted, this.healthRejected, HEALTH_FIELDS);
    if (plan.keys.length > 1 && plan.keys.includes('uuid')) {
      if (this.current) await this.current.exited;
      const r = await this.exec([`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits']);
      const bad = r.kind === 'exited' ? rejectedField(r.stdout + r.stderr) : null;
      if (bad) {
        this.healthRejected.add(bad);
        this.lastHealthAt = Number.NEGATIVE_INFINITY; // ask again without it on the next run
      } else if (r.kind === 'exited') {
        const rows = parseCsvRows(r.stdout, plan.fields.length).rows.map((c) => toGpuHealth(c, plan.keys)).filter((h): h is GpuHealth & { uuid: string } => h !== null);
        if (rows.length > 0) state.setHealth(this.now(), rows);
      }
    }
    this.raiseHealthProblems();
    if (this.stopping) return;
    // `-L`: the GPUs that should be there (a listed one the query leaves out is lost) and MIG profiles.
    if (this.current) await this.current.exited;
    const listRun = await this.exec(['-L']);
    const listing = listRun.kind === 'exited' && listRun.code === 0 ? parseGpuList(listRun.stdout) : null;
    if (listing && listing.gpus.length > 0) state.applyListing(this.now(), listing.gpus);
    const readings = state.readings();
    const migGpus = readings.filter((g) => g.mig_mode !== null && /^enabled$/i.test(g.mig_mode));
    if (migGpus.length === 0 || this.stopping) {
      state.setMig(this.now(), new Map());
      return;
    }
    const q = await this.exec(['-q']);
    if (q.kind !== 'exited' || q.code !== 0) return;
    const sections = parseQueryText(q.stdout);
    const byUuid = new Map<string, MigDevice[]>();
    for (const g of migGpus) {
      const section = [...sections].find(([bus]) => g.pci_bus_id !== null && normalizeBusId(bus) === normalizeBusId(g.pci_bus_id))?.[1];
      if (!section) continue;
      const processes = queryProcessesOf(section);
      byUuid.set(
        g.uuid,
        migDevicesOf(section).map((d) => {
          const listed = listing?.mig.find((m) => m.gpu_index === g.index && m.device_index === d.index);
          return { ...d, profile: listed?.profile ?? null, uuid: listed?.uuid ?? null, processes: processes.filter((p) => p.gpu_instance_id === d.gpu_instance_id && p.compute_instance_id === d.compute_instance_id) };
        }),
      );
    }
    state.setMig(this.now(), byUuid);
  }

  /** A pending remap or retirement is an error (the GPU needs a reset); lasting memory errors a warning. */
  private raiseHealthProblems(): void {
    const { state, health } = this.opts;
    const errors: string[] = [];
    const warnings: string[] = [];
    for (const g of state.readings()) {
      const h = g.uuid ? state.health(g.uuid) : null;
      const verdict = h ? healthVerdict(h) : null;
      if (!verdict) continue;
      (verdict.severity === 'error' ? errors : warnings).push(`GPU ${g.index} (${g.uuid}): ${verdict.text}`);
    }
    if (errors.length > 0) health.raise('gpu', 'GPU_NEEDS_RESET', errors.join('; '));
    else health.clear('gpu', 'GPU_NEEDS_RESET');
    if (warnings.length > 0) health.raise('gpu', 'GPU_MEMORY_ERRORS', warnings.join('; '), 'warning');
    else health.clear('gpu', 'GPU_MEMORY_ERRORS');
  }

  /** The `gpu` check of /ready. */
  /** What this collector holds open, for /debug/connections and /debug/memory. */
  describe(): Record<string, unknown> {
    const n = this.nvml?.current;
    return {
      backend: this.opts.state.backend.name,
      nvml: this.nvml ? { library: this.opts.nvml!.library, state: n!.kind, sampler_pid: this.nvml.pid ?? null, samplers_started: this.nvml.starts, ...(n!.kind === 'hung' ? { detail: n!.detail } : n!.kind === 'unavailable' ? { reason: n!.reason } : {}) } : null,
      binary: this.opts.bin,
      sampling: this.nvmlInUse() ? null : this.sampling,
      loops: this.sampling === 'loop' && !this.nvmlInUse()
        ? {
            gpu: this.gpuLoop ? { pid: this.gpuLoop.pid ?? null, started_at: iso(this.gpuLoop.startedAt), samples: this.gpuLoop.samples } : null,
            processes: this.appsLoop ? { pid: this.appsLoop.pid ?? null, started_at: iso(this.appsLoop.startedAt), samples: this.appsLoop.samples } : null,
            next_start_at: this.gpuLoop ? null : iso(this.loopRetryAt),
          }
        : null,
      running_child: this.current ? { pid: this.current.pid, started_at: iso(this.current.startedAt) } : null,
      stuck_child: this.stuck && !this.stuck.exited ? { pid: this.stuck.pid, since: iso(this.stuck.since) } : null,
      fields: this.plan?.fields ?? null,
      fields_unavailable: this.plan?.missing ?? null,
      fields_rejected: [...this.rejected],
      warnings: this.warnings,
    };
  }
}

function spawnFailure(bin: string, errno: string, message: string): Failure {
  if (errno === 'ENOENT') return { code: 'NVIDIA_SMI_MISSING', message: `nvidia-smi not found (${bin}); set PODSCOPE_NVIDIA_SMI, or PODSCOPE_GPU=off on a pod without GPU` };
  if (errno === 'EACCES') return { code: 'NVIDIA_SMI_MISSING', message: `nvidia-smi at ${bin} is not executable` };
  return { code: 'NVIDIA_SMI_FAILED', message: `could not start ${bin}: ${message}` };
}


function timeoutFailure(timeoutMs: number, died: boolean): Failure {
  return died
    ? { code: 'NVIDIA_SMI_TIMEOUT', message: `nvidia-smi did not answer within ${timeoutMs} ms and was killed` }
    : { code: 'NVIDIA_SMI_STUCK', message: `nvidia-smi did not answer within ${timeoutMs} ms and survived SIGKILL (stuck in the driver)` };
}

function describeUnparsable(stdout: string, unparsed: string[]): string {
  if (stdout.trim() === '') return 'nvidia-smi printed nothing and exited 0';
  return `nvidia-smi output has no GPU rows; first line: ${JSON.stringify((unparsed[0] ?? stdout).slice(0, 200))}`;
}

/** How far NVML's and nvidia-smi's readings of one GPU, taken a moment apart, may differ. */
const WITNESS_RULES: ReadonlyArray<['memory_total_mb' | 'power_limit_w' | 'sm_clock_max_mhz' | 'memory_used_mb' | 'temperature_c', (a: number, b: number) => boolean]> = [
  ['memory_total_mb', (a, b) => Math.abs(a - b) <= 1],
  ['power_limit_w', (a, b) => Math.abs(a - b) <= 1],
  ['sm_clock_max_mhz', (a, b) => Math.abs(a - b) <= 1],
  ['memory_used_mb', (a, b) => Math.abs(a - b) <= Math.max(512, 0.05 * a)],
  ['temperature_c', (a, b) => Math.abs(a - b) <= 5],
];

/** Each field, of each GPU both read, where NVML and nvidia-smi disagree beyond its rule. */
export function crosscheck(nvml: ReadonlyArray<{ uuid: string; name: string } & Partial<Omit<GpuRow, 'index'>>>, witness: readonly GpuRow[]): string[] {
  const out: string[] = [];
  for (const w of witness) {
    const g = nvml.find((x) => x.uuid === w.uuid);
    if (!g) {
      out.push(`nvidia-smi lists GPU ${w.index} (${w.uuid}), which NVML does not`);
      continue;
    }
    if (g.name !== w.name) out.push(`GPU ${w.index} name: NVML ${JSON.stringify(g.name)}, nvidia-smi ${JSON.stringify(w.name)}`);
    for (const [key, close] of WITNESS_RULES) {
      const a = w[key] as number | null | undefined;
      const b = g[key] as number | null | undefined;
      if (typeof a === 'number' && typeof b === 'number' && !close(a, b)) out.push(`GPU ${w.index} ${key}: NVML ${b}, nvidia-smi ${a}`);
    }
  }
  return out;
}
