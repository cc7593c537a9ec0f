/**
 * The real ComfyUI for the conformance suite: prepared once by global-setup.ts (from
 * ../shared/comfyui, or the checkout COMFYUI_DIR names), started here as a child process on a free
 * loopback port with the test nodes (and, when asked, the tap) as extra custom nodes, its output in
 * a temp directory and its log in a file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/ports.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TEST_NODES = join(ROOT, 'test/comfyui/nodes/podscope_test_nodes');
export const TAP = join(ROOT, 'comfyui/podscope_tap');

/** How to run ComfyUI, as global-setup.ts prepared it (in the environment of every test worker). */
export function comfyLaunch(): { cwd: string; command: string; args: string[]; env: Record<string, string> } {
  const dir = process.env.PODSCOPE_CONFORMANCE_COMFYUI;
  if (!dir) throw new Error('PODSCOPE_CONFORMANCE_COMFYUI is not set: run the suite with `npm run test:comfyui`');
  const stubs = process.env.PODSCOPE_CONFORMANCE_STUBS;
  const python = process.env.COMFYUI_PYTHON ?? (stubs ? '/usr/bin/python3' : 'python3');
  return {
    cwd: dir,
    command: python,
    args: ['main.py', '--cpu'],
    env: { PYTHONUNBUFFERED: '1', ...(stubs ? { PYTHONPATH: stubs } : {}) },
  };
}

export interface RealComfyOptions {
  tap: boolean;
  /** `--temp-directory D` (temp files then go to D/temp); without it they go to <ComfyUI>/temp. */
  tempDirectory?: boolean;
}

export class RealComfy {
  readonly dir = mkdtempSync(join(tmpdir(), 'podscope-comfy-'));
  readonly outputDir = join(this.dir, 'output');
  readonly logFile = join(this.dir, 'comfyui.log');
  readonly customNodes = join(this.dir, 'custom_nodes');
  port = 0;
  child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();

  constructor(readonly opts: RealComfyOptions) {
    mkdirSync(this.outputDir, { recursive: true });
    mkdirSync(this.customNodes, { recursive: true });
    cpSync(TEST_NODES, join(this.customNodes, 'podscope_test_nodes'), { recursive: true });
    if (opts.tap) cpSync(TAP, join(this.customNodes, 'podscope_tap'), { recursive: true });
    writeFileSync(join(this.dir, 'extra_paths.yaml'), `podscope_tests:\n  custom_nodes: |\n    ${this.customNodes}\n`);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The temp directory ComfyUI writes PreviewImage files to, when --temp-directory is used. */
  get tempDir(): string | null {
    return this.opts.tempDirectory ? join(this.dir, 'temp') : null;
  }

  /** Starts ComfyUI (on the same port after a restart) and waits until /system_stats answers. */
  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const launch = comfyLaunch();
    const args = [...launch.args, '--listen', '127.0.0.1', '--port', String(this.port), '--output-directory', this.outputDir, '--extra-model-paths-config', join(this.dir, 'extra_paths.yaml')];
    if (this.opts.tempDirectory) args.push('--temp-directory', this.dir);
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(launch.command, args, { cwd: launch.cwd, env: { ...process.env, ...launch.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`ComfyUI exited with ${child.exitCode} while starting; see ${this.logFile}`);
      try {
        const res = await fetch(`${this.url}/system_stats`, { signal: AbortSignal.timeout(2000) });
        if (res.ok) return;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error(`ComfyUI did not answer within 120 s; see ${this.logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Kills ComfyUI the way the kernel's OOM killer does (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
    this.child = null;
  }

  async stop(): Promise<void> {
    if (this.child) {
      this.child.kill('SIGTERM');
      const hard = setTimeout(() => this.child?.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(hard);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
