/** What podscope and its NVML sampler process (nvml-child.ts) say to each other over IPC. */
import type { ComputeApp, GpuRow } from '../shared/gpu-readings.js';

/** podscope → sampler, once: what to load and how often to read. */
export interface NvmlStart {
  library: string;
  /** Memory is read this often (PODSCOPE_GPU_FAST_MS). */
  fastMs: number;
  /** A full sample this often (PODSCOPE_GPU_INTERVAL_MS). */
  periodMs: number;
  /** The process list this often (PODSCOPE_GPU_APPS_INTERVAL_MS). */
  appsMs: number;
}

export type NvmlMessage =
  | { type: 'failed'; reason: string }
  | {
      type: 'ready';
      driver: string | null;
      gpus: Array<{ index: number; uuid: string; name: string; pci_bus_id: string | null }>;
      /** NVML functions this library does not export (their readings are null). */
      missing: string[];
      xid: { ok: true } | { ok: false; reason: string };
    }
  | { type: 'sample'; at: number; rows: GpuRow[]; lost: Array<{ pci_bus_id: string; reason: string; index: number }> }
  | { type: 'apps'; at: number; apps: ComputeApp[] }
  | { type: 'xid'; at: number; index: number | null; uuid: string | null; xid: number };
