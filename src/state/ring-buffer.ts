/**
 * A ring buffer bounded both by entry count and by bytes.
 *
 * Every accepted entry gets a sequence number one above the previous one, so `seq` is a stable
 * cursor for "what is new since I last looked" even after older entries are evicted. Appends are
 * O(1) amortised: each eviction pays for one earlier append.
 */

export interface RingEntry<T> {
  readonly seq: number;
  readonly value: T;
  readonly bytes: number;
}

interface Slot<T> {
  seq: number;
  value: T | undefined;
  bytes: number;
}

export interface RingStats {
  entries: number;
  bytes: number;
  capacity_entries: number;
  capacity_bytes: number;
  /** Entries evicted to make room, plus entries refused for being larger than the byte bound. */
  dropped: number;
  /** The seq the next entry will get; every seq below it was issued. */
  next_seq: number;
}

export class RingBuffer<T> {
  // One object per slot, made by a factory: never a single object shared by every slot.
  private readonly slots: Slot<T>[];
  private head = 0; // index of the oldest entry
  private count = 0;
  private totalBytes = 0;
  private nextSeq = 1;
  private droppedCount = 0;

  constructor(
    readonly maxEntries: number,
    readonly maxBytes: number = Number.POSITIVE_INFINITY,
    private readonly sizeOf: (value: T) => number = () => 0,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be a positive integer');
    if (!(maxBytes > 0)) throw new RangeError('maxBytes must be positive');
    this.slots = Array.from({ length: maxEntries }, () => ({ seq: 0, value: undefined, bytes: 0 }));
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get dropped(): number {
    return this.droppedCount;
  }

  /** Seq of the oldest entry kept, or the next seq when empty. */
  get firstSeq(): number {
    return this.count === 0 ? this.nextSeq : this.slots[this.head]!.seq;
  }

  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /**
   * Appends a value and returns its seq, or undefined when the value alone exceeds the byte bound
   * (it is then counted as dropped; callers truncate what they can keep).
   */
  push(value: T): number | undefined {
    const bytes = this.sizeOf(value);
    if (bytes > this.maxBytes) {
      this.droppedCount++;
      return undefined;
    }
    while (this.count > 0 && (this.count === this.maxEntries || this.totalBytes + bytes > this.maxBytes)) {
      this.evictOldest();
    }
    const index = (this.head + this.count) % this.maxEntries;
    const slot = this.slots[index]!;
    const seq = this.nextSeq++;
    slot.seq = seq;
    slot.value = value;
    slot.bytes = bytes;
    this.count++;
    this.totalBytes += bytes;
    return seq;
  }

  private evictOldest(): void {
    const slot = this.slots[this.head]!;
    this.totalBytes -= slot.bytes;
    slot.value = undefined;
    slot.bytes = 0;
    this.head = (this.head + 1) % this.maxEntries;
    this.count--;
    this.droppedCount++;
  }

  private at(offset: number): Slot<T> {
    return this.slots[(this.head + offset) % this.maxEntries]!;
  }

  private entry(offset: number): RingEntry<T> {
    const s = this.at(offset);
    return { seq: s.seq, value: s.value as T, bytes: s.bytes };
  }

  /** The newest `n` entries, oldest first. */
  newest(n: number): RingEntry<T>[] {
    const take = Math.max(0, Math.min(n, this.count));
    const out: RingEntry<T>[] = [];
    for (let i = this.count - take; i < this.count; i++) out.push(this.entry(i));
    return out;
  }

  /** Entries with seq greater than `seq`, oldest first, at most `limit` of them. */
  after(seq: number, limit: number = Number.POSITIVE_INFINITY): RingEntry<T>[] {
    const start = Math.max(0, Math.min(this.count, Math.floor(seq) + 1 - this.firstSeq));
    const out: RingEntry<T>[] = [];
    for (let i = start; i < this.count && out.length < limit; i++) out.push(this.entry(i));
    return out;
  }

  /**
   * The newest `limit` entries that satisfy `keep` and have seq greater than `afterSeq`, oldest
   * first. Walks from the newest end, so a small `limit` costs little even in a full buffer.
   */
  select(keep: (value: T, seq: number) => boolean, limit: number, afterSeq = 0): RingEntry<T>[] {
    const out: RingEntry<T>[] = [];
    for (let i = this.count - 1; i >= 0 && out.length < limit; i--) {
      const s = this.at(i);
      if (s.seq <= afterSeq) break;
      if (keep(s.value as T, s.seq)) out.push({ seq: s.seq, value: s.value as T, bytes: s.bytes });
    }
    return out.reverse();
  }

  /** Visits entries from the newest back until `visit` returns false. */
  walkBack(visit: (value: T, seq: number) => boolean | void): void {
    for (let i = this.count - 1; i >= 0; i--) {
      const s = this.at(i);
      if (visit(s.value as T, s.seq) === false) return;
    }
  }

  /** Every entry, oldest first. */
  toArray(): RingEntry<T>[] {
    return this.newest(this.count);
  }

  /** The newest entry, if any. */
  last(): RingEntry<T> | undefined {
    return this.count === 0 ? undefined : this.entry(this.count - 1);
  }

  clear(): void {
    while (this.count > 0) {
      this.evictOldest();
      this.droppedCount--; // clearing is not dropping
    }
  }

  stats(): RingStats {
    return {
      entries: this.count,
      bytes: this.totalBytes,
      capacity_entries: this.maxEntries,
      capacity_bytes: Number.isFinite(this.maxBytes) ? this.maxBytes : 0,
      dropped: this.droppedCount,
      next_seq: this.nextSeq,
    };
  }
}

/** A ring buffer as readers see it: entries and fill, never a push or a clear. */
export type RingReader<T> = Readonly<Pick<RingBuffer<T>, 'size' | 'bytes' | 'dropped' | 'firstSeq' | 'lastSeq' | 'newest' | 'after' | 'select' | 'walkBack' | 'toArray' | 'last' | 'stats'>>;
