/**
 * Serializing answers: compact JSON for programs, pretty JSON with a trailing newline for a person
 * (curl, or `?pretty`), and a last scrub of known secret values before anything leaves.
 */
import type { Context } from 'hono';
import { header } from './env.js';
import type { Scrubber } from '../secrets.js';

const PRETTY = /[?&]pretty(=|&|$)/;

/** Whether a client asked for pretty JSON: `pretty` (with any value) in its query, or curl's User-Agent. */
export function prettyAsked(url: string, userAgent: string | undefined): boolean {
  return PRETTY.test(url) || isCurl(userAgent);
}

export function wantsPretty(c: Context): boolean {
  return prettyAsked(c.req.url, header(c as never, 'user-agent'));
}

/** Whether a User-Agent is curl's: a person at a terminal, who gets pretty JSON unasked. */
export function isCurl(userAgent: string | undefined): boolean {
  return userAgent !== undefined && /^curl\//i.test(userAgent);
}

/** Serializes a body the way sendJson sends it (pretty or compact, secrets scrubbed). */
export function serialize(body: unknown, pretty: boolean, scrubber: Scrubber): string {
  const text = pretty ? `${JSON.stringify(body, null, 2)}\n` : JSON.stringify(body);
  return scrubber.containsSecret(text) ? scrubber.scrubValues(text) : text;
}

/**
 * Shared snapshots, with their serialized forms once made, kept as UTF-8 bytes: a string body is
 * measured, joined to the response head and encoded again on every request, which for a 10 KB
 * status took a seventh of podscope's CPU under load.
 */
const serialized = new WeakMap<object, { compact?: Buffer<ArrayBuffer>; pretty?: Buffer<ArrayBuffer> }>();

/** The request id the outer fetch gave this request, if any. */
function requestIdOf(c: Context): string | undefined {
  return (c.env as { podscope?: { requestId: string } } | undefined)?.podscope?.requestId;
}

/** The headers of every podscope response: its own plus the request id. */
export function responseHeaders(c: Context, own: Record<string, string>): Record<string, string> {
  const id = requestIdOf(c);
  return id === undefined ? own : { ...own, 'x-request-id': id };
}

/**
 * A text answer (`no-store`, with the request id) whose headers stay a plain record: through
 * `c.body`, Hono turns two or more headers into a `Headers` object that @hono/node-server then
 * turns back into a record, which costs more per request than the rest of a small answer.
 */
export function sendBody(c: Context, body: string | Uint8Array<ArrayBuffer>, status: number, contentType: string, extra?: Record<string, string>): Response {
  return textResponse(body, status, contentType, requestIdOf(c), extra);
}

/**
 * {@link sendBody} without a Hono context (an answer made before routing). Its length is a header,
 * so the answer to a `HEAD` (the GET's headers without the body) says it too.
 */
export function textResponse(body: string | Uint8Array<ArrayBuffer>, status: number, contentType: string, requestId: string | undefined, extra?: Record<string, string>): Response {
  const length = String(bodyLength(body));
  const headers: Record<string, string> =
    requestId === undefined
      ? { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': length }
      : { 'content-type': contentType, 'cache-control': 'no-store', 'x-request-id': requestId, 'content-length': length };
  if (extra) for (const k in extra) headers[k.toLowerCase()] = extra[k]!;
  return new Response(body, { status, headers });
}

/** A body's length in bytes, as Content-Length says it. */
export function bodyLength(body: string | Uint8Array): number {
  return typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
}

export const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

export function sendJson(c: Context, ctx: { scrubber: Scrubber }, body: unknown, status = 200, extraHeaders?: Record<string, string>): Response {
  return sendBody(c, jsonBody(body, wantsPretty(c), ctx.scrubber), status, JSON_TYPE, extraHeaders);
}

/**
 * A JSON answer's body: a shared snapshot's bytes, serialized and encoded once per form (not once
 * per request), or any other value serialized now.
 */
export function jsonBody(body: unknown, pretty: boolean, scrubber: Scrubber): string | Buffer<ArrayBuffer> {
  const forms = typeof body === 'object' && body !== null ? serialized.get(body) : undefined;
  if (!forms) return serialize(body, pretty, scrubber);
  let bytes = pretty ? forms.pretty : forms.compact;
  if (!bytes) {
    bytes = Buffer.from(serialize(body, pretty, scrubber), 'utf8');
    if (pretty) forms.pretty = bytes;
    else forms.compact = bytes;
  }
  return bytes;
}

/** Marks a view object as an immutable snapshot shared by several requests. */
export function markSnapshot<T extends object>(view: T): T {
  serialized.set(view, {});
  return view;
}

/**
 * A view built at most once per `ttlMs` while `version()` stays the same: a harness polling
 * /debug/status from many workers shares one build (its `sampled_at` says when), and a change of
 * jobs or queue shows at once, so /debug/status never lags /debug/queue or /debug/workflow.
 */
export function sharedView<T extends object>(ttlMs: number, build: () => T, version: () => number = () => 0): () => T {
  let at = -Infinity;
  let built = -1;
  let value: T;
  return () => {
    const now = performance.now();
    const v = version();
    if (now - at >= ttlMs || v !== built) {
      value = markSnapshot(build());
      at = now;
      built = v;
    }
    return value;
  };
}

export function sendText(c: Context, ctx: { scrubber: Scrubber }, text: string, status = 200): Response {
  const out = ctx.scrubber.containsSecret(text) ? ctx.scrubber.scrubValues(text) : text;
  return sendBody(c, out.endsWith('\n') ? out : `${out}\n`, status, TEXT_TYPE);
}
