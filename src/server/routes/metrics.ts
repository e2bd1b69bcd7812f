import type { FastifyPluginAsync } from 'fastify';
import type { Admission } from '../admission.js';
import type { ImageDecoder } from '../inference/preprocess.js';
import type { AppState } from '../state.js';

/** GET /metrics: Prometheus text from the server's own registry. */
export const metricsRoutes: FastifyPluginAsync<{ state: AppState; admission: Admission; decoder: ImageDecoder }> = async (app, { state, admission, decoder }) => {
  const { metrics } = state;
  app.get('/metrics', async (_request, reply) => {
    metrics.queueDepth.set(admission.images);
    metrics.bodyBytesInFlight.set(admission.bodyBytes);
    metrics.decodesRunning.set(decoder.running);
    metrics.decodesWaiting.set(decoder.waiting);
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
