/**
 * The job model's types: what podscope knows of one ComfyUI prompt and of its nodes.
 *
 * Times are ms since the epoch. A time podscope does not know is null, never a guess: a node that
 * must have run (its outcome says so) but was never seen running has no start, end or duration.
 */

import type { TraceParent } from './traces.js';
import { isOomText } from './log-levels.js';

export type JobStatus = 'queued' | 'running' | 'success' | 'error' | 'interrupted' | 'lost';
/**
 * `interrupted`: the node started and never finished (an interrupt, or ComfyUI vanished);
 * `skipped`: it never ran.
 */
export type NodeStatus = 'pending' | 'running' | 'completed' | 'cached' | 'error' | 'interrupted' | 'skipped';

/** Where a time comes from: ComfyUI's own clock (tap, history, execution frames) or podscope's observation. */
export type TimeSource = 'comfyui' | 'observed';

export interface JobNode {
  node_id: string;
  class_type: string;
  title: string | null;
  status: NodeStatus;
  steps: number | null;
  total: number | null;
  /** The `steps` input in the graph, when it has one: the work the node will do, before it starts. */
  planned_steps: number | null;
  started_at: number | null;
  finished_at: number | null;
  /** `comfyui` when every time the node has is ComfyUI's, `observed` when one is podscope's, null without times. */
  timing: TimeSource | null;
  /** Whose clock `started_at` and `finished_at` each come from. */
  start_timing: TimeSource | null;
  end_timing: TimeSource | null;
  /** Peak allocated VRAM while it ran, from torch's allocator (tap, CUDA only). */
  peak_vram_bytes: number | null;
  /** Whether the node feeds an output the prompt executes (others never run). */
  needed: boolean;
}

export interface JobError {
  node_id: string | null;
  class_type: string | null;
  exception_type: string;
  exception_message: string;
  traceback: string[];
  /** Extra evidence attached later (OOM forensics). */
  [extra: string]: unknown;
}

export interface Output {
  node_id: string;
  /** The ui dict as ComfyUI reported it (images, gifs, audio, …). */
  ui: Record<string, unknown>;
  /** Replayed from cache: the files come from an earlier run. */
  cached: boolean;
}

export interface JobUsage {
  gpu_seconds: number;
  busy_gpu_seconds: number;
  peak_vram_mb: number | null;
}

export interface Job {
  /** The ComfyUI instance that runs it (its name in COMFYUI_URLS, or its port). */
  instance: string;
  prompt_id: string;
  /** The platform's job id (`extra_data[PODSCOPE_JOB_ID_KEY]`), else the prompt_id; the prompt_id until `identity_known`. */
  job_id: string;
  /** Whether the prompt's extra_data has been read, so `job_id` is final. */
  identity_known: boolean;
  trace_id: string | null;
  /** The platform's span this job continues, from the `traceparent` in its extra_data. */
  trace_parent: TraceParent | null;
  client_id: string | null;
  number: number | null;
  status: JobStatus;
  /** When ComfyUI accepted the prompt (tap, or `extra_data.create_time`); null when podscope did not see it. */
  queued_at: number | null;
  /** When podscope first learned of the prompt, by any source. */
  first_seen_at: number;
  started_at: number | null;
  started_timing: TimeSource | null;
  finished_at: number | null;
  /** Whose clock `finished_at` is on: ComfyUI's (tap, history, execution frames) or podscope's (a job called lost). */
  finished_timing: TimeSource | null;
  nodes: Map<string, JobNode>;
  /** Node ids in graph order. */
  order: string[];
  outputs_to_execute: string[];
  error: JobError | null;
  outputs: Output[];
  /** 0..100, never decreasing within a job; null while the graph is unknown. */
  progress: number | null;
  current_node: string | null;
  /** When /queue last listed it as running. */
  seen_running_at: number | null;
  /** Last sign of life: a frame, a log line, a queue change. */
  last_activity: number;
  /** Which sources told podscope about this job. */
  source: Set<string>;
  /** Whether a /history entry (ComfyUI's record of the outcome) has been applied. */
  history_read: boolean;
  /** Times this job was found missing from both queue and history. */
  missing_checks: number;
  /** Extra data with secrets removed, for /debug/queue. */
  extra: Record<string, unknown>;
  lost_reason: string | null;
  /** Whether the prompt's graph has been read (tap, /queue or /history). */
  graph_known: boolean;
  /** Every node's transitive inputs, from the graph. */
  upstream: Map<string, Set<string>>;
  /** GPU use over the job's run, from the GPU collector; null without GPU data. */
  usage: JobUsage | null;
  /** The prompt this one replaced under the same job id (a retry), if podscope saw it. */
  retry_of: string | null;
}

export interface QueueItem {
  number: number | null;
  prompt_id: string;
  graph: Record<string, unknown>;
  extra_data: Record<string, unknown>;
  outputs_to_execute: string[];
}

/** Snapshot of one job for the views, with times as ms epoch. */
export type JobSnapshot = Omit<Job, 'nodes' | 'source'> & { nodes: JobNode[]; source: string[]; nodes_total: number; nodes_completed: number };

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isFinal(status: JobStatus): boolean {
  return status === 'success' || status === 'error' || status === 'interrupted' || status === 'lost';
}

/**
 * A value nobody may change through this reference: what the job tracker hands to readers (views,
 * routes, metrics) and to the steps of a finished job, so only the reducer moves a job.
 */
export type DeepReadonly<T> = T extends (...args: never[]) => unknown
  ? T
  : T extends ReadonlyMap<infer K, infer V>
    ? ReadonlyMap<K, DeepReadonly<V>>
    : T extends ReadonlySet<infer U>
      ? ReadonlySet<DeepReadonly<U>>
      : T extends ReadonlyArray<infer E>
        ? ReadonlyArray<DeepReadonly<E>>
        : T extends object
          ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
          : T;

/** A job as readers and finish steps see it. */
export type ReadonlyJob = DeepReadonly<Job>;

/** Whether a job's error is the GPU running out of memory (torch's OutOfMemoryError, or its text). */
export function isGpuOom(job: { readonly error: { readonly exception_type: string; readonly exception_message: string; readonly [extra: string]: unknown } | null }): boolean {
  const e = job.error;
  if (!e) return false;
  return /OutOfMemoryError/.test(e.exception_type) || isOomText(e.exception_message) || e.oom === true;
}
