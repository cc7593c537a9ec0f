/**
 * The host collector: host memory and swap (systeminformation's async mem(), never graphics()),
 * free space on the filesystems that hold ComfyUI's outputs and /workspace, and podscope's own
 * memory. Outputs fail silently on a full disk, so a nearly full one becomes a problem.
 */
import { readdir, statfs } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { mem } from 'systeminformation/lib/memory.js';
import type { HealthBoard } from '../state/health.js';
import { nearlyFull, type DiskReading, type EventLoopDelay, type HostSnapshot } from '../shared/host.js';
import { HostState } from '../state/host.js';
import { sleep, tracked, type Collector } from './collector.js';
import { iso } from '../format.js';

export interface HostCollectorOptions {
  health: HealthBoard;
  intervalMs?: number;
  /** Each configured ComfyUI output directory, with the instances that write there. */
  outputDirs: ReadonlyArray<{ path: string; instances: string[] }>;
  workspaceDir: string;
  /** Where the samples go (composed in main.ts). */
  state?: HostState;
  /** Seams for tests. */
  readMemory?: typeof mem;
  readFs?: (path: string) => Promise<{ bsize: number; blocks: number; bavail: number }>;
  loopDelay?: LoopDelayMonitor;
}

/** What the collector reads of Node's event-loop delay histogram (nanoseconds). */
export type LoopDelayMonitor = Pick<ReturnType<typeof monitorEventLoopDelay>, 'count' | 'min' | 'max' | 'mean' | 'stddev' | 'percentile' | 'reset' | 'enable' | 'disable'>;

/**
 * Node's delay monitor, sampling every 100 ms. Reading its figures walks the whole histogram
 * (about a third of a millisecond), so they are read once per sample, never at a scrape.
 */
const LOOP_RESOLUTION_MS = 100;

/**
 * The monitor's figures in seconds, then a fresh interval; null when it saw no tick. Node's
 * monitor records the time between its timer's runs, the sampling interval included (nodejs/node
 * #62935: "an implicit floor of resolution ms"), so the interval is taken off: what is left is
 * how late the loop was. (prom-client reports the interval as delay.)
 */
export function readLoopDelay(h: LoopDelayMonitor, lagMs: number, resolutionMs: number): EventLoopDelay | null {
  if (h.count === 0) return null;
  const late = (ns: number) => Math.max(0, ns - resolutionMs * 1e6) / 1e9;
  const figures = { lag_s: lagMs / 1000, min_s: late(h.min), max_s: late(h.max), mean_s: late(h.mean), stddev_s: h.stddev / 1e9, p50_s: late(h.percentile(50)), p90_s: late(h.percentile(90)), p99_s: late(h.percentile(99)) };
  h.reset();
  return figures;
}

export class HostCollector implements Collector {
  readonly name = 'host';
  /** Where the samples go; its own when none is given (tests). */
  private readonly state: HostState;
  private loop: Promise<void> | null = null;
  private readonly loopDelay: LoopDelayMonitor;

  constructor(private readonly opts: HostCollectorOptions) {
    opts.health.declare(this.name);
    this.state = opts.state ?? new HostState();
    this.loopDelay = opts.loopDelay ?? monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  }

  snapshot(): HostSnapshot {
    return this.state.snapshot();
  }

  start(signal: AbortSignal): void {
    this.loopDelay.enable();
    this.loop = (async () => {
      while (!signal.aborted) {
        await this.tick();
        await sleep(this.opts.intervalMs ?? 5000, signal);
      }
    })();
  }

  async stop(): Promise<void> {
    await this.loop;
    this.loopDelay.disable();
  }

  async tick(): Promise<void> {
    const { health } = this.opts;
    await tracked(health, this.name, async () => {
      const readMemory = this.opts.readMemory ?? mem;
      const readFs = this.opts.readFs ?? statfs;
      const m = await readMemory().catch(() => null);
      const disks: DiskReading[] = [];
      const problems: string[] = [];
      const targets: Array<{ path: string; role: DiskReading['role']; instances?: string[] }> = [
        ...this.opts.outputDirs.map((o) => ({ path: o.path, role: 'comfyui_output' as const, instances: o.instances })),
        { path: this.opts.workspaceDir, role: 'workspace' },
      ];
      const missing: string[] = [];
      for (const { path, role, instances } of targets) {
        if (!path) continue;
        try {
          const s = await readFs(path);
          const total = s.blocks * s.bsize;
          const free = s.bavail * s.bsize;
          const d = { path, role, ...(instances ? { instances } : {}), total_bytes: total, free_bytes: free, used_ratio: total > 0 ? (total - free) / total : null };
          disks.push(d);
          if (nearlyFull(d)) problems.push(`${role} filesystem at ${path} has ${(free / 1024 ** 3).toFixed(1)} GiB free of ${(total / 1024 ** 3).toFixed(1)} GiB`);
        } catch (err) {
          if (role === 'comfyui_output') missing.push(`${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
      const several = this.opts.outputDirs.length > 1;
      if (missing.length > 0) health.raise('artifacts', 'OUTPUT_DIR_MISSING', `${several ? 'COMFYUI_OUTPUT_DIRS' : 'COMFYUI_OUTPUT_DIR'} ${missing.join('; ')}`);
      else health.clear('artifacts', 'OUTPUT_DIR_MISSING');
      if (problems.length > 0) health.raise('host', 'DISK_NEARLY_FULL', `${problems.join('; ')}; ComfyUI outputs fail silently on a full disk`);
      else health.clear('host', 'DISK_NEARLY_FULL');
      const waited = performance.now();
      await new Promise((resolve) => setImmediate(resolve));
      const eventLoop = readLoopDelay(this.loopDelay, performance.now() - waited, LOOP_RESOLUTION_MS);
      const pm = process.memoryUsage();
      // Minus one: the descriptor readdir itself holds.
      const fds = await readdir('/proc/self/fd').then((l) => l.length - 1, () => null);
      this.state.set({
        sampled_at: iso(Date.now()),
        memory: m
          ? { total_bytes: m.total, available_bytes: m.available, used_bytes: m.total - m.available, swap_total_bytes: m.swaptotal, swap_used_bytes: m.swapused }
          : null,
        disks,
        process: { rss_bytes: pm.rss, heap_used_bytes: pm.heapUsed, heap_total_bytes: pm.heapTotal, external_bytes: pm.external, array_buffers_bytes: pm.arrayBuffers, open_fds: fds },
        event_loop: eventLoop,
      });
      return m ? { ok: true } : { ok: false, code: 'HOST_MEMORY_UNREADABLE', message: 'host memory could not be read' };
    });
  }
}
