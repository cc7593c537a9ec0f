#!/usr/bin/env node
/**
 * `node bench/heap-compare.js`: two podscopes side by side under the soak's load (the simulated
 * ComfyUI at 100 progress frames/s and 5,000 log lines/s, 8 GPUs, a poller on every endpoint of
 * each), one with V8's own heap growing factor (`--heap-growing-percent=0`) and one as podscope
 * runs (25 %, set by `tuneHeap()`): their resident set every 2 s after a 30-s warm-up, and their
 * CPU. COMPARE_SECONDS sets the length (180 by default).
 */
import { SimComfyUI } from '../dist/sim/comfyui.js';
import { FAKE_SMI, TICKS, fakeGpus, pct, pollEndpoints, procStat, sleep, startLoad, startPodscope } from './lib.js';

const seconds = Number(process.env.COMPARE_SECONDS ?? 180);
fakeGpus(8);

const sim = new SimComfyUI({ stepMs: 10 });
await sim.start();
const env = { COMFYUI_URL: sim.url, PODSCOPE_NVIDIA_SMI: FAKE_SMI, PODSCOPE_GPU_BACKEND: 'nvidia-smi', RUNPOD_GPU_COUNT: '8' };
const pods = [
  { name: "V8's own factor", pod: await startPodscope(env, { nodeArgs: ['--heap-growing-percent=0'] }), rss: [] },
  { name: 'podscope (25 %)', pod: await startPodscope(env, { nodeArgs: [] }), rss: [] },
];
const stopLoad = startLoad(sim);
const pollers = pods.map(({ pod }) => pollEndpoints(pod.url));
await sleep(30_000);
const cpu0 = pods.map((p) => procStat(p.pod.child.pid).cpuTicks);
const end = Date.now() + seconds * 1000;
while (Date.now() < end) {
  await sleep(2000);
  for (const p of pods) p.rss.push(Math.round(procStat(p.pod.child.pid).rss / 1024 ** 2));
}
const cpu = pods.map((p, i) => (procStat(p.pod.child.pid).cpuTicks - cpu0[i]) / TICKS / seconds);
await Promise.all(pollers.map((stop) => stop()));
await stopLoad();
process.stdout.write(`| podscope, ${seconds} s under the soak's load | RSS median MB | p90 | max | CPU, % of a core |\n| --- | --- | --- | --- | --- |\n`);
pods.forEach((p, i) => process.stdout.write(`| ${p.name} | ${pct(p.rss, 50)} | ${pct(p.rss, 90)} | ${Math.max(...p.rss)} | ${(cpu[i] * 100).toFixed(1)} |\n`));
for (const p of pods) await p.pod.stop();
await sim.stop();
process.exit(0);
