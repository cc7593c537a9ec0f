/**
 * /debug/status (contract 2.3): the one answer a harness or a person polls.
 */
import type { PodReader } from '../state/pod.js';
import { iso } from '../format.js';
import { gpuStatusView, type GpuStatusView } from './gpu.js';
import { comfyInfoView, currentJobView } from './comfy.js';

export type PodStatus = 'starting' | 'idle' | 'processing' | 'degraded';

export type StatusView = ReturnType<typeof statusView>;

export function statusView(state: PodReader) {
  const now = state.now();
  const gpus: GpuStatusView[] = state.gpu ? state.gpu.readings().map((g) => gpuStatusView(g, now, state.gpu)) : [];
  // The GPU ComfyUI uses: the first one, unless ComfyUI names another.
  const gpu = gpus.find((g) => !g.lost) ?? gpus[0] ?? null;
  const comfy = state.comfy;
  const currentJob = currentJobView(comfy, state.gpu, now);
  const problems = state.health.problems();
  // The same condition /ready answers; only `ok` is refined by what ComfyUI is doing.
  const condition = state.condition().status;
  const status: PodStatus = condition !== 'ok' ? condition : currentJob ? 'processing' : 'idle';
  return {
    pod_id: state.config.podId,
    status,
    gpu: gpu ? { ...gpu } : null,
    gpus,
    current_job: currentJob,
    comfyui: comfyInfoView(comfy),
    queue: comfy.queueCounts(),
    problems: problems.map(({ component, code, message, since, severity }) => ({ component, code, message, since, severity })),
    sampled_at: iso(now),
  };
}
