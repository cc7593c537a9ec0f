/**
 * Names the real ComfyUI for one run of the conformance suite. `npm run test:comfyui`
 * (test/comfyui/matrix.mjs) prepares each release in ../shared/comfyui and runs the suite once per
 * release with COMFYUI_DIR set; COMFYUI_DIR may also name a user's own checkout (run with
 * COMFYUI_PYTHON or python3). Run directly, without COMFYUI_DIR, vitest gets the newest release in
 * ../shared/comfyui, extracted by its setup.sh into .cache/comfyui-<version>.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export default function setup(): void {
  const own = process.env.COMFYUI_DIR;
  let dir: string;
  if (own) {
    dir = resolve(own);
    if (!existsSync(join(dir, 'main.py'))) throw new Error(`COMFYUI_DIR=${own} has no main.py: point it at a ComfyUI checkout`);
  } else {
    const shared = resolve(ROOT, '../shared/comfyui');
    const newest = existsSync(shared)
      ? readdirSync(shared)
          .map((f) => /^ComfyUI-(\d+\.\d+\.\d+)\.tar\.gz$/.exec(f)?.[1])
          .filter((v): v is string => !!v)
          .sort((a, b) => b.localeCompare(a, undefined, { numeric: true }))[0]
      : undefined;
    if (!newest) throw new Error(`no ComfyUI to test against: ${shared} holds no release and COMFYUI_DIR is not set`);
    const cache = join(ROOT, `.cache/comfyui-${newest}`);
    execFileSync('bash', [join(shared, 'setup.sh'), cache, newest], { stdio: 'inherit' });
    dir = join(cache, 'ComfyUI');
    process.env.PODSCOPE_CONFORMANCE_STUBS = join(shared, 'stubs');
  }
  process.env.PODSCOPE_CONFORMANCE_COMFYUI = dir;
  const file = join(dir, 'comfyui_version.py');
  process.env.PODSCOPE_CONFORMANCE_VERSION ??= (existsSync(file) && /__version__\s*=\s*"([^"]+)"/.exec(readFileSync(file, 'utf8'))?.[1]) || 'unknown';
}
