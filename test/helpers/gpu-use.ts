/** How views and finish steps measure a job's GPU use, over the instances a test builds. */
import { ComfyState } from '../../src/state/comfy.js';
import { Instances } from '../../src/state/instances.js';
import { GpuAssignment } from '../../src/state/instance-gpus.js';
import type { GpuReader } from '../../src/state/gpu.js';

/** The GPU use of a pod whose instances are `comfys` (one unnamed instance when none is given): the pod's only ComfyUI counts every GPU. */
export function gpuUse(gpu: GpuReader | null, ...comfys: ComfyState[]): GpuAssignment {
  const [first, ...more] = comfys.length > 0 ? comfys : [new ComfyState('http://127.0.0.1:8188', { jobIdKey: 'job_id', historyLimit: 10 })];
  return new GpuAssignment(new Instances(first!, ...more), gpu);
}
