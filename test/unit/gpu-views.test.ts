/**
 * A GPU as /debug/status and /debug/memory show it (views/gpu.ts), from real nvidia-smi captures
 * sampled through the collector's plan and parser: every reading, and a reason beside each one
 * that is null.
 */
import { describe, expect, it } from 'vitest';
import { gpuStatusView, healthView } from '../../src/views/gpu.js';
import { GpuState } from '../../src/state/gpu.js';
import { fixtureHealth, fixtureRows } from '../helpers/gpu-rows.js';

const T0 = Date.parse('2026-11-24T00:00:00Z');

function sampled(fixture: string, now = T0) {
  const gpu = new GpuState({ startedAt: T0 - 1000, intervalMs: 1000, heldCount: undefined, timelineCapacity: 10 });
  gpu.applySample(now, fixtureRows(fixture));
  return gpu;
}

describe('a GPU under load (the real H200 capture)', () => {
  const gpu = sampled('h200-x1.drv590.load');
  const view = gpuStatusView(gpu.readings()[0]!, T0 + 2500, gpu);

  it('shows its identity and every reading as nvidia-smi gave it', () => {
    const row = fixtureRows('h200-x1.drv590.load')[0]!;
    expect(view).toMatchObject({
      index: row.index,
      uuid: row.uuid,
      pci_bus_id: row.pci_bus_id,
      name: 'NVIDIA H200',
      memory_used_mb: row.memory_used_mb,
      memory_total_mb: row.memory_total_mb,
      utilization_percent: row.utilization_percent,
      temperature_c: row.temperature_c,
      power_w: row.power_w,
      power_limit_w: row.power_limit_w,
      pstate: row.pstate,
      lost: false,
      never_seen: false,
      mig_devices: [],
    });
  });

  it('says when it was sampled and how old the sample is, to a tenth of a second', () => {
    expect(view.sampled_at).toBe('2026-11-24T00:00:00.000Z');
    expect(view.age_s).toBe(2.5);
  });

  it('says why health is null before the memory-health query has run', () => {
    expect(view.health).toBeNull();
    expect(view.null_reasons?.health).toBe('the memory-health query has not run yet, or this driver offers none of its fields');
  });

  it('names the active clock event reasons', () => {
    expect(Array.isArray(view.clock_event_reasons)).toBe(true);
    for (const r of view.clock_event_reasons) expect(typeof r).toBe('string');
  });
});

describe('memory health', () => {
  it('appears with its time once read, and no verdict when nothing is wrong', () => {
    const gpu = sampled('h200-x1.drv590.load');
    gpu.setHealth(T0 + 1000, fixtureHealth('h200-x1.drv590.load'));
    const view = gpuStatusView(gpu.readings()[0]!, T0 + 1000, gpu);
    expect(view.health).toMatchObject({ sampled_at: '2026-11-24T00:00:01.000Z', verdict: null });
    expect(view.null_reasons?.health).toBeUndefined();
  });

  it('carries a verdict for on-call when a row remap is pending', () => {
    const [h] = fixtureHealth('h200-x1.drv590.load', { values: { 'remapped_rows.pending': 'Yes' } });
    const v = healthView({ ...h!, sampled_at: T0 });
    expect(v?.verdict).toMatch(/reset/i);
  });

  it('is null when never read', () => {
    expect(healthView(null)).toBeNull();
  });
});

describe('readings a GPU does not give', () => {
  it('are null with nvidia-smi’s reason, never 0 (the Windows GeForce capture)', () => {
    const gpu = sampled('rtx2080s-x1-windows.drv591.load');
    const view = gpuStatusView(gpu.readings()[0]!, T0, gpu);
    const nulls = Object.entries(view).filter(([k, v]) => v === null && k !== 'health' && k !== 'lost_reason' && k !== 'uuid' && k !== 'index' && k !== 'pci_bus_id' && k !== 'mig_mode');
    for (const [k] of nulls) expect(view.null_reasons?.[k], k).toBeTruthy();
  });

  it('include GPU-level utilization in MIG mode, with a reason that points at the MIG devices', () => {
    const gpu = sampled('h100-80gb-hbm3-x1-mig.drv590.load');
    const view = gpuStatusView(gpu.readings()[0]!, T0, gpu);
    expect(view.mig_mode).toMatch(/enabled/i);
    expect(view.utilization_percent).toBeNull();
    expect(view.null_reasons?.utilization_percent).toMatch(/in MIG mode nvidia-smi reports no GPU-level utilization; see mig_devices$/);
  });

  it('give no fan speed for a passively cooled data-centre GPU (the capture says N/A), with a reason', () => {
    const gpu = sampled('h100-80gb-hbm3-x1.drv590.load');
    const view = gpuStatusView(gpu.readings()[0]!, T0, gpu);
    expect(view.fan_percent).toBeNull();
    expect(view.null_reasons?.fan_percent).toMatch(/\S/);
  });
});

describe('a GPU lost before podscope ever saw it', () => {
  const lostLine = (bus: string) => ({ pci_bus_id: bus, reason: `Unable to determine the device handle for GPU${bus}: Unknown Error` });

  it('is shown by its bus id, never seen, with no uuid and no health, and says why', () => {
    const gpu = new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 10 });
    gpu.applySample(T0, [], [lostLine('0000:0B:00.0'), lostLine('0000:0C:00.0')]);
    const view = gpuStatusView(gpu.readings()[0]!, T0, gpu);
    expect(view).toMatchObject({ lost: true, never_seen: true, uuid: null, pci_bus_id: '0000:0B:00.0', health: null });
    expect(view.lost_reason).toMatch(/Unknown Error/);
    expect(view.null_reasons?.health).toBe('never reached');
  });

  it('has no index, and says why, when two GPUs are lost and nothing tells them apart', () => {
    const gpu = new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 10 });
    gpu.applySample(T0, [], [lostLine('0000:0B:00.0'), lostLine('0000:0C:00.0')]);
    for (const g of gpu.readings()) {
      const view = gpuStatusView(g, T0, gpu);
      expect(view.index).toBeNull();
      expect(view.null_reasons?.index).toBeTruthy();
    }
  });

  it('takes the one index missing among the GPUs that answer', () => {
    const gpu = new GpuState({ startedAt: T0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 10 });
    const [h] = fixtureRows('h200-x1.drv590.load');
    gpu.applySample(T0, [{ ...h!, index: 0, uuid: 'GPU-a' }, { ...h!, index: 2, uuid: 'GPU-c', pci_bus_id: '00000000:85:00.0' }], [lostLine('0000:84:00.0')]);
    const lost = gpu.readings().find((g) => g.lost)!;
    expect(gpuStatusView(lost, T0, gpu).index).toBe(1);
  });
});
