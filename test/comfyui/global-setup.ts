/**
 * Prepares the real ComfyUI once for the conformance suite: the checkout COMFYUI_DIR names (a
 * user's own ComfyUI, run with COMFYUI_PYTHON or python3), else ComfyUI 0.3.64 from
 * ../shared/comfyui, extracted by its setup.sh into .cache/comfyui and run with Debian's Python and
 * the stubs beside it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export default function setup(): void {
  const own = process.env.COMFYUI_DIR;
  if (own) {
    const dir = resolve(own);
    if (!existsSync(join(dir, 'main.py'))) throw new Error(`COMFYUI_DIR=${own} has no main.py: point it at a ComfyUI checkout`);
    process.env.PODSCOPE_CONFORMANCE_COMFYUI = dir;
    return;
  }
  const shared = resolve(ROOT, '../shared/comfyui');
  if (!existsSync(join(shared, 'setup.sh'))) throw new Error(`no ComfyUI to test against: ${shared}/setup.sh is missing and COMFYUI_DIR is not set`);
  const cache = join(ROOT, '.cache/comfyui');
  execFileSync('bash', [join(shared, 'setup.sh'), cache], { stdio: 'inherit' });
  process.env.PODSCOPE_CONFORMANCE_COMFYUI = join(cache, 'ComfyUI');
  process.env.PODSCOPE_CONFORMANCE_STUBS = join(shared, 'stubs');
}
