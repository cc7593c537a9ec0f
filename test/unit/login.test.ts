/**
 * Access from a browser (http/routes/login.ts, http/sessions.ts): the token typed once for an
 * HttpOnly, SameSite=Strict session cookie, which then opens /debug/* like the bearer token; the
 * token never in a URL, a page or a log; strict security headers on every page.
 */
import { describe, expect, it } from 'vitest';
import { REMOTE, testPod } from '../helpers/pod.js';
import { MAX_SESSIONS, SESSION_TTL_MS, SessionStore, sessionFromCookie } from '../../src/http/sessions.js';
import { localNext } from '../../src/http/routes/login.js';

const TOKEN = 'tok_4f9a0c2e7d1b99';

/** A pod with a token, reached from outside through RunPod's proxy. */
function pod() {
  const p = testPod({ PODSCOPE_TOKEN: TOKEN });
  const request = (path: string, init: RequestInit = {}) => p.app.request(path, init, REMOTE);
  const login = (token: string, next = '/debug/status', headers: Record<string, string> = {}) =>
    request('/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams({ token, next }).toString() });
  return { ...p, request, login };
}

const cookieOf = (res: Response) => res.headers.get('set-cookie') ?? '';
const sessionOf = (res: Response) => /podscope_session=([^;]*)/.exec(cookieOf(res))?.[1] ?? '';

describe('the login page', () => {
  it('asks for the token in a password field posted to /login, never in the URL', async () => {
    const res = await pod().request('/login?next=/debug/memory');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await res.text();
    expect(html).toContain('<form method="post" action="/login">');
    expect(html).toContain('type="password" name="token"');
    expect(html).toContain('name="next" value="/debug/memory"');
    expect(html).not.toContain(TOKEN);
  });

  it('carries a strict Content-Security-Policy and refuses to be framed', async () => {
    const res = await pod().request('/login');
    expect(res.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('is open to anyone: it is how a browser gets in', async () => {
    expect((await pod().request('/login')).status).toBe(200);
  });

  it('says there is nothing to log in with on a pod without a token', async () => {
    const p = testPod();
    const res = await p.app.request('/login');
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/has no <code>PODSCOPE_TOKEN<\/code>/);
    expect((await p.app.request('/login', { method: 'POST', body: 'token=x' })).status).toBe(404);
  });
});

describe('logging in', () => {
  it('trades the right token for a session cookie and goes where it was asked', async () => {
    const res = await pod().login(TOKEN, '/debug/memory');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/debug/memory');
    expect(cookieOf(res)).toMatch(new RegExp(`^podscope_session=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}$`));
  });

  it('marks the cookie Secure when the browser came over https through the proxy', async () => {
    const p = pod();
    expect(cookieOf(await p.login(TOKEN, '/debug', { 'x-forwarded-proto': 'https' }))).toMatch(/; Secure$/);
    expect(cookieOf(await p.login(TOKEN, '/debug', { host: 'abc123-9188.proxy.runpod.net' }))).toMatch(/; Secure$/);
    expect(cookieOf(await p.login(TOKEN, '/debug', { forwarded: 'for=1.2.3.4;proto=https' }))).toMatch(/; Secure$/);
  });

  it('refuses a wrong token with 401, the form again and no cookie', async () => {
    const res = await pod().login(`wrong-${TOKEN}`);
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    const html = await res.text();
    expect(html).toContain('role="alert"');
    expect(html).not.toContain(TOKEN);
  });

  it('refuses an empty token', async () => {
    expect((await pod().login('')).status).toBe(401);
  });

  it('refuses a form larger than 4 KiB without reading it whole', async () => {
    const res = await pod().request('/login', { method: 'POST', headers: { 'content-length': '5000000' }, body: 'token=x' });
    expect(res.status).toBe(413);
  });

  it('never sends the browser to another site after logging in', async () => {
    for (const next of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'debug', '/a b']) {
      expect((await pod().login(TOKEN, next)).headers.get('location')).toBe('/debug');
    }
  });

  it('never logs the token', async () => {
    const p = pod();
    await p.login(TOKEN);
    await p.login(`wrong-${TOKEN}`);
    expect(p.lines.join('\n')).not.toContain(TOKEN);
  });
});

describe('the session cookie', () => {
  it('opens /debug/* to the browser that logged in, without a bearer token', async () => {
    const p = pod();
    const id = sessionOf(await p.login(TOKEN));
    expect((await p.request('/debug/status')).status).toBe(401);
    expect((await p.request('/debug/status', { headers: { cookie: `other=1; podscope_session=${id}` } })).status).toBe(200);
    expect((await p.request('/metrics', { headers: { cookie: `podscope_session=${id}` } })).status).toBe(200);
  });

  it('opens nothing when made up', async () => {
    const res = await pod().request('/debug/status', { headers: { cookie: 'podscope_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { help: string } }).error.help).toMatch(/log in at \/login/);
  });

  it('does not stand in for a wrong bearer token sent beside it', async () => {
    const p = pod();
    const id = sessionOf(await p.login(TOKEN));
    expect((await p.request('/debug/status', { headers: { cookie: `podscope_session=${id}`, authorization: 'Bearer wrong' } })).status).toBe(401);
  });

  it('stops working once logged out, and the cookie is cleared', async () => {
    const p = pod();
    const id = sessionOf(await p.login(TOKEN));
    const out = await p.request('/logout', { method: 'POST', headers: { cookie: `podscope_session=${id}` } });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login');
    expect(cookieOf(out)).toBe('podscope_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0');
    expect((await p.request('/debug/status', { headers: { cookie: `podscope_session=${id}` } })).status).toBe(401);
  });
});

describe('sessions', () => {
  it('expire after their time', () => {
    let now = 0;
    const s = new SessionStore(() => now);
    const id = s.open();
    now = SESSION_TTL_MS - 1;
    expect(s.valid(id)).toBe(true);
    now = SESSION_TTL_MS;
    expect(s.valid(id)).toBe(false);
    expect(s.size).toBe(0);
  });

  it('are at most MAX_SESSIONS; the oldest goes first', () => {
    const s = new SessionStore(() => 0);
    const first = s.open();
    const second = s.open();
    for (let i = 0; i < MAX_SESSIONS - 1; i++) s.open();
    expect(s.size).toBe(MAX_SESSIONS);
    expect(s.valid(first)).toBe(false);
    expect(s.valid(second)).toBe(true);
  });

  it('are random and long', () => {
    const s = new SessionStore();
    const ids = new Set(Array.from({ length: 50 }, () => s.open()));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('are read from a Cookie header among other cookies, and only in their own shape', () => {
    expect(sessionFromCookie('a=1; podscope_session=abc_DEF-9; b=2')).toBe('abc_DEF-9');
    expect(sessionFromCookie('podscope_session=not valid')).toBeUndefined();
    expect(sessionFromCookie('xpodscope_session=abc')).toBeUndefined();
    expect(sessionFromCookie(undefined)).toBeUndefined();
  });
});

describe('localNext', () => {
  it('keeps a path on this server and its query', () => {
    expect(localNext('/debug/workflow?job_id=j1')).toBe('/debug/workflow?job_id=j1');
  });

  it('falls back to the endpoint index for anything else', () => {
    expect(localNext(null)).toBe('/debug');
    expect(localNext('/'.repeat(1) + 'x'.repeat(300))).toBe('/debug');
  });
});
