/** The host collector's sample, as the state, the views and the metrics read it. */

export interface DiskReading {
  path: string;
  role: 'comfyui_output' | 'workspace';
  /** The ComfyUI instances whose output directory this is (comfyui_output only). */
  instances?: string[];
  total_bytes: number;
  free_bytes: number;
  /** null for a filesystem that reports no size (unknown, not empty). */
  used_ratio: number | null;
}

export interface HostSnapshot {
  sampled_at: string | null;
  memory: { total_bytes: number; available_bytes: number; used_bytes: number; swap_total_bytes: number; swap_used_bytes: number } | null;
  disks: DiskReading[];
  process: { rss_bytes: number; heap_used_bytes: number; heap_total_bytes: number; external_bytes: number; array_buffers_bytes: number; open_fds: number | null } | null;
  /** The event loop's delay since the sample before (null until a first interval was measured). */
  event_loop: EventLoopDelay | null;
}

/**
 * How late the event loop ran, in seconds: `lag_s` is the wait of one setImmediate at sampling
 * time; the rest summarise Node's delay monitor over the interval since the previous sample.
 */
export interface EventLoopDelay {
  lag_s: number;
  min_s: number;
  max_s: number;
  mean_s: number;
  stddev_s: number;
  p50_s: number;
  p90_s: number;
  p99_s: number;
}

/** Free space under which a disk counts as nearly full: 5 %, or 2 GiB, whichever is larger. */
export function nearlyFull(d: { total_bytes: number; free_bytes: number }): boolean {
  return d.free_bytes < Math.max(0.05 * d.total_bytes, 2 * 1024 ** 3) && d.total_bytes > 0;
}

