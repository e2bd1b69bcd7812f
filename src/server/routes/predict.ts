import type { FastifyPluginAsync } from 'fastify';
import { ServerError } from '../errors.js';
import type { BatcherOptions } from '../inference/batcher.js';
import { allPredictions, type Prediction, type Predictor } from '../inference/prediction.js';
import { assertReady, type AppState } from '../state.js';
import { topK, uploadsOf, type UploadLimits } from '../uploads.js';

export interface PredictRoutesOptions {
  readonly state: AppState;
  readonly predictor: Predictor;
  readonly uploadLimits: UploadLimits;
  readonly batching: BatcherOptions;
}

/** POST /v1/predict (images in, labels out, in one request) and GET /v1/models. */
export const predictRoutes: FastifyPluginAsync<PredictRoutesOptions> = async (app, { state, predictor, uploadLimits, batching }) => {
  app.post('/v1/predict', async (request, reply) => {
    assertReady(state);
    const k = topK(request.query);
    const pending: Array<Promise<Prediction>> = [];
    for await (const upload of uploadsOf(request, uploadLimits)) {
      const prediction = predictor.predict(upload, k);
      // Handled below, after every part is read; until then a rejection must not count as unhandled (it would end the process).
      prediction.catch(() => {});
      pending.push(prediction);
    }
    if (pending.length === 0) throw new ServerError('IMGPUSH_NO_IMAGE', 'the request holds no file');
    const results = await allPredictions(pending);
    void reply.header('x-cache', results.every((result) => result.cache) ? 'hit' : 'miss');
    return reply.send({ model: state.model.name, results });
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
      batching: { ...batching, batchSizes: Object.fromEntries(batcher.batchSizes.flatMap((count, size) => (count === undefined ? [] : [[size, count]]))) },
    };
  });
};
