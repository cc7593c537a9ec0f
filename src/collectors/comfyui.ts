/**
 * The ComfyUI collector: follows ComfyUI through its HTTP API and its websocket and feeds the job
 * tracker. It never connects under another client's id; it reconstructs other clients' jobs from
 * /queue, /history and what ComfyUI broadcasts, and takes full detail from the tap node when it
 * is installed.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { ComfyState } from '../state/comfy.js';
import type { HealthWriter } from '../state/health.js';
import { isRecord, type ReadonlyJob } from '../state/jobs.js';
import { decodeFrame, type ComfyEvent } from '../sources/comfy-events.js';
import { applyQueueAnswer, type RawInput } from './comfy-inputs.js';
import { HistoryDiscovery } from './comfy-history.js';
import { checkLiveness, loseJobsOfGoneComfy } from './comfy-liveness.js';

export type { RawInput } from './comfy-inputs.js';
import { httpJson, type HttpResult } from '../sources/http-json.js';
import { ComfyWsClient, type ComfyFrame } from '../sources/comfy-ws.js';
import { sleep, tracked, type Collector } from './collector.js';
import { iso } from '../format.js';
import { listenerEnv } from '../sources/proc-listener.js';
import { cudaDeviceArg } from '../state/instance-gpus.js';
import { loopbackPort } from './comfy-discovery.js';

const TERMINAL = new Set(['execution_success', 'execution_error', 'execution_interrupted']);

export interface ComfyCollectorOptions {
  config: Config;
  /** What it writes: one instance's connection state, jobs, queue (composed in main.ts); its URL is the instance's. */
  comfy: ComfyState;
  /** Where it records its runs and raises its problems: the instance's scope of the board. */
  health: HealthWriter;
  logger: Logger;
  now?: () => number;
  /** Receives every frame and HTTP answer from ComfyUI before it is decoded (recordings). */
  onRaw?: (raw: RawInput) => void;
  /** Reads the environment of the process on a port (default: through /proc; tests hand in their own). */
  readListenerEnv?: typeof listenerEnv;
}

/** Log entries as ComfyUI's `logs` frame and /internal/logs/raw carry them. */
export type LogEntriesListener = (entries: Array<{ t: string; m: string }>, from: 'stream' | 'backlog') => void;

export class ComfyCollector implements Collector {
  readonly name = 'comfyui';
  readonly comfy: ComfyState;
  private readonly ws: ComfyWsClient;
  private readonly now: () => number;
  private loop: Promise<void> | null = null;
  private queueSoon: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  /** A poll was asked for while one ran: run one more after it, so no change is missed. */
  private pollAgain = false;
  private lastStatsAt = 0;
  /** Whether the environment of this ComfyUI's process has been read since it (re)started. */
  private envRead = false;
  /** Set when HTTP failed, so the next success reconciles as after a restart. */
  private recovering = false;
  private signal: AbortSignal | null = null;
  private readonly history: HistoryDiscovery;
  private readonly logListeners: LogEntriesListener[] = [];
  private readonly restartListeners: Array<(at: number) => void> = [];

  constructor(private readonly opts: ComfyCollectorOptions) {
    const { config } = opts;
    this.now = opts.now ?? Date.now;
    this.comfy = opts.comfy;
    opts.health.declare(this.name);
    this.history = new HistoryDiscovery({ config, comfy: this.comfy, get: (path, maxBytes) => this.get(path, maxBytes), now: this.now });
    this.ws = new ComfyWsClient({
      url: opts.comfy.url,
      pingIntervalMs: config.wsPingMs,
      maxPayloadBytes: config.wsMaxFrameBytes,
      events: {
        onOpen: (clientId) => this.onOpen(clientId),
        onFrame: (frame) => this.onFrame(frame),
        onClose: (reason) => this.onClose(reason),
      },
    });
  }

  /** A step of the finish pipeline: a job that ended is no longer stalled, and its end is logged. */
  jobFinished(job: ReadonlyJob): void {
    this.opts.health.clear('comfyui', 'STALLED');
    const level = job.status === 'success' ? 'info' : 'warn';
    this.opts.logger[level](
      { job_id: job.job_id, data: { prompt_id: job.prompt_id, status: job.status, error: job.error?.exception_type ?? null, lost_reason: job.lost_reason } },
      `job ${job.job_id} finished: ${job.status}`,
    );
  }

  /** Told when ComfyUI comes back after being unreachable (a restart: temp wiped, history gone). */
  onRestart(listener: (at: number) => void): void {
    this.restartListeners.push(listener);
  }

  /** Log entries from the websocket stream and the backlog go to these listeners (the log collector). */
  onLogEntries(listener: LogEntriesListener): void {
    this.logListeners.push(listener);
  }

  start(signal: AbortSignal): void {
    this.signal = signal;
    this.ws.start();
    this.loop = (async () => {
      while (!signal.aborted) {
        await this.poll();
        await sleep(this.nextPollIn(), signal);
      }
    })();
  }

  /**
   * Poll often while a job is open or the websocket is down; when ComfyUI is idle and its socket
   * is up, every queue change arrives as a status frame (which polls at once), so look less often.
   */
  private nextPollIn(): number {
    const base = this.opts.config.comfyuiPollMs;
    const idle = this.comfy.wsConnected && this.comfy.httpFailingSince === null && this.comfy.tracker.unfinished().length === 0;
    return idle ? base * 5 : base;
  }

  async stop(): Promise<void> {
    this.ws.stop();
    if (this.queueSoon) clearTimeout(this.queueSoon);
    await this.loop;
    await this.polling;
  }

  private url(path: string): string {
    return `${this.comfy.url}${path}`;
  }

  private get timeoutMs(): number {
    return this.opts.config.comfyuiTimeoutMs;
  }

  /** One poll: /queue (and /history for prompts that left it), /system_stats now and then, stall check. Single-flight. */
  poll(): Promise<void> {
    if (this.polling) {
      this.pollAgain = true;
      return this.polling;
    }
    this.polling = (async () => {
      try {
        do {
          this.pollAgain = false;
          await tracked(this.opts.health, this.name, () => this.pollOnce());
          checkLiveness(this.comfy, this.opts.config, this.opts.health, this.now());
        } while (this.pollAgain && !this.signal?.aborted);
      } finally {
        this.polling = null;
      }
    })();
    return this.polling;
  }

  /** GET a path of ComfyUI as JSON, handing the answer to the recorder. */
  private async get(path: string, maxBytes: number): Promise<HttpResult> {
    const r = await httpJson<unknown>(this.url(path), { timeoutMs: this.timeoutMs, maxBytes, signal: this.signal ?? undefined });
    if (this.opts.onRaw) this.opts.onRaw({ t: this.now(), kind: 'http', path, body: r.ok ? r.body : { error: r.code, status: r.status ?? null } });
    return r;
  }

  private async pollOnce(): Promise<{ ok: true } | { ok: false; code: string; message: string }> {
    const { health } = this.opts;
    const now = this.now();
    const q = await this.get('/queue', 64 * 1024 * 1024);
    if (!q.ok) return this.httpFailed(`/queue: ${q.message}`, q.code);
    const left = applyQueueAnswer(this.comfy.tracker, now, q.body);
    if (!left) return this.httpFailed('/queue answered, but not with queue_running and queue_pending lists', 'COMFYUI_BAD_ANSWER');
    const restarted = this.recovering;
    this.recovering = false;
    this.httpOk(now);
    if (restarted) {
      this.envRead = false;
      this.history.restarted();
      for (const l of this.restartListeners) l(now);
    }
    await this.history.resolveLeft(left, restarted);
    await this.history.discover();
    await this.history.completeFromHistory();
    if (now - this.lastStatsAt >= 10_000 || this.comfy.systemStats === null) await this.pollSystemStats();
    health.clear('comfyui', 'COMFYUI_BAD_ANSWER');
    return { ok: true };
  }

  private async pollSystemStats(): Promise<void> {
    const r = await this.get('/system_stats', 4 * 1024 * 1024);
    this.lastStatsAt = this.now();
    if (!r.ok || !isRecord(r.body)) return;
    this.comfy.systemStatsRead(this.now(), r.body);
    await this.readProcessEnv();
    // The tap node answers here when it is installed.
    const tap = await this.get('/podscope/tap', 64 * 1024);
    const info = tap.ok && isRecord(tap.body) && tap.body.tap === true ? tap.body : null;
    this.comfy.tapFound(info ? { version: typeof info.version === 'string' ? info.version : null } : null);
  }

  /**
   * Once per ComfyUI start, when its command line names no GPU: the CUDA_VISIBLE_DEVICES of the
   * process listening on its loopback port, which says which GPUs it runs on.
   */
  private async readProcessEnv(): Promise<void> {
    if (this.envRead || cudaDeviceArg(this.comfy.argv) !== null) return;
    this.envRead = true;
    const port = loopbackPort(this.comfy.url);
    if (port === null) return;
    const env = await (this.opts.readListenerEnv ?? listenerEnv)(port, 'CUDA_VISIBLE_DEVICES');
    this.comfy.processEnvRead(env.pid === null ? undefined : env.value);
  }

  private httpOk(now: number): void {
    if (this.comfy.httpAnswered(now)) this.opts.logger.info(`ComfyUI reached at ${this.comfy.url}`);
    this.opts.health.clear('comfyui', 'COMFYUI_UNREACHABLE');
  }

  private httpFailed(message: string, code: string): { ok: false; code: string; message: string } {
    const { health } = this.opts;
    const now = this.now();
    this.comfy.httpFailed(now, message, code === 'HTTP_UNREACHABLE');
    if (this.comfy.reachedAt !== null) this.recovering = true;
    const text = `ComfyUI at ${this.comfy.url} does not answer: ${message}`;
    if (code === 'COMFYUI_BAD_ANSWER') health.raise('comfyui', code, `ComfyUI answered ${message}`);
    else health.raise('comfyui', 'COMFYUI_UNREACHABLE', text, this.comfy.reachedAt === null ? 'warning' : 'error');
    loseJobsOfGoneComfy(this.comfy, this.opts.config, this.opts.logger, now);
    return { ok: false, code, message };
  }

  private onOpen(clientId: string): void {
    this.comfy.connected(clientId);
    this.opts.health.clear('websocket');
    this.opts.logger.info({ data: { client_id: clientId } }, 'websocket to ComfyUI connected');
    // Reconcile: whatever finished while the socket was down is read from queue and history.
    void this.poll();
    void this.subscribeLogs(clientId);
  }

  private async subscribeLogs(clientId: string): Promise<void> {
    if (this.logListeners.length === 0) return;
    // Connect first, then subscribe: ComfyUI drops subscriptions of ids with no open socket.
    await httpJson(this.url('/internal/logs/subscribe'), { method: 'PATCH', body: { clientId, enabled: true }, timeoutMs: this.timeoutMs });
    const raw = await httpJson<unknown>(this.url('/internal/logs/raw'), { timeoutMs: this.timeoutMs, maxBytes: 16 * 1024 * 1024 });
    if (raw.ok && isRecord(raw.body) && Array.isArray(raw.body.entries)) this.emitLogs(raw.body.entries, 'backlog');
  }

  private emitLogs(entries: unknown[], from: 'stream' | 'backlog'): void {
    const clean = entries.filter((e): e is { t: string; m: string } => isRecord(e) && typeof e.m === 'string').map((e) => ({ t: typeof e.t === 'string' ? e.t : '', m: e.m }));
    for (const l of this.logListeners) l(clean, from);
  }

  private onClose(reason: string): void {
    if (this.comfy.disconnected(this.now(), reason)) {
      this.opts.logger.warn({ data: { reason } }, `websocket to ComfyUI closed: ${reason}`);
      // A closed socket may mean ComfyUI went away: look now rather than at the next idle poll.
      if (!this.signal?.aborted) void this.poll();
    }
  }

  private onFrame(frame: ComfyFrame): void {
    const now = this.now();
    const tracker = this.comfy.tracker;
    if (frame.kind === 'malformed') {
      this.comfy.frameArrived(now, 'malformed');
      return;
    }
    if (frame.kind === 'binary') {
      this.comfy.frameArrived(now, 'binary');
      if (frame.preview) {
        const meta = frame.preview.meta;
        const promptId = typeof meta?.prompt_id === 'string' ? meta.prompt_id : (tracker.running()?.prompt_id ?? null);
        this.comfy.setPreview({ prompt_id: promptId, node_id: typeof meta?.node_id === 'string' ? meta.node_id : null, format: frame.preview.format, bytes: frame.preview.image.length, at: now });
      }
      if (frame.text) tracker.applyLogActivity(now);
      return;
    }
    if (this.opts.onRaw && frame.type !== 'logs') this.opts.onRaw({ t: now, kind: 'frame', type: frame.type, data: frame.data });
    this.comfy.frameArrived(now, { type: frame.type });
    const event = decodeFrame(frame.type, frame.data);
    if (event) this.onEvent(event, now);
  }

  private onEvent(event: ComfyEvent, now: number): void {
    const tracker = this.comfy.tracker;
    switch (event.type) {
      case 'status':
        if (event.queue_remaining !== null) this.comfy.queueRemainingIs(event.queue_remaining);
        this.history.statusFrame();
        this.scheduleQueuePoll();
        return;
      case 'logs':
        this.emitLogs(event.entries, 'stream');
        return;
      case 'other':
        return;
      case 'prompt_rejected': {
        tracker.apply(now, event);
        const job = tracker.get(event.prompt_id);
        const reasons = (job?.error?.rejection as { reasons?: string[] } | undefined)?.reasons ?? [];
        this.comfy.addRejection({ at: event.t ?? now, job_id: job?.job_id ?? null, prompt_id: event.prompt_id, reasons, lines: [], source: 'tap' });
        return;
      }
      default:
        break;
    }
    // A prompt podscope has not seen yet: read /queue now for its graph and ids.
    const unknown = 'prompt_id' in event && !tracker.has(event.prompt_id);
    tracker.apply(now, event);
    if (unknown || TERMINAL.has(event.type)) this.scheduleQueuePoll();
  }

  /** Debounced /queue poll after a status frame: a burst of frames costs one request. */
  private scheduleQueuePoll(): void {
    if (this.queueSoon) return;
    this.queueSoon = setTimeout(() => {
      this.queueSoon = null;
      if (!this.signal?.aborted) void this.poll();
    }, 50);
    this.queueSoon.unref();
  }

  describe(): Record<string, unknown> {
    const c = this.comfy;
    return {
      url: this.comfy.url,
      jobs_api: this.history.jobsApi,
      http: { last_ok_at: iso(c.lastHttpOkAt), failing_since: iso(c.httpFailingSince), last_error: c.lastHttpError },
      websocket: {
        connected: c.wsConnected,
        client_id: c.wsClientId,
        connected_at: iso(this.ws.connectedAt),
        last_frame_at: iso(c.lastFrameAt),
        reconnects: c.wsReconnects,
        last_close_reason: c.wsLastCloseReason,
      },
    };
  }
}
