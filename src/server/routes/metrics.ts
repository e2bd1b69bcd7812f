import type { FastifyPluginAsync } from 'fastify';
import type { Admission } from '../admission.js';
import type { AppState } from '../state.js';

/** GET /metrics: Prometheus text from the server's own registry. */
export const metricsRoutes: FastifyPluginAsync<{ state: AppState; admission: Admission }> = async (app, { state, admission }) => {
  const { metrics } = state;
  app.get('/metrics', async (_request, reply) => {
    metrics.queueDepth.set(admission.images);
    metrics.bodyBytesInFlight.set(admission.bodyBytes);
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
