/**
 * Traces off costs nothing: without an OTLP endpoint the podscope process never imports
 * OpenTelemetry. The real bin runs with a module hook that writes down every module it loads.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startBin, type Running } from '../helpers/spawn.js';

const HOOK = new URL('../helpers/record-modules.mjs', import.meta.url).href;

let running: Running | null = null;
afterEach(async () => {
  running?.child.kill('SIGTERM');
  await running?.exited;
  running = null;
});

async function modulesLoaded(env: Record<string, string>): Promise<string[]> {
  const file = join(mkdtempSync(join(tmpdir(), 'podscope-modules-')), 'modules.txt');
  running = await startBin({ PODSCOPE_GPU: 'off', COMFYUI_URL: 'http://127.0.0.1:9', RECORD_MODULES_FILE: file, ...env }, ['serve'], ['--import', HOOK]);
  // Asked once over HTTP, so the request path's modules are in too.
  expect((await fetch(`${running.url}/debug/status`)).status).toBe(200);
  return readFileSync(file, 'utf8').trim().split('\n');
}

describe('traces off', () => {
  it('loads no OpenTelemetry module when no OTLP endpoint is set', async () => {
    const modules = await modulesLoaded({});
    expect(modules.some((m) => m.includes('/dist/main.js'))).toBe(true);
    expect(modules.filter((m) => m.includes('@opentelemetry') || m.includes('/dist/sources/otlp.js'))).toEqual([]);
  });

  it('loads them when one is set (so the check above can fail)', async () => {
    const modules = await modulesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' });
    expect(modules.some((m) => m.includes('@opentelemetry/sdk-trace'))).toBe(true);
  });
});
