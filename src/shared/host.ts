/** The host collector's sample, as the state, the views and the metrics read it. */

export interface DiskReading {
  path: string;
  role: 'comfyui_output' | 'workspace';
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
}

/** Free space under which a disk counts as nearly full: 5 %, or 2 GiB, whichever is larger. */
export function nearlyFull(d: { total_bytes: number; free_bytes: number }): boolean {
  return d.free_bytes < Math.max(0.05 * d.total_bytes, 2 * 1024 ** 3) && d.total_bytes > 0;
}

