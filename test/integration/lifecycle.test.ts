import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { BIN, runBin, startBin, type Running } from '../helpers/spawn.js';
import { until } from '../helpers/wait.js';

const QUIET = { COMFYUI_URL: 'http://127.0.0.1:9', PODSCOPE_GPU: 'off', LOG_LEVEL: 'info' };

async function problems(p: Running): Promise<Array<{ code: string; severity: string }>> {
  return ((await (await fetch(`${p.url}/debug/status`)).json()) as { problems: Array<{ code: string; severity: string }> }).problems;
}

/** Stops reading podscope's stdout and sends it access lines (about 400 bytes each) until it raises STDOUT_BLOCKED. */
async function blockStdout(p: Running): Promise<{ code: string; severity: string }> {
  p.child.stdout!.pause();
  return until(async () => {
    await Promise.all(Array.from({ length: 200 }, () => fetch(`${p.url}/debug/status`).then((r) => r.arrayBuffer())));
    return (await problems(p)).find((x) => x.code === 'STDOUT_BLOCKED');
  }, 60_000, 0);
}

async function stdoutDropped(p: Running): Promise<number> {
  const metrics = await (await fetch(`${p.url}/metrics`)).text();
  return Number(/^podscope_stdout_lines_dropped_total (\d+)$/m.exec(metrics)?.[1]);
}

describe('the podscope process', () => {
  it('serves /health 200 and /ready 503 naming what is missing when no ComfyUI runs', async () => {
    const p = await startBin(QUIET);
    try {
      const health = await fetch(`${p.url}/health`);
      expect(health.status).toBe(200);
      const ready = await fetch(`${p.url}/ready`);
      expect(ready.status).toBe(503);
      const body = (await ready.json()) as { checks: Record<string, string> };
      expect(body.checks.comfyui).toMatch(/ComfyUI at http:\/\/127\.0\.0\.1:9/);
      expect(body.checks.websocket).toMatch(/websocket/);
      expect(body.checks.gpu).toBe('ok');
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it('exits 0 within 5 s of SIGTERM while a client holds connections open', async () => {
    const p = await startBin(QUIET);
    // One idle keep-alive connection, one request still being sent.
    await fetch(`${p.url}/health`, { headers: { connection: 'keep-alive' } });
    const half = connect(p.port, '127.0.0.1');
    await new Promise((r) => half.once('connect', r));
    half.write('GET /health HTTP/1.1\r\nHost: x\r\n');
    half.on('error', () => undefined);
    const sentAt = Date.now();
    p.child.kill('SIGTERM');
    const { code, at } = await p.exited;
    half.destroy();
    expect(code).toBe(0);
    expect(at - sentAt).toBeLessThan(5000);
  });

  it('goes on serving, and says so once on stderr, when whoever reads its stdout goes away', async () => {
    const p = await startBin(QUIET);
    try {
      p.child.stdout!.destroy();
      // Each answer writes an access line; the next write to the closed pipe fails with EPIPE.
      await until(async () => {
        expect((await fetch(`${p.url}/debug/status`)).status).toBe(200);
        return /stdout failed \(EPIPE\)/.test(p.stderr()) || undefined;
      }, 15_000, 10);
      expect((await fetch(`${p.url}/health`)).status).toBe(200);
      expect(p.stderr().match(/stdout failed/g)).toHaveLength(1);
      expect(p.child.exitCode).toBeNull();
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  it('holds its log lines to 1 MiB while whoever reads its stdout stops reading, raises STDOUT_BLOCKED, and counts what it dropped', async () => {
    const p = await startBin(QUIET);
    try {
      const blocked = await blockStdout(p);
      expect(blocked.severity).toBe('warning');
      expect(await stdoutDropped(p)).toBeGreaterThan(0);
      // The problem's own log line could not reach stdout; the log buffer has it.
      const logs = (await (await fetch(`${p.url}/debug/logs?source=podscope`)).json()) as { lines: Array<{ message: string }> };
      expect(logs.lines.some((l) => /STDOUT_BLOCKED/.test(l.message))).toBe(true);
      expect((await fetch(`${p.url}/health`)).status).toBe(200);
    } finally {
      p.child.kill('SIGKILL');
    }
  }, 90_000);

  it('writes what it held once its stdout is read again, says how many lines it dropped, and clears STDOUT_BLOCKED', async () => {
    const p = await startBin(QUIET);
    try {
      await blockStdout(p);
      p.child.stdout!.resume();
      const notice = await until(() => p.stdout().split('\n').find((l) => l.includes('stdout takes log lines again')), 30_000);
      const dropped = (JSON.parse(notice) as { data: { dropped_lines: number } }).data.dropped_lines;
      expect(dropped).toBeGreaterThan(0);
      await until(async () => (await problems(p)).every((x) => x.code !== 'STDOUT_BLOCKED'), 15_000);
      expect(await stdoutDropped(p)).toBe(dropped);
      // Dropped lines are whole lines: every line that came out is a whole JSON record.
      const lines = p.stdout().split('\n').slice(0, -1);
      for (const l of lines) expect(() => JSON.parse(l) as unknown, l.slice(0, 80)).not.toThrow();
    } finally {
      p.child.kill('SIGKILL');
    }
  }, 90_000);

  describe('an error nothing caught', () => {
    const SECRET = 'hunter2-db-password-0123';
    /** podscope's serve, run by a script that, on SIGUSR2, throws or rejects with the secret in the message. */
    function crashingEntry(how: 'throw' | 'reject'): string {
      const dir = mkdtempSync(join(tmpdir(), 'podscope-crash-'));
      const main = new URL('../../dist/main.js', import.meta.url).href;
      const fail = `new Error('lost the database at postgres://admin:' + process.env.DB_PASSWORD + '@db:5432')`;
      const file = join(dir, 'crash.mjs');
      writeFileSync(
        file,
        `import { runServe } from ${JSON.stringify(main)};\n` +
          `process.on('SIGUSR2', () => setImmediate(() => { ${how === 'throw' ? `throw ${fail}` : `void Promise.reject(${fail})`}; }));\n` +
          `process.exitCode = await runServe(process.env);\n`,
      );
      return file;
    }

    for (const [how, what] of [['throw', 'an error nothing caught'], ['reject', 'a promise rejection nothing handled']] as const) {
      it(`(${how}) is logged as one fatal, scrubbed JSON line, and podscope exits 70 for its supervisor`, async () => {
        const p = await startBin({ ...QUIET, DB_PASSWORD: SECRET }, [], [], crashingEntry(how));
        try {
          p.child.kill('SIGUSR2');
          const { code } = await p.exited;
          expect(code).toBe(70);
          const fatal = p
            .stdout()
            .split('\n')
            .filter((l) => l.includes('"level":"fatal"'))
            .map((l) => JSON.parse(l) as { message: string; error: { message: string } });
          expect(fatal).toHaveLength(1);
          expect(fatal[0]!.message).toBe(`podscope stops: ${what}`);
          expect(fatal[0]!.error.message).toBe('lost the database at postgres://admin:[REDACTED]@db:5432');
          expect(p.stdout() + p.stderr()).not.toContain(SECRET);
        } finally {
          p.child.kill('SIGKILL');
        }
      });
    }
  });

  it('exits 0 on SIGINT too', async () => {
    const p = await startBin(QUIET);
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(0);
  });

  it('stops with exit code 2 and one line on a bad variable', async () => {
    const r = await runBin({ PODSCOPE_PORT: 'eighty' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('podscope: invalid configuration: PODSCOPE_PORT: expected an integer from 0 to 65535 (got "eighty")\n');
    expect(r.stdout).toBe('');
  });

  it('stops with exit code 2 on a bad COMFYUI_URLS, naming the variable and the entry, its password masked', async () => {
    const r = await runBin({ COMFYUI_URLS: 'gpu0=http://127.0.0.1:8188,gpu1=htp://admin:s3cr3tpass@127.0.0.1:8189' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('podscope: invalid configuration: COMFYUI_URLS: entry "gpu1=htp://admin:[REDACTED]@127.0.0.1:8189": must be an absolute http:// or https:// URL\n');
  });

  it('prints its version', async () => {
    const r = await runBin({}, ['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('is run by the bench with the Node settings its shebang gives', async () => {
    const shebang = /^#!\/usr\/bin\/env -S (.+)$/m.exec(readFileSync(BIN, 'utf8'))![1]!.split(' ');
    const node = shebang.indexOf('node');
    const fromShebang = {
      nodeArgs: shebang.slice(node + 1),
      env: Object.fromEntries(shebang.slice(0, node).map((w) => w.split('=') as [string, string])),
    };
    const bench = (await import(new URL('../../bench/lib.js', import.meta.url).href)) as { AS_THE_BIN: unknown };
    expect(bench.AS_THE_BIN).toEqual(fromShebang);
  });

  // What `npx podscope` runs is the bin through its shebang, not `node bin/podscope.js`.
  it.runIf(process.platform === 'linux')('runs, through its shebang, with a 4 MiB young generation and two malloc arenas', async () => {
    const child = spawn(BIN, ['serve'], { env: { PATH: process.env.PATH ?? '', PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', ...QUIET }, stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await until(() => out.includes('podscope listening on'), 15_000);
      const args = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
      const env = readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0');
      expect(args).toContain('--max-semi-space-size=4');
      expect(env).toContain('MALLOC_ARENA_MAX=2');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
