/**
 * What podscope knows about ComfyUI: connection state, the last /system_stats, frame counters,
 * the latest preview per job, and the job tracker. Written by the ComfyUI collector, read by views.
 */
import type { GpuState } from './gpu.js';
import { JobTracker, type Job } from './jobs.js';
import { round } from '../format.js';

export interface Preview {
  prompt_id: string | null;
  node_id: string | null;
  format: string;
  bytes: number;
  at: number;
}

/** Frame types counted by name; anything else is counted as "other" so labels stay bounded. */
export const KNOWN_FRAME_TYPES = new Set([
  'status',
  'progress',
  'progress_state',
  'executing',
  'executed',
  'execution_start',
  'execution_cached',
  'execution_success',
  'execution_error',
  'execution_interrupted',
  'logs',
  'feature_flags',
  'crystools.monitor',
  'display_component',
]);

export class ComfyState {
  readonly tracker: JobTracker;
  reachedAt: number | null = null;
  lastHttpOkAt: number | null = null;
  lastHttpError: string | null = null;
  httpFailingSince: number | null = null;
  wsConnected = false;
  wsDownSince: number | null = null;
  wsEverConnected = false;
  wsClientId: string | null = null;
  wsLastCloseReason: string | null = null;
  wsReconnects = 0;
  lastFrameAt: number | null = null;
  queueRemaining: number | null = null;
  version: string | null = null;
  systemStatsRaw: Record<string, unknown> | null = null;
  systemStatsAt: number | null = null;
  /** Whether the ComfyUI tap node mirrors execution events to podscope. */
  tap = false;
  readonly framesByType = new Map<string, number>();
  malformedFrames = 0;
  binaryFrames = 0;
  private readonly previews = new Map<string, Preview>();
  /** Prompts ComfyUI refused with HTTP 400 (seen only in its log), newest last. */
  readonly rejections: Array<{ at: number; message: string; lines: string[] }> = [];

  constructor(
    readonly url: string,
    opts: { jobIdKey: string; historyLimit: number },
    private readonly gpu: GpuState | null,
  ) {
    this.tracker = new JobTracker(opts);
  }

  addRejection(r: { at: number; message: string; lines: string[] }): void {
    this.rejections.push(r);
    if (this.rejections.length > 20) this.rejections.shift();
  }

  /** Forgets rejections older than `ttlMs`; returns how many remain. */
  pruneRejections(now: number, ttlMs: number): number {
    while (this.rejections.length > 0 && now - this.rejections[0]!.at > ttlMs) this.rejections.shift();
    return this.rejections.length;
  }

  countFrame(type: string): void {
    const key = KNOWN_FRAME_TYPES.has(type) ? type : 'other';
    this.framesByType.set(key, (this.framesByType.get(key) ?? 0) + 1);
  }

  /** Keeps only the latest preview of each job, and only for jobs still remembered. */
  setPreview(p: Preview): void {
    const key = p.prompt_id ?? 'unknown';
    this.previews.set(key, p);
    for (const id of this.previews.keys()) if (id !== 'unknown' && !this.tracker.get(id)) this.previews.delete(id);
    if (this.previews.size > 64) this.previews.delete(this.previews.keys().next().value!);
  }

  preview(promptId: string): Preview | undefined {
    return this.previews.get(promptId);
  }

  everReached(): boolean {
    return this.reachedAt !== null;
  }

  info() {
    return {
      connected: this.wsConnected && this.httpFailingSince === null && this.lastHttpOkAt !== null,
      url: this.url,
      version: this.version,
      http_ok: this.httpFailingSince === null && this.lastHttpOkAt !== null,
      websocket: this.wsConnected,
      tap: this.tap,
      last_frame_at: this.lastFrameAt ? new Date(this.lastFrameAt).toISOString() : null,
    };
  }

  queueCounts() {
    const order = this.tracker.queueOrder();
    return { running: order.running.length, pending: order.pending.length };
  }

  /** GPU use between the job's start and its end (or now). */
  usageFor(job: Job, now: number): Job['usage'] {
    if (!this.gpu || job.started_at === null) return job.usage;
    const w = this.gpu.usageBetween(job.started_at, job.finished_at ?? now);
    return { gpu_seconds: round(w.gpu_seconds, 3), busy_gpu_seconds: round(w.busy_gpu_seconds, 3), peak_vram_mb: w.peak_vram_mb };
  }

  currentJob(now: number): Record<string, unknown> | null {
    const job = this.tracker.running();
    if (!job) return null;
    const node = job.current_node ? job.nodes.get(job.current_node) : undefined;
    const usage = this.usageFor(job, now);
    return {
      job_id: job.job_id,
      prompt_id: job.prompt_id,
      progress_percent: job.progress,
      started_at: job.started_at ? new Date(job.started_at).toISOString() : null,
      elapsed_s: job.started_at ? round((now - job.started_at) / 1000) : null,
      current_node: node
        ? { node_id: node.node_id, class_type: node.class_type, title: node.title, progress: node.total !== null ? { steps: node.steps ?? 0, total: node.total } : null }
        : null,
      gpu_seconds: usage ? usage.gpu_seconds : null,
      last_activity_s: round((now - job.last_activity) / 1000),
    };
  }

  systemStats(): Record<string, unknown> | null {
    const raw = this.systemStatsRaw;
    if (!raw) return null;
    const system = (raw.system ?? {}) as Record<string, unknown>;
    const devices = Array.isArray(raw.devices) ? (raw.devices as Array<Record<string, unknown>>) : [];
    const mb = (v: unknown) => (typeof v === 'number' ? Math.round(v / 1024 / 1024) : null);
    return {
      sampled_at: this.systemStatsAt ? new Date(this.systemStatsAt).toISOString() : null,
      version: typeof system.comfyui_version === 'string' ? system.comfyui_version : null,
      ram_total_mb: mb(system.ram_total),
      ram_free_mb: mb(system.ram_free),
      devices: devices.map((d) => ({
        name: typeof d.name === 'string' ? d.name : null,
        type: typeof d.type === 'string' ? d.type : null,
        index: typeof d.index === 'number' ? d.index : null,
        vram_total_mb: mb(d.vram_total),
        vram_free_mb: mb(d.vram_free),
        torch_vram_reserved_mb: mb(d.torch_vram_total),
        torch_vram_free_mb: mb(d.torch_vram_free),
      })),
    };
  }

  jobPeaks(now: number): Array<Record<string, unknown>> {
    return this.tracker
      .all()
      .filter((j) => j.started_at !== null)
      .sort((a, b) => (b.started_at ?? 0) - (a.started_at ?? 0))
      .slice(0, 20)
      .map((j) => ({
        job_id: j.job_id,
        prompt_id: j.prompt_id,
        status: j.status,
        started_at: new Date(j.started_at!).toISOString(),
        finished_at: j.finished_at ? new Date(j.finished_at).toISOString() : null,
        peak_vram_mb: j.usage?.peak_vram_mb ?? this.usageFor(j, now)?.peak_vram_mb ?? null,
      }));
  }
}
