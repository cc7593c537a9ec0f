/**
 * PodState: everything the routes may read, in one place, built whole before the server starts.
 *
 * Each part is made by {@link createPodParts} (or handed in by a test) and given to the PodState at
 * construction; collectors write the parts they own, and readers (http/, views/, metrics/) are typed
 * against {@link PodReader}, which exposes each part read-only: the compiler keeps them from moving
 * state. Only the GPU part may be absent, when GPU sampling is off (`PODSCOPE_GPU=off`).
 */
import type { Config } from '../config.js';
import { redactEnvValue, type Scrubber } from '../secrets.js';
import { HostState, type HostReader } from './host.js';
import { EventJournal, type EventReader } from './events.js';
import { ComfyState, type ComfyReader } from './comfy.js';
import { Instances, type InstancesReader } from './instances.js';
import { GpuAssignment, type GpuUse } from './instance-gpus.js';
import { GpuState, type GpuReader } from './gpu.js';
import { LogStore, type LogReader } from './logs.js';
import { ArtifactLedger, type ArtifactReader } from './artifacts.js';
import { HealthBoard, type HealthReader } from './health.js';
import { readinessReport, type CheckResult, type ReadyReport } from './readiness.js';
import type { RingStats } from './ring-buffer.js';

/** Environment variables shown in /debug/config: an allowlist of prefixes, never the whole env. */
const SHOWN_ENV = /^(PODSCOPE_|COMFYUI_|RUNPOD_|LOG_LEVEL$|CUDA_VISIBLE_DEVICES$|NVIDIA_VISIBLE_DEVICES$|NODE_ENV$)/;

/** Bytes the event journal may hold for clients that reconnect. */
export const EVENT_JOURNAL_BYTES = 8 * 1024 * 1024;

/** The parts of the pod's state, each written by one collector. */
export interface PodParts {
  health: HealthBoard;
  /** Every ComfyUI followed. */
  instances: Instances;
  /** GPU readings and accounting; null when GPU sampling is off (PODSCOPE_GPU=off). */
  gpu: GpuState | null;
  host: HostState;
  logs: LogStore;
  artifacts: ArtifactLedger;
  events: EventJournal;
}

/** Every part, empty, sized by the configuration. */
export function createPodParts(config: Config, now: () => number, startedAt: number): PodParts {
  return {
    health: new HealthBoard(now),
    instances: new Instances(...(config.instances.map((i) => new ComfyState(i.url, { name: i.name, jobIdKey: config.jobIdKey, historyLimit: config.jobHistory })) as [ComfyState, ...ComfyState[]])),
    gpu: config.gpuEnabled ? new GpuState({ startedAt, intervalMs: config.gpuIntervalMs, heldCount: config.gpuCount, timelineCapacity: config.gpuSamples }) : null,
    host: new HostState(),
    logs: new LogStore(config.logLines, config.logBytes),
    artifacts: new ArtifactLedger(config.artifacts),
    events: new EventJournal(config.events, EVENT_JOURNAL_BYTES, now),
  };
}

/** The pod as routes, views and metrics see it: every part read-only. */
export interface PodReader {
  readonly config: Config;
  readonly version: string;
  readonly scrubber: Scrubber;
  readonly startedAt: number;
  readonly now: () => number;
  /** Allowlisted environment, secrets redacted by name and URL passwords masked. */
  readonly environment: Readonly<Record<string, string>>;
  readonly health: HealthReader;
  /** Every ComfyUI instance followed. */
  readonly instances: InstancesReader;
  /** The first instance (the single-instance contract's `comfyui`). */
  readonly comfy: ComfyReader;
  readonly gpu: GpuReader | null;
  /** Which GPUs each instance runs on, for a job's GPU use. */
  readonly gpuUse: GpuUse;
  readonly host: HostReader;
  readonly logs: LogReader;
  readonly artifacts: ArtifactReader;
  readonly events: EventReader;
  /** The pod's condition over every instance, or with `instance` that instance's (the pod's own checks and problems included). */
  condition(instance?: string): ReadyReport;
  buffers(): Record<string, RingStats>;
}

export interface PodStateOptions {
  config: Config;
  version: string;
  scrubber: Scrubber;
  env: Record<string, string | undefined>;
  now?: () => number;
  /** When podscope started (default: now). */
  startedAt?: number;
  /** The parts (default: each made empty from the configuration); `comfy` is short for one instance. */
  parts?: Partial<PodParts> & { comfy?: ComfyState };
}

/**
 * One check over every instance: ok when each passes; else the failing ones' messages (each named
 * when there are several), still coming up only when every failing one is.
 */
function eachInstance(instances: readonly ComfyState[], check: (c: ComfyState) => CheckResult): CheckResult {
  const failing: Array<{ name: string; result: Extract<CheckResult, { ok: false }> }> = [];
  for (const c of instances) {
    const r = check(c);
    if (!r.ok) failing.push({ name: c.name, result: r });
  }
  if (failing.length === 0) return { ok: true };
  if (instances.length === 1) return failing[0]!.result;
  return {
    ok: false,
    message: failing.map((f) => `${f.name}: ${f.result.message}`).join('; '),
    starting: failing.every((f) => f.result.starting === true),
  };
}

export class PodState implements PodReader {
  readonly config: Config;
  readonly version: string;
  readonly scrubber: Scrubber;
  readonly startedAt: number;
  readonly now: () => number;
  readonly environment: Readonly<Record<string, string>>;
  readonly health: HealthBoard;
  readonly instances: Instances;
  readonly comfy: ComfyState;
  readonly gpu: GpuState | null;
  readonly gpuUse: GpuAssignment;
  readonly host: HostState;
  readonly logs: LogStore;
  readonly artifacts: ArtifactLedger;
  readonly events: EventJournal;

  constructor(opts: PodStateOptions) {
    this.config = opts.config;
    this.version = opts.version;
    this.scrubber = opts.scrubber;
    this.now = opts.now ?? Date.now;
    this.startedAt = opts.startedAt ?? this.now();
    const given = opts.parts ?? {};
    const parts = { ...createPodParts(opts.config, this.now, this.startedAt), ...given, ...(given.comfy ? { instances: new Instances(given.comfy) } : {}) };
    this.health = parts.health;
    this.instances = parts.instances;
    this.comfy = parts.instances.first;
    this.gpu = parts.gpu;
    this.gpuUse = new GpuAssignment(this.instances, this.gpu);
    this.host = parts.host;
    this.logs = parts.logs;
    this.artifacts = parts.artifacts;
    this.events = parts.events;
    const shown: Record<string, string> = {};
    for (const name of Object.keys(opts.env).sort()) {
      const value = opts.env[name];
      if (value !== undefined && SHOWN_ENV.test(name)) shown[name] = redactEnvValue(name, value);
    }
    this.environment = Object.freeze(shown);
  }

  /**
   * /ready's checks and the pod's condition, from the same rule /debug/status uses: over every
   * instance (ready when each is), or with `instance` over that one, the pod's own checks and
   * problems (GPU sampling, the host) included and the other instances' left out.
   */
  condition(instance?: string): ReadyReport {
    const all = this.health.problems();
    const gpu = this.gpu;
    const gpuCheck = () => (gpu ? gpu.samplingCheck(this.now(), all, this.config.gpuTimeoutMs) : ({ ok: true } as const));
    const one = instance === undefined ? undefined : this.instances.byName(instance);
    if (one) {
      const problems = all.filter((p) => p.instance === undefined || p.instance === one.name);
      return readinessReport({ comfyui: () => one.httpCheck(), websocket: () => one.websocketCheck(), gpu: gpuCheck }, problems);
    }
    const instances = this.instances.all;
    return readinessReport(
      {
        comfyui: () => eachInstance(instances, (c) => c.httpCheck()),
        websocket: () => eachInstance(instances, (c) => c.websocketCheck()),
        gpu: gpuCheck,
      },
      all,
    );
  }

  /** Every ring buffer's fill, for /debug/memory. */
  buffers(): Record<string, RingStats> {
    const jobs = this.comfy.tracker;
    return {
      ...(this.gpu ? { gpu_timeline: this.gpu.timeline.stats() } : {}),
      jobs: { entries: jobs.rememberedCount, bytes: jobs.approxBytes(), capacity_entries: this.config.jobHistory, capacity_bytes: 0, dropped: 0, next_seq: 0 },
      logs: this.logs.ring.stats(),
      artifacts: this.artifacts.ring.stats(),
      events: this.events.ring.stats(),
    };
  }
}
