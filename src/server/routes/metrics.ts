import type { FastifyPluginAsync } from 'fastify';
import type { AppState } from '../state.js';

/** GET /metrics: Prometheus text from the server's own registry. */
export const metricsRoutes: FastifyPluginAsync<{ state: AppState }> = async (app, { state }) => {
  const { metrics } = state;
  app.get('/metrics', async (_request, reply) => {
    metrics.queueDepth.set(state.batcher?.depth ?? 0);
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};
