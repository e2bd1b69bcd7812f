import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { ServerMetrics } from './metrics.js';

export interface BodyRateLimits {
  /** Bytes a second a body must keep arriving at (--min-body-rate); 0 turns the check off. */
  readonly minBytesPerSecond: number;
  /** How often, and over how long, the rate is judged. */
  readonly windowMs: number;
}

interface Watched {
  readonly request: IncomingMessage;
  /** The socket's bytes read, and when, at the start of the window being judged. */
  bytesRead: number;
  since: number;
}

const BODY = JSON.stringify({ error: { code: 'IMGPUSH_REQUEST_TIMEOUT', message: 'the body arrived slower than --min-body-rate' } });

/**
 * Cuts a request whose body trickles in slower than a minimum rate, judged
 * over each window: a client dripping a byte a second would otherwise hold
 * its connection until --request-timeout (2 minutes), and a few hundred of
 * them every connection. One timer for all requests; a request costs a Set
 * entry while its body is read.
 */
export function addBodyRate(app: FastifyInstance, { minBytesPerSecond, windowMs }: BodyRateLimits, metrics: ServerMetrics): void {
  if (minBytesPerSecond <= 0) return;
  const watched = new Set<Watched>();
  const timer = setInterval(() => {
    const now = performance.now();
    for (const entry of watched) {
      const { request } = entry;
      if (request.complete) {
        watched.delete(entry);
        continue;
      }
      // Judged over a whole window of its own, not the part of one it arrived in.
      if (now - entry.since < windowMs) continue;
      const read = request.socket.bytesRead;
      if ((read - entry.bytesRead) * 1000 >= minBytesPerSecond * (now - entry.since)) {
        entry.bytesRead = read;
        entry.since = now;
        continue;
      }
      watched.delete(entry);
      metrics.requests.inc({ route: 'unmatched', status: '408' });
      if (request.socket.writable && !request.socket.destroyed) {
        request.socket.end(`HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(BODY)}\r\nConnection: close\r\n\r\n${BODY}`);
      }
      request.socket.destroySoon();
    }
  }, windowMs / 2).unref();
  app.addHook('onClose', async () => clearInterval(timer));
  app.addHook('onRequest', async (request, reply) => {
    if (request.raw.complete) return;
    const entry: Watched = { request: request.raw, bytesRead: request.raw.socket.bytesRead, since: performance.now() };
    watched.add(entry);
    reply.raw.once('close', () => watched.delete(entry));
  });
}
