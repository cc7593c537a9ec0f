/**
 * GPU health on-call can trust, through podscope and the fake nvidia-smi (a real child process
 * answering from recorded real outputs): GPUs lost before they were ever seen, GPUs missing from
 * the count RunPod holds, memory errors that last, MIG devices, and every reading exported.
 */
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { Podscope } from '../../src/main.js';
import type { FakeSmiConfig } from '../../src/sim/fake-nvidia-smi.js';
import { startGpuPod } from '../helpers/gpu-pod.js';
import { until } from '../helpers/wait.js';

let pod: Podscope | null = null;
afterEach(async () => {
  await pod?.close();
  pod = null;
});

async function start(config: FakeSmiConfig, env: Record<string, string> = {}) {
  const p = await startGpuPod(config, { PODSCOPE_GPU_HEALTH_INTERVAL_MS: '1000', ...env });
  pod = p.pod;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const get = async (path: string): Promise<{ status: number; body: any; text: string }> => {
    const res = await p.get(path);
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : null, text };
  };
  return { fake: p.fake, get };
}

describe('a GPU lost before podscope ever saw it', () => {
  it('is a GPU entry with lost, its bus id, index and reason, from the first sample on', async () => {
    const p = await start({ fixture: 'h200-x1.drv590.load', gpus: 8, mode: 'lost', lost_index: 3 }, { RUNPOD_GPU_COUNT: '8' });
    const status = await until(async () => {
      const s = (await p.get('/debug/status')).body;
      return s.gpus.length === 8 ? s : undefined;
    }, 15_000);
    const lost = status.gpus.filter((g: { lost: boolean }) => g.lost);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ index: 3, uuid: null, pci_bus_id: '0000:B3:00.0', lost_reason: 'Unknown Error', never_seen: true, memory_used_mb: null });
    expect(status.gpus.filter((g: { lost: boolean }) => !g.lost).map((g: { index: number }) => g.index)).toEqual([0, 1, 2, 4, 5, 6, 7]);
  });

  it('is an error problem, makes the pod degraded and /ready 503 naming it', async () => {
    const p = await start({ fixture: 'h200-x1.drv590.load', gpus: 8, mode: 'lost', lost_index: 3 }, { RUNPOD_GPU_COUNT: '8' });
    const problem = await until(async () => (await p.get('/debug/status')).body.problems.find((x: { code: string }) => x.code === 'GPU_LOST'), 15_000);
    expect(problem.severity).toBe('error');
    expect(problem.message).toMatch(/GPU 3 at 0000:B3:00\.0 \(never answered since podscope started\) is lost: Unknown Error/);
    expect((await p.get('/debug/status')).body.status).toBe('degraded');
    const ready = await p.get('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.checks.gpu).toMatch(/GPU 3 at 0000:B3:00\.0/);
  });

  it('is exported as podscope_gpu_lost 1 under its index', async () => {
    const p = await start({ fixture: 'h200-x1.drv590.load', gpus: 8, mode: 'lost', lost_index: 3 }, { RUNPOD_GPU_COUNT: '8' });
    const metrics = await until(async () => {
      const t = (await p.get('/metrics')).text;
      return /podscope_gpu_lost\{gpu="3",uuid=""\} 1/.test(t) ? t : undefined;
    }, 15_000);
    expect(metrics).toMatch(/podscope_gpu_lost\{gpu="2",uuid="GPU-[^"]+"\} 0/);
  });
});

describe('a GPU nvidia-smi -L lists but the query leaves out', () => {
  it('is an entry with its index, name and uuid, lost with the reason, and GPU_LOST', async () => {
    const p = await start({ fixture: 'h200-x1.drv590.load', gpus: 4, query_gpus: 3 });
    const status = await until(async () => {
      const s = (await p.get('/debug/status')).body;
      return s.gpus.length === 4 && s.problems.some((x: { code: string }) => x.code === 'GPU_LOST') ? s : undefined;
    }, 15_000);
    expect(status.gpus[3]).toMatchObject({ index: 3, name: 'NVIDIA H200', uuid: 'GPU-00000000-0000-0000-0000-000000000003', lost: true, never_seen: true, lost_reason: 'listed by nvidia-smi -L but absent from its --query-gpu answer' });
    expect(status.problems.find((x: { code: string }) => x.code === 'GPU_LOST').message).toMatch(/GPU 3 \(GPU-00000000-0000-0000-0000-000000000003\) \(never answered since podscope started\)/);
  });
});

describe('fewer GPUs than RunPod holds', () => {
  it('is an error problem naming both counts', async () => {
    const p = await start({ fixture: 'h200-x1.drv590.load', gpus: 7 }, { RUNPOD_GPU_COUNT: '8' });
    const problem = await until(async () => (await p.get('/debug/status')).body.problems.find((x: { code: string }) => x.code === 'GPU_MISSING'), 15_000);
    expect(problem).toMatchObject({ severity: 'error', message: 'RunPod holds 8 GPUs for this pod (RUNPOD_GPU_COUNT) but nvidia-smi shows 7' });
  });

  it('is no problem when the counts agree', async () => {
    const p = await start({ fixture: 'h200-x1.drv590.load', gpus: 2 }, { RUNPOD_GPU_COUNT: '2' });
    const s = await until(async () => {
      const b = (await p.get('/debug/status')).body;
      return b.gpus.length === 2 && b.gpus[0].health ? b : undefined; // a sample and a health run have both happened
    }, 15_000);
    expect(s.problems.map((x: { code: string }) => x.code)).not.toContain('GPU_MISSING');
  });
});

describe('memory health', () => {
  it('shows ECC, retired pages and remapped rows per GPU as the H200 reports them, with reasons for what it does not', async () => {
    const p = await start({ fixture: 'h200-x1.drv590.load' });
    const gpu = await until(async () => (await p.get('/debug/status')).body.gpus[0]?.health ?? undefined, 15_000);
    expect(gpu.ecc).toEqual({ volatile_corrected: 0, volatile_uncorrected: 0, aggregate_corrected: 0, aggregate_uncorrected: 0 });
    expect(gpu.remapped_rows).toEqual({ correctable: 0, uncorrectable: 0, pending: false, failure: false });
    expect(gpu.retired_pages).toEqual({ single_bit_ecc: null, double_bit_ecc: null, pending: null });
    expect(gpu.null_reasons['retired_pages.pending']).toBe('N/A');
    expect(gpu.verdict).toBeNull();
  });

  it('a pending row remap is an error problem saying the GPU needs a reset', async () => {
    const p = await start({ fixture: 'h200-x1.drv590.load', values: { 'remapped_rows.pending': 'Yes', 'remapped_rows.uncorrectable': '2' } });
    const problem = await until(async () => (await p.get('/debug/status')).body.problems.find((x: { code: string }) => x.code === 'GPU_NEEDS_RESET'), 15_000);
    expect(problem).toMatchObject({ severity: 'error' });
    expect(problem.message).toMatch(/GPU 0 \(GPU-[^)]+\): a row remap is pending: the GPU needs a reset/);
    const metrics = (await p.get('/metrics')).text;
    expect(metrics).toMatch(/podscope_gpu_remapped_rows_pending\{gpu="0",uuid="GPU-[^"]+"\} 1/);
    expect(metrics).toMatch(/podscope_gpu_remapped_rows\{gpu="0",uuid="GPU-[^"]+",kind="uncorrectable"\} 2/);
  });

  it('lifetime uncorrected errors are a warning problem, and exported by scope', async () => {
    const p = await start({ fixture: 'h200-x1.drv590.load', values: { 'ecc.errors.uncorrected.aggregate.total': '7' } });
    const problem = await until(async () => (await p.get('/debug/status')).body.problems.find((x: { code: string }) => x.code === 'GPU_MEMORY_ERRORS'), 15_000);
    expect(problem).toMatchObject({ severity: 'warning' });
    expect(problem.message).toMatch(/memory errors: 7 uncorrected ECC errors over its life/);
    expect((await p.get('/metrics')).text).toMatch(/podscope_gpu_ecc_errors\{gpu="0",uuid="GPU-[^"]+",type="uncorrected_aggregate"\} 7/);
  });

  it('is not asked of a driver that offers none of its remapped-row fields', async () => {
    const p = await start({ fixture: 'rtx2080s-x1.drv465' });
    const gpu = await until(async () => (await p.get('/debug/status')).body.gpus[0]?.health ?? undefined, 15_000);
    expect(gpu.remapped_rows).toEqual({ correctable: null, uncorrectable: null, pending: null, failure: null });
    expect(gpu.null_reasons['remapped_rows.pending']).toBe('not queried (this driver does not offer the field)');
  });
});

describe('MIG', () => {
  it('lists each MIG device with its profile, instance ids, memory and processes', async () => {
    const p = await start({ fixture: 'h100-80gb-hbm3-x1-mig.drv590.load' });
    const gpu = await until(async () => {
      const g = (await p.get('/debug/status')).body.gpus[0];
      return g?.mig_devices.length > 0 ? g : undefined;
    }, 15_000);
    expect(gpu.utilization_percent).toBeNull();
    expect(gpu.null_reasons.utilization_percent).toBe('N/A: in MIG mode nvidia-smi reports no GPU-level utilization; see mig_devices');
    expect(gpu.mig_devices.map((d: { profile: string; gpu_instance_id: number; compute_instance_id: number; memory_used_mb: number; memory_total_mb: number }) => [d.profile, d.gpu_instance_id, d.compute_instance_id, d.memory_used_mb, d.memory_total_mb])).toEqual([
      ['3g.40gb', 2, 0, 11091, 40448],
      ['2g.20gb', 3, 0, 17, 20096],
      ['1g.10gb', 9, 0, 9, 9984],
      ['1g.10gb', 10, 0, 9, 9984],
    ]);
    expect(gpu.mig_devices[0].processes.map((x: { pid: number; used_memory_mb: number }) => [x.pid, x.used_memory_mb])).toEqual([
      [21180, 2296],
      [21181, 1272],
      [21198, 7484],
    ]);
    const memory = (await p.get('/debug/memory')).body;
    expect(memory.gpus[0].mig_devices).toHaveLength(4);
  });

  it('exports each MIG device under gpu, mig_instance and profile', async () => {
    const p = await start({ fixture: 'h100-80gb-hbm3-x1-mig.drv590.load' });
    const metrics = await until(async () => {
      const t = (await p.get('/metrics')).text;
      return t.includes('podscope_gpu_mig_memory_used_bytes{') ? t : undefined;
    }, 15_000);
    expect(metrics).toContain(`podscope_gpu_mig_memory_used_bytes{gpu="0",uuid="GPU-00000000-0000-0000-0000-000000000000",mig_instance="2",compute_instance="0",profile="3g.40gb"} ${11091 * 1024 * 1024}`);
    expect(metrics).toContain('podscope_gpu_mig_processes{gpu="0",uuid="GPU-00000000-0000-0000-0000-000000000000",mig_instance="2",compute_instance="0",profile="3g.40gb"} 3');
  });
});

describe('the health and MIG families', () => {
  it('pass promtool check metrics', async () => {
    const p = await start({ fixture: 'h100-80gb-hbm3-x1-mig.drv590.load', gpus: 2, values: { 'remapped_rows.pending': 'Yes' } });
    const text = await until(async () => {
      const t = (await p.get('/metrics')).text;
      return t.includes('podscope_gpu_mig_memory_used_bytes{') && t.includes('podscope_gpu_ecc_errors{') ? t : undefined;
    }, 15_000);
    // promtool is installed by .ci/run; a machine without it fails here rather than skipping.
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(r.stdout + r.stderr).toBe('');
  });
});

describe('every reading shown', () => {
  it('memory temperature, max SM clock, persistence mode and pstate in the JSON, fan null with its reason', async () => {
    const p = await start({ fixture: 'h200-x1.drv590.load' });
    const gpu = await until(async () => (await p.get('/debug/status')).body.gpus[0], 15_000);
    expect(gpu).toMatchObject({ memory_temperature_c: 40, sm_clock_max_mhz: 1980, persistence_mode: 'Enabled', pstate: 'P0', fan_percent: null });
    expect(gpu.null_reasons.fan_percent).toBe('N/A');
  });
});
