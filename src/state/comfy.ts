/**
 * What podscope knows about ComfyUI: connection state, the last /system_stats, frame counters,
 * the latest preview per job, rejected prompts, and the job tracker. The ComfyUI collector tells it
 * what happened through intent methods (`httpAnswered`, `connected`, `frameArrived`…); readers get
 * a {@link ComfyReader}. How it is shown lives in views/comfy.ts.
 */
import { isRecord, JobTracker, type JobsReader } from './jobs.js';
import type { CheckResult } from './readiness.js';
import { instanceName } from '../config.js';

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

/** How close a log block and a tap report of one rejection arrive. */
const SAME_REJECTION_MS = 5000;
/** Rejections kept, newest last. */
const MAX_REJECTIONS = 20;

/** What /system_stats said, and when. */
export interface SystemStatsRead {
  at: number;
  raw: Record<string, unknown>;
}

export class ComfyState {
  readonly tracker: JobTracker;
  private reachedAtMs: number | null = null;
  private lastHttpOk: number | null = null;
  private lastHttpErr: string | null = null;
  private httpFailing: number | null = null;
  private lastDown: number | null = null;
  private refused: number | null = null;
  private ws = { connected: false, downSince: null as number | null, everConnected: false, clientId: null as string | null, lastCloseReason: null as string | null, reconnects: 0 };
  private lastFrame: number | null = null;
  private queueLeft: number | null = null;
  private comfyVersion: string | null = null;
  private stats: SystemStatsRead | null = null;
  private tapInfo: { version: string | null } | null = null;
  private commandLine: string[] | null = null;
  private visibleDevices: { value: string | null } | null = null;
  private readonly frames = new Map<string, number>();
  private malformed = 0;
  private binary = 0;
  private readonly previews = new Map<string, Preview>();
  private readonly rejectionList: Rejection[] = [];
  private readonly rejectionListeners: Array<(r: Rejection) => void> = [];

  /** The instance's name: in answers, `?instance=` filters and the `comfyui` metric label. */
  readonly name: string;

  constructor(
    readonly url: string,
    opts: { jobIdKey: string; historyLimit: number; name?: string },
  ) {
    this.name = opts.name ?? instanceName(url);
    this.tracker = new JobTracker({ jobIdKey: opts.jobIdKey, historyLimit: opts.historyLimit, instance: this.name });
  }

  // ── what the collector tells ─────────────────────────────────────────────────────────────────

  /** The CUDA_VISIBLE_DEVICES of the process on its port, as /proc shows it (null: not set); `undefined`: unknown again. */
  processEnvRead(cudaVisibleDevices: string | null | undefined): void {
    this.visibleDevices = cudaVisibleDevices === undefined ? null : { value: cudaVisibleDevices };
  }

  /** ComfyUI answered over HTTP; true the first time ever. */
  httpAnswered(now: number): boolean {
    const first = this.reachedAtMs === null;
    this.reachedAtMs ??= now;
    this.lastHttpOk = now;
    this.lastHttpErr = null;
    this.httpFailing = null;
    this.refused = null;
    return first;
  }

  /** An HTTP call to ComfyUI failed; `refused` when its port refuses connections (the process is gone). */
  httpFailed(now: number, message: string, refused: boolean): void {
    if (this.httpFailing === null) this.lastDown = now;
    this.httpFailing ??= now;
    this.lastHttpErr = message;
    this.refused = refused ? (this.refused ?? now) : null;
  }

  /** The websocket opened under `clientId`. */
  connected(clientId: string): void {
    this.ws.connected = true;
    this.ws.everConnected = true;
    this.ws.downSince = null;
    this.ws.clientId = clientId;
  }

  /** The websocket closed (or failed to open); true when it had been open. */
  disconnected(now: number, reason: string): boolean {
    const was = this.ws.connected;
    this.ws.connected = false;
    this.ws.downSince ??= now;
    this.ws.lastCloseReason = reason;
    if (was) {
      this.lastDown = now;
      this.ws.reconnects++;
    }
    return was;
  }

  /** A websocket frame arrived: a text frame of `type`, a binary one, or one that is no JSON. */
  frameArrived(now: number, kind: { type: string } | 'binary' | 'malformed'): void {
    this.lastFrame = now;
    if (kind === 'binary') this.binary++;
    else if (kind === 'malformed') this.malformed++;
    else {
      const key = KNOWN_FRAME_TYPES.has(kind.type) ? kind.type : 'other';
      this.frames.set(key, (this.frames.get(key) ?? 0) + 1);
    }
  }

  /** ComfyUI's own count of prompts left, from a status frame. */
  queueRemainingIs(n: number): void {
    this.queueLeft = n;
  }

  /** /system_stats answered: its version and command line are read from it. */
  systemStatsRead(now: number, raw: Record<string, unknown>): void {
    this.stats = { at: now, raw };
    const system = isRecord(raw.system) ? raw.system : {};
    if (typeof system.comfyui_version === 'string') this.comfyVersion = system.comfyui_version;
    this.commandLine = Array.isArray(system.argv) ? system.argv.filter((a): a is string => typeof a === 'string').slice(0, 200) : null;
  }

  /** Whether the tap node answered (`null`: it did not), with its version. */
  tapFound(info: { version: string | null } | null): void {
    this.tapInfo = info;
  }

  /** Records a rejection; the tap's report and the log's block of one rejection become one entry. */
  addRejection(r: Rejection): void {
    const twin = this.rejectionList.find((x) => x.source !== r.source && x.source !== 'tap+log' && Math.abs(x.at - r.at) <= SAME_REJECTION_MS);
    if (twin) {
      const tap = r.source === 'tap' ? r : twin;
      const log = r.source === 'tap' ? twin : r;
      Object.assign(twin, { at: tap.at, job_id: tap.job_id, prompt_id: tap.prompt_id, reasons: tap.reasons.length > 0 ? tap.reasons : log.reasons, lines: log.lines, source: 'tap+log' });
      return;
    }
    this.rejectionList.push(r);
    if (this.rejectionList.length > MAX_REJECTIONS) this.rejectionList.shift();
    for (const l of this.rejectionListeners) l(r);
  }

  /** Calls `listener` with each new rejection (not when the log's block joins the tap's report). */
  onRejection(listener: (r: Rejection) => void): void {
    this.rejectionListeners.push(listener);
  }

  /** Forgets rejections older than `ttlMs`; returns how many remain. */
  pruneRejections(now: number, ttlMs: number): number {
    while (this.rejectionList.length > 0 && now - this.rejectionList[0]!.at > ttlMs) this.rejectionList.shift();
    return this.rejectionList.length;
  }

  /** Keeps only the latest preview of each job, and only for jobs still remembered. */
  setPreview(p: Preview): void {
    const key = p.prompt_id ?? 'unknown';
    this.previews.set(key, p);
    for (const id of this.previews.keys()) if (id !== 'unknown' && !this.tracker.get(id)) this.previews.delete(id);
    if (this.previews.size > 64) this.previews.delete(this.previews.keys().next().value!);
  }

  // ── what readers see ─────────────────────────────────────────────────────────────────────────

  /** When ComfyUI first answered, if ever. */
  get reachedAt(): number | null {
    return this.reachedAtMs;
  }
  get lastHttpOkAt(): number | null {
    return this.lastHttpOk;
  }
  get lastHttpError(): string | null {
    return this.lastHttpErr;
  }
  /** Since when HTTP calls fail, else null. */
  get httpFailingSince(): number | null {
    return this.httpFailing;
  }
  /** When ComfyUI was last seen going away (websocket closed, or HTTP failing). */
  get lastDownAt(): number | null {
    return this.lastDown;
  }
  /** Since when ComfyUI's port refuses connections (the process is gone), else null. */
  get refusedSince(): number | null {
    return this.refused;
  }
  get wsConnected(): boolean {
    return this.ws.connected;
  }
  get wsDownSince(): number | null {
    return this.ws.downSince;
  }
  get wsEverConnected(): boolean {
    return this.ws.everConnected;
  }
  get wsClientId(): string | null {
    return this.ws.clientId;
  }
  get wsLastCloseReason(): string | null {
    return this.ws.lastCloseReason;
  }
  get wsReconnects(): number {
    return this.ws.reconnects;
  }
  get lastFrameAt(): number | null {
    return this.lastFrame;
  }
  get queueRemaining(): number | null {
    return this.queueLeft;
  }
  get version(): string | null {
    return this.comfyVersion;
  }
  /** The last /system_stats answer, as ComfyUI gave it. */
  get systemStats(): SystemStatsRead | null {
    return this.stats;
  }
  /** Whether the ComfyUI tap node mirrors execution events to podscope. */
  get tap(): boolean {
    return this.tapInfo !== null;
  }
  get tapVersion(): string | null {
    return this.tapInfo?.version ?? null;
  }
  /** ComfyUI's command line, from /system_stats (where its output and temp directories are). */
  get argv(): readonly string[] | null {
    return this.commandLine;
  }
  get framesByType(): ReadonlyMap<string, number> {
    return this.frames;
  }
  get malformedFrames(): number {
    return this.malformed;
  }
  get binaryFrames(): number {
    return this.binary;
  }
  /** Prompts ComfyUI refused with HTTP 400, newest last. */
  get rejections(): readonly Readonly<Rejection>[] {
    return this.rejectionList;
  }

  preview(promptId: string): Preview | undefined {
    return this.previews.get(promptId);
  }

  everReached(): boolean {
    return this.reachedAtMs !== null;
  }

  /**
   * Whether ComfyUI is known to be up now: HTTP answers, and the websocket is open or HTTP answered
   * after it closed. Log lines are charged to the running job only while this holds.
   */
  alive(): boolean {
    if (this.httpFailing !== null || this.lastHttpOk === null) return false;
    return this.ws.connected || (this.ws.downSince !== null && this.lastHttpOk > this.ws.downSince);
  }

  /** The `comfyui` check of /ready: ComfyUI answers over HTTP. */
  httpCheck(): CheckResult {
    if (this.lastHttpOk === null) {
      return { ok: false, message: `ComfyUI at ${this.url} has not answered yet${this.lastHttpErr ? ` (${this.lastHttpErr})` : ''}`, starting: true };
    }
    if (this.httpFailing !== null) return { ok: false, message: `ComfyUI at ${this.url} does not answer: ${this.lastHttpErr}` };
    return { ok: true };
  }

  /** The `websocket` check of /ready. */
  websocketCheck(): CheckResult {
    if (this.ws.connected) return { ok: true };
    if (!this.ws.everConnected) return { ok: false, message: `websocket to ComfyUI not connected yet${this.ws.lastCloseReason ? ` (${this.ws.lastCloseReason})` : ''}`, starting: true };
    return { ok: false, message: `websocket to ComfyUI is down: ${this.ws.lastCloseReason ?? 'closed'}` };
  }

  /** CUDA_VISIBLE_DEVICES of its process: the value, null when not set, undefined when podscope could not read it. */
  get cudaVisibleDevices(): string | null | undefined {
    return this.visibleDevices === null ? undefined : this.visibleDevices.value;
  }

  queueCounts(): { running: number; pending: number } {
    const order = this.tracker.queueOrder();
    return { running: order.running.length, pending: order.pending.length };
  }
}

/** ComfyUI's state as readers see it: everything it knows, nothing it can be told. */
export interface ComfyReader
  extends Readonly<
    Pick<
      ComfyState,
      | 'name'
      | 'url'
      | 'reachedAt'
      | 'lastHttpOkAt'
      | 'lastHttpError'
      | 'httpFailingSince'
      | 'lastDownAt'
      | 'refusedSince'
      | 'wsConnected'
      | 'wsDownSince'
      | 'wsEverConnected'
      | 'wsClientId'
      | 'wsLastCloseReason'
      | 'wsReconnects'
      | 'lastFrameAt'
      | 'queueRemaining'
      | 'version'
      | 'systemStats'
      | 'tap'
      | 'tapVersion'
      | 'argv'
      | 'cudaVisibleDevices'
      | 'framesByType'
      | 'malformedFrames'
      | 'binaryFrames'
      | 'rejections'
      | 'preview'
      | 'everReached'
      | 'alive'
      | 'httpCheck'
      | 'websocketCheck'
      | 'queueCounts'
    >
  > {
  readonly tracker: JobsReader;
}
