/**
 * /debug/status (contract 2.3): the one answer a harness or a person polls. `comfyui` and
 * `current_job` keep the single-instance contract (the first instance; the running job that
 * started first); `instances` and `current_jobs` say the same of every ComfyUI on the pod.
 */
import type { PodReader } from '../state/pod.js';
import type { ComfyReader } from '../state/comfy.js';
import type { Problem } from '../state/health.js';
import { iso } from '../format.js';
import { gpuStatusView, type GpuStatusView } from './gpu.js';
import { comfyInfoView, currentJobView } from './comfy.js';
import type { StatusAnswer } from '../shared/api-schema.js';

export type PodStatus = 'starting' | 'idle' | 'processing' | 'degraded';

export type StatusView = ReturnType<typeof statusView>;

const problemView = ({ component, instance, code, message, since, severity }: Problem) => ({ component, ...(instance === undefined ? {} : { instance }), code, message, since, severity });

/** One instance's row: what it is, where it runs, whether it is ready, what it runs and holds. */
function instanceView(state: PodReader, comfy: ComfyReader, problems: readonly Problem[], now: number) {
  const current = currentJobView(comfy, state.gpuUse, now);
  const condition = state.condition(comfy.name).status;
  const gpus = state.gpuUse.of(comfy.name);
  const info = comfyInfoView(comfy);
  return {
    name: comfy.name,
    url: info.url,
    status: (condition !== 'ok' ? condition : current ? 'processing' : 'idle') as PodStatus,
    connected: info.connected,
    version: info.version,
    tap: info.tap,
    gpus: gpus.gpus,
    ...(gpus.gpus === null ? { gpus_unknown_reason: gpus.reason } : { gpus_source: gpus.source }),
    queue: comfy.queueCounts(),
    current_job: current,
    problems: problems.filter((p) => p.instance === comfy.name).map(problemView),
  };
}

export function statusView(state: PodReader): StatusAnswer {
  const now = state.now();
  const gpus: GpuStatusView[] = state.gpu ? state.gpu.readings().map((g) => gpuStatusView(g, now, state.gpu)) : [];
  // The GPU ComfyUI uses: the first one, unless ComfyUI names another.
  const gpu = gpus.find((g) => !g.lost) ?? gpus[0] ?? null;
  const problems = state.health.problems();
  const instances = state.instances.all.map((c) => instanceView(state, c, problems, now));
  const currentJobs = state.instances
    .runningJobs()
    .map(({ comfy }) => instances.find((i) => i.name === comfy.name)?.current_job)
    .filter((j) => j !== null && j !== undefined);
  const queue = { running: 0, pending: 0 };
  for (const i of instances) {
    queue.running += i.queue.running;
    queue.pending += i.queue.pending;
  }
  // The same condition /ready answers; only `ok` is refined by what ComfyUI is doing.
  const condition = state.condition().status;
  const status: PodStatus = condition !== 'ok' ? condition : currentJobs.length > 0 ? 'processing' : 'idle';
  return {
    pod_id: state.config.podId,
    status,
    gpu: gpu ? { ...gpu } : null,
    gpus,
    /** How the GPUs are read (NVML or nvidia-smi) and why; whether Xid events arrive. */
    gpu_sampling: state.gpu ? { ...state.gpu.backend } : null,
    current_job: currentJobs[0] ?? null,
    current_jobs: currentJobs,
    comfyui: comfyInfoView(state.comfy),
    queue,
    instances,
    problems: problems.map(problemView),
    sampled_at: iso(now),
  };
}
