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
  const p = await startGpuPod(config, env);
  pod = p.pod;
  return p;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (res: Response): Promise<any> => res.json();

describe('GPU endpoints', () => {
  it('/debug/status shows the H200 as nvidia-smi reports it', async () => {
    const p = await start({ fixture: 'h200-x1.drv590.load' });
    const status = await until(async () => {
      const s = await json(await p.get('/debug/status'));
      return s.gpu ? s : undefined;
    });
    expect(status.gpu).toMatchObject({ name: 'NVIDIA H200', memory_used_mb: 32362, memory_total_mb: 143771, utilization_percent: 100, temperature_c: 52, power_w: 627.4 });
    expect(status.gpus).toHaveLength(1);
    expect(status.gpus[0]).toMatchObject({ index: 0, uuid: 'GPU-00000000-0000-0000-0000-000000000000' });
  });

  it('shows MIG utilization as null with the reason, never 0', async () => {
    const p = await start({ fixture: 'h100-80gb-hbm3-x1-mig.drv590.load' });
    const status = await until(async () => {
      const s = await json(await p.get('/debug/status'));
      return s.gpu ? s : undefined;
    });
    expect(status.gpu.utilization_percent).toBeNull();
    expect(status.gpu.null_reasons.utilization_percent).toBe('N/A: in MIG mode nvidia-smi reports no GPU-level utilization; see mig_devices');
    expect(status.gpu.memory_used_mb).toBe(11125);
  });

  it('answers every endpoint while nvidia-smi hangs, never waiting on it, and then lists the problem', async () => {
    // nvidia-smi hangs for 8 s before it is killed: an endpoint that waited on it would take that long.
    const p = await start({ mode: 'hang', ignore_term: true }, { PODSCOPE_GPU_TIMEOUT_MS: '8000' });
    await until(() => p.fake.leftovers().length > 0); // a run is in flight and hung
    for (const path of ['/health', '/ready', '/debug/status', '/debug/memory', '/metrics', '/debug']) {
      const t = performance.now();
      const res = await p.get(path);
      await res.arrayBuffer();
      expect(res.status, path).toBeLessThan(600);
      expect(performance.now() - t, path).toBeLessThan(4000);
    }
    const status = await until(async () => {
      const s = await json(await p.get('/debug/status'));
      return s.problems.some((x: { code: string }) => x.code === 'NVIDIA_SMI_TIMEOUT') ? s : undefined;
    }, 20_000);
    // A GPU that fails is degraded, even while ComfyUI is still being waited for; /ready agrees.
    expect(status.status).toBe('degraded');
    expect(status.gpu).toBeNull();
    const ready = await json(await p.get('/ready'));
    expect(ready.status).toBe('degraded');
    expect(ready.checks.gpu).toMatch(/did not answer within 8000 ms/);
  }, 40_000);

  it('/debug/memory shows GPU memory with processes and the timeline', async () => {
    const p = await start({ fixture: 'h100-80gb-hbm3-x1.drv590.load' });
    const mem = await until(async () => {
      const m = await json(await p.get('/debug/memory'));
      return m.gpus.length > 0 && m.timeline.points.length > 1 && m.host ? m : undefined;
    });
    expect(mem.gpus[0]).toMatchObject({ total_mb: 81559, used_mb: 19818, free_mb: 61263, reserved_mb: 479 });
    expect(mem.gpus[0].processes).toEqual([
      { pid: 11327, name: '/root/tools/memhog', used_mb: 2566 },
      { pid: 11328, name: '/root/tools/memhog', used_mb: 1542 },
      { pid: 11345, name: './gpu_burn', used_mb: 15690 },
    ]);
    expect(mem.timeline.points[0].gpus[0]).toMatchObject({ used_mb: 19818, utilization_percent: 100 });
    expect(mem.host.memory_mb.total).toBeGreaterThan(0);
    expect(mem.podscope.rss_mb).toBeGreaterThan(0);
    expect(mem.podscope.buffers.gpu_timeline.entries).toBeGreaterThan(1);
  });

  const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
  it.skipIf(!hasPromtool && !process.env.CI)('exports GPU metrics in base units that pass promtool', async () => {
    const p = await start({ fixture: 'h100-80gb-hbm3-x1.drv590.load', gpus: 2 });
    const text = await until(async () => {
      const t = await (await p.get('/metrics')).text();
      return /podscope_gpu_busy_seconds_total\{gpu="1"/.test(t) ? t : undefined;
    });
    expect(text).toContain('podscope_gpu_memory_used_bytes{gpu="0",uuid="GPU-00000000-0000-0000-0000-000000000000"} 20780679168');
    expect(text).toContain('podscope_gpu_utilization_ratio{gpu="0",uuid="GPU-00000000-0000-0000-0000-000000000000"} 1');
    expect(text).toContain('podscope_gpu_power_draw_watts{gpu="1",uuid="GPU-00000000-0000-0000-0000-000000000001"} 631.95');
    expect(text).toContain('podscope_gpu_sm_clock_hertz{gpu="0",uuid="GPU-00000000-0000-0000-0000-000000000000"} 1980000000');
    expect(text).toMatch(/podscope_gpu_info\{gpu="0",uuid="GPU-0+-0000-0000-0000-000000000000",name="NVIDIA H100 80GB HBM3",driver="590.48.01"\} 1/);
    expect(text).toMatch(/^runpod_gpu_seconds_total \d/m);
    expect(text).toContain('podscope_gpu_clock_event_reason_active{gpu="0",uuid="GPU-00000000-0000-0000-0000-000000000000",reason="gpu_idle"} 0');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
  });

  it('stops exporting a GPU that disappears', async () => {
    const p = await start({ gpus: 2 });
    await until(async () => ((await (await p.get('/metrics')).text()).includes('gpu="1"') ? true : undefined));
    p.fake.set({ gpus: 1 });
    await until(async () => (!(await (await p.get('/metrics')).text()).includes('gpu="1"') ? true : undefined), 5000);
  });

  it('counts 2 GPUs at 50 % as 2 GPU-seconds and 0.5 busy seconds each per second of wall time', async () => {
    const p = await start({ gpus: 2, utilization: 50 }, { PODSCOPE_GPU_INTERVAL_MS: '250' });
    const read = async () => {
      const t = await (await p.get('/metrics')).text();
      const num = (re: RegExp) => Number(re.exec(t)?.[1] ?? NaN);
      return {
        pod: num(/^runpod_gpu_seconds_total (\S+)$/m),
        busy0: num(/^podscope_gpu_busy_seconds_total\{gpu="0"[^}]*\} (\S+)$/m),
        busy1: num(/^podscope_gpu_busy_seconds_total\{gpu="1"[^}]*\} (\S+)$/m),
      };
    };
    await until(async () => ((await read()).busy1 > 0 ? true : undefined));
    const a = await read();
    const t0 = performance.now();
    // Measured against the wall time that really passed between the two reads, however busy the machine.
    await until(() => performance.now() - t0 >= 4000 || null, 10_000, 100);
    const b = await read();
    const elapsed = (performance.now() - t0) / 1000;
    // Held GPU-seconds are wall time × 2, to the scrape; busy seconds are credited per 250 ms sample.
    expect(b.pod - a.pod).toBeGreaterThan(2 * elapsed - 0.5);
    expect(b.pod - a.pod).toBeLessThan(2 * elapsed + 0.5);
    for (const d of [b.busy0 - a.busy0, b.busy1 - a.busy1]) {
      expect(d).toBeGreaterThan(0.5 * elapsed - 0.6);
      expect(d).toBeLessThan(0.5 * elapsed + 0.6);
    }
  }, 30_000);
});
