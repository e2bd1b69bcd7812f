import { createServer } from 'node:http';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance } from 'fastify';
import { Admission } from './admission.js';
import { addBodyRate } from './body-rate.js';
import { SERVER_DEFAULTS } from './defaults.js';
import { errorAnswer, sendError } from './errors.js';
import { addBodyAdmission, addRateLimit, addRequestMetrics, addToken, clientErrorHandler } from './hooks.js';
import type { BatcherOptions } from './inference/batcher.js';
import { Predictor } from './inference/prediction.js';
import { ImageDecoder } from './inference/preprocess.js';
import { ResultCache } from './inference/result-cache.js';
import { JobRunner } from './jobs/job-runner.js';
import { JobStore } from './jobs/job-store.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { metricsRoutes } from './routes/metrics.js';
import { predictRoutes } from './routes/predict.js';
import { v2Routes } from './routes/v2.js';
import { InFlight } from './shutdown.js';
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
  /** Hosts (`host` or `host:port`) a job's callback_url may name; loopback ones too only when named. */
  readonly allowCallbackHosts?: readonly string[];
  /** Signs every callback: HMAC-SHA256 of the body, in X-Imgpush-Signature. */
  readonly callbackSecret?: string | undefined;
  /** Any request's body, every route (413 beyond). */
  readonly maxBodySize?: number;
  /** Bytes of bodies read or held at once (429 beyond). */
  readonly maxBodyBytesInFlight?: number;
  /** Width × height from an image's header (422 beyond, not decoded). */
  readonly maxPixels?: number;
  readonly decodeTimeoutMs?: number;
  /** Decodes at once. */
  readonly maxDecodes?: number;
  /** How long an idle keep-alive connection is kept. */
  readonly keepAliveTimeoutMs?: number;
  /** Bytes a second a body must keep arriving at; 0: no check. */
  readonly minBodyRate?: number;
  /** The window the body rate is judged over. */
  readonly bodyRateWindowMs?: number;
}

/** The options with every default filled in from defaults.ts. */
function limitsOf(options: AppOptions) {
  const requestTimeout = options.requestTimeoutMs ?? SERVER_DEFAULTS.requestTimeoutMs;
  return {
    requestTimeout,
    headersTimeout: Math.min(options.headerTimeoutMs ?? SERVER_DEFAULTS.headerTimeoutMs, requestTimeout),
    maxBodySize: options.maxBodySize ?? SERVER_DEFAULTS.maxBodySize,
    maxBodyBytesInFlight: options.maxBodyBytesInFlight ?? SERVER_DEFAULTS.maxBodyBytesInFlight,
    maxPixels: options.maxPixels ?? SERVER_DEFAULTS.maxPixels,
    decodeTimeoutMs: options.decodeTimeoutMs ?? SERVER_DEFAULTS.decodeTimeoutMs,
    maxDecodes: options.maxDecodes ?? SERVER_DEFAULTS.maxDecodes,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? SERVER_DEFAULTS.keepAliveTimeoutMs,
    maxConnections: options.maxConnections ?? SERVER_DEFAULTS.maxConnections,
    bodyRate: { minBytesPerSecond: options.minBodyRate ?? SERVER_DEFAULTS.minBodyRate, windowMs: options.bodyRateWindowMs ?? SERVER_DEFAULTS.bodyRateWindowMs },
  };
}

/**
 * The reference server's HTTP side: one plugin per route group. Routes
 * answer 503 until the state has a model; errors are JSON
 * `{error: {code, message}}` with their status, except under /v2, where
 * the protocol's `{error: message}` is the rule.
 */
export function buildApp(options: AppOptions, state: AppState, inFlight = new InFlight()): FastifyInstance {
  const limits = limitsOf(options);
  const { requestTimeout, headersTimeout, maxBodySize } = limits;
  const { metrics } = state;
  const app = Fastify({
    logger: options.logLevel === undefined || options.logLevel === 'silent' ? false : { level: options.logLevel },
    bodyLimit: Math.min(options.maxFileSize, maxBodySize),
    requestTimeout,
    // Shutting down, the routes answer 503 in the server's own error shape (state.shuttingDown), not Fastify's.
    return503OnClosing: false,
    clientErrorHandler: clientErrorHandler(metrics),
    // Node checks these timeouts only every connectionsCheckingInterval (30 s by default): check often enough to mean them.
    serverFactory: (handler) => {
      const server = createServer({ requestTimeout, headersTimeout, connectionsCheckingInterval: Math.min(1000, headersTimeout) }, handler);
      server.keepAliveTimeout = limits.keepAliveTimeoutMs;
      return server;
    },
  });
  app.server.maxConnections = limits.maxConnections;
  addBodyRate(app, limits.bodyRate, metrics);
  const admission = new Admission({ maxImages: options.batching.queueLimit, maxBodyBytes: limits.maxBodyBytesInFlight });
  inFlight.track(app);
  addBodyAdmission(app, admission, maxBodySize);
  if (options.rateLimit !== undefined) addRateLimit(app, options.rateLimit);
  if (options.token !== undefined) addToken(app, options.token);
  addRequestMetrics(app, metrics);
  void app.register(multipart, { limits: { fileSize: options.maxFileSize, files: options.maxFiles, fields: 100, fieldSize: 64 * 1024, parts: options.maxFiles + 100 } });
  for (const type of [/^image\//, 'application/octet-stream']) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: Math.min(options.maxFileSize, maxBodySize) }, (_request, body, done) => done(null, body));
  }

  const decoder = new ImageDecoder({ maxPixels: limits.maxPixels, timeoutMs: limits.decodeTimeoutMs, concurrency: limits.maxDecodes });
  const predictor = new Predictor(state, { cache: new ResultCache(options.cacheSize), decoder, admission });
  const jobs = new JobStore(options.jobTtlMs ?? SERVER_DEFAULTS.jobTtlMs, options.maxJobs ?? SERVER_DEFAULTS.maxJobs);
  inFlight.jobs = new JobRunner(jobs, inFlight.log, options.callbackSecret);
  const uploadLimits = { maxBodySize };
  void app.register(healthRoutes, { state });
  void app.register(metricsRoutes, { state, admission, decoder });
  void app.register(predictRoutes, { state, predictor, uploadLimits, batching: options.batching });
  void app.register(jobRoutes, { state, predictor, uploadLimits, jobs, runner: inFlight.jobs, allowCallbackHosts: options.allowCallbackHosts ?? [] });
  void app.register(v2Routes, { prefix: '/v2', state, predictor, limits: { maxFiles: options.maxFiles, maxFileSize: options.maxFileSize, maxBodySize }, batching: options.batching });

  app.setNotFoundHandler((request, reply) => sendError(reply, { status: 404, code: 'IMGPUSH_NOT_FOUND', message: `no route ${request.method} ${request.url.slice(0, 200)}` }));
  app.setErrorHandler((error, _request, reply) => sendError(reply, errorAnswer(error)));
  return app;
}
