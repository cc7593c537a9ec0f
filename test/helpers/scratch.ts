/**
 * Global setup for both suites: every temporary file a test makes (fake nvidia-smi scripts, log
 * files, output directories, copies of ComfyUI) goes under one directory, through TMPDIR, which
 * the workers inherit; it is removed when the run ends, so runs leave nothing behind in /tmp.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const before = process.env.TMPDIR;
  const root = mkdtempSync(join(tmpdir(), 'podscope-tests-'));
  process.env.TMPDIR = root;
  return () => {
    rmSync(root, { recursive: true, force: true });
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
  };
}
