/**
 * `podscope wait` (a real CLI process) follows the job's events: it answers as soon as the job
 * ends however long its polling interval, and against a pod without /debug/events it falls back
 * to polling.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/spawn.js';
import { startRig, until, type Rig } from '../helpers/comfy-rig.js';
import { submit, txt2img } from '../../src/sim/comfyui.js';

function cli(args: string[]): { done: Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> } {
  const started = Date.now();
  const c = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '' } });
  let stdout = '';
  let stderr = '';
  c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return { done: new Promise((resolve) => c.on('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }))) };
}

let rig: Rig;
beforeAll(async () => {
  rig = await startRig({ stepMs: 40 });
});
afterAll(async () => {
  await rig.close();
});

describe('podscope wait with the event stream', () => {
  it('answers when the job ends, long before its next poll would have', async () => {
    const before = rig.pod.state.events!.streams.open;
    const run = cli(['wait', '--url', rig.base, '--job', 'job-wait-1', '--interval', '120', '--timeout', '100']);
    // Its stream is open (so it will hear the job), then the job is submitted.
    await until(() => rig.pod.state.events!.streams.open > before, 20_000);
    await submit(rig.sim.url, txt2img({ steps: 4, seed: 1 }), { extra: { job_id: 'job-wait-1' } });
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^job job-wait-1 succeeded in [\d.]+ s$/m);
    // Polling alone would have looked again only after 120 s.
    expect(r.ms).toBeLessThan(100_000);
  });

  it('closes its stream when it is done', async () => {
    await until(() => rig.pod.state.events!.streams.open === 0, 20_000);
  });
});

describe('podscope wait against a pod without /debug/events', () => {
  let server: Server;
  let polls = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url?.startsWith('/debug/workflow')) {
        polls++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(polls < 3 ? { status: 'running', progress_percent: 50 } : { status: 'success', duration_s: 1.5 }));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `No endpoint at ${req.url}.` } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('polls at its interval until the job ends', async () => {
    const { port } = server.address() as AddressInfo;
    const r = await cli(['wait', '--url', `http://127.0.0.1:${port}`, '--job', 'j', '--interval', '0.2', '--timeout', '60']).done;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^job j succeeded in 1.5 s$/m);
    expect(polls).toBeGreaterThanOrEqual(3);
  });
});
