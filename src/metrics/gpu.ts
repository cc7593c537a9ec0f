/**
 * GPU metrics (contract 2.10), in base units, read from GpuState at scrape time. Per-GPU series
 * carry only `gpu` (index) and `uuid`; a GPU that is no longer seen stops being exported because
 * every family is rebuilt from the current readings on each scrape.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { GpuReading, GpuState } from '../state/gpu.js';
import { CLOCK_EVENT_REASONS } from '../shared/gpu-readings.js';

const MIB = 1024 * 1024;
const L = ['gpu', 'uuid'] as const;

type PerGpu = (g: GpuReading) => number | null;

export interface GpuMetricsHooks {
  /** Records one nvidia-smi run. */
  onRun(durationMs: number, failure: string | null): void;
}

export function registerGpuMetrics(registry: Registry, state: GpuState, now: () => number = Date.now): GpuMetricsHooks {
  const labels = (g: GpuReading) => ({ gpu: String(g.index), uuid: g.uuid });

  const gauge = (name: string, help: string, pick: PerGpu, scale = 1) =>
    new Gauge({
      name,
      help,
      labelNames: L,
      registers: [registry],
      collect() {
        this.reset();
        for (const g of state.readings()) {
          const v = pick(g);
          if (v !== null) this.set(labels(g), v * scale);
        }
      },
    });

  // Scrapes read the state as of now; they never move it (the collector does, at each sample).
  const counter = (name: string, help: string, pick: (uuid: string, at: number) => number | undefined, labelNames: readonly string[] = L) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        const at = now();
        for (const g of state.readings()) {
          const v = pick(g.uuid, at);
          if (v !== undefined) this.inc(labels(g), v);
        }
      },
    });

  new Counter({
    name: 'runpod_gpu_seconds_total',
    help: 'GPU-seconds held by the pod since podscope started: wall seconds times GPUs held (RUNPOD_GPU_COUNT or the GPUs seen), what RunPod bills.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(state.podGpuSeconds(now()));
    },
  });
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
  gauge('podscope_gpu_ecc_uncorrected_volatile_errors', 'Uncorrected ECC errors since the driver loaded (volatile total).', (g) => g.ecc_uncorrected_volatile);
  gauge('podscope_gpu_lost', 'Whether nvidia-smi could not reach this GPU in its latest run (1) or could (0).', (g) => (g.lost ? 1 : 0));
  gauge('podscope_gpu_sample_age_seconds', 'Age of this GPU\'s latest reading, in seconds.', (g) => (now() - g.sampled_at) / 1000);

  new Gauge({
    name: 'podscope_gpu_clock_event_reason_active',
    help: 'Whether a clock-event (throttle) reason is active on the GPU (1) or not (0).',
    labelNames: [...L, 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of state.readings()) {
        if (g.clock_event_reasons === null) continue;
        for (const [bit, reason] of CLOCK_EVENT_REASONS) this.set({ ...labels(g), reason }, (g.clock_event_reasons & bit) !== 0 ? 1 : 0);
      }
    },
  });

  new Gauge({
    name: 'podscope_gpu_info',
    help: 'GPU identity; always 1. Join on gpu and uuid.',
    labelNames: [...L, 'name', 'driver'],
    registers: [registry],
    collect() {
      this.reset();
      for (const g of state.readings()) this.set({ ...labels(g), name: g.name, driver: g.driver_version ?? 'unknown' }, 1);
    },
  });

  const duration = new Histogram({
    name: 'podscope_gpu_sample_duration_seconds',
    help: 'Duration of one nvidia-smi query run, in seconds.',
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
      duration.observe(durationMs / 1000);
      if (failure) failures.inc({ reason: failure });
    },
  };
}
