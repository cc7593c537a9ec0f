/**
 * PodState: everything the routes may read, in one place. Collectors write the parts they own;
 * routes only read and serialize.
 */
import type { Config } from '../config.js';
import { redactEnvValue, type Scrubber } from '../secrets.js';
import type { HostState } from './host.js';
import type { EventJournal } from './events.js';
import type { ComfyState } from './comfy.js';
import type { GpuState } from './gpu.js';
import type { LogStore } from './logs.js';
import type { ArtifactFiles, ArtifactLedger } from './artifacts.js';
import { HealthBoard } from './health.js';
import { Readiness, type ReadyReport } from './readiness.js';
import type { RingStats } from './ring-buffer.js';

/** Environment variables shown in /debug/config: an allowlist of prefixes, never the whole env. */
const SHOWN_ENV = /^(PODSCOPE_|COMFYUI_|RUNPOD_|LOG_LEVEL$|CUDA_VISIBLE_DEVICES$|NVIDIA_VISIBLE_DEVICES$|NODE_ENV$)/;

export type ConnectionsProvider = () => unknown;


export interface PodStateOptions {
  config: Config;
  version: string;
  scrubber: Scrubber;
  env: Record<string, string | undefined>;
  now?: () => number;
}

export class PodState {
  readonly config: Config;
  readonly version: string;
  readonly scrubber: Scrubber;
  readonly startedAt: number;
  readonly now: () => number;
  readonly health: HealthBoard;
  readonly readiness = new Readiness();
  /** Allowlisted environment, secrets redacted by name and URL passwords masked. */
  readonly environment: Readonly<Record<string, string>>;
  private readonly connectionProviders = new Map<string, ConnectionsProvider>();
  private readonly bufferProviders = new Map<string, () => RingStats>();
  /** GPU readings and accounting; null when GPU sampling is off. */
  gpu: GpuState | null = null;
  /** Outputs of finished jobs; null until wired. */
  artifacts: ArtifactLedger | null = null;
  /** Opens output files for downloads; null until wired. */
  artifactFiles: ArtifactFiles | null = null;
  /** The log buffer; null until the log collector is wired. */
  logs: LogStore | null = null;
  /** Open streams (log follow) to end when podscope stops. */
  readonly streams = new Set<() => void>();
  /** Jobs, queue and ComfyUI connection; null until the ComfyUI side is wired. */
  comfy: ComfyState | null = null;
  /** Host memory, disks and podscope's own memory, as last sampled. */
  host: HostState | null = null;
  /** What changed, for /debug/events; null until wired. */
  events: EventJournal | null = null;

  constructor(opts: PodStateOptions) {
    this.config = opts.config;
    this.version = opts.version;
    this.scrubber = opts.scrubber;
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
    this.health = new HealthBoard(this.now);
    const shown: Record<string, string> = {};
    for (const name of Object.keys(opts.env).sort()) {
      const value = opts.env[name];
      if (value !== undefined && SHOWN_ENV.test(name)) shown[name] = redactEnvValue(name, value);
    }
    this.environment = Object.freeze(shown);
  }

  /** /ready's checks and the pod's condition, from the same rule /debug/status uses. */
  condition(): ReadyReport {
    return this.readiness.report(this.health.problems());
  }

  /** A collector registers what it holds open, for /debug/connections. */
  addConnections(name: string, provider: ConnectionsProvider): void {
    this.connectionProviders.set(name, provider);
  }

  /** Every ring buffer registers its fill, for /debug/memory. */
  addBuffer(name: string, stats: () => RingStats): void {
    this.bufferProviders.set(name, stats);
  }

  buffers(): Record<string, RingStats> {
    const out: Record<string, RingStats> = {};
    for (const [name, stats] of this.bufferProviders) out[name] = stats();
    return out;
  }

  connections(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, provider] of this.connectionProviders) out[name] = provider();
    return out;
  }
}
