#!/usr/bin/env node
/**
 * `npm run bench:soak`: 10 minutes of the full benchmark load plus a poller hitting every endpoint,
 * reporting podscope's RSS and heap every 30 s. Goal: RSS at the end within 10 % of RSS at minute 2.
 * SOAK_MINUTES shortens or lengthens the run.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SimComfyUI } from '../dist/sim/comfyui.js';
import { FAKE_SMI, ROOT, fakeGpus, getJson, pollEndpoints, procStat, sleep, startLoad, startPodscope } from './lib.js';

const minutes = Number(process.env.SOAK_MINUTES ?? 10);
fakeGpus(8);

const sim = new SimComfyUI({ stepMs: 10 });
await sim.start();
const pod = await startPodscope({ COMFYUI_URL: sim.url, PODSCOPE_NVIDIA_SMI: FAKE_SMI, RUNPOD_GPU_COUNT: '8' });
const stopLoad = startLoad(sim);
let polls = 0;
let failures = 0;
/** /ready answering 503 is not a failure of podscope: it reports ComfyUI or GPU trouble. */
const notReady = { count: 0 };
const failed = new Map();
const stopPolling = pollEndpoints(pod.url, (e, r) => {
  polls++;
  if (e === '/ready' && r?.status === 503) notReady.count++;
  else if (!r || r.status >= 500) {
    failures++;
    const key = `${e} ${r ? r.status : 'no answer'}`;
    failed.set(key, (failed.get(key) ?? 0) + 1);
  }
});

const samples = [];
const started = Date.now();
const end = started + minutes * 60_000;
while (Date.now() < end) {
  await sleep(Math.min(30_000, end - Date.now()));
  const { rss } = procStat(pod.child.pid);
  const mem = await getJson(`${pod.url}/debug/memory`).catch(() => null);
  const s = { minute: Number(((Date.now() - started) / 60_000).toFixed(1)), rss_mb: Math.round(rss / 1024 ** 2), heap_used_mb: mem?.podscope?.heap_used_mb ?? null, log_lines: mem?.podscope?.buffers?.logs?.entries ?? null };
  samples.push(s);
  process.stderr.write(`${JSON.stringify(s)}\n`);
}
await stopPolling();
await stopLoad();
await pod.stop();
await sim.stop();

const atTwo = samples.find((s) => s.minute >= 2) ?? samples[0];
const last = samples.at(-1);
const growth = (last.rss_mb - atTwo.rss_mb) / atTwo.rss_mb;
const met = Math.abs(growth) <= 0.1;
const md = [
  '# podscope soak results',
  '',
  `${minutes} minutes of the benchmark load (100 progress frames/s, 5,000 log lines/s, 8 GPUs at 1 Hz) plus a poller on every endpoint: ${polls} requests, ${failures} failed${failed.size ? ` (${[...failed].map(([k, n]) => `${k}: ${n}`).join(', ')})` : ''}; /ready said 503 (not ready) ${notReady.count} times.`,
  '',
  `RSS at minute ${atTwo.minute}: ${atTwo.rss_mb} MB; at the end: ${last.rss_mb} MB; change ${(growth * 100).toFixed(1)} % (goal within 10 %): ${met ? 'met' : '**missed**'}.`,
  '',
  '| minute | RSS MB | heap used MB | log lines buffered |',
  '| --- | --- | --- | --- |',
  ...samples.map((s) => `| ${s.minute} | ${s.rss_mb} | ${s.heap_used_mb} | ${s.log_lines} |`),
  '',
].join('\n');
writeFileSync(join(ROOT, 'bench/soak-results.md'), md);
process.stdout.write(md);
process.exit(0);
