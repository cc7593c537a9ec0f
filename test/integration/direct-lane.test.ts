/**
 * The direct lane: a GET of exactly /health, /ready or /debug/status is answered from node:http
 * without Hono. It must be indistinguishable from Hono's answer (body, status, headers, request
 * id, count, access line), and hand Hono everything else: other forms of the path, other methods,
 * refusals and failures. A query no route reads (`?via=hono`) sends the same request through Hono.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { testPod, type TestPod } from '../helpers/pod.js';
import { fixtureRows } from '../helpers/gpu-rows.js';

const T0 = Date.parse('2026-11-24T12:00:00.000Z');

interface Served {
  pod: TestPod;
  base: string;
  /** How many requests reached Hono. */
  viaHono: () => number;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function serve(env: Record<string, string> = {}): Promise<Served> {
  const pod = testPod(env, () => T0);
  let hono = 0;
  const dispatch = pod.app.fetch;
  pod.app.fetch = (request, bindings, ctx) => {
    hono++;
    return dispatch(request, bindings, ctx);
  };
  const server = createServer(pod.listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { pod, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, viaHono: () => hono };
}

/** Status, body and headers, less the two that differ between any two answers. */
async function answer(res: Response) {
  const headers = Object.fromEntries([...res.headers].filter(([k]) => k !== 'date' && k !== 'x-request-id'));
  return { status: res.status, headers, body: await res.text() };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function accessLines(s: Served, requestId: string): any[] {
  return s.pod.lines.map((l) => JSON.parse(l)).filter((l) => l.request_id === requestId && l.access === true);
}

/** Makes /ready answer 200: ComfyUI answers over HTTP and its websocket, and a GPU sample is fresh. */
function allReady(s: Served): void {
  const now = s.pod.state.now();
  s.pod.state.comfy.httpAnswered(now);
  s.pod.state.comfy.connected('podscope-test');
  s.pod.state.gpu!.applySample(now, fixtureRows('h200-x1.drv590.load'));
}

const routes = ['/health', '/ready', '/debug/status'] as const;

describe('the direct lane', () => {
  it.each(routes)('answers GET %s without Hono', async (path) => {
    const s = await serve();
    const res = await fetch(`${s.base}${path}`);
    await res.arrayBuffer();
    expect(s.viaHono()).toBe(0);
  });

  it.each(routes)('answers GET %s exactly as Hono does', async (path) => {
    const s = await serve();
    const direct = await answer(await fetch(`${s.base}${path}`));
    const hono = await answer(await fetch(`${s.base}${path}?via=hono`));
    expect(s.viaHono()).toBe(1);
    expect(direct).toEqual(hono);
    expect(direct.headers['content-length']).toBe(String(Buffer.byteLength(direct.body)));
  });

  it.each(routes)('answers curl on %s with the same pretty JSON as Hono', async (path) => {
    const s = await serve();
    const headers = { 'user-agent': 'curl/8.5.0' };
    const direct = await answer(await fetch(`${s.base}${path}`, { headers }));
    const hono = await answer(await fetch(`${s.base}${path}?via=hono`, { headers }));
    expect(direct.body.endsWith('}\n')).toBe(true);
    expect(direct).toEqual(hono);
  });

  it('answers /ready 200 when every check passes, and 503 with the problem once one is raised, as Hono does', async () => {
    const s = await serve();
    allReady(s);
    const ready = await answer(await fetch(`${s.base}/ready`));
    s.pod.state.health.raise('host', 'DISK_NEARLY_FULL', '/workspace is 99% full');
    const direct = await answer(await fetch(`${s.base}/ready`));
    const hono = await answer(await fetch(`${s.base}/ready?via=hono`));
    expect(ready.status).toBe(200);
    expect(direct.status).toBe(503);
    expect(JSON.parse(direct.body).problems[0].code).toBe('DISK_NEARLY_FULL');
    expect(direct).toEqual(hono);
  });

  it("echoes the client's X-Request-Id and continues its trace", async () => {
    const s = await serve();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await fetch(`${s.base}/debug/status`, { headers: { 'x-request-id': 'harness-42', traceparent } });
    await res.arrayBuffer();
    expect(res.headers.get('x-request-id')).toBe('harness-42');
    const line = s.pod.lines.map((l) => JSON.parse(l)).find((l) => l.request_id === 'harness-42');
    expect(line).toMatchObject({ trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: '00f067aa0ba902b7', access: true });
  });

  it('writes one access line per request, with route, path and status', async () => {
    const s = await serve();
    const res = await fetch(`${s.base}/debug/status`, { headers: { 'x-request-id': 'poll-1' } });
    await res.arrayBuffer();
    const lines = accessLines(s, 'poll-1');
    expect(lines).toHaveLength(1);
    expect(lines[0].data).toMatchObject({ method: 'GET', route: '/debug/status', path: '/debug/status', status: 200 });
    expect(typeof lines[0].data.latency_ms).toBe('number');
  });

  it('counts its requests in podscope_http_requests_total under the route', async () => {
    const s = await serve();
    for (let i = 0; i < 3; i++) await (await fetch(`${s.base}/debug/status`)).arrayBuffer();
    const text = await (await fetch(`${s.base}/metrics`)).text();
    expect(text).toContain('podscope_http_requests_total{method="GET",route="/debug/status",status="200"} 3');
  });
});

// Both lanes: `?via=hono` sends the same probe through Hono.
const probes = ['/health', '/ready', '/health?via=hono', '/ready?via=hono'];

describe('probes', () => {
  it.each(probes)('a 200 from GET %s is counted but writes no access line', async (path) => {
    const s = await serve();
    allReady(s);
    const res = await fetch(`${s.base}${path}`, { headers: { 'x-request-id': 'probe-1' } });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(accessLines(s, 'probe-1')).toEqual([]);
    const route = path.split('?')[0];
    expect(await (await fetch(`${s.base}/metrics`)).text()).toContain(`podscope_http_requests_total{method="GET",route="${route}",status="200"} 1`);
  });

  it.each(['/ready', '/ready?via=hono'])('a 503 from GET %s writes its access line', async (path) => {
    const s = await serve();
    const res = await fetch(`${s.base}${path}`, { headers: { 'x-request-id': 'probe-2' } });
    await res.arrayBuffer();
    expect(res.status).toBe(503);
    expect(accessLines(s, 'probe-2')[0]?.data).toMatchObject({ route: '/ready', status: 503 });
  });

  it.each(probes)('with PODSCOPE_LOG_PROBES=true, a 200 from GET %s writes its access line', async (path) => {
    const s = await serve({ PODSCOPE_LOG_PROBES: 'true' });
    allReady(s);
    const res = await fetch(`${s.base}${path}`, { headers: { 'x-request-id': 'probe-3' } });
    await res.arrayBuffer();
    expect(accessLines(s, 'probe-3')[0]?.data).toMatchObject({ method: 'GET', route: path.split('?')[0], status: 200 });
  });
});

describe('what the direct lane leaves to Hono', () => {
  it.each([
    ['a trailing slash', 'GET', '/debug/status/', 200],
    ['a query', 'GET', '/debug/status?format=text', 200],
    ['a percent-encoded path', 'GET', '/%64ebug/status', 200],
    ['HEAD', 'HEAD', '/health', 200],
    ['another method', 'POST', '/health', 405],
  ])('%s (%s %s)', async (_name, method, path, status) => {
    const s = await serve();
    const res = await fetch(`${s.base}${path}`, { method });
    await res.arrayBuffer();
    expect(res.status).toBe(status);
    expect(s.viaHono()).toBe(1);
  });

  /** A HEAD and a GET of `path`: the HEAD's headers and body, the GET's body. */
  async function headAndGet(path: string) {
    const s = await serve();
    const head = await fetch(`${s.base}${path}`, { method: 'HEAD' });
    const get = await fetch(`${s.base}${path}`);
    const body = Buffer.from(await get.arrayBuffer());
    expect(await head.arrayBuffer()).toHaveProperty('byteLength', 0);
    expect(head.status).toBe(get.status);
    expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'));
    return { length: Number(head.headers.get('content-length')), body };
  }

  // The answers that move (an uptime, a sample) may change length between the two requests.
  it.each([['/health'], ['/debug/status'], ['/debug/status?format=text'], ['/metrics']])('HEAD %s: the GET\'s headers, a Content-Length included, without the body', async (path) => {
    const { length } = await headAndGet(path);
    expect(length).toBeGreaterThan(0);
  });

  it('HEAD of an unknown path: the GET\'s headers, its exact Content-Length, without the body', async () => {
    const { length, body } = await headAndGet('/nowhere');
    expect(length).toBe(body.byteLength);
  });

  it('a request without the token, refused with the same 401 as through Hono', async () => {
    const s = await serve({ PODSCOPE_TOKEN: 'tok-direct-lane-0123456789' });
    const direct = await answer(await fetch(`${s.base}/debug/status`));
    const hono = await answer(await fetch(`${s.base}/debug/status?via=hono`));
    expect(direct.status).toBe(401);
    expect(direct).toEqual({ ...hono, body: direct.body });
    expect(JSON.parse(direct.body).error.code).toBe('UNAUTHORIZED');
  });

  it('a request through a proxy without a token, refused with 403', async () => {
    const s = await serve();
    const res = await fetch(`${s.base}/debug/status`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
  });

  it('a request with the token, answered directly', async () => {
    const s = await serve({ PODSCOPE_TOKEN: 'tok-direct-lane-0123456789' });
    const res = await fetch(`${s.base}/debug/status`, { headers: { authorization: 'Bearer tok-direct-lane-0123456789' } });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(s.viaHono()).toBe(0);
  });

  it('a view that fails: Hono answers 500 and logs the error once, with one access line', async () => {
    const s = await serve();
    s.pod.state.condition = () => {
      throw new Error('condition broke');
    };
    const res = await fetch(`${s.base}/ready`, { headers: { 'x-request-id': 'broken-1' } });
    const body = (await res.json()) as { error: { code: string; request_id: string } };
    expect(res.status).toBe(500);
    expect(body.error).toMatchObject({ code: 'INTERNAL', request_id: 'broken-1' });
    const lines = s.pod.lines.map((l) => JSON.parse(l)).filter((l) => l.request_id === 'broken-1');
    expect(lines.filter((l) => l.level === 'error')).toHaveLength(1);
    expect(lines.filter((l) => l.access)).toHaveLength(1);
  });
});
