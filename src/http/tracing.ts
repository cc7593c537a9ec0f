/**
 * Request ids and W3C trace context.
 */
import { randomUUID } from 'node:crypto';

const REQUEST_ID = /^[A-Za-z0-9._:=+-]{1,128}$/;

/** The client's X-Request-Id when well-formed, else a fresh UUID. */
export function requestIdFrom(header: string | undefined): string {
  return header !== undefined && REQUEST_ID.test(header) ? header : randomUUID();
}

export interface TraceContext {
  traceId: string;
  /** The caller's span (the parent-id of its traceparent), or a fresh one. */
  spanId: string;
  /** Whether the trace id came from the client's traceparent. */
  propagated: boolean;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** Parses a W3C traceparent (version 00, or a later version's known prefix); null when invalid. */
export function parseTraceparent(header: string | undefined): { traceId: string; spanId: string } | null {
  if (!header) return null;
  const m = TRACEPARENT.exec(header.trim());
  if (!m) return null;
  const [, version, traceId, spanId, , rest] = m;
  if (version === 'ff') return null;
  if (version === '00' && rest !== undefined) return null;
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return null;
  return { traceId: traceId!, spanId: spanId! };
}

// randomUUID draws from a cached entropy pool: far cheaper per request than randomBytes.
export function newTraceId(): string {
  return randomUUID().replaceAll('-', '');
}

export function newSpanId(): string {
  return randomUUID().replaceAll('-', '').slice(0, 16);
}

export function traceFrom(header: string | undefined): TraceContext {
  const parsed = parseTraceparent(header);
  if (parsed) return { ...parsed, propagated: true };
  return { traceId: newTraceId(), spanId: newSpanId(), propagated: false };
}
