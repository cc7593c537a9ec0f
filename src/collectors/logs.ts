/**
 * The log collector: ComfyUI's live log stream and its backlog, the ComfyUI log file when one is
 * configured, and podscope's own records, merged into one buffer. Each line appears once, tracebacks
 * stay whole, every line gets a level and the job it belongs to, and secrets are scrubbed before a
 * line is stored. Lines that mean something (OOM, a rejected prompt, a custom node that failed to
 * import, sampler steps) are passed on to the job tracker and the problem list.
 */
import type { LineSink } from '../logger.js';
import type { Scrubber } from '../secrets.js';
import type { ComfyState } from '../state/comfy.js';
import type { ReadonlyJob } from '../shared/job-types.js';
import type { HealthWriter } from '../state/health.js';
import type { LogRecord, LogSource, LogStore } from '../state/logs.js';
import { LogFileFollower } from '../sources/log-file.js';
import {
  detectLevel,
  importFailure,
  isOomText,
  isPromptEnd,
  LineAssembler,
  parseTqdm,
  RecordGrouper,
  stripAnsi,
  stripManagerPrefix,
  LEVELS,
  type Level,
} from '../comfy-log/normalize.js';
import type { Collector } from './collector.js';

/** Where a ComfyUI line came from: its websocket log stream (and backlog), or its log file. */
export type LogOrigin = 'stream' | 'file';

/**
 * The reasons in ComfyUI's validation block, as sentences: `* CheckpointLoaderSimple 4:` followed
 * by `  - Value not in list: ckpt_name: 'x' not in [...]` reads `CheckpointLoaderSimple 4: Value not
 * in list: ckpt_name: 'x' not in [...]`. Lines without that shape (prompt-level errors) give none.
 */
export function reasonsFromLog(lines: string[]): string[] {
  const out: string[] = [];
  let node: string | null = null;
  for (const line of lines.flatMap((l) => l.split('\n'))) {
    const header = /^\* (.+?):\s*$/.exec(line);
    if (header) {
      node = header[1]!;
      continue;
    }
    const item = /^\s+- (.+)$/.exec(line);
    if (item && node) out.push(`${node}: ${item[1]!.trim()}`.slice(0, 500));
    else if (!item) node = null;
  }
  return [...new Set(out)].slice(0, 20);
}

/**
 * The message of the error dict on an `invalid prompt: {...}` line (Python's repr, so quoted with
 * `'`, or with `"` when the text holds a `'`), for a rejection with no node to blame.
 */
export function promptLevelReason(line: string): string | null {
  const m = /'message': (?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/.exec(line);
  const text = m?.[1] ?? m?.[2];
  return text ? text.slice(0, 500) : null;
}

const MAX_LINE = 16 * 1024;
const REJECTION_TTL_MS = 10 * 60_000;

interface Pipeline {
  assembler: LineAssembler;
  grouper: RecordGrouper;
  lastChunkAt: number;
  /** ComfyUI's time of the chunk being read (stream entries carry it), else null. */
  chunkTs: number | null;
}

/** Lines ComfyUI prints only while it starts: seen fresh while a job runs, they mean ComfyUI restarted. */
const STARTUP_LINE = /^(Starting server$|To see the GUI go to: |Total VRAM \d+ MB, total RAM \d+ MB|ComfyUI version: )/;
/** Lines ComfyUI logs right after a prompt's outcome ("Prompt executed in …") still belong to it. */
const FINISH_SLACK_MS = 50;
/** How far before a job's start its lines charged under the prompt id are looked for, when its job id is learned. */
const RENAME_SLACK_MS = 5000;
/** How long after a prompt's end ComfyUI may print its `Prompt executed in` line (71 ms seen for a first prompt). */
const END_LINE_MS = 2000;
/** Log times (ComfyUI's entry times) and history times are both ComfyUI's clock, read at slightly different moments. */
const CLOCK_GRAIN_MS = 5;
/** How far apart in time two copies of one line (file and stream) may be. */
const SAME_LINE_MS = 3000;
/** How long a line is remembered for matching its copy from the other origin. */
const DEDUPE_RETENTION_MS = 10 * 60_000;

/** ComfyUI's entry time (`datetime.now().isoformat()`: local time, no zone) in ms, or null. */
export function entryTime(t: string): number | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(t)) return null;
  const ms = new Date(t.slice(0, 23)).getTime();
  return Number.isFinite(ms) ? ms : null;
}

export interface LogCollectorOptions {
  /** The instance's ComfyUI log file (COMFYUI_LOG_FILE, or its entry in COMFYUI_LOG_FILES), if any. */
  logFile: string | undefined;
  store: LogStore;
  /** The instance whose lines these are. */
  comfy: ComfyState;
  /** The board as the instance's collectors write it (its scope). */
  health: HealthWriter;
  scrubber: Scrubber;
  now?: () => number;
  /** Told of every ComfyUI record as an origin delivers it, before copies are merged (the conformance suite). */
  onRecord?: (origin: LogOrigin, text: string) => void;
}

export class LogCollector implements Collector {
  readonly name = 'logs';
  private readonly now: () => number;
  private readonly pipelines: Record<LogOrigin, Pipeline>;
  private readonly follower: LogFileFollower | null;
  /** Keys of ComfyUI entries already taken from the stream or the backlog. */
  private readonly seenEntries = new Set<string>();
  /** Recent lines by text with their times, to keep a line that came by both stream and file once. */
  private readonly recent = new Map<string, Array<{ origin: LogOrigin; ts: number; matched: boolean }>>();
  private timer: NodeJS.Timeout | null = null;
  private validation: string[] | null = null;
  private readonly importFailures = new Set<string>();
  /** The job that ran last, for the "Prompt executed in" line that closes its range. */
  private lastJob: { jobId: string; promptId: string; at: number } | null = null;
  /** `got prompt` lines not named yet, oldest first (see nameAnnounced). */
  private announced: LogRecord[] = [];
  /** Prompts a `got prompt` line was given to. */
  private readonly announcedTo = new Set<string>();
  /** Prompts whose `Prompt executed in` line has come: later lines are never theirs. */
  private readonly closed = new Set<string>();
  /** The newest finished jobs' run windows by ComfyUI's clock, for lines that arrive after the outcome. */
  private readonly finishedWindows: Array<{ jobId: string; promptId: string; from: number; to: number; end: number }> = [];

  constructor(private readonly opts: LogCollectorOptions) {
    this.now = opts.now ?? Date.now;
    const pipeline = (): Pipeline => ({ assembler: new LineAssembler(MAX_LINE), grouper: new RecordGrouper(), lastChunkAt: 0, chunkTs: null });
    this.pipelines = { stream: pipeline(), file: pipeline() };
    const path = opts.logFile;
    this.follower = path
      ? new LogFileFollower({
          path,
          events: {
            onChunk: (text) => this.ingest('file', text),
            onReset: () => this.reset('file'),
            onState: (state, detail) => this.fileState(state, detail),
          },
        })
      : null;
    opts.health.declare(this.name);
  }

  /**
   * A step of the finish pipeline. A prompt podscope never saw running (too quick, or another
   * client's without the tap): ComfyUI's own start and end times say which lines were its own,
   * before and after they arrive.
   */
  jobFinished(job: ReadonlyJob): void {
    // Only ComfyUI's own outcome has an end on its clock: a lost job's end is when podscope gave up.
    if (job.status === 'lost' || job.started_timing !== 'comfyui' || job.started_at === null || job.finished_at === null) return;
    const window = { jobId: job.job_id, promptId: job.prompt_id, from: job.started_at, to: job.finished_at + FINISH_SLACK_MS, end: job.finished_at };
    this.renamed(job.prompt_id, job.job_id, job.started_at);
    // Every line of its run but an end line (a prompt has one, found below; a back-to-back
    // neighbour's may fall inside this window) and a `got prompt` (another prompt's POST).
    this.opts.store.attribute(window.jobId, this.opts.comfy.name, window.from, window.to, (m) => isPromptEnd(m) || m === 'got prompt');
    // Its `Prompt executed in` line, printed once it ended (after cleanup, so later than the slack
    // may reach): the first end line nobody has from its end on.
    if (!this.closed.has(job.prompt_id) && this.opts.store.attributeFirst(window.jobId, this.opts.comfy.name, job.finished_at - CLOCK_GRAIN_MS, job.finished_at + END_LINE_MS, isPromptEnd)) this.close(job.prompt_id);
    this.finishedWindows.push(window);
    if (this.finishedWindows.length > 8) this.finishedWindows.shift();
  }

  start(): void {
    this.follower?.start();
    this.timer = setInterval(() => this.housekeeping(), 500);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.follower?.stop();
  }

  /** Entries from ComfyUI's `logs` frames (stream) or /internal/logs/raw (backlog). */
  ingestComfy(entries: Array<{ t: string; m: string }>): void {
    for (const e of entries) {
      const key = `${e.t}\u0000${e.m}`;
      if (this.seenEntries.has(key)) continue;
      this.seenEntries.add(key);
      if (this.seenEntries.size > 4000) this.seenEntries.delete(this.seenEntries.values().next().value!);
      this.ingest('stream', e.m, entryTime(e.t));
    }
  }

  /** A sink for podscope's own serialized pino records (access lines stay on stdout). */
  podscopeSink(): LineSink {
    return {
      acceptsAccess: false,
      write: (line: string) => {
        let rec: { level?: string; message?: string; timestamp?: string; job_id?: string; data?: unknown };
        try {
          rec = JSON.parse(line);
        } catch {
          return;
        }
        const level: Level = LEVELS.includes(rec.level as Level) ? (rec.level as Level) : 'info';
        const message = typeof rec.message === 'string' ? rec.message : '';
        const ts = rec.timestamp ? Date.parse(rec.timestamp) : this.now();
        this.store({ ts: Number.isFinite(ts) ? ts : this.now(), level, source: 'podscope', instance: null, message: message.slice(0, MAX_LINE), job_id: typeof rec.job_id === 'string' ? rec.job_id : null });
      },
    };
  }

  private ingest(origin: LogOrigin, chunk: string, ts: number | null = null): void {
    const p = this.pipelines[origin];
    p.lastChunkAt = this.now();
    p.chunkTs = ts;
    // A stream entry is one write: a write that does not redraw an open bar ends the bar's line.
    if (origin === 'stream' && !chunk.startsWith('\r') && p.assembler.pending && parseTqdm(p.assembler.pending)) {
      const bar = p.assembler.flush();
      if (bar) this.line(origin, bar);
    }
    for (const line of p.assembler.push(chunk)) this.line(origin, line);
    // A bar being redrawn reports its step before its line ends.
    const bar = parseTqdm(stripAnsi(p.assembler.pending || p.assembler.lastRewritten || ''));
    if (bar && this.attributableJob(ts ?? p.lastChunkAt)) this.opts.comfy.tracker.applyLogActivity(this.now(), bar);
  }

  private reset(origin: LogOrigin): void {
    const p = this.pipelines[origin];
    const rest = p.assembler.flush();
    if (rest) this.line(origin, rest);
    const g = p.grouper.flush();
    if (g) this.record(origin, g, null);
  }

  private line(origin: LogOrigin, raw: string): void {
    let text = stripAnsi(raw);
    let ts: number | null = null;
    if (origin === 'file') ({ ts, text } = stripManagerPrefix(text));
    // In a file, a line written after an unfinished bar lands on the bar's line: split them.
    const glued = /^(.*?\d+\/\d+ \[[^\]]*\])(\S.*)$/.exec(text);
    const parts = glued && parseTqdm(glued[1]!) ? [glued[1]!, glued[2]!] : [text];
    for (const part of parts) for (const rec of this.pipelines[origin].grouper.push(part)) this.record(origin, rec, ts);
  }

  private record(origin: LogOrigin, text: string, ts: number | null): void {
    if (text.trim() === '') return;
    const now = this.now();
    const at = ts ?? this.pipelines[origin].chunkTs ?? now;
    this.opts.onRecord?.(origin, text);
    if (this.duplicate(origin, text, at)) return;
    const { level, text: body } = detectLevel(text);
    this.restartSignal(body, at, now);
    const job = this.jobFor(body, at, now);
    const bar = parseTqdm(body);
    if (job) this.opts.comfy.tracker.applyLogActivity(now, bar ?? undefined);
    if (job && isPromptEnd(body)) this.close(job.promptId);
    this.signals(body, job);
    const stored = this.store({ ts: at, level, source: 'comfyui', instance: this.opts.comfy.name, message: body, job_id: job?.jobId ?? null });
    if (body === 'got prompt' && now - at < 60_000) {
      this.announced.push(stored);
      if (this.announced.length > 32) this.announced.shift();
    }
  }

  private store(r: LogRecord): LogRecord {
    const message = this.opts.scrubber.needsScrub(r.message) ? this.opts.scrubber.scrub(r.message) : r.message;
    const record = { ...r, message };
    this.opts.store.append(record);
    return record;
  }

  /**
   * A `got prompt` line comes before the tap reports the prompt it announced: once the tap has,
   * the line goes to the prompt ComfyUI accepted at that moment (its `queued_at`, on the same
   * clock, within 100 ms). Without the tap nothing says which prompt a line announced: it stays
   * unnamed. Lines wait at most a minute.
   */
  private nameAnnounced(now: number): void {
    if (this.announced.length === 0) return;
    const queued = this.opts.comfy.tracker.all().filter((j) => j.queued_at !== null && !this.announcedTo.has(j.prompt_id));
    this.announced = this.announced.filter((line) => {
      if (line.job_id !== null) return false;
      let best: (typeof queued)[number] | undefined;
      for (const j of queued) if (Math.abs(j.queued_at! - line.ts) <= 100 && (!best || Math.abs(j.queued_at! - line.ts) < Math.abs(best.queued_at! - line.ts))) best = j;
      if (best) {
        line.job_id = best.job_id;
        this.announcedTo.add(best.prompt_id);
        if (this.announcedTo.size > 256) this.announcedTo.delete(this.announcedTo.values().next().value!);
        queued.splice(queued.indexOf(best), 1);
        return false;
      }
      return now - line.ts < 60_000;
    });
  }

  /**
   * True when the same line already came by the other way (stream versus file) at about the same
   * time by ComfyUI's clock: a backlog replayed after a reconnect carries the entries' own times,
   * so it matches the file lines written then, however long ago they arrived.
   */
  private duplicate(origin: LogOrigin, text: string, ts: number): boolean {
    if (!this.follower) return false;
    const copies = this.recent.get(text) ?? [];
    const twin = copies.find((c) => c.origin !== origin && !c.matched && Math.abs(c.ts - ts) <= SAME_LINE_MS);
    if (twin) {
      twin.matched = true;
      return true;
    }
    copies.push({ origin, ts, matched: false });
    if (copies.length > 16) copies.shift();
    this.recent.delete(text);
    this.recent.set(text, copies);
    if (this.recent.size > 20_000) this.recent.delete(this.recent.keys().next().value!);
    return false;
  }

  /**
   * ComfyUI's start-up lines, fresh (from the file as they are written, or a live stream entry),
   * while jobs are unfinished: ComfyUI restarted under them, and they are lost now rather than at
   * the next poll.
   */
  private restartSignal(text: string, at: number, now: number): void {
    if (!STARTUP_LINE.test(text) || now - at > 5000) return;
    const tracker = this.opts.comfy.tracker;
    if (!tracker.unfinished().some((j) => j.first_seen_at < at)) return;
    tracker.loseUnfinished(now, 'ComfyUI restarted while this job was queued or running (its start-up lines appeared in the log); the job vanished without an outcome');
  }

  /**
   * The job a line belongs to: the running one, while ComfyUI is known to be up and has been seen
   * running it since it last went away (so a restarted ComfyUI's lines are never charged to a job
   * of the one that died).
   */
  private attributableJob(at: number) {
    const { comfy } = this.opts;
    const running = comfy.tracker.running();
    if (!running || !comfy.alive()) return undefined;
    // ComfyUI runs one prompt at a time and ends each with its own `Prompt executed in` line: once
    // that line came, what follows is not the prompt's, though podscope may not have seen it end.
    if (this.closed.has(running.prompt_id)) return undefined;
    const down = comfy.lastDownAt;
    return down === null || at < down || (running.seen_running_at ?? 0) > down ? running : undefined;
  }

  /** Marks a prompt ended by its own `Prompt executed in` line (the newest 64 kept). */
  private close(promptId: string): void {
    this.closed.add(promptId);
    if (this.closed.size > 64) this.closed.delete(this.closed.values().next().value!);
  }

  /**
   * The finished job a line belongs to, by ComfyUI's clock. A `Prompt executed in` line is the
   * one that ended last before it (and has no end line yet), as ComfyUI prints it after each
   * prompt; another line is the one whose run holds it (the latest started, where back-to-back
   * runs touch), else one that ended just before it.
   */
  /** Lines charged to a prompt under its prompt id, before its job id was known, follow it to the job id. */
  private renamed(promptId: string, jobId: string, since: number): void {
    if (jobId !== promptId) this.opts.store.rename(this.opts.comfy.name, promptId, jobId, since - RENAME_SLACK_MS);
  }

  private windowFor(text: string, at: number) {
    const ws = this.finishedWindows;
    if (isPromptEnd(text)) {
      let best: (typeof ws)[number] | undefined;
      for (const w of ws) if (!this.closed.has(w.promptId) && w.end <= at + CLOCK_GRAIN_MS && at - w.end <= END_LINE_MS && (!best || w.end > best.end)) best = w;
      return best;
    }
    let inside: (typeof ws)[number] | undefined;
    for (const w of ws) if (at >= w.from && at <= w.end && (!inside || w.from > inside.from)) inside = w;
    return inside ?? ws.find((w) => at >= w.from && at <= w.to);
  }

  private jobFor(text: string, at: number, now: number): { jobId: string; promptId: string } | null {
    // `got prompt` is printed when a prompt is POSTed, not by the one running: it is the new
    // prompt's, which podscope does not know yet (the tap reports it just after). Named later.
    if (text === 'got prompt') return null;
    const running = this.attributableJob(at);
    if (running) {
      if (this.lastJob?.promptId === running.prompt_id && this.lastJob.jobId !== running.job_id) this.renamed(running.prompt_id, running.job_id, running.started_at ?? running.first_seen_at);
      this.lastJob = { jobId: running.job_id, promptId: running.prompt_id, at: now };
      return { jobId: running.job_id, promptId: running.prompt_id };
    }
    const window = this.windowFor(text, at);
    if (window) return { jobId: window.jobId, promptId: window.promptId };
    // "Prompt executed in" may arrive just after podscope saw the job end: it still closes that job's range.
    if (isPromptEnd(text) && this.lastJob && !this.closed.has(this.lastJob.promptId) && now - this.lastJob.at < 10_000) {
      const last = this.lastJob;
      this.lastJob = null;
      return { jobId: last.jobId, promptId: last.promptId };
    }
    return null;
  }

  private signals(text: string, job: { jobId: string; promptId: string } | null): void {
    const { comfy, health } = this.opts;
    if (job && isOomText(text)) {
      const j = comfy.tracker.get(job.promptId);
      const lines = Array.isArray(j?.error?.oom_log_lines) ? (j!.error!.oom_log_lines as string[]) : [];
      comfy.tracker.annotateError(job.promptId, { oom: true, oom_log_lines: [...lines, this.opts.scrubber.scrub(text).slice(0, 2000)].slice(-5) });
    }
    if (isPromptEnd(text)) this.lastJob = null;
    const failed = importFailure(text);
    if (failed) {
      this.importFailures.add(failed);
      health.raise('comfyui', 'CUSTOM_NODE_IMPORT_FAILED', `custom nodes failed to import at start-up: ${[...this.importFailures].join(', ')}`, 'warning');
    }
    // A validation failure block runs from "Failed to validate prompt for output" to "invalid prompt:".
    if (/^Failed to validate prompt for output/.test(text)) {
      this.validation = [...(this.validation ?? []), text].slice(-50);
    } else if (this.validation && !/^invalid prompt:/.test(text)) {
      this.validation.push(text);
      if (this.validation.length > 50) this.validation.shift();
    }
    if (/^invalid prompt:/.test(text)) {
      const lines = [...(this.validation ?? []), text].map((l) => this.opts.scrubber.scrub(l));
      this.validation = null;
      const fromNodes = reasonsFromLog(lines);
      const promptLevel = fromNodes.length === 0 ? promptLevelReason(lines.at(-1)!) : null;
      const reasons = promptLevel ? [promptLevel] : fromNodes;
      const summary = reasons.length > 0 ? reasons.join('; ') : text.replace(/^invalid prompt:\s*/, '').slice(0, 300);
      comfy.addRejection({ at: this.now(), job_id: null, prompt_id: null, reasons, lines, source: 'log' });
      health.raise('comfyui', 'PROMPT_REJECTED', `ComfyUI rejected a prompt (HTTP 400, never queued): ${summary.slice(0, 500)}`, 'warning');
    }
  }

  private fileState(state: string, detail: string): void {
    const { health } = this.opts;
    const path = this.opts.logFile;
    health.clear('logs');
    if (state === 'missing') health.raise('logs', 'LOG_FILE_MISSING', `COMFYUI_LOG_FILE ${path} does not exist (yet); podscope follows it once it appears`, 'warning');
    else if (state === 'not-a-file') health.raise('logs', 'LOG_FILE_NOT_A_FILE', `COMFYUI_LOG_FILE ${path}: ${detail}`, 'warning');
    else if (state === 'unreadable') health.raise('logs', 'LOG_FILE_UNREADABLE', `COMFYUI_LOG_FILE ${path} cannot be read: ${detail}`, 'warning');
    health.record(this.name, state === 'following' ? { ok: true, durationMs: 0 } : { ok: false, durationMs: 0, code: state, message: detail });
  }

  /** Flushes lines left open by an idle writer (not redrawn bars), ends stale rejections and dedupe entries. */
  private housekeeping(): void {
    const now = this.now();
    this.nameAnnounced(now);
    for (const origin of ['stream', 'file'] as const) {
      const p = this.pipelines[origin];
      if (now - p.lastChunkAt < 1000) continue;
      const pending = p.assembler.pending;
      if (pending && !parseTqdm(pending)) {
        const line = p.assembler.flush();
        if (line) this.line(origin, line);
      }
      if (p.grouper.open) {
        const g = p.grouper.flush();
        if (g) this.record(origin, g, null);
      }
    }
    for (const [k, copies] of this.recent) {
      if (now - copies[copies.length - 1]!.ts <= DEDUPE_RETENTION_MS) break; // kept in insertion order
      this.recent.delete(k);
    }
    if (this.opts.comfy.pruneRejections(now, REJECTION_TTL_MS) === 0) this.opts.health.clear('comfyui', 'PROMPT_REJECTED');
  }

  describe(): Record<string, unknown> {
    return { file: this.follower?.describe() ?? null, stream_subscribers: this.opts.store.subscriberCount };
  }

  /** Sources as the `source` filter names them. */
  static readonly SOURCES: readonly LogSource[] = ['comfyui', 'podscope'];
}
