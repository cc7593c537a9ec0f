/**
 * What the benchmark and the soak share: podscope as a separate process, the realistic load on
 * the simulated ComfyUI, and per-process CPU and memory readings from /proc.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { submit, txt2img } from '../dist/sim/comfyui.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(ROOT, 'bin/podscope.js');
export const FAKE_SMI = join(ROOT, 'bin/fake-nvidia-smi');
export const TICKS = 100; // USER_HZ on Linux
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** What bin/podscope.js's shebang gives Node, for a podscope started without the bin (test/integration/lifecycle.test.ts holds the two equal). */
export const AS_THE_BIN = { nodeArgs: ['--max-semi-space-size=4'], env: { MALLOC_ARENA_MAX: '2' } };

export function pct(values, p) {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}

export function procStat(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  return { cpuTicks: Number(f[11]) + Number(f[12]), rss };
}

/** A free loopback port. */
export function freePort() {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `bin/podscope.js serve` (its shebang's V8 flags apply, as for `npx podscope`) and waits
 * for /health. Its stdout goes to `stdoutFile` when given (as a container runtime keeps it).
 * `full: true` starts it with every buffer already full (bench/full-pod.js).
 */
export async function startPodscope(env, { stdoutFile, nodeArgs = [], full = false } = {}) {
  const port = await freePort();
  const fd = stdoutFile ? openSync(stdoutFile, 'a') : 'ignore';
  const own = nodeArgs.length > 0 || full;
  const entry = full ? [join(ROOT, 'bench/full-pod.js')] : [BIN, 'serve'];
  const child = spawn(own ? process.execPath : BIN, own ? [...AS_THE_BIN.nodeArgs, ...nodeArgs, ...entry] : ['serve'], {
    env: { PATH: process.env.PATH, PODSCOPE_PORT: String(port), PODSCOPE_HOST: '127.0.0.1', LOG_LEVEL: 'info', FAKE_NVIDIA_SMI: process.env.FAKE_NVIDIA_SMI, ...AS_THE_BIN.env, ...env },
    stdio: ['ignore', fd, 'ignore'],
  });
  if (typeof fd === 'number') closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('podscope did not start');
    await sleep(100);
  }
  return { child, port, url, stop: () => new Promise((r) => (child.exitCode !== null ? r() : (child.once('exit', r), child.kill('SIGTERM')))) };
}

export async function getJson(url) {
  return (await fetch(url)).json();
}

/** The realistic load on the simulated ComfyUI: 100 progress frames/s (broadcast) and 5,000 log lines/s. */
export function startLoad(sim) {
  let stopped = false;
  let n = 0;
  const lines = setInterval(() => {
    for (let i = 0; i < 50; i++) sim.log(`  loading weights block ${n++} of model diffusion_pytorch_model.safetensors\n`);
  }, 10);
  // A prompt without client_id: its progress frames are broadcast. 10 ms steps = 100 frames/s.
  const loop = (async () => {
    while (!stopped) {
      await submit(sim.url, txt2img({ steps: 400, seed: Math.floor(Math.random() * 1e9) }), { extra: { job_id: `load_${n}` } }).catch(() => undefined);
      while (!stopped) {
        const q = await getJson(`${sim.url}/prompt`).catch(() => null);
        if (!q || q.exec_info.queue_remaining === 0) break;
        await sleep(200);
      }
    }
  })();
  return async () => {
    stopped = true;
    clearInterval(lines);
    await loop;
  };
}


const scratch = new Set();

/**
 * A directory under the system's temp directory, removed when the bench exits (also on Ctrl-C or
 * SIGTERM): podscope's stdout alone, kept there as a container runtime keeps it, takes gigabytes
 * in one run, and a disk left nearly full makes every podscope after it report DISK_NEARLY_FULL.
 */
export function scratchDir(prefix) {
  if (scratch.size === 0) {
    process.once('exit', () => {
      for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
    });
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) process.once(signal, () => process.exit(code));
  }
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.add(dir);
  return dir;
}

/** Points FAKE_NVIDIA_SMI at `gpus` simulated H200s answering from the real capture, under load. */
export function fakeGpus(gpus = 8) {
  const dir = scratchDir('podscope-bench-smi-');
  const file = join(dir, 'fake.json');
  writeFileSync(file, JSON.stringify({ fixture: 'h200-x1.drv590.load', gpus, utilization: 'wave' }));
  process.env.FAKE_NVIDIA_SMI = file;
  return file;
}

/** What the soak's poller asks, in turn, 50 ms after each round. */
export const POLLED = ['/health', '/ready', '/debug/status', '/debug/workflow', '/debug/queue', '/debug/memory', '/debug/logs?lines=200', '/debug/artifacts', '/metrics', '/debug/status?format=text'];

/** Polls every POLLED endpoint of `url` until the returned stop() is awaited; `seen(endpoint, response or null)`. */
export function pollEndpoints(url, seen = () => {}) {
  let polling = true;
  const loop = (async () => {
    while (polling) {
      for (const e of POLLED) {
        const r = await fetch(`${url}${e}`).catch(() => null);
        seen(e, r);
        await r?.arrayBuffer();
      }
      await sleep(50);
    }
  })();
  return async () => {
    polling = false;
    await loop;
  };
}

/**
 * One Prometheus-like scraper: GET /metrics every `everyMs` until the returned stop() is awaited.
 * `times` holds each answered scrape's latency in ms; `failed` counts those with no 2xx answer.
 */
export function startScraper(url, everyMs = 100) {
  const times = [];
  let failed = 0;
  let scraping = true;
  const loop = (async () => {
    while (scraping) {
      const t = performance.now();
      const r = await fetch(`${url}/metrics`).catch(() => null);
      await r?.arrayBuffer();
      if (r?.ok) times.push(performance.now() - t);
      else failed++;
      await sleep(everyMs);
    }
  })();
  return {
    times,
    failed: () => failed,
    stop: async () => {
      scraping = false;
      await loop;
    },
  };
}
