/**
 * Every answer carries X-Request-Id, whichever path made it: JSON, text, metrics, an error, a 404,
 * a 405, a log stream, a file download. Through a real server, since podscope reads request
 * headers from Node's parsed headers there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRig, type Rig } from '../helpers/comfy-rig.js';

let rig: Rig;
beforeAll(async () => {
  rig = await startRig();
});
afterAll(async () => {
  await rig.close();
});

describe('X-Request-Id on every answer', () => {
  const cases: Array<[string, string, number]> = [
    ['JSON', '/debug/status', 200],
    ['text', '/debug/status?format=text', 200],
    ['metrics', '/metrics', 200],
    ['readiness', '/ready', 200],
    ['an unknown path', '/nope', 404],
    ['an unknown job', '/debug/workflow?job_id=nope', 404],
    ['a bad parameter', '/debug/logs?lines=abc', 400],
  ];
  it.each(cases)('%s (%s)', async (_name, path, status) => {
    if (path === '/ready') {
      const { until } = await import('../helpers/wait.js');
      await until(async () => (await fetch(`${rig.base}/ready`)).status === 200);
    }
    const res = await fetch(`${rig.base}${path}`, { headers: { 'x-request-id': 'harness-7' } });
    await res.arrayBuffer();
    expect(res.status).toBe(status);
    expect(res.headers.get('x-request-id')).toBe('harness-7');
  });

  it('a method not allowed, with its Allow header', async () => {
    const res = await fetch(`${rig.base}/debug/status`, { method: 'POST', headers: { 'x-request-id': 'harness-8' } });
    await res.arrayBuffer();
    expect(res.status).toBe(405);
    expect(res.headers.get('x-request-id')).toBe('harness-8');
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });

  it('a log stream', async () => {
    const ac = new AbortController();
    const res = await fetch(`${rig.base}/debug/logs?follow=1`, { headers: { 'x-request-id': 'harness-9' }, signal: ac.signal });
    expect(res.headers.get('x-request-id')).toBe('harness-9');
    ac.abort();
  });

  it('a generated id when the client sends none, the same in the error body', async () => {
    const res = await fetch(`${rig.base}/nope`);
    const body = (await res.json()) as { error: { request_id: string } };
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.error.request_id).toBe(res.headers.get('x-request-id'));
  });
});

describe('access lines', () => {
  it('go to stdout and stay out of the log buffer, where podscope’s other records are kept', async () => {
    const { startPodscope } = await import('../../src/main.js');
    const stdout: string[] = [];
    const pod = await startPodscope({
      env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: 'http://127.0.0.1:9', PODSCOPE_GPU: 'off', LOG_LEVEL: 'info' },
      sinks: [{ write: (line) => stdout.push(line) }],
    });
    try {
      const base = `http://127.0.0.1:${pod.port}`;
      await (await fetch(`${base}/debug/status`, { headers: { 'x-request-id': 'access-probe' } })).arrayBuffer();
      expect(stdout.some((l) => l.includes('"request_id":"access-probe"') && l.includes('"access":true'))).toBe(true);
      const logs = (await (await fetch(`${base}/debug/logs?source=podscope&lines=1000`)).json()) as { lines: Array<{ message: string }> };
      expect(logs.lines.some((l) => l.message.startsWith('podscope listening'))).toBe(true);
      expect(logs.lines.some((l) => l.message.includes('/debug/status'))).toBe(false);
    } finally {
      await pod.close();
    }
  });
});
