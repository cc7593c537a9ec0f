/**
 * `podscope demo`: the simulated ComfyUI, simulated GPUs (the fake nvidia-smi answering from a
 * real H200 capture) and a workload generator submitting varied prompts from several clients,
 * then the real sidecar against them. Every /debug endpoint shows live data within seconds.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { SimComfyUI, submit, txt2img, type Graph } from './sim/comfyui.js';
import { startPodscope, type Podscope } from './main.js';
import { ConfigError } from './config.js';
import { say, watchStdout } from './logger.js';
import type { JobStatus } from './shared/job-types.js';
import { iso } from './format.js';

export interface DemoOptions {
  env: Record<string, string | undefined>;
  gpus?: number;
  /** Milliseconds per sampler step (the demo runs at human speed by default). */
  stepMs?: number;
  /** Print the banner and the periodic summary (off in tests). */
  quiet?: boolean;
  /** Milliseconds between the one-line summaries on the terminal (30 s by default). */
  summaryMs?: number;
}

export interface Demo {
  pod: Podscope;
  /** One simulated ComfyUI per GPU, the first on GPU 0. */
  sims: SimComfyUI[];
  url: string;
  close(): Promise<void>;
}

const FAKE_SMI = fileURLToPath(new URL('../bin/fake-nvidia-smi', import.meta.url));

/**
 * What the workload's nth prompt does, by n % 10 (any other n: a good prompt); its job id is
 * {@link demoJobId}(n). Tests name the jobs they look at through these.
 */
export const DEMO_JOB_KINDS = { interrupted: 1, oom: 3, cached: 5, rejected: 7, preview: 8, video: 9 } as const;

export function demoJobId(n: number): string {
  return `job_${String(n).padStart(4, '0')}`;
}

/**
 * The workload: mostly good prompts, some cached, now and then an OOM, an interrupt, a rejected
 * prompt; numbered across the pod, each sent to a ComfyUI whose queue is short.
 */
class Workload {
  private n = 0;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private browsers: WebSocket[] = [];

  constructor(private readonly sims: SimComfyUI[]) {}

  start(): void {
    // The browser UI keeps one socket under its own id, as the real frontend does.
    for (const sim of this.sims) {
      const browser = new WebSocket(`${sim.url.replace('http', 'ws')}/ws?clientId=browser-${randomUUID().slice(0, 8)}`);
      browser.on('error', () => undefined);
      this.browsers.push(browser);
    }
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const b of this.browsers) b.terminate();
    await this.loop;
  }

  private async pending(sim: SimComfyUI): Promise<number> {
    const r = await fetch(`${sim.url}/prompt`).catch(() => null);
    if (!r?.ok) return 99;
    const b = (await r.json()) as { exec_info?: { queue_remaining?: number } };
    return b.exec_info?.queue_remaining ?? 99;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      for (const sim of this.sims) if (!this.stopped && (await this.pending(sim)) < 2) await this.submitOne(sim).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 700));
    }
  }

  private async submitOne(sim: SimComfyUI): Promise<void> {
    const n = ++this.n;
    const jobId = demoJobId(n);
    const kind = n % 10;
    const K = DEMO_JOB_KINDS;
    let graph: Graph;
    if (kind === K.oom) graph = txt2img({ batch: 64, steps: 20, seed: n }); // runs out of GPU memory
    else if (kind === K.cached) graph = txt2img({ seed: 7, steps: 12 }); // the same prompt again: cached nodes
    else if (kind === K.rejected) graph = txt2img({ ckpt: 'sdxl_turbo_missing.safetensors' }); // fails validation
    else if (kind === K.preview) graph = txt2img({ seed: n, steps: 16, output: 'PreviewImage' });
    else if (kind === K.video) graph = { ...txt2img({ seed: n, steps: 10 }), '9': { class_type: 'VHS_VideoCombine', inputs: { images: ['8', 0], filename_prefix: 'AnimateDiff' } } };
    else graph = txt2img({ seed: n, steps: 12 + (n % 3) * 8, prefix: n % 4 === 0 ? 'runs/demo' : 'ComfyUI' });
    // Most prompts come like RunPod's worker does: a fresh client id each, and a job id.
    const worker = n % 6 !== 0;
    const clientId = worker ? `worker-${randomUUID()}` : undefined;
    let ws: WebSocket | null = null;
    if (clientId) {
      ws = new WebSocket(`${sim.url.replace('http', 'ws')}/ws?clientId=${clientId}`);
      ws.on('error', () => undefined);
      await new Promise((r) => ws!.once('open', r).once('error', r));
    }
    const res = await submit(sim.url, graph, { clientId, extra: { job_id: jobId, trace_id: randomUUID().replace(/-/g, '') } });
    if (kind === K.interrupted && res.body.prompt_id) {
      // Someone presses "cancel" a few seconds in.
      const id = res.body.prompt_id;
      setTimeout(() => void fetch(`${sim.url}/interrupt`, { method: 'POST', body: JSON.stringify({ prompt_id: id }) }).catch(() => undefined), 2500).unref();
    }
    if (ws) {
      const socket = ws;
      socket.on('message', (d, binary) => {
        if (binary) return;
        const m = JSON.parse(d.toString()) as { type: string; data: { node?: unknown } };
        if (m.type === 'executing' && m.data.node === null) socket.close();
      });
      setTimeout(() => socket.terminate(), 120_000).unref();
    }
  }
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  const dir = mkdtempSync(join(tmpdir(), 'podscope-demo-'));
  // One ComfyUI per GPU, as multi-GPU pods serve: each on its own port, pinned with --cuda-device,
  // with its own output and temp directories and log file.
  const gpus = opts.gpus ?? 2;
  const instances = Array.from({ length: gpus }, (_, i) => {
    const home = join(dir, `gpu${i}`);
    const logFile = join(home, 'comfyui.log');
    mkdirSync(home, { recursive: true });
    writeFileSync(logFile, '');
    const sim = new SimComfyUI({
      stepMs: opts.stepMs ?? 150,
      nodeMs: 60,
      cudaDevice: i,
      outputDir: join(home, 'output'),
      tempDir: join(home, 'temp'),
      onLog: (line) => appendFileSync(logFile, line),
    });
    return { name: `gpu${i}`, sim, logFile, outputDir: join(home, 'output') };
  });
  const sims = instances.map((i) => i.sim);

  // Simulated GPUs: the fake nvidia-smi reads this file on every run; each GPU follows its ComfyUI.
  const smiConfig = join(dir, 'fake-nvidia-smi.json');
  // Written whole then renamed: the fake reads it on every run and must never see half a file.
  const writeGpus = (busy: boolean[]) => {
    writeFileSync(
      `${smiConfig}.new`,
      JSON.stringify({
        fixture: 'h200-x1.drv590.load',
        gpus,
        utilization: busy.map((b) => (b ? 90 + Math.round(Math.random() * 9) : 0)),
        memory_used_mb: busy.map((b) => (b ? 30_000 + Math.round(Math.random() * 6000) : 612)),
        power_w: busy.map((b) => (b ? 600 + Math.random() * 40 : 74 + Math.random() * 3)),
      }),
    );
    renameSync(`${smiConfig}.new`, smiConfig);
  };
  writeGpus(sims.map(() => false));
  process.env.FAKE_NVIDIA_SMI = smiConfig;
  const list = (pick: (i: (typeof instances)[number]) => string) => instances.map((i) => `${i.name}=${pick(i)}`).join(',');

  // A calm terminal: podscope's JSON log goes to its buffer (/debug/logs) unless LOG_LEVEL asks
  // for it on stdout; the simulated world's OOMs and rejections are the demo working, not failures.
  const logToStdout = opts.env.LOG_LEVEL !== undefined;
  let pod: Podscope;
  try {
    await Promise.all(sims.map((s) => s.start()));
    pod = await startPodscope({
      ...(logToStdout ? {} : { sinks: [] }),
      env: {
        PODSCOPE_GPU_INTERVAL_MS: '500',
        PODSCOPE_NVIDIA_SMI: FAKE_SMI,
        // The simulated GPUs, never a real NVML the machine may have.
        PODSCOPE_GPU_BACKEND: 'nvidia-smi',
        COMFYUI_URLS: list((i) => i.sim.url),
        COMFYUI_OUTPUT_DIRS: list((i) => i.outputDir),
        COMFYUI_LOG_FILES: list((i) => i.logFile),
        RUNPOD_GPU_COUNT: String(gpus),
        RUNPOD_POD_ID: opts.env.RUNPOD_POD_ID ?? 'demo-pod',
        PODSCOPE_ENV: 'development',
        LOG_LEVEL: opts.env.LOG_LEVEL ?? 'info',
        // podscope's own variables, and the OTEL_* ones (the demo's jobs then go to a trace collector too).
        ...Object.fromEntries(Object.entries(opts.env).filter(([k]) => (k.startsWith('PODSCOPE_') && k !== 'PODSCOPE_NVIDIA_SMI') || k.startsWith('OTEL_'))),
      },
    });
  } catch (err) {
    // Nothing is left behind by a demo that cannot start (a busy port, a bad variable).
    await Promise.all(sims.map((s) => s.stop().catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const gpuTimer = setInterval(() => writeGpus(pod.state.instances.all.map((c) => c.tracker.running() !== undefined)), 500);
  gpuTimer.unref();

  const workload = new Workload(sims);
  workload.start();
  const host = pod.config.host === '0.0.0.0' ? '127.0.0.1' : pod.config.host;
  const url = `http://${host}:${pod.port}`;
  let summaryTimer: NodeJS.Timeout | null = null;
  if (!opts.quiet) {
    const auth = pod.config.token ? ' -H "Authorization: Bearer $PODSCOPE_TOKEN"' : '';
    say(
      [
        '',
        `podscope demo: ${gpus} simulated H200 GPU${gpus === 1 ? '' : 's'}, each with its own simulated ComfyUI (${instances.map((i) => `${i.name} ${i.sim.url}`).join(', ')}),`,
        `a workload, and podscope watching them at ${url}`,
        '',
        `Open ${url}/ in a browser for the page${pod.config.token ? ' (it asks for the token once)' : ''}, or try:`,
        // With a token set, the lines carry it (from the environment, never printed).
        ...['/debug/status', '/debug/workflow?format=text', '/debug/logs?lines=20&format=text'].map((path) => `  curl${auth} '${url}${path}'`),
        `  npx podscope status --url ${url}`,
        '',
        logToStdout ? "podscope's log follows as JSON lines." : `podscope's own log: curl${auth} '${url}/debug/logs?source=podscope&format=text' (LOG_LEVEL=info prints it here instead).`,
        `A summary every ${Math.round((opts.summaryMs ?? 30_000) / 1000)} s; Ctrl-C stops everything.`,
        '',
      ].join('\n'),
    );
    summaryTimer = setInterval(() => say(`${demoSummary(pod)}\n`), opts.summaryMs ?? 30_000);
    summaryTimer.unref();
  }

  let closing: Promise<void> | null = null;
  return {
    pod,
    sims,
    url,
    close: () =>
      (closing ??= (async () => {
        clearInterval(gpuTimer);
        if (summaryTimer) clearInterval(summaryTimer);
        await workload.stop();
        await pod.close();
        await Promise.all(sims.map((s) => s.stop()));
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}

/** One line for the terminal: the pod's condition, its GPUs, the jobs so far and podscope's problems. */
export function demoSummary(pod: Podscope): string {
  const { state } = pod;
  const at = iso(state.now()).slice(11, 19);
  const condition = state.condition().status;
  const trackers = state.instances.all.map((c) => c.tracker);
  const since = (s: JobStatus) => trackers.reduce((n, t) => n + (t.outcomes.get(s) ?? 0), 0);
  const now = (s: JobStatus) => trackers.reduce((n, t) => n + t.unfinished().filter((j) => j.status === s).length, 0);
  const gpus = state.gpu?.readings().filter((g) => !g.lost) ?? [];
  const busy = gpus.map((g) => g.utilization_percent).filter((u): u is number => u !== null);
  const util = busy.length > 0 ? `${Math.round(busy.reduce((a, b) => a + b, 0) / busy.length)}% busy` : 'utilization unknown';
  const problems = state.health.problems();
  return [
    `${at} ${state.config.podId} ${condition === 'ok' ? (now('running') > 0 ? 'processing' : 'idle') : condition}`,
    `${gpus.length} GPU${gpus.length === 1 ? '' : 's'} ${util}`,
    `jobs since start: ${since('success')} done, ${since('error')} failed, ${since('interrupted')} interrupted, ${since('lost')} lost; now ${now('running')} running, ${now('queued')} queued`,
    `problems: ${problems.length === 0 ? 'none' : problems.map((p) => `${p.component}${p.instance === undefined ? '' : `[${p.instance}]`} ${p.code}`).join(', ')}`,
  ].join(' · ');
}

export async function runDemo(env: Record<string, string | undefined>, opts: { gpus?: number; stepMs?: number; summaryMs?: number } = {}): Promise<number> {
  watchStdout();
  let demo: Demo;
  try {
    demo = await startDemo({ env, ...opts });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`podscope: invalid configuration: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`podscope demo: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) return;
      stopping = true;
      clearInterval(orphan);
      say(`\nstopping the demo (${why})…\n`);
      const hard = setTimeout(() => resolve(0), 4500);
      hard.unref();
      void demo.close().then(() => {
        clearTimeout(hard);
        resolve(0);
      });
    };
    // Started through npx or a supervisor that is then stopped (a signal to the parent alone), the
    // demo would go on serving with nobody to stop it: it ends with the process that started it.
    const starters = startingProcesses();
    const orphan = setInterval(() => {
      if (process.ppid !== starters[0] || !starters.every(alive)) stop('the process that started it has gone');
    }, PARENT_CHECK_MS);
    orphan.unref();
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

/** How often the demo looks whether the process that started it is still there. */
const PARENT_CHECK_MS = 500;

/**
 * The processes whose end ends the demo: its parent, and when the parent is the `sh -c` through
 * which npm runs a package's bin (npx, npm exec, npm run), the process that started that shell: a
 * SIGKILL to npx leaves the shell behind, waiting on the demo.
 */
function startingProcesses(): number[] {
  const parent = process.ppid;
  const starters = [parent];
  try {
    const cmdline = readFileSync(`/proc/${parent}/cmdline`, 'utf8').split('\0');
    if (/(^|\/)(sh|bash|dash)$/.test(cmdline[0] ?? '') && cmdline[1] === '-c') {
      const stat = readFileSync(`/proc/${parent}/stat`, 'utf8');
      const grandparent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (Number.isInteger(grandparent) && grandparent > 1) starters.push(grandparent);
    }
  } catch {
    /* no /proc (macOS): the parent alone */
  }
  return starters;
}

/** Whether a process is still there (a parent that went away leaves its children to init or a subreaper). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
