/**
 * The HTTP application: middleware, routes and the one error shape.
 *
 * Routes never do I/O: they read state the collectors keep and serialize a snapshot.
 */
import { Hono } from 'hono';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { nodeHeader, requestHeader, requestInfo, type AppContext, type AppEnv, type RequestInfo } from './env.js';
import { accessLog, type Logger } from '../logger.js';
import type { CoreMetrics } from '../metrics/registry.js';
import type { PodReader } from '../state/pod.js';
import { ApiError, errorBody } from './errors.js';
import { checkAccess } from './access.js';
import { requestIdFrom, traceFrom } from './tracing.js';
import { bodyLength, isCurl, JSON_TYPE, jsonBody, prettyAsked, sendBody, sendJson, serialize, sharedView, textResponse } from './respond.js';
import { statusView } from '../views/status.js';
import { debugRoutes, DEBUG_ENDPOINTS } from './routes/debug.js';
import { devRoutes, DEV_ENDPOINTS } from './routes/dev.js';
import { loginRoutes, LOGIN_ENDPOINTS } from './routes/login.js';
import { SessionStore, sessionFromCookie } from './sessions.js';
import { pageRoutes, PAGE_ENDPOINTS } from './routes/page.js';
import type { WebAssets } from '../shared/web-assets.js';
import { StreamCounts } from '../state/events.js';
import type { HttpServices } from './services.js';
import type { OpenStreams } from './stream.js';
import { parseQuery, pickInstance, readyQuery } from './query.js';
import { openApiDocument } from './openapi.js';

export type { AppContext, AppEnv } from './env.js';

export interface AppDeps {
  state: PodReader;
  /** Downloads, the collectors' connections, the event streams' counts (default: none served, none listed). */
  services?: Partial<HttpServices>;
  logger: Logger;
  metrics: CoreMetrics;
  /** Browser sessions (tests pass their own); one per app otherwise. */
  sessions?: SessionStore;
  /** The page's files, read at start-up; without them GET / answers 503. */
  assets?: WebAssets;
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
  { path: '/openapi.json', methods: ['GET'], description: 'the OpenAPI 3.1 document of every endpoint, its parameters and answers' },
] as const;

/**
 * Open to anyone: liveness, readiness, the browser login (which checks the token itself), and the
 * page's static files (which hold no data of the pod).
 */
const OPEN_PATHS = new Set(['/health', '/ready', '/login', '/logout']);
const ASSET_PATH = /^\/assets\/[\w.-]+$/;
/** The routes a balancer or a harness probes (see `record` in {@link createHttpHandler}). */
const PROBES = new Set(['/health', '/ready']);

/** How long one /metrics exposition may be served again, at most (values are then ≤ 1 s old). */
const METRICS_REUSE_MS = 1000;

/** podscope's HTTP answers: the Hono app, and the node:http listener that serves it. */
export interface HttpHandler {
  app: Hono<AppEnv>;
  /** Ends every open stream (log follow, events) with its closing message: podscope is stopping. */
  endStreams(): void;
  /** Answers the hot read-only routes itself (see {@link createHttpHandler}), the rest through Hono. */
  listener: (incoming: IncomingMessage, outgoing: ServerResponse) => void;
}

/** The Hono app alone, for tests that call `app.request`. */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  return createHttpHandler(deps).app;
}

/** One JSON answer of a route that reads no parameters: the same for Hono and the direct lane. */
interface Plain {
  body: object;
  status: number;
}

export function createHttpHandler(deps: AppDeps): HttpHandler {
  const { state, logger, metrics } = deps;
  const { config } = state;
  // A trailing slash names the same route (`/debug/status/` is /debug/status, not a 405).
  const app = new Hono<AppEnv>({ strict: false });
  const devEnabled = config.env === 'development';
  const endpoints = [...PAGE_ENDPOINTS, ...BASE_ENDPOINTS, ...LOGIN_ENDPOINTS, ...DEBUG_ENDPOINTS, ...(devEnabled ? DEV_ENDPOINTS : [])];
  const sessions = deps.sessions ?? new SessionStore(state.now);
  const services: HttpServices = { downloads: null, connections: () => ({}), eventStreams: new StreamCounts(), ...deps.services };
  const openStreams: OpenStreams = new Set();
  const allowed = allowedMethods(endpoints);

  // /health's answer changes only with its uptime's tenth of a second: one body per tenth, shared
  // and kept as bytes like a snapshot, so a probe costs no serialization.
  const uptimeTenths = () => Math.round((state.now() - state.startedAt) / 100);
  const healthSnapshot = sharedView(Infinity, () => ({ status: 'ok', version: state.version, uptime_s: uptimeTenths() / 10 }), uptimeTenths);
  const health = (): Plain => ({ body: healthSnapshot(), status: 200 });
  // Over every instance (each named with its own condition when there are several), or one.
  const ready = (instance?: string): Plain => {
    const r = state.condition(instance);
    const instances = state.instances.all;
    const each = instance === undefined && instances.length > 1 ? { instances: instances.map((c) => ({ name: c.name, status: state.condition(c.name).status })) } : {};
    return { body: { status: r.status, ...(instance === undefined ? {} : { instance }), checks: r.checks, problems: r.problems, ...each, version: state.version }, status: r.ready ? 200 : 503 };
  };
  const statusSnapshot = sharedView(100, () => statusView(state), () => state.instances.jobsVersion());
  const status = (): Plain => ({ body: statusSnapshot(), status: 200 });
  const plain = (answer: () => Plain) => (c: AppContext) => {
    const a = answer();
    return sendJson(c, state, a.body, a.status);
  };

  app.get('/health', plain(health));
  app.get('/ready', (c) => {
    const { instance } = parseQuery(c, readyQuery);
    const a = ready(instance === undefined ? undefined : pickInstance(state.instances, instance).name);
    return sendJson(c, state, a.body, a.status);
  });
  // One exposition serves every scrape within METRICS_REUSE_MS: several scrapers (an HA pair, a
  // debugging curl) cost one build, and no value is more than that old.
  // It is kept as bytes: a string would be encoded again for every scrape.
  let exposition: { bytes: Buffer<ArrayBuffer>; at: number } | null = null;
  let building: Promise<Buffer<ArrayBuffer>> | null = null;
  app.get('/metrics', async (c) => {
    const now = state.now();
    let bytes: Buffer<ArrayBuffer>;
    if (exposition && now - exposition.at < METRICS_REUSE_MS && now >= exposition.at) bytes = exposition.bytes;
    else {
      building ??= metrics.registry
        .metrics()
        .then((text) => Buffer.from(text, 'utf8'))
        .finally(() => (building = null));
      bytes = await building;
      exposition = { bytes, at: now };
    }
    return sendBody(c, bytes, 200, metrics.registry.contentType);
  });

  const index = (c: AppContext) =>
    sendJson(c, state, {
      service: 'podscope',
      version: state.version,
      endpoints: endpoints.map((e) => ({ path: e.path, methods: e.methods, description: e.description })),
    });
  // Built on first use (about 50 KB), then served as bytes.
  let openapi: Buffer<ArrayBuffer> | null = null;
  app.get('/openapi.json', (c) => {
    openapi ??= Buffer.from(JSON.stringify(openApiDocument({ version: state.version, logLines: config.logLines, gpuSamples: config.gpuSamples, dev: devEnabled })), 'utf8');
    return sendBody(c, openapi, 200, 'application/json; charset=utf-8');
  });
  app.get('/debug', index);
  app.get('/debug/', index);

  app.route('/', loginRoutes(state, sessions));
  app.route('/', pageRoutes(deps.assets, sessions));
  app.route('/debug', debugRoutes(state, statusSnapshot, services, openStreams));
  if (devEnabled) app.route('/debug', devRoutes(state, logger, services.connections));

  const errorResponse = (c: AppContext, api: ApiError): Response => {
    const info = requestInfo(c);
    return sendJson(c, state, errorBody(api, info?.requestId ?? requestIdFrom(undefined), info?.traceId ?? ''), api.status, api.headers);
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
    const info = requestInfo(c);
    logger.error({ error: err, request_id: info?.requestId, trace_id: info?.traceId, span_id: info?.spanId }, 'unhandled error while answering a request');
    return errorResponse(c, new ApiError(500, 'INTERNAL', 'podscope failed to answer this request; the error is in its log under this request_id.'));
  });

  // The request's context, access check, count and access line live around Hono rather than in a
  // middleware: any middleware makes Hono and @hono/node-server answer every request through
  // promises, which costs more than everything else podscope does per request.
  const access = accessLog(logger, 'http');
  const known = new Set<string>(endpoints.map((e) => e.path));
  // Every path but the open ones is checked, decoded as the router decodes it (so
  // `/%64ebug/status` is /debug/status), and a path that will not decode is checked too.
  const open = (path: string): boolean => {
    if (OPEN_PATHS.has(path) || ASSET_PATH.test(path)) return true;
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return false;
    }
    const p = decoded.length > 1 ? decoded.replace(/\/+$/, '') : decoded;
    return OPEN_PATHS.has(p) || ASSET_PATH.test(p);
  };
  /** Why this request may not read its path (a 401 or 403), or null when it may. */
  const refusal = (isOpen: boolean, header: (name: string) => string | undefined, remoteAddress: string | undefined): ApiError | null => {
    if (isOpen) return null;
    try {
      const cookie = header('cookie');
      checkAccess(config.token, {
        authorization: header('authorization'),
        forwarded: header('x-forwarded-for') !== undefined || header('forwarded') !== undefined,
        remoteAddress,
        session: cookie !== undefined && sessions.valid(sessionFromCookie(cookie)),
      });
      return null;
    } catch (err) {
      if (err instanceof ApiError) return err;
      throw err;
    }
  };
  const identify = (header: (name: string) => string | undefined, started: number): RequestInfo => {
    const trace = traceFrom(header('traceparent'));
    return { requestId: requestIdFrom(header('x-request-id')), traceId: trace.traceId, spanId: trace.spanId, started };
  };
  /**
   * The request count and the access line, once the answer is made. A probe that finds the pod
   * well (a 200 from /health or /ready) is counted but not logged unless PODSCOPE_LOG_PROBES asks:
   * a balancer or a harness probing every second would bury on-call's lines under its own.
   */
  const record = (method: string, route: string, path: string, info: RequestInfo, status: number): void => {
    const seconds = (performance.now() - info.started) / 1000;
    metrics.observeRequest(method, route, status, seconds);
    if (status === 200 && PROBES.has(route) && !config.logProbes) return;
    access({ requestId: info.requestId, traceId: info.traceId, spanId: info.spanId, method, route, path, status, latencyMs: Math.round(seconds * 1e6) / 1000 });
  };

  const dispatch = app.fetch;
  app.fetch = (request: Request, env?: AppEnv['Bindings'], ctx?: unknown) => {
    const started = performance.now();
    const header = (name: string) => requestHeader(request, env, name);
    const info = identify(header, started);
    const raw = env?.incoming?.url ?? new URL(request.url).pathname;
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const trimmed = path.length > 1 && path.endsWith('/') ? path.replace(/\/+$/, '') : path;
    // A bounded label: the endpoint's path, never a raw one.
    const route = known.has(trimmed) ? trimmed : 'unmatched';
    const finish = (res: Response): Response => {
      record(request.method, route, path, info, res.status);
      return res;
    };
    const refused = refusal(open(path), header, env?.incoming?.socket?.remoteAddress);
    if (refused) {
      // A browser opening the page without a session is sent to log in first.
      if (trimmed === '/' && refused.status === 401) {
        return finish(new Response(null, { status: 303, headers: { location: '/login?next=%2F', 'cache-control': 'no-store', 'x-request-id': info.requestId } }));
      }
      const body = serialize(errorBody(refused, info.requestId, info.traceId), prettyAsked(raw, header('user-agent')), state.scrubber);
      return finish(textResponse(body, refused.status, JSON_TYPE, info.requestId, refused.headers));
    }
    // @hono/node-server makes a fresh bindings object per request: it carries the ids as it is.
    let bindings: AppEnv['Bindings'];
    if (env?.incoming?.url !== undefined) {
      bindings = env;
      bindings.podscope = info;
    } else bindings = { ...env, podscope: info };
    const res = dispatch(request, bindings, ctx as never);
    return res instanceof Promise ? res.then(finish) : finish(res);
  };

  // The direct lane. A GET of exactly one of these paths (no query, no trailing slash) is what a
  // harness polls and a balancer probes; it is answered here, from node:http, with the same
  // answer, headers, count and access line as through Hono, but without the Web Request and
  // Response that @hono/node-server builds around each request and Hono's routing, which cost
  // more CPU than everything podscope itself does per request (docs/performance.md). Anything
  // else, and any request this lane would refuse or fail on, goes through Hono, which answers it
  // the one way it always does.
  const direct = new Map<string, { answer: () => Plain; open: boolean }>(
    ([['/health', health], ['/ready', () => ready()], ['/debug/status', status]] as const).map(([path, answer]) => [path, { answer, open: open(path) }]),
  );
  // Through app.fetch as it is at the time of each request (a test may wrap it to see the lanes).
  const viaHono = getRequestListener((request, env) => app.fetch(request, env), { hostname: config.host });
  const listener = (incoming: IncomingMessage, outgoing: ServerResponse): void => {
    const path = incoming.url;
    const route = incoming.method === 'GET' && path !== undefined ? direct.get(path) : undefined;
    if (route === undefined) return void viaHono(incoming, outgoing);
    const started = performance.now();
    const header = (name: string) => nodeHeader(incoming.headers, name);
    let plain: Plain;
    let body: string | Buffer;
    try {
      if (refusal(route.open, header, incoming.socket.remoteAddress) !== null) return void viaHono(incoming, outgoing);
      plain = route.answer();
      body = jsonBody(plain.body, isCurl(header('user-agent')), state.scrubber);
    } catch {
      return void viaHono(incoming, outgoing);
    }
    const info = identify(header, started);
    outgoing.writeHead(plain.status, {
      'content-type': JSON_TYPE,
      'cache-control': 'no-store',
      'x-request-id': info.requestId,
      'content-length': bodyLength(body),
    });
    outgoing.end(body);
    record('GET', path!, path!, info, plain.status);
  };

  const endStreams = () => {
    for (const end of [...openStreams]) end();
  };
  return { app, listener, endStreams };
}
