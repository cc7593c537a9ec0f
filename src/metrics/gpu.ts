/**
 * GPU metrics (contract 2.10), in base units, read from the GPU state at scrape time. Per-GPU series
 * carry only `gpu` (index) and `uuid`; a GPU that is no longer seen stops being exported because
 * every family is rebuilt from the current readings on each scrape.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { LabelSet, readFamily } from './registry.js';
import type { GpuHealthReading, GpuReader, GpuReading } from '../state/gpu.js';
import { CLOCK_EVENT_REASONS, type MigDevice } from '../shared/gpu-readings.js';

const MIB = 1024 * 1024;

type PerGpu = (g: GpuReading) => number | null;

export interface GpuMetricsHooks {
  /** Records one nvidia-smi run. */
  onRun(durationMs: number | null, failure: string | null): void;
}

/** `Enabled` → 1, `Disabled` → 0, anything else unknown. */
function onOff(text: string | null): number | null {
  if (text === null) return null;
  const t = text.trim().toLowerCase();
  return t === 'enabled' ? 1 : t === 'disabled' ? 0 : null;
}

/** `P0` → 0 … `P15` → 15; anything else unknown. */
function pstateNumber(text: string | null): number | null {
  const m = /^P(\d{1,2})$/.exec(text?.trim() ?? '');
  return m ? Number(m[1]) : null;
}

export function registerGpuMetrics(registry: Registry, state: GpuReader, now: () => number = Date.now): GpuMetricsHooks {
  // A GPU never reached has no index when nothing tells it: it is named by its bus id. Each
  // GPU's label set is written once and kept, not rebuilt for every series.
  const noLabels = new LabelSet({});
  const labels = (g: GpuReading): LabelSet => noLabels.with('gpu', g.index === null ? (g.pci_bus_id ?? 'unknown') : String(g.index)).with('uuid', g.uuid);

  const gauge = (name: string, help: string, pick: PerGpu, scale = 1) =>
    readFamily(registry, name, help, 'gauge', (out) => {
      for (const g of state.readings()) {
        const v = pick(g);
        if (v !== null) out.push({ labels: labels(g), value: v * scale });
      }
    });

  // Scrapes read the state as of now; they never move it (the collector does, at each sample).
  const counter = (name: string, help: string, pick: (uuid: string, at: number) => number | undefined) =>
    readFamily(registry, name, help, 'counter', (out) => {
      const at = now();
      for (const g of state.readings()) {
        const v = pick(g.uuid, at);
        if (v !== undefined) out.push({ labels: labels(g), value: v });
      }
    });

  readFamily(
    registry,
    'runpod_gpu_seconds_total',
    'GPU-seconds held by the pod since podscope started: wall seconds times GPUs held (RUNPOD_GPU_COUNT or the GPUs seen), what RunPod bills.',
    'counter',
    (out) => out.push({ labels: {}, value: state.podGpuSeconds(now()) }),
  );
  counter('podscope_gpu_allocated_seconds_total', 'Wall seconds each GPU was held while podscope watched it.', (u, at) => state.totals(u, at)?.allocated_s);
  counter(
    'podscope_gpu_busy_seconds_total',
    'Utilization-weighted seconds per GPU (integral of utilization.gpu/100); gaps over three intervals, lost GPUs and null readings earn nothing.',
    (u) => state.totals(u)?.busy_s,
  );
  counter(
    'podscope_gpu_busy_unknown_seconds_total',
    'Seconds per GPU that could not be credited as busy or idle (sampling gaps, lost GPU, utilization not reported, as under MIG).',
    (u) => state.totals(u)?.busy_unknown_s,
  );
  counter('podscope_gpu_energy_joules_total', 'Energy per GPU in joules, estimated by integrating power.draw over time (nvidia-smi has no energy counter).', (u) => state.totals(u)?.energy_j);

  gauge('podscope_gpu_utilization_ratio', 'GPU utilization (share of time a kernel ran), 0 to 1; absent when nvidia-smi reports N/A (MIG).', (g) => g.utilization_percent, 0.01);
  gauge('podscope_gpu_memory_utilization_ratio', 'Memory controller utilization, 0 to 1.', (g) => g.memory_utilization_percent, 0.01);
  gauge('podscope_gpu_memory_used_bytes', 'GPU memory used, in bytes.', (g) => g.memory_used_mb, MIB);
  gauge('podscope_gpu_memory_total_bytes', 'GPU memory total, in bytes.', (g) => g.memory_total_mb, MIB);
  gauge('podscope_gpu_memory_free_bytes', 'GPU memory free, in bytes.', (g) => g.memory_free_mb, MIB);
  gauge('podscope_gpu_memory_reserved_bytes', 'GPU memory reserved by the driver, in bytes.', (g) => g.memory_reserved_mb, MIB);
  gauge('podscope_gpu_temperature_celsius', 'GPU core temperature, in degrees Celsius.', (g) => g.temperature_c);
  gauge('podscope_gpu_power_draw_watts', 'GPU power draw (1-s average where available), in watts.', (g) => g.power_w);
  gauge('podscope_gpu_power_limit_watts', 'Enforced GPU power limit, in watts.', (g) => g.power_limit_w);
  gauge('podscope_gpu_sm_clock_hertz', 'Current SM clock, in hertz.', (g) => g.sm_clock_mhz, 1e6);
  gauge('podscope_gpu_sm_clock_max_hertz', 'Highest SM clock the GPU can run at, in hertz.', (g) => g.sm_clock_max_mhz, 1e6);
  gauge('podscope_gpu_memory_temperature_celsius', 'GPU memory (HBM) temperature, in degrees Celsius; absent where the GPU does not report it.', (g) => g.memory_temperature_c);
  gauge('podscope_gpu_fan_speed_ratio', 'Fan speed the driver asks for, 0 to 1; absent on passively cooled GPUs.', (g) => g.fan_percent, 0.01);
  gauge('podscope_gpu_pcie_link_generation', 'PCIe link generation in use (NVML only).', (g) => g.pcie_link_gen ?? null);
  gauge('podscope_gpu_pcie_link_width', 'PCIe link width in use, in lanes (NVML only).', (g) => g.pcie_link_width ?? null);
  readFamily(registry, 'podscope_gpu_pcie_throughput_bytes_per_second', 'PCIe throughput over the driver\'s last 20 ms, by direction (NVML only).', 'gauge', (out) => {
    for (const g of state.readings()) {
      if (typeof g.pcie_tx_kbps === 'number') out.push({ labels: labels(g).with('direction', 'tx'), value: g.pcie_tx_kbps * 1024 });
      if (typeof g.pcie_rx_kbps === 'number') out.push({ labels: labels(g).with('direction', 'rx'), value: g.pcie_rx_kbps * 1024 });
    }
  });
  readFamily(registry, 'podscope_gpu_clock_violation_seconds_total', 'Seconds the clocks were held down, by the power cap or by temperature, since the driver loaded (NVML only).', 'counter', (out) => {
    for (const g of state.readings()) {
      if (typeof g.power_violation_ns === 'number') out.push({ labels: labels(g).with('policy', 'power'), value: g.power_violation_ns / 1e9 });
      if (typeof g.thermal_violation_ns === 'number') out.push({ labels: labels(g).with('policy', 'thermal'), value: g.thermal_violation_ns / 1e9 });
    }
  });
  gauge('podscope_gpu_persistence_mode', 'Whether persistence mode is enabled (1) or disabled (0).', (g) => onOff(g.persistence_mode));
  gauge('podscope_gpu_performance_state', 'Performance state: 0 (P0, highest) to 15 (P15, lowest).', (g) => pstateNumber(g.pstate));
  gauge('podscope_gpu_ecc_uncorrected_volatile_errors', 'Uncorrected ECC errors since the driver loaded (volatile total).', (g) => g.ecc_uncorrected_volatile);
  gauge('podscope_gpu_lost', 'Whether nvidia-smi could not reach this GPU in its latest run (1) or could (0).', (g) => (g.lost ? 1 : 0));
  gauge('podscope_gpu_sample_age_seconds', 'Age of this GPU\'s latest reading, in seconds.', (g) => (now() - g.sampled_at) / 1000);

  // Memory health, from the slow-period query; absent for a field the driver does not report.
  const healthGauge = (name: string, help: string, labelName: string | null, picks: Array<[string, (h: GpuHealthReading) => number | boolean | null]>) =>
    readFamily(registry, name, help, 'gauge', (out) => {
      for (const g of state.readings()) {
        const h = g.uuid ? state.health(g.uuid) : null;
        if (!h) continue;
        for (const [label, pick] of picks) {
          const v = pick(h);
          if (v === null) continue;
          out.push({ labels: labelName ? labels(g).with(labelName, label) : labels(g), value: typeof v === 'boolean' ? Number(v) : v });
        }
      }
    });
  healthGauge('podscope_gpu_ecc_errors', 'ECC errors by kind (corrected, uncorrected) and scope (volatile: since the driver loaded; aggregate: over the GPU\'s life, as kind_scope).', 'type', [
    ['corrected_volatile', (h) => h.ecc.volatile_corrected],
    ['uncorrected_volatile', (h) => h.ecc.volatile_uncorrected],
    ['corrected_aggregate', (h) => h.ecc.aggregate_corrected],
    ['uncorrected_aggregate', (h) => h.ecc.aggregate_uncorrected],
  ]);
  healthGauge('podscope_gpu_retired_pages', 'GPU memory pages retired, by cause (before Ampere).', 'cause', [
    ['single_bit_ecc', (h) => h.retired_pages.single_bit_ecc],
    ['double_bit_ecc', (h) => h.retired_pages.double_bit_ecc],
  ]);
  healthGauge('podscope_gpu_retired_pages_pending', 'Whether a page retirement awaits a GPU reset (1) or not (0).', null, [['', (h) => h.retired_pages.pending]]);
  healthGauge('podscope_gpu_remapped_rows', 'GPU memory rows remapped, by the kind of error that caused it (Ampere and newer).', 'kind', [
    ['correctable', (h) => h.remapped_rows.correctable],
    ['uncorrectable', (h) => h.remapped_rows.uncorrectable],
  ]);
  healthGauge('podscope_gpu_remapped_rows_pending', 'Whether a row remap awaits a GPU reset (1) or not (0).', null, [['', (h) => h.remapped_rows.pending]]);
  healthGauge('podscope_gpu_remapped_rows_failure', 'Whether row remapping has failed on this GPU (1) or not (0).', null, [['', (h) => h.remapped_rows.failure]]);

  // MIG devices of GPUs in MIG mode.
  const migGauge = (name: string, help: string, pick: (d: MigDevice) => number | null, scale = 1) =>
    readFamily(registry, name, help, 'gauge', (out) => {
      for (const g of state.readings()) {
        for (const d of g.uuid ? state.mig(g.uuid) : []) {
          const v = pick(d);
          if (v === null) continue;
          const mig = labels(g).with('mig_instance', String(d.gpu_instance_id ?? d.index ?? 'unknown'));
          out.push({ labels: mig.with('compute_instance', String(d.compute_instance_id ?? 'unknown')).with('profile', d.profile ?? 'unknown'), value: v * scale });
        }
      }
    });
  migGauge('podscope_gpu_mig_memory_used_bytes', 'Memory used in a MIG device, in bytes.', (d) => d.memory_used_mb, MIB);
  migGauge('podscope_gpu_mig_memory_total_bytes', 'Memory of a MIG device, in bytes.', (d) => d.memory_total_mb, MIB);
  migGauge('podscope_gpu_mig_processes', 'Processes running in a MIG device.', (d) => d.processes.length);

  readFamily(registry, 'podscope_gpu_clock_event_reason_active', 'Whether a clock-event (throttle) reason is active on the GPU (1) or not (0).', 'gauge', (out) => {
    for (const g of state.readings()) {
      if (g.clock_event_reasons === null) continue;
      for (const [bit, reason] of CLOCK_EVENT_REASONS) out.push({ labels: labels(g).with('reason', reason), value: (g.clock_event_reasons & bit) !== 0 ? 1 : 0 });
    }
  });

  readFamily(registry, 'podscope_gpu_xid_errors_total', 'Xid errors the GPU reported (NVML events), by GPU and Xid code.', 'counter', (out) => {
    for (const c of state.xidCounts.values()) out.push({ labels: { gpu: c.gpu, uuid: c.uuid, xid: String(c.xid) }, value: c.count });
  });
  readFamily(registry, 'podscope_gpu_backend_info', 'How the GPUs are read (nvml or nvidia-smi); always 1.', 'gauge', (out) => {
    out.push({ labels: { backend: state.backend.name, xid_events: state.backend.xid_events.ok ? 'on' : 'off' }, value: 1 });
  });
  readFamily(registry, 'podscope_gpu_info', 'GPU identity; always 1. Join on gpu and uuid.', 'gauge', (out) => {
    for (const g of state.readings()) out.push({ labels: labels(g).with('name', g.name).with('driver', g.driver_version ?? 'unknown'), value: 1 });
  });

  const duration = new Histogram({
    name: 'podscope_gpu_sample_duration_seconds',
    help: 'Duration of one nvidia-smi query run, in seconds (runs only: a sampling loop has no per-sample duration).',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const failures = new Counter({
    name: 'podscope_gpu_sample_failures_total',
    help: 'nvidia-smi query runs that produced no GPU data, by reason code.',
    labelNames: ['reason'],
    registers: [registry],
  });

  return {
    onRun(durationMs, failure) {
      if (durationMs !== null) duration.observe(durationMs / 1000);
      if (failure) failures.inc({ reason: failure });
    },
  };
}
