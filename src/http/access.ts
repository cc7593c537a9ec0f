/**
 * Who may read /debug/* and /metrics (contract section 3).
 *
 * With a token: only requests that carry it, compared in constant time. Without one: only direct
 * loopback clients; a request that passed through a proxy (X-Forwarded-For or Forwarded) is not
 * direct, because RunPod's public proxy reaches the pod from inside.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors.js';

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Compares two strings in time independent of where they differ and of their lengths. */
export function constantTimeEqual(a: string, b: string): boolean {
  // Hashing first gives equal-length inputs, which timingSafeEqual requires.
  return timingSafeEqual(digest(a), digest(b));
}

export interface AccessRequest {
  authorization: string | undefined;
  forwarded: boolean;
  remoteAddress: string | undefined;
  /** Whether the request carries a valid browser session cookie (from /login). */
  session?: boolean;
}

/** Throws the 401 or 403 ApiError for a request that may not pass; returns when it may. */
export function checkAccess(token: string | undefined, req: AccessRequest): void {
  if (token !== undefined) {
    if (req.session && !req.authorization) return;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.authorization ?? '');
    if (!m || !constantTimeEqual(m[1]!, token)) {
      throw new ApiError(401, 'UNAUTHORIZED', req.authorization ? 'The bearer token is not valid.' : 'This endpoint needs a bearer token.', {
        help: 'Send "Authorization: Bearer <token>" with the value of PODSCOPE_TOKEN; from a browser, log in at /login.',
        headers: { 'WWW-Authenticate': 'Bearer realm="podscope"' },
      });
    }
    return;
  }
  if (req.forwarded || !isLoopback(req.remoteAddress)) {
    throw new ApiError(403, 'FORBIDDEN', 'Without PODSCOPE_TOKEN, this endpoint answers only direct loopback clients.', {
      help: 'Set PODSCOPE_TOKEN on the pod and send "Authorization: Bearer <token>", or call from inside the pod (curl localhost).',
    });
  }
}
