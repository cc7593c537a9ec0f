/**
 * The GPU timeline and what a job used of it: the points sampled each period, and the GPU-seconds,
 * busy seconds and peak VRAM of a window of time.
 */
import type { RingReader } from './ring-buffer.js';

/** One point of the timeline: per GPU, in the order of `uuids`. */
export interface TimelinePoint {
  t: number;
  uuids: string[];
  used_mb: Array<number | null>;
  /** The period's highest memory.used (NVML's fast samples); the same as used_mb where only one reading is taken. */
  used_max_mb?: Array<number | null>;
  util: Array<number | null>;
  power_w: Array<number | null>;
  temperature_c: Array<number | null>;
}

export interface UsageWindow {
  /** Wall seconds × GPUs held, over the window. */
  gpu_seconds: number;
  /** Utilization-weighted seconds from the timeline, over the window. */
  busy_gpu_seconds: number;
  /** Highest memory.used among the samples in the window, in MB (any GPU), or null. */
  peak_vram_mb: number | null;
  peak_vram_by_gpu: Record<string, number>;
  samples: number;
}

/**
 * GPU-seconds, busy GPU-seconds and peak VRAM between t0 and t1 (ms epoch) from the timeline:
 * wall time × GPUs held; utilization integrated over consecutive points no more than `maxGapMs`
 * apart (no credit across a gap); the highest memory.used of the points inside the window. With
 * `only`, just those GPUs (by uuid) count: the ones a ComfyUI instance runs on.
 */
export function usageOver(timeline: RingReader<TimelinePoint>, held: number, maxGapMs: number, t0: number, t1: number, only?: ReadonlySet<string>): UsageWindow {
  const gpuSeconds = (Math.max(0, t1 - t0) / 1000) * (only ? only.size : held);
  const counts = (p: TimelinePoint, i: number) => !only || only.has(p.uuids[i]!);
  let busy = 0;
  let peak: number | null = null;
  const byGpu: Record<string, number> = {};
  let samples = 0;
  let prev: TimelinePoint | undefined;
  // Walk back from the newest point only as far as the window (and one gap before it) reaches.
  const points: TimelinePoint[] = [];
  timeline.walkBack((p) => {
    if (p.t < t0 - maxGapMs) return false;
    if (p.t <= t1) points.push(p);
    return true;
  });
  points.reverse();
  for (const p of points) {
    if (p.t >= t0) {
      samples++;
      (p.used_max_mb ?? p.used_mb).forEach((mb, i) => {
        if (mb === null || !counts(p, i)) return;
        const uuid = p.uuids[i]!;
        if (peak === null || mb > peak) peak = mb;
        if (!(uuid in byGpu) || mb > byGpu[uuid]!) byGpu[uuid] = mb;
      });
    }
    if (prev) {
      const a = Math.max(prev.t, t0);
      const b = Math.min(p.t, t1);
      if (b > a && p.t - prev.t <= maxGapMs) {
        prev.util.forEach((u, i) => {
          if (u !== null && counts(prev!, i)) busy += (u / 100) * ((b - a) / 1000);
        });
      }
    }
    prev = p;
  }
  return { gpu_seconds: gpuSeconds, busy_gpu_seconds: busy, peak_vram_mb: peak, peak_vram_by_gpu: byGpu, samples };
}
