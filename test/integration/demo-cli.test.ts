import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN } from '../helpers/spawn.js';
import { alive, until } from '../helpers/wait.js';

const TOKEN = 'demo-token-0123456789';
let demo: ChildProcess;
let url = '';
let out = '';

function descendants(pid: number): number[] {
  const ps = execFileSync('ps', ['-eo', 'pid,ppid'], { encoding: 'utf8' });
  const kids = new Map<number, number[]>();
  for (const line of ps.trim().split('\n').slice(1)) {
    const [p, pp] = line.trim().split(/\s+/).map(Number) as [number, number];
    kids.set(pp, [...(kids.get(pp) ?? []), p]);
  }
  const all: number[] = [];
  const stack = [pid];
  while (stack.length) for (const k of kids.get(stack.pop()!) ?? []) all.push(k), stack.push(k);
  return all;
}


function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', PODSCOPE_TOKEN: TOKEN, ...env } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function json(path: string) {
  const r = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: r.status, body: (await r.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

beforeAll(async () => {
  demo = spawn(process.execPath, [BIN, 'demo', '--step-ms', '25'], {
    // The suite's TMPDIR: a demo killed before it can clean up leaves its files there, not in /tmp.
    env: { PATH: process.env.PATH ?? '', TMPDIR: process.env.TMPDIR, PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', PODSCOPE_TOKEN: TOKEN, LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  demo.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 15_000;
  while (!/watching them at (http:\/\/\S+)/.test(out)) {
    if (Date.now() > deadline) throw new Error(`demo did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  url = /watching them at (http:\/\/\S+)/.exec(out)![1]!;
}, 20_000);

afterAll(() => {
  if (demo.exitCode === null) demo.kill('SIGKILL');
});

describe('the demo', () => {
  it('prints its URL and three curl lines', () => {
    expect(out.match(/^ {2}curl /gm)).toHaveLength(3);
  });

  it('suggests curl lines that work with the token it runs with, without printing the token', async () => {
    const lines = out.match(/^ {2}curl .*$/gm)!;
    for (const line of lines) expect(line).toContain('-H "Authorization: Bearer $PODSCOPE_TOKEN"');
    expect(out).not.toContain(TOKEN);
    // What the line asks for, with the token it names, answers.
    const path = /'(http:\/\/[^']+)'/.exec(lines[0]!)![1]!;
    expect((await fetch(path, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('shows live data on every endpoint within 10 s', async () => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const status = await json('/debug/status');
      const memory = await json('/debug/memory');
      const logs = await json('/debug/logs?lines=5');
      const queue = await json('/debug/queue');
      const workflow = await json('/debug/workflow');
      const live =
        status.body.gpus?.length === 2 &&
        status.body.comfyui?.connected === true &&
        memory.body.timeline?.points?.length > 0 &&
        logs.body.lines?.length > 0 &&
        workflow.status === 200 &&
        Array.isArray(queue.body.running);
      if (live) break;
      if (Date.now() > deadline) throw new Error(`not live after 10 s: ${JSON.stringify(status.body).slice(0, 400)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  it('runs jobs that succeed and jobs that run out of GPU memory', async () => {
    const ok = await cli(['wait', '--url', url, '--job', 'job_0002', '--timeout', '30']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/job job_0002 succeeded/);
    const oom = await cli(['wait', '--url', url, '--job', 'job_0003', '--timeout', '30']);
    expect(oom.code).toBe(1);
    expect(oom.stdout).toMatch(/job job_0003 error in node 3 \(KSampler\): torch\.OutOfMemoryError: Allocation on device/);
  }, 70_000);

  it('runs one simulated ComfyUI per GPU, each pinned to its GPU, with jobs on every one', async () => {
    const body = await until(async () => {
      const { body } = await json('/debug/status');
      return body.instances?.length === 2 && body.instances.every((i: { gpus: unknown[] | null }) => i.gpus !== null) ? body : undefined;
    }, 20_000);
    expect(body.instances.map((i: { name: string; gpus: Array<{ index: number }>; gpus_source: string }) => [i.name, i.gpus.map((g) => g.index), i.gpus_source])).toEqual([
      ['gpu0', [0], 'argv'],
      ['gpu1', [1], 'argv'],
    ]);
    await until(async () => {
      const jobs = (await json('/debug/jobs?status=success&limit=1000')).body.jobs as Array<{ instance: string }>;
      return ['gpu0', 'gpu1'].every((n) => jobs.some((j) => j.instance === n));
    }, 30_000);
  }, 60_000);
});

describe('the CLI against the demo', () => {
  it('prints the status with GPU rows', async () => {
    const r = await cli(['status', '--url', url]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pod demo-pod: (PROCESSING|IDLE|DEGRADED)/);
    expect(r.stdout).toMatch(/^0 +NVIDIA H200/m);
    expect(r.stdout).toMatch(/^1 +NVIDIA H200/m);
  });

  it('prints a per-node table for workflow', async () => {
    const r = await cli(['workflow', '--url', url, '--job', 'job_0002']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^job job_0002 .* SUCCESS/);
    expect(r.stdout).toMatch(/^NODE +CLASS +STATUS/m);
    expect(r.stdout).toMatch(/^3 +KSampler +completed/m);
  });

  it('prints raw JSON with --json', async () => {
    const r = await cli(['queue', '--url', url, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('queue_remaining');
  });

  it('prints log lines, filtered', async () => {
    const r = await cli(['logs', '--url', url, '--lines', '5', '--level', 'info']);
    expect(r.code).toBe(0);
    // One record per timestamp: a record's message may run over several lines (a traceback).
    const records = r.stdout.split('\n').filter((l) => /^\d{4}-\d\d-\d\dT/.test(l));
    expect(records.length).toBeGreaterThan(0);
    expect(records.length).toBeLessThanOrEqual(5);
    for (const l of records) expect(l).toMatch(/^\S+ (INFO|WARN|ERROR|FATAL) /);
  });

  it('lists the jobs remembered, newest first, with their outcome', async () => {
    const r = await cli(['jobs', '--url', url, '--status', 'finished', '--limit', '5']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    // A COMFYUI column leads when the jobs listed ran on more than one of the demo's ComfyUIs.
    expect(lines[0]).toMatch(/^(COMFYUI\s+)?JOB\s+STATUS\s+DURATION/);
    expect(lines.slice(1, -1).length).toBeGreaterThan(0);
    expect(lines.slice(1, -1).length).toBeLessThanOrEqual(5);
    for (const l of lines.slice(1, -1)) expect(l).toMatch(/^(gpu\d\s+)?job_\d+\s+(success|error|interrupted|lost)\s/);
  });

  it('lists one ComfyUI’s jobs with --instance, and refuses a name the pod does not have with exit 64, naming the ones it has', async () => {
    await until(async () => (await json('/debug/jobs?instance=gpu1&status=finished')).body.jobs.length > 0, 30_000);
    const r = await cli(['jobs', '--url', url, '--instance', 'gpu1', '--json']);
    expect(r.code).toBe(0);
    const jobs = JSON.parse(r.stdout).jobs as Array<{ instance: string }>;
    expect(jobs.length).toBeGreaterThan(0);
    expect(jobs.every((j) => j.instance === 'gpu1')).toBe(true);
    const bad = await cli(['queue', '--url', url, '--instance', 'gpu7']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toBe('podscope: --instance: instance must name a ComfyUI instance podscope follows: gpu0, gpu1.\n');
  }, 45_000);

  it('prints memory', async () => {
    const r = await cli(['memory', '--url', url]);
    expect(r.stdout).toMatch(/^GPU 0 NVIDIA H200: used/m);
  });

  it('says which job is unknown, exit 4', async () => {
    const r = await cli(['workflow', '--url', url, '--job', 'nope']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/JOB_NOT_FOUND: No job with id nope/);
  });

  it('wait: exit 2 on timeout', async () => {
    const r = await cli(['wait', '--url', url, '--job', 'never-submitted', '--timeout', '1']);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/timed out after 1 s/);
  });

  it('wait: exit 3 when the pod cannot be reached', async () => {
    const r = await cli(['wait', '--url', 'http://127.0.0.1:9', '--job', 'x', '--timeout', '5']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot reach podscope at http:\/\/127\.0\.0\.1:9/);
  });

  it.each([
    [['status', '--bogus', 'x'], /unknown option --bogus for `podscope status`/],
    [['status', '--jsn'], /unknown option --jsn for `podscope status` \(did you mean --json\?\)/],
    [['logs', '--lines', 'abc'], /--lines must be a whole number from 1 to 1000000 \(got "abc"\)/],
    [['status', '--url', 'notaurl'], /--url must be an http:\/\/ or https:\/\/ URL \(got "notaurl"\)/],
    [['wait', '--job'], /--job needs a value/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ])('usage error %j: exit 64 with the reason and the usage', async (args, message) => {
    const r = await cli(args as string[]);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/podscope wait --job ID/);
  });

  it.each([
    [['jobs', '--limit', 'abc'], /--limit: limit must be/],
    [['jobs', '--status', 'done'], /--status: status must be one of/],
    [['logs', '--level', 'loud'], /--level: level must be one of/],
  ])('an option value the pod refuses %j: exit 64, naming the option', async (args, message) => {
    const r = await cli([...(args as string[]), '--url', url], { PODSCOPE_TOKEN: TOKEN });
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(message);
  });

  it('wait: exit 3 when the pod refuses the token', async () => {
    const r = await cli(['wait', '--url', url, '--job', 'job_0002'], { PODSCOPE_TOKEN: 'wrong-token-123456' });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/the token is not valid/);
  });

  it('logs --follow ends quietly with exit 0 when its reader goes away (| head -1)', async () => {
    const c = spawn(process.execPath, [BIN, 'logs', '--follow', '--url', url], { env: { PATH: process.env.PATH ?? '', PODSCOPE_TOKEN: TOKEN } });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
    await new Promise((r) => c.stdout.once('data', r));
    c.stdout.destroy();
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });

  it('a view whose reader has already gone exits with its own code and no stack trace', async () => {
    const c = spawn(process.execPath, [BIN, 'status', '--url', url], { env: { PATH: process.env.PATH ?? '', PODSCOPE_TOKEN: TOKEN } });
    c.stdout.destroy();
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await new Promise<number | null>((r) => c.once('exit', (code) => r(code)))).toBe(0);
    expect(stderr).toBe('');
  });

  it('wait keeps its exit code (2, timed out) when its reader has already gone', async () => {
    const c = spawn(process.execPath, [BIN, 'wait', '--url', url, '--job', 'never-submitted', '--timeout', '1'], { env: { PATH: process.env.PATH ?? '', PODSCOPE_TOKEN: TOKEN } });
    c.stdout.destroy();
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await new Promise<number | null>((r) => c.once('exit', (code) => r(code)))).toBe(2);
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
  });

  it('a client without a token is told how to get one', async () => {
    const r = await cli(['status', '--url', url], { PODSCOPE_TOKEN: '' });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/needs a token/);
  });
});

describe('stopping the demo', () => {
  it('stops on Ctrl-C and leaves no process behind', async () => {
    const kids = descendants(demo.pid!);
    const exited = new Promise<number | null>((r) => demo.once('exit', (code) => r(code)));
    demo.kill('SIGINT');
    expect(await exited).toBe(0);
    await until(() => kids.filter(alive).length === 0);
  }, 15_000);
});

describe('the demo started through npx', () => {
  it.each([
    ['SIGTERM', 'npm forwards it'],
    ['SIGKILL', 'the parent vanishes without a word'],
  ] as const)('ends with its parent: %s to npx alone (%s) stops podscope and the simulators and removes its files', async (signal, _why) => {
    const { mkdtempSync, readdirSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const tmp = mkdtempSync(join(tmpdir(), 'demo-npx-'));
    const npx = spawn('npx', ['--no-install', 'podscope', 'demo', '--step-ms', '25'], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmp, TMPDIR: tmp, PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    let kids: number[] = [];
    npx.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    npx.stderr!.on('data', (d: Buffer) => (text += d.toString()));
    try {
      const at = await until(() => /watching them at (http:\/\/\S+)/.exec(text)?.[1], 30_000);
      kids = descendants(npx.pid!);
      expect(kids.length).toBeGreaterThan(0);
      npx.kill(signal);
      await until(() => kids.filter(alive).length === 0, 20_000);
      await expect(fetch(`${at}/health`)).rejects.toThrow();
      await until(() => readdirSync(tmp).length === 0 || null, 10_000);
    } finally {
      for (const pid of kids.filter(alive)) process.kill(pid, 'SIGKILL');
      npx.kill('SIGKILL');
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('the demo on a terminal', () => {
  it('keeps the terminal calm: a one-line summary per period and no JSON log lines', async () => {
    const calm = spawn(process.execPath, [BIN, 'demo', '--step-ms', '25', '--summary-s', '1'], {
      env: { PATH: process.env.PATH ?? '', TMPDIR: process.env.TMPDIR, PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    calm.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    calm.stderr!.on('data', (d: Buffer) => (text += d.toString()));
    try {
      // Two summaries, so at least one period of a running workload (OOMs and rejections included) has passed.
      await until(() => (text.match(/^\d\d:\d\d:\d\d demo-pod /gm)?.length ?? 0) >= 2, 20_000);
      const summary = text.match(/^\d\d:\d\d:\d\d demo-pod .*$/m)![0];
      expect(summary).toMatch(/^\d\d:\d\d:\d\d demo-pod (starting|idle|processing|degraded) · 2 GPUs (\d+% busy|utilization unknown) · jobs since start: \d+ done, \d+ failed, \d+ interrupted, \d+ lost; now \d+ running, \d+ queued · problems: .+$/);
      expect(text).toContain("podscope's own log: curl '");
      expect(text.split('\n').filter((l) => l.startsWith('{'))).toEqual([]);
    } finally {
      calm.kill('SIGINT');
      await new Promise((r) => calm.once('exit', r));
    }
  }, 30_000);

  it('goes on serving when its terminal goes away, says so once, and still stops cleanly, leaving nothing behind', async () => {
    const { mkdtempSync, readdirSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const tmp = mkdtempSync(join(tmpdir(), 'demo-tmp-'));
    const orphan = spawn(process.execPath, [BIN, 'demo', '--step-ms', '25', '--summary-s', '1'], {
      env: { PATH: process.env.PATH ?? '', TMPDIR: tmp, PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    let stderr = '';
    orphan.stdout!.on('data', (d: Buffer) => (text += d.toString()));
    orphan.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => orphan.once('exit', (code) => r(code)));
    try {
      const at = await until(() => /watching them at (http:\/\/\S+)/.exec(text)?.[1], 15_000);
      orphan.stdout!.destroy();
      // The next summary fails with EPIPE.
      await until(() => /stdout failed \(EPIPE\)/.test(stderr), 15_000);
      expect((await fetch(`${at}/health`)).status).toBe(200);
      orphan.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr.match(/stdout failed/g)).toHaveLength(1);
      expect(stderr).not.toMatch(/Unhandled|at .*\.js:\d+/);
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      orphan.kill('SIGKILL');
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 45_000);

  it('leaves nothing behind when it cannot start (a busy port)', async () => {
    const { createServer } = await import('node:net');
    const { mkdtempSync, readdirSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    const tmp = mkdtempSync(join(tmpdir(), 'demo-tmp-'));
    try {
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const c = spawn(process.execPath, [BIN, 'demo'], { env: { PATH: process.env.PATH ?? '', TMPDIR: tmp, PODSCOPE_PORT: String(port), PODSCOPE_HOST: '127.0.0.1' } });
        let stderr = '';
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('exit', (code) => resolve({ code, stderr }));
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/podscope demo: cannot start: .*EADDRINUSE/);
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      busy.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 30_000);
});
