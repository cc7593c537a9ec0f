/**
 * nvidia-smi's text outputs, parsed: `nvidia-smi -L` (the GPUs and MIG devices it lists) and
 * `nvidia-smi -q` (one section per GPU, nested by indentation; MIG devices and their processes).
 * The CSV queries are parsed in nvidia-smi.ts.
 */
import type { MigDevice, MigProcess } from '../shared/gpu-readings.js';
import { numberCell, parseLostGpuLine, type LostGpu } from './nvidia-smi.js';

export interface GpuListing {
  gpus: Array<{ index: number; name: string; uuid: string }>;
  /** MIG devices with their profile, under the GPU index that holds them. */
  mig: Array<{ gpu_index: number; device_index: number; profile: string; uuid: string }>;
  lost: LostGpu[];
}

// `GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-…)` and `  MIG 3g.40gb     Device  0: (UUID: MIG-…)`.
const LIST_GPU = /^GPU\s+(\d+):\s*(.*?)\s*\(UUID:\s*([^)\s]+)\)\s*$/;
const LIST_MIG = /^MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*([^)\s]+)\)\s*$/;

/** `nvidia-smi -L`: the GPUs the driver enumerates, their MIG devices, and the ones it cannot reach. */
export function parseGpuList(text: string): GpuListing {
  const out: GpuListing = { gpus: [], mig: [], lost: [] };
  let current: number | null = null;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '') continue;
    const gone = parseLostGpuLine(line);
    if (gone) {
      out.lost.push(gone);
      continue;
    }
    const g = LIST_GPU.exec(line);
    if (g) {
      current = Number(g[1]);
      out.gpus.push({ index: current, name: g[2]!, uuid: g[3]! });
      continue;
    }
    const m = LIST_MIG.exec(line);
    if (m && current !== null) out.mig.push({ gpu_index: current, device_index: Number(m[2]), profile: m[1]!, uuid: m[3]! });
  }
  return out;
}

/** One GPU's section of `nvidia-smi -q`, as key → value lines and nested sections. */
export interface QuerySection {
  title: string;
  values: Map<string, string>;
  children: QuerySection[];
}

/**
 * `nvidia-smi -q` (text) into one section per GPU (`GPU 00000000:00:09.0`), nested by indentation.
 * Lines that fit no shape are skipped; the input is bounded by the runner.
 */
export function parseQueryText(text: string): Map<string, QuerySection> {
  const gpus = new Map<string, QuerySection>();
  let stack: Array<{ indent: number; section: QuerySection }> = [];
  // A `key : value` line that deeper lines then describe (a process) becomes a section too.
  let lastValue: { indent: number; parent: QuerySection; title: string } | null = null;
  for (const raw of text.split(/\r?\n/)) {
    if (raw.trim() === '') continue;
    const indent = raw.length - raw.trimStart().length;
    const line = raw.trim();
    if (indent === 0) {
      stack = [];
      lastValue = null;
      const head = /^GPU\s+([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])$/.exec(line);
      if (head) {
        const section: QuerySection = { title: line, values: new Map(), children: [] };
        gpus.set(head[1]!, section);
        stack.push({ indent: 0, section });
      }
      continue;
    }
    if (stack.length === 0) continue;
    if (lastValue && indent > lastValue.indent && stack[stack.length - 1]!.section === lastValue.parent) {
      const section: QuerySection = { title: lastValue.title, values: new Map(), children: [] };
      lastValue.parent.children.push(section);
      stack.push({ indent: lastValue.indent, section });
    }
    lastValue = null;
    while (stack.length > 1 && stack[stack.length - 1]!.indent >= indent) stack.pop();
    const parent = stack[stack.length - 1]!.section;
    const kv = /^(.*?)\s+:\s?(.*)$/.exec(line);
    if (kv) {
      // A key repeated in one section (process lists) keeps each: later ones get a suffix.
      const name = kv[1]!.trim();
      let key = name;
      for (let n = 2; parent.values.has(key); n++) key = `${name} #${n}`;
      parent.values.set(key, kv[2]!.trim());
      lastValue = { indent, parent, title: `${name}: ${kv[2]!.trim()}` };
    } else {
      const section: QuerySection = { title: line, values: new Map(), children: [] };
      parent.children.push(section);
      stack.push({ indent, section });
    }
  }
  return gpus;
}

const mib = (v: string | undefined) => numberCell(v?.replace(/\s*MiB$/, '')).value;

/** The MIG devices of one GPU's `-q` section: ids and memory (profiles come from `-L`). */
export function migDevicesOf(gpu: QuerySection): MigDevice[] {
  const out: MigDevice[] = [];
  for (const c of gpu.children) {
    if (c.title !== 'MIG Device') continue;
    const mem = c.children.find((x) => /FB Memory Usage$/.test(x.title));
    out.push({
      index: numberCell(c.values.get('Index')).value,
      gpu_instance_id: numberCell(c.values.get('GPU Instance ID')).value,
      compute_instance_id: numberCell(c.values.get('Compute Instance ID')).value,
      profile: null,
      uuid: null,
      memory_total_mb: mib(mem?.values.get('Total')),
      memory_used_mb: mib(mem?.values.get('Used')),
      processes: [],
    });
  }
  return out;
}

/** The processes of one GPU's `-q` section, with their GPU- and compute-instance ids under MIG. */
export function queryProcessesOf(gpu: QuerySection): MigProcess[] {
  const procs = gpu.children.find((c) => c.title === 'Processes');
  if (!procs) return [];
  const nth = (key: string, n: number) => procs.values.get(n === 1 ? key : `${key} #${n}`);
  const out: MigProcess[] = [];
  for (let n = 1; nth('Process ID', n) !== undefined; n++) {
    const pid = numberCell(nth('Process ID', n)).value;
    const detail = procs.children.find((c) => c.title === `Process ID: ${nth('Process ID', n)}`);
    out.push({
      gpu_instance_id: numberCell(nth('GPU instance ID', n)).value,
      compute_instance_id: numberCell(nth('Compute instance ID', n)).value,
      pid,
      process_name: detail?.values.get('Name') ?? '',
      used_memory_mb: mib(detail?.values.get('Used GPU Memory')),
    });
  }
  return out;
}
