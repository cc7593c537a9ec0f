import { NO_READINGS, type ComputeApp, type GpuHealth, type GpuRow } from '../shared/gpu-readings.js';
/**
 * nvidia-smi: which fields to ask for, and pure parsers for what comes back.
 *
 * Output is read by column position against the field list asked for, never by header text
 * (aliases come back under their canonical names). Every non-numeric sentinel becomes null with
 * its reason, never 0. Error lines mixed with data rows are kept apart, so healthy GPUs survive a
 * lost one.
 */

/** What podscope wants to know about each GPU, with the spellings different drivers accept. */
export const WANTED_FIELDS = {
  index: ['index'],
  uuid: ['uuid'],
  name: ['name'],
  pci_bus_id: ['pci.bus_id'],
  driver_version: ['kmd_version', 'driver_version'],
  pstate: ['pstate'],
  persistence_mode: ['persistence_mode'],
  mig_mode: ['mig.mode.current'],
  utilization_gpu: ['utilization.gpu'],
  utilization_memory: ['utilization.memory'],
  memory_total: ['memory.total'],
  memory_used: ['memory.used'],
  memory_free: ['memory.free'],
  memory_reserved: ['memory.reserved'],
  temperature_gpu: ['temperature.gpu'],
  temperature_memory: ['temperature.memory'],
  power_average: ['power.draw.average'],
  power_draw: ['power.draw'],
  power_instant: ['power.draw.instant'],
  power_limit: ['enforced.power.limit', 'power.limit'],
  clock_sm: ['clocks.current.sm', 'clocks.sm'],
  clock_sm_max: ['clocks.max.sm'],
  clock_event_reasons: ['clocks_event_reasons.active', 'clocks_throttle_reasons.active'],
  ecc_uncorrected: ['ecc.errors.uncorrected.volatile.total'],
  fan_speed: ['fan.speed'],
} as const;

export type FieldKey = keyof typeof WANTED_FIELDS;

/** Fields without which a row cannot be keyed; a driver refusing one of these is a hard failure. */
export const REQUIRED_KEYS: readonly FieldKey[] = ['index', 'uuid', 'name'];

export const COMPUTE_APP_FIELDS = ['gpu_uuid', 'pid', 'used_memory', 'process_name'] as const;

/** Field names listed by `nvidia-smi --help-query-gpu`: each quoted name, aliases included. */
export function parseHelpQueryGpu(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('"')) continue;
    for (const m of line.matchAll(/"([A-Za-z0-9_.]+)"/g)) names.add(m[1]!);
  }
  return names;
}

/**
 * Memory health, asked at a slow period: ECC counts since the driver loaded (volatile) and over the
 * GPU's life (aggregate), retired pages (before Ampere) and remapped rows (Ampere and newer).
 */
export const HEALTH_FIELDS = {
  uuid: ['uuid'],
  ecc_mode: ['ecc.mode.current'],
  ecc_corrected_volatile: ['ecc.errors.corrected.volatile.total'],
  ecc_uncorrected_volatile: ['ecc.errors.uncorrected.volatile.total'],
  ecc_corrected_aggregate: ['ecc.errors.corrected.aggregate.total'],
  ecc_uncorrected_aggregate: ['ecc.errors.uncorrected.aggregate.total'],
  retired_single_bit: ['retired_pages.single_bit_ecc.count', 'retired_pages.sbe'],
  retired_double_bit: ['retired_pages.double_bit.count', 'retired_pages.dbe'],
  retired_pending: ['retired_pages.pending'],
  remapped_correctable: ['remapped_rows.correctable', 'remapped_rows.sbe'],
  remapped_uncorrectable: ['remapped_rows.uncorrectable', 'remapped_rows.dbe'],
  remapped_pending: ['remapped_rows.pending'],
  remapped_failure: ['remapped_rows.failure'],
} as const;

export type HealthKey = keyof typeof HEALTH_FIELDS;

export interface FieldPlan<K extends string = FieldKey> {
  /** The names passed to --query-gpu=, in order. */
  fields: string[];
  /** Which key each position answers. */
  keys: K[];
  /** Keys this driver offers no spelling for. */
  missing: K[];
}

/**
 * Chooses one spelling per wanted key among the names the driver accepts (all of them when the
 * accepted set is unknown), leaving out names known to be rejected.
 */
export function planFields(accepted: Set<string> | null, rejected?: ReadonlySet<string>): FieldPlan<FieldKey>;
export function planFields<K extends string>(accepted: Set<string> | null, rejected: ReadonlySet<string>, wanted: Record<K, readonly string[]>): FieldPlan<K>;
export function planFields(accepted: Set<string> | null, rejected: ReadonlySet<string> = new Set(), wanted: Record<string, readonly string[]> = WANTED_FIELDS): FieldPlan<string> {
  const fields: string[] = [];
  const keys: string[] = [];
  const missing: string[] = [];
  for (const [key, spellings] of Object.entries(wanted)) {
    const pick = spellings.find((s) => !rejected.has(s) && (accepted === null || accepted.has(s)));
    if (pick) {
      fields.push(pick);
      keys.push(key);
    } else {
      missing.push(key);
    }
  }
  return { fields, keys, missing };
}

/** `Field "x" is not a valid field to query.` → "x". */
export function rejectedField(text: string): string | null {
  const m = /Field "([^"]+)" is not a valid field to query/.exec(text);
  return m ? m[1]! : null;
}

export type Cell = { value: number; text: string } | { value: null; text: string | null; reason: string };

const SENTINEL_BRACKETS = /^\[(.+)\]$/;

/** Reads one CSV cell as a number; sentinels and text become null with the reason. */
export function numberCell(raw: string | undefined): Cell {
  const t = (raw ?? '').trim();
  if (t === '') return { value: null, text: null, reason: 'empty' };
  const b = SENTINEL_BRACKETS.exec(t);
  if (b) return { value: null, text: t, reason: b[1]! };
  if (t === 'N/A' || t === 'ERR!') return { value: null, text: t, reason: t };
  // Tolerate units left in values (a driver or wrapper that ignores nounits).
  const m = /^(-?\d+(?:\.\d+)?)(?:\s*(?:%|MiB|W|MHz|C|us))?$/.exec(t);
  if (m) return { value: Number(m[1]), text: t };
  if (/^0x[0-9a-fA-F]+$/.test(t)) return { value: Number.parseInt(t, 16), text: t };
  return { value: null, text: t, reason: 'not a number' };
}

/** Reads one CSV cell as text; sentinels become null. */
export function textCell(raw: string | undefined): string | null {
  const t = (raw ?? '').trim();
  if (t === '' || t === 'N/A' || SENTINEL_BRACKETS.test(t)) return null;
  return t;
}

export interface LostGpu {
  /** As printed: `0000:34:00.0`, sometimes after an index (`GPU1: …`). */
  pci_bus_id: string;
  index: number | null;
  reason: string;
  line: string;
}

// `Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error`, also `GPU0000:07:00.0`
// and 610's `GPU1: 0000:34:00.0`.
const DEVICE_HANDLE = /^Unable to determine the device handle for GPU\s*(?:(\d+):\s*)?([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]):\s*(.*)$/;

export function parseLostGpuLine(line: string): LostGpu | null {
  const m = DEVICE_HANDLE.exec(line.trim());
  if (!m) return null;
  return { index: m[1] === undefined ? null : Number(m[1]), pci_bus_id: m[2]!, reason: m[3]!.trim() || 'Unknown Error', line: line.trim() };
}

export interface CsvParse {
  /** Rows with exactly the asked number of columns, cells trimmed. */
  rows: string[][];
  lost: LostGpu[];
  /** Lines that were neither rows nor known error lines. */
  unparsed: string[];
}

/** Splits `--format=csv,noheader,nounits` output into rows of `columns` cells. */
export function parseCsvRows(text: string, columns: number, opts: { joinTail?: boolean } = {}): CsvParse {
  const rows: string[][] = [];
  const lost: LostGpu[] = [];
  const unparsed: string[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === '') continue;
    const gone = parseLostGpuLine(line);
    if (gone) {
      lost.push(gone);
      continue;
    }
    let cells = line.split(',').map((c) => c.trim());
    if (opts.joinTail && cells.length > columns) {
      // The last column (a process name) may itself contain commas.
      cells = [...cells.slice(0, columns - 1), cells.slice(columns - 1).join(',').trim()];
    }
    if (cells.length === columns) rows.push(cells);
    else unparsed.push(line.length > 300 ? `${line.slice(0, 300)}…` : line);
  }
  return { rows, lost, unparsed };
}

const NOT_QUERIED = 'not queried (this driver does not offer the field)';

/**
 * Reads one CSV row by field key, for the GPU query and the memory-health query alike: the raw
 * cell of a key, and numbers and yes/no flags that are null with their reason (recorded under the
 * reading's name in `reasons`) when the field was not queried or the cell says why it has none.
 */
function fieldReader<K extends string>(cells: readonly string[], keys: readonly K[]) {
  const pos = new Map<K, number>();
  keys.forEach((k, i) => pos.set(k, i));
  const reasons: Record<string, string> = {};
  const raw = (k: K): string | undefined => {
    const i = pos.get(k);
    return i === undefined ? undefined : cells[i];
  };
  const queried = (name: string, k: K): boolean => {
    if (pos.has(k)) return true;
    reasons[name] = NOT_QUERIED;
    return false;
  };
  return {
    raw,
    reasons,
    num(name: string, k: K): number | null {
      if (!queried(name, k)) return null;
      const c = numberCell(raw(k));
      if (c.value === null) reasons[name] = c.reason;
      return c.value;
    },
    flag(name: string, k: K): boolean | null {
      if (!queried(name, k)) return null;
      const f = yesNo(raw(k));
      if (f.value === null) reasons[name] = f.reason!;
      return f.value;
    },
  };
}

const NUMERIC: Array<[keyof GpuRow, FieldKey]> = [
  ['utilization_percent', 'utilization_gpu'],
  ['memory_utilization_percent', 'utilization_memory'],
  ['memory_total_mb', 'memory_total'],
  ['memory_used_mb', 'memory_used'],
  ['memory_free_mb', 'memory_free'],
  ['memory_reserved_mb', 'memory_reserved'],
  ['temperature_c', 'temperature_gpu'],
  ['memory_temperature_c', 'temperature_memory'],
  ['power_instant_w', 'power_instant'],
  ['power_limit_w', 'power_limit'],
  ['sm_clock_mhz', 'clock_sm'],
  ['sm_clock_max_mhz', 'clock_sm_max'],
  ['fan_percent', 'fan_speed'],
  ['clock_event_reasons', 'clock_event_reasons'],
  ['ecc_uncorrected_volatile', 'ecc_uncorrected'],
];

/** Turns one row into a GpuRow; null when the row cannot be keyed (no index or uuid). */
export function toGpuRow(cells: readonly string[], keys: readonly FieldKey[]): GpuRow | null {
  const { raw: cell, reasons, num } = fieldReader(cells, keys);
  const index = numberCell(cell('index'));
  const uuid = textCell(cell('uuid'));
  if (index.value === null || uuid === null) return null;
  const row: GpuRow = {
    index: index.value,
    uuid,
    name: textCell(cell('name')) ?? 'unknown GPU',
    pci_bus_id: textCell(cell('pci_bus_id')),
    driver_version: textCell(cell('driver_version')),
    pstate: textCell(cell('pstate')),
    persistence_mode: textCell(cell('persistence_mode')),
    mig_mode: textCell(cell('mig_mode')),
    ...NO_READINGS,
    null_reasons: reasons,
  };
  for (const [field, key] of NUMERIC) (row as unknown as Record<string, number | null>)[field] = num(field, key);
  // Power: the 1-s average where the GPU has it (Ampere+), else the plain reading, else instant.
  const power = [cell('power_average'), cell('power_draw'), cell('power_instant')].map(numberCell).find((c) => c.value !== null);
  row.power_w = power ? power.value : null;
  if (row.power_w === null) {
    const c = numberCell(cell('power_draw') ?? cell('power_average'));
    reasons.power_w = c.value === null ? c.reason : 'not queried';
  }
  return row;
}

/** `Yes` → true, `No` → false; anything else unknown. */
function yesNo(raw: string | undefined): { value: boolean | null; reason?: string } {
  const t = (raw ?? '').trim();
  if (/^yes$/i.test(t)) return { value: true };
  if (/^no$/i.test(t)) return { value: false };
  const c = numberCell(t);
  return { value: null, reason: c.value === null ? c.reason : 'not yes or no' };
}

/** One row of the memory-health query; null when it has no uuid. */
export function toGpuHealth(cells: readonly string[], keys: readonly HealthKey[]): (GpuHealth & { uuid: string }) | null {
  const { raw, reasons, num, flag } = fieldReader(cells, keys);
  const uuid = textCell(raw('uuid'));
  if (uuid === null) return null;
  return {
    uuid,
    ecc_mode: textCell(raw('ecc_mode')),
    ecc: {
      volatile_corrected: num('ecc.volatile_corrected', 'ecc_corrected_volatile'),
      volatile_uncorrected: num('ecc.volatile_uncorrected', 'ecc_uncorrected_volatile'),
      aggregate_corrected: num('ecc.aggregate_corrected', 'ecc_corrected_aggregate'),
      aggregate_uncorrected: num('ecc.aggregate_uncorrected', 'ecc_uncorrected_aggregate'),
    },
    retired_pages: {
      single_bit_ecc: num('retired_pages.single_bit_ecc', 'retired_single_bit'),
      double_bit_ecc: num('retired_pages.double_bit_ecc', 'retired_double_bit'),
      pending: flag('retired_pages.pending', 'retired_pending'),
    },
    remapped_rows: {
      correctable: num('remapped_rows.correctable', 'remapped_correctable'),
      uncorrectable: num('remapped_rows.uncorrectable', 'remapped_uncorrectable'),
      pending: flag('remapped_rows.pending', 'remapped_pending'),
      failure: flag('remapped_rows.failure', 'remapped_failure'),
    },
    null_reasons: reasons,
  };
}

export function parseComputeApps(text: string): { apps: ComputeApp[]; unparsed: string[] } {
  const { rows, unparsed } = parseCsvRows(text, COMPUTE_APP_FIELDS.length, { joinTail: true });
  const apps: ComputeApp[] = [];
  for (const [uuid, pid, mem, name] of rows) {
    const u = textCell(uuid);
    if (!u) continue;
    apps.push({ gpu_uuid: u, pid: numberCell(pid).value, used_memory_mb: numberCell(mem).value, process_name: name ?? '' });
  }
  return { apps, unparsed };
}

export type SmiFailure =
  | 'NVIDIA_SMI_MISSING'
  | 'NVIDIA_SMI_TIMEOUT'
  | 'NVIDIA_SMI_STUCK'
  | 'NVIDIA_DRIVER_NOT_LOADED'
  | 'NVML_LIBRARY_MISSING'
  | 'GPU_LOST'
  | 'NVML_VERSION_MISMATCH'
  | 'NVML_INIT_FAILED'
  | 'NO_GPUS_FOUND'
  | 'NVIDIA_SMI_FIELD_REJECTED'
  | 'NVIDIA_SMI_FAILED'
  | 'NVIDIA_SMI_UNPARSABLE';

/** Names a failed run from its exit code and the text it printed. */
export function classifyFailure(code: number | null, text: string): { code: SmiFailure; message: string } {
  const first = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';
  const said = first ? `: ${first.length > 240 ? `${first.slice(0, 240)}…` : first}` : '';
  if (rejectedField(text)) return { code: 'NVIDIA_SMI_FIELD_REJECTED', message: `nvidia-smi rejected a field${said}` };
  if (code === 9 || /couldn't communicate with the NVIDIA driver/.test(text)) {
    return { code: 'NVIDIA_DRIVER_NOT_LOADED', message: `the NVIDIA driver is not loaded (exit ${code})${said}` };
  }
  if (code === 12 || /libnvidia-ml\.so/.test(text)) {
    return { code: 'NVML_LIBRARY_MISSING', message: `the NVML library is missing (exit ${code})${said}` };
  }
  if (code === 15 || /GPU is lost/.test(text)) return { code: 'GPU_LOST', message: `a GPU is lost (exit ${code})${said}` };
  if (code === 18 || /version mismatch/i.test(text)) {
    return { code: 'NVML_VERSION_MISMATCH', message: `driver and NVML library versions differ; the pod needs a restart (exit ${code})${said}` };
  }
  if (/No supported GPUs were found|No devices were found/.test(text)) {
    return { code: 'NO_GPUS_FOUND', message: `nvidia-smi finds no GPU (exit ${code})${said}` };
  }
  if (/Failed to initialize NVML/.test(text)) return { code: 'NVML_INIT_FAILED', message: `NVML failed to initialize (exit ${code})${said}` };
  return { code: 'NVIDIA_SMI_FAILED', message: `nvidia-smi exited with code ${code}${said}` };
}
