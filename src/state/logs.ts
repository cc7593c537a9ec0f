/**
 * The log buffer: one ring of ComfyUI's and podscope's log records, bounded by entries and bytes,
 * searchable by level, job, source, text and seq cursor, with live subscribers for follow mode.
 */
import { RingBuffer, type RingReader, type RingEntry } from './ring-buffer.js';
import { LEVEL_RANK, type Level } from '../shared/log-levels.js';

export type LogSource = 'comfyui' | 'podscope';

export interface LogRecord {
  ts: number;
  level: Level;
  source: LogSource;
  /** The ComfyUI instance that logged it; null for podscope's own lines. */
  instance: string | null;
  message: string;
  job_id: string | null;
}

export interface LogQuery {
  lines: number;
  level?: Level;
  jobIds?: ReadonlySet<string>;
  source?: LogSource;
  /** Only this ComfyUI instance's lines. */
  instance?: string;
  after?: number;
  q?: string;
}

export type LogSubscriber = (entry: RingEntry<LogRecord>) => void;

const OVERHEAD = 64; // bytes charged per record besides its text

export class LogStore {
  readonly ring: RingBuffer<LogRecord>;
  private readonly subscribers = new Set<LogSubscriber>();
  /** Lines accepted, by source and level (for metrics). */
  readonly counts = new Map<string, number>();

  constructor(maxEntries: number, maxBytes: number) {
    this.ring = new RingBuffer<LogRecord>(maxEntries, maxBytes, (r) => r.message.length * 2 + OVERHEAD);
  }

  append(record: LogRecord): number | undefined {
    const seq = this.ring.push(record);
    const key = `${record.source}\u0000${record.level}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (seq !== undefined && this.subscribers.size > 0) {
      const entry = { seq, value: record, bytes: 0 };
      for (const s of this.subscribers) s(entry);
    }
    return seq;
  }

  subscribe(fn: LogSubscriber): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  matcher(q: Omit<LogQuery, 'lines' | 'after'>): (r: LogRecord) => boolean {
    const minRank = q.level ? LEVEL_RANK[q.level] : 0;
    const needle = q.q?.toLowerCase();
    return (r) =>
      LEVEL_RANK[r.level] >= minRank &&
      (q.source === undefined || r.source === q.source) &&
      (q.instance === undefined || r.instance === q.instance) &&
      (q.jobIds === undefined || (r.job_id !== null && q.jobIds.has(r.job_id))) &&
      (needle === undefined || r.message.toLowerCase().includes(needle));
  }

  /**
   * Charges ComfyUI's unattributed lines logged between `from` and `to` (ComfyUI's clock) to a job:
   * for a prompt too quick for podscope to see running, its /history timestamps say which lines
   * were its own. Walks back from the newest line and stops at the first older than `from`. Only
   * the lines of the job's own instance are charged.
   */
  attribute(jobId: string, instance: string, from: number, to: number, except?: (message: string) => boolean): number {
    let n = 0;
    this.ring.walkBack((r) => {
      if (r.ts < from) return false;
      if (r.source === 'comfyui' && r.instance === instance && r.job_id === null && r.ts <= to && !except?.(r.message)) {
        r.job_id = jobId;
        n++;
      }
      return undefined;
    });
    return n;
  }

  /**
   * Moves the instance's ComfyUI lines charged to `from` since `since` to `to`: a prompt's lines
   * charged under its prompt id while its job id was still unknown (ComfyUI announced it by a
   * broadcast before podscope read its extra_data) follow it once it is known.
   */
  rename(instance: string, from: string, to: string, since: number): number {
    let n = 0;
    this.ring.walkBack((r) => {
      if (r.ts < since) return false;
      if (r.source === 'comfyui' && r.instance === instance && r.job_id === from) {
        r.job_id = to;
        n++;
      }
      return undefined;
    });
    return n;
  }

  /**
   * Charges to a job the earliest of the instance's unattributed ComfyUI lines between `from` and
   * `to` that `which` picks (a prompt's `Prompt executed in` line); true when there was one.
   */
  attributeFirst(jobId: string, instance: string, from: number, to: number, which: (message: string) => boolean): boolean {
    let first: LogRecord | undefined;
    this.ring.walkBack((r) => {
      if (r.ts < from) return false;
      if (r.source === 'comfyui' && r.instance === instance && r.job_id === null && r.ts <= to && which(r.message)) first = r;
      return undefined;
    });
    if (first) first.job_id = jobId;
    return first !== undefined;
  }

  /** The newest `lines` matching records (after the cursor), oldest first. */
  query(q: LogQuery): RingEntry<LogRecord>[] {
    return this.ring.select(this.matcher(q), q.lines, q.after ?? 0);
  }
}

/** The log buffer as readers see it: queries and subscriptions, never an append or an attribution. */
export interface LogReader extends Readonly<Pick<LogStore, 'subscribe' | 'subscriberCount' | 'matcher' | 'query'>> {
  readonly ring: RingReader<LogRecord>;
  readonly counts: ReadonlyMap<string, number>;
}
