/**
 * Request ids and W3C trace context.
 */
import { randomFillSync } from 'node:crypto';

const REQUEST_ID = /^[A-Za-z0-9._:=+-]{1,128}$/;

/** The client's X-Request-Id when well-formed, else a fresh UUID. */
export function requestIdFrom(header: string | undefined): string {
  return header !== undefined && REQUEST_ID.test(header) ? header : newUuid();
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

// Random ids come from a pool filled 4 KiB at a time: far cheaper per request than a call each.
const pool = Buffer.alloc(4096);
let used = pool.length;

function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const hex = pool.toString('hex', used, used + bytes);
  used += bytes;
  return hex;
}

/** A random version 4 UUID (RFC 9562), from the same pool. */
export function newUuid(): string {
  const h = randomHex(16);
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A random 16-byte trace id (never all zeros). */
export function newTraceId(): string {
  const id = randomHex(16);
  return /^0+$/.test(id) ? newTraceId() : id;
}

/** A random 8-byte span id (never all zeros). */
export function newSpanId(): string {
  const id = randomHex(8);
  return /^0+$/.test(id) ? newSpanId() : id;
}

export function traceFrom(header: string | undefined): TraceContext {
  const parsed = parseTraceparent(header);
  if (parsed) return { ...parsed, propagated: true };
  return { traceId: newTraceId(), spanId: newSpanId(), propagated: false };
}
