/**
 * /debug/memory (contract 2.7): GPU memory per GPU with its processes, ComfyUI's own view, host
 * memory and disks, podscope's own memory and every ring buffer's fill, and a recent VRAM timeline.
 */
import type { PodReader } from '../state/pod.js';
import { iso, round } from '../format.js';
import { healthView } from './gpu.js';
import { jobPeaksView, systemStatsView } from './comfy.js';
import type { MemoryAnswer } from '../shared/api-schema.js';

const MIB = 1024 * 1024;

export function memoryView(state: PodReader, opts: { timelinePoints?: number } = {}): MemoryAnswer {
  const now = state.now();
  const gpu = state.gpu;
  const gpus = gpu
    ? gpu.readings().map((g) => ({
        index: g.index,
        uuid: g.uuid || null,
        pci_bus_id: g.pci_bus_id,
        name: g.name,
        total_mb: g.memory_total_mb,
        used_mb: g.memory_used_mb,
        free_mb: g.memory_free_mb,
        reserved_mb: g.memory_reserved_mb,
        lost: g.lost,
        lost_reason: g.lost_reason,
        sampled_at: iso(g.sampled_at),
        processes: gpu.computeApps(g.uuid).map((p) => ({ pid: p.pid, name: p.process_name, used_mb: p.used_memory_mb, ...(p.sm_util_percent !== undefined ? { sm_util_percent: p.sm_util_percent, mem_util_percent: p.mem_util_percent ?? null } : {}) })),
        health: g.uuid ? healthView(gpu.health(g.uuid)) : null,
        mig_devices: g.uuid ? gpu.mig(g.uuid) : [],
      }))
    : [];
  const points = gpu ? gpu.timeline.newest(opts.timelinePoints ?? 120) : [];
  const host = state.host.snapshot();
  return {
    gpus,
    processes_sampled_at: iso(gpu?.computeAppsAt ?? null),
    mig_sampled_at: iso(gpu?.migSampledAt ?? null),
    processes_note: 'nvidia-smi lists host PIDs inside a container; treat processes as best effort',
    comfyui: systemStatsView(state.comfy),
    /** Each instance's own memory view (the first is `comfyui`). */
    comfyui_instances: state.instances.all.map((c) => ({ name: c.name, ...(systemStatsView(c) ?? { sampled_at: null }) })),
    host: {
      sampled_at: host.sampled_at,
      memory_mb: host.memory
        ? {
            total: Math.round(host.memory.total_bytes / MIB),
            available: Math.round(host.memory.available_bytes / MIB),
            used: Math.round(host.memory.used_bytes / MIB),
            swap_total: Math.round(host.memory.swap_total_bytes / MIB),
            swap_used: Math.round(host.memory.swap_used_bytes / MIB),
          }
        : null,
      disks: host.disks.map((d) => ({
        role: d.role,
        path: d.path,
        ...(d.instances ? { instances: d.instances } : {}),
        total_gb: round(d.total_bytes / 1024 ** 3),
        free_gb: round(d.free_bytes / 1024 ** 3),
        used_percent: d.used_ratio === null ? null : round(d.used_ratio * 100),
      })),
    },
    podscope: {
      rss_mb: host.process ? round(host.process.rss_bytes / MIB) : null,
      heap_used_mb: host.process ? round(host.process.heap_used_bytes / MIB) : null,
      heap_total_mb: host.process ? round(host.process.heap_total_bytes / MIB) : null,
      buffers: state.buffers(),
    },
    timeline: {
      interval_ms: state.config.gpuIntervalMs,
      points: points.map(({ value: p }) => ({
        t: iso(p.t),
        gpus: p.uuids.map((uuid, i) => ({ uuid, used_mb: p.used_mb[i] ?? null, used_max_mb: p.used_max_mb?.[i] ?? p.used_mb[i] ?? null, utilization_percent: p.util[i] ?? null, power_w: p.power_w[i] ?? null, temperature_c: p.temperature_c[i] ?? null })),
      })),
      job_peaks: jobPeaksView(state.instances.all, state.gpuUse, now),
    },
    sampled_at: iso(now),
  };
}
