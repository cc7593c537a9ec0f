/** The Hono environment every podscope route shares: what the request middleware puts in context. */
import type { Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Logger } from '../log.js';

export type AppEnv = {
  Bindings: Partial<HttpBindings>;
  Variables: { requestId: string; traceId: string; spanId: string; log: Logger; started: number };
};

export type AppContext = Context<AppEnv>;
