import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { submit, txt2img, SimComfyUI } from '../../src/sim/comfyui.js';
import { startPodscope, type Podscope } from '../../src/main.js';
import { DEBUG_ENDPOINTS } from '../../src/http/routes/debug.js';
import { DEV_ENDPOINTS } from '../../src/http/routes/dev.js';
import { until } from '../helpers/comfy-rig.js';

const TOKEN = 'ps-token-7d2f9a41c6e8b035';
const SECRETS = {
  PODSCOPE_TOKEN: TOKEN,
  HF_TOKEN: 'hf_plantedHuggingFaceToken1234',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYplanted',
  RUNPOD_API_KEY: 'rpa_planted_runpod_key_998877',
  COMFY_ORG_API_KEY: 'comfyui-planted-org-key-5566',
};
const EXTRA_SECRET = 'comfyui-api-key-in-extra-data-4411';

let sim: SimComfyUI;
let pod: Podscope;
let base = '';
const lines: string[] = [];

beforeAll(async () => {
  sim = new SimComfyUI({ stepMs: 20 });
  await sim.start();
  pod = await startPodscope({
    env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: sim.url, PODSCOPE_GPU: 'off', PODSCOPE_ENV: 'development', LOG_LEVEL: 'debug', ...SECRETS },
    sinks: [{ write: (l) => lines.push(l) }],
  });
  base = `http://127.0.0.1:${pod.port}`;
  const auth = { authorization: `Bearer ${TOKEN}` };
  await until(async () => (await fetch(`${base}/ready`)).status === 200);
  // Plant the secrets where ComfyUI could echo them: its log, a prompt's extra_data, a failing job.
  sim.log(`downloading with HF_TOKEN=${SECRETS.HF_TOKEN} and Authorization: Bearer ${SECRETS.RUNPOD_API_KEY}\n`);
  sim.log(`aws ${SECRETS.AWS_SECRET_ACCESS_KEY} org ${SECRETS.COMFY_ORG_API_KEY} token ${TOKEN}\n`);
  await submit(sim.url, txt2img({ steps: 30, seed: 1 }), { clientId: 'w', extra: { job_id: 'planted', api_key_comfy_org: EXTRA_SECRET } });
  await submit(sim.url, txt2img({ steps: 3, seed: 2 }), { clientId: 'w', extra: { job_id: 'planted2', auth_token_comfy_org: EXTRA_SECRET } });
  await until(async () => ((await (await fetch(`${base}/debug/queue`, { headers: auth })).json()) as { pending: unknown[] }).pending.length >= 1, 5000);
  // The client's own Authorization header must not end up in any log either.
  await fetch(`${base}/debug/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
}, 30_000);

afterAll(async () => {
  await pod.close();
  await sim.stop();
});

const GET_ROUTES = [
  '/health',
  '/ready',
  '/metrics',
  '/debug',
  ...DEBUG_ENDPOINTS.filter((e) => e.path !== '/debug/artifacts/file').map((e) => e.path),
  '/debug/artifacts/file?filename=x.png',
  '/debug/config',
  '/debug/connections',
];

describe('no secret leaves the process', () => {
  it('appears in no endpoint answer, in JSON or text', async () => {
    const paths = [...GET_ROUTES.filter((p) => p !== '/debug/events'), '/debug/status?format=text', '/debug/queue?format=text', '/debug/workflow?format=text&job_id=planted', '/debug/logs?lines=1000&format=text', '/debug/logs?lines=1000'];
    for (const path of paths) {
      const text = await (await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
      for (const [name, secret] of Object.entries({ ...SECRETS, EXTRA_SECRET })) expect(text, `${name} in ${path}`).not.toContain(secret);
    }
  });

  it('appears in no event of /debug/events, every event still held replayed', async () => {
    const journal = pod.state.events!;
    // Events beyond the two jobs' queueing; on a busy machine they can come after the set-up.
    await until(() => journal.ring.size > 3, 15_000);
    const newest = journal.id(journal.ring.lastSeq);
    const ac = new AbortController();
    const res = await fetch(`${base}/debug/events?last_event_id=replay-all`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: ac.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!text.includes(`id: ${newest}\n`)) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    ac.abort();
    expect(text).toContain('event: job_queued');
    for (const [name, secret] of Object.entries({ ...SECRETS, EXTRA_SECRET })) expect(text, name).not.toContain(secret);
  });

  it('appears in no log line podscope wrote', () => {
    const all = lines.join('');
    expect(all.length).toBeGreaterThan(1000);
    for (const [name, secret] of Object.entries({ ...SECRETS, EXTRA_SECRET })) expect(all, name).not.toContain(secret);
  });

  it('appears in no metric label or value', async () => {
    const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    for (const secret of [...Object.values(SECRETS), EXTRA_SECRET]) expect(text).not.toContain(secret);
    // No label holds a prompt id, job id or file name.
    expect(text).not.toMatch(/planted|job_id=|prompt_id=|\.png/);
  });

  it('the planted log lines are there, scrubbed', async () => {
    const r = await (await fetch(`${base}/debug/logs?q=downloading&lines=5`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();
    expect((r as { lines: Array<{ message: string }> }).lines[0]!.message).toBe('downloading with HF_TOKEN=[REDACTED] and Authorization: Bearer [REDACTED]');
  });
});

describe('the access matrix on every route', () => {
  const guarded = GET_ROUTES.filter((r) => r !== '/health' && r !== '/ready');
  it.each(guarded)('%s: 401 without the token, 401 with a wrong one, allowed with it', async (path) => {
    expect((await fetch(`${base}${path}`)).status).toBe(401);
    expect((await fetch(`${base}${path}`, { headers: { authorization: 'Bearer wrong-token-value-00' } })).status).toBe(401);
    expect((await fetch(`${base}${path}`, { headers: { authorization: 'Basic abc' } })).status).toBe(401);
    const ok = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect([401, 403]).not.toContain(ok.status);
    expect(ok.status).toBeLessThan(500 + (path.startsWith('/debug/artifacts/file') ? 4 : 0));
  });

  it.each(['/health', '/ready'])('%s is open without a token', async (path) => {
    expect([200, 503]).toContain((await fetch(`${base}${path}`)).status);
  });

  it('POST /debug/log-level needs the token too', async () => {
    expect((await fetch(`${base}/debug/log-level`, { method: 'POST', body: '{"level":"info"}' })).status).toBe(401);
  });

  it('lists every endpoint it guards in /debug', async () => {
    const idx = (await (await fetch(`${base}/debug`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { endpoints: Array<{ path: string }> };
    expect(idx.endpoints.map((e) => e.path)).toEqual(expect.arrayContaining([...DEBUG_ENDPOINTS, ...DEV_ENDPOINTS].map((e) => e.path)));
  });
});

/** A small seeded PRNG, so a failing fuzz case can be replayed. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function raw(method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers, timeout: 2000 }, (res) => {
      // An event stream never ends by design: its status and headers are the answer.
      if (String(res.headers['content-type']).startsWith('text/event-stream')) {
        res.destroy();
        resolve({ status: res.statusCode ?? 0, body: '' });
        return;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < 200_000) body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within 2 s: ${method} ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('fuzzing every /debug endpoint', () => {
  const PARAMS = ['lines', 'level', 'job_id', 'source', 'after', 'q', 'format', 'follow', 'pretty', 'filename', 'subfolder', 'type', 'limit', 'x'];
  const VALUES = ['', '0', '-1', '1e9', '99999999999999999999', 'NaN', 'null', '[]', '{}', '%', '%zz', '%00', '..%2f..%2fetc%2fpasswd', '\u00e9\u4e2d\ud83d\ude00', 'a'.repeat(5000), 'text', 'json', '1', 'true', 'debug', 'comfyui', 'planted', ';DROP TABLE', '<script>', '\\'];
  const METHODS = ['GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
  const paths = [...DEBUG_ENDPOINTS, ...DEV_ENDPOINTS].map((e) => e.path);

  /** The error envelope's code and request id, as their types ('string' each when it is one). */
  const envelope = (body: string) => {
    const e = (JSON.parse(body) as { error?: { code?: unknown; request_id?: unknown } }).error;
    return { code: typeof e?.code, request_id: typeof e?.request_id };
  };

  it.each(paths)('%s answers only 2xx/4xx with the envelope, never 5xx, never hangs', async (path) => {
    const refusals: Array<{ what: string; code: string; request_id: string }> = [];
    const rand = prng(path.length * 7919);
    const pick = <T>(a: readonly T[]) => a[Math.floor(rand() * a.length)]!;
    for (let i = 0; i < 120; i++) {
      const n = Math.floor(rand() * 4);
      const parts: string[] = [];
      for (let k = 0; k < n; k++) {
        const v = pick(VALUES);
        parts.push(`${pick(PARAMS)}=${/^%|%$/.test(v) ? v : encodeURIComponent(v)}`);
      }
      const method = pick(METHODS);
      const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}`, 'x-fuzz': 'y'.repeat(Math.floor(rand() * 8000)) };
      if (rand() < 0.2) headers['x-request-id'] = pick(VALUES).slice(0, 300).replace(/[^\x20-\x7e]/g, '');
      if (rand() < 0.2) headers.traceparent = pick(['00-zz', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'ff-'.repeat(30)]);
      const q = parts.length ? `?${parts.join('&')}` : '';
      const follow = /follow=(1|true)/.test(q) && path === '/debug/logs' && method === 'GET';
      if (follow) continue; // a stream never ends by design; follow mode has its own tests
      const r = await raw(method, `${path}${q}`, headers);
      expect(r.status, `${method} ${path}${q}`).toBeLessThan(500 + (path === '/debug/artifacts/file' ? 4 : 0));
      expect(r.status, `${method} ${path}${q}`).not.toBe(500);
      if (r.status >= 400 && method !== 'HEAD') refusals.push({ what: `${method} ${path}${q}`, ...envelope(r.body) });
    }
    // Every refusal (a HEAD's has no body) is the envelope, and the fuzzing did make some.
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.filter((x) => x.code !== 'string' || x.request_id !== 'string')).toEqual([]);
  }, 60_000);

  it('answers a header larger than Node allows with 431 in the error envelope, with a request id', async () => {
    const r = await raw('GET', '/debug/status', { authorization: `Bearer ${TOKEN}`, 'x-big': 'z'.repeat(40_000) });
    expect(r.status).toBe(431);
    const body = JSON.parse(r.body) as { error: { code: string; request_id: string } };
    expect(body.error.code).toBe('HEADERS_TOO_LARGE');
    expect(body.error.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('variables whose names say KEY but hold no secret', () => {
  it('keeps PODSCOPE_JOB_ID_KEY=job_id out of the scrubber: "job_id" survives in answers and logs', async () => {
    const lines: string[] = [];
    const sim = new SimComfyUI({ stepMs: 5 });
    await sim.start();
    const pod = await startPodscope({
      env: { PODSCOPE_PORT: '0', PODSCOPE_HOST: '127.0.0.1', COMFYUI_URL: sim.url, PODSCOPE_GPU: 'off', PODSCOPE_JOB_ID_KEY: 'job_id', LOG_LEVEL: 'info' },
      sinks: [{ write: (l: string) => void lines.push(l) }],
    });
    try {
      await submit(sim.url, txt2img({ steps: 1, seed: 77 }), { clientId: 'w', extra: { job_id: 'kept-job' } });
      const body = await until(async () => {
        const r = await fetch(`http://127.0.0.1:${pod.port}/debug/workflow?job_id=kept-job`);
        const j = r.ok ? ((await r.json()) as { status: string; job_id: string }) : null;
        return j?.status === 'success' ? j : undefined;
      }, 15_000);
      expect(body.job_id).toBe('kept-job');
      expect(lines.join('\n')).toContain('"job_id":"kept-job"');
      expect(lines.join('\n')).not.toContain('[REDACTED]');
    } finally {
      await pod.close();
      await sim.stop();
    }
  });
});
