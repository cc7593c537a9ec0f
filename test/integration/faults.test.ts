import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { submit, txt2img } from '../../src/sim/comfyui.js';
import { startPodscope, type Podscope } from '../../src/main.js';
import { GpuCollector } from '../../src/collectors/gpu.js';
import { HostCollector } from '../../src/collectors/host.js';
import { GpuState } from '../../src/state/gpu.js';
import { HealthBoard } from '../../src/state/health.js';
import { createLogger } from '../../src/logger.js';
import { Scrubber } from '../../src/secrets.js';
import { startRig, until, type Rig } from '../helpers/comfy-rig.js';
import { FakeSmi } from '../helpers/fake-smi.js';
import { startBin } from '../helpers/spawn.js';

const SIM_PROCESS = fileURLToPath(new URL('../../dist/sim/run-comfyui.js', import.meta.url));

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

/** The simulated ComfyUI as a process of its own, so it can be frozen with SIGSTOP. */
async function simProcess(stepMs = 50): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [SIM_PROCESS, String(stepMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.push(() => {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('sim did not start')), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /SIM_URL=(\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
  });
  return { child, url };
}

async function pod(env: Record<string, string>): Promise<Podscope & { base: string }> {
  const p = await startPodscope({
    env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', PODSCOPE_GPU: 'off', LOG_LEVEL: 'silent', PODSCOPE_COMFYUI_POLL_MS: '300', ...env },
    sinks: [],
  });
  cleanup.push(() => p.close());
  return Object.assign(p, { base: `http://127.0.0.1:${p.port}` });
}

async function timed(url: string): Promise<{ status: number; ms: number }> {
  const t = performance.now();
  const r = await fetch(url);
  await r.arrayBuffer();
  return { status: r.status, ms: performance.now() - t };
}

describe('a frozen ComfyUI (SIGSTOP: sockets open, nothing answers)', () => {
  it('is detected within two ping intervals, /ready goes 503, and after SIGCONT podscope reconnects and reconciles', async () => {
    const sim = await simProcess(100);
    const p = await pod({ COMFYUI_URL: sim.url, PODSCOPE_WS_PING_MS: '500', PODSCOPE_COMFYUI_TIMEOUT_MS: '400' });
    await until(async () => (await fetch(`${p.base}/ready`)).status === 200);
    await submit(sim.url, txt2img({ steps: 20 }), { clientId: 'w', extra: { job_id: 'frozen' } });
    await until(async () => (await (await fetch(`${p.base}/debug/workflow?job_id=frozen`)).json() as { status: string }).status === 'running');
    const stoppedAt = Date.now();
    sim.child.kill('SIGSTOP');
    await until(async () => !p.state.comfy!.wsConnected, 3000, 10);
    expect(Date.now() - stoppedAt).toBeLessThanOrEqual(2 * 500 + 200);
    await until(async () => (await fetch(`${p.base}/ready`)).status === 503, 3000);
    // Every endpoint keeps answering while ComfyUI is frozen.
    for (const path of ['/health', '/debug/status', '/debug/workflow', '/metrics']) expect((await timed(`${p.base}${path}`)).ms).toBeLessThan(100);
    sim.child.kill('SIGCONT');
    await until(async () => (await fetch(`${p.base}/ready`)).status === 200, 15_000);
    const done = await until(async () => {
      const w = (await (await fetch(`${p.base}/debug/workflow?job_id=frozen`)).json()) as { status: string };
      return w.status === 'success' ? w : undefined;
    }, 10_000);
    expect(done.status).toBe('success');
  }, 40_000);
});

describe('a ComfyUI HTTP API that fails', () => {
  let rig: Rig;
  const cases: Array<[string, RegExp, number | 'hang' | 'garbage', string]> = [
    ['/queue answering 500', /^\/queue$/, 500, 'COMFYUI_UNREACHABLE'],
    ['/queue answering garbage', /^\/queue$/, 'garbage', 'COMFYUI_UNREACHABLE'],
    ['/queue answering nothing', /^\/queue$/, 'hang', 'COMFYUI_UNREACHABLE'],
    ['every endpoint answering nothing', /.*/, 'hang', 'COMFYUI_UNREACHABLE'],
  ];
  it.each(cases)('%s: podscope answers within 100 ms and lists the problem', async (_name, paths, status, code) => {
    rig = await startRig({}, { PODSCOPE_COMFYUI_TIMEOUT_MS: '300', PODSCOPE_COMFYUI_POLL_MS: '200' });
    cleanup.push(() => rig.close());
    await until(async () => (await rig.get('/ready')).status === 200);
    rig.sim.httpFault = { paths, status };
    const problem = await until(async () => (await rig.get('/debug/status')).body.problems.find((x: { code: string }) => x.code === code), 5000);
    expect(problem.severity).toBe('error');
    for (const path of ['/health', '/ready', '/debug/status', '/debug/queue', '/debug/memory', '/debug/logs', '/metrics']) {
      const r = await timed(`${rig.base}${path}`);
      expect(r.status, path).toBeLessThan(500 + (path === '/ready' ? 4 : 0));
      expect(r.ms, path).toBeLessThan(100);
    }
    expect((await rig.get('/ready')).status).toBe(503);
    rig.sim.httpFault = null;
    await until(async () => (await rig.get('/ready')).status === 200, 5000);
  }, 20_000);

  it('/history and /system_stats answering 500 leave the queue view working', async () => {
    rig = await startRig({}, { PODSCOPE_COMFYUI_POLL_MS: '200' });
    cleanup.push(() => rig.close());
    await until(async () => (await rig.get('/ready')).status === 200);
    rig.sim.httpFault = { paths: /^\/(history|system_stats)/, status: 500 };
    await submit(rig.sim.url, txt2img({ steps: 2, seed: 77 }), { clientId: 'w', extra: { job_id: 'hist500' } });
    await until(async () => (await rig.get('/debug/workflow?job_id=hist500')).status === 200);
    rig.sim.httpFault = null;
    await until(async () => (await rig.get('/debug/workflow?job_id=hist500')).body.status === 'success', 5000);
  });
});

describe('a websocket flood and an oversized frame', () => {
  it('takes 10,000 frames/s for 5 s without loss, then survives a 50 MB frame', async () => {
    const rig = await startRig({}, { PODSCOPE_WS_MAX_FRAME_BYTES: String(16 * 1024 * 1024) });
    cleanup.push(() => rig.close());
    await until(async () => (await rig.get('/ready')).status === 200);
    const comfy = rig.pod.state.comfy!;
    const before = comfy.framesByType.get('other') ?? 0;
    const rssBefore = process.memoryUsage().rss;
    const frame = JSON.stringify({ type: 'custom.flood', data: { n: 1, text: 'x'.repeat(100) } });
    for (let s = 0; s < 50; s++) {
      for (let i = 0; i < 1000; i++) rig.sim.broadcastRaw(frame);
      await new Promise((r) => setTimeout(r, 100));
    }
    await until(async () => (comfy.framesByType.get('other') ?? 0) - before === 50_000, 10_000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
    const reconnects = comfy.wsReconnects;
    rig.sim.broadcastRaw(Buffer.alloc(50 * 1024 * 1024, 1));
    await until(async () => comfy.wsReconnects > reconnects, 10_000);
    expect((await rig.get('/health')).status).toBe(200);
    await until(async () => (await rig.get('/ready')).status === 200, 10_000);
  }, 40_000);
});

describe('nvidia-smi hanging 100 times in a row', () => {
  it('leaves no process and no file descriptor behind', async () => {
    const fake = new FakeSmi({ mode: 'hang', ignore_term: true, spawn_child: true });
    const logger = createLogger({ level: 'silent', podId: 't', environment: 'test', scrubber: new Scrubber([]), sinks: [] });
    const collector = new GpuCollector({
      bin: fake.bin,
      intervalMs: 1000,
      timeoutMs: 60,
      appsIntervalMs: 60_000,
      state: new GpuState({ startedAt: Date.now(), intervalMs: 1000, heldCount: undefined, timelineCapacity: 10 }),
      health: new HealthBoard(),
      logger,
      env: fake.env(),
      sampling: 'runs',
    });
    const fds = () => readdirSync('/proc/self/fd').length;
    await collector.tick(); // warm up lazily opened descriptors
    await until(() => fake.leftovers().length === 0);
    const before = fds();
    for (let i = 0; i < 100; i++) await collector.tick();
    await until(() => fake.leftovers().length === 0);
    await until(() => fds() <= before + 2);
  }, 60_000);
});

describe('a missing output directory', () => {
  it('is a problem, cleared when the directory appears', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'podscope-out-')), 'output');
    const health = new HealthBoard();
    const host = new HostCollector({ health, outputDirs: [{ path: dir, instances: ['8188'] }], workspaceDir: '/nonexistent-workspace' });
    await host.tick();
    expect(health.problems().map((p) => p.code)).toContain('OUTPUT_DIR_MISSING');
    (await import('node:fs')).mkdirSync(dir);
    await host.tick();
    expect(health.problems().map((p) => p.code)).not.toContain('OUTPUT_DIR_MISSING');
  });
});

describe('SIGTERM under load', () => {
  it('exits 0 within 5 s while 50 clients poll and a follow stream is open', async () => {
    const p = await startBin({ COMFYUI_URL: 'http://127.0.0.1:9', PODSCOPE_GPU: 'off', LOG_LEVEL: 'info' });
    cleanup.push(() => {
      p.child.kill('SIGKILL');
    });
    let polling = true;
    let answered = 0;
    const pollers = Array.from({ length: 50 }, async () => {
      while (polling) {
        const r = await fetch(`${p.url}/debug/status`).catch(() => null);
        await r?.arrayBuffer().catch(() => undefined);
        if (r) answered++;
      }
    });
    const follow = await fetch(`${p.url}/debug/logs?follow=1`);
    const reader = follow.body!.getReader();
    void (async () => {
      for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) break;
    })();
    // Under load for real: every poller has been answered at least once on average.
    await until(async () => answered >= 50, 20_000);
    const sent = Date.now();
    p.child.kill('SIGTERM');
    const { code, at } = await p.exited;
    polling = false;
    await Promise.allSettled(pollers);
    expect(code).toBe(0);
    expect(at - sent).toBeLessThan(5000);
  }, 20_000);
});
