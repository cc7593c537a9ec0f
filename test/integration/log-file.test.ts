import { appendFileSync, mkdtempSync, mkdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LogCollector } from '../../src/collectors/logs.js';
import { LogStore } from '../../src/state/logs.js';
import { ComfyState } from '../../src/state/comfy.js';
import { HealthBoard } from '../../src/state/health.js';
import { Scrubber } from '../../src/secrets.js';

let stop: (() => Promise<void>) | null = null;
afterEach(async () => {
  await stop?.();
  stop = null;
});

function rig(existing?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'podscope-logfile-'));
  const path = join(dir, 'comfyui.log');
  if (existing !== undefined) writeFileSync(path, existing);
  const store = new LogStore(10_000, 32 * 1024 * 1024);
  const health = new HealthBoard();
  const comfy = new ComfyState('http://x', { jobIdKey: 'job_id', historyLimit: 10 });
  const collector = new LogCollector({ logFile: path, store, comfy, health, scrubber: new Scrubber([]) });
  collector.start();
  stop = () => collector.stop();
  const lines = () => store.ring.toArray().map((e) => e.value.message);
  const waitFor = async (pred: () => boolean, ms = 4000) => {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`not met; lines: ${JSON.stringify(lines().slice(-5))}; problems: ${JSON.stringify(health.problems())}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return { dir, path, store, health, lines, waitFor, collector, comfy };
}

describe('following COMFYUI_LOG_FILE', () => {
  it('reads what the file holds and what is appended, stripping the Manager prefix', async () => {
    const r = rig('[2026-11-22 09:14:09.455] got prompt\n');
    await r.waitFor(() => r.lines().includes('got prompt'));
    appendFileSync(r.path, '[2026-11-22 09:14:12.701] Prompt executed in 3.21 seconds\n');
    await r.waitFor(() => r.lines().includes('Prompt executed in 3.21 seconds'));
    expect(new Date(r.store.ring.toArray()[0]!.value.ts).getSeconds()).toBe(9);
  });

  it('waits for a partial last line to end', async () => {
    const r = rig('');
    appendFileSync(r.path, 'half a ');
    // The follower has read the partial line (so it could have stored it), and did not.
    await r.waitFor(() => (r.collector.describe().file as { bytes_read: number }).bytes_read >= 'half a '.length);
    expect(r.lines()).toEqual([]);
    appendFileSync(r.path, 'line\n');
    await r.waitFor(() => r.lines().includes('half a line'));
  });

  it('follows through a rotation (the file renamed, a new one created)', async () => {
    const r = rig('before rotation\n');
    await r.waitFor(() => r.lines().includes('before rotation'));
    appendFileSync(r.path, 'last line of the old file\n');
    renameSync(r.path, `${r.path}.prev.log`);
    writeFileSync(r.path, 'first line of the new file\n');
    await r.waitFor(() => r.lines().includes('first line of the new file'));
    expect(r.lines()).toContain('last line of the old file');
  });

  it('reads from the start again after a truncation', async () => {
    const r = rig('a long line before truncation\n');
    await r.waitFor(() => r.lines().length === 1);
    truncateSync(r.path, 0);
    appendFileSync(r.path, 'after\n');
    await r.waitFor(() => r.lines().includes('after'));
  });

  it('survives deletion and picks up the re-created file', async () => {
    const r = rig('one\n');
    await r.waitFor(() => r.lines().includes('one'));
    rmSync(r.path);
    await r.waitFor(() => r.health.problems().some((p) => p.code === 'LOG_FILE_MISSING'));
    writeFileSync(r.path, 'two\n');
    await r.waitFor(() => r.lines().includes('two'));
    await r.waitFor(() => !r.health.problems().some((p) => p.code === 'LOG_FILE_MISSING'));
  });

  it('reports a path that became a directory, and recovers when it is a file again', async () => {
    const r = rig('x\n');
    await r.waitFor(() => r.lines().includes('x'));
    rmSync(r.path);
    mkdirSync(r.path);
    await r.waitFor(() => r.health.problems().some((p) => p.code === 'LOG_FILE_NOT_A_FILE'));
    rmSync(r.path, { recursive: true });
    writeFileSync(r.path, 'y\n');
    await r.waitFor(() => r.lines().includes('y'));
  });

  it('keeps a 1 MiB line, cut with a marker', async () => {
    const r = rig('');
    appendFileSync(r.path, `${'z'.repeat(1024 * 1024)}\nnext\n`);
    await r.waitFor(() => r.lines().includes('next'));
    expect(r.lines()[0]).toMatch(/^z+… \[truncated \d+ characters\]$/);
  });

  it('survives binary garbage', async () => {
    const r = rig('');
    appendFileSync(r.path, Buffer.from([0, 1, 2, 0xff, 0xfe, 0x1b, 0x5b, 0x33, 0x31, 0x6d, 10]));
    appendFileSync(r.path, 'still alive\n');
    await r.waitFor(() => r.lines().includes('still alive'));
  });

  it('stores a line that came by both the stream and the file once', async () => {
    const r = rig('');
    // ComfyUI stamps a stream entry with its local time; ComfyUI-Manager prefixes the file's copy with the same time.
    const at = new Date(Date.now() - 60_000);
    const pad = (n: number, w = 2) => String(n).padStart(w, '0');
    const day = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
    const time = `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}.${pad(at.getMilliseconds(), 3)}`;
    r.collector.ingestComfy([{ t: `${day}T${time}123`, m: 'got prompt\n' }]);
    appendFileSync(r.path, `[${day} ${time}] got prompt\n`);
    appendFileSync(r.path, 'only in the file\n');
    await r.waitFor(() => r.lines().includes('only in the file'));
    expect(r.lines().filter((l) => l === 'got prompt')).toHaveLength(1);
  });
});
