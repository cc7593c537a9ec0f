/**
 * What podscope knows about ComfyUI: connection state, the last /system_stats, frame counters,
 * the latest preview per job, and the job tracker. Written by the ComfyUI collector, read by views.
 */
import type { GpuState } from './gpu.js';
import { JobTracker, type Job } from './jobs.js';
import { round } from '../format.js';
import type { CheckResult } from './readiness.js';

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

/** A prompt ComfyUI refused with HTTP 400: never queued, known from the tap and from the log. */
export interface Rejection {
  at: number;
  /** The platform's job id and the prompt_id ComfyUI gave it (tap only). */
  job_id: string | null;
  prompt_id: string | null;
  /** ComfyUI's reasons as sentences (`KSampler 3: Value smaller than min: steps: -1`). */
  reasons: string[];
  /** The log block ComfyUI printed for it. */
  lines: string[];
  source: 'tap' | 'log' | 'tap+log';
}

export const PROGRESS_UNKNOWN = "the prompt's graph has not been read yet, so the work left is unknown";

/**
 * A job's ids as answers show them: `job_id` is null (with the reason) until the prompt's
 * extra_data has been read, so an answer never shows a prompt_id that later turns into a job id.
 */
export function jobIdentity(job: Job): { job_id: string | null; prompt_id: string; job_id_unknown_reason?: string } {
  if (job.identity_known) return { job_id: job.job_id, prompt_id: job.prompt_id };
  return { job_id: null, prompt_id: job.prompt_id, job_id_unknown_reason: "the prompt's extra_data has not been read yet" };
}

/** How close a log block and a tap report of one rejection arrive. */
const SAME_REJECTION_MS = 5000;

export class ComfyState {
  readonly tracker: JobTracker;
  reachedAt: number | null = null;
  lastHttpOkAt: number | null = null;
  lastHttpError: string | null = null;
  httpFailingSince: number | null = null;
  /** When ComfyUI was last seen going away (websocket closed, or HTTP failing). */
  lastDownAt: number | null = null;
  /** Since when ComfyUI's port refuses connections (the process is gone), else null. */
  refusedSince: number | null = null;
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
  tapVersion: string | null = null;
  /** ComfyUI's command line, from /system_stats (where its output and temp directories are). */
  argv: string[] | null = null;
  readonly framesByType = new Map<string, number>();
  malformedFrames = 0;
  binaryFrames = 0;
  private readonly previews = new Map<string, Preview>();
  /** Prompts ComfyUI refused with HTTP 400, newest last. */
  readonly rejections: Rejection[] = [];
  private readonly rejectionListeners: Array<(r: Rejection) => void> = [];

  constructor(
    readonly url: string,
    opts: { jobIdKey: string; historyLimit: number },
    private readonly gpu: GpuState | null,
  ) {
    this.tracker = new JobTracker(opts);
    // A finished job keeps its GPU use over its own run (first listener: metrics and forensics read it).
    this.tracker.onFinish((job) => {
      if (job.finished_at !== null) job.usage = this.usageFor(job, job.finished_at);
    });
  }

  /** Records a rejection; the tap's report and the log's block of one rejection become one entry. */
  addRejection(r: Rejection): void {
    const twin = this.rejections.find((x) => x.source !== r.source && x.source !== 'tap+log' && Math.abs(x.at - r.at) <= SAME_REJECTION_MS);
    if (twin) {
      const tap = r.source === 'tap' ? r : twin;
      const log = r.source === 'tap' ? twin : r;
      Object.assign(twin, { at: tap.at, job_id: tap.job_id, prompt_id: tap.prompt_id, reasons: tap.reasons.length > 0 ? tap.reasons : log.reasons, lines: log.lines, source: 'tap+log' });
      return;
    }
    this.rejections.push(r);
    if (this.rejections.length > 20) this.rejections.shift();
    for (const l of this.rejectionListeners) l(r);
  }

  /** Calls `listener` with each new rejection (not when the log's block joins the tap's report). */
  onRejection(listener: (r: Rejection) => void): void {
    this.rejectionListeners.push(listener);
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

  /**
   * Whether ComfyUI is known to be up now: HTTP answers, and the websocket is open or HTTP answered
   * after it closed. Log lines are charged to the running job only while this holds.
   */
  alive(): boolean {
    if (this.httpFailingSince !== null || this.lastHttpOkAt === null) return false;
    return this.wsConnected || (this.wsDownSince !== null && this.lastHttpOkAt > this.wsDownSince);
  }

  /** The `comfyui` check of /ready: ComfyUI answers over HTTP. */
  httpCheck(): CheckResult {
    if (this.lastHttpOkAt === null) {
      return { ok: false, message: `ComfyUI at ${this.url} has not answered yet${this.lastHttpError ? ` (${this.lastHttpError})` : ''}`, starting: true };
    }
    if (this.httpFailingSince !== null) return { ok: false, message: `ComfyUI at ${this.url} does not answer: ${this.lastHttpError}` };
    return { ok: true };
  }

  /** The `websocket` check of /ready. */
  websocketCheck(): CheckResult {
    if (this.wsConnected) return { ok: true };
    if (!this.wsEverConnected) return { ok: false, message: `websocket to ComfyUI not connected yet${this.wsLastCloseReason ? ` (${this.wsLastCloseReason})` : ''}`, starting: true };
    return { ok: false, message: `websocket to ComfyUI is down: ${this.wsLastCloseReason ?? 'closed'}` };
  }

  /** What podscope can see of other clients' prompts, in one sentence. */
  visibility(): { mode: 'tap' | 'observer'; sees: string } {
    if (this.tap) {
      return {
        mode: 'tap',
        sees: 'every prompt from every client, node by node, with ComfyUI\'s own times, job ids from the POST on, and rejected prompts with their reasons',
      };
    }
    return {
      mode: 'observer',
      sees:
        "without the tap node: other clients' prompts through /queue and /history (ids, outcome, error, outputs, ComfyUI's start and end times) and the log (a sampler's tqdm steps); node start times only where progress frames or the log show them, otherwise null; rejected prompts only from the log, without their job id",
    };
  }

  info() {
    return {
      connected: this.wsConnected && this.httpFailingSince === null && this.lastHttpOkAt !== null,
      url: this.url,
      version: this.version,
      http_ok: this.httpFailingSince === null && this.lastHttpOkAt !== null,
      websocket: this.wsConnected,
      tap: this.tap,
      tap_version: this.tapVersion,
      visibility: this.visibility(),
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
      ...jobIdentity(job),
      progress_percent: job.progress,
      ...(job.progress === null ? { progress_unknown_reason: PROGRESS_UNKNOWN } : {}),
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
