/**
 * A fake nvidia-smi for tests and the demo: a real executable (`bin/fake-nvidia-smi`) that answers
 * the same command lines as the real one from recorded real outputs.
 *
 * It is configured by the environment variable FAKE_NVIDIA_SMI, either inline JSON or the path of
 * a JSON file that is re-read on every run (so a test can change the mode while podscope samples):
 *
 *   { "fixture": "h100-80gb-hbm3-x1.drv590.load", "gpus": 2, "mode": "ok", "utilization": 50 }
 *
 * Modes: ok, hang, slow (slow_ms), exit (exit_code: 9, 12, 15, 18, 255 with the real error text),
 * lost (lost_index: that GPU answers with the real device-handle error, the others with rows),
 * garbage, empty. `utilization` may be a number or "wave" (changes over time).
 *
 * With `-lms N` (or `-l N`, `--loop-ms=N`, `--loop=N`) it loops as the real one does: a sample
 * every N ms until killed, the config re-read before each, so a test can make a running loop go
 * silent (hang), fail (exit) or lose a GPU.
 */
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface FakeSmiConfig {
  fixture?: string;
  gpus?: number;
  mode?: 'ok' | 'hang' | 'slow' | 'exit' | 'lost' | 'garbage' | 'empty';
  exit_code?: number;
  slow_ms?: number;
  lost_index?: number;
  /** A value for every GPU, or one per GPU (by index; the list repeats). */
  utilization?: number | 'wave' | number[];
  memory_used_mb?: number | number[];
  power_w?: number | number[];
  /** The query answers for only the first this many GPUs (silently); `-L` still lists `gpus`. */
  query_gpus?: number;
  /** Values for named --query-gpu fields on every GPU (`{"remapped_rows.pending": "Yes"}`). */
  values?: Record<string, string>;
  /** Print this line before the rows (noise mixed with data). */
  noise?: string;
  /** In hang mode, also ignore SIGTERM (the runner must use SIGKILL on the group). */
  ignore_term?: boolean;
  /** In hang mode, start a grandchild that hangs too (the runner must kill the group). */
  spawn_child?: boolean;
  /** Fields this "driver" rejects although its help lists them. */
  reject?: string[];
  /**
   * In hang mode, leave a process in another session holding stdout open for this long: to the
   * runner the run never ends even after SIGKILL, like nvidia-smi stuck in the driver.
   */
  hold_pipes_ms?: number;
  /** Under `-lms`/`-l`, the column header: printed once at the start, or before every sample. */
  loop_header?: 'once' | 'every';
  /** Under `-lms`/`-l`, exit 0 after this many samples (an nvidia-smi, or a wrapper, that does not loop). */
  loop_exit_after?: number;
  /** Under `-lms`/`-l`, write each sample in pieces that split its lines (a pipe read mid-line). */
  loop_split_writes?: boolean;
}

export const DEFAULT_FIXTURES_DIR = fileURLToPath(new URL('../../test/fixtures/nvidia-smi/', import.meta.url));

/** Real error texts by exit code (fixtures/errors, with the source threads in SOURCES.md). */
const ERROR_FILES: Record<number, string> = {
  9: 'driver-not-loaded.exit9.txt',
  15: 'device-handle-gpu-is-lost.txt',
  18: 'nvml-version-mismatch.exit18.txt',
  255: 'nvml-no-supported-gpus.exit255.txt',
};
// Exit 12 has no recorded text in the fixtures; this is the library-missing message nvidia-smi prints.
const NVML_MISSING_TEXT = "NVIDIA-SMI couldn't find libnvidia-ml.so library in your system. Please make sure that the NVIDIA Display Driver is properly installed and present in your system.\nPlease also try adding directory that contains libnvidia-ml.so to your system PATH.\n";

export function loadFakeConfig(raw: string | undefined): FakeSmiConfig {
  if (!raw) return {};
  const text = raw.trim().startsWith('{') ? raw : readFileSync(raw, 'utf8');
  return JSON.parse(text) as FakeSmiConfig;
}

interface Table {
  header: string[];
  units: Array<string | null>;
  rows: string[][];
}

/** Reads a `--format=csv` capture: header with `[unit]`, values with units. */
export function readCsvCapture(text: string): Table {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const head = lines[0]!.split(',').map((h) => h.trim());
  const header = head.map((h) => h.replace(/\s*\[[^\]]*\]$/, ''));
  const units = head.map((h) => /\[([^\]]*)\]$/.exec(h)?.[1] ?? null);
  const rows = lines.slice(1).map((l) => l.split(',').map((c) => c.trim()));
  return { header, units, rows };
}

/** Aliases from a real `--help-query-gpu`: each name → every name on its line. */
export function aliasGroups(help: string): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const line of help.split('\n')) {
    if (!line.startsWith('"')) continue;
    const names = [...line.matchAll(/"([A-Za-z0-9_.]+)"/g)].map((m) => m[1]!);
    for (const n of names) groups.set(n, names);
  }
  return groups;
}

function helpFor(dir: string, fixture: string): string | null {
  const driver = /\.drv(\d+)/.exec(fixture)?.[1];
  const candidates = [
    `${fixture.replace(/\.(load|idle)$/, '')}.help-query-gpu.txt`,
    driver && Number(driver) >= 600 ? 'rtx2080s-x1.drv610.help-query-gpu.txt' : null,
    driver && Number(driver) >= 530 ? 'h100-80gb-hbm3-x1.drv590.help-query-gpu.txt' : null,
    'rtx2080s-x1.drv465.help-query-gpu.txt',
  ].filter((c): c is string => !!c);
  for (const c of candidates) if (existsSync(join(dir, c))) return readFileSync(join(dir, c), 'utf8');
  return null;
}

function stripUnit(value: string, unit: string | null): string {
  if (!unit || value.startsWith('[') || value === 'N/A') return value;
  return value.endsWith(` ${unit}`) ? value.slice(0, -unit.length - 1) : value;
}

function uuidFor(base: string, i: number): string {
  if (i === 0) return base;
  const hex = i.toString(16).padStart(4, '0');
  return `${base.slice(0, -4)}${hex}`;
}

function busFor(base: string, i: number): string {
  if (i === 0) return base;
  const m = /^([0-9A-Fa-f]+):([0-9A-Fa-f]{2}):(.*)$/.exec(base);
  if (!m) return base;
  const bus = ((Number.parseInt(m[2]!, 16) + i * 0x10) % 256).toString(16).toUpperCase().padStart(2, '0');
  return `${m[1]}:${bus}:${m[3]}`;
}

export interface FakeResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Answers one nvidia-smi command line. Pure apart from reading fixtures; `now` drives "wave". */
export function answer(args: string[], cfg: FakeSmiConfig, dir = DEFAULT_FIXTURES_DIR, now = Date.now()): FakeResult {
  const fixture = cfg.fixture ?? 'h100-80gb-hbm3-x1.drv590.load';
  const gpuCsv = join(dir, `${fixture}.query-gpu.csv`);
  const mode = cfg.mode ?? 'ok';
  if (mode === 'exit') {
    const code = cfg.exit_code ?? 255;
    const file = ERROR_FILES[code];
    const text = code === 12 ? NVML_MISSING_TEXT : file ? readFileSync(join(dir, 'errors', file), 'utf8') : 'Unknown Error\n';
    return { stdout: text, stderr: '', code };
  }
  if (mode === 'garbage') return { stdout: '\u0000\u00ff<html>502 Bad Gateway</html>\nnot,a,csv\n', stderr: '', code: 0 };
  if (mode === 'empty') return { stdout: '', stderr: '', code: 0 };

  const table = readCsvCapture(readFileSync(gpuCsv, 'utf8'));
  const help = helpFor(dir, fixture);
  const aliases = help ? aliasGroups(help) : new Map<string, string[]>();
  const columnOf = (name: string): number => {
    const direct = table.header.indexOf(name);
    if (direct >= 0) return direct;
    for (const alias of aliases.get(name) ?? []) {
      const i = table.header.indexOf(alias);
      if (i >= 0) return i;
    }
    return -1;
  };

  const helpArg = args.includes('--help-query-gpu');
  if (helpArg) {
    if (help) return { stdout: help, stderr: '', code: 0 };
    return { stdout: `List of valid properties to query for the switch "--query-gpu=":\n\n${table.header.map((h) => `"${h}"\n`).join('\n')}`, stderr: '', code: 0 };
  }

  const count = Math.max(1, cfg.gpus ?? 1);
  const capture = (kind: string) => [join(dir, `${fixture}.${kind}`), join(dir, `${fixture.replace(/\.(load|idle)$/, '')}.${kind}`)].find((f) => existsSync(f));
  if (args.includes('-L')) {
    // The recorded listing when the capture has one; else one line per GPU from the query capture.
    const recorded = capture('L.txt');
    if (recorded) return { stdout: readFileSync(recorded, 'utf8'), stderr: '', code: 0 };
    const nameCol = table.header.indexOf('name');
    const uuidCol0 = table.header.indexOf('uuid');
    const lines = Array.from({ length: count }, (_, i) =>
      mode === 'lost' && i === (cfg.lost_index ?? count - 1)
        ? `Unable to determine the device handle for GPU${i}: ${busFor(table.rows[0]![table.header.indexOf('pci.bus_id')]!, i).replace(/^0000/, '')}: Unknown Error`
        : `GPU ${i}: ${table.rows[0]![nameCol]} (UUID: ${uuidFor(table.rows[0]![uuidCol0]!, i)})`,
    );
    return { stdout: lines.map((l) => `${l}\n`).join(''), stderr: '', code: 0 };
  }
  if (args.includes('-q')) {
    const recorded = capture('q.txt');
    return recorded ? { stdout: readFileSync(recorded, 'utf8'), stderr: '', code: 0 } : { stdout: '\n==============NVSMI LOG==============\n\n', stderr: '', code: 0 };
  }

  const gpuQuery = args.find((a) => a.startsWith('--query-gpu='));
  const appsQuery = args.find((a) => a.startsWith('--query-compute-apps='));
  const format = args.find((a) => a.startsWith('--format='))?.slice(9).split(',') ?? [];
  const nounits = format.includes('nounits');
  const noheader = format.includes('noheader');

  if (appsQuery) {
    const fields = appsQuery.slice('--query-compute-apps='.length).split(',');
    const appsFile = join(dir, `${fixture}.query-compute-apps.csv`);
    if (!existsSync(appsFile)) return { stdout: '', stderr: '', code: 0 };
    const apps = readCsvCapture(readFileSync(appsFile, 'utf8'));
    const appAlias: Record<string, string> = { used_memory: 'used_gpu_memory', name: 'process_name', gpu_serial: 'gpu_serial' };
    const cols = fields.map((f) => {
      const i = apps.header.indexOf(f);
      return i >= 0 ? i : apps.header.indexOf(appAlias[f] ?? f);
    });
    const badIndex = cols.indexOf(-1);
    if (badIndex >= 0) return { stdout: `Field "${fields[badIndex]}" is not a valid field to query.\n\n`, stderr: '', code: 2 };
    const lines = apps.rows.map((r) => cols.map((c) => (nounits ? stripUnit(r[c] ?? '', apps.units[c] ?? null) : (r[c] ?? ''))).join(', '));
    return { stdout: (noheader ? '' : `${fields.join(', ')}\n`) + lines.map((l) => `${l}\n`).join(''), stderr: '', code: 0 };
  }

  if (!gpuQuery) return { stdout: 'NVIDIA System Management Interface (fake)\n', stderr: '', code: 0 };
  const fields = gpuQuery.slice('--query-gpu='.length).split(',');
  const cols = fields.map((f) => (cfg.reject?.includes(f) ? -1 : columnOf(f)));
  const bad = cols.indexOf(-1);
  if (bad >= 0) return { stdout: `Field "${fields[bad]}" is not a valid field to query.\n\n`, stderr: '', code: 2 };

  const base = table.rows[0]!;
  const uuidCol = table.header.indexOf('uuid');
  const busCol = table.header.indexOf('pci.bus_id');
  const out: string[] = [];
  if (!noheader) out.push(cols.map((c) => `${table.header[c]}${table.units[c] ? ` [${table.units[c]}]` : ''}`).join(', '));
  if (cfg.noise) out.push(cfg.noise);
  let code = 0;
  for (let i = 0; i < count; i++) {
    const row = [...base];
    if (uuidCol >= 0) row[uuidCol] = uuidFor(base[uuidCol]!, i);
    if (busCol >= 0) row[busCol] = busFor(base[busCol]!, i);
    const set = (name: string, value: string) => {
      const c = table.header.indexOf(name);
      if (c >= 0) row[c] = `${value}${table.units[c] ? ` ${table.units[c]}` : ''}`;
    };
    set('index', String(i));
    for (const [name, value] of Object.entries(cfg.values ?? {})) set(name, value);
    const of = <T>(v: T | T[]): T => (Array.isArray(v) ? v[i % v.length]! : v);
    if (cfg.utilization !== undefined) {
      const u = cfg.utilization === 'wave' ? Math.round(50 + 45 * Math.sin(now / 5000 + i)) : of(cfg.utilization);
      if (!row[table.header.indexOf('utilization.gpu')]?.startsWith('[')) set('utilization.gpu', String(u));
    }
    if (cfg.memory_used_mb !== undefined) set('memory.used', String(of(cfg.memory_used_mb)));
    if (cfg.power_w !== undefined) {
      for (const p of ['power.draw', 'power.draw.average', 'power.draw.instant']) set(p, of(cfg.power_w).toFixed(2));
    }
    if (mode === 'lost' && i === (cfg.lost_index ?? count - 1)) {
      const bus = busCol >= 0 ? row[busCol]!.replace(/^0000/, '') : '0000:34:00.0';
      out.push(`Unable to determine the device handle for GPU${i}: ${bus}: Unknown Error`);
      code = cfg.exit_code ?? 15;
      continue;
    }
    if (cfg.query_gpus !== undefined && i >= cfg.query_gpus) continue;
    out.push(cols.map((c) => (nounits ? stripUnit(row[c] ?? '', table.units[c] ?? null) : (row[c] ?? ''))).join(', '));
  }
  return { stdout: out.map((l) => `${l}\n`).join(''), stderr: '', code };
}

/** `-lms N`, `-l N` (seconds), `--loop-ms=N`, `--loop=N`: the loop period in ms and the arguments without it. */
export function loopOf(argv: string[]): { periodMs: number | null; rest: string[] } {
  const rest: string[] = [];
  let periodMs: number | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = /^--loop(-ms)?=(\d+)$/.exec(a);
    if (eq) periodMs = Number(eq[2]) * (eq[1] ? 1 : 1000);
    else if (a === '-lms' || a === '-l') periodMs = Number(argv[++i] ?? 5) * (a === '-lms' ? 1 : 1000);
    else rest.push(a);
  }
  return { periodMs, rest };
}

function readConfig(env: NodeJS.ProcessEnv): FakeSmiConfig {
  try {
    return loadFakeConfig(env.FAKE_NVIDIA_SMI);
  } catch (err) {
    process.stderr.write(`fake-nvidia-smi: bad FAKE_NVIDIA_SMI: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

/** The loop: one sample per period from the config as it is then; silent while it says hang. */
async function loop(args: string[], periodMs: number, env: NodeJS.ProcessEnv, dir: string): Promise<void> {
  const write = (text: string) => new Promise<void>((resolve) => (process.stdout.write(text) ? resolve() : process.stdout.once('drain', resolve)));
  for (let n = 0; ; n++) {
    const cfg = readConfig(env);
    if (cfg.mode === 'hang' && cfg.ignore_term && process.listenerCount('SIGTERM') === 0) process.on('SIGTERM', () => undefined);
    if (cfg.mode !== 'hang') {
      const r = answer(args, cfg, dir);
      if (cfg.mode === 'exit' || (r.code !== 0 && r.code !== 15)) {
        process.stdout.write(r.stdout);
        process.exitCode = r.code;
        return;
      }
      const header = answer(args.map((a) => (a.startsWith('--format=') ? a.replace(',noheader', '') : a)), { ...cfg, gpus: 1, mode: 'ok', noise: undefined }, dir).stdout.split('\n')[0]!;
      const text = (cfg.loop_header === 'every' || (cfg.loop_header === 'once' && n === 0) ? `${header}\n` : '') + r.stdout;
      if (cfg.loop_split_writes) {
        // Pieces that cut lines in the middle, a moment apart.
        for (let at = 0; at < text.length; at += 7) {
          await write(text.slice(at, at + 7));
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      } else {
        await write(text);
      }
      if (r.stderr) process.stderr.write(r.stderr);
      if (cfg.loop_exit_after !== undefined && n + 1 >= cfg.loop_exit_after) return;
    }
    await new Promise((resolve) => setTimeout(resolve, periodMs));
  }
}

/** The executable's main: answers, or hangs, or is slow, or loops, as configured. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const cfg = readConfig(env);
  const dir = env.FAKE_NVIDIA_SMI_FIXTURES ?? DEFAULT_FIXTURES_DIR;
  const { periodMs, rest } = loopOf(argv);
  if (periodMs !== null && cfg.mode !== 'hang') return loop(rest, Math.max(10, periodMs), env, dir);
  if (cfg.mode === 'hang') {
    if (cfg.ignore_term) process.on('SIGTERM', () => undefined);
    if (cfg.hold_pipes_ms) {
      const { spawn } = await import('node:child_process');
      spawn(process.execPath, ['-e', `setTimeout(() => {}, ${cfg.hold_pipes_ms})`, env.FAKE_NVIDIA_SMI_MARKER ?? 'fake-nvidia-smi-holder'], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    }
    if (cfg.spawn_child) {
      const { spawn } = await import('node:child_process');
      // The marker argument lets a test find this grandchild with ps.
      spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)', env.FAKE_NVIDIA_SMI_MARKER ?? 'fake-nvidia-smi-child'], { stdio: 'ignore' });
    }
    setInterval(() => undefined, 1 << 30);
    return;
  }
  if (cfg.mode === 'slow') await new Promise((r) => setTimeout(r, cfg.slow_ms ?? 2000));
  const r = answer(argv, cfg, dir);
  process.stdout.write(r.stdout);
  if (r.stderr) process.stderr.write(r.stderr);
  process.exitCode = r.code;
}
