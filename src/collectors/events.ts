/**
 * Turns what changes on the pod into /debug/events: jobs queued and started, nodes started and
 * finished, step progress (at most a few events a second per job), jobs finished with their
 * outcome, rejections, problems, and one GPU sample per sampling period.
 *
 * Job events come from comparing each unfinished job with what was last said about it, after any
 * change the tracker reports, so they say exactly what /debug/workflow shows whichever source
 * (frames, the tap, /queue, /history, the log) moved the job.
 */
import type { Collector } from './collector.js';
import type { ComfyState, Rejection } from '../state/comfy.js';
import type { Instances } from '../state/instances.js';
import type { EventJournal } from '../state/events.js';
import type { GpuReader } from '../state/gpu.js';
import type { HealthBoard, ProblemChange } from '../state/health.js';
import type { NodeStatus, ReadonlyJob } from '../shared/job-types.js';
import { iso, round } from '../format.js';
import type { XidEvent } from '../state/gpu.js';
import { xidMeaning, xidSeverity } from '../shared/xid-catalog.js';

/** Least time between two progress events of one job. */
export const PROGRESS_EVERY_MS = 250;

/**
 * How long a job's events wait for its extra_data, which names its platform job id, before they
 * go out under its prompt id: seen without the tap, a prompt may show in a broadcast frame before
 * the next /queue poll reads who sent it.
 */
export const IDENTITY_WAIT_MS = 5000;

/** How long a node's end, seen in a frame, waits for the tap's report of ComfyUI's time for it. */
export const TAP_END_WAIT_MS = 1000;

interface SeenNode {
  status: NodeStatus;
  steps: number | null;
}

interface SeenJob {
  started: boolean;
  nodes: Map<string, SeenNode>;
  progressAt: number;
  /** A step moved since the last progress event; sent when PROGRESS_EVERY_MS has passed. */
  progressOwed: boolean;
}

export interface EventCollectorOptions {
  journal: EventJournal;
  /** Every ComfyUI instance; one added later is followed from then on. */
  instances: Instances;
  health: HealthBoard;
  gpu: GpuReader | null;
  gpuIntervalMs: number;
  /** Told of each Xid a GPU reports (the GPU state's listener). */
  onXid?: (listener: (e: XidEvent) => void) => void;
  /** The jobs running on a GPU (by uuid) now, for an Xid event. */
  jobsOnGpu?: (uuid: string | null) => ReadonlyJob[];
  now?: () => number;
}

const FINISHED_NODE: ReadonlySet<NodeStatus> = new Set(['completed', 'cached', 'error', 'interrupted']);

const ids = (job: ReadonlyJob) => ({ job_id: job.job_id, prompt_id: job.prompt_id, instance: job.instance });

export class EventCollector implements Collector {
  readonly name = 'events';
  private readonly seen = new Map<string, SeenJob>();
  private readonly now: () => number;
  private scheduled = false;
  private running = false;
  private laterTimer: NodeJS.Timeout | null = null;
  private gpuTimer: NodeJS.Timeout | null = null;
  private lastGpuSample: number | null = null;

  constructor(private readonly opts: EventCollectorOptions) {
    this.now = opts.now ?? Date.now;
    const { instances, health } = opts;
    for (const comfy of instances.all) this.follow(comfy);
    instances.onAdded((comfy) => this.follow(comfy));
    health.onChange((c) => this.problem(c));
    opts.onXid?.((e) => this.xid(e));
  }

  /** An Xid: which GPU, what it means, and the job that ran there. */
  private xid(e: XidEvent): void {
    if (!this.running) return;
    const m = xidMeaning(e.xid);
    const jobs = this.opts.jobsOnGpu?.(e.uuid) ?? [];
    this.opts.journal.record('gpu_xid', {
      gpu: e.index,
      uuid: e.uuid,
      xid: e.xid,
      meaning: m.meaning,
      action: m.action,
      severity: xidSeverity(e.xid),
      reported_at: iso(e.at),
      jobs: jobs.map((j) => ({ job_id: j.job_id, prompt_id: j.prompt_id, instance: j.instance })),
    });
  }

  private follow(comfy: ComfyState): void {
    comfy.tracker.onChange(() => this.schedule());
    comfy.onRejection((r) => this.rejection(comfy.name, r));
  }

  start(_signal: AbortSignal): void {
    this.running = true;
    if (this.opts.gpu) {
      this.gpuTimer = setInterval(() => this.gpuSample(), this.opts.gpuIntervalMs);
      this.gpuTimer.unref();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.gpuTimer) clearInterval(this.gpuTimer);
    if (this.laterTimer) clearTimeout(this.laterTimer);
    this.gpuTimer = this.laterTimer = null;
  }

  /** Compares after the change that called, and every other change of this turn, once. */
  private schedule(): void {
    if (this.scheduled || !this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.compare();
    });
  }

  /** Public for tests that drive the tracker by hand. */
  compare(): void {
    const instances = this.opts.instances.all;
    const now = this.now();
    let later = false;
    for (const comfy of instances) for (const job of comfy.tracker.unfinished()) later = this.compareJob(job, now, false) || later;
    // Jobs no tracker holds any more (never the case for unfinished ones; a guard on the map's size).
    for (const id of this.seen.keys()) if (!instances.some((c) => c.tracker.has(id))) this.seen.delete(id);
    if (later && !this.laterTimer && this.running) {
      this.laterTimer = setTimeout(() => {
        this.laterTimer = null;
        this.compare();
      }, PROGRESS_EVERY_MS);
      this.laterTimer.unref();
    }
  }

  /**
   * Says what changed about one job; true when something is still owed (a progress event, or the
   * job's events waiting for its identity). `force` says everything now (the job has ended).
   */
  private compareJob(job: ReadonlyJob, now: number, force: boolean): boolean {
    const { journal } = this.opts;
    let seen = this.seen.get(job.prompt_id);
    if (!seen) {
      if (!force && !job.identity_known && now - job.first_seen_at < IDENTITY_WAIT_MS) return true;
      seen = { started: false, nodes: new Map(), progressAt: 0, progressOwed: false };
      this.seen.set(job.prompt_id, seen);
      journal.record('job_queued', { number: job.number, client_id: job.client_id, queued_at: iso(job.queued_at), nodes_total: [...job.nodes.values()].filter((n) => n.needed).length }, ids(job));
    }
    if (!seen.started && (job.status === 'running' || job.started_at !== null)) {
      seen.started = true;
      journal.record('job_started', { started_at: iso(job.started_at), started_timing: job.started_timing }, ids(job));
    }
    const nodesOwed = this.compareNodes(job, seen, now, force);
    if (seen.progressOwed && now - seen.progressAt >= PROGRESS_EVERY_MS) {
      seen.progressOwed = false;
      seen.progressAt = now;
      const node = job.current_node ? job.nodes.get(job.current_node) : undefined;
      journal.record('progress', { node_id: node?.node_id ?? null, class_type: node?.class_type ?? null, steps: node?.steps ?? null, total: node?.total ?? null, progress_percent: job.progress }, ids(job));
    }
    return seen.progressOwed || nodesOwed;
  }

  /** Says what changed about the job's nodes; true when a node's end waits for ComfyUI's own time. */
  private compareNodes(job: ReadonlyJob, seen: SeenJob, now: number, force: boolean): boolean {
    const { journal } = this.opts;
    let owed = false;
    for (const id of job.order) {
      const node = job.nodes.get(id);
      if (!node) continue;
      const before = seen.nodes.get(id) ?? { status: 'pending' as NodeStatus, steps: null };
      // A frame can say a node finished a moment before the tap reports ComfyUI's time for it:
      // its end is said once that time is in, or after TAP_END_WAIT_MS, or with the job's end.
      // The nodes after it wait too, so a node's end still comes before the next one's start.
      if (!force && node.status === 'completed' && node.end_timing === 'observed' && node.start_timing === 'comfyui' && job.source.has('tap') && now - node.finished_at! < TAP_END_WAIT_MS) {
        owed = true;
        break;
      }
      if (before.status !== node.status) {
        const started = () => journal.record('node_started', { node_id: id, class_type: node.class_type, title: node.title, started_at: iso(node.started_at), timing: node.timing }, ids(job));
        if (node.status === 'running') {
          started();
        } else if (FINISHED_NODE.has(node.status) && !FINISHED_NODE.has(before.status)) {
          // Started and finished between two looks: its start is said too, when it is known.
          if (before.status === 'pending' && node.started_at !== null) started();
          journal.record(
            'node_finished',
            {
              node_id: id,
              class_type: node.class_type,
              status: node.status,
              steps: node.steps,
              total: node.total,
              duration_ms: node.started_at !== null && node.finished_at !== null ? Math.max(0, node.finished_at - node.started_at) : null,
              timing: node.timing,
            },
            ids(job),
          );
        }
      }
      if (node.status === 'running' && node.steps !== null && node.steps !== before.steps) seen.progressOwed = true;
      seen.nodes.set(id, { status: node.status, steps: node.steps });
    }
    return owed;
  }

  /** A step of the finish pipeline: the job's last changes, then its end, as events. */
  jobFinished(job: ReadonlyJob, refined: boolean): void {
    if (!this.running) return;
    // Whatever changed on the way to the outcome first, so the job's end is its last event. A
    // refinement (ComfyUI's record of a job podscope had called lost) only says the new outcome.
    if (!refined) this.compareJob(job, this.now(), true);
    this.seen.delete(job.prompt_id);
    const e = job.error;
    this.opts.journal.record(
      'job_finished',
      {
        status: job.status,
        refined,
        started_at: iso(job.started_at),
        finished_at: iso(job.finished_at),
        duration_s: job.started_at !== null && job.finished_at !== null ? round((job.finished_at - job.started_at) / 1000) : null,
        error: e
          ? {
              node_id: e.node_id,
              class_type: e.class_type,
              exception_type: e.exception_type,
              exception_message: e.exception_message.slice(0, 500),
              ...(e.oom === true ? { oom: true } : {}),
            }
          : null,
        lost_reason: job.lost_reason,
        gpu_seconds: job.usage?.gpu_seconds ?? null,
        peak_vram_mb: job.usage?.peak_vram_mb ?? null,
        outputs: job.outputs.length,
      },
      ids(job),
    );
  }

  private rejection(instance: string, r: Rejection): void {
    if (!this.running) return;
    const job = r.prompt_id && r.job_id ? { job_id: r.job_id, prompt_id: r.prompt_id } : {};
    this.opts.journal.record('rejection', { rejected_at: iso(r.at), reasons: r.reasons, source: r.source }, { ...job, instance });
  }

  private problem(c: ProblemChange): void {
    if (!this.running) return;
    const type = c.kind === 'started' ? 'problem_started' : c.kind === 'ended' ? 'problem_ended' : 'problem_changed';
    const { component, instance, code, message, severity, since } = c.problem;
    this.opts.journal.record(type, { component, code, message, severity, since }, instance === undefined ? null : { instance });
  }

  /** One GPU event per new sample. Public for tests. */
  gpuSample(): void {
    const gpu = this.opts.gpu;
    const at = gpu?.lastSuccess;
    if (!gpu || at === null || at === undefined || at === this.lastGpuSample) return;
    this.lastGpuSample = at;
    this.opts.journal.record('gpu', gpuEventData(gpu, at));
  }
}

/** The data of a `gpu` event: each GPU's reading in the sample taken at `at`. */
export function gpuEventData(gpu: GpuReader, at: number): Record<string, unknown> {
  return {
    sampled_at: iso(at),
    gpus: gpu.readings().map((g) => ({
      index: g.index,
      uuid: g.uuid || null,
      utilization_percent: g.utilization_percent,
      memory_used_mb: g.memory_used_mb,
      memory_total_mb: g.memory_total_mb,
      temperature_c: g.temperature_c,
      power_w: g.power_w,
      lost: g.lost,
    })),
  };
}
