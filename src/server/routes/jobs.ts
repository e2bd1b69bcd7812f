import type { FastifyPluginAsync } from 'fastify';
import { ServerError } from '../errors.js';
import { allPredictions, type Predictor } from '../inference/prediction.js';
import { callbackUrl } from '../jobs/callback.js';
import type { JobRunner } from '../jobs/job-runner.js';
import type { JobStore } from '../jobs/job-store.js';
import { assertReady, type AppState } from '../state.js';
import { readRequest, topK, type UploadLimits } from '../uploads.js';

export interface JobRoutesOptions {
  readonly state: AppState;
  readonly predictor: Predictor;
  readonly uploadLimits: UploadLimits;
  readonly jobs: JobStore;
  readonly runner: JobRunner;
  /** Hosts a callback_url may name besides loopback ones. */
  readonly allowCallbackHosts: readonly string[];
}

/** POST /v1/jobs (202 at once, the prediction runs after) and GET /v1/jobs/{id}. */
export const jobRoutes: FastifyPluginAsync<JobRoutesOptions> = async (app, { state, predictor, uploadLimits, jobs, runner, allowCallbackHosts }) => {
  app.post('/v1/jobs', async (request, reply) => {
    assertReady(state);
    const k = topK(request.query);
    const { uploads, fields } = await readRequest(request, uploadLimits);
    const callback = callbackUrl(fields.callback_url, allowCallbackHosts, { address: request.socket.localAddress, port: request.socket.localPort });
    const job = jobs.create();
    const { model } = state;
    // The client has its answer (202) while the job runs.
    runner.start(job, async () => ({ model: model.name, results: await allPredictions(uploads.map((upload) => predictor.predict(upload, k))) }), callback);
    void reply.code(202).header('location', `/v1/jobs/${job.id}`);
    return { id: job.id, status: job.status };
  });

  app.get('/v1/jobs/:id', async (request) => {
    const { id } = request.params as { id: string };
    const job = jobs.get(id);
    if (job === undefined && jobs.wasEvicted(id)) throw new ServerError('IMGPUSH_NO_SUCH_JOB', `job ${id} is gone: it was forgotten to make room for newer jobs (--max-jobs)`);
    if (job === undefined) throw new ServerError('IMGPUSH_NO_SUCH_JOB', `job ${id} does not exist: it never did, or its result was kept for --job-ttl and is gone`);
    return job;
  });
};
