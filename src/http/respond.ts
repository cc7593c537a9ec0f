/**
 * Serializing answers: compact JSON for programs, pretty JSON with a trailing newline for a person
 * (curl, or `?pretty`), and a last scrub of known secret values before anything leaves.
 */
import type { Context } from 'hono';
import type { Scrubber } from '../secrets.js';

export function wantsPretty(c: Context): boolean {
  if (c.req.query('pretty') !== undefined) return true;
  return /^curl\//i.test(c.req.header('user-agent') ?? '');
}

export function sendJson(c: Context, ctx: { scrubber: Scrubber }, body: unknown, status = 200): Response {
  const pretty = wantsPretty(c);
  let text = pretty ? `${JSON.stringify(body, null, 2)}\n` : JSON.stringify(body);
  if (ctx.scrubber.containsSecret(text)) text = ctx.scrubber.scrubValues(text);
  return c.body(text, status as 200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
}

export function sendText(c: Context, ctx: { scrubber: Scrubber }, text: string, status = 200): Response {
  const out = ctx.scrubber.containsSecret(text) ? ctx.scrubber.scrubValues(text) : text;
  return c.body(out.endsWith('\n') ? out : `${out}\n`, status as 200, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
  });
}
