/** Running a short-lived child that may hang, flood or not exist: real children, generous deadlines. */
import { describe, expect, it } from 'vitest';
import { runBounded } from '../../src/sources/process.js';
import { alive, until } from '../helpers/wait.js';

const node = process.execPath;

describe('a child that exits', () => {
  it('gives its exit code and both streams', async () => {
    const r = await runBounded(node, ['-e', 'process.stdout.write("out"); process.stderr.write("err"); process.exit(3)'], { timeoutMs: 20_000 }).result;
    expect(r).toMatchObject({ kind: 'exited', code: 3, signal: null, stdout: 'out', stderr: 'err', truncated: false });
  });

  it('passes arguments as they are, with no shell between', async () => {
    const r = await runBounded(node, ['-e', 'process.stdout.write(process.argv[1])', '$(echo no); `no`'], { timeoutMs: 20_000 }).result;
    expect(r).toMatchObject({ kind: 'exited', code: 0, stdout: '$(echo no); `no`' });
  });
});

describe('a child that does not exist', () => {
  it('is a spawn error with its errno, never a throw', async () => {
    const r = await runBounded('/nonexistent/nvidia-smi', [], { timeoutMs: 1000 }).result;
    expect(r).toMatchObject({ kind: 'spawn-error', errno: 'ENOENT' });
  });
});

describe('a child that hangs', () => {
  it('is killed with its process group at the timeout', async () => {
    // The child starts a grandchild and prints its pid; both must be gone after the timeout.
    const script = 'const c = require("child_process").spawn(process.execPath, ["-e", "setInterval(() => {}, 1e9)"], { stdio: "ignore" }); process.stdout.write(String(c.pid)); setInterval(() => {}, 1e9);';
    const run = runBounded(node, ['-e', script], { timeoutMs: 6000 });
    const r = await run.result;
    expect(r.kind).toBe('timeout');
    if (r.kind !== 'timeout') return;
    expect(r.died).toBe(true);
    const grandchild = Number(r.stdout);
    expect(grandchild).toBeGreaterThan(0);
    await until(() => !alive(grandchild), 10_000);
    await run.exited;
  });
});

describe('a child that floods', () => {
  it('keeps at most maxBytes, marks the result truncated and kills the child', async () => {
    const r = await runBounded(node, ['-e', 'const b = Buffer.alloc(65536, 120); for (;;) process.stdout.write(b);'], { timeoutMs: 20_000, maxBytes: 100_000 }).result;
    expect(r.kind).toBe('exited');
    if (r.kind !== 'exited') return;
    expect(r.truncated).toBe(true);
    expect(r.stdout.length).toBe(100_000);
    expect(r.signal).toBe('SIGKILL');
  });
});
