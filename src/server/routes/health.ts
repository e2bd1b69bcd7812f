import type { FastifyPluginAsync } from 'fastify';
import { isReady, type AppState } from '../state.js';

/** The health probes, never behind the token: live once listening; ready once the model is loaded, until shutdown begins. */
export const healthRoutes: FastifyPluginAsync<{ state: AppState }> = async (app, { state }) => {
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_request, reply) => {
    if (!isReady(state)) return reply.code(503).send({ ready: false });
    return { ready: true };
  });
};
