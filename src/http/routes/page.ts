/**
 * GET /: podscope's page, and GET /assets/*: its script, styles and chart library. Served from
 * memory (read at start-up), with the same strict Content-Security-Policy as every page: the page
 * asks nothing of any other host.
 */
import { Hono } from 'hono';
import type { WebAssets } from '../../shared/web-assets.js';
import type { AppEnv } from '../env.js';
import { header } from '../env.js';
import { ApiError } from '../errors.js';
import { responseHeaders } from '../respond.js';
import { sessionFromCookie, type SessionStore } from '../sessions.js';
import { PAGE_HEADERS } from './login.js';

export const PAGE_ENDPOINTS = [{ path: '/', methods: ['GET'], description: 'the pod as a live page: GPUs, the running job, the queue, recent jobs, the log' }] as const;

export function pageRoutes(assets: WebAssets | undefined, sessions: SessionStore): Hono<AppEnv> {
  const app = new Hono<AppEnv>({ strict: false });

  app.get('/', (c) => {
    if (!assets) throw new ApiError(503, 'UNAVAILABLE', 'The page was not loaded with this podscope.');
    // The log-out button shows for a browser that logged in with the session cookie.
    const session = sessions.valid(sessionFromCookie(header(c as never, 'cookie')));
    const html = session ? assets.index.replace('<body>', '<body data-session="cookie">') : assets.index;
    return new Response(html, { status: 200, headers: responseHeaders(c, { 'content-type': 'text/html; charset=utf-8', ...PAGE_HEADERS }) });
  });

  app.get('/assets/:name', (c) => {
    const file = assets?.files.get(c.req.param('name'));
    if (!file) throw new ApiError(404, 'NOT_FOUND', `No asset ${c.req.param('name').slice(0, 100)}.`);
    // A view of the bytes read at start-up, not a copy of them per request.
    return new Response(new Uint8Array(file.body.buffer as ArrayBuffer, file.body.byteOffset, file.body.byteLength), {
      status: 200,
      headers: responseHeaders(c, { 'content-type': file.contentType, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' }),
    });
  });

  return app;
}
