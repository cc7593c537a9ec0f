/**
 * Logging in from a browser: the token is typed once into a form (never put in a URL), checked in
 * constant time, and traded for an HttpOnly, SameSite=Strict session cookie that then authorises
 * the browser's requests like the bearer token does. Pages carry a strict Content-Security-Policy.
 */
import { Hono, type Context } from 'hono';
import type { PodReader } from '../../state/pod.js';
import type { AppEnv } from '../env.js';
import { header } from '../env.js';
import { constantTimeEqual } from '../access.js';
import { clearedCookie, sessionCookie, sessionFromCookie, type SessionStore } from '../sessions.js';
import { readRequestCapped } from '../../shared/read-capped.js';
import { responseHeaders } from '../respond.js';

export const LOGIN_ENDPOINTS = [
  { path: '/login', methods: ['GET', 'POST'], description: 'browser login: the token once, for a session cookie (with PODSCOPE_TOKEN set)' },
  { path: '/logout', methods: ['POST'], description: 'ends the browser session' },
] as const;

/** Every page podscope serves: nothing from another host, no inline script or style, no framing. */
export const PAGE_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

const MAX_FORM_BYTES = 4096;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/** Where to go after logging in: a path on this server, else the endpoint index. */
export function localNext(next: string | null | undefined): string {
  return next && next.length <= 200 && /^\/(?![/\\])[^\s\\]*$/.test(next) ? next : '/debug';
}

/** Whether the browser reached podscope over https (RunPod's proxy ends TLS in front of it). */
export function viaHttps(c: Context): boolean {
  const proto = header(c as never, 'x-forwarded-proto');
  if (proto && proto.split(',')[0]!.trim().toLowerCase() === 'https') return true;
  if (/(^|[;,\s])proto=https\b/i.test(header(c as never, 'forwarded') ?? '')) return true;
  return /\.proxy\.runpod\.net(:\d+)?$/i.test(header(c as never, 'host') ?? '');
}

function page(c: Context, state: PodReader, status: number, body: string, extra: Record<string, string> = {}): Response {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="color-scheme" content="dark">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>podscope · ${escapeHtml(state.config.podId)}</title>
</head>
<body>
<main>
<h1>podscope</h1>
${body}
</main>
</body>
</html>
`;
  return new Response(html, { status, headers: responseHeaders(c, { 'content-type': 'text/html; charset=utf-8', ...PAGE_HEADERS, ...extra }) });
}

function loginForm(c: Context, state: PodReader, next: string, error: string | null, status = 200): Response {
  return page(
    c,
    state,
    status,
    `<p>Pod <code>${escapeHtml(state.config.podId)}</code>. Give the pod's <code>PODSCOPE_TOKEN</code> once: the browser then keeps a session cookie for 12 hours instead.</p>
${error ? `<p role="alert">${escapeHtml(error)}</p>\n` : ''}<form method="post" action="/login">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<label>Token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button>
</form>`,
  );
}

export function loginRoutes(state: PodReader, sessions: SessionStore): Hono<AppEnv> {
  const app = new Hono<AppEnv>({ strict: false });
  const token = state.config.token;

  app.get('/login', (c) => {
    const next = localNext(c.req.query('next'));
    if (token === undefined) {
      return page(c, state, 200, '<p>This pod has no <code>PODSCOPE_TOKEN</code>: nothing to log in with. Its debug endpoints answer only clients on the pod itself (<code>curl localhost:9188/debug/status</code>); set a token to reach them through RunPod\'s proxy.</p>');
    }
    return loginForm(c, state, next, null);
  });

  app.post('/login', async (c) => {
    if (token === undefined) return page(c, state, 404, '<p>This pod has no <code>PODSCOPE_TOKEN</code>: there is nothing to log in with.</p>');
    const raw = await readRequestCapped(c.req.raw, MAX_FORM_BYTES);
    if (raw === null) return loginForm(c, state, '/debug', `The form must be at most ${MAX_FORM_BYTES} bytes.`, 413);
    const form = new URLSearchParams(raw);
    const next = localNext(form.get('next'));
    const given = form.get('token') ?? '';
    if (!given || !constantTimeEqual(given, token)) return loginForm(c, state, next, 'That token is not the pod’s PODSCOPE_TOKEN.', 401);
    const id = sessions.open();
    return new Response(null, { status: 303, headers: responseHeaders(c, { location: next, 'set-cookie': sessionCookie(id, viaHttps(c)), 'cache-control': 'no-store' }) });
  });

  app.post('/logout', (c) => {
    sessions.close(sessionFromCookie(header(c as never, 'cookie')));
    return new Response(null, { status: 303, headers: responseHeaders(c, { location: '/login', 'set-cookie': clearedCookie(viaHttps(c)), 'cache-control': 'no-store' }) });
  });

  return app;
}
