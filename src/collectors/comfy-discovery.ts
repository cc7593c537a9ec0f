/**
 * Discovery (PODSCOPE_COMFYUI_DISCOVER): probes a range of loopback ports at start and every
 * interval, and hands each port where a ComfyUI answers, and that no followed instance already
 * holds, to whoever follows it (main.ts adds the instance and starts its collectors). An instance
 * found once is never dropped: when it goes away, its own collectors report it down.
 */
import type { HealthBoard } from '../state/health.js';
import { httpJson } from '../sources/http-json.js';
import { isRecord } from '../shared/job-types.js';
import { sleep, tracked, type Collector } from './collector.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '0.0.0.0', '[::]']);

/** The loopback port a ComfyUI URL points at, or null when it is not on this machine's loopback. */
export function loopbackPort(url: string): number | null {
  try {
    const u = new URL(url);
    if (!LOOPBACK.has(u.hostname)) return null;
    return Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  } catch {
    return null;
  }
}

/** Whether an answer to /system_stats is ComfyUI's (its `system` and `devices`), not another server's. */
export function isComfyStats(body: unknown): boolean {
  return isRecord(body) && isRecord(body.system) && Array.isArray(body.devices);
}

export interface DiscoveryOptions {
  from: number;
  to: number;
  intervalMs: number;
  /** Deadline of one probe. */
  timeoutMs: number;
  /** The URLs followed now (configured and found). */
  followed: () => readonly string[];
  /** Told of a ComfyUI found on a port nobody follows. */
  found: (port: number) => void;
  health: HealthBoard;
}

export class ComfyDiscovery implements Collector {
  readonly name = 'discovery';
  private loop: Promise<void> | null = null;

  constructor(private readonly opts: DiscoveryOptions) {
    opts.health.declare(this.name);
  }

  start(signal: AbortSignal): void {
    this.loop = (async () => {
      while (!signal.aborted) {
        await tracked(this.opts.health, this.name, () => this.probeAll(signal));
        await sleep(this.opts.intervalMs, signal);
      }
    })();
  }

  async stop(): Promise<void> {
    await this.loop;
  }

  /** One round: every port of the range nobody follows, at once, each within the probe deadline. */
  async probeAll(signal?: AbortSignal): Promise<{ ok: true } | { stopped: true }> {
    const held = new Set(this.opts.followed().map(loopbackPort));
    const ports: number[] = [];
    for (let p = this.opts.from; p <= this.opts.to; p++) if (!held.has(p)) ports.push(p);
    const answers = await Promise.all(
      ports.map(async (port) => {
        const r = await httpJson(`http://127.0.0.1:${port}/system_stats`, { timeoutMs: this.opts.timeoutMs, maxBytes: 1024 * 1024, signal });
        return r.ok && isComfyStats(r.body) ? port : null;
      }),
    );
    if (signal?.aborted) return { stopped: true };
    for (const port of answers) if (port !== null) this.opts.found(port);
    return { ok: true };
  }
}
