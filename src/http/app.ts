/**
 * The HTTP application: middleware, routes and the one error shape.
 *
 * Routes never do I/O: they read state the collectors keep and serialize a snapshot.
 */
import { Hono } from 'hono';
import type { AppContext, AppEnv } from './env.js';
import { routePath } from 'hono/route';
import type { Logger } from '../log.js';
import type { CoreMetrics } from '../metrics/registry.js';
import type { PodState } from '../state/pod.js';
import { ApiError, errorBody } from './errors.js';
import { checkAccess } from './access.js';
import { requestIdFrom, traceFrom } from './tracing.js';
import { sendJson } from './respond.js';
import { debugRoutes, DEBUG_ENDPOINTS } from './routes/debug.js';
import { devRoutes, DEV_ENDPOINTS } from './routes/dev.js';

export type { AppContext, AppEnv } from './env.js';

export interface AppDeps {
  state: PodState;
  logger: Logger;
  metrics: CoreMetrics;
}

/** Route templates with the methods they accept, for 405 answers. */
function allowedMethods(routes: ReadonlyArray<{ path: string; methods: readonly string[] }>): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const r of routes) map.set(r.path, [...r.methods, ...(r.methods.includes('GET') ? ['HEAD'] : [])]);
  return map;
}

const BASE_ENDPOINTS = [
  { path: '/health', methods: ['GET'], description: 'liveness: 200 whenever the process answers' },
  { path: '/ready', methods: ['GET'], description: 'readiness: 200 when ComfyUI, its websocket and GPU sampling work and no error problem is raised, else 503' },
  { path: '/metrics', methods: ['GET'], description: 'Prometheus metrics' },
  { path: '/debug', methods: ['GET'], description: 'this index' },
] as const;

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const { state, logger, metrics } = deps;
  const { config } = state;
  // A trailing slash names the same route (`/debug/status/` is /debug/status, not a 405).
  const app = new Hono<AppEnv>({ strict: false });
  const devEnabled = config.env === 'development';
  const endpoints = [...BASE_ENDPOINTS, ...DEBUG_ENDPOINTS, ...(devEnabled ? DEV_ENDPOINTS : [])];
  const allowed = allowedMethods(endpoints);

  app.use('*', async function requestContext(c, next) {
    const started = performance.now();
    const requestId = requestIdFrom(c.req.header('x-request-id'));
    const trace = traceFrom(c.req.header('traceparent'));
    c.set('started', started);
    c.set('requestId', requestId);
    c.set('traceId', trace.traceId);
    c.set('spanId', trace.spanId);
    // Set before the handler builds its response, so the response is made with it (cheaper than after).
    c.header('X-Request-Id', requestId);
    await next();
    if (!c.res.headers.has('X-Request-Id')) c.res.headers.set('X-Request-Id', requestId);
    const route = routeLabel(c);
    const seconds = (performance.now() - started) / 1000;
    metrics.observeRequest(c.req.method, route, c.res.status, seconds);
    // One access line per request, written directly (a child logger per request costs more than the line).
    logger.info(
      {
        request_id: requestId,
        trace_id: trace.traceId,
        span_id: trace.spanId,
        access: true,
        data: { method: c.req.method, route, path: c.req.path, status: c.res.status, latency_ms: Math.round(seconds * 1e6) / 1000 },
      },
      `${c.req.method} ${c.req.path} ${c.res.status}`,
    );
  });

  const guard = async function accessGuard(c: AppContext, next: () => Promise<void>) {
    checkAccess(config.token, {
      authorization: c.req.header('authorization'),
      forwarded: c.req.header('x-forwarded-for') !== undefined || c.req.header('forwarded') !== undefined,
      remoteAddress: c.env?.incoming?.socket?.remoteAddress,
    });
    await next();
  };
  app.use('/debug', guard);
  app.use('/debug/*', guard);
  app.use('/metrics', guard);

  app.get('/health', (c) =>
    sendJson(c, state, { status: 'ok', version: state.version, uptime_s: Math.round((state.now() - state.startedAt) / 100) / 10 }),
  );

  app.get('/ready', (c) => {
    const r = state.condition();
    return sendJson(c, state, { status: r.status, checks: r.checks, problems: r.problems, version: state.version }, r.ready ? 200 : 503);
  });

  app.get('/metrics', async (c) => {
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { 'Content-Type': metrics.registry.contentType, 'Cache-Control': 'no-store' });
  });

  const index = (c: AppContext) =>
    sendJson(c, state, {
      service: 'podscope',
      version: state.version,
      endpoints: endpoints.map((e) => ({ path: e.path, methods: e.methods, description: e.description })),
    });
  app.get('/debug', index);
  app.get('/debug/', index);

  app.route('/debug', debugRoutes(state));
  if (devEnabled) app.route('/debug', devRoutes(state, logger));

  const errorResponse = (c: AppContext, api: ApiError): Response => {
    const requestId = c.get('requestId') ?? requestIdFrom(undefined);
    const res = sendJson(c, state, errorBody(api, requestId, c.get('traceId') ?? ''), api.status);
    for (const [k, v] of Object.entries(api.headers)) res.headers.set(k, v);
    return res;
  };

  // notFound answers rather than throws: a throw here would skip the request middleware's epilogue.
  app.notFound((c) => {
    const methods = allowed.get(c.req.path.length > 1 ? c.req.path.replace(/\/+$/, '') : c.req.path);
    if (methods) {
      return errorResponse(
        c,
        new ApiError(405, 'METHOD_NOT_ALLOWED', `${c.req.method} is not allowed on ${c.req.path}.`, {
          details: { allowed: methods },
          headers: { Allow: methods.join(', ') },
        }),
      );
    }
    return errorResponse(c, new ApiError(404, 'NOT_FOUND', `No endpoint at ${c.req.path}.`, { help: 'GET /debug lists the endpoints.' }));
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err);
    // Unexpected: log it whole for on-call, answer with nothing that could leak.
    logger.error({ error: err, request_id: c.get('requestId'), trace_id: c.get('traceId'), span_id: c.get('spanId') }, 'unhandled error while answering a request');
    return errorResponse(c, new ApiError(500, 'INTERNAL', 'podscope failed to answer this request; the error is in its log under this request_id.'));
  });

  return app;
}

/** The route template that answered, or "unmatched": never a raw path, so labels stay bounded. */
function routeLabel(c: AppContext): string {
  let p: string;
  try {
    p = routePath(c, -1);
  } catch {
    return 'unmatched';
  }
  if (!p || p.includes('*')) return 'unmatched';
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}
