/**
 * deploy/runpod/wrap.sh, the image's entrypoint, run for real against fake base images laid out like
 * the real ones (test/fixtures/bases): the base's start-up runs untouched, ComfyUI (simulated) comes
 * up, the tap lands in its custom_nodes, podscope is supervised beside it and never takes it down,
 * and SIGTERM ends everything with the workload's status.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/spawn.js';
import { until } from '../helpers/wait.js';
import { freePort } from '../helpers/ports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WRAP = join(ROOT, 'deploy/runpod/wrap.sh');
const TAP = join(ROOT, 'comfyui/podscope_tap');
const SIM = join(ROOT, 'dist/sim/run-comfyui.js');
const BASES = join(ROOT, 'test/fixtures/bases');

type Base = 'runpod-comfyui' | 'worker-comfyui' | 'supervisord' | 'runpod-base';

interface Wrapped {
  root: string;
  child: ChildProcess;
  comfy: string;
  pod: string;
  mark: string;
  exited: Promise<number | null>;
  stderr(): string;
  /** Processes of the container (the wrapper's process group): `pid args`. */
  processes(): Array<{ pid: number; args: string }>;
  podscopePid(): number | undefined;
}

const running: Wrapped[] = [];

afterEach(() => {
  for (const w of running.splice(0)) {
    try {
      process.kill(-w.child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
    rmSync(w.root, { recursive: true, force: true });
  }
});

/** A fake base image's file tree: ComfyUI as it is baked into the image, with custom_nodes. */
function layout(root: string): void {
  for (const dir of ['ComfyUI', 'comfyui']) {
    mkdirSync(join(root, dir, 'custom_nodes'), { recursive: true });
    mkdirSync(join(root, dir, 'output'), { recursive: true });
    writeFileSync(join(root, dir, 'main.py'), '# ComfyUI stands in: the simulator serves its API\n');
  }
  mkdirSync(join(root, 'tmp'));
}

async function wrap(base: Base, env: Record<string, string> = {}, prepare: (root: string) => void = () => undefined): Promise<Wrapped> {
  const root = mkdtempSync(join(tmpdir(), 'podscope-base-'));
  layout(root);
  prepare(root);
  const [comfyPort, podPort] = [await freePort(), await freePort()];
  const mark = `m${Math.random().toString(36).slice(2)}`;
  const child = spawn('bash', [WRAP], {
    detached: true, // its own process group, as PID 1 has in a container
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      FAKE_ROOT: root,
      FAKE_MARK: mark,
      FAKE_COMFY_CMD: `${process.execPath} ${SIM} 50`,
      SIM_PORT: String(comfyPort),
      SIM_LOG_STDOUT: '1',
      PODSCOPE_WRAPPED_CMD: join(BASES, `${base}.sh`),
      PODSCOPE_BIN: BIN,
      PODSCOPE_NODE: process.execPath,
      PODSCOPE_TAP_SRC: TAP,
      PODSCOPE_TAP_POLL_S: '0.2',
      PODSCOPE_COMFYUI_DIRS: `${root}/workspace/runpod-slim/ComfyUI ${root}/comfyui ${root}/ComfyUI`,
      PODSCOPE_COMFYUI_LOGS: `${root}/workspace/runpod-slim/comfyui.log ${root}/comfyui.log`,
      PODSCOPE_PORT: String(podPort),
      PODSCOPE_HOST: '127.0.0.1',
      PODSCOPE_GPU: 'off',
      COMFYUI_URL: `http://127.0.0.1:${comfyPort}`,
      LOG_LEVEL: 'warn',
      // `{comfy}` in a value: the simulated ComfyUI's URL, known only once its port is picked.
      ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replaceAll('{comfy}', `http://127.0.0.1:${comfyPort}`)])),
    },
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  const processes = () =>
    spawnSync('ps', ['-eo', 'pid=,pgid=,args='], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && Number(m[2]) === child.pid)
      .map((m) => ({ pid: Number(m[1]), args: m[3]! }));
  const w: Wrapped = {
    root,
    child,
    comfy: `http://127.0.0.1:${comfyPort}`,
    pod: `http://127.0.0.1:${podPort}`,
    mark,
    exited,
    stderr: () => err,
    processes,
    podscopePid: () => processes().find((p) => p.args.includes(`${BIN} serve`))?.pid,
  };
  running.push(w);
  return w;
}

const answers = async (url: string) => {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
};

describe('wrapping runpod/comfyui (start.sh copies ComfyUI into /workspace on first boot)', () => {
  it("runs the base's start-up untouched: its services, ComfyUI, and podscope beside them", async () => {
    const w = await wrap('runpod-comfyui');
    await until(() => answers(`${w.comfy}/system_stats`), 20_000);
    for (const svc of ['sshd', 'jupyter-lab', 'filebrowser']) expect(w.processes().some((p) => p.args.includes(`fake-${svc}-${w.mark}`)), svc).toBe(true);
    const status = await until(async () => {
      const r = await fetch(`${w.pod}/debug/status`).catch(() => null);
      const body = r?.ok ? ((await r.json()) as { comfyui?: { connected: boolean; url: string } }) : null;
      return body?.comfyui?.connected ? body : null;
    }, 20_000);
    expect(status.comfyui!.url).toBe(w.comfy);
  }, 40_000);

  it('installs the tap into the ComfyUI that appears in /workspace after start, and finds its log file', async () => {
    const w = await wrap('runpod-comfyui', { FAKE_FIRST_BOOT_S: '2' });
    const installed = join(w.root, 'workspace/runpod-slim/ComfyUI/custom_nodes/podscope_tap/__init__.py');
    await until(() => existsSync(installed), 20_000);
    expect(readFileSync(installed, 'utf8')).toBe(readFileSync(join(TAP, '__init__.py'), 'utf8'));
    // podscope follows the base's own log file (the simulator's first line is in it).
    await until(async () => {
      const r = await fetch(`${w.pod}/debug/logs?q=SIM_URL&source=comfyui`).catch(() => null);
      return r?.ok && ((await r.json()) as { lines: unknown[] }).lines.length > 0;
    }, 30_000);
  }, 45_000);

  it('restarts podscope when it dies, and ComfyUI does not notice', async () => {
    const w = await wrap('runpod-comfyui');
    await until(async () => (await answers(`${w.pod}/health`)) && (await answers(`${w.comfy}/system_stats`)), 20_000);
    const first = w.podscopePid()!;
    process.kill(first, 'SIGKILL');
    const comfyDuring = await answers(`${w.comfy}/system_stats`);
    await until(async () => (await answers(`${w.pod}/health`)) && w.podscopePid() !== undefined && w.podscopePid() !== first, 20_000);
    expect(comfyDuring).toBe(true);
    expect(w.stderr()).toMatch(/podscope exited with status 137; starting it again in 1 s \(ComfyUI is not affected\)/);
    expect(readFileSync(join(w.root, 'workspace/runpod-slim/comfyui.log'), 'utf8')).toContain('[podscope-wrap] podscope exited with status 137');
  }, 45_000);

  it('passes COMFYUI_URLS through to podscope, and guesses no single log file or output directory beside it', async () => {
    const w = await wrap('runpod-comfyui', { COMFYUI_URL: '', COMFYUI_URLS: 'gpu0={comfy},gpu1=http://127.0.0.1:9' });
    const status = await until(async () => {
      const r = await fetch(`${w.pod}/debug/status`).catch(() => null);
      const body = r?.ok ? ((await r.json()) as { instances: Array<{ name: string; connected: boolean }> }) : null;
      return body?.instances.find((i) => i.name === 'gpu0')?.connected ? body : null;
    }, 20_000);
    expect(status.instances.map((i) => i.name)).toEqual(['gpu0', 'gpu1']);
    const environ = readFileSync(`/proc/${w.podscopePid()}/environ`, 'utf8').split('\0');
    expect(environ.filter((e) => /^COMFYUI_(LOG_FILE|OUTPUT_DIR)=/.test(e))).toEqual([]);
  }, 45_000);

  it('runs podscope with two malloc arenas, unless the pod sets its own number', async () => {
    const environ = async (w: Wrapped) => {
      const pid = await until(async () => ((await answers(`${w.pod}/health`)) ? w.podscopePid() : undefined), 20_000);
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    };
    expect(await environ(await wrap('runpod-comfyui'))).toContain('MALLOC_ARENA_MAX=2');
    expect(await environ(await wrap('runpod-comfyui', { MALLOC_ARENA_MAX: '4' }))).toContain('MALLOC_ARENA_MAX=4');
  }, 45_000);

  it('keeps ComfyUI and the base services running when podscope cannot start, retrying with a growing delay', async () => {
    const w = await wrap('runpod-comfyui', { PODSCOPE_TOKEN: 'short' });
    await until(() => (w.stderr().match(/podscope exited with status 2;/g) ?? []).length >= 3, 30_000);
    expect(w.stderr()).toMatch(/PODSCOPE_TOKEN: must be 8 to 4096/);
    expect(w.stderr()).toMatch(/starting it again in 1 s[\s\S]*starting it again in 2 s[\s\S]*starting it again in 4 s/);
    expect(await answers(`${w.comfy}/system_stats`)).toBe(true);
    expect(w.processes().some((p) => p.args.includes(`fake-sshd-${w.mark}`))).toBe(true);
    expect(w.child.exitCode).toBeNull();
  }, 45_000);

  it("passes SIGTERM to the start-up, stops every process, and exits with the start-up's status", async () => {
    const w = await wrap('runpod-comfyui');
    await until(async () => (await answers(`${w.pod}/health`)) && (await answers(`${w.comfy}/system_stats`)), 20_000);
    process.kill(w.child.pid!, 'SIGTERM');
    // start.sh is killed by SIGTERM in its `tail -f`, as it would be as PID 1 without podscope.
    expect(await w.exited).toBe(143);
    await until(() => w.processes().length === 0, 10_000);
    expect(await answers(`${w.comfy}/system_stats`)).toBe(false);
  }, 40_000);
});

describe('wrapping runpod/worker-comfyui (serverless: the handler in the foreground)', () => {
  it("exits with the handler's status when it ends, and stops podscope", async () => {
    const w = await wrap('worker-comfyui', { FAKE_HANDLER_S: '6', FAKE_HANDLER_EXIT: '3' });
    await until(() => answers(`${w.pod}/health`), 20_000);
    expect(existsSync(join(w.root, 'comfyui/custom_nodes/podscope_tap/__init__.py'))).toBe(true);
    expect(await w.exited).toBe(3);
    await until(() => w.processes().length === 0, 10_000);
  }, 40_000);
});

describe('wrapping runpod/base with a ComfyUI started from /post_start.sh', () => {
  it('runs its services and post-start hook unchanged, with podscope and the tap beside them; SIGTERM ends it', async () => {
    const w = await wrap('runpod-base', {}, (root) =>
      writeFileSync(join(root, 'post_start.sh'), 'cd "$FAKE_ROOT/ComfyUI" && nohup $FAKE_COMFY_CMD >>"$FAKE_ROOT/comfyui.log" 2>&1 &\n'),
    );
    await until(async () => (await answers(`${w.comfy}/system_stats`)) && (await answers(`${w.pod}/health`)), 20_000);
    for (const svc of ['nginx', 'sshd', 'jupyter-lab', 'sleep-infinity']) expect(w.processes().some((p) => p.args.includes(`fake-${svc}-${w.mark}`)), svc).toBe(true);
    await until(() => existsSync(join(w.root, 'ComfyUI/custom_nodes/podscope_tap/__init__.py')), 10_000);
    process.kill(w.child.pid!, 'SIGTERM');
    expect(await w.exited).toBe(143); // `sleep infinity`, killed by SIGTERM, as without podscope
    await until(() => w.processes().length === 0, 10_000);
  }, 40_000);
});

describe('wrapping a supervisord-based image (a supervisor in the foreground)', () => {
  it("runs it unchanged, and exits with its status on SIGTERM", async () => {
    const w = await wrap('supervisord');
    await until(async () => (await answers(`${w.comfy}/system_stats`)) && (await answers(`${w.pod}/health`)), 20_000);
    expect(existsSync(join(w.root, 'ComfyUI/custom_nodes/podscope_tap/__init__.py'))).toBe(true);
    expect(w.processes().some((p) => p.args.includes(`fake-nginx-${w.mark}`))).toBe(true);
    process.kill(w.child.pid!, 'SIGTERM');
    expect(await w.exited).toBe(0);
    await until(() => w.processes().length === 0, 10_000);
  }, 40_000);
});

describe('the wrapper without a start-up to wrap', () => {
  it('says so and exits 64', () => {
    const r = spawnSync('bash', [WRAP], { env: { PATH: process.env.PATH ?? '' }, encoding: 'utf8' });
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/no start-up to wrap/);
  });
});
