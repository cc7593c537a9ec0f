/**
 * The ComfyUI release this run of the conformance suite is against, and what a release cannot
 * do: scenarios that ask for something an older release does not have are marked, with the
 * reason, in the results (`[not on ComfyUI 0.3.30: …]` in the test's title), never left out
 * silently. The same list feeds the compatibility table (test/comfyui/compat-table.mjs).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The release ComfyUI runs in this run (from its comfyui_version.py, set by global-setup.ts). */
export const RELEASE = process.env.PODSCOPE_CONFORMANCE_VERSION ?? 'unknown';

/**
 * Where this ComfyUI sends `progress_state` (each node's start and end), read from its own source
 * as podscope's users would have to: nowhere (releases before it existed), to every client, or
 * to the submitter alone.
 */
export function progressStateOf(dir = process.env.PODSCOPE_CONFORMANCE_COMFYUI ?? ''): 'none' | 'broadcast' | 'submitter' {
  const file = join(dir, 'comfy_execution/progress.py');
  if (!existsSync(file)) return 'none';
  const call = /send_sync\(\s*"progress_state",[^)]*\)/.exec(readFileSync(file, 'utf8'))?.[0];
  if (!call) return 'none';
  return /client_id\s*$/.test(call.slice(0, -1).trim()) ? 'submitter' : 'broadcast';
}

/** The release the simulator (src/sim/comfyui.ts) is modelled on, and compared with. */
export const SIMULATED_RELEASE = '0.3.64';

export interface Limit {
  /** The scenario's title, exactly. */
  title: string;
  /** Only in this mode; both when absent. */
  mode?: 'tap' | 'observer';
  /** The first release where the scenario can hold; the ones before it cannot. */
  since: string;
  reason: string;
}

export const LIMITS: Limit[] = JSON.parse(readFileSync(fileURLToPath(new URL('./release-limits.json', import.meta.url)), 'utf8'));

/** -1, 0 or 1 as release a is older than, the same as, or newer than b; unknown counts as newest. */
export function compareReleases(a: string, b: string): number {
  const parse = (v: string) => (/^\d+\.\d+\.\d+$/.test(v) ? v.split('.').map(Number) : [Infinity, 0, 0]);
  const [x, y] = [parse(a), parse(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return 0;
}

/** Why this scenario cannot hold on this release, or null when it must. */
export function limitOf(title: string, mode: 'tap' | 'observer', release = RELEASE, limits: readonly Limit[] = LIMITS): string | null {
  const l = limits.find((x) => x.title === title && (x.mode === undefined || x.mode === mode) && compareReleases(release, x.since) < 0);
  return l ? `not on ComfyUI ${release}: ${l.reason}` : null;
}

/**
 * Records what the suite saw this release do, for the compatibility table:
 * test-results/comfyui-facts-<release>.json, `{ tap: { name: value }, observer: { … } }`.
 */
export function fact(mode: 'tap' | 'observer', name: string, value: string): void {
  const file = fileURLToPath(new URL(`../../test-results/comfyui-facts-${RELEASE}.json`, import.meta.url));
  mkdirSync(dirname(file), { recursive: true });
  const facts = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, string>>) : {};
  facts[mode] = { ...facts[mode], [name]: value };
  writeFileSync(file, `${JSON.stringify(facts, null, 2)}\n`);
}
