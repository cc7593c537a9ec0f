/**
 * What nvidia-smi tells about a GPU, as the sampler (sources), the state, the views and the metrics
 * all read it: one row per GPU, per-process memory, and the clock-event reason bits.
 */

/** One GPU as read from one row. */
export interface GpuRow {
  index: number;
  uuid: string;
  name: string;
  pci_bus_id: string | null;
  driver_version: string | null;
  pstate: string | null;
  persistence_mode: string | null;
  mig_mode: string | null;
  utilization_percent: number | null;
  memory_utilization_percent: number | null;
  memory_total_mb: number | null;
  memory_used_mb: number | null;
  /** The period's highest memory.used from the fast samples (NVML); absent where only one reading is taken. */
  memory_used_max_mb?: number | null;
  memory_free_mb: number | null;
  memory_reserved_mb: number | null;
  temperature_c: number | null;
  memory_temperature_c: number | null;
  power_w: number | null;
  power_instant_w: number | null;
  power_limit_w: number | null;
  /** The driver's energy counter, millijoules since it loaded (NVML, Volta and newer); absent from nvidia-smi. */
  energy_mj?: number | null;
  /** NVML only: the PCIe link in use, and its throughput over the driver's last 20 ms, in KB/s. */
  pcie_link_gen?: number | null;
  pcie_link_width?: number | null;
  pcie_tx_kbps?: number | null;
  pcie_rx_kbps?: number | null;
  /** NVML only: nanoseconds the clocks were held down by the power cap and by temperature, since the driver loaded. */
  power_violation_ns?: number | null;
  thermal_violation_ns?: number | null;
  sm_clock_mhz: number | null;
  sm_clock_max_mhz: number | null;
  fan_percent: number | null;
  /** The active clock-event (throttle) reasons bitmask. */
  clock_event_reasons: number | null;
  ecc_uncorrected_volatile: number | null;
  /** Why each null numeric field is null (`N/A`, `Not Supported`, `not queried`, …). */
  null_reasons: Record<string, string>;
}

/** Every reading of a GPU row, unknown: the start of a row being read, or of a GPU never reached. */
export const NO_READINGS = {
  utilization_percent: null,
  memory_utilization_percent: null,
  memory_total_mb: null,
  memory_used_mb: null,
  memory_free_mb: null,
  memory_reserved_mb: null,
  temperature_c: null,
  memory_temperature_c: null,
  power_w: null,
  power_instant_w: null,
  power_limit_w: null,
  sm_clock_mhz: null,
  sm_clock_max_mhz: null,
  fan_percent: null,
  clock_event_reasons: null,
  ecc_uncorrected_volatile: null,
} as const satisfies Partial<Record<keyof GpuRow, null>>;

/** Active clock-event reasons named from the bitmask (nvml's clocksEventReasons constants). */
export const CLOCK_EVENT_REASONS: ReadonlyArray<[number, string]> = [
  [0x1, 'gpu_idle'],
  [0x2, 'applications_clocks_setting'],
  [0x4, 'sw_power_cap'],
  [0x8, 'hw_slowdown'],
  [0x10, 'sync_boost'],
  [0x20, 'sw_thermal_slowdown'],
  [0x40, 'hw_thermal_slowdown'],
  [0x80, 'hw_power_brake_slowdown'],
  [0x100, 'display_clock_setting'],
];

export function activeReasons(mask: number | null): string[] {
  if (mask === null) return [];
  return CLOCK_EVENT_REASONS.filter(([bit]) => (mask & bit) !== 0).map(([, name]) => name);
}

export interface ComputeApp {
  gpu_uuid: string;
  pid: number | null;
  used_memory_mb: number | null;
  process_name: string;
  /** NVML only: the process's share of SM and memory-controller time in its latest sample, in percent. */
  sm_util_percent?: number | null;
  mem_util_percent?: number | null;
}


/** Memory health of one GPU, read at a slow period; each count null with a reason when unknown. */
export interface GpuHealth {
  ecc_mode: string | null;
  ecc: {
    volatile_corrected: number | null;
    volatile_uncorrected: number | null;
    aggregate_corrected: number | null;
    aggregate_uncorrected: number | null;
  };
  /** Before Ampere: pages retired for single- and double-bit errors, and retirements awaiting a reset. */
  retired_pages: { single_bit_ecc: number | null; double_bit_ecc: number | null; pending: boolean | null };
  /** Ampere and newer: rows remapped for errors; pending means the GPU needs a reset, failure that remapping failed. */
  remapped_rows: { correctable: number | null; uncorrectable: number | null; pending: boolean | null; failure: boolean | null };
  null_reasons: Record<string, string>;
}

export interface MigProcess {
  gpu_instance_id: number | null;
  compute_instance_id: number | null;
  pid: number | null;
  process_name: string;
  used_memory_mb: number | null;
}

/** One MIG device (a GPU instance with a compute instance) of a GPU in MIG mode. */
export interface MigDevice {
  index: number | null;
  gpu_instance_id: number | null;
  compute_instance_id: number | null;
  /** `3g.40gb`, `1c.3g.71gb`: from `nvidia-smi -L`; null when it did not say. */
  profile: string | null;
  uuid: string | null;
  memory_total_mb: number | null;
  memory_used_mb: number | null;
  processes: MigProcess[];
}

/**
 * A PCI bus id in one spelling, for comparing: nvidia-smi writes the domain with eight digits in
 * its queries (`00000000:34:00.0`) and four in its errors and `-q` (`0000:34:00.0`).
 */
export function normalizeBusId(bus: string): string {
  const m = /^([0-9a-f]+):([0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f])$/i.exec(bus.trim());
  return m ? `${m[1]!.replace(/^0+/, '')}:${m[2]!.toLowerCase()}` : bus.trim().toLowerCase();
}
