/**
 * Requests Node's HTTP parser refuses before any route sees them (headers too large, malformed
 * requests) still get podscope's error envelope and an X-Request-Id, like every other answer.
 */
import type { Duplex } from 'node:stream';
import { ApiError, errorBody } from './errors.js';
import { requestIdFrom, traceFrom } from './tracing.js';

export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const apiError = tooLarge
    ? new ApiError(431, 'HEADERS_TOO_LARGE', 'The request headers are larger than podscope accepts (16 KiB in all).', { help: 'Send fewer or shorter headers.' })
    : new ApiError(400, 'BAD_REQUEST', 'The request is not valid HTTP/1.1.');
  const requestId = requestIdFrom(undefined);
  const body = `${JSON.stringify(errorBody(apiError, requestId, traceFrom(undefined).traceId))}\n`;
  const reason = tooLarge ? 'Request Header Fields Too Large' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${apiError.status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nX-Request-Id: ${requestId}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
