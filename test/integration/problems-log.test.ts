/**
 * The problem journal in a running podscope: what /debug/status lists as a problem is in the log
 * once when it starts and once when it ends, and /ready says the same word as /debug/status.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startPodscope, type Podscope } from '../../src/main.js';
import { SimComfyUI } from '../../src/sim/comfyui.js';
import { freePort } from '../helpers/ports.js';
import { jsonGetter, until } from '../helpers/comfy-rig.js';

let pod: Podscope | null = null;
let sim: SimComfyUI | null = null;
afterEach(async () => {
  await pod?.close();
  await sim?.stop();
  pod = null;
  sim = null;
});

describe('problems in the log', () => {
  it('a ComfyUI never reached is logged as a problem at once, and its end when ComfyUI comes up', async () => {
    const port = await freePort();
    const lines: Array<{ level: string; message: string; component?: string }> = [];
    pod = await startPodscope({
      env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: `http://127.0.0.1:${port}`, PODSCOPE_GPU: 'off', PODSCOPE_COMFYUI_POLL_MS: '200', LOG_LEVEL: 'info' },
      sinks: [{ write: (l) => lines.push(JSON.parse(l)) }],
    });
    const get = jsonGetter(`http://127.0.0.1:${pod.port}`);
    const started = await until(() => lines.find((l) => l.message.startsWith('problem: comfyui COMFYUI_UNREACHABLE')), 15_000);
    expect(started.level).toBe('warn');
    expect(started.message).toMatch(/does not answer: .*ECONNREFUSED/);
    // Both answers use one word while ComfyUI is awaited.
    expect((await get('/debug/status')).body.status).toBe('starting');
    expect((await get('/ready')).body.status).toBe('starting');

    sim = new SimComfyUI({ port });
    await sim.start();
    const ended = await until(() => lines.find((l) => l.message.startsWith('problem ended after') && l.message.endsWith('comfyui COMFYUI_UNREACHABLE')), 15_000);
    expect(ended.level).toBe('info');
    await until(async () => (await get('/ready')).status === 200, 15_000);
    expect((await get('/debug/status')).body.status).toBe('idle');
    expect(lines.filter((l) => l.message.startsWith('problem: comfyui COMFYUI_UNREACHABLE'))).toHaveLength(1);
  }, 40_000);
});
