/**
 * Every error code the server can send, each sent by a request that earns it, in the error
 * envelope of contract section 3 (code, message, request id). The list of codes is read from the
 * type that declares them, so a code added there without a request here fails this file.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPodscope, type Podscope } from '../../src/main.js';
import { GpuState } from '../../src/state/gpu.js';
import { LOOPBACK, REMOTE, testPod } from '../helpers/pod.js';

const DECLARED = [...readFileSync(new URL('../../src/http/errors.ts', import.meta.url), 'utf8').matchAll(/\| '([A-Z_]+)'/g)].map((m) => m[1]!);

// The real server, for what Node's parser refuses before any route (the in-process app never sees it).
let pod: Podscope;
beforeAll(async () => {
  pod = await startPodscope({ env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: 'http://127.0.0.1:9', PODSCOPE_GPU: 'off', LOG_LEVEL: 'silent' }, sinks: [] });
});
afterAll(() => pod.close());

/** A raw exchange with the real server: what Node's parser refuses never reaches a route. */
function raw(request: string): Promise<{ status: number; body: { error: { code: string; request_id: string } } }> {
  return new Promise((resolve, reject) => {
    const socket = connect(pod.port, '127.0.0.1');
    let got = '';
    socket.on('data', (d) => (got += d));
    socket.on('close', () => {
      const [head, body] = got.split('\r\n\r\n', 2) as [string, string];
      resolve({ status: Number(head.split(' ')[1]), body: JSON.parse(body) });
    });
    socket.on('error', reject);
    socket.write(request);
  });
}

/** A GPU state whose readings fail: a bug in a view, as the server meets it. */
class BrokenGpu extends GpuState {
  override readings(): never {
    throw new Error('a view failed');
  }
}

const dev = { PODSCOPE_ENV: 'development' };
const REQUESTS: Record<string, () => Promise<{ status: number; body: { error: { code: string; request_id: string } } }>> = {
  INVALID_PARAMETER: async () => answer(await testPod().app.request('/debug/jobs?limit=abc', {}, LOOPBACK)),
  BAD_REQUEST: () => raw('NOT HTTP AT ALL\r\n\r\n'),
  UNAUTHORIZED: async () => answer(await testPod({ PODSCOPE_TOKEN: 'a-token-of-sixteen' }).app.request('/debug/status', {}, LOOPBACK)),
  FORBIDDEN: async () => answer(await testPod().app.request('/debug/status', {}, REMOTE)),
  NOT_FOUND: async () => answer(await testPod().app.request('/no/such/endpoint', {}, LOOPBACK)),
  JOB_NOT_FOUND: async () => answer(await testPod().app.request('/debug/workflow?job_id=never-seen', {}, LOOPBACK)),
  NO_JOB: async () => answer(await testPod().app.request('/debug/workflow', {}, LOOPBACK)),
  METHOD_NOT_ALLOWED: async () => answer(await testPod().app.request('/debug/status', { method: 'POST' }, LOOPBACK)),
  PAYLOAD_TOO_LARGE: async () => answer(await testPod(dev).app.request('/debug/log-level', { method: 'POST', body: 'x'.repeat(1024 * 1024), headers: { 'content-type': 'application/json' } }, LOOPBACK)),
  INTERNAL: async () => answer(await testPod({}, undefined, { parts: { gpu: new BrokenGpu({ startedAt: 0, intervalMs: 1000, heldCount: undefined, timelineCapacity: 10 }) } }).app.request('/debug/memory', {}, LOOPBACK)),
  UNAVAILABLE: async () => answer(await testPod().app.request('/debug/artifacts/file?filename=a.png', {}, LOOPBACK)),
  HEADERS_TOO_LARGE: () => raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(20_000)}\r\n\r\n`),
};

async function answer(res: Response) {
  return { status: res.status, body: (await res.json()) as { error: { code: string; request_id: string } } };
}

const STATUS: Record<string, number> = {
  INVALID_PARAMETER: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  NO_JOB: 404,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
  UNAVAILABLE: 503,
};

describe('every error code the server can send', () => {
  it('has a request here that earns it, and a status', () => {
    expect(Object.keys(REQUESTS).sort()).toEqual([...DECLARED].sort());
    expect(Object.keys(STATUS).sort()).toEqual([...DECLARED].sort());
  });

  it.each(DECLARED)('%s comes in the error envelope with its status and a request id', async (code) => {
    const { status, body } = await REQUESTS[code]!();
    expect(status).toBe(STATUS[code]);
    expect(body.error.code).toBe(code);
    expect(body.error.request_id).toMatch(/\S/);
  });
});
