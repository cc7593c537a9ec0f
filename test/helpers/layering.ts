/**
 * The layering rules of src/, as a checker over a source tree: every import edge of every file
 * (any quoting, `import()`, `require`, re-exports), classified by layer, and each wrong edge named
 * with its file and the rule it breaks. test/unit/architecture.test.ts holds src/ to it, and checks
 * the checker on copies of src/ with each kind of wrong edge put in.
 *
 *   sources → collectors → state → views / http / metrics, with main.ts the only composition root.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';

export type Layer =
  | 'shared'
  | 'config'
  | 'logging'
  | 'version'
  | 'sources'
  | 'comfy-log'
  | 'state'
  | 'collectors'
  | 'views'
  | 'metrics'
  | 'finish'
  | 'http'
  | 'cli'
  | 'sim'
  | 'root'
  | 'demo';

/** What each layer may import besides itself. */
export const ALLOWED: Record<Layer, readonly Layer[]> = {
  shared: [],
  config: ['shared'],
  logging: ['shared', 'config'],
  version: ['shared'],
  sources: ['shared', 'config'],
  'comfy-log': ['shared'],
  state: ['shared', 'config'],
  collectors: ['shared', 'config', 'logging', 'sources', 'comfy-log', 'state'],
  views: ['shared', 'state'],
  metrics: ['shared', 'logging', 'state'],
  finish: ['shared', 'state', 'views'],
  http: ['shared', 'logging', 'state', 'views', 'metrics'],
  cli: ['shared', 'version'],
  sim: ['shared', 'sources'],
  demo: ['shared', 'config', 'logging', 'sim', 'root'],
  root: ['shared', 'config', 'logging', 'version', 'sources', 'comfy-log', 'state', 'collectors', 'views', 'metrics', 'finish', 'http'],
};

/**
 * The top-level files by what they are: pure helpers are shared leaves; the configuration (it reads
 * the environment), podscope's own logging (it writes stdout) and the version (it reads
 * package.json) are layers of their own, each open only to the layers that need it.
 */
const TOP_LEVEL: Record<string, Layer> = {
  'format.ts': 'shared',
  'secrets.ts': 'shared',
  'config.ts': 'config',
  'logger.ts': 'logging',
  'version.ts': 'version',
  'main.ts': 'root',
  'demo.ts': 'demo',
};

/** Layers whose files may do no I/O: no file system, child process, network or fetch. */
export const NO_IO: readonly Layer[] = ['shared', 'state', 'views', 'metrics', 'finish', 'http'];

/** Layers that only read the pod's state: typed against its read-only interfaces, never its classes. */
export const READERS: readonly Layer[] = ['views', 'metrics', 'http'];

/** The classes of the state, which readers reach only through their read-only interfaces (PodReader, ComfyReader…). */
const WRITABLE_STATE = /\b(PodState|ComfyState|GpuState|LogStore|EventJournal|ArtifactLedger|HealthBoard|JobTracker|HostState)\b/g;

/** Node's modules that reach the file system, other processes or the network. */
const IO_MODULES = new Set(['fs', 'fs/promises', 'child_process', 'net', 'dgram', 'http', 'https', 'http2', 'tls', 'dns', 'dns/promises', 'worker_threads', 'cluster']);

/** The layer of a file, by its path relative to src/; null for a top-level file nobody classified. */
export function layerOf(rel: string): Layer | null {
  const parts = rel.split(sep).join('/').split('/');
  if (parts.length === 1) return TOP_LEVEL[parts[0]!] ?? null;
  if (parts[0] === 'types') return 'shared'; // declarations for untyped packages
  return parts[0]! in ALLOWED ? (parts[0] as Layer) : null;
}

export interface ImportEdge {
  /** The specifier as written. */
  spec: string;
  /** `import type`, `export type`, or every named binding marked `type`: erased when compiled. */
  typeOnly: boolean;
  line: number;
}

/** The text with comments blanked (newlines kept, so line numbers hold). */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`\\])\/\/.*$/gm, (_m, before: string) => before);
}

// One character class (it takes newlines too): an alternation with `\n` beside it would try both
// ways at every newline, exponential on a long export with no quote or semicolon in it.
const STATIC = /(?:^|[;}\n])\s*(import|export)\s+(type\s+)?([^;'"`]*?)\s*from\s*(['"])([^'"\n]+)\4/g;
const BARE = /(?:^|[;}\n])\s*import\s*(['"])([^'"\n]+)\1/g;
const CALL = /\b(import|require)\s*\(\s*(['"`])([^'"`\n]+)\2\s*\)/g;

/** Every import of a file: static, side-effect, re-export, `import()` and `require()`, with any quoting. */
export function importsOf(text: string): ImportEdge[] {
  const code = withoutComments(text);
  const lineAt = (index: number) => code.slice(0, index).split('\n').length;
  const edges: ImportEdge[] = [];
  for (const m of code.matchAll(STATIC)) {
    const clause = m[3]!;
    const named = /^\{([\s\S]*)\}$/.exec(clause.trim());
    const allTyped = named !== null && named[1]!.split(',').filter((s) => s.trim()).every((s) => /^\s*type\s/.test(s));
    edges.push({ spec: m[5]!, typeOnly: m[2] !== undefined || allTyped, line: lineAt(m.index! + m[0].indexOf(m[1]!)) });
  }
  for (const m of code.matchAll(BARE)) edges.push({ spec: m[2]!, typeOnly: false, line: lineAt(m.index! + m[0].indexOf('import')) });
  for (const m of code.matchAll(CALL)) edges.push({ spec: m[3]!, typeOnly: false, line: lineAt(m.index!) });
  return edges;
}

/** A Node built-in module named by a specifier (bare or `node:`), or null. */
function builtin(spec: string): string | null {
  const name = spec.startsWith('node:') ? spec.slice(5) : spec;
  return IO_MODULES.has(name) ? name : null;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

export interface Offence {
  file: string;
  line: number;
  rule: 'layering' | 'unclassified' | 'missing' | 'cycle' | 'io' | 'composition' | 'scrape' | 'reader';
  message: string;
}

/** `file:line rule: message`, as a failing test prints it. */
export const describeOffence = (o: Offence) => `${o.file}:${o.line} [${o.rule}] ${o.message}`;

/** Every rule broken in the tree under `src`. */
export function checkLayering(src: string): Offence[] {
  const files = tsFiles(src);
  const rel = (f: string) => relative(src, f).split(sep).join('/');
  const out: Offence[] = [];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const from = layerOf(relative(src, file));
    const text = readFileSync(file, 'utf8');
    if (from === null) out.push({ file: rel(file), line: 1, rule: 'unclassified', message: 'a file in no known layer: classify it in test/helpers/layering.ts' });
    const targets: string[] = [];
    for (const edge of importsOf(text)) {
      if (edge.spec.startsWith('.')) {
        const target = normalize(join(dirname(file), edge.spec)).replace(/\.js$/, '.ts');
        targets.push(target);
        if (!files.includes(target)) {
          out.push({ file: rel(file), line: edge.line, rule: 'missing', message: `imports ${edge.spec}, which does not exist` });
          continue;
        }
        const to = layerOf(relative(src, target));
        if (from !== null && to !== null && to !== from && !ALLOWED[from].includes(to)) {
          out.push({ file: rel(file), line: edge.line, rule: 'layering', message: `${from} imports ${rel(target)} (${to}): ${from} may import only ${[from, ...ALLOWED[from]].join(', ')}` });
        }
      } else if (from !== null && NO_IO.includes(from) && !edge.typeOnly && builtin(edge.spec)) {
        out.push({ file: rel(file), line: edge.line, rule: 'io', message: `${from} does no I/O, but imports ${edge.spec}` });
      }
    }
    graph.set(file, targets);
    if (from !== null && NO_IO.includes(from)) {
      const code = withoutComments(text);
      // A method named fetch (Hono's app.fetch) is allowed: only the global fetch goes out.
      for (const m of code.matchAll(/(?<![.\w])fetch\s*\(/g)) out.push({ file: rel(file), line: code.slice(0, m.index).split('\n').length, rule: 'io', message: `${from} does no I/O, but calls fetch()` });
    }
    if (from !== null && READERS.includes(from)) {
      const code = withoutComments(text);
      for (const m of code.matchAll(WRITABLE_STATE)) {
        out.push({ file: rel(file), line: code.slice(0, m.index).split('\n').length, rule: 'reader', message: `${from} reads the state through its read-only interfaces, but names ${m[0]}` });
      }
    }
    if (from === 'metrics') {
      for (const m of text.matchAll(/\b(?:state|gpu|comfy|tracker|ledger|logs)\.(advance|apply\w*|set\w*|record\w*|raise|clear|lose\w*|annotate\w*)\(/g)) {
        out.push({ file: rel(file), line: text.slice(0, m.index).split('\n').length, rule: 'scrape', message: `a scrape reads state and never moves it, but this calls ${m[0]}` });
      }
    }
    if (from === 'collectors') {
      for (const m of text.matchAll(/\bstate\.\w+\s*=[^=]|\breadiness\.set\(|\baddConnections\(|\baddBuffer\(|\bnew PodState\(/g)) {
        out.push({ file: rel(file), line: text.slice(0, m.index).split('\n').length, rule: 'composition', message: `only main.ts composes the pod, but a collector does ${m[0].trim()}` });
      }
    }
  }
  // Cycles, each once, by the path that closes it.
  const seen = new Map<string, 'open' | 'done'>();
  const visit = (f: string, path: string[]) => {
    if (seen.get(f) === 'done') return;
    if (seen.get(f) === 'open') {
      const cycle = [...path.slice(path.indexOf(f)), f].map(rel);
      out.push({ file: cycle[0]!, line: 1, rule: 'cycle', message: `modules import each other: ${cycle.join(' → ')}` });
      return;
    }
    seen.set(f, 'open');
    for (const t of graph.get(f) ?? []) if (graph.has(t)) visit(t, [...path, f]);
    seen.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  return out;
}
