/**
 * The log file follower (sources/log-file.ts) driven one look at a time through `poll()`, on a
 * real file in a temporary directory: what it reads, in what pieces, and what it reports when the
 * file is rotated, truncated, removed or replaced by a directory.
 */
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LogFileFollower, type FollowState } from '../../src/sources/log-file.js';

const dirs: string[] = [];
const followers: LogFileFollower[] = [];
afterEach(async () => {
  for (const f of followers.splice(0)) await f.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(opts: { backlogBytes?: number; maxReadBytes?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'podscope-follow-'));
  dirs.push(dir);
  const path = join(dir, 'comfyui.log');
  const chunks: string[] = [];
  const states: Array<[FollowState, string]> = [];
  let resets = 0;
  const f = new LogFileFollower({
    path,
    ...opts,
    events: {
      onChunk: (t) => chunks.push(t),
      onState: (s, d) => states.push([s, d]),
      onReset: () => resets++,
    },
  });
  followers.push(f);
  return { f, path, dir, chunks, states, text: () => chunks.join(''), resets: () => resets };
}

describe('reading', () => {
  it('reads what the file already holds at the first look', async () => {
    const t = setup();
    writeFileSync(t.path, 'one\ntwo\n');
    await t.f.poll();
    expect(t.text()).toBe('one\ntwo\n');
    expect(t.states).toEqual([['following', t.path]]);
  });

  it('reads only the last backlogBytes of a large file at the first look', async () => {
    const t = setup({ backlogBytes: 10 });
    writeFileSync(t.path, 'a'.repeat(100) + '0123456789');
    await t.f.poll();
    expect(t.text()).toBe('0123456789');
  });

  it('reads what is appended after, and nothing twice', async () => {
    const t = setup();
    writeFileSync(t.path, 'one\n');
    await t.f.poll();
    appendFileSync(t.path, 'two\n');
    await t.f.poll();
    await t.f.poll();
    expect(t.text()).toBe('one\ntwo\n');
  });

  it('reads at most maxReadBytes per look, and the rest at the next', async () => {
    const t = setup({ maxReadBytes: 4 });
    writeFileSync(t.path, 'abcdefghij');
    await t.f.poll();
    expect(t.text()).toBe('abcd');
    await t.f.poll();
    await t.f.poll();
    expect(t.text()).toBe('abcdefghij');
  });

  it('keeps a character whose bytes arrive in two reads whole', async () => {
    const t = setup({ maxReadBytes: 1 });
    writeFileSync(t.path, '✓');
    for (let i = 0; i < 3; i++) await t.f.poll();
    expect(t.text()).toBe('✓');
  });

  it('hands over a partial last line as it is; the caller assembles lines', async () => {
    const t = setup();
    writeFileSync(t.path, 'half a li');
    await t.f.poll();
    appendFileSync(t.path, 'ne\n');
    await t.f.poll();
    expect(t.chunks).toEqual(['half a li', 'ne\n']);
  });

  it('counts the bytes it read and says where it is', async () => {
    const t = setup();
    writeFileSync(t.path, '12345');
    await t.f.poll();
    expect(t.f.describe()).toEqual({ path: t.path, state: 'following', position: 5, bytes_read: 5 });
  });
});

describe('rotation, truncation and removal', () => {
  it('finishes the old file, then reads the new one from its start, after a rotation', async () => {
    const t = setup();
    writeFileSync(t.path, 'old 1\n');
    await t.f.poll();
    appendFileSync(t.path, 'old 2\n');
    renameSync(t.path, `${t.path}.1`);
    writeFileSync(t.path, 'new 1\n');
    await t.f.poll();
    expect(t.text()).toBe('old 1\nold 2\nnew 1\n');
    expect(t.resets()).toBe(1);
  });

  it('reads from the start again after a truncation, and says so', async () => {
    const t = setup();
    writeFileSync(t.path, 'a long first life of the file\n');
    await t.f.poll();
    truncateSync(t.path, 0);
    appendFileSync(t.path, 'again\n');
    await t.f.poll();
    expect(t.chunks.at(-1)).toBe('again\n');
    expect(t.resets()).toBe(1);
  });

  it('reports a missing file once, and follows it from its start when it appears', async () => {
    const t = setup({ backlogBytes: 2 });
    await t.f.poll();
    await t.f.poll();
    expect(t.states).toEqual([['missing', 'ENOENT']]);
    writeFileSync(t.path, 'created later\n');
    await t.f.poll();
    // Not a start-up backlog: a file created after podscope started is read whole.
    expect(t.text()).toBe('created later\n');
    expect(t.states.at(-1)).toEqual(['following', t.path]);
  });

  it('reads the tail of a file that was removed before saying it is missing', async () => {
    const t = setup();
    writeFileSync(t.path, 'first\n');
    await t.f.poll();
    appendFileSync(t.path, 'last words\n');
    rmSync(t.path);
    await t.f.poll();
    expect(t.text()).toBe('first\nlast words\n');
    expect(t.states.at(-1)).toEqual(['missing', 'ENOENT']);
  });

  it('reports a path that is a directory, and follows it again once it is a file', async () => {
    const t = setup();
    mkdirSync(t.path);
    await t.f.poll();
    expect(t.states).toEqual([['not-a-file', 'the path is a directory']]);
    rmSync(t.path, { recursive: true });
    writeFileSync(t.path, 'back\n');
    await t.f.poll();
    expect(t.text()).toBe('back\n');
    expect(t.states.at(-1)![0]).toBe('following');
  });
});

describe('stopping', () => {
  it('reads nothing more once stopped, and can be stopped twice', async () => {
    const t = setup();
    writeFileSync(t.path, 'one\n');
    t.f.start();
    await expect.poll(() => t.text(), { timeout: 10_000 }).toBe('one\n');
    await t.f.stop();
    const before = t.f.describe().bytes_read;
    appendFileSync(t.path, 'after stop\n');
    // Had it kept polling (every 250 ms), a fresh follower on the same file shows the time it takes.
    const probe = setup();
    writeFileSync(probe.path, 'x\n');
    probe.f.start();
    await expect.poll(() => probe.text(), { timeout: 10_000 }).toBe('x\n');
    appendFileSync(probe.path, 'y\n');
    await expect.poll(() => probe.text(), { timeout: 10_000 }).toBe('x\ny\n');
    expect(t.f.describe().bytes_read).toBe(before);
    await t.f.stop();
  });
});
