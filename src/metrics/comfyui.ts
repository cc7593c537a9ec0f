/**
 * ComfyUI and job metrics (contract 2.10). Counters of finished jobs are fed by a step of the
 * finish pipeline; gauges read ComfyUI's state at scrape time. No label holds a prompt id, job id
 * or file name.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ComfyReader } from '../state/comfy.js';
import type { ReadonlyJob } from '../shared/job-types.js';
import { optionalGauge, readFamily } from './registry.js';

const STATUSES = ['success', 'error', 'interrupted', 'lost'] as const;

/** Registers the families; returns the finish pipeline's step that counts a finished job. */
export function registerComfyMetrics(registry: Registry, comfy: ComfyReader): { jobFinished(job: ReadonlyJob, refined: boolean): void } {
  const jobs = new Counter({ name: 'podscope_jobs_finished_total', help: 'Jobs that reached an outcome, by status.', labelNames: ['status'], registers: [registry] });
  const duration = new Histogram({
    name: 'podscope_job_duration_seconds',
    help: 'Run time of finished jobs (start to outcome), in seconds, by status.',
    labelNames: ['status'],
    buckets: [1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  const gpuSeconds = new Counter({ name: 'podscope_job_gpu_seconds_total', help: 'GPU-seconds (wall time times GPUs held) spent by finished jobs, by status.', labelNames: ['status'], registers: [registry] });
  const nodeDuration = new Histogram({
    name: 'podscope_node_duration_seconds',
    help: 'Run time of executed (not cached) nodes, in seconds, by class_type.',
    labelNames: ['class_type'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  for (const s of STATUSES) {
    jobs.inc({ status: s }, 0);
    gpuSeconds.inc({ status: s }, 0);
  }
  const classTypes = new Set<string>();

  const jobFinished = (job: ReadonlyJob, refined: boolean): void => {
    if (refined) return; // counted once, when it first ended
    jobs.inc({ status: job.status });
    if (job.started_at !== null && job.finished_at !== null) duration.observe({ status: job.status }, Math.max(0, job.finished_at - job.started_at) / 1000);
    if (job.usage) gpuSeconds.inc({ status: job.status }, job.usage.gpu_seconds);
    for (const node of job.nodes.values()) {
      if (node.status !== 'completed' || node.started_at === null || node.finished_at === null) continue;
      // class_type comes from the graph; keep the label set bounded against hostile graphs.
      const cut = node.class_type.slice(0, 100);
      const label = classTypes.has(cut) || classTypes.size < 500 ? cut : 'other';
      classTypes.add(label);
      nodeDuration.observe({ class_type: label }, Math.max(0, node.finished_at - node.started_at) / 1000);
    }
  };

  new Gauge({
    name: 'podscope_comfyui_up',
    help: 'Whether ComfyUI answered its last HTTP poll (1) or not (0).',
    registers: [registry],
    collect() {
      this.set(comfy.lastHttpOkAt !== null && comfy.httpFailingSince === null ? 1 : 0);
    },
  });
  new Gauge({
    name: 'podscope_comfyui_websocket_connected',
    help: 'Whether the websocket to ComfyUI is open (1) or not (0).',
    registers: [registry],
    collect() {
      this.set(comfy.wsConnected ? 1 : 0);
    },
  });
  new Counter({
    name: 'podscope_comfyui_websocket_reconnects_total',
    help: 'Times the websocket to ComfyUI was lost after being open.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(comfy.wsReconnects);
    },
  });
  readFamily(registry, 'podscope_comfyui_frames_total', 'Websocket text frames received from ComfyUI, by type (unknown types as "other").', 'counter', (out) => {
    for (const [type, n] of comfy.framesByType) out.push({ labels: { type }, value: n });
  });
  new Counter({
    name: 'podscope_comfyui_malformed_frames_total',
    help: 'Websocket frames from ComfyUI that could not be decoded.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(comfy.malformedFrames);
    },
  });
  new Counter({
    name: 'podscope_comfyui_binary_frames_total',
    help: 'Binary websocket frames (previews, text) received from ComfyUI.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(comfy.binaryFrames);
    },
  });
  new Gauge({
    name: 'podscope_queue_jobs',
    help: 'Prompts in ComfyUI\'s queue, by state (running or pending).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const q = comfy.queueCounts();
      this.set({ state: 'running' }, q.running);
      this.set({ state: 'pending' }, q.pending);
    },
  });
  optionalGauge(registry, 'podscope_job_last_activity_age_seconds', 'Seconds since the running job last showed a sign of life; absent when no job runs.', () => {
    const job = comfy.tracker.running();
    return job ? (Date.now() - job.last_activity) / 1000 : null;
  });
  return { jobFinished };
}
