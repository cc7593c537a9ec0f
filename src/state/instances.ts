/**
 * The ComfyUI instances of the pod: one {@link ComfyState} each, in the order they were configured
 * (or discovered). Routes look a job up here whichever instance runs it, and filter by name.
 */
import type { ComfyReader, ComfyState } from './comfy.js';
import type { ReadonlyJob } from '../shared/job-types.js';

/** A job and the instance that runs it. */
export interface Found<C> {
  comfy: C;
  job: ReadonlyJob;
}

/** The instances as readers see them. */
export interface InstancesReader {
  /** Every instance, in order; never empty. */
  readonly all: readonly ComfyReader[];
  /** The first instance: what the single-instance fields of /debug/status describe. */
  readonly first: ComfyReader;
  byName(name: string): ComfyReader | undefined;
  names(): string[];
  /** The job with this platform job id or prompt id on any instance (the newest, should two carry it). */
  findJob(id: string): Found<ComfyReader> | undefined;
  /** The running job that started first, else the newest job of any instance. */
  latestJob(): Found<ComfyReader> | undefined;
  /** Every running job, the one that started first first. */
  runningJobs(): Found<ComfyReader>[];
  /** A number that changes whenever any instance's jobs change (for cached views). */
  jobsVersion(): number;
}

/** How recent a job is, for picking the latest: its last moment known. */
const recency = (j: ReadonlyJob) => Math.max(j.finished_at ?? 0, j.started_at ?? 0, j.first_seen_at);

export class Instances implements InstancesReader {
  private readonly list: ComfyState[];
  private readonly addedListeners: Array<(comfy: ComfyState) => void> = [];

  constructor(first: ComfyState, ...more: ComfyState[]) {
    this.list = [first, ...more];
  }

  get all(): readonly ComfyState[] {
    return this.list;
  }

  get first(): ComfyState {
    return this.list[0]!;
  }

  byName(name: string): ComfyState | undefined {
    return this.list.find((c) => c.name === name);
  }

  names(): string[] {
    return this.list.map((c) => c.name);
  }

  /** Follows one more instance (found by discovery); listeners start its collectors. */
  add(comfy: ComfyState): void {
    if (this.byName(comfy.name)) throw new Error(`an instance named ${comfy.name} is already followed`);
    this.list.push(comfy);
    for (const l of this.addedListeners) l(comfy);
  }

  onAdded(listener: (comfy: ComfyState) => void): void {
    this.addedListeners.push(listener);
  }

  findJob(id: string): Found<ComfyState> | undefined {
    let best: Found<ComfyState> | undefined;
    for (const comfy of this.list) {
      const job = comfy.tracker.get(id);
      if (job && (!best || job.first_seen_at > best.job.first_seen_at)) best = { comfy, job };
    }
    return best;
  }

  latestJob(): Found<ComfyState> | undefined {
    const running = this.runningJobs()[0];
    if (running) return running;
    let best: Found<ComfyState> | undefined;
    for (const comfy of this.list) {
      const job = comfy.tracker.latest();
      if (job && (!best || recency(job) >= recency(best.job))) best = { comfy, job };
    }
    return best;
  }

  runningJobs(): Found<ComfyState>[] {
    const out: Found<ComfyState>[] = [];
    for (const comfy of this.list) {
      const job = comfy.tracker.running();
      if (job) out.push({ comfy, job });
    }
    return out.sort((a, b) => (a.job.started_at ?? a.job.first_seen_at) - (b.job.started_at ?? b.job.first_seen_at));
  }

  jobsVersion(): number {
    let v = 0;
    for (const c of this.list) v += c.tracker.version;
    return v + this.list.length * 1e9;
  }
}
