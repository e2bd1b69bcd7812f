import type { FastifyPluginAsync } from 'fastify';
import { isReady, type AppState } from '../state.js';

/**
 * The health probes, never behind the token: live once listening; ready
 * once the model is loaded, until shutdown begins. Not ready is a 503 with
 * Retry-After and the error body, code IMGPUSH_NOT_READY.
 */
export const healthRoutes: FastifyPluginAsync<{ state: AppState }> = async (app, { state }) => {
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_request, reply) => {
    if (isReady(state)) return { ready: true };
    const message = state.shuttingDown ? 'the server is shutting down' : 'the model is still loading';
    return reply.code(503).header('retry-after', '1').send({ ready: false, error: { code: 'IMGPUSH_NOT_READY', message } });
  });
};
