import type { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HEADER_LENGTH } from '../../shared/inference-protocol.js';
import { readBody } from '../body.js';
import { assertDigest, claimedSha256, sha256 } from '../content-digest.js';
import { errorAnswer, sendV2Error, ServerError } from '../errors.js';
import type { Model } from '../inference/model.js';
import { allPredictions, DEFAULT_TOP_K, type Predictor } from '../inference/prediction.js';
import { InferParser } from '../infer-parser.js';
import type { BatcherOptions } from '../inference/batcher.js';
import { classesNeeded, encodeInferAnswer, inferBodyLimit, MODEL_VERSION, modelConfig, modelMetadata, serverMetadata, type InferLimits } from '../inference-protocol.js';
import { assertReady, isReady, type AppState } from '../state.js';

export interface V2RoutesOptions {
  readonly state: AppState;
  readonly predictor: Predictor;
  readonly limits: InferLimits;
  readonly batching: BatcherOptions;
}

/** The model a v2 path names, by its name or an alias (and its version, if it names one); 404 for any other. */
function assertNamed(model: Model, params: unknown): void {
  const { name, version } = params as { name: string; version?: string };
  if (name !== model.name && !model.aliases.includes(name)) throw new ServerError('IMGPUSH_NO_SUCH_MODEL', `no model ${JSON.stringify(name)} here: this server serves ${JSON.stringify(model.name)}`);
  if (version !== undefined && version !== MODEL_VERSION) {
    throw new ServerError('IMGPUSH_NO_SUCH_VERSION', `model ${model.name} has no version ${JSON.stringify(version)}: its one version is ${MODEL_VERSION}`);
  }
}

/**
 * The Open Inference Protocol (KServe v2 / Triton) under /v2, in a context
 * of its own: its own error body, and every body read as bytes.
 */
export const v2Routes: FastifyPluginAsync<V2RoutesOptions> = async (v2, { state, predictor, limits, batching }) => {
  // A binary-extension body is JSON followed by tensor data, under whatever Content-Type a client picks: no parser of a type would take it.
  v2.removeAllContentTypeParsers();
  const { bytes: bodyLimit, why } = inferBodyLimit(limits);
  const tooLarge = new ServerError('IMGPUSH_BODY_TOO_LARGE', `the body is over ${why}`);
  v2.addContentTypeParser('*', async (request: FastifyRequest, payload: Readable) => {
    const length = request.headers['content-length'];
    const body = await readBody(payload, length === undefined ? undefined : Number(length), bodyLimit);
    const claimed = claimedSha256(request.headers['content-digest']);
    if (claimed !== undefined) assertDigest(claimed, sha256(body));
    return body;
  });
  const isTooLarge = (error: unknown) => (error as { code?: unknown }).code === 'FST_ERR_CTP_BODY_TOO_LARGE' || (error as { code?: unknown }).code === 'IMGPUSH_BODY_TOO_LARGE';
  v2.setErrorHandler((error, _request, reply) => sendV2Error(reply, errorAnswer(isTooLarge(error) ? tooLarge : error)));
  const parser = new InferParser(limits);
  v2.addHook('onClose', () => parser.close());
  v2.setNotFoundHandler((request, reply) => sendV2Error(reply, new ServerError('IMGPUSH_NOT_FOUND', `no route ${request.method} ${request.url}`)));

  const server = serverMetadata();
  v2.get('/', async () => server);
  for (const path of ['/models/:name', '/models/:name/versions/:version']) {
    v2.get(path, async (request) => {
      assertReady(state);
      assertNamed(state.model, request.params);
      return modelMetadata(state.model.name);
    });
    v2.get(`${path}/config`, async (request) => {
      assertReady(state);
      assertNamed(state.model, request.params);
      return modelConfig(state.model.name, batching);
    });
    v2.get(`${path}/ready`, async (request, reply) => {
      // Before the model is loaded, its name is not known yet: the path's stands for it.
      if (!isReady(state)) return reply.code(503).send({ name: state.model?.name ?? (request.params as { name: string }).name, ready: false });
      assertNamed(state.model, request.params);
      return { name: state.model.name, ready: true };
    });
    v2.post(`${path}/infer`, { bodyLimit }, async (request, reply) => {
      assertReady(state);
      assertNamed(state.model, request.params);
      const call = await parser.parse(Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0), request.headers[HEADER_LENGTH]);
      const k = classesNeeded(call, DEFAULT_TOP_K);
      const predictions = await allPredictions(call.images.map((bytes, i) => predictor.predict({ name: `input image ${i}`, bytes }, k)));
      const answer = encodeInferAnswer(call, state.model.name, predictions.map((prediction) => prediction.top), DEFAULT_TOP_K);
      if ('json' in answer) return answer.json;
      void reply.header('content-type', 'application/octet-stream').header(HEADER_LENGTH, String(answer.headerLength));
      return reply.send(answer.body);
    });
  }
};
