/**
 * The ComfyUI collector: follows ComfyUI through its HTTP API and its websocket and feeds the job
 * tracker. It never connects under another client's id; it reconstructs other clients' jobs from
 * /queue, /history and what ComfyUI broadcasts, and takes full detail from the tap node when it
 * is installed.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { PodState } from '../state/pod.js';
import type { ComfyState } from '../state/comfy.js';
import { isRecord } from '../state/jobs.js';
import { decodeFrame, type ComfyEvent } from '../sources/comfy-events.js';
import { applyHistoryEntryAnswer, applyHistoryListAnswer, applyQueueAnswer, type RawInput } from './comfy-inputs.js';

export type { RawInput } from './comfy-inputs.js';
import { httpJson, type HttpResult } from '../sources/http-json.js';
import { ComfyWsClient, type ComfyFrame } from '../sources/comfy-ws.js';
import { sleep, tracked, type Collector } from './collector.js';
import { iso } from '../format.js';

const TERMINAL = new Set(['execution_success', 'execution_error', 'execution_interrupted']);

export interface ComfyCollectorOptions {
  config: Config;
  state: PodState;
  /** What it writes: connection state, jobs, queue (composed in main.ts). */
  comfy: ComfyState;
  logger: Logger;
  now?: () => number;
  /** Receives every frame and HTTP answer from ComfyUI before it is decoded (recordings). */
  onRaw?: (raw: RawInput) => void;
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
  /** Set when HTTP failed, so the next success reconciles as after a restart. */
  private recovering = false;
  private signal: AbortSignal | null = null;
  /** Status frames since /history was last read: each prompt makes at least three. */
  private statusFramesSinceHistory = 0;
  private historyBaselined = false;
  /** Whether ComfyUI serves the Jobs API (null until probed; probed again after a restart). */
  private jobsApi: boolean | null = null;
  private readonly logListeners: LogEntriesListener[] = [];
  private readonly restartListeners: Array<(at: number) => void> = [];

  constructor(private readonly opts: ComfyCollectorOptions) {
    const { config, state } = opts;
    this.now = opts.now ?? state.now;
    this.comfy = opts.comfy;
    state.health.declare(this.name);
    this.comfy.tracker.onFinish((job) => {
      state.health.clear('comfyui', `STALLED`);
      const level = job.status === 'success' ? 'info' : 'warn';
      opts.logger[level](
        { job_id: job.job_id, data: { prompt_id: job.prompt_id, status: job.status, error: job.error?.exception_type ?? null, lost_reason: job.lost_reason } },
        `job ${job.job_id} finished: ${job.status}`,
      );
    });
    this.ws = new ComfyWsClient({
      url: config.comfyuiUrl,
      pingIntervalMs: config.wsPingMs,
      maxPayloadBytes: config.wsMaxFrameBytes,
      events: {
        onOpen: (clientId) => this.onOpen(clientId),
        onFrame: (frame) => this.onFrame(frame),
        onClose: (reason) => this.onClose(reason),
      },
    });
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
    return `${this.opts.config.comfyuiUrl}${path}`;
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
          await tracked(this.opts.state.health, this.name, () => this.pollOnce());
          this.checkLiveness();
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
    const { health } = this.opts.state;
    const now = this.now();
    const q = await this.get('/queue', 64 * 1024 * 1024);
    if (!q.ok) return this.httpFailed(`/queue: ${q.message}`, q.code);
    const left = applyQueueAnswer(this.comfy.tracker, now, q.body);
    if (!left) return this.httpFailed('/queue answered, but not with queue_running and queue_pending lists', 'COMFYUI_BAD_ANSWER');
    const restarted = this.recovering;
    this.recovering = false;
    this.httpOk(now);
    if (restarted) {
      this.jobsApi = null; // a restarted ComfyUI may be another version
      for (const l of this.restartListeners) l(now);
    }
    await this.resolveLeft(left, restarted);
    await this.discoverFromHistory();
    await this.completeFromHistory();
    if (now - this.lastStatsAt >= 10_000 || this.comfy.systemStatsRaw === null) await this.pollSystemStats();
    health.clear('comfyui', 'COMFYUI_BAD_ANSWER');
    return { ok: true };
  }

  /** Asks /history for prompts that left the queue; those it does not know are missing (lost after two looks, or at once after a restart). */
  private async resolveLeft(left: string[], restarted: boolean): Promise<void> {
    for (const id of left.slice(0, 50)) {
      const h = await this.get(`/history/${encodeURIComponent(id)}`, 64 * 1024 * 1024);
      if (!h.ok) return;
      applyHistoryEntryAnswer(this.comfy.tracker, this.now(), id, h.body, { restarted });
    }
  }

  /**
   * Jobs whose outcome came from frames or the tap still get ComfyUI's record: it carries the
   * graph and extra_data (so the job id) when the prompt was too quick to be seen in the queue,
   * and the outputs.
   */
  private async completeFromHistory(): Promise<void> {
    for (const id of this.comfy.tracker.withoutHistory(20)) {
      const h = await this.get(`/history/${encodeURIComponent(id)}`, 64 * 1024 * 1024);
      if (!h.ok) return;
      applyHistoryEntryAnswer(this.comfy.tracker, this.now(), id, h.body);
    }
  }

  /**
   * Reads the newest /history entries for prompts podscope never saw in the queue (a cached
   * resubmit finishes in milliseconds, between two looks). The first read after start-up imports
   * recent jobs without counting them in metrics; later reads happen only after queue activity.
   */
  private async discoverFromHistory(): Promise<void> {
    const { config } = this.opts;
    const frames = this.statusFramesSinceHistory;
    if (this.historyBaselined && this.comfy.wsConnected && frames === 0) return;
    // Each prompt makes at least three status frames, so `frames + 2` entries cover every prompt that
    // can have finished since the last look, however many a burst brings (up to the history kept).
    const n = !this.historyBaselined ? config.jobHistory : Math.min(config.jobHistory, this.comfy.wsConnected ? Math.max(4, frames + 2) : Math.max(16, frames + 2));
    this.statusFramesSinceHistory = 0;
    const silent = !this.historyBaselined;
    if (this.jobsApi !== false && (await this.discoverFromJobsApi(n, silent))) {
      this.historyBaselined = true;
      return;
    }
    const h = await this.get(`/history?max_items=${n}`, 64 * 1024 * 1024);
    if (!h.ok) return;
    applyHistoryListAnswer(this.comfy.tracker, this.now(), h.body, silent);
    this.historyBaselined = true;
  }

  /**
   * With ComfyUI's Jobs API, the list of finished prompts is light (no graphs); only the ones
   * podscope does not know yet are then read from /history/{id}. Returns false when there is no
   * such API (ComfyUI before it), so /history is used instead.
   */
  private async discoverFromJobsApi(n: number, silent: boolean): Promise<boolean> {
    const r = await this.get(`/api/jobs?status=completed,failed,cancelled&sort_by=created_at&sort_order=desc&limit=${n}`, 16 * 1024 * 1024);
    const jobs = r.ok && isRecord(r.body) && Array.isArray(r.body.jobs) ? r.body.jobs : null;
    if (!jobs) {
      if (this.jobsApi === null || (!r.ok && r.code === 'HTTP_STATUS')) this.jobsApi = false;
      return false;
    }
    this.jobsApi = true;
    const ids = jobs.map((j) => (isRecord(j) && typeof j.id === 'string' ? j.id : null)).filter((id): id is string => id !== null && !this.comfy.tracker.isFinished(id));
    for (const id of ids) {
      const h = await this.get(`/history/${encodeURIComponent(id)}`, 64 * 1024 * 1024);
      if (h.ok) applyHistoryEntryAnswer(this.comfy.tracker, this.now(), id, h.body, { silent });
    }
    return true;
  }

  private async pollSystemStats(): Promise<void> {
    const r = await this.get('/system_stats', 4 * 1024 * 1024);
    this.lastStatsAt = this.now();
    if (!r.ok || !isRecord(r.body)) return;
    this.comfy.systemStatsRaw = r.body;
    this.comfy.systemStatsAt = this.now();
    const system = isRecord(r.body.system) ? r.body.system : {};
    if (typeof system.comfyui_version === 'string') this.comfy.version = system.comfyui_version;
    // The tap node answers here when it is installed.
    const tap = await this.get('/podscope/tap', 64 * 1024);
    const info = tap.ok && isRecord(tap.body) && tap.body.tap === true ? tap.body : null;
    this.comfy.tap = info !== null;
    this.comfy.tapVersion = typeof info?.version === 'string' ? info.version : null;
    this.comfy.argv = Array.isArray(system.argv) ? system.argv.filter((a): a is string => typeof a === 'string').slice(0, 200) : null;
  }

  private httpOk(now: number): void {
    const { health } = this.opts.state;
    if (this.comfy.reachedAt === null) {
      this.comfy.reachedAt = now;
      this.opts.logger.info(`ComfyUI reached at ${this.opts.config.comfyuiUrl}`);
    }
    this.comfy.lastHttpOkAt = now;
    this.comfy.lastHttpError = null;
    this.comfy.httpFailingSince = null;
    this.comfy.refusedSince = null;
    health.clear('comfyui', 'COMFYUI_UNREACHABLE');
  }

  private httpFailed(message: string, code: string): { ok: false; code: string; message: string } {
    const { health } = this.opts.state;
    const now = this.now();
    const first = this.comfy.httpFailingSince === null;
    this.comfy.httpFailingSince ??= now;
    if (first) this.comfy.lastDownAt = now;
    this.comfy.lastHttpError = message;
    if (code === 'HTTP_UNREACHABLE') this.comfy.refusedSince ??= now;
    else this.comfy.refusedSince = null;
    if (this.comfy.reachedAt !== null) this.recovering = true;
    const text = `ComfyUI at ${this.opts.config.comfyuiUrl} does not answer: ${message}`;
    if (code === 'COMFYUI_BAD_ANSWER') health.raise('comfyui', code, `ComfyUI answered ${message}`);
    else health.raise('comfyui', 'COMFYUI_UNREACHABLE', text, this.comfy.reachedAt === null ? 'warning' : 'error');
    this.loseJobsOfGoneComfy(now);
    return { ok: false, code, message };
  }

  /**
   * A ComfyUI whose port refuses connections and whose websocket is closed has exited: its jobs
   * will not finish. They become lost after PODSCOPE_COMFYUI_GONE_S (a restart that comes back
   * sooner loses them at once). One that merely does not answer in time may be busy: its jobs
   * are lost only after the stall limit.
   */
  private loseJobsOfGoneComfy(now: number): void {
    const c = this.comfy;
    if (c.reachedAt === null || c.httpFailingSince === null || c.tracker.unfinished().length === 0) return;
    const { comfyuiGoneS, stallS } = this.opts.config;
    const refused = c.refusedSince !== null && !c.wsConnected && now - c.refusedSince >= comfyuiGoneS * 1000;
    const silent = now - c.httpFailingSince > stallS * 1000;
    if (!refused && !silent) return;
    const since = new Date(c.httpFailingSince).toISOString();
    const reason = refused
      ? `ComfyUI stopped while this job was queued or running: its port has refused connections since ${since} and its websocket is closed`
      : `ComfyUI has not answered since ${since} (${c.lastHttpError ?? 'no answer'}), longer than PODSCOPE_STALL_S`;
    for (const job of c.tracker.loseUnfinished(now, reason)) this.opts.logger.warn({ job_id: job.job_id, data: { prompt_id: job.prompt_id } }, `job ${job.job_id} lost: ${reason}`);
  }

  private onOpen(clientId: string): void {
    this.comfy.wsConnected = true;
    this.comfy.wsEverConnected = true;
    this.comfy.wsDownSince = null;
    this.comfy.wsClientId = clientId;
    this.opts.state.health.clear('websocket');
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
    const wasConnected = this.comfy.wsConnected;
    this.comfy.wsConnected = false;
    this.comfy.wsDownSince ??= this.now();
    this.comfy.wsLastCloseReason = reason;
    if (wasConnected) {
      this.comfy.lastDownAt = this.now();
      this.comfy.wsReconnects++;
      this.opts.logger.warn({ data: { reason } }, `websocket to ComfyUI closed: ${reason}`);
      // A closed socket may mean ComfyUI went away: look now rather than at the next idle poll.
      if (!this.signal?.aborted) void this.poll();
    }
  }

  private onFrame(frame: ComfyFrame): void {
    const now = this.now();
    this.comfy.lastFrameAt = now;
    const tracker = this.comfy.tracker;
    if (frame.kind === 'malformed') {
      this.comfy.malformedFrames++;
      return;
    }
    if (frame.kind === 'binary') {
      this.comfy.binaryFrames++;
      if (frame.preview) {
        const meta = frame.preview.meta;
        const promptId = typeof meta?.prompt_id === 'string' ? meta.prompt_id : (tracker.running()?.prompt_id ?? null);
        this.comfy.setPreview({ prompt_id: promptId, node_id: typeof meta?.node_id === 'string' ? meta.node_id : null, format: frame.preview.format, bytes: frame.preview.image.length, at: now });
      }
      if (frame.text) tracker.applyLogActivity(now);
      return;
    }
    if (this.opts.onRaw && frame.type !== 'logs') this.opts.onRaw({ t: now, kind: 'frame', type: frame.type, data: frame.data });
    this.comfy.countFrame(frame.type);
    const event = decodeFrame(frame.type, frame.data);
    if (event) this.onEvent(event, now);
  }

  private onEvent(event: ComfyEvent, now: number): void {
    const tracker = this.comfy.tracker;
    switch (event.type) {
      case 'status':
        if (event.queue_remaining !== null) this.comfy.queueRemaining = event.queue_remaining;
        this.statusFramesSinceHistory++;
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

  /** A websocket down while HTTP answers, and a running job with no sign of life, become problems. */
  private checkLiveness(): void {
    const { health, config } = this.opts.state;
    const now = this.now();
    // HTTP answers but the websocket stays down: live progress and log lines are missing.
    const down = this.comfy.wsDownSince;
    if (this.comfy.wsEverConnected && down !== null && this.comfy.httpFailingSince === null && now - down > 2 * config.wsPingMs) {
      health.raise('websocket', 'WEBSOCKET_DOWN', `the websocket to ComfyUI has been down for ${Math.round((now - down) / 1000)} s while HTTP answers: ${this.comfy.wsLastCloseReason ?? 'closed'}`);
    } else if (this.comfy.wsConnected) {
      health.clear('websocket', 'WEBSOCKET_DOWN');
    }
    const job = this.comfy.tracker.running();
    if (!job || now - job.last_activity < config.stallS * 1000) {
      health.clear('comfyui', 'STALLED');
      return;
    }
    const node = job.current_node ? job.nodes.get(job.current_node) : undefined;
    const where = node ? `node ${node.node_id} (${node.class_type})` : 'an unknown node';
    const cause = this.comfy.httpFailingSince !== null ? 'ComfyUI does not answer over HTTP' : !this.comfy.wsConnected ? 'the websocket is down' : 'no progress, log line or queue change';
    health.raise('comfyui', 'STALLED', `job ${job.job_id} has shown no sign of life for ${Math.round((now - job.last_activity) / 1000)} s at ${where}: ${cause}`);
  }

  describe(): Record<string, unknown> {
    const c = this.comfy;
    return {
      url: this.opts.config.comfyuiUrl,
      jobs_api: this.jobsApi,
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
