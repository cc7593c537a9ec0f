/**
 * The one error shape of contract section 3, and the error type routes throw to produce it.
 */

export type ErrorCode =
  | 'INVALID_PARAMETER'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'JOB_NOT_FOUND'
  | 'NO_JOB'
  | 'METHOD_NOT_ALLOWED'
  | 'PAYLOAD_TOO_LARGE'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'HEADERS_TOO_LARGE'
  | 'BAD_REQUEST';

export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    request_id: string;
    trace_id: string;
    details: Record<string, unknown>;
    help: string | null;
  };
}

/** An error a route means to answer with: its status, code and message reach the client as-is. */
export class ApiError extends Error {
  readonly details: Record<string, unknown>;
  readonly help: string | null;
  readonly headers: Record<string, string>;

  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 413 | 431 | 500 | 503,
    readonly code: ErrorCode,
    message: string,
    opts: { details?: Record<string, unknown>; help?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.details = opts.details ?? {};
    this.help = opts.help ?? null;
    this.headers = opts.headers ?? {};
  }
}

export function errorBody(err: ApiError, requestId: string, traceId: string): ErrorBody {
  return {
    error: {
      code: err.code,
      message: err.message,
      request_id: requestId,
      trace_id: traceId,
      details: err.details,
      help: err.help,
    },
  };
}
