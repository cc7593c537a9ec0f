/**
 * Which GPUs a ComfyUI instance runs on, from what podscope can know without asking it: the
 * `--cuda-device` on its command line (ComfyUI sets CUDA_VISIBLE_DEVICES from it), else the
 * CUDA_VISIBLE_DEVICES of the process listening on its port, else its /system_stats devices matched
 * to nvidia-smi's GPUs. Pure: the caller hands in what the collectors read.
 *
 * CUDA numbers devices fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, nvidia-smi by PCI bus;
 * on a pod of identical GPUs (every RunPod pod) the two orders agree, ties being broken by bus id.
 */
import { isRecord } from '../shared/job-types.js';
import type { GpuReader } from './gpu.js';

/** A GPU of the pod as the resolver needs it (from the GPU readings). */
export interface PodGpu {
  index: number;
  uuid: string;
  name: string;
  memory_total_mb: number | null;
}

export interface InstanceGpu {
  index: number | null;
  uuid: string | null;
}

export type GpuSource = 'argv' | 'cuda_visible_devices' | 'system_stats';

export type InstanceGpus = { gpus: InstanceGpu[]; source: GpuSource } | { gpus: null; reason: string };

export interface InstanceFacts {
  argv: readonly string[] | null;
  /** CUDA_VISIBLE_DEVICES of the process on the instance's port: its value (null: not set), or undefined when unknown. */
  cudaVisibleDevices?: string | null;
  systemStats: Record<string, unknown> | null;
}

/** `--cuda-device N` (or `=N`) in ComfyUI's argv, or null. */
export function cudaDeviceArg(argv: readonly string[] | null): string | null {
  if (!argv) return null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--cuda-device' && i + 1 < argv.length) return argv[i + 1]!.trim();
    if (a.startsWith('--cuda-device=')) return a.slice('--cuda-device='.length).trim();
  }
  return null;
}

/** The GPUs a CUDA_VISIBLE_DEVICES value names: indices or GPU-uuid prefixes; null with the reason when they cannot be told. */
function fromVisibleDevices(value: string, gpus: readonly PodGpu[], what: string): InstanceGpu[] | string {
  const items = value.split(',').map((s) => s.trim());
  const out: InstanceGpu[] = [];
  for (const item of items) {
    // CUDA stops at the first entry it cannot use; an empty or negative one hides every GPU after it.
    if (item === '' || /^-\d+$/.test(item) || item === 'NoDevFiles') break;
    if (/^\d+$/.test(item)) {
      const index = Number(item);
      const g = gpus.find((x) => x.index === index);
      out.push({ index, uuid: g?.uuid ?? null });
    } else if (/^GPU-/i.test(item)) {
      const g = gpus.find((x) => x.uuid.toLowerCase().startsWith(item.toLowerCase()));
      if (!g) return `${what} names ${item.slice(0, 60)}, which nvidia-smi does not list`;
      out.push({ index: g.index, uuid: g.uuid });
    } else {
      return `${what} names ${item.slice(0, 60)}, a device podscope cannot map to one of nvidia-smi's GPUs (a MIG instance?)`;
    }
  }
  return out;
}

/** The CUDA devices /system_stats lists: ComfyUI's device names (`cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync`) and totals. */
function statsDevices(raw: Record<string, unknown> | null): Array<{ name: string; type: string | null; vramMb: number | null }> | null {
  if (!raw || !Array.isArray(raw.devices)) return null;
  return raw.devices.filter(isRecord).map((d) => ({
    name: typeof d.name === 'string' ? d.name : '',
    type: typeof d.type === 'string' ? d.type : null,
    vramMb: typeof d.vram_total === 'number' ? d.vram_total / 1024 / 1024 : null,
  }));
}

/** Which of the pod's GPUs the instance runs on, and how podscope knows. */
export function resolveInstanceGpus(facts: InstanceFacts, gpus: readonly PodGpu[]): InstanceGpus {
  const arg = cudaDeviceArg(facts.argv);
  if (arg !== null) {
    const r = fromVisibleDevices(arg, gpus, '--cuda-device');
    return typeof r === 'string' ? { gpus: null, reason: r } : { gpus: r, source: 'argv' };
  }
  if (typeof facts.cudaVisibleDevices === 'string') {
    const r = fromVisibleDevices(facts.cudaVisibleDevices, gpus, 'its CUDA_VISIBLE_DEVICES');
    return typeof r === 'string' ? { gpus: null, reason: r } : { gpus: r, source: 'cuda_visible_devices' };
  }
  const devices = statsDevices(facts.systemStats);
  if (devices === null) return { gpus: null, reason: 'ComfyUI has not answered /system_stats yet, and its command line does not name a device' };
  const cuda = devices.filter((d) => d.type === 'cuda' || d.name.startsWith('cuda'));
  if (cuda.length === 0) return { gpus: [], source: 'system_stats' };
  if (gpus.length === 0) return { gpus: null, reason: 'nvidia-smi lists no GPU to match its devices to' };
  if (cuda.length === gpus.length) return { gpus: gpus.map((g) => ({ index: g.index, uuid: g.uuid })), source: 'system_stats' };
  // A device matches a GPU when its name carries the GPU's and no other GPU of the pod has that name.
  const out: InstanceGpu[] = [];
  for (const d of cuda) {
    const named = gpus.filter((g) => g.name !== '' && d.name.includes(g.name));
    if (named.length !== 1) {
      return {
        gpus: null,
        reason: `ComfyUI sees ${cuda.length} of the pod's ${gpus.length} GPUs and neither its command line (--cuda-device) nor its environment (CUDA_VISIBLE_DEVICES) says which`,
      };
    }
    out.push({ index: named[0]!.index, uuid: named[0]!.uuid });
  }
  return { gpus: out, source: 'system_stats' };
}

/**
 * The GPUs a job's use is counted on: undefined for every GPU (the pod's only ComfyUI), a set of
 * uuids, or null when the instance's GPUs are unknown on a pod of several instances (its use is
 * then unknown, never the whole pod's).
 */
export function usageScope(resolved: InstanceGpus, instanceCount: number): ReadonlySet<string> | undefined | null {
  if (resolved.gpus === null) return instanceCount <= 1 ? undefined : null;
  if (instanceCount <= 1 && resolved.source === 'system_stats') return undefined;
  const uuids = resolved.gpus.map((g) => g.uuid);
  if (uuids.some((u) => u === null)) return instanceCount <= 1 ? undefined : null;
  return new Set(uuids as string[]);
}

/** What the resolver needs of an instance and of the GPU state. */
interface InstanceLike {
  readonly name: string;
  readonly argv: readonly string[] | null;
  readonly cudaVisibleDevices: string | null | undefined;
  readonly systemStats: { raw: Record<string, unknown> } | null;
}
/** Each instance's GPUs and the GPUs its jobs are counted on, from the instances and the GPU state. */
export class GpuAssignment implements GpuUse {
  constructor(
    private readonly instances: { readonly all: readonly InstanceLike[]; byName(name: string): InstanceLike | undefined },
    readonly gpu: GpuReader | null,
  ) {}

  /** The named instance's GPUs, or null with the reason. */
  of(instance: string): InstanceGpus {
    const comfy = this.instances.byName(instance);
    if (!comfy) return { gpus: null, reason: `no instance is named ${instance}` };
    const gpus: PodGpu[] = [];
    for (const g of this.gpu?.readings() ?? []) if (g.index !== null) gpus.push({ index: g.index, uuid: g.uuid, name: g.name, memory_total_mb: g.memory_total_mb });
    return resolveInstanceGpus({ argv: comfy.argv, cudaVisibleDevices: comfy.cudaVisibleDevices, systemStats: comfy.systemStats?.raw ?? null }, gpus);
  }

  /** The GPUs a job of the instance is counted on (see {@link usageScope}). */
  scopeOf(instance: string): ReadonlySet<string> | undefined | null {
    return usageScope(this.of(instance), this.instances.all.length);
  }
}

/** The GPU state and which GPUs each instance's jobs count: what measuring a job's GPU use needs. */
export interface GpuUse {
  readonly gpu: GpuReader | null;
  /** The named instance's GPUs, or null with the reason. */
  of(instance: string): InstanceGpus;
  scopeOf(instance: string): ReadonlySet<string> | undefined | null;
}
