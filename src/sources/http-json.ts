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
  const bound = deadline(opts.timeoutMs, opts.signal);
  try {
    return await exchange<T>(url, opts, bound);
  } finally {
    bound.release();
  }
}

interface Deadline {
  signal: AbortSignal;
  /** True once the deadline, not the caller, ended the exchange. */
  readonly timedOut: boolean;
  /** Clears the timer and lets go of the caller's signal. */
  release(): void;
}

/**
 * A signal that aborts at the deadline or when the caller's does, and holds on to neither once
 * released. Not `AbortSignal.any`: on Node 20 each signal it makes stays referenced by a long-lived
 * input (a collector's) until that one aborts, so a collector polling for days grows without bound
 * (nodejs/node#55351). Not `AbortSignal.timeout`: its timer lives on after the answer came.
 */
function deadline(ms: number, caller: AbortSignal | undefined): Deadline {
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError'));
  }, ms);
  const onAbort = () => ctl.abort(caller?.reason);
  if (caller?.aborted) onAbort();
  else caller?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ctl.signal,
    get timedOut() {
      return timedOut;
    },
    release() {
      clearTimeout(timer);
      caller?.removeEventListener('abort', onAbort);
    },
  };
}

async function exchange<T>(url: string, opts: HttpJsonOptions, bound: Deadline): Promise<HttpResult<T>> {
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const init: RequestInit = { method: opts.method ?? 'GET', signal: bound.signal, headers: { accept: 'application/json' } };
  if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    init.headers = { accept: 'application/json', 'content-type': 'application/json' };
  }
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if (bound.timedOut) return { ok: false, code: 'HTTP_TIMEOUT', message: `no answer within ${opts.timeoutMs} ms`, durationMs: elapsed() };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, code: 'HTTP_UNREACHABLE', message: cause?.code ?? cause?.message ?? (err as Error).message, durationMs: elapsed() };
  }
  let text: string | null;
  try {
    text = await readCapped(res.body, opts.maxBytes ?? 32 * 1024 * 1024);
  } catch {
    const code = bound.timedOut ? 'HTTP_TIMEOUT' : 'HTTP_UNREACHABLE';
    return { ok: false, code, status: res.status, message: bound.timedOut ? `body not received within ${opts.timeoutMs} ms` : 'connection broke while reading the body', durationMs: elapsed() };
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
