/**
 * The fake libnvidia-ml.so (test/fake-nvml/fake-nvml.c), built once per test run with the
 * system's gcc, and a config file written from a recorded real nvidia-smi capture: podscope loads
 * it through PODSCOPE_NVML_LIBRARY on the real FFI path (koffi) in its real sampler process.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GpuRow } from '../../src/shared/gpu-readings.js';
import { fixtureRows } from './gpu-rows.js';

const SOURCE = fileURLToPath(new URL('../fake-nvml/fake-nvml.c', import.meta.url));

/** The fake library's path: `old` lacks what an older driver lacks (v2 memory, energy, samples, v3 processes). */
export function fakeNvmlLibrary(old = false): string {
  const dir = join(tmpdir(), `podscope-fake-nvml-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const lib = join(dir, old ? 'libnvidia-ml-old.so.1' : 'libnvidia-ml.so.1');
  if (!existsSync(lib)) {
    const tmp = `${lib}.${Math.random().toString(36).slice(2)}`;
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-Wno-format-truncation', ...(old ? ['-DFAKE_NVML_OLD'] : []), '-o', tmp, SOURCE]);
    renameSync(tmp, lib);
  }
  return lib;
}

export interface FakeGpu {
  row: GpuRow;
  /** Extra lines for this GPU (`spike 60000 250 3000`, `procs 4242:30000`). */
  extra?: string[];
}

/** A config the fake library reads again whenever it changes. */
export class FakeNvml {
  readonly file: string;

  constructor(gpus: FakeGpu[], lines: string[] = []) {
    this.file = join(mkdtempSync(join(tmpdir(), 'podscope-nvml-')), 'fake-nvml.conf');
    this.write(gpus, lines);
  }

  /** Rewrites the whole config (atomically: the library never reads half of it). */
  write(gpus: FakeGpu[], lines: string[] = []): void {
    const out = [`driver ${gpus[0]?.row.driver_version ?? '590.44.01'}`];
    gpus.forEach(({ row: r, extra }, i) => {
      const set = (key: string, v: number | string | null | undefined) => {
        if (v !== null && v !== undefined) out.push(`gpu ${i} ${key} ${v}`);
      };
      set('name', r.name);
      set('uuid', r.uuid);
      set('bus', r.pci_bus_id);
      set('mem_total_mb', r.memory_total_mb);
      set('mem_used_mb', r.memory_used_mb);
      set('mem_reserved_mb', r.memory_reserved_mb);
      set('util', r.utilization_percent);
      set('util_mem', r.memory_utilization_percent);
      set('power_mw', r.power_w === null ? null : Math.round(r.power_w * 1000));
      set('power_limit_mw', r.power_limit_w === null ? null : Math.round(r.power_limit_w * 1000));
      set('temp_c', r.temperature_c);
      set('sm_mhz', r.sm_clock_mhz);
      set('sm_max_mhz', r.sm_clock_max_mhz);
      set('pstate', r.pstate === null ? null : Number(r.pstate.replace(/^P/, '')));
      set('throttle', r.clock_event_reasons === null ? null : `0x${r.clock_event_reasons.toString(16)}`);
      set('fan', r.fan_percent);
      for (const e of extra ?? []) out.push(`gpu ${i} ${e}`);
    });
    out.push(...lines);
    writeFileSync(`${this.file}.new`, `${out.join('\n')}\n`);
    renameSync(`${this.file}.new`, this.file);
  }

  /** Appends lines (an Xid, a hang) to the config as it is. */
  append(...lines: string[]): void {
    appendFileSync(this.file, `${lines.join('\n')}\n`);
  }
}

/** The GPUs of a real capture (`h100-80gb-hbm3-x1.drv590.load`…), `n` of them with their own index and uuid. */
export function captured(fixture: string, n = 1): FakeGpu[] {
  const [row] = fixtureRows(fixture);
  return Array.from({ length: n }, (_, i) => ({ row: { ...row!, index: i, uuid: n === 1 ? row!.uuid : `${row!.uuid.slice(0, -2)}${String(i).padStart(2, '0')}`, pci_bus_id: `00000000:${(0x18 + i).toString(16).padStart(2, '0')}:00.0` } }));
}
