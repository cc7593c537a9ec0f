#!/usr/bin/env node
/**
 * `npm run bench:soak`: 10 minutes of the harness load (20 wrk connections polling /debug/status,
 * one Prometheus-like scraper every 100 ms) on top of the simulated ComfyUI's load (100 progress
 * frames/s, 5,000 log lines/s) and a poller hitting every endpoint, against a podscope whose
 * buffers are all full from the start (as after an hour or more on a pod), reporting its RSS,
 * heap and buffers every 30 s. Goals: RSS at the end ≤ 120 MB, and within 10 % of RSS at minute 2.
 * SOAK_MINUTES shortens or lengthens the run.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SimComfyUI } from '../dist/sim/comfyui.js';
import { FAKE_SMI, ROOT, fakeGpus, scratchDir, getJson, pct, pollEndpoints, procStat, sleep, startLoad, startPodscope, startScraper } from './lib.js';
import { bufferFill } from './prefill.js';
import { runWrk } from './wrk.js';

const minutes = Number(process.env.SOAK_MINUTES ?? 10);
fakeGpus(8);

const sim = new SimComfyUI({ stepMs: 10 });
await sim.start();
// stdout (the access log and podscope's own lines) goes to a file, as a container runtime keeps it.
const stdoutFile = join(scratchDir('podscope-soak-'), 'podscope.log');
const pod = await startPodscope({ COMFYUI_URL: sim.url, PODSCOPE_NVIDIA_SMI: FAKE_SMI, PODSCOPE_GPU_BACKEND: 'nvidia-smi', RUNPOD_GPU_COUNT: '8' }, { full: true, stdoutFile });
const filled = bufferFill((await getJson(`${pod.url}/debug/memory`)).podscope?.buffers);
const stopLoad = startLoad(sim);
// The harness: 20 connections polling /debug/status as fast as podscope answers, and one scraper.
const harness = runWrk(`${pod.url}/debug/status`, { connections: 20, seconds: minutes * 60 });
const scraper = startScraper(pod.url);
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
  const s = { minute: Number(((Date.now() - started) / 60_000).toFixed(1)), rss_mb: Math.round(rss / 1024 ** 2), heap_used_mb: mem?.podscope?.heap_used_mb ?? null, ...bufferFill(mem?.podscope?.buffers) };
  samples.push(s);
  process.stderr.write(`${JSON.stringify(s)}\n`);
}
const load = await harness;
await scraper.stop();
const scrapes = scraper.times;
await stopPolling();
await stopLoad();
await pod.stop();
await sim.stop();

const atTwo = samples.find((s) => s.minute >= 2) ?? samples[0];
const last = samples.at(-1);
const growth = (last.rss_mb - atTwo.rss_mb) / atTwo.rss_mb;
const met = Math.abs(growth) <= 0.1;
const endMet = last.rss_mb <= 120;
const max = Math.max(...samples.map((x) => x.rss_mb));
const full = (x) => `${x.gpu_timeline} · ${x.jobs} · ${x.artifacts} · ${x.events} · ${x.logs}`;
const md = [
  '# podscope soak results',
  '',
  `${minutes} minutes of the harness load (20 wrk connections polling /debug/status: ${Math.round(load.rps)} req/s, p99 ${load.p99_ms} ms, ${load.non2xx} not 2xx; one scraper every 100 ms: ${scrapes.length} scrapes, ${scraper.failed()} failed, p99 ${pct(scrapes, 99).toFixed(1)} ms) on top of the benchmark load (100 progress frames/s, 5,000 log lines/s, 8 GPUs at 1 Hz) and a poller on every endpoint (${polls} requests, ${failures} failed${failed.size ? `: ${[...failed].map(([k, n]) => `${k}: ${n}`).join(', ')}` : ''}; /ready said 503 (not ready) ${notReady.count} times). podscope's stdout went to a file.`,
  '',
  `Every buffer was full from the start (bench/full-pod.js fills them, dated over the hour before, then collects and serves as \`podscope serve\` does): GPU timeline · jobs · artifacts · events · logs at the start ${full(filled)}.`,
  '',
  `RSS at the end: ${last.rss_mb} MB (goal ≤ 120 MB): ${endMet ? 'met' : '**missed**'}; highest ${max} MB.`,
  `RSS at minute ${atTwo.minute}: ${atTwo.rss_mb} MB; at the end: ${last.rss_mb} MB; change ${(growth * 100).toFixed(1)} % (goal within 10 %): ${met ? 'met' : '**missed**'}.`,
  '',
  '| minute | RSS MB | heap used MB | GPU timeline · jobs · artifacts · events · logs |',
  '| --- | --- | --- | --- |',
  ...samples.map((x) => `| ${x.minute} | ${x.rss_mb} | ${x.heap_used_mb} | ${full(x)} |`),
  '',
].join('\n');
writeFileSync(join(ROOT, 'bench/soak-results.md'), md);
process.stdout.write(md);
process.exit(0);
