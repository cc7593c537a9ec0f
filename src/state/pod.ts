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
import { GpuState, type GpuReader } from './gpu.js';
import { LogStore, type LogReader } from './logs.js';
import { ArtifactLedger, type ArtifactReader } from './artifacts.js';
import { HealthBoard, type HealthReader } from './health.js';
import { readinessReport, type ReadyReport } from './readiness.js';
import type { RingStats } from './ring-buffer.js';

/** Environment variables shown in /debug/config: an allowlist of prefixes, never the whole env. */
const SHOWN_ENV = /^(PODSCOPE_|COMFYUI_|RUNPOD_|LOG_LEVEL$|CUDA_VISIBLE_DEVICES$|NVIDIA_VISIBLE_DEVICES$|NODE_ENV$)/;

/** Bytes the event journal may hold for clients that reconnect. */
export const EVENT_JOURNAL_BYTES = 8 * 1024 * 1024;

/** The parts of the pod's state, each written by one collector. */
export interface PodParts {
  health: HealthBoard;
  comfy: ComfyState;
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
    comfy: new ComfyState(config.comfyuiUrl, { jobIdKey: config.jobIdKey, historyLimit: config.jobHistory }),
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
  readonly comfy: ComfyReader;
  readonly gpu: GpuReader | null;
  readonly host: HostReader;
  readonly logs: LogReader;
  readonly artifacts: ArtifactReader;
  readonly events: EventReader;
  condition(): ReadyReport;
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
  /** The parts (default: each made empty from the configuration). */
  parts?: Partial<PodParts>;
}

export class PodState implements PodReader {
  readonly config: Config;
  readonly version: string;
  readonly scrubber: Scrubber;
  readonly startedAt: number;
  readonly now: () => number;
  readonly environment: Readonly<Record<string, string>>;
  readonly health: HealthBoard;
  readonly comfy: ComfyState;
  readonly gpu: GpuState | null;
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
    const parts = { ...createPodParts(opts.config, this.now, this.startedAt), ...opts.parts };
    this.health = parts.health;
    this.comfy = parts.comfy;
    this.gpu = parts.gpu;
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

  /** /ready's checks and the pod's condition, from the same rule /debug/status uses. */
  condition(): ReadyReport {
    const problems = this.health.problems();
    const gpu = this.gpu;
    return readinessReport(
      {
        comfyui: () => this.comfy.httpCheck(),
        websocket: () => this.comfy.websocketCheck(),
        gpu: () => (gpu ? gpu.samplingCheck(this.now(), problems, this.config.gpuTimeoutMs) : { ok: true }),
      },
      problems,
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
