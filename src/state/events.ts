/**
 * The event journal behind /debug/events: what changed on the pod, each event numbered, kept in a
 * bounded replay buffer so a client that reconnects with `Last-Event-ID` loses nothing still held,
 * and handed to live subscribers as it happens.
 *
 * Ids are `<boot>-<seq>`: the boot part changes when podscope restarts, so a client resuming
 * across a restart is told its events are gone instead of being handed someone else's numbers.
 */
import { randomBytes } from 'node:crypto';
import { RingBuffer, type RingReader, type RingEntry } from './ring-buffer.js';
import { iso } from '../format.js';

export const EVENT_TYPES = [
  'job_queued',
  'job_started',
  'node_started',
  'progress',
  'node_finished',
  'job_finished',
  'rejection',
  'problem_started',
  'problem_changed',
  'problem_ended',
  'gpu',
  'gpu_xid',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface PodEvent {
  type: EventType;
  /** Epoch ms the event was recorded, on podscope's clock. */
  at: number;
  /** The job it is about (platform id and prompt id), for `?job_id=` filters; null otherwise. */
  job_id: string | null;
  prompt_id: string | null;
  /** The ComfyUI instance it is about, for `?instance=`; null for the pod's own (GPU samples, its problems). */
  instance: string | null;
  /**
   * The SSE frame, made once however many clients receive it. It is the event's only copy of its
   * data: a second, as an object, would double what the replay buffer holds.
   */
  frame: string;
}

/** What an event is about: a job (both its ids), a ComfyUI instance, or both. */
export interface EventSubject {
  job_id?: string;
  prompt_id?: string;
  instance?: string;
}

export type EventListener = (entry: RingEntry<PodEvent>) => void;

/** Where a resuming client stands against the buffer. */
export type Resume =
  | { kind: 'fresh' }
  | { kind: 'replay'; entries: RingEntry<PodEvent>[] }
  | { kind: 'gap'; entries: RingEntry<PodEvent>[]; lost: number | null; reason: string };

/** The event streams served: written by the route that serves them, read by metrics. */
export class StreamCounts {
  open = 0;
  dropped = 0;
}

export class EventJournal {
  readonly boot = randomBytes(4).toString('hex');
  readonly ring: RingBuffer<PodEvent>;
  private readonly listeners = new Set<EventListener>();
  /** Events recorded, by type (for metrics). */
  readonly counts = new Map<EventType, number>();
  /** Streams open now, and streams dropped for reading too slowly (kept by the route, read by metrics). */
  readonly streams = new StreamCounts();

  constructor(
    capacity: number,
    maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {
    this.ring = new RingBuffer<PodEvent>(capacity, maxBytes, (e) => e.frame.length * 2 + 200);
  }

  id(seq: number): string {
    return `${this.boot}-${seq}`;
  }

  record(type: EventType, data: Record<string, unknown>, about: EventSubject | null = null): number | undefined {
    const at = this.now();
    const seq = this.ring.lastSeq + 1;
    const job = about?.job_id !== undefined && about.prompt_id !== undefined ? { job_id: about.job_id, prompt_id: about.prompt_id } : null;
    const instance = about?.instance ?? null;
    const body = { type, at: iso(at), ...(instance !== null ? { instance } : {}), ...(job ? { job_id: job.job_id, prompt_id: job.prompt_id } : {}), ...data };
    // Joined rather than concatenated: a template would keep the frame as a rope of ten pieces,
    // which the replay buffer would hold for as long as the event.
    const frame = ['id: ', this.id(seq), '\nevent: ', type, '\ndata: ', JSON.stringify(body), '\n\n'].join('');
    const event: PodEvent = { type, at, job_id: job?.job_id ?? null, prompt_id: job?.prompt_id ?? null, instance, frame };
    const pushed = this.ring.push(event);
    this.counts.set(type, (this.counts.get(type) ?? 0) + 1);
    if (pushed !== undefined) {
      const entry = { seq: pushed, value: event, bytes: 0 };
      for (const l of this.listeners) {
        try {
          l(entry);
        } catch {
          /* a listener's failure is its own */
        }
      }
    }
    return pushed;
  }

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscriberCount(): number {
    return this.listeners.size;
  }

  /** What a client that last saw `lastEventId` (an SSE `Last-Event-ID`) is owed. */
  resume(lastEventId: string | undefined): Resume {
    if (lastEventId === undefined || lastEventId === '') return { kind: 'fresh' };
    const m = /^([0-9a-f]{8})-(\d{1,15})$/.exec(lastEventId);
    const held = this.ring.after(0);
    if (!m) return { kind: 'gap', entries: held, lost: null, reason: `Last-Event-ID ${JSON.stringify(lastEventId.slice(0, 40))} is not an id podscope gave; replaying every event still held` };
    if (m[1] !== this.boot) return { kind: 'gap', entries: held, lost: null, reason: 'podscope restarted since that event; what happened in between is lost; replaying every event still held' };
    const seq = Number(m[2]);
    if (seq > this.ring.lastSeq) return { kind: 'gap', entries: held, lost: null, reason: `event ${lastEventId} was never sent; replaying every event still held` };
    const first = this.ring.firstSeq;
    if (this.ring.size > 0 && seq + 1 < first) {
      return { kind: 'gap', entries: held, lost: first - seq - 1, reason: `${first - seq - 1} events after ${lastEventId} are no longer held (the replay buffer keeps ${this.ring.maxEntries})` };
    }
    return { kind: 'replay', entries: this.ring.after(seq) };
  }
}

/** The journal as readers see it: replay and subscriptions, never an event recorded. */
export interface EventReader extends Readonly<Pick<EventJournal, 'boot' | 'id' | 'subscribe' | 'subscriberCount' | 'resume'>> {
  readonly ring: RingReader<PodEvent>;
  readonly counts: ReadonlyMap<EventType, number>;
  readonly streams: Readonly<StreamCounts>;
}
