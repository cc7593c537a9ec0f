import { describe, expect, it } from 'vitest';
import { GpuState } from '../../src/state/gpu.js';
import type { GpuRow } from '../../src/shared/gpu-readings.js';

const T0 = 1_700_000_000_000;

function row(index: number, util: number | null, power: number | null = 100, used = 1000): GpuRow {
  return {
    index,
    uuid: `GPU-${index}`,
    name: 'NVIDIA H200',
    pci_bus_id: `00000000:0${index}:00.0`,
    driver_version: '590.48.01',
    pstate: 'P0',
    persistence_mode: 'Enabled',
    mig_mode: 'Disabled',
    utilization_percent: util,
    memory_utilization_percent: 0,
    memory_total_mb: 143771,
    memory_used_mb: used,
    memory_free_mb: 143771 - used,
    memory_reserved_mb: 600,
    temperature_c: 50,
    memory_temperature_c: 40,
    power_w: power,
    power_instant_w: power,
    power_limit_w: 700,
    sm_clock_mhz: 1980,
    sm_clock_max_mhz: 1980,
    fan_percent: null,
    clock_event_reasons: 0,
    ecc_uncorrected_volatile: 0,
    null_reasons: util === null ? { utilization_percent: 'N/A' } : {},
  };
}

function state(heldCount?: number) {
  return new GpuState({ startedAt: T0, intervalMs: 1000, heldCount, timelineCapacity: 100 });
}

/** Feeds one sample per second for `seconds` seconds, starting at T0 + start s. */
function feed(s: GpuState, seconds: number, rows: (i: number) => GpuRow[], start = 0) {
  for (let i = 0; i <= seconds; i++) s.applySample(T0 + (start + i) * 1000, rows(i));
}

describe('GPU-seconds', () => {
  it('counts allocated seconds as wall time times GPUs seen, from start-up', () => {
    const s = state();
    feed(s, 10, () => [row(0, 50), row(1, 50)], 2);
    expect(s.podGpuSeconds()).toBeCloseTo(24, 6); // 12 s since start × 2 GPUs
    expect(s.totals('GPU-0')!.allocated_s).toBeCloseTo(12, 6);
  });

  it('uses RUNPOD_GPU_COUNT for the pod total when set', () => {
    const s = state(4);
    feed(s, 10, () => [row(0, 50)]);
    expect(s.podGpuSeconds()).toBeCloseTo(40, 6);
  });

  it('keeps counting allocated seconds while sampling fails', () => {
    const s = state();
    s.applySample(T0, [row(0, 100)]);
    s.applyFailure(T0 + 5000);
    s.advance(T0 + 10_000);
    expect(s.podGpuSeconds()).toBeCloseTo(10, 6);
  });

  it('integrates utilization into busy seconds (left rectangles)', () => {
    const s = state();
    feed(s, 10, () => [row(0, 50), row(1, 50)]);
    expect(s.totals('GPU-0')!.busy_s).toBeCloseTo(5, 6);
    expect(s.totals('GPU-1')!.busy_s).toBeCloseTo(5, 6);
  });

  it('uses the left end of each interval', () => {
    const s = state();
    s.applySample(T0, [row(0, 100)]);
    s.applySample(T0 + 1000, [row(0, 0)]);
    s.applySample(T0 + 2000, [row(0, 0)]);
    expect(s.totals('GPU-0')!.busy_s).toBeCloseTo(1, 6);
  });

  it('gives no busy credit across a gap longer than three intervals', () => {
    const s = state();
    s.applySample(T0, [row(0, 100)]);
    s.applySample(T0 + 3000, [row(0, 100)]); // 3 s: still credited
    s.applySample(T0 + 7000, [row(0, 100)]); // 4 s gap: not credited
    const t = s.totals('GPU-0')!;
    expect(t.busy_s).toBeCloseTo(3, 6);
    expect(t.busy_unknown_s).toBeCloseTo(4, 6);
  });

  it('gives no busy credit across a failed run', () => {
    const s = state();
    s.applySample(T0, [row(0, 100)]);
    s.applyFailure(T0 + 1000);
    s.applySample(T0 + 2000, [row(0, 100)]);
    s.applySample(T0 + 3000, [row(0, 100)]);
    expect(s.totals('GPU-0')!.busy_s).toBeCloseTo(1, 6);
  });

  it('gives no busy credit while utilization is null (MIG)', () => {
    const s = state();
    feed(s, 5, () => [row(0, null)]);
    expect(s.totals('GPU-0')!.busy_s).toBe(0);
    expect(s.totals('GPU-0')!.busy_unknown_s).toBeCloseTo(5, 6);
    expect(s.totals('GPU-0')!.allocated_s).toBeCloseTo(5, 6);
  });

  it('gives no credit to a lost GPU and keeps it in the list, marked lost', () => {
    const s = state();
    s.applySample(T0, [row(0, 100), row(1, 100)]);
    for (let i = 1; i <= 4; i++) s.applySample(T0 + i * 1000, [row(0, 100)], [{ pci_bus_id: '0000:01:00.0', reason: 'Unknown Error' }]);
    expect(s.totals('GPU-0')!.busy_s).toBeCloseTo(4, 6);
    expect(s.totals('GPU-1')!.busy_s).toBe(0);
    const lost = s.readings().find((r) => r.uuid === 'GPU-1')!;
    expect(lost.lost).toBe(true);
    expect(lost.lost_reason).toBe('Unknown Error');
    expect(lost.utilization_percent).toBeNull();
    expect(s.heldCount()).toBe(2);
  });

  it('integrates power into joules', () => {
    const s = state();
    feed(s, 10, () => [row(0, 0, 250)]);
    expect(s.totals('GPU-0')!.energy_j).toBeCloseTo(2500, 6);
  });

  it('never credits energy from a null power reading', () => {
    const s = state();
    feed(s, 3, () => [row(0, 0, null)]);
    expect(s.totals('GPU-0')!.energy_j).toBe(0);
  });
});

describe('usage between two times', () => {
  it('answers GPU-seconds, busy seconds and peak VRAM for a window', () => {
    const s = state();
    feed(s, 20, (i) => [row(0, i >= 5 && i < 15 ? 100 : 0, 100, 1000 + i * 10), row(1, 0, 100, 500)]);
    const w = s.usageBetween(T0 + 5000, T0 + 15_000);
    expect(w.gpu_seconds).toBeCloseTo(20, 6); // 10 s × 2 GPUs
    expect(w.busy_gpu_seconds).toBeCloseTo(10, 6);
    expect(w.peak_vram_mb).toBe(1150);
    expect(w.peak_vram_by_gpu).toEqual({ 'GPU-0': 1150, 'GPU-1': 500 });
  });
});

describe('the timeline', () => {
  it('is bounded', () => {
    const s = new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 10 });
    feed(s, 50, () => [row(0, 1)]);
    expect(s.timeline.size).toBe(10);
  });
});

describe('GPUs lost before they were ever seen', () => {
  const state = () => new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: 4, timelineCapacity: 10 });

  it('takes the index the error line gives', () => {
    const s = state();
    s.applySample(T0, [row(0, 10), row(1, 10), row(3, 10)], [{ pci_bus_id: '0000:48:00.0', reason: 'Unknown Error', index: 2 }]);
    expect(s.readings().map((g) => [g.index, g.lost, g.never_seen])).toEqual([
      [0, false, false],
      [1, false, false],
      [2, true, true],
      [3, false, false],
    ]);
  });

  it('infers the index from the one gap when the line names only the bus, and says so', () => {
    const s = state();
    s.applySample(T0, [row(0, 10), row(1, 10), row(3, 10)], [{ pci_bus_id: '0000:0B:00.0', reason: 'Unknown Error' }]);
    const lost = s.readings().find((g) => g.lost)!;
    expect(lost.index).toBe(2);
    expect(lost.null_reasons.index).toBe('inferred: the one index no answering GPU has');
  });

  it('leaves the index unknown when two GPUs are lost by bus id only', () => {
    const s = state();
    s.applySample(T0, [row(0, 10), row(1, 10)], [
      { pci_bus_id: '0000:0B:00.0', reason: 'Unknown Error' },
      { pci_bus_id: '0000:0C:00.0', reason: 'GPU is lost' },
    ]);
    expect(s.readings().filter((g) => g.lost).map((g) => [g.index, g.pci_bus_id])).toEqual([
      [null, '0000:0B:00.0'],
      [null, '0000:0C:00.0'],
    ]);
  });

  it('becomes the GPU it is once it answers under its uuid', () => {
    const s = state();
    s.applySample(T0, [row(0, 10)], [{ pci_bus_id: '00000000:01:00.0', reason: 'Unknown Error', index: 1 }]);
    s.applySample(T0 + 1000, [row(0, 10), row(1, 10)]);
    expect(s.readings().map((g) => [g.index, g.uuid, g.lost])).toEqual([
      [0, 'GPU-0', false],
      [1, 'GPU-1', false],
    ]);
  });
});

describe('the GPUs nvidia-smi -L lists', () => {
  const state = () => new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 10 });
  const listing = [0, 1].map((i) => ({ index: i, name: 'NVIDIA H200', uuid: `GPU-${i}` }));

  it('a listed GPU the query never answered for is a lost entry under its uuid', () => {
    const s = state();
    s.applySample(T0, [row(0, 10)]);
    s.applyListing(T0, listing);
    expect(s.readings().map((g) => [g.index, g.uuid, g.lost, g.never_seen])).toEqual([
      [0, 'GPU-0', false, false],
      [1, 'GPU-1', true, true],
    ]);
  });

  it('a listed GPU that stops answering is lost, not forgotten', () => {
    const s = state();
    s.applySample(T0, [row(0, 10), row(1, 10)]);
    s.applyListing(T0, listing);
    for (let t = 1; t <= 10; t++) {
      s.applySample(T0 + t * 1000, [row(0, 10)]);
      s.forgetOlderThan(T0 + t * 1000, 5000);
    }
    expect(s.readings().map((g) => [g.uuid, g.lost])).toEqual([
      ['GPU-0', false],
      ['GPU-1', true],
    ]);
  });

  it('a GPU neither listed nor answering is forgotten after the limit', () => {
    const s = state();
    s.applySample(T0, [row(0, 10), row(1, 10)]);
    s.applyListing(T0, [listing[0]!]);
    for (let t = 1; t <= 10; t++) {
      s.applySample(T0 + t * 1000, [row(0, 10)]);
      s.forgetOlderThan(T0 + t * 1000, 5000);
    }
    expect(s.readings().map((g) => g.uuid)).toEqual(['GPU-0']);
  });
});

describe('a GPU lost from the first run on, that nvidia-smi -L lists', () => {
  const state = () => new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 10 });
  const listing = [0, 1].map((i) => ({ index: i, name: 'NVIDIA H200', uuid: `GPU-${i}` }));
  const lostLine = { pci_bus_id: '0000:48:00.0', reason: 'Unable to determine the device handle for GPU 1: 0000:48:00.0: Unknown Error', index: 1 };

  it('is listed once: its bus id from the error line, its uuid and name from -L, lost with the error', () => {
    const s = state();
    s.applySample(T0, [row(0, 10)], [lostLine]);
    s.applyListing(T0, listing);
    expect(s.readings().map((g) => [g.index, g.uuid, g.pci_bus_id, g.name, g.lost, g.lost_reason])).toEqual([
      [0, 'GPU-0', expect.any(String), expect.any(String), false, null],
      [1, 'GPU-1', '0000:48:00.0', 'NVIDIA H200', true, lostLine.reason],
    ]);
  });

  it('stays listed once while it keeps failing, its bus id spelled either way', () => {
    const s = state();
    s.applySample(T0, [row(0, 10)], [lostLine]);
    s.applyListing(T0, listing);
    s.applySample(T0 + 1000, [row(0, 10)], [{ ...lostLine, pci_bus_id: '00000000:48:00.0' }]);
    s.applyListing(T0 + 1000, listing);
    expect(s.readings().map((g) => g.uuid)).toEqual(['GPU-0', 'GPU-1']);
  });

  it('is the same entry once it answers', () => {
    const s = state();
    s.applySample(T0, [row(0, 10)], [lostLine]);
    s.applyListing(T0, listing);
    s.applySample(T0 + 1000, [row(0, 10), row(1, 10)]);
    expect(s.readings().map((g) => [g.uuid, g.lost])).toEqual([
      ['GPU-0', false],
      ['GPU-1', false],
    ]);
  });
});

describe('NVML readings', () => {
  it("count energy from the driver's counter, exact even where power would have been guessed across a gap", () => {
    const s = state();
    s.applySample(T0, [{ ...row(0, 50, 300), energy_mj: 1_000_000 }]);
    s.applySample(T0 + 1000, [{ ...row(0, 50, 300), energy_mj: 1_000_400 }]);
    // Ten seconds without a sample (a gap power × time would not credit), then the counter again.
    s.applySample(T0 + 11_000, [{ ...row(0, 50, 300), energy_mj: 1_004_400 }]);
    expect(s.totals('GPU-0')?.energy_j).toBeCloseTo(4.4, 6);
  });

  it("take a job's peak VRAM from each period's maximum, not only the latest reading", () => {
    const s = state();
    s.applySample(T0, [{ ...row(0, 50, 100, 1000), memory_used_max_mb: 1000 }]);
    s.applySample(T0 + 1000, [{ ...row(0, 50, 100, 1200), memory_used_max_mb: 70_000 }]);
    s.applySample(T0 + 2000, [{ ...row(0, 50, 100, 1100), memory_used_max_mb: 1150 }]);
    expect(s.usageBetween(T0, T0 + 2000).peak_vram_mb).toBe(70_000);
  });

  it('keep each Xid, and count them by GPU and code', () => {
    const s = state();
    const seen: number[] = [];
    s.onXid((e) => seen.push(e.xid));
    s.recordXid({ at: T0, index: 0, uuid: 'GPU-0', xid: 31 });
    s.recordXid({ at: T0 + 1, index: 0, uuid: 'GPU-0', xid: 31 });
    s.recordXid({ at: T0 + 2, index: 1, uuid: 'GPU-1', xid: 79 });
    expect(seen).toEqual([31, 31, 79]);
    expect([...s.xidCounts.values()]).toEqual([
      { gpu: '0', uuid: 'GPU-0', xid: 31, count: 2 },
      { gpu: '1', uuid: 'GPU-1', xid: 79, count: 1 },
    ]);
    expect(s.xids().map((x) => x.xid)).toEqual([31, 31, 79]);
  });
});
