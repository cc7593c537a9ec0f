#!/usr/bin/env node
/** bench/results.md from bench/results.json (run by `npm run bench`; `node bench/report.js` redraws it). */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const show = (v) => (typeof v === 'object' && v !== null ? JSON.stringify(v).replaceAll('"', '').replaceAll(',', ', ') : String(v));

export function renderResults({ machine: info, quick, results }) {
  return [
    '# podscope benchmark results',
    '',
    `Machine: ${info.cpu}, ${info.cores} cores, ${info.memory_gb} GB RAM; Node ${info.node}; ${info.date}${quick ? ' (BENCH_QUICK: shortened runs)' : ''}.`,
    '',
    '| measurement | result | goal | met |',
    '| --- | --- | --- | --- |',
    ...results.map((r) => `| ${r.name} | ${r.value} ${r.unit} | ${r.goal} | ${r.met === null ? '-' : r.met ? 'yes' : '**no**'} |`),
    '',
    'Details (baselines measured in the same run):',
    '',
    ...results.map((r) => {
      const extra = Object.entries(r).filter(([k]) => !['name', 'value', 'unit', 'goal', 'met'].includes(k));
      return `- ${r.name}: ${extra.map(([k, v]) => `${k} ${show(v)}`).join(', ') || '-'}`;
    }),
    '',
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  writeFileSync(join(root, 'bench/results.md'), renderResults(JSON.parse(readFileSync(join(root, 'bench/results.json'), 'utf8'))));
}
