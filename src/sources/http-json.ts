/**
 * Bounded JSON over HTTP: a deadline for the whole exchange, a cap on the body, and every failure
 * returned as a value with a stable code rather than thrown.
 */

import { readCapped } from '../shared/read-capped.js';

export type HttpResult<T = unknown> =
  | { ok: true; status: number; body: T; durationMs: number }
  | { ok: false; code: 'HTTP_TIMEOUT' | 'HTTP_UNREACHABLE' | 'HTTP_STATUS' | 'HTTP_BAD_JSON' | 'HTTP_TOO_LARGE'; status?: number; message: string; durationMs: number };

export interface HttpJsonOptions {
  timeoutMs: number;
  maxBytes?: number;
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
}

export async function httpJson<T = unknown>(url: string, opts: HttpJsonOptions): Promise<HttpResult<T>> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  const init: RequestInit = { method: opts.method ?? 'GET', signal, headers: { accept: 'application/json' } };
  if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    init.headers = { accept: 'application/json', 'content-type': 'application/json' };
  }
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if (timeout.aborted) return { ok: false, code: 'HTTP_TIMEOUT', message: `no answer within ${opts.timeoutMs} ms`, durationMs: elapsed() };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, code: 'HTTP_UNREACHABLE', message: cause?.code ?? cause?.message ?? (err as Error).message, durationMs: elapsed() };
  }
  let text: string | null;
  try {
    text = await readCapped(res.body, opts.maxBytes ?? 32 * 1024 * 1024);
  } catch {
    const code = timeout.aborted ? 'HTTP_TIMEOUT' : 'HTTP_UNREACHABLE';
    return { ok: false, code, status: res.status, message: timeout.aborted ? `body not received within ${opts.timeoutMs} ms` : 'connection broke while reading the body', durationMs: elapsed() };
  }
  if (text === null) return { ok: false, code: 'HTTP_TOO_LARGE', status: res.status, message: `body larger than ${opts.maxBytes} bytes`, durationMs: elapsed() };
  if (!res.ok) return { ok: false, code: 'HTTP_STATUS', status: res.status, message: `HTTP ${res.status}`, durationMs: elapsed() };
  if (text.trim() === '') return { ok: true, status: res.status, body: undefined as T, durationMs: elapsed() };
  try {
    return { ok: true, status: res.status, body: JSON.parse(text) as T, durationMs: elapsed() };
  } catch {
    return { ok: false, code: 'HTTP_BAD_JSON', status: res.status, message: `not JSON: ${JSON.stringify(text.slice(0, 80))}`, durationMs: elapsed() };
  }
}
