import { timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Admission } from './admission.js';
import { SERVER_CODES, type ServerCode } from './codes.js';
import { ServerError } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import { RateLimiter } from './rate-limit.js';

/** Whether an Authorization header carries the token, compared in constant time. */
function bearerMatches(header: string | undefined, token: Buffer): boolean {
  const given = Buffer.from(/^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '');
  return given.length === token.length && timingSafeEqual(given, token);
}

function isPredictionRoute(method: string, url: string): boolean {
  return method === 'POST' && (url.startsWith('/v1/') || url.startsWith('/v2/models/'));
}

/** --rate-limit: a token bucket per client address on the prediction routes. */
export function addRateLimit(app: FastifyInstance, perSecond: number): void {
  const limiter = new RateLimiter(perSecond);
  app.addHook('onRequest', async (request) => {
    if (!isPredictionRoute(request.method, request.url)) return;
    const wait = limiter.take(request.ip);
    if (wait > 0) throw new ServerError('IMGPUSH_RATE_LIMITED', `more than ${perSecond} requests a second from ${request.ip} (--rate-limit)`, Math.ceil(wait));
  });
}

/** --token: every route but the health probes wants `Authorization: Bearer <token>`. */
export function addToken(app: FastifyInstance, token: string): void {
  const expected = Buffer.from(token);
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/v2/health/')) return;
    if (bearerMatches(request.headers.authorization, expected)) return;
    void reply.header('www-authenticate', 'Bearer');
    throw new ServerError('IMGPUSH_UNAUTHORIZED', 'a missing or wrong token: send Authorization: Bearer <token>');
  });
}

/**
 * Before any body is read: 415 for a Content-Encoding (a gzip body would
 * otherwise be read as JSON or an image, and fail as one), 413 for a
 * Content-Length over --max-body-size,
 * and admission on the prediction routes (429 when the server holds all the
 * work it may). A body's bytes count against the budget until its answer ends.
 */
export function addBodyAdmission(app: FastifyInstance, admission: Admission, maxBodySize: number): void {
  app.addHook('onRequest', async (request, reply) => {
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      void reply.header('connection', 'close');
      throw new ServerError('IMGPUSH_UNSUPPORTED_ENCODING', `the body is sent with Content-Encoding ${JSON.stringify(encoding.slice(0, 40))}: this server takes bodies as they are, send it without one`);
    }
    const length = Number(request.headers['content-length'] ?? 0);
    if (length > maxBodySize) {
      void reply.header('connection', 'close');
      throw new ServerError('IMGPUSH_BODY_TOO_LARGE', `the body is ${length} bytes, over --max-body-size ${maxBodySize}`);
    }
    if (!isPredictionRoute(request.method, request.url)) return;
    const held = Number.isSafeInteger(length) && length > 0 ? length : 0;
    try {
      admission.admitBody(held);
    } catch (error) {
      // Refused before its body is read: close the connection rather than read a body no one will use.
      void reply.header('connection', 'close');
      throw error;
    }
    if (held > 0) reply.raw.once('close', () => admission.releaseBody(held));
  });
}

/**
 * Every answer counted by route and status, and timed in a Server-Timing
 * header (the server's own time, from the request's arrival to its answer:
 * a client under a burst of connections can tell it from its own wait).
 */
export function addRequestMetrics(app: FastifyInstance, metrics: ServerMetrics): void {
  app.addHook('onSend', async (_request, reply) => {
    void reply.header('server-timing', `total;dur=${reply.elapsedTime.toFixed(1)}`);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, status: String(reply.statusCode) });
    metrics.requestSeconds.observe({ route }, reply.elapsedTime / 1000);
  });
}

const CLIENT_ERRORS: Readonly<Record<string, { code: ServerCode; reason: string; message: string }>> = {
  ERR_HTTP_REQUEST_TIMEOUT: { code: 'IMGPUSH_REQUEST_TIMEOUT', reason: 'Request Timeout', message: 'the request did not arrive within --request-timeout (or its headers within --header-timeout)' },
  HPE_HEADER_OVERFLOW: { code: 'IMGPUSH_HEADERS_TOO_LARGE', reason: 'Request Header Fields Too Large', message: 'the request\'s headers are over 16 KB' },
};
const NOT_HTTP = { code: 'IMGPUSH_BAD_HTTP', reason: 'Bad Request', message: 'the request is not valid HTTP/1.1' } as const;

/**
 * Errors Node's HTTP parser meets before a request reaches a route (a
 * timeout, headers too large, bytes that are no HTTP), answered in the one
 * error shape and counted in the metrics, then the connection closed.
 */
export function clientErrorHandler(metrics: ServerMetrics): (error: Error & { code?: string }, socket: Socket) => void {
  return (error, socket) => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const { code, reason, message } = CLIENT_ERRORS[error.code ?? ''] ?? NOT_HTTP;
    const { status } = SERVER_CODES[code];
    metrics.requests.inc({ route: 'unmatched', status: String(status) });
    if (socket.writable) {
      const body = JSON.stringify({ error: { code, message } });
      socket.write(`HTTP/1.1 ${status} ${reason}\r\n`
        + `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    }
    socket.destroy(error);
  };
}
