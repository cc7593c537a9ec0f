/** The Hono environment every podscope route shares: what the request middleware puts in context. */
import type { IncomingHttpHeaders } from 'node:http';
import type { Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Logger } from '../logger.js';

/** What podscope knows of the request before Hono routes it: set by the app's outer fetch. */
export interface RequestInfo {
  requestId: string;
  traceId: string;
  spanId: string;
  started: number;
}

export type AppEnv = {
  Bindings: Partial<HttpBindings> & { podscope?: RequestInfo };
  Variables: { log: Logger };
};

/** The request's ids, as the outer fetch set them (absent only when a test dispatches directly). */
export function requestInfo(c: Context<AppEnv>): RequestInfo | undefined {
  return c.env?.podscope;
}

export type AppContext = Context<AppEnv>;

/**
 * One request header, read from Node's already-parsed headers when podscope serves over
 * node:http (asking the Web Request for it makes @hono/node-server build a whole Headers object
 * per request), else from the Request (tests calling `app.request`). A repeated header reads as
 * its values joined, as the Web API does.
 */
export function requestHeader(request: Request, bindings: AppEnv['Bindings'] | undefined, name: string): string | undefined {
  const headers = bindings?.incoming?.headers;
  return headers ? nodeHeader(headers, name) : (request.headers.get(name) ?? undefined);
}

/** One header (its name in lower case) of node:http's parsed headers, a repeated one joined. */
export function nodeHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** {@link requestHeader} for a route's context. */
export function header(c: Context<AppEnv>, name: string): string | undefined {
  return requestHeader(c.req.raw, c.env, name);
}
