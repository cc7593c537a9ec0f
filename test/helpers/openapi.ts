/**
 * Holds podscope's answers to its OpenAPI document (the one `/openapi.json` serves): status,
 * content type and body. `checkAnswer` is called for every answer the tests receive from podscope
 * (test/helpers/openapi-setup.ts wraps fetch, testPod wraps app.request), so a field renamed,
 * made nullable or dropped fails a test the day it happens. Validation is Ajv's JSON Schema
 * 2020-12, the dialect the document declares.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { openApiDocument } from '../../src/http/openapi.js';

type Json = Record<string, any>;

const BASE = 'https://podscope.invalid/openapi.json';

export const DOCUMENT: Json = openApiDocument({ version: 'test', logLines: 1_000_000, gpuSamples: 1_000_000, dev: true });

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addSchema({ $id: BASE, components: DOCUMENT.components });
const compiled = new Map<string, ValidateFunction>();

/** One compiled validator per schema (a component by its $ref), shared by every answer it checks. */
function validator(schema: Json): ValidateFunction {
  const key = schema.$ref ?? JSON.stringify(schema);
  let v = compiled.get(key);
  if (!v) {
    v = ajv.compile(schema.$ref ? { $ref: `${BASE}${schema.$ref}` } : schema);
    compiled.set(key, v);
  }
  return v;
}

// Compiled now, before any test: compiling one (about 80 ms for Status) inside a timed request
// would be counted as podscope's answer time.
for (const item of Object.values(DOCUMENT.paths) as Json[]) {
  for (const op of Object.values(item) as Json[]) {
    for (const r of Object.values(op.responses ?? {}) as Json[]) {
      const response = r.$ref ? DOCUMENT.components.responses[String(r.$ref).split('/').pop()!] : r;
      const schema = response?.content?.['application/json']?.schema;
      if (schema) validator(schema);
    }
  }
}

/** The document's operation for a path as podscope routes it (a trailing slash names the same). */
function operationOf(method: string, path: string): Json | undefined {
  const p = path.length > 1 ? path.replace(/\/+$/, '') : path;
  const m = method.toLowerCase() === 'head' ? 'get' : method.toLowerCase();
  if (DOCUMENT.paths[p]) return DOCUMENT.paths[p][m];
  // A templated path (`/assets/{name}`).
  const templated = Object.keys(DOCUMENT.paths).find((t) => t.includes('{') && new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(p));
  return templated ? DOCUMENT.paths[templated][m] : undefined;
}

function responseOf(op: Json, status: number): Json | undefined {
  const r = op.responses[String(status)] ?? op.responses.default;
  return r?.$ref ? DOCUMENT.components.responses[String(r.$ref).split('/').pop()!] : r;
}

/**
 * Why an answer does not match the document, or null when it does. Bodies that are not JSON (text,
 * files, streams) are checked by their status and content type only.
 */
export function mismatch(method: string, url: string, status: number, contentType: string | null, body: string | null): string | null {
  const raw = new URL(url, 'http://podscope').pathname;
  let pathname = raw;
  try {
    pathname = decodeURIComponent(raw);
  } catch {
    /* not valid percent-encoding: podscope answers it as it stands */
  }
  const op = operationOf(method, pathname);
  const what = `${method} ${raw} answered ${status}`;
  // No endpoint there (a path or method the document does not have, or one this server does not
  // serve): any error, in the error envelope.
  const response = op ? (responseOf(op, status) ?? (status === 404 ? DOCUMENT.components.responses.Error : undefined)) : status >= 400 ? DOCUMENT.components.responses.Error : undefined;
  if (!response) return `${what}, which the document does not list for it`;
  if (!response.content) return null;
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const key = Object.keys(response.content).find((k) => k.split(';')[0]!.trim().toLowerCase() === media) ?? Object.keys(response.content).find((k) => k === '*/*');
  if (!key) return `${what} as ${contentType ?? 'no content type'}; the document lists ${Object.keys(response.content).join(', ')}`;
  if (media !== 'application/json' || body === null || method.toUpperCase() === 'HEAD') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return `${what} with a body that is not JSON`;
  }
  const v = validator(response.content[key].schema);
  if (v(parsed)) return null;
  return `${what} with a body the document does not allow: ${ajv.errorsText(v.errors, { separator: '; ', dataVar: 'body' })}`;
}

/** Checks an answer; throws naming what does not match. The response itself is left unread. */
export async function checkAnswer(method: string, url: string, res: Response): Promise<void> {
  const type = res.headers.get('content-type');
  const streamed = type !== null && /^text\/event-stream|^application\/octet-stream/i.test(type);
  const body = streamed || !/json/i.test(type ?? '') ? null : await res.clone().text();
  const why = mismatch(method, url, res.status, type, body);
  if (why) throw new Error(`podscope's answer does not match its OpenAPI document: ${why}`);
}
