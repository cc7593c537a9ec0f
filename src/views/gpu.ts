/**
 * GPU objects as /debug/status and /debug/memory show them (contract 2.3, 2.7).
 */
import type { GpuHealthReading, GpuReader, GpuReading } from '../state/gpu.js';
import { activeReasons, type MigDevice } from '../shared/gpu-readings.js';
import { healthVerdict } from '../shared/gpu-health.js';
import { iso } from '../format.js';

const STATUS_FIELDS = [
  'memory_used_mb',
  'memory_total_mb',
  'utilization_percent',
  'temperature_c',
  'power_w',
  'power_limit_w',
  'sm_clock_mhz',
  'sm_clock_max_mhz',
  'memory_temperature_c',
  'fan_percent',
] as const;

export interface GpuStatusView {
  index: number | null;
  uuid: string | null;
  pci_bus_id: string | null;
  name: string;
  memory_used_mb: number | null;
  memory_total_mb: number | null;
  utilization_percent: number | null;
  temperature_c: number | null;
  power_w: number | null;
  power_limit_w: number | null;
  sm_clock_mhz: number | null;
  sm_clock_max_mhz: number | null;
  memory_temperature_c: number | null;
  fan_percent: number | null;
  pstate: string | null;
  persistence_mode: string | null;
  mig_mode: string | null;
  clock_event_reasons: string[];
  lost: boolean;
  lost_reason: string | null;
  /** Lost before podscope ever saw it answer: known by its bus id only. */
  never_seen: boolean;
  /** Memory health from the slow-period query; null until it has run, with the reason. */
  health: HealthView | null;
  /** The MIG devices of a GPU in MIG mode (empty otherwise). */
  mig_devices: MigDevice[];
  sampled_at: string;
  age_s: number;
  /** Why a field above is null, for the fields that are. */
  null_reasons?: Record<string, string>;
  /** Read through NVML only: the PCIe link and its throughput in MB/s. */
  pcie?: { link_gen: number | null; link_width: number | null; tx_mb_s: number | null; rx_mb_s: number | null };
  /** Read through NVML only: seconds the clocks were held down by the power cap and by temperature. */
  clock_violation_s?: { power: number | null; thermal: number | null };
}

export interface HealthView extends Omit<GpuHealthReading, 'sampled_at'> {
  sampled_at: string;
  /** What on-call should do about it, in a sentence; null when nothing is wrong. */
  verdict: string | null;
}

export function healthView(h: GpuHealthReading | null): HealthView | null {
  if (!h) return null;
  return { ...h, sampled_at: iso(h.sampled_at), verdict: healthVerdict(h)?.text ?? null };
}

export function gpuStatusView(g: GpuReading, now: number, gpu?: GpuReader | null): GpuStatusView {
  const reasons: Record<string, string> = {};
  for (const f of STATUS_FIELDS) {
    if (g[f] === null && g.null_reasons[f]) reasons[f] = g.null_reasons[f]!;
  }
  for (const f of ['pstate', 'persistence_mode'] as const) if (g[f] === null) reasons[f] = g.null_reasons[f] ?? 'not reported';
  const view: GpuStatusView = {
    index: g.index,
    uuid: g.uuid || null,
    pci_bus_id: g.pci_bus_id,
    name: g.name,
    memory_used_mb: g.memory_used_mb,
    memory_total_mb: g.memory_total_mb,
    utilization_percent: g.utilization_percent,
    temperature_c: g.temperature_c,
    power_w: g.power_w,
    power_limit_w: g.power_limit_w,
    sm_clock_mhz: g.sm_clock_mhz,
    sm_clock_max_mhz: g.sm_clock_max_mhz,
    memory_temperature_c: g.memory_temperature_c,
    fan_percent: g.fan_percent,
    pstate: g.pstate,
    persistence_mode: g.persistence_mode,
    mig_mode: g.mig_mode,
    clock_event_reasons: activeReasons(g.clock_event_reasons),
    lost: g.lost,
    lost_reason: g.lost_reason,
    never_seen: g.never_seen,
    health: gpu && g.uuid ? healthView(gpu.health(g.uuid)) : null,
    mig_devices: gpu && g.uuid ? gpu.mig(g.uuid) : [],
    sampled_at: iso(g.sampled_at),
    age_s: Math.round((now - g.sampled_at) / 100) / 10,
  };
  if (g.utilization_percent === null && g.mig_mode !== null && /^enabled$/i.test(g.mig_mode) && !g.lost) {
    reasons.utilization_percent = `${reasons.utilization_percent ?? 'N/A'}: in MIG mode nvidia-smi reports no GPU-level utilization; see mig_devices`;
  }
  if (g.pcie_link_gen !== undefined || g.pcie_tx_kbps !== undefined) {
    const mbps = (kb: number | null | undefined) => (kb === null || kb === undefined ? null : Math.round(kb / 100) / 10);
    view.pcie = { link_gen: g.pcie_link_gen ?? null, link_width: g.pcie_link_width ?? null, tx_mb_s: mbps(g.pcie_tx_kbps), rx_mb_s: mbps(g.pcie_rx_kbps) };
  }
  if (g.power_violation_ns !== undefined || g.thermal_violation_ns !== undefined) {
    const s = (ns: number | null | undefined) => (ns === null || ns === undefined ? null : Math.round(ns / 1e6) / 1000);
    view.clock_violation_s = { power: s(g.power_violation_ns), thermal: s(g.thermal_violation_ns) };
  }
  if (g.index === null) reasons.index = g.null_reasons.index ?? 'unknown';
  if (view.health === null) reasons.health = g.never_seen ? 'never reached' : 'the memory-health query has not run yet, or this driver offers none of its fields';
  if (Object.keys(reasons).length > 0) view.null_reasons = reasons;
  return view;
}
