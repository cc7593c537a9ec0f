#!/usr/bin/env node
// Writes the compatibility table in docs/comfyui.md from the conformance suite's own results:
// test-results/comfyui-<version>.json (vitest's report, one per release), the facts the scenarios
// recorded (test-results/comfyui-facts-<version>.json) and the time each release took
// (test-results/comfyui-matrix.json). Run `npm run test:comfyui` first, then
// `node test/comfyui/compat-table.mjs`. Nothing in the table is written by hand.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RESULTS = join(ROOT, 'test-results');
const DOC = join(ROOT, 'docs/comfyui.md');
const START = '<!-- compat-table:start (written by test/comfyui/compat-table.mjs) -->';
const END = '<!-- compat-table:end -->';

const matrix = JSON.parse(readFileSync(join(RESULTS, 'comfyui-matrix.json'), 'utf8'));
const MODES = [
  ['tap', '(with the tap node)'],
  ['observer', '(without the tap node)'],
];

/** Each scenario's outcome in one release and mode: passed, failed, or the reason it cannot hold. */
function outcomes(version) {
  const report = JSON.parse(readFileSync(join(RESULTS, `comfyui-${version}.json`), 'utf8'));
  const out = { tap: new Map(), observer: new Map() };
  for (const file of report.testResults) {
    for (const a of file.assertionResults) {
      const mode = MODES.find(([, label]) => a.ancestorTitles.some((t) => t.includes(label)))?.[0];
      if (!mode) continue;
      const limit = /^(.*) \[(not on ComfyUI [^\]]+)\]$/.exec(a.title);
      out[mode].set(limit ? limit[1] : a.title, limit ? { status: 'limit', reason: limit[2] } : { status: a.status });
    }
  }
  return out;
}

const T = {
  found: 'finds a job by its job id within 1 s of the POST, and never shows it under another id',
  outcome: "reports the outcome soon after the submitter's terminal event",
  raised: 'reports a node that raises, with its exception and traceback',
  times: 'keeps times in order and leaves unknown node times null, never invented',
  progress: 'raises progress with the work, never lowers it, and stays below 95 until the last 10 % of the run',
  rejected: 'tells a rejected prompt apart, with the reason',
  logs: 'keeps each log line once, from the file and the websocket, at ComfyUI\u2019s time',
  twin: 'charges a prompt and its cached twin, posted together, each its own `Prompt executed in` line',
  quick: 'charges three quick prompts in a row each its own `Prompt executed in` line',
  lost: 'declares a job of a ComfyUI that died and stayed down lost within 30 s, and says why',
};

const FACT_WORDS = {
  node_times: { comfyui: "ComfyUI's own (tap)", observed: 'observed (progress frames)', unknown: 'unknown (null)' },
  queued_time: { known: 'yes', unknown: 'unknown (null)' },
  rejection_job_id: { 'job id': 'yes', 'no job id': 'reason only, no job id' },
  node_vram: { reported: 'yes', absent: 'CUDA only¹' },
};
/** Words that differ without the tap (what only the tap can report). */
const OBSERVER_WORDS = { node_vram: { absent: 'no (the tap reports it)' } };

/** A cell: what the facts say when every scenario behind it passed; ✗ names a failing one. */
function cell(results, mode, titles, facts, factName) {
  for (const t of titles) {
    const r = results[mode].get(T[t]);
    if (!r) return '–';
    if (r.status === 'limit') return `no (${r.reason.replace(/^not on ComfyUI [^:]+: /, '')})`;
    if (r.status !== 'passed') return `✗ (${t} fails)`;
  }
  if (!factName) return 'yes';
  const value = facts?.[mode]?.[factName];
  if (!value) return '–';
  return (mode === 'observer' ? OBSERVER_WORDS[factName]?.[value] : undefined) ?? FACT_WORDS[factName][value] ?? value;
}

const ROWS = [
  ['job found by its job id', ['found']],
  ['outcome, with the error and traceback', ['outcome', 'raised']],
  ['node start and end times', ['times'], 'node_times'],
  ['queued time', ['times'], 'queued_time'],
  ['rejected prompt under its job id', ['rejected'], 'rejection_job_id'],
  ['progress', ['progress']],
  ['per-node peak VRAM', ['times'], 'node_vram'],
  ["a prompt's own log lines (its run and its `Prompt executed in`)²", ['logs', 'twin', 'quick']],
  ['a dead ComfyUI’s job declared lost', ['lost']],
];

const versions = matrix.map((m) => m.version);
const head = ['capability', ...versions.flatMap((v) => [`${v} tap`, `${v} without`])];
const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
const perRelease = versions.map((v) => ({ v, results: outcomes(v), facts: existsSync(join(RESULTS, `comfyui-facts-${v}.json`)) ? JSON.parse(readFileSync(join(RESULTS, `comfyui-facts-${v}.json`), 'utf8')) : null }));
for (const [name, titles, factName] of ROWS) {
  lines.push(`| ${name} | ${perRelease.flatMap(({ results, facts }) => ['tap', 'observer'].map((mode) => cell(results, mode, titles, facts, factName))).join(' | ')} |`);
}
const timing = matrix.map((m) => `ComfyUI ${m.version}: ${m.seconds} s (${m.passed} passed, ${m.failed} failed, ${m.skipped} marked with the reason they cannot run there)`).join('; ');
const table = [
  START,
  lines.join('\n'),
  '',
  `¹ The tap reports a node's peak VRAM from torch's CUDA allocator; these runs are on CPU, where it is absent (never 0).`,
  "² The `got prompt` line, printed at the POST, is charged to its prompt only with the tap.",
  '',
  `Suite time on CI's 2-core machine, per release: ${timing}.`,
  END,
].join('\n');

const doc = readFileSync(DOC, 'utf8');
const at = doc.indexOf(START);
const end = doc.indexOf(END);
if (at < 0 || end < 0) throw new Error(`${DOC} has no compat-table markers`);
writeFileSync(DOC, doc.slice(0, at) + table + doc.slice(end + END.length));
console.log(table);
