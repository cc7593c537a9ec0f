/**
 * The tap node's Python tests that run inside the real ComfyUI (comfyui/tests/test_tap_in_comfyui.py):
 * its real PromptServer, executor, validation and core nodes, with ComfyUI's own Python.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { comfyLaunch } from './real-comfy.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

it('the tap passes its Python tests inside the real ComfyUI', () => {
  const launch = comfyLaunch();
  const r = spawnSync(launch.command, ['-m', 'unittest', '-v', 'comfyui/tests/test_tap_in_comfyui.py'], {
    cwd: ROOT,
    env: { ...process.env, ...launch.env, PODSCOPE_COMFYUI_DIR: launch.cwd },
    encoding: 'utf8',
    timeout: 180_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  expect(out, out).toMatch(/Ran \d+ tests/);
  expect(out).not.toMatch(/skipped=/);
  expect(r.status, out).toBe(0);
});
