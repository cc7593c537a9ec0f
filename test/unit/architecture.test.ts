/**
 * The layering README's "How it is built" describes, read from the imports of src/ and held:
 *
 *   sources → collectors → state → views / http / metrics, with main.ts the only composition root.
 *
 * Each file fails by name with the rule it breaks. Shared types and pure helpers live in leaves
 * (src/shared/ and the top-level modules other than main.ts and demo.ts) that every layer may
 * import and that import only each other.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SRC = join(ROOT, 'src');

type Layer = 'shared' | 'sources' | 'logs' | 'state' | 'collectors' | 'views' | 'metrics' | 'http' | 'cli' | 'sim' | 'root' | 'demo';

/** What each layer may import (besides itself). */
const ALLOWED: Record<Layer, readonly Layer[]> = {
  shared: ['shared'],
  sources: ['shared'],
  logs: ['shared'],
  state: ['shared'],
  collectors: ['shared', 'sources', 'logs', 'state'],
  views: ['shared', 'state'],
  metrics: ['shared', 'state'],
  http: ['shared', 'state', 'views', 'metrics'],
  cli: ['shared'],
  sim: ['shared', 'sources'],
  demo: ['shared', 'sim', 'root'],
  root: ['shared', 'sources', 'logs', 'state', 'collectors', 'views', 'metrics', 'http'],
};

function layerOf(file: string): Layer {
  const rel = relative(SRC, file);
  if (rel === 'main.ts') return 'root';
  if (rel === 'demo.ts') return 'demo';
  if (!rel.includes('/')) return 'shared'; // config, format, log, secrets, version
  return rel.split('/')[0] as Layer;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every relative import of a file (static, re-export, dynamic), resolved to a .ts path. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'/gm),
    ...text.matchAll(/^\s*import\s+'(\.[^']+)'/gm),
    ...text.matchAll(/\bimport\(\s*'(\.[^']+)'\s*\)/g),
  ].map((m) => m[1]!);
  return specs.map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts'));
}

const ALL = files(SRC);
const GRAPH = new Map(ALL.map((f) => [f, importsOf(f)]));
const name = (f: string) => relative(ROOT, f);

describe('the layering of src/', () => {
  it('every import goes the way the layers allow', () => {
    const wrong: string[] = [];
    for (const [file, targets] of GRAPH) {
      const from = layerOf(file);
      for (const t of targets) {
        const to = layerOf(t);
        if (to !== from && !ALLOWED[from].includes(to)) wrong.push(`${name(file)} (${from}) imports ${name(t)} (${to}): ${from} may import only ${[from, ...ALLOWED[from]].join(', ')}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('no file imports one that does not exist', () => {
    const missing = [...GRAPH].flatMap(([f, ts]) => ts.filter((t) => !GRAPH.has(t)).map((t) => `${name(f)} imports ${name(t)}`));
    expect(missing).toEqual([]);
  });

  it('no two modules import each other, however indirectly', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].map(name).join(' → '));
        return;
      }
      state.set(f, 'open');
      for (const t of GRAPH.get(f) ?? []) visit(t, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of ALL) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('only main.ts composes: collectors receive the state they write and never register into PodState', () => {
    const offences: string[] = [];
    for (const f of ALL.filter((x) => layerOf(x) === 'collectors')) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/\bstate\.(comfy|gpu|host|logs|artifacts|artifactFiles)\s*=[^=]|\breadiness\.set\(|\baddConnections\(|\baddBuffer\(|\bnew (ComfyState|GpuState|LogStore|ArtifactLedger)\(/g)) {
        offences.push(`${name(f)}: ${m[0].trim()}`);
      }
    }
    expect(offences).toEqual([]);
  });

  it('a scrape reads state and never moves it', () => {
    const offences: string[] = [];
    for (const f of ALL.filter((x) => layerOf(x) === 'metrics')) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/\b(?:state|gpu|comfy|tracker|ledger|logs)\.(advance|apply\w*|set\w*|record\w*|raise|clear|lose\w*|annotate\w*)\(/g)) offences.push(`${name(f)}: ${m[0]}`);
    }
    expect(offences).toEqual([]);
  });

  it('routes and views do no I/O: no file system, child process, network or fetch', () => {
    const offences: string[] = [];
    for (const f of ALL.filter((x) => ['http', 'views'].includes(layerOf(x)))) {
      const text = readFileSync(f, 'utf8');
      // Types are allowed (the direct lane answers on the node:http response it is handed), and so is
      // a method named fetch (Hono's app.fetch): only the global fetch goes out.
      for (const m of text.matchAll(/^import (?!type\b)[^;]*?from '(node:(?:fs|fs\/promises|child_process|net|dgram|http2?|https))'|(?<![.\w])fetch\(/gm)) offences.push(`${name(f)}: ${m[0]}`);
    }
    expect(offences).toEqual([]);
  });
});
