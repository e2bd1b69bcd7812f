import { timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { HEADER_LENGTH, InferenceProtocolError } from '../shared/inference-protocol.js';
import type { Batcher, BatcherOptions } from './inference/batcher.js';
import { ServerError } from './errors.js';
import { encodeInferAnswer, inferBodyLimit, MODEL_VERSION, modelMetadata, parseInferRequest, serverMetadata } from './inference-protocol.js';
import type { ServerMetrics } from './metrics.js';
import type { Model } from './inference/model.js';
import { allPredictions, DEFAULT_TOP_K, predict, type Prediction, type Upload } from './inference/prediction.js';
import { RateLimiter } from './rate-limit.js';
import { ResultCache } from './inference/result-cache.js';
import { JobStore, type Job } from './jobs/job-store.js';

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
  /** How long a finished job's result is kept; default 1 h. */
  readonly jobTtlMs?: number;
  /** Most jobs kept at once; default 10,000. */
  readonly maxJobs?: number;
  /** Hosts a job's callback_url may name besides loopback ones. */
  readonly allowCallbackHosts?: readonly string[];
}

const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
const DEFAULT_JOB_TTL_MS = 60 * 60_000;
const DEFAULT_MAX_JOBS = 10_000;
const DEFAULT_HEADER_TIMEOUT_MS = 10_000;

/** What the routes read: set once the model is loaded and warmed up; `shuttingDown` once SIGTERM came. */
export interface AppState {
  model: Model | undefined;
  batcher: Batcher | undefined;
  shuttingDown: boolean;
  readonly metrics: ServerMetrics;
}

function topK(query: unknown): number {
  const raw = (query as { top_k?: unknown }).top_k;
  if (raw === undefined) return DEFAULT_TOP_K;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new ServerError(400, 'IMGPUSH_BAD_TOP_K', `top_k must be a whole number of 1 or more (got ${String(raw)})`);
  return value;
}

function isReady(state: AppState): state is AppState & { model: Model; batcher: Batcher } {
  return state.model !== undefined && state.batcher !== undefined && !state.shuttingDown;
}

/** 503 with Retry-After until the model is loaded, and once shutting down. */
function assertReady(state: AppState): asserts state is AppState & { model: Model; batcher: Batcher } {
  if (!isReady(state)) throw new ServerError(503, 'IMGPUSH_NOT_READY', state.shuttingDown ? 'the server is shutting down' : 'the model is still loading', 1);
}

/** Whether an Authorization header carries the token, compared in constant time. */
function bearerMatches(header: string | undefined, token: Buffer): boolean {
  const given = Buffer.from(/^Bearer (.+)$/i.exec(header ?? '')?.[1] ?? '');
  return given.length === token.length && timingSafeEqual(given, token);
}

/** The images of a request: every file part of a multipart body (any field name), or a raw image body. Form fields go to `fields`. */
async function* uploadsOf(request: FastifyRequest, fields: Record<string, string> = {}): AsyncGenerator<Upload> {
  if (!request.isMultipart()) {
    if (!Buffer.isBuffer(request.body)) throw new ServerError(400, 'IMGPUSH_NO_IMAGE', 'send the image as multipart/form-data or as a raw body with an image content type');
    yield { name: String(request.headers['x-filename'] ?? 'image'), bytes: request.body };
    return;
  }
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') yield { name: part.filename || part.fieldname, bytes: await part.toBuffer() };
      else if (typeof part.value === 'string') fields[part.fieldname] = part.value;
    }
  } catch (error) {
    // Limits come with their status (413); anything else the parser chokes on is a body that is not valid multipart.
    if ((error as { statusCode?: unknown }).statusCode !== undefined) throw error;
    throw new ServerError(400, 'IMGPUSH_BAD_MULTIPART', `the multipart body does not parse: ${(error as Error).message}`);
  }
}

/** Every image of a request and its form fields (a job's callback_url), read whole before the job is queued. */
async function readRequest(request: FastifyRequest): Promise<{ uploads: Upload[]; fields: Record<string, string> }> {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.query as Record<string, unknown>)) if (typeof value === 'string') fields[name] = value;
  const uploads: Upload[] = [];
  for await (const upload of uploadsOf(request, fields)) uploads.push(upload);
  if (uploads.length === 0) throw new ServerError(400, 'IMGPUSH_NO_IMAGE', 'the request holds no file');
  return { uploads, fields };
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** A job's callback_url, checked at submission: http(s), and a loopback host unless --allow-callback-hosts names it. */
function callbackUrl(text: string | undefined, allowed: readonly string[]): URL | undefined {
  if (text === undefined || text === '') return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ServerError(400, 'IMGPUSH_BAD_CALLBACK', `callback_url ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ServerError(400, 'IMGPUSH_BAD_CALLBACK', 'callback_url must be http or https');
  if (!LOOPBACK.test(url.hostname) && !allowed.includes(url.hostname)) {
    throw new ServerError(400, 'IMGPUSH_CALLBACK_REFUSED', `callback_url host ${url.hostname} is not loopback and not in --allow-callback-hosts`);
  }
  return url;
}

/** POSTs a finished job to its callback, three tries with a growing wait; a callback that never answers is logged, not retried forever. */
async function deliverCallback(url: URL, job: Job, log: (message: string) => void): Promise<void> {
  const body = JSON.stringify(job);
  for (let attempt = 1; attempt <= CALLBACK_ATTEMPTS; attempt++) {
    try {
      const answer = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json' }, headersTimeout: 10_000, bodyTimeout: 10_000 });
      await answer.body.dump();
      if (answer.statusCode < 300) return;
    } catch {
      // A refused or broken connection is retried like a 5xx.
    }
    if (attempt < CALLBACK_ATTEMPTS) await delay(500 * 2 ** (attempt - 1));
  }
  log(`callback for job ${job.id} to ${url.host} failed ${CALLBACK_ATTEMPTS} times; its result stays at /v1/jobs/${job.id}`);
}

const CALLBACK_ATTEMPTS = 3;

interface ErrorAnswer {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly retryAfterSeconds?: number | undefined;
}

/** How any error thrown in a route is answered: its status (500 for none), a stable code, a message. */
function errorAnswer(error: unknown): ErrorAnswer {
  if (error instanceof ServerError) return error;
  const { statusCode, code, message } = error as { statusCode?: number; code?: string; message: string };
  const status = statusCode !== undefined && statusCode >= 400 && statusCode < 500 ? statusCode : 500;
  // A multipart body that does not parse is the client's error; the parsers name what went wrong.
  const clientStatus = status === 406 ? 400 : status;
  return { status: clientStatus, code: code ?? 'IMGPUSH_SERVER_ERROR', message: clientStatus === 500 ? `internal error: ${message}` : message };
}

function sendError(reply: FastifyReply, { status, code, message, retryAfterSeconds }: ErrorAnswer): void {
  if (retryAfterSeconds !== undefined) void reply.header('retry-after', String(retryAfterSeconds));
  void reply.code(status).send({ error: { code, message } });
}

/** The v2 protocol's error body is `{"error": message}`; the code rides along for clients that match on it. */
function sendV2Error(reply: FastifyReply, error: unknown): void {
  const { status, code, message, retryAfterSeconds } = error instanceof InferenceProtocolError ? { status: 400, code: error.code, message: error.message } : errorAnswer(error);
  if (retryAfterSeconds !== undefined) void reply.header('retry-after', String(retryAfterSeconds));
  // The protocol answers every bad request 400: not an image (415) and undecodable (422) included; the message says which.
  void reply.code(status === 415 || status === 422 ? 400 : status).send({ error: message, code });
}

/** The model a v2 path names (and its version, if it names one); 404 for any other. */
function assertNamed(model: Model, params: unknown): void {
  const { name, version } = params as { name: string; version?: string };
  if (name !== model.name) throw new ServerError(404, 'IMGPUSH_NO_SUCH_MODEL', `no model ${JSON.stringify(name)} here: this server serves ${JSON.stringify(model.name)}`);
  if (version !== undefined && version !== MODEL_VERSION) {
    throw new ServerError(404, 'IMGPUSH_NO_SUCH_VERSION', `model ${model.name} has no version ${JSON.stringify(version)}: its one version is ${MODEL_VERSION}`);
  }
}

/**
 * The reference server's HTTP side. Routes answer 503 until the state has
 * a model; errors are JSON `{error: {code, message}}` with their status,
 * except under /v2, where the protocol's `{error: message}` is the rule.
 */
export function buildApp(options: AppOptions, state: AppState): FastifyInstance {
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(options.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS, requestTimeout);
  const app = Fastify({
    logger: options.logLevel === undefined || options.logLevel === 'silent' ? false : { level: options.logLevel },
    bodyLimit: options.maxFileSize,
    requestTimeout,
    // Node checks these timeouts only every connectionsCheckingInterval (30 s by default): check often enough to mean them.
    serverFactory: (handler) => createServer({ requestTimeout, headersTimeout, connectionsCheckingInterval: Math.min(1000, headersTimeout) }, handler),
  });
  if (options.maxConnections !== undefined) app.server.maxConnections = options.maxConnections;
  const limiter = options.rateLimit === undefined ? undefined : new RateLimiter(options.rateLimit);
  if (limiter !== undefined) {
    app.addHook('onRequest', async (request) => {
      if (request.method !== 'POST' || !(request.url.startsWith('/v1/') || request.url.startsWith('/v2/models/'))) return;
      const wait = limiter.take(request.ip);
      if (wait > 0) throw new ServerError(429, 'IMGPUSH_RATE_LIMITED', `more than ${options.rateLimit} requests a second from ${request.ip} (--rate-limit)`, Math.ceil(wait));
    });
  }
  const cache = new ResultCache(options.cacheSize);
  const { metrics } = state;
  const token = options.token === undefined ? undefined : Buffer.from(options.token);
  if (token !== undefined) {
    app.addHook('onRequest', async (request, reply) => {
      if (request.url.startsWith('/v2/health/')) return;
      if (bearerMatches(request.headers.authorization, token)) return;
      void reply.header('www-authenticate', 'Bearer');
      throw new ServerError(401, 'IMGPUSH_UNAUTHORIZED', 'a missing or wrong token: send Authorization: Bearer <token>');
    });
  }
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, status: String(reply.statusCode) });
    metrics.requestSeconds.observe({ route }, reply.elapsedTime / 1000);
  });
  void app.register(multipart, { limits: { fileSize: options.maxFileSize, files: options.maxFiles, fields: 100, fieldSize: 64 * 1024, parts: options.maxFiles + 100 } });
  for (const type of [/^image\//, 'application/octet-stream']) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: options.maxFileSize }, (_request, body, done) => done(null, body));
  }

  app.post('/v1/predict', async (request, reply) => {
    assertReady(state);
    const k = topK(request.query);
    const pending: Array<Promise<Prediction>> = [];
    for await (const upload of uploadsOf(request)) {
      const prediction = predict(upload, state, cache, k);
      // Handled below, after every part is read; until then a rejection must not count as unhandled (it would end the process).
      prediction.catch(() => {});
      pending.push(prediction);
    }
    if (pending.length === 0) throw new ServerError(400, 'IMGPUSH_NO_IMAGE', 'the request holds no file');
    const results = await allPredictions(pending);
    void reply.header('x-cache', results.every((result) => result.cache) ? 'hit' : 'miss');
    return reply.send({ model: state.model.name, results });
  });

  const jobs = new JobStore(options.jobTtlMs ?? DEFAULT_JOB_TTL_MS, options.maxJobs ?? DEFAULT_MAX_JOBS);
  app.post('/v1/jobs', async (request, reply) => {
    assertReady(state);
    const k = topK(request.query);
    const { uploads, fields } = await readRequest(request);
    const callback = callbackUrl(fields.callback_url, options.allowCallbackHosts ?? []);
    const job = jobs.create();
    // Not awaited: the client has its answer (202) while the job runs.
    void (async () => {
      job.status = 'running';
      try {
        jobs.finish(job, { result: { model: state.model.name, results: await allPredictions(uploads.map((upload) => predict(upload, state, cache, k))) } });
      } catch (error) {
        const { code, message } = error as { code?: string; message: string };
        jobs.finish(job, { error: { code: code ?? 'IMGPUSH_SERVER_ERROR', message } });
      }
      if (callback !== undefined) await deliverCallback(callback, job, (line) => request.log.warn(line));
    })();
    void reply.code(202).header('location', `/v1/jobs/${job.id}`);
    return { id: job.id, status: job.status };
  });

  app.get('/v1/jobs/:id', async (request) => {
    const { id } = request.params as { id: string };
    const job = jobs.get(id);
    if (job === undefined) throw new ServerError(404, 'IMGPUSH_NO_SUCH_JOB', `job ${id} does not exist: it never did, or its result was kept for --job-ttl and is gone`);
    return job;
  });

  app.get('/metrics', async (_request, reply) => {
    metrics.queueDepth.set(state.batcher?.depth ?? 0);
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  app.get('/v1/models', async () => {
    assertReady(state);
    const { model, batcher } = state;
    return {
      name: model.name,
      device: model.device,
      inputs: [{ name: model.inputName, shape: model.inputShape }],
      outputs: [{ name: model.outputName }],
      labels: model.labels,
      image: model.image,
      batching: { ...options.batching, batchSizes: Object.fromEntries(batcher.batchSizes.flatMap((count, size) => (count === undefined ? [] : [[size, count]]))) },
    };
  });

  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_request, reply) => {
    if (!isReady(state)) return reply.code(503).send({ ready: false });
    return { ready: true };
  });

  // The Open Inference Protocol (KServe v2 / Triton), in a context of its own: its own error body, and every body read as bytes.
  void app.register(async (v2) => {
    // A binary-extension body is JSON followed by tensor data, under whatever Content-Type a client picks: no parser of a type would take it.
    v2.removeAllContentTypeParsers();
    v2.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    const bodyLimit = inferBodyLimit(options);
    const tooLarge = new ServerError(413, 'IMGPUSH_BODY_TOO_LARGE',
      `the body is over ${bodyLimit} bytes, what --max-files ${options.maxFiles} images of --max-file-size ${options.maxFileSize} bytes take in base64`);
    v2.setErrorHandler((error, _request, reply) => sendV2Error(reply, (error as { code?: unknown }).code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? tooLarge : error));
    v2.setNotFoundHandler((request, reply) => sendV2Error(reply, new ServerError(404, 'IMGPUSH_NOT_FOUND', `no route ${request.method} ${request.url}`)));

    const server = serverMetadata();
    v2.get('/', async () => server);
    for (const path of ['/models/:name', '/models/:name/versions/:version']) {
      v2.get(path, async (request) => {
        assertReady(state);
        assertNamed(state.model, request.params);
        return modelMetadata(state.model.name);
      });
      v2.get(`${path}/ready`, async (request, reply) => {
        const { name } = request.params as { name: string };
        if (!isReady(state)) return reply.code(503).send({ name, ready: false });
        assertNamed(state.model, request.params);
        return { name, ready: true };
      });
      v2.post(`${path}/infer`, { bodyLimit }, async (request, reply) => {
        assertReady(state);
        assertNamed(state.model, request.params);
        const call = parseInferRequest(request.body, request.headers[HEADER_LENGTH], options);
        const k = call.topK ?? DEFAULT_TOP_K;
        const predictions = await allPredictions(call.images.map((bytes, i) => predict({ name: `input image ${i}`, bytes }, state, cache, k)));
        const answer = encodeInferAnswer(call, state.model.name, predictions.map((prediction) => prediction.top));
        if ('json' in answer) return answer.json;
        void reply.header('content-type', 'application/octet-stream').header(HEADER_LENGTH, String(answer.headerLength));
        return reply.send(answer.body);
      });
    }
  }, { prefix: '/v2' });

  app.setNotFoundHandler((request, reply) => sendError(reply, { status: 404, code: 'IMGPUSH_NOT_FOUND', message: `no route ${request.method} ${request.url}` }));
  app.setErrorHandler((error, _request, reply) => sendError(reply, errorAnswer(error)));
  return app;
}
