import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { answer, DEFAULT_FIXTURES_DIR } from '../../src/sim/fake-nvidia-smi.js';
import { COMPUTE_APP_FIELDS, HEALTH_FIELDS, classifyFailure, numberCell, parseComputeApps, parseCsvRows, parseHelpQueryGpu, parseLostGpuLine, planFields, toGpuHealth, toGpuRow } from '../../src/sources/nvidia-smi.js';
import { migDevicesOf, parseGpuList, parseQueryText, queryProcessesOf } from '../../src/sources/nvidia-smi-text.js';
import { activeReasons, normalizeBusId, type GpuRow } from '../../src/shared/gpu-readings.js';

const dir = DEFAULT_FIXTURES_DIR;
const fixture = (name: string) => readFileSync(`${dir}${name}`, 'utf8');

/** What podscope gets from a driver whose real output is this fixture: discovery, then the query. */
function sampleFixture(name: string): GpuRow[] {
  const help = answer(['--help-query-gpu'], { fixture: name });
  const plan = planFields(parseHelpQueryGpu(help.stdout));
  const out = answer([`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits'], { fixture: name });
  expect(out.code).toBe(0);
  const parsed = parseCsvRows(out.stdout, plan.fields.length);
  expect(parsed.unparsed).toEqual([]);
  return parsed.rows.map((cells) => toGpuRow(cells, plan.keys)!);
}

describe('parsing real --query-gpu output', () => {
  const cases: Array<[string, Partial<GpuRow>]> = [
    ['h100-80gb-hbm3-x1.drv590.load', { name: 'NVIDIA H100 80GB HBM3', driver_version: '590.48.01', utilization_percent: 100, memory_utilization_percent: 11, memory_used_mb: 19818, memory_total_mb: 81559, memory_free_mb: 61263, memory_reserved_mb: 479, temperature_c: 59, memory_temperature_c: 54, power_w: 631.95, power_instant_w: 625.68, power_limit_w: 700, sm_clock_mhz: 1980, clock_event_reasons: 0, ecc_uncorrected_volatile: 0, fan_percent: null, pstate: 'P0', persistence_mode: 'Enabled', mig_mode: 'Disabled' }],
    ['h100-80gb-hbm3-x1.drv590.idle', { utilization_percent: 0, memory_used_mb: 0, power_w: 69.85, clock_event_reasons: 1, sm_clock_mhz: 345 }],
    ['h100-80gb-hbm3-x1-mig.drv590.load', { utilization_percent: null, memory_utilization_percent: null, memory_used_mb: 11125, power_w: 433.78, mig_mode: 'Enabled' }],
    ['h200-x1.drv590.load', { name: 'NVIDIA H200', memory_total_mb: 143771, memory_used_mb: 32362, utilization_percent: 100, temperature_c: 52, power_w: 627.4, pci_bus_id: '00000000:83:00.0' }],
    ['l40s-x1.drv595.load', { name: 'NVIDIA L40S', driver_version: '595.80', utilization_percent: 9, memory_temperature_c: null, power_w: 110.23, power_limit_w: 350, persistence_mode: 'Disabled', mig_mode: null }],
    ['rtx4080s-x1.drv595.idle', { name: 'NVIDIA GeForce RTX 4080 SUPER', utilization_percent: 0, fan_percent: 0, ecc_uncorrected_volatile: null, pstate: 'P8' }],
    ['rtx4080s-x1.drv595.load', { utilization_percent: 7, memory_used_mb: 1474, power_w: 84.24, sm_clock_mhz: 2805 }],
    ['rtx2080s-x1.drv610.load', { name: 'NVIDIA GeForce RTX 2080 SUPER', driver_version: '610.57.04', utilization_percent: 8, power_w: 98.14, memory_reserved_mb: 400 }],
    ['rtx2080s-x1-windows.drv591.load', { driver_version: '591.86', persistence_mode: null, power_w: 97.43, clock_event_reasons: 1, utilization_percent: 7 }],
    ['rtx2080s-x1-windows.drv471', { driver_version: '471.11', power_w: 32.7, clock_event_reasons: 1, memory_used_mb: 876, fan_percent: 38, memory_reserved_mb: null, uuid: 'GPU-df6e7a7c-7314-46f8-abc4-b88b36dcf3aa' }],
    ['rtx2080s-x1.drv465', { driver_version: '465.27', uuid: 'GPU-df6e7a7c-7314-46f8-abc4-b88b36dcf3aa', memory_reserved_mb: null }],
  ];

  it.each(cases)('%s parses to the values the file shows', (name, expected) => {
    const [row] = sampleFixture(name);
    expect(row).toMatchObject({ index: 0, ...expected });
  });

  it('covers every --query-gpu fixture', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.query-gpu.csv')).map((f) => f.replace('.query-gpu.csv', ''));
    expect(files.sort()).toEqual(cases.map(([n]) => n).sort());
  });

  it('turns MIG utilization [N/A] into null with its reason, never 0', () => {
    const [row] = sampleFixture('h100-80gb-hbm3-x1-mig.drv590.load');
    expect(row!.utilization_percent).toBeNull();
    expect(row!.null_reasons.utilization_percent).toBe('N/A');
  });

  it('explains a field the driver does not offer', () => {
    const [row] = sampleFixture('rtx2080s-x1.drv465');
    expect(row!.null_reasons.memory_reserved_mb).toMatch(/not queried/);
  });

  it('asks old drivers for clocks_throttle_reasons and new ones for clocks_event_reasons', () => {
    expect(planFields(parseHelpQueryGpu(fixture('rtx2080s-x1.drv465.help-query-gpu.txt'))).fields).toContain('clocks_throttle_reasons.active');
    expect(planFields(parseHelpQueryGpu(fixture('h100-80gb-hbm3-x1.drv590.help-query-gpu.txt'))).fields).toContain('clocks_event_reasons.active');
  });

  it("asks 610 for kmd_version and older drivers for driver_version", () => {
    expect(planFields(parseHelpQueryGpu(fixture('rtx2080s-x1.drv610.help-query-gpu.txt'))).fields).toContain('kmd_version');
    expect(planFields(parseHelpQueryGpu(fixture('h100-80gb-hbm3-x1.drv590.help-query-gpu.txt'))).fields).toContain('driver_version');
  });

  it('asks for power.draw.average where offered, and falls back to power.draw', () => {
    const old = planFields(parseHelpQueryGpu(fixture('rtx2080s-x1.drv465.help-query-gpu.txt')));
    expect(old.fields).toContain('power.draw');
    expect(old.fields).not.toContain('power.draw.average');
    expect(planFields(parseHelpQueryGpu(fixture('h100-80gb-hbm3-x1.drv590.help-query-gpu.txt'))).fields).toContain('power.draw.average');
  });

  it('leaves out a field the driver rejected', () => {
    const plan = planFields(null, new Set(['memory.reserved']));
    expect(plan.fields).not.toContain('memory.reserved');
    expect(plan.missing).toContain('memory_reserved');
  });
});

describe('parsing cells', () => {
  it.each([
    ['[N/A]', 'N/A'],
    ['N/A', 'N/A'],
    ['[Not Supported]', 'Not Supported'],
    ['[Insufficient Permissions]', 'Insufficient Permissions'],
    ['[Unknown Error]', 'Unknown Error'],
    ['[Requested functionality has been deprecated]', 'Requested functionality has been deprecated'],
    ['', 'empty'],
    ['ERR!', 'ERR!'],
  ])('reads the sentinel %j as null because %s', (raw, reason) => {
    expect(numberCell(raw)).toMatchObject({ value: null, reason });
  });

  it('reads numbers with or without units, negatives and hex', () => {
    expect(numberCell(' 631.95 ').value).toBe(631.95);
    expect(numberCell('19818 MiB').value).toBe(19818);
    expect(numberCell('-7').value).toBe(-7);
    expect(numberCell('0x0000000000000004').value).toBe(4);
  });

  it('names active clock-event reasons from the bitmask', () => {
    expect(activeReasons(0x1)).toEqual(['gpu_idle']);
    expect(activeReasons(0x44)).toEqual(['sw_power_cap', 'hw_thermal_slowdown']);
    expect(activeReasons(null)).toEqual([]);
  });
});

describe('error lines mixed with data', () => {
  it.each([
    ['errors/device-handle-unknown-error.drv520.txt', '0000:0B:00.0', null, 'Unknown Error'],
    ['errors/device-handle-unknown-error.nospace.txt', '0000:07:00.0', null, 'Unknown Error'],
    ['errors/device-handle-gpu-is-lost.txt', '0000:02:00.0', null, 'GPU is lost. Reboot the system to recover this GPU'],
  ])('recognises %s', (file, bus, index, reason) => {
    expect(parseLostGpuLine(fixture(file))).toMatchObject({ pci_bus_id: bus, index, reason });
  });

  it("recognises 610's `GPU1: 0000:34:00.0` spelling", () => {
    expect(parseLostGpuLine('Unable to determine the device handle for GPU1: 0000:34:00.0: Unknown Error')).toMatchObject({ pci_bus_id: '0000:34:00.0', index: 1 });
  });

  it('keeps the healthy rows around a lost GPU', () => {
    const text = ['0, GPU-a, 50', 'Unable to determine the device handle for GPU1: 0000:34:00.0: Unknown Error', '2, GPU-c, 51'].join('\n');
    const parsed = parseCsvRows(text, 3);
    expect(parsed.rows.map((r) => r[1])).toEqual(['GPU-a', 'GPU-c']);
    expect(parsed.lost).toHaveLength(1);
  });

  it('sets aside lines that are neither rows nor known errors', () => {
    const parsed = parseCsvRows('0, GPU-a, 50\nsome warning text\n', 3);
    expect(parsed.rows).toHaveLength(1);
    expect(parsed.unparsed).toEqual(['some warning text']);
  });
});

describe('classifying failures', () => {
  it.each([
    [9, 'errors/driver-not-loaded.exit9.txt', 'NVIDIA_DRIVER_NOT_LOADED'],
    [18, 'errors/nvml-version-mismatch.exit18.txt', 'NVML_VERSION_MISMATCH'],
    [255, 'errors/nvml-no-supported-gpus.exit255.txt', 'NO_GPUS_FOUND'],
    [255, 'errors/nvml-unknown-error.container.txt', 'NVML_INIT_FAILED'],
    [15, 'errors/device-handle-gpu-is-lost.txt', 'GPU_LOST'],
  ])('exit %i with %s is %s', (code, file, expected) => {
    const c = classifyFailure(code, fixture(file));
    expect(c.code).toBe(expected);
    expect(c.message).toContain(fixture(file).split('\n')[0]!.trim());
  });

  it('exit 12 is the NVML library missing', () => {
    expect(classifyFailure(12, '').code).toBe('NVML_LIBRARY_MISSING');
  });

  it('an unknown exit code keeps its number in the message', () => {
    expect(classifyFailure(3, 'Not Supported')).toEqual({ code: 'NVIDIA_SMI_FAILED', message: 'nvidia-smi exited with code 3: Not Supported' });
  });
});

describe('parsing real --query-compute-apps output', () => {
  const q = [`--query-compute-apps=${COMPUTE_APP_FIELDS.join(',')}`, '--format=csv,noheader,nounits'];

  it('reads the H100 processes with their memory', () => {
    const { apps } = parseComputeApps(answer(q, { fixture: 'h100-80gb-hbm3-x1.drv590.load' }).stdout);
    expect(apps).toEqual([
      { gpu_uuid: 'GPU-00000000-0000-0000-0000-000000000000', pid: 11327, used_memory_mb: 2566, process_name: '/root/tools/memhog' },
      { gpu_uuid: 'GPU-00000000-0000-0000-0000-000000000000', pid: 11328, used_memory_mb: 1542, process_name: '/root/tools/memhog' },
      { gpu_uuid: 'GPU-00000000-0000-0000-0000-000000000000', pid: 11345, used_memory_mb: 15690, process_name: './gpu_burn' },
    ]);
  });

  it('reads an idle GPU as no processes', () => {
    expect(parseComputeApps(answer(q, { fixture: 'h100-80gb-hbm3-x1.drv590.idle' }).stdout).apps).toEqual([]);
  });

  it.each(['h100-80gb-hbm3-x1-mig.drv590.load', 'h200-x1.drv590.load', 'l40s-x1.drv595.load', 'rtx2080s-x1.drv610.load'])('reads %s', (name) => {
    const { apps, unparsed } = parseComputeApps(answer(q, { fixture: name }).stdout);
    expect(unparsed).toEqual([]);
    expect(apps.length).toBeGreaterThan(0);
    expect(apps.every((a) => a.pid !== null && a.used_memory_mb !== null)).toBe(true);
  });

  it('reads Windows memory [N/A] as null and keeps paths whole', () => {
    const { apps } = parseComputeApps(answer(q, { fixture: 'rtx2080s-x1-windows.drv591.load' }).stdout);
    expect(apps.length).toBe(12);
    expect(apps.every((a) => a.used_memory_mb === null)).toBe(true);
    expect(apps[0]!.process_name).toMatch(/^C:\\Windows\\/);
  });

  it('keeps a process name that contains commas whole', () => {
    const { apps } = parseComputeApps('GPU-a, 12, 100, /opt/my,odd,name\n');
    expect(apps[0]!.process_name).toBe('/opt/my,odd,name');
  });
});

const queryTextFixtures = readdirSync(dir).filter((f) => f.endsWith('.q.txt'));

describe('parsing real `nvidia-smi -q` text', () => {
  it.each(queryTextFixtures)('%s: one section per attached GPU, keyed by bus id', (name) => {
    const text = fixture(name);
    const attached = Number(/^Attached GPUs\s*:\s*(\d+)/m.exec(text)![1]);
    const sections = parseQueryText(text);
    expect(sections.size).toBe(attached);
    for (const [bus, s] of sections) {
      expect(bus).toMatch(/^[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.[0-9A-F]$/);
      expect(s.values.get('Product Name')).toMatch(/\S/);
    }
  });

  it.each(queryTextFixtures)('%s: every process listed, with its memory', (name) => {
    const text = fixture(name);
    const listed = (text.match(/^\s+Process ID\s+:/gm) ?? []).length;
    const processes = [...parseQueryText(text).values()].flatMap(queryProcessesOf);
    expect(processes).toHaveLength(listed);
    for (const p of processes) {
      expect(p.pid).toBeGreaterThan(0);
      expect(p.process_name).not.toBe('');
    }
  });

  it('reads the H100 in MIG mode: four devices with their instance ids and memory', () => {
    const [gpu] = [...parseQueryText(fixture('h100-80gb-hbm3-x1-mig.drv590.load.q.txt')).values()];
    expect(migDevicesOf(gpu!).map((d) => [d.index, d.gpu_instance_id, d.compute_instance_id, d.memory_used_mb, d.memory_total_mb])).toEqual([
      [0, 2, 0, 11091, 40448],
      [1, 3, 0, 17, 20096],
      [2, 9, 0, 9, 9984],
      [3, 10, 0, 9, 9984],
    ]);
  });

  it('puts MIG processes in their GPU and compute instance', () => {
    const [gpu] = [...parseQueryText(fixture('h100-80gb-hbm3-x1-mig.drv590.load.q.txt')).values()];
    expect(queryProcessesOf(gpu!).map((p) => [p.gpu_instance_id, p.compute_instance_id, p.pid, p.process_name, p.used_memory_mb])).toEqual([
      [2, 0, 21180, '/root/tools/memhog', 2296],
      [2, 0, 21181, '/root/tools/memhog', 1272],
      [2, 0, 21198, './gpu_burn', 7484],
    ]);
  });

  it('finds no MIG device on a GPU without MIG', () => {
    const [gpu] = [...parseQueryText(fixture('h100-80gb-hbm3-x1.drv590.load.q.txt')).values()];
    expect(migDevicesOf(gpu!)).toEqual([]);
  });

  it('skips text before the first GPU and lines of no known shape', () => {
    const sections = parseQueryText('garbage\n  : :\nGPU 00000000:01:00.0\n    Product Name : X\n\u0000\u00ff\n');
    expect([...sections.keys()]).toEqual(['00000000:01:00.0']);
  });
});

describe('parsing real `nvidia-smi -L`', () => {
  it('reads the GPU and the profile and uuid of each MIG device', () => {
    const listing = parseGpuList(fixture('h100-80gb-hbm3-x1-mig.drv590.L.txt'));
    expect(listing.gpus).toEqual([{ index: 0, name: 'NVIDIA H100 80GB HBM3', uuid: 'GPU-00000000-0000-0000-0000-000000000000' }]);
    expect(listing.mig.map((m) => [m.device_index, m.profile])).toEqual([
      [0, '3g.40gb'],
      [1, '2g.20gb'],
      [2, '1g.10gb'],
      [3, '1g.10gb'],
    ]);
  });

  it('sets apart a GPU it cannot reach', () => {
    const listing = parseGpuList(`GPU 0: NVIDIA H100 (UUID: GPU-a)\n${fixture('errors/device-handle-unknown-error.drv520.txt')}`);
    expect(listing.gpus).toHaveLength(1);
    expect(listing.lost).toMatchObject([{ pci_bus_id: '0000:0B:00.0', reason: 'Unknown Error', index: null }]);
  });
});

describe('parsing real memory-health answers', () => {
  const healthOf = (name: string) => {
    const plan = planFields(parseHelpQueryGpu(answer(['--help-query-gpu'], { fixture: name }).stdout), new Set(), HEALTH_FIELDS);
    const out = answer([`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits'], { fixture: name });
    return parseCsvRows(out.stdout, plan.fields.length).rows.map((c) => toGpuHealth(c, plan.keys)!);
  };

  it('reads an H200: ECC counts and remapped rows, retired pages N/A', () => {
    expect(healthOf('h200-x1.drv590.load')[0]).toMatchObject({
      ecc_mode: 'Enabled',
      ecc: { volatile_corrected: 0, volatile_uncorrected: 0, aggregate_corrected: 0, aggregate_uncorrected: 0 },
      retired_pages: { single_bit_ecc: null, double_bit_ecc: null, pending: null },
      remapped_rows: { correctable: 0, uncorrectable: 0, pending: false, failure: false },
      null_reasons: { 'retired_pages.single_bit_ecc': 'N/A', 'retired_pages.double_bit_ecc': 'N/A', 'retired_pages.pending': 'N/A' },
    });
  });

  it('reads a GeForce without ECC as unknown, never 0', () => {
    const [h] = healthOf('rtx4080s-x1.drv595.load');
    expect(h!.ecc).toEqual({ volatile_corrected: null, volatile_uncorrected: null, aggregate_corrected: null, aggregate_uncorrected: null });
    expect(h!.null_reasons['ecc.aggregate_uncorrected']).toBe('N/A');
  });

  it('does not ask a driver (465) for remapped rows it does not offer', () => {
    const [h] = healthOf('rtx2080s-x1.drv465');
    expect(h!.null_reasons['remapped_rows.failure']).toBe('not queried (this driver does not offer the field)');
  });

  it.each(readdirSync(dir).filter((f) => f.endsWith('.query-gpu.csv')).map((f) => f.replace(/\.query-gpu\.csv$/, '')))('%s: one health row per GPU', (name) => {
    const rows = healthOf(name);
    expect(rows.length).toBeGreaterThan(0);
    for (const h of rows) expect(h.uuid).toMatch(/^GPU-/);
  });
});

describe('a PCI bus id, as nvidia-smi spells it in its queries, its errors and -q', () => {
  it.each([
    ['00000000:34:00.0', '0000:34:00.0'],
    ['00000000:3B:00.0', '0000:3b:00.0'],
    [' 00000001:00:09.0 ', '0001:00:09.0'],
  ])('%s and %s name the same device', (a, b) => {
    expect(normalizeBusId(a)).toBe(normalizeBusId(b));
  });

  it('keeps two devices apart', () => {
    expect(normalizeBusId('00000000:34:00.0')).not.toBe(normalizeBusId('00000000:35:00.0'));
    expect(normalizeBusId('00000001:34:00.0')).not.toBe(normalizeBusId('00000000:34:00.0'));
  });
});
