/**
 * Sampling through one long-lived `nvidia-smi --query-gpu=… -lms` (the fallback where NVML cannot
 * be used), against the fake nvidia-smi looping as the real one does, answering from recorded
 * real outputs. Each test runs the collector on its own timer, as podscope does.
 */
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { GpuCollector, type GpuCollectorOptions } from '../../src/collectors/gpu.js';
import { GpuState } from '../../src/state/gpu.js';
import { HealthBoard } from '../../src/state/health.js';
import { createLogger } from '../../src/logger.js';
import { Scrubber } from '../../src/secrets.js';
import type { FakeSmiConfig } from '../../src/sim/fake-nvidia-smi.js';
import { FakeSmi } from '../helpers/fake-smi.js';
import { until } from '../helpers/wait.js';

const logger = createLogger({ level: 'silent', podId: 't', environment: 'test', scrubber: new Scrubber([]), sinks: [] });
const stops: Array<() => Promise<void>> = [];

afterEach(async () => {
  await Promise.all(stops.splice(0).map((s) => s()));
});

function looping(config: FakeSmiConfig, opts: Partial<GpuCollectorOptions> = {}) {
  const fake = new FakeSmi(config);
  const health = new HealthBoard();
  const state = new GpuState({ startedAt: Date.now(), intervalMs: 200, heldCount: undefined, timelineCapacity: 1000 });
  const failures: Array<string | null> = [];
  const collector = new GpuCollector({ bin: fake.bin, intervalMs: 200, timeoutMs: 1500, appsIntervalMs: 200, healthIntervalMs: 3_600_000, state, health, logger, env: fake.env(), onRun: (_ms, f) => failures.push(f), ...opts });
  const abort = new AbortController();
  collector.start(abort.signal);
  const stop = async () => {
    abort.abort();
    await collector.stop();
  };
  stops.push(stop);
  /** The nvidia-smi processes of this fake now alive (its loops and their children). */
  const alive = () => fake.leftovers().filter((l) => !/ Z /.test(l));
  const loopsOf = (kind: 'query-gpu' | 'query-compute-apps') => alive().filter((l) => l.includes(`--${kind}=`) && l.includes(' -lms '));
  const codes = () => health.problems().map((p) => p.code);
  return { fake, health, state, collector, failures, stop, alive, loopsOf, codes, describe: () => collector.describe() as { sampling: string; loops: { gpu: { pid: number; samples: number } | null } | null } };
}

describe('GPU sampling through one nvidia-smi loop', () => {
  it('reads every GPU from one long-lived process, sample after sample', async () => {
    const r = looping({ gpus: 2, utilization: [10, 20] });
    await until(() => r.state.readings().length === 2 && (r.describe().loops?.gpu?.samples ?? 0) >= 5);
    expect(r.state.readings().map((g) => [g.index, g.utilization_percent])).toEqual([
      [0, 10],
      [1, 20],
    ]);
    expect(r.loopsOf('query-gpu')).toHaveLength(1);
    expect(r.codes()).toEqual([]);
  });

  it('follows the values as they change while the loop runs', async () => {
    const r = looping({ gpus: 1, utilization: 10 });
    await until(() => r.state.readings()[0]?.utilization_percent === 10);
    const pid = r.describe().loops!.gpu!.pid;
    r.fake.set({ gpus: 1, utilization: 77 });
    await until(() => r.state.readings()[0]?.utilization_percent === 77);
    expect(r.describe().loops!.gpu!.pid).toBe(pid);
  });

  it('lists the per-process GPU memory from its own loop', async () => {
    const r = looping({ gpus: 1 });
    await until(() => r.state.computeApps('GPU-00000000-0000-0000-0000-000000000000').length === 3);
    expect(r.state.computeApps('GPU-00000000-0000-0000-0000-000000000000').map((a) => a.used_memory_mb)).toEqual([2566, 1542, 15690]);
    expect(r.loopsOf('query-compute-apps')).toHaveLength(1);
  });

  it('ignores a CSV header printed before every sample', async () => {
    const r = looping({ gpus: 2, loop_header: 'every' });
    await until(() => (r.describe().loops?.gpu?.samples ?? 0) >= 3 && r.state.readings().length === 2);
    expect(r.codes()).toEqual([]);
    expect(r.failures.filter((f) => f !== null)).toEqual([]);
  });

  it('ignores a CSV header printed once at the start', async () => {
    const r = looping({ gpus: 2, loop_header: 'once' });
    await until(() => (r.describe().loops?.gpu?.samples ?? 0) >= 3 && r.state.readings().length === 2);
    expect(r.failures.filter((f) => f !== null)).toEqual([]);
  });

  it('puts lines cut across reads back together', async () => {
    const r = looping({ gpus: 4, loop_split_writes: true, utilization: [1, 2, 3, 4] });
    await until(() => (r.describe().loops?.gpu?.samples ?? 0) >= 3 && r.state.readings().length === 4);
    expect(r.state.readings().map((g) => g.utilization_percent)).toEqual([1, 2, 3, 4]);
    expect(r.failures.filter((f) => f !== null)).toEqual([]);
  });

  it('keeps the healthy GPUs when one is lost mid-stream', async () => {
    const r = looping({ gpus: 2 });
    await until(() => r.state.readings().length === 2);
    r.fake.set({ gpus: 2, mode: 'lost', lost_index: 1 });
    await until(() => r.codes().includes('GPU_LOST'));
    const readings = r.state.readings();
    expect(readings.map((g) => [g.index, g.lost])).toEqual([
      [0, false],
      [1, true],
    ]);
  });

  it('kills a loop gone silent with its process group, says so, and starts one again', async () => {
    const r = looping({ gpus: 1 }, { timeoutMs: 600 });
    await until(() => r.state.readings().length === 1);
    const first = r.describe().loops!.gpu!.pid;
    r.fake.set({ gpus: 1, mode: 'hang', ignore_term: true });
    await until(() => r.codes().includes('NVIDIA_SMI_TIMEOUT'), 15_000);
    expect(r.health.problems().find((p) => p.code === 'NVIDIA_SMI_TIMEOUT')!.message).toMatch(/sampling loop \(pid \d+\) printed no sample for \d+ s and was killed with its process group/);
    r.fake.set({ gpus: 1, utilization: 42 });
    await until(() => r.state.readings()[0]?.utilization_percent === 42 && !r.codes().includes('NVIDIA_SMI_TIMEOUT'), 15_000);
    expect(r.describe().loops!.gpu!.pid).not.toBe(first);
  });

  it('never has two loops of a kind alive, through failures and restarts', async () => {
    const r = looping({ gpus: 1 }, { timeoutMs: 400 });
    const seen: number[] = [];
    const watch = setInterval(() => seen.push(r.loopsOf('query-gpu').length), 20);
    try {
      await until(() => r.state.readings().length === 1);
      for (const mode of ['hang', 'ok', 'exit', 'ok'] as const) {
        const restarts = r.failures.length;
        r.fake.set({ gpus: 1, mode, exit_code: 9 });
        await until(() => (mode === 'ok' ? r.codes().length === 0 && r.failures.length > restarts : r.failures.slice(restarts).some((f) => f !== null)), 20_000);
      }
    } finally {
      clearInterval(watch);
    }
    expect(Math.max(...seen)).toBe(1);
  }, 60_000);

  it('names the failure when the loop exits, and backs off before the next', async () => {
    const r = looping({ gpus: 1 });
    await until(() => r.state.readings().length === 1);
    r.fake.set({ gpus: 1, mode: 'exit', exit_code: 9 });
    await until(() => r.codes().includes('NVIDIA_DRIVER_NOT_LOADED'));
    expect(r.health.problems()[0]!.message).toMatch(/the sampling loop ended with exit 9; a new one starts in 1 s/);
    // Failing again, the wait doubles.
    await until(() => /a new one starts in [248] s/.test(r.health.problems()[0]?.message ?? ''), 15_000);
  });

  it('queries without a field the driver rejects, and goes on looping', async () => {
    const r = looping({ gpus: 1, reject: ['temperature.memory'] });
    await until(() => r.state.readings().length === 1 && (r.describe().loops?.gpu?.samples ?? 0) >= 2);
    expect((r.collector.describe() as { fields_rejected: string[] }).fields_rejected).toEqual(['temperature.memory']);
    expect(r.state.readings()[0]!.null_reasons.memory_temperature_c).toMatch(/not queried/);
  });

  it('samples by one run per period when nvidia-smi will not loop', async () => {
    const r = looping({ gpus: 1, loop_exit_after: 1, utilization: 5 });
    await until(() => r.describe().sampling === 'runs', 15_000);
    r.fake.set({ gpus: 1, loop_exit_after: 1, utilization: 6 });
    await until(() => r.state.readings()[0]?.utilization_percent === 6);
    expect(r.codes()).toEqual([]);
  });

  it('kills what a silent loop started along with it, and keeps no descriptor across restarts', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    const r = looping({ gpus: 1 }, { timeoutMs: 300 });
    await until(() => r.state.readings().length === 1);
    r.fake.set({ mode: 'hang', ignore_term: true, spawn_child: true });
    // Three silent loops in a row (1 s, then 2 s of backoff between them), each with a child of its own.
    await until(() => r.failures.filter((f) => f === 'NVIDIA_SMI_TIMEOUT').length >= 3, 30_000);
    await r.stop();
    await until(() => r.fake.leftovers().length === 0);
    await until(() => fds() <= before + 2);
  }, 40_000);

  it('leaves no nvidia-smi behind when it stops', async () => {
    const r = looping({ gpus: 2 });
    await until(() => r.loopsOf('query-gpu').length === 1 && r.loopsOf('query-compute-apps').length === 1);
    await r.stop();
    await until(() => r.alive().length === 0);
    expect(r.failures.filter((f) => f !== null)).toEqual([]);
  });
});
