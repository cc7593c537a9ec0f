#!/usr/bin/env node
/**
 * `npm run bench`: podscope under a realistic load, every figure measured in this run beside a
 * baseline measured in the same run, written to bench/results.md and bench/results.json.
 *
 * The setup: the simulated ComfyUI sending 100 progress frames/s and 5,000 log lines/s, the fake
 * nvidia-smi with 8 GPUs sampled at 1 Hz, and podscope (a separate process, as on a pod) against
 * them. BENCH_QUICK=1 shortens the long measurements (for a smoke run; figures are then rougher).
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync, appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { SimComfyUI, submit, txt2img } from '../dist/sim/comfyui.js';
import { answer } from '../dist/sim/fake-nvidia-smi.js';
import { planFields, parseHelpQueryGpu, parseCsvRows, toGpuRow } from '../dist/sources/nvidia-smi.js';
import { GpuState } from '../dist/state/gpu.js';

import { AS_THE_BIN, FAKE_SMI, ROOT, TICKS, fakeGpus, scratchDir, getJson, pct, procStat, sleep, startLoad, startPodscope, startScraper } from './lib.js';
import { median, runWrk, startBaseline } from './wrk.js';
import { renderResults } from './report.js';

const QUICK = process.env.BENCH_QUICK === '1';
const results = [];
const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);

function record(name, value, unit, goal, ok, detail = {}) {
  results.push({ name, value, unit, goal, met: ok, ...detail });
  log(`${ok === null ? '   ' : ok ? 'ok ' : 'MISS'} ${name}: ${value} ${unit}${goal ? `  (goal ${goal})` : ''}`);
  if (process.env.BENCH_ONLY) log(`     ${JSON.stringify(detail)}`);
}

async function machine() {
  const c = cpus();
  return { cpu: c[0]?.model ?? 'unknown', cores: c.length, memory_gb: Math.round(totalmem() / 1024 ** 3), node: process.version, date: new Date().toISOString() };
}

// ---------------------------------------------------------------------------------------------

async function benchGpuSampleCpu() {
  // CPU to turn one 8-GPU nvidia-smi answer into state: parse + apply, in this process.
  const help = answer(['--help-query-gpu'], { fixture: 'h200-x1.drv590.load' });
  const plan = planFields(parseHelpQueryGpu(help.stdout));
  const out = answer([`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits'], { fixture: 'h200-x1.drv590.load', gpus: 8 }).stdout;
  const state = new GpuState({ startedAt: 0, intervalMs: 1000, heldCount: 8, timelineCapacity: 3600 });
  const n = QUICK ? 2000 : 20_000;
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const parsed = parseCsvRows(out, plan.fields.length);
    state.applySample(i * 1000, parsed.rows.map((r) => toGpuRow(r, plan.keys)));
  }
  const used = process.cpuUsage(t0);
  const us = (used.user + used.system) / n;
  // Baseline in the same run: only splitting the same text into lines.
  const b0 = process.cpuUsage();
  for (let i = 0; i < n; i++) out.split('\n').map((l) => l.split(','));
  const b = process.cpuUsage(b0);
  const base = (b.user + b.system) / n;
  record('CPU per GPU sample (8 GPUs): parse + state update', us.toFixed(1), 'µs', '≤ 1000 µs (1 ms per 1 s sample)', us <= 1000, { baseline_split_only_us: Number(base.toFixed(1)), ratio_to_baseline: Number((us / base).toFixed(1)) });
}

/**
 * Throughput of the request path, by wrk: podscope's /debug/status and /health against a bare
 * node:http server and a Hono hello world serving the very same bodies, each server in its own
 * process with stdout to a file; the median over rounds of each round's ratio, the generator's own CPU reported.
 *
 * Every server lives through the whole section and idles while the others are measured, as
 * podscope does. A Node server that has idled answers small requests more slowly than a fresh
 * one: V8's idle-time collections drop the object shapes Node's process.nextTick recorded, and
 * that object literal's feedback then goes megamorphic (and stayed so in every run watched), so
 * each tick object is built in the runtime (docs/performance.md). Comparing an idled podscope with fresh baselines measured
 * that, not the request path; "hono /health, fresh" shows its size in each round.
 */
async function benchHttp(pod) {
  // Short rounds, each running every server one after the other: this VM's speed drifts by tens
  // of percent over minutes, so ratios are taken within a round and their median reported.
  const rounds = QUICK ? 1 : 5;
  const seconds = QUICK ? 3 : 6;
  const dir = scratchDir('podscope-bench-http-');
  const bodies = {};
  for (const path of ['/debug/status', '/health']) {
    const file = join(dir, `${path.replaceAll('/', '_')}.json`);
    writeFileSync(file, await (await fetch(`${pod.url}${path}`)).text());
    bodies[path] = file;
  }
  const servers = {};
  for (const path of ['/debug/status', '/health']) {
    for (const kind of ['bare', 'hono']) {
      const server = await startBaseline(kind, bodies[path], join(dir, `${kind}.log`));
      await (await fetch(server.url)).arrayBuffer();
      servers[`${kind} ${path}`] = server;
    }
  }
  // Long enough for V8's memory reducer (its first collection comes 8 s after a quiet start).
  await sleep(15_000);
  const runs = {};
  const add = (key, r) => (runs[key] ??= []).push(r);
  try {
    for (let round = 0; round < rounds; round++) {
      for (const path of ['/debug/status', '/health']) {
        for (const kind of ['bare', 'hono']) {
          const server = servers[`${kind} ${path}`];
          add(`${kind} ${path}`, await runWrk(server.url, { seconds, serverPid: server.child.pid }));
        }
        add(`podscope ${path}`, await runWrk(`${pod.url}${path}`, { seconds, serverPid: pod.child.pid }));
      }
      const fresh = await startBaseline('hono', bodies['/health'], join(dir, 'hono-fresh.log'));
      add('hono /health, fresh', await runWrk(fresh.url, { seconds, serverPid: fresh.child.pid }));
      await fresh.stop();
      // The same /debug/status load with 20 clients following /debug/events (read and discarded).
      const followers = await openEventStreams(pod.url, 20);
      add('podscope /debug/status + 20 event streams', await runWrk(`${pod.url}/debug/status`, { seconds, serverPid: pod.child.pid }));
      followers.close();
    }
  } finally {
    await Promise.all(Object.values(servers).map((server) => server.stop()));
  }
  const med = (key, field) => median(runs[key].map((r) => r[field]));
  const detail = (key) => ({ rps: Math.round(med(key, 'rps')), p99_ms: med(key, 'p99_ms'), server_cpu_percent: med(key, 'server_cpu_percent'), wrk_cpu_percent: med(key, 'wrk_cpu_percent') });
  /** Each round's a ÷ b, each round's figures taken minutes apart at most. */
  const byRound = (a, b, field) => runs[a].map((r, i) => r[field] / runs[b][i][field]);
  /** The rounds' ratios to two places: how often a goal is met, not only the median. */
  const ratios = (a, b, field = 'rps') => byRound(a, b, field).map((x) => Math.round(x * 100) / 100);
  const ratio = (a, b, field = 'rps') => median(byRound(a, b, field));
  const errors = Object.values(runs).flat().reduce((n, r) => n + r.non2xx, 0);
  for (const path of ['/debug/status', '/health']) {
    const p = detail(`podscope ${path}`);
    const bare = detail(`bare ${path}`);
    const hono = detail(`hono ${path}`);
    const toHono = ratio(`podscope ${path}`, `hono ${path}`);
    const toBare = ratio(`podscope ${path}`, `bare ${path}`);
    const goalHono = path === '/health' ? 0.9 : 0.8;
    record(`${path} throughput (wrk, 50 connections), podscope ÷ Hono hello world, same body`, toHono.toFixed(2), '×', `≥ ${goalHono}`, toHono >= goalHono, { podscope: p, hono, rounds, per_round: ratios(`podscope ${path}`, `hono ${path}`), errors });
    if (path === '/debug/status') {
      const withStreams = detail('podscope /debug/status + 20 event streams');
      const streamsToHono = ratio('podscope /debug/status + 20 event streams', `hono ${path}`);
      record('/debug/status throughput with 20 /debug/events streams open, podscope ÷ Hono hello world', streamsToHono.toFixed(2), '×', '≥ 0.8', streamsToHono >= 0.8, { podscope: withStreams, hono, per_round: ratios('podscope /debug/status + 20 event streams', `hono ${path}`) });
      record('/debug/status throughput, podscope ÷ bare node:http, same body', toBare.toFixed(2), '×', '≥ 0.6', toBare >= 0.6, { podscope: p, bare, per_round: ratios(`podscope ${path}`, `bare ${path}`) });
      const p99 = ratio(`podscope ${path}`, `bare ${path}`, 'p99_ms');
      record('/debug/status p99, podscope ÷ bare node:http', p99.toFixed(2), '×', '≤ 2', p99 <= 2, { podscope_p99_ms: p.p99_ms, bare_p99_ms: bare.p99_ms });
    }
  }
  const idled = ratio('hono /health', 'hono /health, fresh');
  record('Hono hello world /health, the process that has idled ÷ a fresh one (what idling costs any Node server)', idled.toFixed(2), '×', '-', null, { idled: detail('hono /health'), fresh: detail('hono /health, fresh'), per_round: ratios('hono /health', 'hono /health, fresh') });
}

/** `n` clients following /debug/events, each reading and discarding what comes. */
async function openEventStreams(url, n) {
  const ac = new AbortController();
  let opened = 0;
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/debug/events`, { signal: ac.signal });
    if (res.status !== 200) throw new Error(`/debug/events answered ${res.status}`);
    opened++;
    void (async () => {
      try {
        for await (const _chunk of res.body) void _chunk;
      } catch {
        /* aborted */
      }
    })();
  }
  log(`   ${opened} event streams open`);
  return { close: () => ac.abort() };
}

async function benchMetrics(pod) {
  // CPU per scrape: podscope's own CPU over back-to-back scrapes by one client, less its idle CPU.
  const n = QUICK ? 200 : 1000;
  const idleA = procStat(pod.child.pid);
  await sleep(2000);
  const idleB = procStat(pod.child.pid);
  const idlePerMs = (idleB.cpuTicks - idleA.cpuTicks) / 2000;
  const a = procStat(pod.child.pid);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await (await fetch(`${pod.url}/metrics`)).arrayBuffer();
  const wall = performance.now() - t0;
  const b = procStat(pod.child.pid);
  const cpuMs = (((b.cpuTicks - a.cpuTicks - idlePerMs * wall) / TICKS) * 1000) / n;
  const text = await (await fetch(`${pod.url}/metrics`)).text();
  const jobs = (await getJson(`${pod.url}/debug/memory`)).podscope.buffers.jobs.entries;
  record('/metrics CPU per scrape, back to back (8 GPUs, remembered jobs below)', Math.max(0, cpuMs).toFixed(2), 'ms', '≤ 1 ms', cpuMs <= 1, { scrapes: n, jobs_remembered: jobs, bytes: text.length, note: 'one exposition serves every scrape within 1 s' });

  // Latency for one scraper (every 100 ms) while 20 connections poll /debug/status with wrk.
  const harness = runWrk(`${pod.url}/debug/status`, { connections: 20, seconds: QUICK ? 8 : 25 });
  await sleep(500);
  const scraper = startScraper(pod.url);
  await sleep(QUICK ? 6000 : 22_000);
  await scraper.stop();
  const load = await harness;
  const { times } = scraper;
  if (scraper.failed() > 0) throw new Error(`${scraper.failed()} scrapes got no answer under the harness load`);
  const p99 = pct(times, 99);
  record('/metrics scrape latency p99, one scraper, while 20 connections poll /debug/status', p99.toFixed(2), 'ms', '≤ 10 ms', p99 <= 10, { p50_ms: Number(pct(times, 50).toFixed(2)), scrapes: times.length, harness_rps: Math.round(load.rps) });
}

/**
 * What a fresh exposition costs, on a quiet pod: scrapes 1.1 s apart (each one a build, as
 * Prometheus at its usual interval gets), each followed at once by the same exposition again
 * (the scrape without the build); the difference of the medians is the build.
 */
async function benchMetricsBuild(pod) {
  const n = QUICK ? 5 : 20;
  const fresh = [];
  const reused = [];
  const timed = async (into) => {
    const t = performance.now();
    await (await fetch(`${pod.url}/metrics`)).arrayBuffer();
    into.push(performance.now() - t);
  };
  for (let i = 0; i < n; i++) {
    await sleep(1100);
    await timed(fresh);
    await timed(reused);
  }
  const build = median(fresh) - median(reused);
  record('/metrics fresh exposition, quiet pod: scrape latency with the build ÷ without (same exposition again at once)', (median(fresh) / median(reused)).toFixed(2), '×', '-', null, { build_ms: Number(build.toFixed(2)), fresh_p50_ms: Number(median(fresh).toFixed(2)), fresh_max_ms: Number(Math.max(...fresh).toFixed(2)), reused_p50_ms: Number(median(reused).toFixed(2)), scrapes: n });
}

async function benchEventToAnswer(sim, pod) {
  // A prompt without client_id: each progress frame is broadcast; poll /debug/workflow and note when each step shows.
  const steps = QUICK ? 60 : 200;
  const sent = new Map();
  const sim2 = sim;
  const { body } = await submit(sim2.url, txt2img({ steps, seed: 4242 }), { extra: { job_id: 'latency_probe' } });
  const probe = body.prompt_id;
  // The sim stamps nothing; record send times by watching our own socket, which sees the same broadcast.
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(`${sim.url.replace('http', 'ws')}/ws?clientId=bench-observer`);
  ws.on('message', (d, bin) => {
    if (bin) return;
    const m = JSON.parse(d.toString());
    if (m.type === 'progress' && m.data.prompt_id === probe && !sent.has(m.data.value)) sent.set(m.data.value, performance.now());
  });
  const seen = new Map();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const w = await getJson(`${pod.url}/debug/workflow?job_id=latency_probe`).catch(() => null);
    const ks = w?.nodes?.find((n) => n.class_type === 'KSampler');
    const v = ks?.progress?.steps;
    if (typeof v === 'number' && !seen.has(v)) seen.set(v, performance.now());
    if (w?.status && w.status !== 'running' && w.status !== 'queued') break;
  }
  ws.close();
  const lat = [];
  for (const [v, t] of seen) if (sent.has(v)) lat.push(Math.max(0, t - sent.get(v)));
  const p99 = pct(lat, 99);
  record('event to answer: progress frame → step in /debug/workflow, p99', p99.toFixed(1), 'ms', '≤ 50 ms', p99 <= 50, { p50_ms: Number(pct(lat, 50).toFixed(1)), samples: lat.length });
}

async function benchIdle(env) {
  const sim = new SimComfyUI({});
  await sim.start();
  const pod = await startPodscope({ ...env, COMFYUI_URL: sim.url });
  await sleep(3000);
  const seconds = QUICK ? 15 : 60;
  const a = procStat(pod.child.pid);
  await sleep(seconds * 1000);
  const b = procStat(pod.child.pid);
  const share = ((b.cpuTicks - a.cpuTicks) / TICKS / seconds) * 100;
  record(`idle cost: podscope CPU over ${seconds} s, 1 Hz GPU sampling, idle ComfyUI`, share.toFixed(2), '% of one core', '≤ 1 %', share <= 1, { rss_mb: Math.round(b.rss / 1024 ** 2) });
  await pod.stop();
  await sim.stop();
}

/** CPU ticks of the children a process has reaped (cutime + cstime): its nvidia-smi runs. */
function reapedTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[13]) + Number(f[14]);
}

/** The processes podscope started (its NVML sampler), by /proc's children lists. */
function childrenOf(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/**
 * NVML's footprint: podscope and its sampler process together, idle, 8 GPUs (the fake
 * libnvidia-ml.so answering from the H200 capture) with memory read every 100 ms, against the
 * same podscope sampling through the fake nvidia-smi once a second, measured in the same run.
 */
async function benchNvmlFootprint(env) {
  const lib = join(scratchDir('podscope-bench-nvml-'), 'libnvidia-ml.so.1');
  const built = spawnSync('gcc', ['-shared', '-fPIC', '-O2', '-Wno-format-truncation', '-o', lib, join(ROOT, 'test/fake-nvml/fake-nvml.c')]);
  if (built.status !== 0) {
    record('NVML footprint (needs gcc to build the fake libnvidia-ml)', 'skipped', '', '', null);
    return;
  }
  const help = answer(['--help-query-gpu'], { fixture: 'h200-x1.drv590.load' });
  const plan = planFields(parseHelpQueryGpu(help.stdout));
  const out = answer([`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits'], { fixture: 'h200-x1.drv590.load', gpus: 8 }).stdout;
  const rows = parseCsvRows(out, plan.fields.length).rows.map((r) => toGpuRow(r, plan.keys));
  const conf = join(scratchDir('podscope-bench-nvml-'), 'fake-nvml.conf');
  const lines = [`driver ${rows[0].driver_version}`];
  rows.forEach((r, i) => {
    lines.push(`gpu ${i} name ${r.name}`, `gpu ${i} uuid ${r.uuid}`, `gpu ${i} bus ${r.pci_bus_id}`, `gpu ${i} mem_total_mb ${r.memory_total_mb}`, `gpu ${i} mem_used_mb ${r.memory_used_mb}`);
    lines.push(`gpu ${i} util ${r.utilization_percent ?? 0}`, `gpu ${i} power_mw ${Math.round((r.power_w ?? 0) * 1000)}`, `gpu ${i} temp_c ${r.temperature_c ?? 0}`, `gpu ${i} procs 4242:30000`);
  });
  writeFileSync(conf, `${lines.join('\n')}\n`);
  const seconds = QUICK ? 15 : 60;
  const measure = async (extra, warmMs = 3000) => {
    const sim = new SimComfyUI({});
    await sim.start();
    const pod = await startPodscope({ ...env, ...extra, COMFYUI_URL: sim.url, FAKE_NVML_CONFIG: conf });
    await sleep(warmMs);
    // podscope with the children it reaped (each nvidia-smi run), and the sampler process it keeps.
    const pids = () => [pod.child.pid, ...childrenOf(pod.child.pid)];
    const ticksOf = (p) => procStat(p).cpuTicks + (p === pod.child.pid ? reapedTicks(p) : 0);
    const before = new Map(pids().map((p) => [p, ticksOf(p)]));
    await sleep(seconds * 1000);
    let ticks = 0;
    let rss = 0;
    for (const p of pids()) {
      ticks += ticksOf(p) - (before.get(p) ?? 0);
      rss += procStat(p).rss;
    }
    await pod.stop();
    await sim.stop();
    return { cpu: (ticks / TICKS / seconds) * 100, rss_mb: Math.round(rss / 1024 ** 2), processes: pids().length };
  };
  // nvidia-smi one run per second: what podscope falls back to when nvidia-smi will not loop.
  const runsConf = join(scratchDir('podscope-bench-smi-'), 'fake.json');
  writeFileSync(runsConf, JSON.stringify({ fixture: 'h200-x1.drv590.load', gpus: 8, utilization: 'wave', loop_exit_after: 1 }));
  const runs = await measure({ FAKE_NVIDIA_SMI: runsConf }, 6000);
  const loop = await measure({});
  const nvml = await measure({ PODSCOPE_GPU_BACKEND: 'nvml', PODSCOPE_NVML_LIBRARY: lib, PODSCOPE_GPU_FAST_MS: '100' });
  record(`idle footprint with NVML: podscope and its sampler, 8 GPUs, memory every 100 ms, over ${seconds} s`, nvml.cpu.toFixed(2), '% of one core', '≤ 0.5 %', nvml.cpu <= 0.5, { rss_mb_all_processes: nvml.rss_mb, baseline_nvidia_smi_1hz_cpu_percent: Number(runs.cpu.toFixed(2)), baseline_rss_mb: runs.rss_mb, ratio_to_baseline: Number((nvml.cpu / runs.cpu).toFixed(2)) });
  record(`idle footprint with one nvidia-smi loop (-lms 1000, and one for processes), 8 GPUs, over ${seconds} s`, loop.cpu.toFixed(2), '% of one core', '-', null, { rss_mb_all_processes: loop.rss_mb, baseline_nvidia_smi_1hz_cpu_percent: Number(runs.cpu.toFixed(2)), ratio_to_baseline: Number((loop.cpu / runs.cpu).toFixed(2)) });
  record('resident memory with NVML, every process podscope started counted', nvml.rss_mb, 'MB', '≤ 120 MB', nvml.rss_mb <= 120, { baseline_nvidia_smi_rss_mb: runs.rss_mb, nvidia_smi_loop_rss_mb: loop.rss_mb });
}

async function benchLogIngest(env) {
  // Highest sustained rate with no line lost, by the websocket stream and by the log file.
  const dir = scratchDir('podscope-bench-logs-');
  const file = join(dir, 'comfyui.log');
  writeFileSync(file, '');
  const sim = new SimComfyUI({});
  await sim.start();
  const pod = await startPodscope({ ...env, COMFYUI_URL: sim.url, COMFYUI_LOG_FILE: file, PODSCOPE_LOG_LINES: '1000000', PODSCOPE_LOG_BYTES: String(512 * 1024 * 1024) });
  await sleep(1500);
  const count = async () => {
    const t = await (await fetch(`${pod.url}/metrics`)).text();
    let n = 0;
    for (const m of t.matchAll(/^podscope_log_lines_total\{source="comfyui",level="[a-z]+"\} (\d+)/gm)) n += Number(m[1]);
    return n;
  };
  const seconds = QUICK ? 2 : 5;
  const best = { stream: 0, file: 0 };
  const failed = { stream: false, file: false };
  for (const rate of [10_000, 25_000, 50_000, 75_000, 100_000]) {
    for (const via of ['stream', 'file']) {
      if (failed[via]) continue; // a lower rate already lost lines
      // Lines of the previous phase still arriving (a stream that fell behind) would be counted
      // as this phase's: start once the count has stopped moving.
      let before = await count();
      for (const settle = Date.now() + 30_000; Date.now() < settle; ) {
        await sleep(1000);
        const now = await count();
        if (now === before) break;
        before = now;
      }
      const total = rate * seconds;
      const perTick = rate / 100;
      let sent = 0;
      const started = performance.now();
      await new Promise((resolve) => {
        const t = setInterval(() => {
          const due = Math.min(total, Math.round(((performance.now() - started) / 1000) * rate));
          let chunk = '';
          for (; sent < due; sent++) {
            const line = `${via} line ${rate}-${sent} sampler step ok\n`;
            if (via === 'stream') sim.log(line);
            else chunk += line;
          }
          if (chunk) appendFileSync(file, chunk);
          if (sent >= total) {
            clearInterval(t);
            resolve();
          }
        }, 10);
        void perTick;
      });
      const elapsed = (performance.now() - started) / 1000;
      let got = 0;
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        got = (await count()) - before;
        if (got >= total) break;
        await sleep(200);
      }
      const achieved = total / elapsed;
      // Exactly what was sent: fewer is loss, more is a line counted twice.
      if (got === total && achieved >= rate * 0.9) best[via] = Math.max(best[via], rate);
      else failed[via] = true;
      log(`   log ingest via ${via}: offered ${rate}/s (achieved ${Math.round(achieved)}/s), received ${got}/${total}`);
    }
  }
  record('log ingest, no loss, via the ComfyUI websocket stream', best.stream, 'lines/s', '≥ 50,000 lines/s', best.stream >= 50_000);
  record('log ingest, no loss, via COMFYUI_LOG_FILE', best.file, 'lines/s', '≥ 50,000 lines/s', best.file >= 50_000);
  await pod.stop();
  await sim.stop();
}

/**
 * What job traces cost: /debug/status under wrk while jobs run back to back (each a trace of ten
 * spans), podscope with traces off (no endpoint: OpenTelemetry is not loaded) and on (exporting to
 * a collector stand-in in its own process), alternated over the rounds; medians compared.
 */
async function benchTraces(env) {
  const rounds = QUICK ? 1 : 5;
  const seconds = QUICK ? 3 : 10;
  const dir = scratchDir('podscope-bench-traces-');
  const sink = await startBaseline('otlp-sink', '/dev/null', join(dir, 'sink.log'));
  const runs = { off: [], on: [] };
  for (let round = 0; round < rounds; round++) {
    for (const mode of ['off', 'on']) {
      const sim = new SimComfyUI({ stepMs: 5 });
      await sim.start();
      const traces = mode === 'on' ? { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_BSP_SCHEDULE_DELAY: '500' } : {};
      const pod = await startPodscope({ ...env, COMFYUI_URL: sim.url, ...traces }, { stdoutFile: join(dir, `podscope-${mode}.log`) });
      const jobs = startJobStream(sim);
      await sleep(1500);
      // podscope's CPU per job with nothing else asking it anything, then the request path under wrk.
      const cpu0 = procStat(pod.child.pid).cpuTicks;
      const jobs0 = jobs.done();
      await sleep(seconds * 600);
      const cpuMsPerJob = (((procStat(pod.child.pid).cpuTicks - cpu0) / TICKS) * 1000) / Math.max(1, jobs.done() - jobs0);
      const before = jobs.done();
      const r = await runWrk(`${pod.url}/debug/status`, { seconds, serverPid: pod.child.pid });
      r.cpu_ms_per_job = Math.round(cpuMsPerJob * 100) / 100;
      r.jobs_per_s = Math.round(((jobs.done() - before) / seconds) * 10) / 10;
      r.rss_mb = Math.round(procStat(pod.child.pid).rss / 1024 / 1024);
      await jobs.stop();
      if (mode === 'on') {
        const text = await (await fetch(`${pod.url}/metrics`)).text();
        r.spans_exported = Number(/^podscope_trace_spans_exported_total (\d+)/m.exec(text)?.[1]);
        r.spans_dropped = [...text.matchAll(/^podscope_trace_spans_dropped_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
      }
      runs[mode].push(r);
      await pod.stop();
      await sim.stop();
    }
  }
  if (process.env.BENCH_ONLY) log(`     rounds: ${JSON.stringify(runs)}`);
  const perJobUs = await traceCpuPerJob(sink.url);
  const received = await getJson(`${sink.url}/count`);
  await sink.stop();
  const med = (mode, field) => median(runs[mode].map((r) => r[field]));
  const summary = (mode) => ({ rps: Math.round(med(mode, 'rps')), p99_ms: med(mode, 'p99_ms'), server_cpu_percent: med(mode, 'server_cpu_percent'), jobs_per_s: med(mode, 'jobs_per_s'), cpu_ms_per_job: med(mode, 'cpu_ms_per_job'), rss_mb: med(mode, 'rss_mb') });
  const off = summary('off');
  const on = summary('on');
  const ratio = on.rps / off.rps;
  const share = perJobUs / 1000 / off.cpu_ms_per_job;
  record('CPU to trace one job (ten spans: build, encode, send over HTTP), ÷ podscope’s CPU per job with traces off', share.toFixed(3), '×', '≤ 0.05', share <= 0.05, { trace_us_per_job: Math.round(perJobUs), off_cpu_ms_per_job: runs.off.map((r) => r.cpu_ms_per_job), on_cpu_ms_per_job: runs.on.map((r) => r.cpu_ms_per_job) });
  record('/debug/status throughput while jobs run, traces on ÷ traces off', ratio.toFixed(2), '×', '- (within this machine’s noise)', null, { off, on, rounds, spans_exported: runs.on.map((r) => r.spans_exported), spans_dropped: runs.on.map((r) => r.spans_dropped), collector_requests: received.requests, collector_bytes: received.bytes });
}

/**
 * CPU, in this process, to turn one finished job into a trace of ten spans and send it to the
 * collector stand-in through the real OTLP exporter (protobuf, HTTP), batched as podscope does.
 */
async function traceCpuPerJob(url) {
  const { createOtlpTraceSink } = await import('../dist/sources/otlp.js');
  const { loadConfig } = await import('../dist/config.js');
  const config = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_BSP_MAX_QUEUE_SIZE: '100000', OTEL_BSP_SCHEDULE_DELAY: '50' }).traces;
  const node = (i) => ({ name: 'KSampler', start: 1000 + i, end: 1500 + i, attributes: { 'comfyui.node.id': String(i), 'comfyui.node.class_type': 'KSampler', 'comfyui.node.status': 'completed', 'comfyui.node.cached': false, 'comfyui.node.steps': 20, 'comfyui.node.steps_total': 20, 'podscope.timing': 'comfyui' }, events: [], error: null, children: [] });
  const job = (n) => ({ parent: null, trace_id: null, root: { name: 'comfyui.job', start: 1000, end: 2000, attributes: { 'comfyui.prompt.id': `p${n}`, 'podscope.job.id': `j${n}`, 'comfyui.job.status': 'success', 'podscope.timing': 'comfyui' }, events: [], error: null, children: Array.from({ length: 9 }, (_, i) => node(i)) } });
  const run = async (n) => {
    const sink = createOtlpTraceSink({ config, version: 'bench', resource: () => ({ 'service.instance.id': 'bench' }) });
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) sink.export(job(i));
    await sink.shutdown(60_000);
    const used = process.cpuUsage(t0);
    if (sink.stats().exported !== n * 10) throw new Error(`trace cost: ${sink.stats().exported} of ${n * 10} spans exported`);
    return (used.user + used.system) / n;
  };
  await run(500); // warm
  return run(QUICK ? 2000 : 10_000);
}

/** Quick prompts one after another, two waiting at most; `done()` counts the ones finished. */
function startJobStream(sim) {
  let stopped = false;
  let submitted = 0;
  let pending = 0;
  const loop = (async () => {
    while (!stopped) {
      const q = await getJson(`${sim.url}/prompt`).catch(() => null);
      pending = q?.exec_info?.queue_remaining ?? pending;
      if (pending < 2) {
        const r = await submit(sim.url, txt2img({ steps: 4, seed: Math.floor(Math.random() * 1e9) }), { extra: { job_id: `traced_${submitted}` } }).catch(() => null);
        if (r?.status === 200) submitted++;
      } else {
        await sleep(20);
      }
    }
  })();
  return {
    done: () => submitted - pending,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

async function benchMemory() {
  // Every buffer full at its default capacity, inside a fresh podscope process; the resident set
  // of the same fill varies by ±10 MB from process to process, so the median of 5 is reported.
  const fill = () =>
    new Promise((resolve, reject) => {
      const c = spawn(process.execPath, ['--expose-gc', ...AS_THE_BIN.nodeArgs, join(ROOT, 'bench/fill-memory.js')], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...AS_THE_BIN.env } });
      let s = '';
      c.stdout.on('data', (d) => (s += d));
      c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(s)) : reject(new Error(`fill-memory exited ${code}`))));
    });
  const runs = [];
  const processes = QUICK ? 1 : 5;
  for (let i = 0; i < processes; i++) runs.push(await fill());
  const rss = median(runs.map((r) => r.rss_mb));
  const typical = runs.find((r) => r.rss_mb === rss) ?? runs[0];
  record(`memory: RSS with every buffer full at default capacities, settled (median of ${processes} processes)`, rss, 'MB', '≤ 120 MB', rss <= 120, { ...typical, rss_mb_runs: runs.map((r) => r.rss_mb) });
}

// ---------------------------------------------------------------------------------------------

async function main() {
  // BENCH_ONLY=name runs one section (status, metrics, latency, traces, logs, memory, idle, gpu, nvml) while working on it.
  const only = process.env.BENCH_ONLY;
  const want = (name) => !only || only === name;
  if (spawnSync('wrk', ['--version']).error) {
    log("bench: wrk is missing; install Debian's package (apt-get install -y wrk) and run again");
    process.exit(2);
  }
  const info = await machine();
  log(`podscope bench on ${info.cpu} (${info.cores} cores, ${info.memory_gb} GB), node ${info.node}${QUICK ? ', QUICK' : ''}`);
  fakeGpus(8);
  const env = { PODSCOPE_NVIDIA_SMI: FAKE_SMI, PODSCOPE_GPU_BACKEND: 'nvidia-smi', PODSCOPE_GPU_INTERVAL_MS: '1000', RUNPOD_GPU_COUNT: '8', RUNPOD_POD_ID: 'bench' };

  if (want('gpu')) await benchGpuSampleCpu();

  if (want('status') || want('metrics') || want('latency')) {
  const sim = new SimComfyUI({ stepMs: 10 });
  await sim.start();
  // BENCH_PROFILE=dir: this podscope writes a V8 CPU profile there when it stops (bench/profile.js reads it).
  const nodeArgs = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const pod = await startPodscope({ ...env, COMFYUI_URL: sim.url }, { stdoutFile: join(scratchDir('podscope-bench-out-'), 'podscope.log'), nodeArgs });
  // 200 remembered jobs: quick cached prompts.
  await submit(sim.url, txt2img({ steps: 1, seed: 1 }), { extra: { job_id: 'warm' } });
  for (let i = 0; i < 200; i++) await submit(sim.url, txt2img({ steps: 1, seed: 1 }), { clientId: `w${i}`, extra: { job_id: `filler_${i}` } });
  for (let i = 0; i < 100; i++) {
    const q = await getJson(`${sim.url}/prompt`);
    if (q.exec_info.queue_remaining === 0) break;
    await sleep(100);
  }
  await sleep(2500);
  // The request path first, with ComfyUI quiet: wrk, the servers and podscope share the cores.
  if (want('status')) await benchHttp(pod);
  if (want('metrics')) await benchMetricsBuild(pod);
  const stopLoad = startLoad(sim);
  await sleep(2000);
  if (want('metrics')) await benchMetrics(pod);
  await stopLoad();
  if (want('latency')) await benchEventToAnswer(sim, pod);
  await pod.stop();
  await sim.stop();
  }

  if (want('traces')) await benchTraces(env);
  if (want('logs')) await benchLogIngest(env);
  if (want('memory')) await benchMemory();
  if (want('idle')) await benchIdle(env);
  if (want('nvml')) await benchNvmlFootprint(env);
  if (only) {
    process.exit(0);
  }

  const json = { machine: info, quick: QUICK, results };
  writeFileSync(join(ROOT, 'bench/results.json'), `${JSON.stringify(json, null, 2)}\n`);
  const md = renderResults(json);
  writeFileSync(join(ROOT, 'bench/results.md'), md);
  process.stdout.write(md);
  process.exit(0);
}

main().catch((err) => {
  log(`bench failed: ${err.stack ?? err}`);
  process.exit(1);
});
