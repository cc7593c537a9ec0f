/**
 * GPU sampling through NVML on the real FFI path: podscope's sampler process loads a fake
 * libnvidia-ml.so (C, built here with gcc) through koffi, and the fake answers from the recorded
 * real captures. Xids are injected, a call is made to hang, symbols go missing, the library is
 * absent.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startPodscope, type Podscope } from '../../src/main.js';
import { jsonGetter, until } from '../helpers/comfy-rig.js';
import { captured, FakeNvml, fakeNvmlLibrary } from '../helpers/fake-nvml.js';
import { FakeSmi } from '../helpers/fake-smi.js';
import { openSse } from '../helpers/sse.js';
import { alive } from '../helpers/wait.js';
import { fixtureRows } from '../helpers/gpu-rows.js';

let pod: Podscope | null = null;
afterEach(async () => {
  await pod?.close();
  pod = null;
});

async function start(fake: FakeNvml, env: Record<string, string> = {}) {
  process.env.FAKE_NVML_CONFIG = fake.file;
  pod = await startPodscope({
    env: {
      PODSCOPE_PORT: '0',
      PODSCOPE_HOST: '127.0.0.1',
      COMFYUI_URL: 'http://127.0.0.1:9',
      PODSCOPE_NVML_LIBRARY: fakeNvmlLibrary(),
      PODSCOPE_NVIDIA_SMI: '/nonexistent/nvidia-smi',
      PODSCOPE_GPU_INTERVAL_MS: '200',
      LOG_LEVEL: 'silent',
      ...env,
    },
    sinks: [],
  });
  const get = jsonGetter(`http://127.0.0.1:${pod.port}`);
  const status = async () => (await get('/debug/status')).body;
  return { get, status, base: `http://127.0.0.1:${pod.port}` };
}

describe('GPU sampling through NVML', () => {
  it("reads each GPU as the recorded H100 capture says, the same values nvidia-smi's reading of it gives", async () => {
    const p = await start(new FakeNvml(captured('h100-80gb-hbm3-x1.drv590.load')));
    const s = await until(async () => {
      const b = await p.status();
      return b.gpus.length === 1 ? b : undefined;
    });
    const [smi] = fixtureRows('h100-80gb-hbm3-x1.drv590.load');
    const g = s.gpus[0];
    for (const key of ['uuid', 'name', 'memory_total_mb', 'memory_used_mb', 'utilization_percent', 'temperature_c', 'power_w', 'power_limit_w', 'sm_clock_mhz', 'pstate'] as const) {
      expect(g[key], key).toEqual(smi![key]);
    }
    expect(s.gpu_sampling).toMatchObject({ name: 'nvml', driver: smi!.driver_version, xid_events: { ok: true }, missing_functions: [] });
  });

  it('reads the PCIe link and its throughput, the time clocks were held down, and each process’s utilization', async () => {
    const gpus = captured('h100-80gb-hbm3-x1.drv590.load');
    gpus[0]!.extra = ['pcie_gen 5', 'pcie_width 16', 'pcie_tx_kbps 20480', 'pcie_rx_kbps 1024', 'viol_power_ns 2500000000', 'viol_thermal_ns 0', 'procs 4242:30000', 'proc_sm 87'];
    const p = await start(new FakeNvml(gpus), { PODSCOPE_GPU_APPS_INTERVAL_MS: '1000' });
    const g = await until(async () => (await p.status()).gpus[0]?.pcie ? (await p.status()).gpus[0] : undefined);
    expect(g.pcie).toEqual({ link_gen: 5, link_width: 16, tx_mb_s: 20.5, rx_mb_s: 1 });
    expect(g.clock_violation_s).toEqual({ power: 2.5, thermal: 0 });
    const proc = await until(async () => (await p.get('/debug/memory')).body.gpus[0]?.processes?.[0]);
    expect(proc).toMatchObject({ pid: 4242, used_mb: 30000, sm_util_percent: 87, mem_util_percent: 43 });
    const metrics = await (await fetch(`${p.base}/metrics`)).text();
    expect(metrics).toMatch(/podscope_gpu_pcie_throughput_bytes_per_second\{gpu="0",uuid="[^"]+",direction="tx"\} 20971520/);
    expect(metrics).toMatch(/podscope_gpu_clock_violation_seconds_total\{gpu="0",uuid="[^"]+",policy="power"\} 2\.5/);
    expect(metrics).toMatch(/podscope_gpu_pcie_link_generation\{gpu="0",uuid="[^"]+"\} 5/);
  });

  it('catches a 250 ms VRAM spike every 3 s in each period’s maximum, every time', async () => {
    const gpus = captured('h100-80gb-hbm3-x1.drv590.load');
    gpus[0]!.extra = ['spike 70000 250 3000'];
    const p = await start(new FakeNvml(gpus), { PODSCOPE_GPU_INTERVAL_MS: '1000', PODSCOPE_GPU_FAST_MS: '100' });
    // Nine seconds of samples hold three spikes.
    const points = await until(async () => {
      const m = (await p.get('/debug/memory?points=60')).body.timeline.points as Array<{ t: string; gpus: Array<{ used_mb: number; used_max_mb: number }> }>;
      return m.length >= 10 ? m : undefined;
    }, 30_000);
    const nine = points.slice(-10);
    const spikes = nine.filter((pt) => pt.gpus[0]!.used_max_mb === 70000).length;
    expect(spikes).toBeGreaterThanOrEqual(3);
    // The latest reading alone would have shown the spike far less often.
    expect(nine.filter((pt) => pt.gpus[0]!.used_mb === 70000).length).toBeLessThan(spikes);
  }, 45_000);

  it('turns an Xid into an event, a problem by its meaning, and a counter', async () => {
    const fake = new FakeNvml(captured('h100-80gb-hbm3-x1.drv590.load', 2));
    const p = await start(fake);
    await until(async () => (await p.status()).gpu_sampling?.xid_events?.ok === true);
    const events = await openSse(`${p.base}/debug/events?types=gpu_xid`);
    try {
      fake.append('xid 1 1 31');
      const e = await events.waitFor((f) => f.event === 'gpu_xid');
      expect(e.json).toMatchObject({ gpu: 1, xid: 31, severity: 'warning', action: 'RESTART_APP', meaning: expect.stringMatching(/MMU fault/) });
      let problem = await until(async () => (await p.status()).problems.find((x: { code: string }) => x.code === 'GPU_XID'));
      expect(problem).toMatchObject({ severity: 'warning', message: expect.stringMatching(/^GPU 1 reported Xid 31 \(MMU fault/) });
      fake.append('xid 2 0 79');
      problem = await until(async () => {
        const x = (await p.status()).problems.find((q: { code: string; severity: string }) => q.code === 'GPU_XID' && q.severity === 'error');
        return x;
      });
      expect(problem.message).toMatch(/GPU 0 reported Xid 79 \(GPU has fallen off the bus\).*not the workflow's/);
      const metrics = await (await fetch(`${p.base}/metrics`)).text();
      expect(metrics).toMatch(/podscope_gpu_xid_errors_total\{gpu="1",uuid="GPU-[^"]+",xid="31"\} 1/);
      expect(metrics).toMatch(/podscope_gpu_xid_errors_total\{gpu="0",uuid="GPU-[^"]+",xid="79"\} 1/);
    } finally {
      events.close();
    }
  });

  it('says why Xids are not received when registering for them is refused', async () => {
    const p = await start(new FakeNvml(captured('h100-80gb-hbm3-x1.drv590.load'), ['events refused']));
    const s = await until(async () => {
      const b = await p.status();
      return b.gpu_sampling?.name === 'nvml' && b.gpus.length === 1 ? b : undefined;
    });
    expect(s.gpu_sampling.xid_events).toEqual({ ok: false, reason: expect.stringMatching(/GPU 0: Insufficient Permissions/) });
  });

  it('gives up on a call stuck in the driver: GPU_SAMPLING_HUNG, the sampler killed with nothing left behind, and a new one once the driver answers', async () => {
    const fake = new FakeNvml(captured('h100-80gb-hbm3-x1.drv590.load'));
    const p = await start(fake, { PODSCOPE_GPU_TIMEOUT_MS: '500' });
    await until(async () => (await p.status()).gpus.length === 1);
    fake.append('hang nvmlDeviceGetPowerUsage');
    const problem = await until(async () => (await p.status()).problems.find((x: { code: string }) => x.code === 'GPU_SAMPLING_HUNG'), 20_000);
    expect(problem.message).toMatch(/an NVML call has not returned within PODSCOPE_GPU_TIMEOUT_MS \(500 ms\); the sampler \(pid (\d+)\) was killed/);
    const pid = Number(/pid (\d+)/.exec(problem.message)![1]);
    await until(() => !alive(pid), 10_000);
    // The driver answers again: a new sampler, and the problem ends.
    fake.write(captured('h100-80gb-hbm3-x1.drv590.load'));
    await until(async () => !(await p.status()).problems.some((x: { code: string }) => x.code === 'GPU_SAMPLING_HUNG'), 20_000);
  }, 45_000);

  it('reads an older driver without the calls it lacks: those readings null with the reason, never 0', async () => {
    const p = await start(new FakeNvml(captured('h100-80gb-hbm3-x1.drv590.load')), { PODSCOPE_NVML_LIBRARY: fakeNvmlLibrary(true) });
    const s = await until(async () => {
      const b = await p.status();
      return b.gpus.length === 1 ? b : undefined;
    });
    expect(s.gpu_sampling.missing_functions).toEqual(expect.arrayContaining(['nvmlDeviceGetMemoryInfo_v2', 'nvmlDeviceGetTotalEnergyConsumption', 'nvmlDeviceGetSamples', 'nvmlDeviceGetComputeRunningProcesses_v3']));
    expect(s.gpus[0].memory_used_mb).toBeGreaterThan(0);
    const m = (await p.get('/debug/memory')).body.gpus[0];
    expect(m.reserved_mb).toBeNull();
  });

  it('falls back to nvidia-smi, saying why, where libnvidia-ml cannot be loaded', async () => {
    const smi = new FakeSmi({ fixture: 'h100-80gb-hbm3-x1.drv590.load' });
    process.env.FAKE_NVIDIA_SMI = smi.file;
    const p = await start(new FakeNvml([]), { PODSCOPE_NVML_LIBRARY: '/nonexistent/libnvidia-ml.so.1', PODSCOPE_NVIDIA_SMI: smi.bin });
    const s = await until(async () => {
      const b = await p.status();
      return b.gpus.length === 1 && b.gpu_sampling.name === 'nvidia-smi' ? b : undefined;
    });
    expect(s.gpu_sampling.reason).toMatch(/^NVML cannot be used: \/nonexistent\/libnvidia-ml\.so\.1 cannot be loaded/);
  });

  it('with PODSCOPE_GPU_BACKEND=nvml, says NVML is required and cannot be used instead of falling back', async () => {
    const p = await start(new FakeNvml([]), { PODSCOPE_NVML_LIBRARY: '/nonexistent/libnvidia-ml.so.1', PODSCOPE_GPU_BACKEND: 'nvml' });
    const problem = await until(async () => (await p.status()).problems.find((x: { code: string }) => x.code === 'NVML_UNAVAILABLE'));
    expect(problem.message).toMatch(/PODSCOPE_GPU_BACKEND=nvml, but NVML cannot be used: .*cannot be loaded/);
  });
});

describe("a job that fails while its GPU reports an Xid", () => {
  it('carries the Xid in its error, saying whose failure it was, and the Xid event names the job', async () => {
    const { SimComfyUI, submit, txt2img } = await import('../../src/sim/comfyui.js');
    const sim = new SimComfyUI({ stepMs: 100 });
    await sim.start();
    try {
      const fake = new FakeNvml(captured('h100-80gb-hbm3-x1.drv590.load'));
      const p = await start(fake, { COMFYUI_URL: sim.url, PODSCOPE_COMFYUI_POLL_MS: '300' });
      await until(async () => (await p.status()).gpu_sampling?.xid_events?.ok === true && (await p.status()).comfyui.connected === true, 20_000);
      const events = await openSse(`${p.base}/debug/events?types=gpu_xid`);
      try {
        const { body } = await submit(sim.url, txt2img({ steps: 60, seed: 77 }), { clientId: 'w', extra: { job_id: 'hit-by-xid' } });
        await until(async () => (await p.get('/debug/workflow?job_id=hit-by-xid')).body.status === 'running', 20_000);
        fake.append('xid 1 0 79');
        const e = await events.waitFor((f) => f.event === 'gpu_xid');
        expect(e.json.jobs).toEqual([{ job_id: 'hit-by-xid', prompt_id: body.prompt_id, instance: expect.any(String) }]);
        await fetch(`${sim.url}/interrupt`, { method: 'POST', body: '{}' });
        const job = await until(async () => {
          const w = (await p.get('/debug/workflow?job_id=hit-by-xid')).body;
          return w.status === 'interrupted' && w.error?.gpu_xids ? w : undefined;
        }, 20_000);
        expect(job.error.gpu_xids).toEqual([expect.stringMatching(/^GPU 0 reported Xid 79 \(GPU has fallen off the bus\) at .*not the workflow's/)]);
      } finally {
        events.close();
      }
    } finally {
      await pod?.close();
      pod = null;
      await sim.stop();
    }
  }, 45_000);
});

describe('nvidia-smi as the witness', () => {
  it("agrees with NVML's reading of the same capture, and says so", async () => {
    const smi = new FakeSmi({ fixture: 'h100-80gb-hbm3-x1.drv590.load' });
    process.env.FAKE_NVIDIA_SMI = smi.file;
    const p = await start(new FakeNvml(captured('h100-80gb-hbm3-x1.drv590.load')), { PODSCOPE_NVIDIA_SMI: smi.bin });
    const s = await until(async () => {
      const b = await p.status();
      return b.gpu_sampling?.crosscheck ? b : undefined;
    }, 20_000);
    expect(s.gpu_sampling.crosscheck).toMatchObject({ agreed: true, mismatches: [] });
    expect(s.problems.some((x: { code: string }) => x.code === 'GPU_READING_MISMATCH')).toBe(false);
  });

  it('raises GPU_READING_MISMATCH naming the field and both values when nvidia-smi reads otherwise', async () => {
    const smi = new FakeSmi({ fixture: 'h100-80gb-hbm3-x1.drv590.load', values: { 'memory.total': '40960' } });
    process.env.FAKE_NVIDIA_SMI = smi.file;
    const nvml = captured('h100-80gb-hbm3-x1.drv590.load');
    const p = await start(new FakeNvml(nvml), { PODSCOPE_NVIDIA_SMI: smi.bin });
    const problem = await until(async () => (await p.status()).problems.find((x: { code: string }) => x.code === 'GPU_READING_MISMATCH'), 20_000);
    expect(problem).toMatchObject({ severity: 'warning', message: `NVML and nvidia-smi disagree: GPU 0 memory_total_mb: NVML ${nvml[0]!.row.memory_total_mb}, nvidia-smi 40960` });
  });

  it('says NVML is not witnessed where nvidia-smi does not answer', async () => {
    const p = await start(new FakeNvml(captured('h100-80gb-hbm3-x1.drv590.load')));
    const c = await until(async () => (await p.status()).gpu_sampling?.crosscheck, 20_000);
    expect(c).toMatchObject({ agreed: null, reason: expect.stringMatching(/nvidia-smi did not answer.*not witnessed/) });
  });
});
