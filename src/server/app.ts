import { timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance } from 'fastify';
import { SERVER_DEFAULTS } from './defaults.js';
import { errorAnswer, sendError, ServerError } from './errors.js';
import type { BatcherOptions } from './inference/batcher.js';
import { ResultCache } from './inference/result-cache.js';
import { JobStore } from './jobs/job-store.js';
import { RateLimiter } from './rate-limit.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { metricsRoutes } from './routes/metrics.js';
import { predictRoutes } from './routes/predict.js';
import { v2Routes } from './routes/v2.js';
import type { AppState } from './state.js';

export interface AppOptions {
  /** Largest image, in bytes (413 beyond). */
  readonly maxFileSize: number;
  /** Most images in one multipart request (413 beyond). */
  readonly maxFiles: number;
  readonly batching: BatcherOptions;
  /** When set, every route but the health ones wants `Authorization: Bearer <token>`. */
  readonly token?: string | undefined;
  /** Predictions kept by image sha256; 0 turns the cache off. */
  readonly cacheSize: number;
  /** Requests per second per client address on the prediction routes, v1 and v2 (429 beyond); undefined: no limit. */
  readonly rateLimit?: number | undefined;
  /** The whole request must arrive within this (a slow body cannot hold a connection forever). */
  readonly requestTimeoutMs?: number;
  /** The headers must arrive within this (slowloris). */
  readonly headerTimeoutMs?: number;
  readonly maxConnections?: number | undefined;
  /** pino's levels; 'silent' logs nothing. */
  readonly logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** How long a finished job's result is kept. */
  readonly jobTtlMs?: number;
  /** Most jobs kept at once. */
  readonly maxJobs?: number;
  /** Hosts a job's callback_url may name besides loopback ones. */
  readonly allowCallbackHosts?: readonly string[];
}

/** Whether an Authorization header carries the token, compared in constant time. */
function bearerMatches(header: string | undefined, token: Buffer): boolean {
  const given = Buffer.from(/^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '');
  return given.length === token.length && timingSafeEqual(given, token);
}

function isPredictionRoute(method: string, url: string): boolean {
  return method === 'POST' && (url.startsWith('/v1/') || url.startsWith('/v2/models/'));
}

/** The hooks every route goes through: --rate-limit, --token, and the request metrics. */
function addGuards(app: FastifyInstance, options: AppOptions, state: AppState): void {
  const { rateLimit } = options;
  if (rateLimit !== undefined) {
    const limiter = new RateLimiter(rateLimit);
    app.addHook('onRequest', async (request) => {
      if (!isPredictionRoute(request.method, request.url)) return;
      const wait = limiter.take(request.ip);
      if (wait > 0) throw new ServerError('IMGPUSH_RATE_LIMITED', `more than ${rateLimit} requests a second from ${request.ip} (--rate-limit)`, Math.ceil(wait));
    });
  }
  const token = options.token === undefined ? undefined : Buffer.from(options.token);
  if (token !== undefined) {
    app.addHook('onRequest', async (request, reply) => {
      if (request.url.startsWith('/v2/health/')) return;
      if (bearerMatches(request.headers.authorization, token)) return;
      void reply.header('www-authenticate', 'Bearer');
      throw new ServerError('IMGPUSH_UNAUTHORIZED', 'a missing or wrong token: send Authorization: Bearer <token>');
    });
  }
  const { metrics } = state;
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, status: String(reply.statusCode) });
    metrics.requestSeconds.observe({ route }, reply.elapsedTime / 1000);
  });
}

/**
 * The reference server's HTTP side: one plugin per route group. Routes
 * answer 503 until the state has a model; errors are JSON
 * `{error: {code, message}}` with their status, except under /v2, where
 * the protocol's `{error: message}` is the rule.
 */
export function buildApp(options: AppOptions, state: AppState): FastifyInstance {
  const requestTimeout = options.requestTimeoutMs ?? SERVER_DEFAULTS.requestTimeoutMs;
  const headersTimeout = Math.min(options.headerTimeoutMs ?? SERVER_DEFAULTS.headerTimeoutMs, requestTimeout);
  const app = Fastify({
    logger: options.logLevel === undefined || options.logLevel === 'silent' ? false : { level: options.logLevel },
    bodyLimit: options.maxFileSize,
    requestTimeout,
    // Node checks these timeouts only every connectionsCheckingInterval (30 s by default): check often enough to mean them.
    serverFactory: (handler) => createServer({ requestTimeout, headersTimeout, connectionsCheckingInterval: Math.min(1000, headersTimeout) }, handler),
  });
  if (options.maxConnections !== undefined) app.server.maxConnections = options.maxConnections;
  addGuards(app, options, state);
  void app.register(multipart, { limits: { fileSize: options.maxFileSize, files: options.maxFiles, fields: 100, fieldSize: 64 * 1024, parts: options.maxFiles + 100 } });
  for (const type of [/^image\//, 'application/octet-stream']) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: options.maxFileSize }, (_request, body, done) => done(null, body));
  }

  const cache = new ResultCache(options.cacheSize);
  const jobs = new JobStore(options.jobTtlMs ?? SERVER_DEFAULTS.jobTtlMs, options.maxJobs ?? SERVER_DEFAULTS.maxJobs);
  void app.register(healthRoutes, { state });
  void app.register(metricsRoutes, { state });
  void app.register(predictRoutes, { state, cache, batching: options.batching });
  void app.register(jobRoutes, { state, cache, jobs, allowCallbackHosts: options.allowCallbackHosts ?? [] });
  void app.register(v2Routes, { prefix: '/v2', state, cache, limits: options });

  app.setNotFoundHandler((request, reply) => sendError(reply, { status: 404, code: 'IMGPUSH_NOT_FOUND', message: `no route ${request.method} ${request.url}` }));
  app.setErrorHandler((error, _request, reply) => sendError(reply, errorAnswer(error)));
  return app;
}
