import { until } from '../helpers/wait.js';
import { describe, expect, it } from 'vitest';
import { GpuCollector } from '../../src/collectors/gpu.js';
import { GpuState } from '../../src/state/gpu.js';
import { HealthBoard } from '../../src/state/health.js';
import { createLogger } from '../../src/logger.js';
import { Scrubber } from '../../src/secrets.js';
import type { FakeSmiConfig } from '../../src/sim/fake-nvidia-smi.js';
import { FakeSmi } from '../helpers/fake-smi.js';

const logger = createLogger({ level: 'silent', podId: 't', environment: 'test', scrubber: new Scrubber([]), sinks: [] });

function rig(config: FakeSmiConfig, opts: { timeoutMs?: number; bin?: string } = {}) {
  const fake = new FakeSmi(config);
  const health = new HealthBoard();
  const state = new GpuState({ startedAt: Date.now(), intervalMs: 1000, heldCount: undefined, timelineCapacity: 100 });
  const collector = new GpuCollector({
    bin: opts.bin ?? fake.bin,
    intervalMs: 1000,
    timeoutMs: opts.timeoutMs ?? 3000,
    appsIntervalMs: 60_000,
    state,
    health,
    logger,
    env: fake.env(),
    sampling: 'runs',
  });
  /** The pod's `gpu` readiness check, as /ready answers it from this state. */
  const ready = () => state.samplingCheck(Date.now(), health.problems(), opts.timeoutMs ?? 3000);
  return { fake, health, state, collector, ready, codes: () => health.problems().map((p) => p.code) };
}


describe('GPU collector sampling by one nvidia-smi run per period, against a real child process', () => {
  it('reads every GPU of a healthy nvidia-smi', async () => {
    const r = rig({ gpus: 2, utilization: 50 });
    await r.collector.tick();
    expect(r.state.readings().map((g) => [g.index, g.utilization_percent])).toEqual([
      [0, 50],
      [1, 50],
    ]);
    expect(r.codes()).toEqual([]);
    expect(r.ready()).toEqual({ ok: true });
  });

  it('lists the per-process GPU memory', async () => {
    const r = rig({ gpus: 1 });
    await r.collector.tick();
    expect(r.state.computeApps('GPU-00000000-0000-0000-0000-000000000000').map((a) => a.used_memory_mb)).toEqual([2566, 1542, 15690]);
  });

  it('kills a hung nvidia-smi at the timeout, with its process group, and says so', async () => {
    const r = rig({ mode: 'hang', ignore_term: true, spawn_child: true }, { timeoutMs: 300 });
    await r.collector.tick();
    expect(r.codes()).toContain('NVIDIA_SMI_TIMEOUT');
    expect(r.health.problems()[0]!.message).toMatch(/did not answer within 300 ms and was killed/);
    expect(r.ready().ok).toBe(false);
    await until(() => r.fake.leftovers().length === 0);
  });

  it('counts no failure for a run it kills itself while stopping', async () => {
    const failures: Array<string | null> = [];
    const r = rig({ mode: 'hang' }, { timeoutMs: 8000 });
    const collector = new GpuCollector({ bin: r.fake.bin, intervalMs: 1000, timeoutMs: 8000, appsIntervalMs: 60_000, state: r.state, health: r.health, logger, env: r.fake.env(), sampling: 'runs', onRun: (_ms, f) => failures.push(f) });
    const abort = new AbortController();
    collector.start(abort.signal);
    await until(() => r.fake.leftovers().length === 1, 7000); // the run is in flight
    abort.abort();
    await collector.stop();
    await until(() => r.fake.leftovers().length === 0);
    expect(r.health.get('gpu')).toMatchObject({ runs: 0, failures: 0 });
    expect(r.codes()).toEqual([]);
    expect(failures).toEqual([]);
  });

  it('sees a hung child while it runs (the leftover check works)', async () => {
    const r = rig({ mode: 'hang', spawn_child: true }, { timeoutMs: 8000 });
    const tick = r.collector.tick();
    await until(() => r.fake.leftovers().length === 2, 7000);
    await tick;
    await until(() => r.fake.leftovers().length === 0);
  });

  it('leaves no child behind after 50 hangs in a row', async () => {
    const r = rig({ mode: 'hang', ignore_term: true, spawn_child: true }, { timeoutMs: 100 });
    for (let i = 0; i < 50; i++) await r.collector.tick();
    await until(() => r.fake.leftovers().length === 0);
    expect(r.health.get('gpu')!.consecutive_failures).toBe(50);
  }, 60_000);

  it('never starts a run on top of one that will not go away, and resumes when it does', async () => {
    // The timeout leaves a slow `node` start (hundreds of ms on a busy machine) time to spawn the
    // holder that keeps the pipes open; the holder outlives the kill by a few seconds.
    const r = rig({ mode: 'hang', hold_pipes_ms: 6000 }, { timeoutMs: 3000 });
    await r.collector.tick();
    expect(r.codes()).toContain('NVIDIA_SMI_STUCK');
    const stuck = r.collector.describe().stuck_child as { pid: number };
    expect(stuck.pid).toBeGreaterThan(0);
    r.fake.set({}); // nvidia-smi would answer now, but the old run still holds on
    await r.collector.tick();
    expect(r.codes()).toContain('NVIDIA_SMI_STUCK');
    expect(r.state.readings()).toEqual([]);
    expect(r.health.problems().find((p) => p.code === 'NVIDIA_SMI_STUCK')!.message).toMatch(/No new run starts until it exits/);
    // Once the holder exits, the next run starts and answers.
    const deadline = Date.now() + 30_000;
    while (r.codes().length > 0 && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 250));
      await r.collector.tick();
    }
    expect(r.codes()).toEqual([]);
    expect(r.state.readings()).toHaveLength(1);
  }, 60_000);

  it('waits for a slow nvidia-smi within the timeout', async () => {
    const r = rig({ mode: 'slow', slow_ms: 400 }, { timeoutMs: 3000 });
    await r.collector.tick();
    expect(r.codes()).toEqual([]);
    expect(r.state.readings()).toHaveLength(1);
    expect(r.health.get('gpu')!.last_duration_ms).toBeGreaterThanOrEqual(400);
  });

  it('reports a missing binary', async () => {
    const r = rig({}, { bin: '/nonexistent/nvidia-smi' });
    await r.collector.tick();
    expect(r.codes()).toEqual(['NVIDIA_SMI_MISSING']);
    expect(r.ready()).toMatchObject({ ok: false, message: expect.stringMatching(/not found/) });
  });

  it.each([
    [9, 'NVIDIA_DRIVER_NOT_LOADED', /couldn't communicate with the NVIDIA driver/],
    [12, 'NVML_LIBRARY_MISSING', /libnvidia-ml\.so/],
    [15, 'GPU_LOST', /GPU is lost/],
    [18, 'NVML_VERSION_MISMATCH', /Driver\/library version mismatch/],
    [255, 'NO_GPUS_FOUND', /No supported GPUs were found/],
  ])('turns exit code %i into %s with the real text', async (exit_code, code, text) => {
    const r = rig({ mode: 'exit', exit_code });
    await r.collector.tick();
    expect(r.codes()).toEqual([code]);
    expect(r.health.problems()[0]!.message).toMatch(text);
  });

  it('keeps the healthy GPUs when one is lost', async () => {
    const r = rig({ gpus: 3, mode: 'lost', lost_index: 1 });
    await r.collector.tick(); // first run: GPU 1 was never seen, so only two readings
    r.fake.set({ gpus: 3 });
    await r.collector.tick(); // all three known
    r.fake.set({ gpus: 3, mode: 'lost', lost_index: 1 });
    await r.collector.tick();
    const readings = r.state.readings();
    expect(readings.map((g) => [g.index, g.lost])).toEqual([
      [0, false],
      [1, true],
      [2, false],
    ]);
    expect(readings[0]!.utilization_percent).toBe(100);
    expect(r.codes()).toEqual(['GPU_LOST']);
    expect(r.health.problems()[0]!.message).toMatch(/GPU 1 .* is lost: Unknown Error/);
  });

  it('reports garbage output as unparsable', async () => {
    const r = rig({ mode: 'garbage' });
    await r.collector.tick();
    expect(r.codes()).toEqual(['NVIDIA_SMI_UNPARSABLE']);
  });

  it('queries again without a field the driver rejects', async () => {
    const r = rig({ reject: ['memory.reserved'] });
    await r.collector.tick();
    expect(r.codes()).toEqual([]);
    expect(r.state.readings()[0]!.memory_reserved_mb).toBeNull();
    expect(r.collector.describe().fields_rejected).toEqual(['memory.reserved']);
  });

  it('recovers when nvidia-smi answers again', async () => {
    const r = rig({ mode: 'exit', exit_code: 9 });
    await r.collector.tick();
    expect(r.codes()).toEqual(['NVIDIA_DRIVER_NOT_LOADED']);
    r.fake.set({});
    await r.collector.tick();
    expect(r.codes()).toEqual([]);
  });
});
