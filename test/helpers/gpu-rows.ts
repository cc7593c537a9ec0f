/** GPU rows as the collector reads them, from the recorded real nvidia-smi captures. */
import type { GpuHealth, GpuRow } from '../../src/shared/gpu-readings.js';
import { answer, type FakeSmiConfig } from '../../src/sim/fake-nvidia-smi.js';
import { HEALTH_FIELDS, parseCsvRows, parseHelpQueryGpu, planFields, toGpuHealth, toGpuRow } from '../../src/sources/nvidia-smi.js';

/** The GPUs of a real capture, sampled through the same plan and parser as the collector. */
export function fixtureRows(fixture: string): GpuRow[] {
  const plan = planFields(parseHelpQueryGpu(answer(['--help-query-gpu'], { fixture }).stdout));
  const out = answer([`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits'], { fixture });
  return parseCsvRows(out.stdout, plan.fields.length).rows.map((cells) => toGpuRow(cells, plan.keys)!);
}

/** `n` H200s as the real H200 capture reads, each with its own index and uuid, and `override` applied. */
export function gpuRows(n: number, override: Partial<GpuRow> = {}): GpuRow[] {
  const [h200] = fixtureRows('h200-x1.drv590.load');
  return Array.from({ length: n }, (_, i) => ({ ...h200!, index: i, uuid: `GPU-${String(i).padStart(8, '0')}-0000-0000-0000-000000000000`, ...override }));
}

/** The memory health of a real capture's GPUs, through the collector's plan and parser. */
export function fixtureHealth(fixture: string, cfg: Omit<FakeSmiConfig, 'fixture'> = {}): Array<GpuHealth & { uuid: string }> {
  const plan = planFields(parseHelpQueryGpu(answer(['--help-query-gpu'], { fixture }).stdout), new Set(), HEALTH_FIELDS);
  const out = answer([`--query-gpu=${plan.fields.join(',')}`, '--format=csv,noheader,nounits'], { fixture, ...cfg });
  return parseCsvRows(out.stdout, plan.fields.length).rows.map((cells) => toGpuHealth(cells, plan.keys)!);
}
