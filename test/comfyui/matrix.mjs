#!/usr/bin/env node
// `npm run test:comfyui`: the conformance suite against every ComfyUI release in
// ../shared/comfyui (COMFYUI_VERSIONS=0.3.64,0.3.50 narrows it), one release after another, each in
// its own vitest run with its results in test-results/comfyui-<version>.json. COMFYUI_DIR runs it
// against one checkout of the user's own instead. The sum over the releases goes to
// test-results/comfyui.json (what CI counts); the time each release took to
// test-results/comfyui-matrix.json (what docs/comfyui.md quotes); `node
// test/comfyui/compat-table.mjs` turns the results into the compatibility table.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHARED = resolve(ROOT, '../shared/comfyui');
const RESULTS = join(ROOT, 'test-results');

/** The releases ../shared/comfyui offers, newest first: ComfyUI-<version>.tar.gz. */
function offered() {
  if (!existsSync(SHARED)) return [];
  return readdirSync(SHARED)
    .map((f) => /^ComfyUI-(\d+\.\d+\.\d+)\.tar\.gz$/.exec(f)?.[1])
    .filter(Boolean)
    .sort((a, b) => compare(b, a));
}

function compare(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

/** Each release to run: its version, its checkout, and the stubs its Python needs. */
function plan() {
  if (process.env.COMFYUI_DIR) return [{ version: null, dir: resolve(process.env.COMFYUI_DIR), stubs: process.env.PODSCOPE_CONFORMANCE_STUBS ?? null }];
  const all = offered();
  if (all.length === 0) throw new Error(`no ComfyUI to test against: ${SHARED} has no ComfyUI-<version>.tar.gz and COMFYUI_DIR is not set`);
  const asked = process.env.COMFYUI_VERSIONS?.split(',').map((v) => v.trim()).filter(Boolean) ?? all;
  const unknown = asked.filter((v) => !all.includes(v));
  if (unknown.length > 0) throw new Error(`COMFYUI_VERSIONS names ${unknown.join(', ')}, which ${SHARED} does not hold (it holds ${all.join(', ')})`);
  return asked.map((version) => {
    const cache = join(ROOT, `.cache/comfyui-${version}`);
    // setup.sh extracts the release and installs Debian's Python packages; it returns at once when done before.
    execFileSync('bash', [join(SHARED, 'setup.sh'), cache, version], { stdio: 'inherit' });
    return { version, dir: join(cache, 'ComfyUI'), stubs: join(SHARED, 'stubs') };
  });
}

mkdirSync(RESULTS, { recursive: true });
const runs = [];
let failed = false;
for (const release of plan()) {
  const version = release.version ?? /__version__\s*=\s*"([^"]+)"/.exec(readFileSync(join(release.dir, 'comfyui_version.py'), 'utf8'))?.[1] ?? 'unknown';
  const out = join(RESULTS, `comfyui-${version}.json`);
  // What the suite records it saw this release do (test/comfyui/release.ts), fresh for each run.
  rmSync(join(RESULTS, `comfyui-facts-${version}.json`), { force: true });
  console.log(`\n== the conformance suite against ComfyUI ${version} (${release.dir})`);
  const started = Date.now();
  const r = spawnSync('npx', ['vitest', 'run', '--config', 'vitest.comfyui.config.ts', `--outputFile.json=${out}`, ...process.argv.slice(2)], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, COMFYUI_DIR: release.dir, PODSCOPE_CONFORMANCE_VERSION: version, ...(release.stubs ? { PODSCOPE_CONFORMANCE_STUBS: release.stubs } : {}) },
  });
  const seconds = Math.round((Date.now() - started) / 1000);
  const result = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : null;
  runs.push({ version, seconds, passed: result?.numPassedTests ?? 0, failed: result?.numFailedTests ?? null, skipped: result ? result.numPendingTests + (result.numTodoTests ?? 0) : null, results: `test-results/comfyui-${version}.json` });
  if (r.status !== 0 || !result) failed = true;
}

const sum = (k) => runs.reduce((n, r) => n + (r[k] ?? 0), 0);
writeFileSync(join(RESULTS, 'comfyui.json'), JSON.stringify({ numPassedTests: sum('passed'), numFailedTests: sum('failed') + runs.filter((r) => r.failed === null).length, numPendingTests: sum('skipped'), numTodoTests: 0, releases: runs }, null, 2));
writeFileSync(join(RESULTS, 'comfyui-matrix.json'), JSON.stringify(runs, null, 2));
console.log('\n== conformance, per ComfyUI release');
for (const r of runs) console.log(`ComfyUI ${r.version}: ${r.passed} passed, ${r.failed ?? '?'} failed, ${r.skipped ?? '?'} marked with the reason they cannot run there, in ${r.seconds} s`);
process.exit(failed ? 1 : 0);
