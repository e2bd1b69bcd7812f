import type { AddressInfo } from 'node:net';
import { buildApp, type AppOptions } from './app.js';
import { SERVER_DEFAULTS } from './defaults.js';
import { Batcher } from './inference/batcher.js';
import { ServerMetrics } from './metrics.js';
import type { ModelOptions } from './inference/model.js';
import { startModelWorker } from './inference/model-worker.js';
import { InFlight, shutDown, type ShutdownReport } from './shutdown.js';
import type { AppState } from './state.js';

export interface ServeOptions extends AppOptions, Omit<ModelOptions, 'log'> {
  readonly host: string;
  readonly port: number;
  /** From close(): readiness is false this long before the listener closes; none unless given (the CLI gives --drain-delay). */
  readonly drainDelayMs?: number;
  /** From close(): requests and jobs in flight get this long, then are cut and reported. */
  readonly shutdownTimeoutMs?: number;
}

export interface RunningServer {
  readonly url: string;
  /** Settles once the model is loaded and warmed up (ready), or failed to load (then the server is closed). */
  readonly ready: Promise<void>;
  /** Readiness turns false, the listener closes after the drain delay, requests and jobs in flight finish or are cut at the shutdown timeout, the model is released. */
  close(): Promise<ShutdownReport>;
}

/**
 * Starts the reference server: it listens at once (live, not ready), loads
 * the model and warms it up with one batch, and only then is ready.
 */
export async function serve(options: ServeOptions, log: (message: string) => void): Promise<RunningServer> {
  const state: AppState = { model: undefined, batcher: undefined, shuttingDown: false, metrics: new ServerMetrics() };
  const inFlight = new InFlight(log);
  const app = buildApp(options, state, inFlight);
  // Node's default backlog (511) drops the SYNs of a burst of connections beyond it: each waits a second to try again.
  await app.listen({ host: options.host, port: options.port, backlog: SERVER_DEFAULTS.listenBacklog });
  const { port } = app.server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const url = `http://${host}:${port}`;
  const ready = (async () => {
    const model = await startModelWorker({ ...options, log });
    const { size } = model.image;
    await model.run([new Float32Array(3 * size * size)]);
    const { metrics } = state;
    metrics.modelInfo.set({ name: model.name, device: model.device }, 1);
    state.model = model;
    state.batcher = new Batcher((inputs) => model.run(inputs), options.batching, (size, ms) => {
      metrics.batchSize.observe(size);
      metrics.inferenceSeconds.observe(ms / 1000);
    });
    log(`ready: ${model.name} on ${model.device} at ${url} — push images to ${url}/v1/predict`);
  })();
  ready.catch(() => app.close());
  return {
    url,
    ready,
    async close() {
      const report = await shutDown(app, state, inFlight, {
        drainDelayMs: options.drainDelayMs ?? 0,
        shutdownTimeoutMs: options.shutdownTimeoutMs ?? SERVER_DEFAULTS.shutdownTimeoutMs,
      });
      await state.model?.release();
      return report;
    },
  };
}
