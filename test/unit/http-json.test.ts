/** Bounded JSON over HTTP against a real local server: every failure is a value with a stable code. */
import { getEventListeners } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpJson } from '../../src/sources/http-json.js';
import { freePort } from '../helpers/ports.js';

let base = '';
let lastBody = '';
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    lastBody = body;
    switch (req.url) {
      case '/ok':
        return res.end('{"queue_running":[]}');
      case '/empty':
        return res.end('');
      case '/500':
        res.statusCode = 500;
        return res.end('{"error":"boom"}');
      case '/html':
        return res.end('<html>502 Bad Gateway</html>');
      case '/big':
        return res.end(`"${'x'.repeat(10_000)}"`);
      case '/hang':
        return; // never answers
      default:
        res.statusCode = 404;
        return res.end();
    }
  });
});

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe('httpJson', () => {
  it('parses a JSON answer', async () => {
    expect(await httpJson(`${base}/ok`, { timeoutMs: 10_000 })).toMatchObject({ ok: true, status: 200, body: { queue_running: [] } });
  });

  it('reads an empty body as no value', async () => {
    expect(await httpJson(`${base}/empty`, { timeoutMs: 10_000 })).toMatchObject({ ok: true, body: undefined });
  });

  it('sends a body as JSON', async () => {
    await httpJson(`${base}/ok`, { timeoutMs: 10_000, method: 'POST', body: { delete: ['p1'] } });
    expect(lastBody).toBe('{"delete":["p1"]}');
  });

  it('names an error status', async () => {
    expect(await httpJson(`${base}/500`, { timeoutMs: 10_000 })).toMatchObject({ ok: false, code: 'HTTP_STATUS', status: 500, message: 'HTTP 500' });
  });

  it('names a body that is not JSON, with its start', async () => {
    expect(await httpJson(`${base}/html`, { timeoutMs: 10_000 })).toMatchObject({ ok: false, code: 'HTTP_BAD_JSON', message: 'not JSON: "<html>502 Bad Gateway</html>"' });
  });

  it('stops reading a body past the cap', async () => {
    expect(await httpJson(`${base}/big`, { timeoutMs: 10_000, maxBytes: 1000 })).toMatchObject({ ok: false, code: 'HTTP_TOO_LARGE', message: 'body larger than 1000 bytes' });
  });

  it('gives up on a server that does not answer, at the deadline', async () => {
    const r = await httpJson(`${base}/hang`, { timeoutMs: 300 });
    expect(r).toMatchObject({ ok: false, code: 'HTTP_TIMEOUT', message: 'no answer within 300 ms' });
    expect(r.durationMs).toBeGreaterThanOrEqual(290);
  });

  it('names a port nobody listens on', async () => {
    expect(await httpJson(`http://127.0.0.1:${await freePort()}/`, { timeoutMs: 10_000 })).toMatchObject({ ok: false, code: 'HTTP_UNREACHABLE', message: 'ECONNREFUSED' });
  });

  it('stops when the caller aborts', async () => {
    const ac = new AbortController();
    const pending = httpJson(`${base}/hang`, { timeoutMs: 10_000, signal: ac.signal });
    ac.abort();
    expect(await pending).toMatchObject({ ok: false, code: 'HTTP_UNREACHABLE' });
  });

  it('holds nothing of a long-lived caller signal once each exchange is over', async () => {
    // A collector passes the same signal to every poll for as long as podscope runs.
    const collector = new AbortController();
    for (let i = 0; i < 20; i++) {
      await httpJson(`${base}/ok`, { timeoutMs: 10_000, signal: collector.signal });
      await httpJson(`${base}/hang`, { timeoutMs: 20, signal: collector.signal });
    }
    expect(getEventListeners(collector.signal, 'abort')).toHaveLength(0);
    // Node's AbortSignal.any() would have left a dependant signal behind per call (nodejs/node#55351).
    const dependants = Object.getOwnPropertySymbols(collector.signal).find((k) => k.description === 'kDependantSignals');
    const held = dependants === undefined ? undefined : (collector.signal as unknown as Record<symbol, Set<unknown> | undefined>)[dependants];
    expect(held?.size ?? 0).toBe(0);
  });

  it('tells a deadline from the caller aborting when both are set', async () => {
    const collector = new AbortController();
    expect(await httpJson(`${base}/hang`, { timeoutMs: 50, signal: collector.signal })).toMatchObject({ ok: false, code: 'HTTP_TIMEOUT' });
    const aborted = new AbortController();
    aborted.abort();
    expect(await httpJson(`${base}/hang`, { timeoutMs: 10_000, signal: aborted.signal })).toMatchObject({ ok: false, code: 'HTTP_UNREACHABLE' });
  });
});
