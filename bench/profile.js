#!/usr/bin/env node
/**
 * Reads a V8 CPU profile (`node --cpu-prof`, or `BENCH_PROFILE=dir npm run bench`) and prints the
 * functions that took the most time: by self time, and by total time with what they called.
 * `node bench/profile.js FILE|DIR [rows] [filter]`: a directory means its newest .cpuprofile; a
 * filter keeps the total-time rows whose name or file contains it.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const [target, rowsArg, filter] = process.argv.slice(2);
if (!target) {
  process.stderr.write('usage: node bench/profile.js FILE|DIR [rows] [filter]\n');
  process.exit(2);
}
const file = statSync(target).isDirectory()
  ? join(target, readdirSync(target).filter((f) => f.endsWith('.cpuprofile')).sort((a, b) => statSync(join(target, b)).mtimeMs - statSync(join(target, a)).mtimeMs)[0] ?? '')
  : target;
const profile = JSON.parse(readFileSync(file, 'utf8'));
const rows = Number(rowsArg ?? 30);

const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (id) => {
  const f = nodes.get(id).callFrame;
  return `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
};

const selfTime = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  selfTime.set(id, (selfTime.get(id) ?? 0) + dt);
  total += dt;
});
const bySelf = new Map();
const byTotal = new Map();
for (const [id, t] of selfTime) {
  bySelf.set(name(id), (bySelf.get(name(id)) ?? 0) + t);
  // A recursive function counts once per sample in total time.
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(cur);
    if (seen.has(k) || k.startsWith('(root)')) continue;
    seen.add(k);
    byTotal.set(k, (byTotal.get(k) ?? 0) + t);
  }
}
const show = (title, map, keep = () => true) => {
  process.stdout.write(`${title}\n`);
  for (const [k, t] of [...map].filter(([k]) => keep(k)).sort((a, b) => b[1] - a[1]).slice(0, rows)) process.stdout.write(`${((t / total) * 100).toFixed(1).padStart(6)} %  ${k}\n`);
};
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\n`);
show('self time', bySelf);
show('total time', byTotal, (k) => !filter || k.includes(filter));
