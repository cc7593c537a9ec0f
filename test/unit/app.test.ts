import { describe, expect, it } from 'vitest';
import { LOOPBACK, REMOTE, fromAddress, json, memorySink, testPod } from '../helpers/pod.js';
import { accessLog, createLogger } from '../../src/logger.js';
import { Scrubber } from '../../src/secrets.js';

const TOKEN = 'tok_4f9a0c2e7d1b';

async function errorOf(res: Response) {
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const body = (await res.json()) as { error: Record<string, unknown> };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'details', 'help', 'message', 'request_id', 'trace_id']);
  expect(body.error.request_id).toBe(res.headers.get('x-request-id'));
  return body.error;
}

describe('error envelope', () => {
  it('answers 404 NOT_FOUND for an unknown path', async () => {
    const res = await testPod().app.request('/nope', {}, LOOPBACK);
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe('NOT_FOUND');
  });

  it('answers 405 METHOD_NOT_ALLOWED with Allow for a known path', async () => {
    const res = await testPod().app.request('/health', { method: 'DELETE' }, LOOPBACK);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toContain('GET');
    expect((await errorOf(res)).code).toBe('METHOD_NOT_ALLOWED');
  });

  it('answers 400 INVALID_PARAMETER naming the parameter', async () => {
    const pod = testPod({ PODSCOPE_ENV: 'development' });
    const res = await pod.app.request('/debug/log-level', { method: 'POST', body: '{"level":"loud"}' }, LOOPBACK);
    expect(res.status).toBe(400);
    const e = await errorOf(res);
    expect(e.code).toBe('INVALID_PARAMETER');
    expect(e.details).toMatchObject({ parameter: 'level' });
  });

  it('answers 413 to a log-level body over 1 KiB, without reading the rest', async () => {
    const pod = testPod({ PODSCOPE_ENV: 'development' });
    let pulled = 0;
    // 64 MiB offered a chunk at a time, no length declared: podscope stops pulling past its cap.
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 1024) controller.close();
        else controller.enqueue(new Uint8Array(64 * 1024).fill(32));
      },
    });
    const res = await pod.app.request('/debug/log-level', { method: 'POST', body, duplex: 'half' } as RequestInit, LOOPBACK);
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe('PAYLOAD_TOO_LARGE');
    expect(pulled).toBeLessThan(10);
  });

  it('answers 413 to a log-level body whose declared length is over 1 KiB', async () => {
    const pod = testPod({ PODSCOPE_ENV: 'development' });
    const res = await pod.app.request('/debug/log-level', { method: 'POST', body: '{"level":"info"}', headers: { 'content-length': '5000000' } }, LOOPBACK);
    expect(res.status).toBe(413);
  });

  it('changes the log level with a small JSON body, and says what it was', async () => {
    const pod = testPod({ PODSCOPE_ENV: 'development' });
    const res = await pod.app.request('/debug/log-level', { method: 'POST', body: '{"level":"debug"}' }, LOOPBACK);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ level: 'debug', previous: 'info' });
  });

  it('answers 401 UNAUTHORIZED without the token', async () => {
    const res = await testPod({ PODSCOPE_TOKEN: TOKEN }).app.request('/debug/status', {}, LOOPBACK);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await errorOf(res)).code).toBe('UNAUTHORIZED');
  });

  it('answers 403 FORBIDDEN with help naming PODSCOPE_TOKEN to a remote client', async () => {
    const res = await testPod().app.request('/debug/status', {}, REMOTE);
    expect(res.status).toBe(403);
    const e = await errorOf(res);
    expect(e.code).toBe('FORBIDDEN');
    expect(e.help).toContain('PODSCOPE_TOKEN');
  });

  it('answers 500 INTERNAL without a stack trace or secret, and logs it', async () => {
    const pod = testPod({ HF_TOKEN: 'hf_plantedsecret123' });
    pod.app.get('/boom', () => {
      throw new Error('failed with hf_plantedsecret123 at /srv/x.js:1:1');
    });
    const res = await pod.app.request('/boom', {}, LOOPBACK);
    expect(res.status).toBe(500);
    const text = await res.clone().text();
    expect(text).not.toContain('hf_plantedsecret123');
    expect(text).not.toContain('x.js');
    expect((await errorOf(res)).code).toBe('INTERNAL');
    const logged = pod.lines.join('');
    expect(logged).toContain('unhandled error');
    expect(logged).not.toContain('hf_plantedsecret123');
  });
});

describe('request ids and tracing', () => {
  it('echoes a well-formed X-Request-Id', async () => {
    const res = await testPod().app.request('/health', { headers: { 'x-request-id': 'harness-42.a' } });
    expect(res.headers.get('x-request-id')).toBe('harness-42.a');
  });

  it('replaces a malformed X-Request-Id with a generated one', async () => {
    const res = await testPod().app.request('/health', { headers: { 'x-request-id': 'bad id\twith<script>' } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('generates an X-Request-Id when none is sent', async () => {
    const res = await testPod().app.request('/health');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('takes trace_id from a W3C traceparent', async () => {
    const res = await testPod().app.request('/nope', { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } });
    expect((await errorOf(res)).trace_id).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('makes a trace_id when traceparent is invalid', async () => {
    const res = await testPod().app.request('/nope', { headers: { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' } });
    expect((await errorOf(res)).trace_id).toMatch(/^(?!0{32})[0-9a-f]{32}$/);
  });

  it('logs one access line with method, route, status, latency and request id', async () => {
    const pod = testPod();
    await pod.app.request('/debug/status', { headers: { 'x-request-id': 'rid-1' } }, LOOPBACK);
    const line = pod.lines.map((l) => JSON.parse(l)).find((l) => l.request_id === 'rid-1');
    expect(line).toMatchObject({ level: 'info', service: 'podscope', pod_id: 'pod_test', environment: 'production' });
    expect(line.data).toMatchObject({ method: 'GET', route: '/debug/status', status: 200 });
    expect(typeof line.data.latency_ms).toBe('number');
    expect(typeof line.timestamp).toBe('string');
    expect(typeof line.message).toBe('string');
  });

  it('writes a path with quotes, backslashes and control characters as valid JSON', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', podId: 'pod_test', environment: 'production', scrubber: new Scrubber([]), sinks: [memorySink(lines)] });
    const path = '/nope/"\\\n\u0001✓';
    accessLog(logger, 'http')({ requestId: 'rid-esc', traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), method: 'M"\\', route: 'unmatched', path, status: 404, latencyMs: 0.25 });
    const line = JSON.parse(lines[0]!);
    expect(line.data).toEqual({ method: 'M"\\', route: 'unmatched', path, status: 404, latency_ms: 0.25 });
    expect(line.message).toBe(`M"\\ ${path} 404`);
  });

  it('logs a request from a method outside the usual ones under its own name', async () => {
    const pod = testPod();
    await pod.app.request('/health', { method: 'PROPFIND', headers: { 'x-request-id': 'rid-m' } });
    const line = pod.lines.map((l) => JSON.parse(l)).find((l) => l.request_id === 'rid-m');
    expect(line.data).toMatchObject({ method: 'PROPFIND', route: '/health', status: 405 });
  });

  it('scrubs a secret value that a client puts in the path of an access line', async () => {
    const pod = testPod({ PODSCOPE_TOKEN: TOKEN });
    await pod.app.request(`/debug/artifacts/${TOKEN}`, { headers: { 'x-request-id': 'rid-s' } }, LOOPBACK);
    const line = pod.lines.find((l) => l.includes('rid-s'));
    expect(line).toContain('[REDACTED]');
    expect(line).not.toContain(TOKEN);
  });

  it('scrubs a secret value sent as the request id', async () => {
    const pod = testPod({ PODSCOPE_TOKEN: TOKEN });
    await pod.app.request('/nope', { headers: { 'x-request-id': TOKEN } });
    expect(pod.lines.some((l) => l.includes('"access":true'))).toBe(true);
    expect(pod.lines.join('')).not.toContain(TOKEN);
  });

  it('never logs the Authorization header', async () => {
    const pod = testPod({ PODSCOPE_TOKEN: TOKEN });
    await pod.app.request('/debug/status', { headers: { authorization: `Bearer ${TOKEN}` } }, LOOPBACK);
    await pod.app.request('/debug/status', { headers: { authorization: `Bearer wrong-${TOKEN}` } }, LOOPBACK);
    expect(pod.lines.join('')).not.toContain(TOKEN);
  });
});

describe('access matrix', () => {
  type Who = 'loopback' | 'remote' | 'forwarded';
  const who: Record<Who, { env: never; headers: Record<string, string> }> = {
    loopback: { env: LOOPBACK, headers: {} },
    remote: { env: REMOTE, headers: {} },
    forwarded: { env: LOOPBACK, headers: { 'x-forwarded-for': '203.0.113.9' } },
  };
  const routes = ['/health', '/ready', '/debug/status', '/metrics'];
  const open = (route: string) => route === '/health' || route === '/ready';

  for (const route of routes) {
    for (const w of Object.keys(who) as Who[]) {
      it(`no token: ${w} client on ${route} → ${open(route) ? 'allowed' : w === 'loopback' ? 'allowed' : '403'}`, async () => {
        const res = await testPod().app.request(route, { headers: who[w].headers }, who[w].env);
        expect(open(route) || w === 'loopback' ? [200, 503] : [403]).toContain(res.status);
      });
      it(`token set: ${w} client without it on ${route} → ${open(route) ? 'allowed' : '401'}`, async () => {
        const res = await testPod({ PODSCOPE_TOKEN: TOKEN }).app.request(route, { headers: who[w].headers }, who[w].env);
        expect(open(route) ? [200, 503] : [401]).toContain(res.status);
      });
      it(`token set: ${w} client with it on ${route} → allowed`, async () => {
        const headers = { ...who[w].headers, authorization: `Bearer ${TOKEN}` };
        const res = await testPod({ PODSCOPE_TOKEN: TOKEN }).app.request(route, { headers }, who[w].env);
        expect([200, 503]).toContain(res.status);
      });
    }
  }

  it('treats a Forwarded header like X-Forwarded-For', async () => {
    const res = await testPod().app.request('/debug/status', { headers: { forwarded: 'for=203.0.113.9' } }, LOOPBACK);
    expect(res.status).toBe(403);
  });

  it('counts IPv6 and IPv4-mapped loopback as loopback', async () => {
    for (const a of ['::1', '::ffff:127.0.0.1', '127.8.9.10']) {
      expect((await testPod().app.request('/debug/status', {}, fromAddress(a))).status).toBe(200);
    }
  });

  it('refuses a wrong token of the same length', async () => {
    const wrong = TOKEN.replace(/.$/, 'x');
    const res = await testPod({ PODSCOPE_TOKEN: TOKEN }).app.request('/metrics', { headers: { authorization: `Bearer ${wrong}` } }, LOOPBACK);
    expect(res.status).toBe(401);
  });

  it('guards the /debug index too', async () => {
    expect((await testPod().app.request('/debug', {}, REMOTE)).status).toBe(403);
  });

  // The router decodes percent-escapes: /%64ebug/status is /debug/status and must be guarded as such.
  const disguised = ['/%64ebug/status', '/%64ebug', '/%6detrics', '/debug%2Fstatus', '//debug/status', '/x/../debug/status', '/debug/./status', '/%E0%A4%A', '/Debug/status'];
  it.each(disguised)('refuses %s to a remote client without a token', async (path) => {
    const res = await testPod().app.request(path, {}, REMOTE);
    expect(res.status).toBe(403);
  });

  it.each(disguised)('refuses %s without the token when one is set', async (path) => {
    const res = await testPod({ PODSCOPE_TOKEN: TOKEN }).app.request(path, {}, LOOPBACK);
    expect(res.status).toBe(401);
  });

  it('keeps /health and /ready open however they are spelled', async () => {
    for (const path of ['/health', '/health/', '/%68ealth', '/ready']) expect((await testPod({ PODSCOPE_TOKEN: TOKEN }).app.request(path, {}, REMOTE)).status, path).not.toBe(401);
  });
});

describe('responses for people', () => {
  it('pretty-prints JSON with a trailing newline for curl', async () => {
    const res = await testPod().app.request('/health', { headers: { 'user-agent': 'curl/8.5.0' } });
    const text = await res.text();
    expect(text).toMatch(/^\{\n {2}"status": "ok"/);
    expect(text.endsWith('}\n')).toBe(true);
  });

  it('pretty-prints with ?pretty', async () => {
    const text = await (await testPod().app.request('/health?pretty')).text();
    expect(text).toContain('\n  "status"');
  });

  it('answers compact JSON to programs', async () => {
    const text = await (await testPod().app.request('/health')).text();
    expect(text).not.toContain('\n');
  });

  it('lists the endpoints at /debug', async () => {
    const res = await testPod().app.request('/debug', {}, LOOPBACK);
    const body = (await res.json()) as { endpoints: Array<{ path: string }> };
    expect(body.endpoints.map((e) => e.path)).toEqual(expect.arrayContaining(['/health', '/ready', '/metrics', '/debug/status', '/debug/memory']));
  });
});

describe('health and readiness', () => {
  it('/health answers ok with version and uptime', async () => {
    let t = 1_000_000;
    const pod = testPod({}, () => t);
    t += 12_345;
    const body = await json(await pod.app.request('/health'));
    expect(body).toEqual({ status: 'ok', version: '0.0.0-test', uptime_s: 12.3 });
  });

  it('/health gives each answer the uptime of its own moment, to the tenth of a second', async () => {
    let t = 1_000_000;
    const pod = testPod({}, () => t);
    const uptimes: unknown[] = [];
    for (const step of [12_340, 10, 90, 100, 0]) {
      t += step;
      uptimes.push((await json(await pod.app.request('/health'))).uptime_s);
    }
    expect(uptimes).toEqual([12.3, 12.4, 12.4, 12.5, 12.5]);
  });

  /** A pod without GPU sampling whose ComfyUI answers over HTTP and its websocket: every check passes. */
  function podWithComfyUp() {
    const pod = testPod({ PODSCOPE_GPU: 'off' });
    pod.state.comfy.httpAnswered(Date.now());
    pod.state.comfy.connected('podscope-test');
    return pod;
  }

  it('/ready is 503 naming each missing dependency', async () => {
    const pod = testPod({ PODSCOPE_GPU: 'off' });
    const res = await pod.app.request('/ready');
    expect(res.status).toBe(503);
    const body = await json(res);
    expect(body.status).toBe('starting');
    expect(body.checks.comfyui).toBe('ComfyUI at http://127.0.0.1:8188 has not answered yet');
    expect(body.checks.gpu).toBe('ok');
    expect(body.checks.websocket).toBe('websocket to ComfyUI not connected yet');
  });

  it('/ready is 503 until the first GPU sample, when GPU sampling is on', async () => {
    const pod = testPod();
    pod.state.comfy.httpAnswered(Date.now());
    pod.state.comfy.connected('podscope-test');
    const res = await pod.app.request('/ready');
    expect(res.status).toBe(503);
    expect(await json(res)).toMatchObject({ status: 'starting', checks: { comfyui: 'ok', websocket: 'ok', gpu: 'no GPU sample yet' } });
  });

  it('/ready is 200 when every check passes', async () => {
    const pod = podWithComfyUp();
    const res = await pod.app.request('/ready');
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ status: 'ok', checks: { comfyui: 'ok', websocket: 'ok', gpu: 'ok' }, problems: [], version: '0.0.0-test' });
  });

  it('/ready is 503 and degraded while an error problem is raised, though every check passes', async () => {
    const pod = podWithComfyUp();
    pod.state.health.raise('host', 'DISK_NEARLY_FULL', '/workspace is 99% full');
    const res = await pod.app.request('/ready');
    expect(res.status).toBe(503);
    expect(await json(res)).toMatchObject({ status: 'degraded', problems: [{ component: 'host', code: 'DISK_NEARLY_FULL', message: '/workspace is 99% full' }] });
  });

  it('/ready stays 200 while only a warning problem is raised', async () => {
    const pod = podWithComfyUp();
    pod.state.health.raise('logs', 'LOG_FILE_MISSING', 'no log file yet', 'warning');
    const res = await pod.app.request('/ready');
    expect(res.status).toBe(200);
    expect((await json(res)).problems).toEqual([]);
  });

  it('/ready says degraded when a dependency broke after start', async () => {
    const pod = podWithComfyUp();
    pod.state.comfy.disconnected(Date.now(), 'no pong within 10000 ms');
    expect(await json(await pod.app.request('/ready'))).toMatchObject({ status: 'degraded', checks: { websocket: 'websocket to ComfyUI is down: no pong within 10000 ms' } });
  });
});

describe('non-production endpoints', () => {
  const SECRET = 'rpa_planted_secret_value_1234';

  it('redacts secret-named variables and URL passwords in /debug/config', async () => {
    const pod = testPod({
      PODSCOPE_ENV: 'development',
      PODSCOPE_TOKEN: TOKEN,
      RUNPOD_API_KEY: SECRET,
      COMFYUI_URL: 'http://admin:hunter2hunter2@127.0.0.1:8188',
    });
    const res = await pod.app.request('/debug/config', { headers: { authorization: `Bearer ${TOKEN}` } }, LOOPBACK);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('hunter2hunter2');
    const body = JSON.parse(text);
    expect(body.environment.RUNPOD_API_KEY).toBe('[REDACTED]');
    expect(body.config.token).toBe('[REDACTED]');
    expect(body.config.comfyuiUrl).toBe('http://admin:[REDACTED]@127.0.0.1:8188');
    expect(body.environment.RUNPOD_POD_ID).toBe('pod_test');
  });

  it('does not show variables outside the allowlist at all', async () => {
    const pod = testPod({ PODSCOPE_ENV: 'development', MY_DB: 'postgres://u:p@h/db', HOME: '/root' });
    const body = await json(await pod.app.request('/debug/config', {}, LOOPBACK));
    expect(body.environment.MY_DB).toBeUndefined();
    expect(body.environment.HOME).toBeUndefined();
  });

  it('changes the log level at run time', async () => {
    const pod = testPod({ PODSCOPE_ENV: 'development' });
    const res = await pod.app.request('/debug/log-level', { method: 'POST', body: '{"level":"debug"}' }, LOOPBACK);
    expect(await json(res)).toEqual({ level: 'debug', previous: 'info' });
  });

  it('lists connections', async () => {
    const pod = testPod({ PODSCOPE_ENV: 'development' }, undefined, { services: { connections: () => ({ comfyui: { websocket: { connected: false } } }) } });
    expect(await json(await pod.app.request('/debug/connections', {}, LOOPBACK))).toEqual({ comfyui: { websocket: { connected: false } } });
  });

  for (const [method, path] of [
    ['GET', '/debug/config'],
    ['GET', '/debug/connections'],
    ['POST', '/debug/log-level'],
  ] as const) {
    it(`${method} ${path} is 404 in production`, async () => {
      const res = await testPod().app.request(path, { method, body: method === 'POST' ? '{"level":"debug"}' : undefined }, LOOPBACK);
      expect(res.status).toBe(404);
      expect((await errorOf(res)).code).toBe('NOT_FOUND');
    });
  }
});

describe('/metrics', () => {
  it('serves Prometheus text with HTTP metrics by route template', async () => {
    const pod = testPod();
    await pod.app.request('/health');
    await pod.app.request('/nope/123', {}, LOOPBACK);
    const text = await (await pod.app.request('/metrics', {}, LOOPBACK)).text();
    expect(text).toContain('podscope_http_requests_total{method="GET",route="/health",status="200"} 1');
    expect(text).toContain('route="unmatched",status="404"');
    expect(text).not.toContain('/nope/123');
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it('serves one exposition again within a second, then builds anew', async () => {
    let t = 1_700_000_000_000;
    const pod = testPod({}, () => t);
    const scrape = async () => (await pod.app.request('/metrics', {}, LOOPBACK)).text();
    const first = await scrape();
    await pod.app.request('/health');
    t += 999;
    expect(await scrape()).toBe(first);
    t += 1;
    const third = await scrape();
    expect(third).not.toBe(first);
    expect(third).toContain('podscope_http_requests_total{method="GET",route="/health",status="200"} 1');
  });

  it('exposes request durations as a cumulative histogram per method and route', () => {
    const pod = testPod();
    for (const seconds of [0.0002, 0.003, 0.003, 2]) pod.metrics.observeRequest('GET', '/debug/status', 200, seconds);
    pod.metrics.observeRequest('BREW', '/health', 200, 0.0001);
    return pod.metrics.registry.metrics().then((text) => {
      const lines = text.split('\n').filter((l) => l.startsWith('podscope_http_request_duration_seconds') && l.includes('route="/debug/status"'));
      expect(lines).toEqual([
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="0.0005"} 1',
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="0.001"} 1',
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="0.0025"} 1',
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="0.005"} 3',
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="0.01"} 3',
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="0.025"} 3',
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="0.05"} 3',
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="0.1"} 3',
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="0.25"} 3',
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="1"} 3',
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="5"} 4',
        'podscope_http_request_duration_seconds_bucket{method="GET",route="/debug/status",le="+Inf"} 4',
        'podscope_http_request_duration_seconds_sum{method="GET",route="/debug/status"} 2.0062',
        'podscope_http_request_duration_seconds_count{method="GET",route="/debug/status"} 4',
      ]);
      // An unknown method is counted under OTHER, never as a new label value.
      expect(text).toContain('podscope_http_requests_total{method="OTHER",route="/health",status="200"} 1');
    });
  });
});
