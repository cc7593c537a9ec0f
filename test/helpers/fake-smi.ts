/**
 * Drives the real fake-nvidia-smi executable: a config file that tests rewrite between runs.
 */
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import type { FakeSmiConfig } from '../../src/sim/fake-nvidia-smi.js';

export const FAKE_SMI = fileURLToPath(new URL('../../bin/fake-nvidia-smi', import.meta.url));

export class FakeSmi {
  readonly file: string;
  readonly marker: string;
  /** A path of its own for the executable, so `ps` can tell this fake's processes apart. */
  readonly bin: string;

  constructor(config: FakeSmiConfig = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'podscope-smi-'));
    this.file = join(dir, 'fake.json');
    this.marker = `podscope-test-marker-${process.pid}-${Math.random().toString(36).slice(2)}`;
    this.bin = join(dir, `nvidia-smi-${this.marker}`);
    symlinkSync(FAKE_SMI, this.bin);
    this.set(config);
  }

  set(config: FakeSmiConfig): void {
    writeFileSync(this.file, JSON.stringify(config));
  }

  env(): NodeJS.ProcessEnv {
    return { ...process.env, FAKE_NVIDIA_SMI: this.file, FAKE_NVIDIA_SMI_MARKER: this.marker };
  }

  /** Processes still alive that this fake started (its hung children carry the marker). */
  leftovers(): string[] {
    const out = execFileSync('ps', ['-eo', 'pid,stat,args'], { encoding: 'utf8' });
    return out.split('\n').filter((l) => l.includes(this.marker));
  }
}
