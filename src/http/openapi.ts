/**
 * `GET /openapi.json`: podscope's HTTP contract as an OpenAPI 3.1 document, generated from the
 * schemas that type the views (shared/api-schema.ts) and validate the queries (each route's QuerySpec),
 * so it cannot say one thing while the code does another. Built once per server (its limits, such
 * as the log buffer's size, come from the configuration), served as bytes.
 */
import { z } from 'zod';
import { API, EVENT_DATA } from '../shared/api-schema.js';
import { readyQuery, type QuerySpec } from './query.js';
import { formatOnly, jobsQuery, memoryQueryOf, queueQuery, workflowQuery } from './routes/debug.js';
import { logsQuery } from './routes/logs.js';
import { fileQuery, listQuery } from './routes/artifacts.js';
import { eventsQuery } from './routes/events.js';

export interface OpenApiOptions {
  version: string;
  logLines: number;
  gpuSamples: number;
  /** Whether the development-only endpoints are served. */
  dev: boolean;
}

type Json = Record<string, unknown>;

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const json = (id: string) => ({ 'application/json': { schema: ref(id) } });
const TEXT = { 'text/plain': { schema: { type: 'string' } } };
const ERROR = { $ref: '#/components/responses/Error' };
const HTML = { 'text/html': { schema: { type: 'string' } } };

/** A query spec's parameters, as the client sends them (strings, with the patterns they must match). */
function parameters(...specs: Array<QuerySpec<z.ZodRawShape>>): Json[] {
  const out: Json[] = [];
  for (const spec of specs) {
    const schema = z.toJSONSchema(spec.schema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as { properties?: Record<string, Json>; required?: string[] };
    for (const [name, s] of Object.entries(schema.properties ?? {})) {
      if (out.some((p) => p.name === name)) continue;
      out.push({ name, in: 'query', required: schema.required?.includes(name) ?? false, schema: s });
    }
  }
  return out;
}

/** The error answers every endpoint behind the access rule may give, beside its own. */
function errors(...own: string[]): Json {
  const codes = ['401', '403', '405', '431', '500', '503', ...own];
  return Object.fromEntries(codes.sort().map((c) => [c, { $ref: '#/components/responses/Error' }]));
}

interface Op {
  summary: string;
  params?: Array<QuerySpec<z.ZodRawShape>>;
  /** 200's JSON schema id, with a text view under ?format=text when `text`. */
  ok?: string;
  text?: boolean;
  content?: Json;
  responses?: Json;
  open?: boolean;
  method?: 'get' | 'post';
  description?: string;
}

function operation(op: Op): Json {
  const content = op.content ?? { ...(op.ok ? json(op.ok) : {}), ...(op.text ? TEXT : {}) };
  const responses: Json = { '200': { description: 'OK', content }, ...(op.responses ?? {}) };
  const params = parameters(...(op.params ?? []));
  return {
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(op.open ? { security: [] } : {}),
    responses: { ...(op.open ? { '405': ERROR, '431': ERROR, '500': ERROR } : errors(...(params.length > 0 ? ['400'] : []))), ...responses },
  };
}

export function openApiDocument(opts: OpenApiOptions): Json {
  const { schemas } = z.toJSONSchema(API, { uri: (id) => `#/components/schemas/${id}`, target: 'draft-2020-12', unrepresentable: 'any' }) as { schemas: Record<string, Json> };
  for (const s of Object.values(schemas)) {
    delete s.$schema;
    delete s.$id;
  }
  for (const [type, schema] of Object.entries(EVENT_DATA)) {
    const s = z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'any' }) as Json;
    delete s.$schema;
    schemas[`Event_${type}`] = s;
  }
  const notFound = (what: string) => ({ '404': { description: what, content: json('Error') } });
  const paths: Record<string, Json> = {
    '/health': { get: operation({ summary: 'liveness: 200 whenever the process answers', ok: 'Health', open: true }) },
    '/ready': {
      get: operation({
        summary: 'readiness: 200 when every ComfyUI, its websocket and GPU sampling work and no error problem is raised, else 503 with the same body',
        params: [readyQuery],
        ok: 'Ready',
        open: true,
        responses: { '503': { description: 'not ready: the checks that fail, and the problems', content: json('Ready') }, '400': { $ref: '#/components/responses/Error' } },
      }),
    },
    '/metrics': { get: operation({ summary: 'Prometheus metrics (text exposition format 0.0.4)', content: { 'text/plain; version=0.0.4': { schema: { type: 'string' } } } }) },
    '/openapi.json': { get: operation({ summary: 'this document', content: { 'application/json': { schema: { type: 'object' } } } }) },
    '/debug': { get: operation({ summary: 'the endpoint index', ok: 'Index' }) },
    '/debug/status': { get: operation({ summary: 'pod status: GPUs, the current jobs, each ComfyUI, the queue, problems', params: [formatOnly], ok: 'Status', text: true }) },
    '/debug/memory': { get: operation({ summary: 'GPU, ComfyUI, host and podscope memory; buffers; the VRAM timeline', params: [memoryQueryOf(opts.gpuSamples)], ok: 'Memory', text: true }) },
    '/debug/workflow': {
      get: operation({
        summary: 'the running (else latest) job node by node; ?job_id= for one job (the platform job id or the prompt_id)',
        params: [workflowQuery, formatOnly],
        ok: 'Workflow',
        text: true,
        responses: notFound('JOB_NOT_FOUND: no job with that id is known; NO_JOB: no job seen yet'),
      }),
    },
    '/debug/jobs': { get: operation({ summary: 'the jobs remembered, unfinished first, then the newest finished', params: [jobsQuery], ok: 'Jobs', text: true }) },
    '/debug/queue': { get: operation({ summary: 'running and pending prompts in execution order, secrets removed; recently rejected prompts', params: [queueQuery, formatOnly], ok: 'Queue', text: true }) },
    '/debug/logs': {
      get: operation({
        summary: 'log lines, newest last; ?follow=1 streams them (server-sent events, or text with format=text)',
        params: [logsQuery(opts.logLines)],
        description: 'JSON (Logs), the text view with format=text, or with follow=1 a stream: server-sent events (`id: SEQ` and `data:` a LogLine per line), or text lines with format=text.',
        content: { ...json('Logs'), ...TEXT, 'text/event-stream': { schema: { type: 'string' } } },
        responses: notFound('JOB_NOT_FOUND: no job with that id is known and no line carries it'),
      }),
    },
    '/debug/artifacts': { get: operation({ summary: "a job's outputs (?job_id=), or the newest outputs of every job, each with its download url", params: [listQuery], ok: 'Artifacts', text: true, responses: notFound('JOB_NOT_FOUND') }) },
    '/debug/artifacts/file': {
      get: operation({
        summary: 'one output file, as ComfyUI wrote it',
        params: [fileQuery],
        description: 'The file, with the content type of its kind (image/png, video/mp4, …).',
        content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
        responses: notFound('NOT_FOUND: no such file'),
      }),
    },
    '/debug/events': {
      get: operation({
        summary: 'server-sent events of what changes: jobs, nodes, progress, outcomes, rejections, problems, GPU samples, Xids',
        description: `Each event is \`id: BOOT-SEQ\`, \`event: TYPE\` and \`data: JSON\`; its data is the schema Event_TYPE (${Object.keys(EVENT_DATA).map((t) => `\`${t}\``).join(', ')}). Reconnect with \`Last-Event-ID\` (or ?last_event_id=) to resume; \`gap\` says what could not be replayed.`,
        params: [eventsQuery],
        content: { 'text/event-stream': { schema: { type: 'string' } } },
      }),
    },
    '/': { get: operation({ summary: 'the pod as a live page', content: HTML, responses: { '303': { description: 'to /login, for a browser without a session (with PODSCOPE_TOKEN set)' } } }) },
    '/assets/{name}': {
      get: {
        summary: "the page's scripts, styles and fonts",
        security: [],
        parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string', pattern: '^[\\w.-]+$' } }],
        responses: { '200': { description: 'the file', content: { '*/*': { schema: { type: 'string' } } } }, '404': { $ref: '#/components/responses/Error' } },
      },
    },
    '/login': {
      get: operation({ summary: 'the browser login form (with PODSCOPE_TOKEN set)', content: HTML, open: true, responses: { '404': { description: 'no PODSCOPE_TOKEN is set', content: HTML } } }),
      post: {
        summary: 'the token once, for a session cookie',
        security: [],
        requestBody: { content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', properties: { token: { type: 'string' }, next: { type: 'string' } }, required: ['token'] } } } },
        responses: { '303': { description: 'logged in: to `next`' }, '401': { description: 'the token is not valid', content: { 'text/html': { schema: { type: 'string' } } } }, '404': { description: 'no PODSCOPE_TOKEN is set: there is nothing to log in to', content: HTML }, '413': { description: 'the form is too large', content: HTML }, '500': ERROR },
      },
    },
    '/logout': { post: { summary: 'ends the browser session', security: [], responses: { '303': { description: 'to /login' }, '404': { description: 'no PODSCOPE_TOKEN is set', content: json('Error') }, '500': ERROR } } },
  };
  if (opts.dev) {
    paths['/debug/config'] = { get: operation({ summary: 'development only: the effective configuration, secrets redacted', content: { 'application/json': { schema: { type: 'object' } } } }) };
    paths['/debug/connections'] = { get: operation({ summary: 'development only: connections to ComfyUI and the GPU sampler', content: { 'application/json': { schema: { type: 'object' } } } }) };
    paths['/debug/log-level'] = {
      post: {
        summary: 'development only: change the log level',
        requestBody: { content: { 'application/json': { schema: { type: 'object', properties: { level: { enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] } }, required: ['level'] } } } },
        responses: { '200': { description: 'OK', content: { 'application/json': { schema: { type: 'object', properties: { level: { type: 'string' }, previous: { type: 'string' } }, required: ['level', 'previous'] } } } }, '400': { $ref: '#/components/responses/Error' }, '413': { $ref: '#/components/responses/Error' }, ...errors() },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'podscope',
      version: opts.version,
      description: "The debug sidecar for ComfyUI on GPU pods. Times are ISO 8601 in UTC; a value podscope does not know is null, with a reason where one is known. Every error answer is the Error envelope. Endpoints other than /health, /ready and /login need the bearer token (PODSCOPE_TOKEN) or, without one, a request from inside the pod.",
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ bearer: [] }, { session: [] }],
    paths,
    components: {
      schemas,
      responses: { Error: { description: 'the error envelope: code, message, request and trace ids, details, help', content: json('Error') } },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'the value of PODSCOPE_TOKEN' },
        session: { type: 'apiKey', in: 'cookie', name: 'podscope_session', description: 'a browser session from POST /login' },
      },
    },
  };
}
