import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { errorBody, Errno } from '../webpush/protocol/errors.js';

/**
 * Answers requests Node's HTTP parser refuses before fastify routes them (headers or URL over the size limit,
 * a malformed request line, a client timeout). No door is known yet, so the body carries both doors' error
 * fields: autopush's {code, errno, error, message, more_info} and MongoosePush's {reason}, which is what the
 * OpenAPI document promises for every 4xx (schemathesis found fastify's own body here). Otherwise as fastify's
 * default handler: nothing for a reset connection, then close.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'HPE_URI_TOO_LONG' ? 414 : 400;
  const body = JSON.stringify({
    ...errorBody(status, Errno.invalidRequest.errno, status === 431 ? 'Request headers are too large' : 'Malformed request'),
    error: STATUS_CODES[status] ?? 'Error',
    reason: 'invalid_request',
  });
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
