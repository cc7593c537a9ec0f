/**
 * GPU objects as /debug/status and /debug/memory show them (contract 2.3, 2.7).
 */
import type { GpuReading } from '../state/gpu.js';
import { activeReasons } from '../shared/gpu-readings.js';

const STATUS_FIELDS = ['memory_used_mb', 'memory_total_mb', 'utilization_percent', 'temperature_c', 'power_w'] as const;

export interface GpuStatusView {
  index: number;
  uuid: string;
  name: string;
  memory_used_mb: number | null;
  memory_total_mb: number | null;
  utilization_percent: number | null;
  temperature_c: number | null;
  power_w: number | null;
  power_limit_w: number | null;
  sm_clock_mhz: number | null;
  pstate: string | null;
  mig_mode: string | null;
  clock_event_reasons: string[];
  lost: boolean;
  lost_reason: string | null;
  sampled_at: string;
  age_s: number;
  /** Why a field above is null, for the fields that are. */
  null_reasons?: Record<string, string>;
}

export function gpuStatusView(g: GpuReading, now: number): GpuStatusView {
  const reasons: Record<string, string> = {};
  for (const f of STATUS_FIELDS) {
    if (g[f] === null && g.null_reasons[f]) reasons[f] = g.null_reasons[f]!;
  }
  if (g.power_w === null && g.null_reasons.power_w) reasons.power_w = g.null_reasons.power_w;
  const view: GpuStatusView = {
    index: g.index,
    uuid: g.uuid,
    name: g.name,
    memory_used_mb: g.memory_used_mb,
    memory_total_mb: g.memory_total_mb,
    utilization_percent: g.utilization_percent,
    temperature_c: g.temperature_c,
    power_w: g.power_w,
    power_limit_w: g.power_limit_w,
    sm_clock_mhz: g.sm_clock_mhz,
    pstate: g.pstate,
    mig_mode: g.mig_mode,
    clock_event_reasons: activeReasons(g.clock_event_reasons),
    lost: g.lost,
    lost_reason: g.lost_reason,
    sampled_at: new Date(g.sampled_at).toISOString(),
    age_s: Math.round((now - g.sampled_at) / 100) / 10,
  };
  if (Object.keys(reasons).length > 0) view.null_reasons = reasons;
  return view;
}
