/**
 * How answers are serialized and sent (http/respond.ts, http/env.ts, http/errors.ts, format.ts):
 * compact for programs, pretty for people, secrets scrubbed last, shared snapshots serialized once,
 * and every answer with its request id.
 */
import { Hono, type Context } from 'hono';
import { describe, expect, it } from 'vitest';
import { markSnapshot, sendBody, sendJson, sendText, serialize, wantsPretty } from '../../src/http/respond.js';
import { requestHeader } from '../../src/http/env.js';
import { ApiError, errorBody } from '../../src/http/errors.js';
import { iso, round } from '../../src/format.js';
import { Scrubber } from '../../src/secrets.js';
import type { AppEnv } from '../../src/http/env.js';

const SECRET = 'hf_abcdefghijklmnop';
const ctx = { scrubber: new Scrubber([SECRET]) };

/** A Hono app with one route; requests carry the request info the outer fetch would set. */
function app(handler: (c: Context<AppEnv>) => Response | Promise<Response>) {
  const a = new Hono<AppEnv>();
  a.get('/x', handler);
  return (path = '/x', headers: Record<string, string> = {}) =>
    a.request(path, { headers }, { podscope: { requestId: 'rid-1', traceId: 't'.repeat(32), spanId: 's'.repeat(16), started: 0 } });
}

describe('wantsPretty', () => {
  it.each([
    ['?pretty', {}, true],
    ['?pretty=1', {}, true],
    ['', { 'user-agent': 'curl/8.5.0' }, true],
    ['', { 'user-agent': 'CURL/7' }, true],
    ['', { 'user-agent': 'node' }, false],
    ['', {}, false],
    ['?prettyish', {}, false],
    ['?a=1&pretty', {}, true],
    ['?pretty&a=1', {}, true],
    ['?a=pretty', {}, false],
    ['?xpretty=1', {}, false],
  ])('is %s for %j', async (query, headers, pretty) => {
    const req = app((c) => c.text(String(wantsPretty(c))));
    expect(await (await req(`/x${query}`, headers as Record<string, string>)).text()).toBe(String(pretty));
  });
});

describe('serialize', () => {
  it('is compact JSON for programs', () => {
    expect(serialize({ a: 1, b: [2] }, false, ctx.scrubber)).toBe('{"a":1,"b":[2]}');
  });

  it('is indented JSON with a trailing newline for people', () => {
    expect(serialize({ a: 1 }, true, ctx.scrubber)).toBe('{\n  "a": 1\n}\n');
  });

  it('scrubs a known secret value wherever it hides', () => {
    expect(serialize({ env: { X: `token=${SECRET}` } }, false, ctx.scrubber)).toBe('{"env":{"X":"token=[REDACTED]"}}');
  });
});

describe('sendJson', () => {
  it('answers JSON, no-store, with the request id', async () => {
    const res = await app((c) => sendJson(c, ctx, { ok: true }))();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-request-id')).toBe('rid-1');
    expect(await res.text()).toBe('{"ok":true}');
  });

  it('answers with the status and extra headers given, header names in lower case', async () => {
    const res = await app((c) => sendJson(c, ctx, { e: 1 }, 405, { Allow: 'GET, HEAD' }))();
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers without a request id header when no request info was set', async () => {
    const a = new Hono();
    a.get('/x', (c) => sendJson(c, ctx, {}));
    expect((await a.request('/x')).headers.get('x-request-id')).toBeNull();
  });

  it('serializes a shared snapshot once per form, however many requests read it', async () => {
    let reads = 0;
    const snapshot = markSnapshot({
      get value() {
        reads++;
        return 1;
      },
    });
    const req = app((c) => sendJson(c, ctx, snapshot));
    for (let i = 0; i < 3; i++) expect(await (await req()).text()).toBe('{"value":1}');
    for (let i = 0; i < 2; i++) expect(await (await req('/x?pretty')).text()).toBe('{\n  "value": 1\n}\n');
    expect(reads).toBe(2);
  });

  it('sends a shared snapshot as UTF-8 bytes, non-ASCII text and scrubbing included', async () => {
    const snapshot = markSnapshot({ name: 'café ✓ 画像', leaked: SECRET });
    const res = await app((c) => sendJson(c, ctx, snapshot))();
    const expected = Buffer.from('{"name":"café ✓ 画像","leaked":"[REDACTED]"}', 'utf8');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(expected);
  });

  it('scrubs a secret out of a body on its way out', async () => {
    const res = await app((c) => sendJson(c, ctx, { leaked: SECRET }))();
    expect(await res.text()).toBe('{"leaked":"[REDACTED]"}');
  });
});

describe('sendText and sendBody', () => {
  it('ends text with one newline', async () => {
    expect(await (await app((c) => sendText(c, ctx, 'a'))()).text()).toBe('a\n');
    expect(await (await app((c) => sendText(c, ctx, 'a\n'))()).text()).toBe('a\n');
  });

  it('answers text as plain UTF-8, scrubbed', async () => {
    const res = await app((c) => sendText(c, ctx, `key ${SECRET}`))();
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('key [REDACTED]\n');
  });

  it('sends a body as it is with the content type given', async () => {
    const res = await app((c) => sendBody(c, '# HELP x\n', 200, 'text/plain; version=0.0.4; charset=utf-8'))();
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.headers.get('x-request-id')).toBe('rid-1');
    expect(await res.text()).toBe('# HELP x\n');
  });
});

describe('requestHeader', () => {
  const request = new Request('http://x/', { headers: { 'x-request-id': 'from-request' } });

  it('reads Node’s parsed headers when podscope serves over node:http', () => {
    expect(requestHeader(request, { incoming: { headers: { 'x-request-id': 'from-node' } } } as never, 'x-request-id')).toBe('from-node');
  });

  it('joins a repeated header as the Web API does', () => {
    expect(requestHeader(request, { incoming: { headers: { forwarded: ['a', 'b'] } } } as never, 'forwarded')).toBe('a, b');
  });

  it('reads the Request when there are no Node headers (a test calling the app directly)', () => {
    expect(requestHeader(request, undefined, 'x-request-id')).toBe('from-request');
    expect(requestHeader(request, {}, 'x-missing')).toBeUndefined();
  });
});

describe('errorBody', () => {
  it('carries code, message, ids, details and help', () => {
    const err = new ApiError(404, 'JOB_NOT_FOUND', 'No job j1.', { details: { job_id: 'j1' }, help: 'GET /debug/queue lists jobs.' });
    expect(errorBody(err, 'rid', 'tid')).toEqual({ error: { code: 'JOB_NOT_FOUND', message: 'No job j1.', request_id: 'rid', trace_id: 'tid', details: { job_id: 'j1' }, help: 'GET /debug/queue lists jobs.' } });
  });

  it('has empty details and a null help when none were given', () => {
    expect(errorBody(new ApiError(500, 'INTERNAL', 'x'), 'r', 't').error).toMatchObject({ details: {}, help: null });
  });
});

describe('format', () => {
  it('writes epoch milliseconds as ISO 8601 and keeps null null', () => {
    expect(iso(0)).toBe('1970-01-01T00:00:00.000Z');
    expect(iso(null)).toBeNull();
  });

  it('rounds to the digits asked, one by default', () => {
    expect(round(1.25)).toBe(1.3);
    expect(round(1.23456, 3)).toBe(1.235);
  });
});
