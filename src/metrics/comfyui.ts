/**
 * ComfyUI and job metrics (contract 2.10), per ComfyUI instance: each family carries the label
 * `comfyui="NAME"` (never `instance`, which Prometheus gives the scrape target), so its cardinality
 * is bounded by the instances followed. Counters of finished jobs are fed by a step of the finish
 * pipeline; gauges read each instance's state at scrape time. No label holds a prompt id, job id or
 * file name.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { InstancesReader } from '../state/instances.js';
import type { ReadonlyJob } from '../shared/job-types.js';
import { readFamily, type Series } from './registry.js';
import type { ComfyReader } from '../state/comfy.js';

const STATUSES = ['success', 'error', 'interrupted', 'lost'] as const;

/** Registers the families; returns the finish pipeline's step that counts a finished job. */
export function registerComfyMetrics(registry: Registry, instances: InstancesReader): { jobFinished(job: ReadonlyJob, refined: boolean): void } {
  const jobs = new Counter({ name: 'podscope_jobs_finished_total', help: 'Jobs that reached an outcome, by ComfyUI instance and status.', labelNames: ['comfyui', 'status'], registers: [registry], collect: () => zeroes() });
  const duration = new Histogram({
    name: 'podscope_job_duration_seconds',
    help: 'Run time of finished jobs (start to outcome), in seconds, by ComfyUI instance and status.',
    labelNames: ['comfyui', 'status'],
    buckets: [1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  const gpuSeconds = new Counter({
    name: 'podscope_job_gpu_seconds_total',
    help: "GPU-seconds (wall time times the instance's GPUs) spent by finished jobs, by ComfyUI instance and status.",
    labelNames: ['comfyui', 'status'],
    registers: [registry],
  });
  const nodeDuration = new Histogram({
    name: 'podscope_node_duration_seconds',
    help: 'Run time of executed (not cached) nodes, in seconds, by class_type (every instance together).',
    labelNames: ['class_type'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  // Every instance's outcome counters exist from its first scrape on, at 0 (an instance found later too).
  const zeroed = new Set<string>();
  const zeroes = () => {
    for (const c of instances.all) {
      if (zeroed.has(c.name)) continue;
      zeroed.add(c.name);
      for (const status of STATUSES) {
        jobs.inc({ comfyui: c.name, status }, 0);
        gpuSeconds.inc({ comfyui: c.name, status }, 0);
      }
    }
  };
  zeroes();
  const classTypes = new Set<string>();

  const jobFinished = (job: ReadonlyJob, refined: boolean): void => {
    if (refined) return; // counted once, when it first ended
    const labels = { comfyui: job.instance, status: job.status };
    jobs.inc(labels);
    if (job.started_at !== null && job.finished_at !== null) duration.observe(labels, Math.max(0, job.finished_at - job.started_at) / 1000);
    if (job.usage) gpuSeconds.inc(labels, job.usage.gpu_seconds);
    for (const node of job.nodes.values()) {
      if (node.status !== 'completed' || node.started_at === null || node.finished_at === null) continue;
      // class_type comes from the graph; keep the label set bounded against hostile graphs.
      const cut = node.class_type.slice(0, 100);
      const label = classTypes.has(cut) || classTypes.size < 500 ? cut : 'other';
      classTypes.add(label);
      nodeDuration.observe({ class_type: label }, Math.max(0, node.finished_at - node.started_at) / 1000);
    }
  };

  /** A family with one series per instance (or none, where `read` gives null). */
  const perInstance = (name: string, help: string, type: 'gauge' | 'counter', read: (c: ComfyReader, out: Series[]) => number | null | void) =>
    readFamily(registry, name, help, type, (out) => {
      for (const c of instances.all) {
        const value = read(c, out);
        if (typeof value === 'number') out.push({ labels: { comfyui: c.name }, value });
      }
    });

  perInstance('podscope_comfyui_up', 'Whether the ComfyUI instance answered its last HTTP poll (1) or not (0).', 'gauge', (c) => (c.lastHttpOkAt !== null && c.httpFailingSince === null ? 1 : 0));
  perInstance('podscope_comfyui_websocket_connected', "Whether the websocket to the ComfyUI instance is open (1) or not (0).", 'gauge', (c) => (c.wsConnected ? 1 : 0));
  perInstance('podscope_comfyui_websocket_reconnects_total', 'Times the websocket to the ComfyUI instance was lost after being open.', 'counter', (c) => c.wsReconnects);
  perInstance('podscope_comfyui_frames_total', 'Websocket text frames received from the ComfyUI instance, by type (unknown types as "other").', 'counter', (c, out) => {
    for (const [type, n] of c.framesByType) out.push({ labels: { comfyui: c.name, type }, value: n });
  });
  perInstance('podscope_comfyui_malformed_frames_total', 'Websocket frames from the ComfyUI instance that could not be decoded.', 'counter', (c) => c.malformedFrames);
  perInstance('podscope_comfyui_binary_frames_total', 'Binary websocket frames (previews, text) received from the ComfyUI instance.', 'counter', (c) => c.binaryFrames);
  perInstance("podscope_queue_jobs", "Prompts in the ComfyUI instance's queue, by state (running or pending).", 'gauge', (c, out) => {
    const q = c.queueCounts();
    out.push({ labels: { comfyui: c.name, state: 'running' }, value: q.running }, { labels: { comfyui: c.name, state: 'pending' }, value: q.pending });
  });
  perInstance('podscope_job_last_activity_age_seconds', "Seconds since the instance's running job last showed a sign of life; absent while it runs none.", 'gauge', (c) => {
    const job = c.tracker.running();
    return job ? (Date.now() - job.last_activity) / 1000 : null;
  });
  return { jobFinished };
}
