/**
 * How ComfyUI's state is shown: its connection, the running job in brief, its memory as it reports
 * it, the recent jobs' VRAM peaks, and a job's GPU use. Used by /debug/status, /debug/memory,
 * /debug/workflow and the forensics of a finished job.
 */
import type { ComfyReader } from '../state/comfy.js';
import type { GpuUse } from '../state/instance-gpus.js';
import type { JobUsage, ReadonlyJob } from '../shared/job-types.js';
import { iso, round } from '../format.js';
import { redactUrlCredentials } from '../secrets.js';
import type { MemoryAnswer } from '../shared/api-schema.js';

export const PROGRESS_UNKNOWN = "the prompt's graph has not been read yet, so the work left is unknown";

/**
 * A job's ids as answers show them: `job_id` is null (with the reason) until the prompt's
 * extra_data has been read, so an answer never shows a prompt_id that later turns into a job id.
 */
export function jobIdentity(job: ReadonlyJob): { job_id: string | null; prompt_id: string; instance: string; job_id_unknown_reason?: string } {
  if (job.identity_known) return { job_id: job.job_id, prompt_id: job.prompt_id, instance: job.instance };
  return { job_id: null, prompt_id: job.prompt_id, instance: job.instance, job_id_unknown_reason: "the prompt's extra_data has not been read yet" };
}

/**
 * Without the tap: whether this ComfyUI lets podscope see other clients' prompts node by node, from
 * what it has sent so far. Releases differ (0.3.50 broadcasts progress_state to every client,
 * 0.3.64 sends it to the submitter alone, 0.3.30 has none), so podscope says what it saw, never
 * what a version number suggests.
 */
export function nodeProgressSeen(comfy: ComfyReader): { seen: boolean | null; how: string } {
  let finished = false;
  for (const job of comfy.tracker.all()) {
    if (job.client_id === null) continue;
    if (job.source.has('progress_state')) return { seen: true, how: "this ComfyUI broadcasts progress_state: every client's prompts are seen node by node, with observed start and end times" };
    if (job.status === 'success') finished = true;
  }
  return finished
    ? { seen: false, how: "this ComfyUI sent no node progress for another client's prompt (it sends progress_state to the submitter alone, or has none): their node times are unknown" }
    : { seen: null, how: "no other client's prompt has finished yet" };
}

/** What podscope can see of other clients' prompts, in one sentence. */
export function visibility(comfy: ComfyReader): { mode: 'tap' | 'observer'; sees: string; node_progress?: { seen: boolean | null; how: string } } {
  if (comfy.tap) {
    return {
      mode: 'tap',
      sees: "every prompt from every client, node by node, with ComfyUI's own times, job ids from the POST on, and rejected prompts with their reasons",
    };
  }
  return {
    mode: 'observer',
    sees:
      "without the tap node: other clients' prompts through /queue and /history (ids, outcome, error, outputs, ComfyUI's start and end times) and the log (a sampler's tqdm steps); node start times only where progress frames or the log show them, otherwise null; rejected prompts only from the log, without their job id",
    node_progress: nodeProgressSeen(comfy),
  };
}

/** `comfyui` of /debug/status. */
export function comfyInfoView(comfy: ComfyReader) {
  const httpOk = comfy.httpFailingSince === null && comfy.lastHttpOkAt !== null;
  return {
    connected: comfy.wsConnected && httpOk,
    url: redactUrlCredentials(comfy.url),
    version: comfy.version,
    http_ok: httpOk,
    websocket: comfy.wsConnected,
    tap: comfy.tap,
    tap_version: comfy.tapVersion,
    visibility: visibility(comfy),
    last_frame_at: iso(comfy.lastFrameAt),
  };
}

/** GPU use between the job's start and its end (or now): what it recorded when it finished, else measured now. */
export function jobUsage(job: ReadonlyJob, use: GpuUse, now: number): JobUsage | null {
  if (job.usage) return job.usage;
  return measureUsage(job, use, now);
}

/**
 * GPU use over the job's run on its instance's GPUs, from the GPU timeline; null without GPU data,
 * before it started, or when its instance's GPUs are unknown on a pod of several instances.
 */
export function measureUsage(job: ReadonlyJob, use: GpuUse, now: number): JobUsage | null {
  const scope = use.scopeOf(job.instance);
  if (!use.gpu || job.started_at === null || scope === null) return null;
  const w = use.gpu.usageBetween(job.started_at, job.finished_at ?? now, scope);
  return { gpu_seconds: round(w.gpu_seconds, 3), busy_gpu_seconds: round(w.busy_gpu_seconds, 3), peak_vram_mb: w.peak_vram_mb };
}

/** `current_job` of /debug/status: the running job in brief, or null. */
export function currentJobView(comfy: ComfyReader, use: GpuUse, now: number) {
  const job = comfy.tracker.running();
  if (!job) return null;
  const node = job.current_node ? job.nodes.get(job.current_node) : undefined;
  const usage = jobUsage(job, use, now);
  return {
    ...jobIdentity(job),
    progress_percent: job.progress,
    ...(job.progress === null ? { progress_unknown_reason: PROGRESS_UNKNOWN } : {}),
    started_at: iso(job.started_at),
    elapsed_s: job.started_at ? round((now - job.started_at) / 1000) : null,
    current_node: node
      ? { node_id: node.node_id, class_type: node.class_type, title: node.title, progress: node.total !== null ? { steps: node.steps ?? 0, total: node.total } : null }
      : null,
    gpu_seconds: usage ? usage.gpu_seconds : null,
    last_activity_s: round((now - job.last_activity) / 1000),
  };
}

/** ComfyUI's own memory view (`/system_stats`), in MB, or null before it answered. */
export function systemStatsView(comfy: ComfyReader): Record<string, unknown> | null {
  const read = comfy.systemStats;
  if (!read) return null;
  const raw = read.raw;
  const system = (raw.system ?? {}) as Record<string, unknown>;
  const devices = Array.isArray(raw.devices) ? (raw.devices as Array<Record<string, unknown>>) : [];
  const mb = (v: unknown) => (typeof v === 'number' ? Math.round(v / 1024 / 1024) : null);
  return {
    sampled_at: iso(read.at),
    version: typeof system.comfyui_version === 'string' ? system.comfyui_version : null,
    ram_total_mb: mb(system.ram_total),
    ram_free_mb: mb(system.ram_free),
    devices: devices.map((d) => ({
      name: typeof d.name === 'string' ? d.name : null,
      type: typeof d.type === 'string' ? d.type : null,
      index: typeof d.index === 'number' ? d.index : null,
      vram_total_mb: mb(d.vram_total),
      vram_free_mb: mb(d.vram_free),
      torch_vram_reserved_mb: mb(d.torch_vram_total),
      torch_vram_free_mb: mb(d.torch_vram_free),
    })),
  };
}

/** The 20 most recently started jobs with their VRAM peaks, for /debug/memory's timeline. */
export function jobPeaksView(instances: readonly ComfyReader[], use: GpuUse, now: number): MemoryAnswer['timeline']['job_peaks'] {
  return instances
    .flatMap((comfy) => comfy.tracker.all())
    .filter((j) => j.started_at !== null)
    .sort((a, b) => (b.started_at ?? 0) - (a.started_at ?? 0))
    .slice(0, 20)
    .map((j) => ({
      job_id: j.job_id,
      prompt_id: j.prompt_id,
      instance: j.instance,
      status: j.status,
      started_at: iso(j.started_at),
      finished_at: iso(j.finished_at),
      peak_vram_mb: jobUsage(j, use, now)?.peak_vram_mb ?? null,
    }));
}
