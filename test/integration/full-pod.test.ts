/**
 * The soak's pod (bench/full-pod.js): `podscope serve` with every buffer filled before its
 * collectors start, so the soak measures a pod that has run for an hour from its first minute.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBin, type Running } from '../helpers/spawn.js';
import { FakeSmi } from '../helpers/fake-smi.js';
import { until } from '../helpers/wait.js';

const FULL_POD = fileURLToPath(new URL('../../bench/full-pod.js', import.meta.url));

let run: Running;
beforeAll(async () => {
  const fake = new FakeSmi({ fixture: 'h200-x1.drv590.load', gpus: 2 });
  run = await startBin(
    {
      COMFYUI_URL: 'http://127.0.0.1:9',
      PODSCOPE_NVIDIA_SMI: fake.bin,
      PODSCOPE_GPU_BACKEND: 'nvidia-smi',
      FAKE_NVIDIA_SMI: fake.file,
      RUNPOD_GPU_COUNT: '2',
      PODSCOPE_GPU_SAMPLES: '300',
      PODSCOPE_JOB_HISTORY: '20',
      PODSCOPE_ARTIFACTS: '100',
      PODSCOPE_EVENTS: '200',
      PODSCOPE_LOG_LINES: '1000',
    },
    [],
    [],
    FULL_POD,
  );
}, 30_000);
afterAll(() => {
  run?.child.kill('SIGTERM');
});

describe('the pre-filled pod the soak runs', () => {
  it('starts with every buffer at its capacity', async () => {
    const mem = (await (await fetch(`${run.url}/debug/memory`)).json()) as { podscope: { buffers: Record<string, { entries: number; capacity_entries: number }> } };
    const { buffers } = mem.podscope;
    for (const name of ['gpu_timeline', 'jobs', 'artifacts', 'events', 'logs']) {
      expect({ name, entries: buffers[name]!.entries }).toEqual({ name, entries: buffers[name]!.capacity_entries });
    }
  });

  it('goes on sampling after the filled hour, in time order', async () => {
    const newest = async () => {
      const m = (await (await fetch(`${run.url}/debug/memory?points=300`)).json()) as { timeline: { points: Array<{ t: string }> } };
      return m.timeline.points.map((p) => Date.parse(p.t));
    };
    const before = (await newest()).at(-1)!;
    const times = await until(async () => {
      const t = await newest();
      return t.at(-1)! > before ? t : undefined;
    }, 15_000);
    expect(times.every((t, i) => i === 0 || t > times[i - 1]!)).toBe(true);
    expect(times.at(-1)! - times[0]!).toBeGreaterThan(250 * 1000);
  });
});
