import { parentPort, workerData } from 'node:worker_threads';
import { UsageError } from '../../shared/errors.js';
import { loadModel, type ModelOptions } from './model.js';

/**
 * The model's own thread. onnxruntime-node runs a session synchronously (in
 * a setImmediate on the thread that calls it), so on the main thread every
 * batch would stop HTTP and image decoding for its whole duration.
 */
export type WorkerRequest = { readonly id: number; readonly inputs: Float32Array[] } | { readonly close: true };
export type WorkerReply =
  | { readonly loaded: ModelInfo }
  | { readonly loadFailed: { readonly message: string; readonly code: string; readonly usage: boolean } }
  | { readonly log: string }
  | { readonly id: number; readonly outputs?: Float32Array[]; readonly error?: string };

export type ModelInfo = Omit<Awaited<ReturnType<typeof loadModel>>, 'run' | 'release'>;

const port = parentPort;
if (port === null) throw new Error('inference-worker runs as a worker thread');
const options = workerData as Omit<ModelOptions, 'log'>;
const post = (reply: WorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(reply, transfer);

try {
  const model = await loadModel({ ...options, log: (line) => post({ log: line }) });
  const { run, release, ...info } = model;
  post({ loaded: info });
  port.on('message', async (request: WorkerRequest) => {
    if ('close' in request) {
      await release();
      port.close();
      return;
    }
    try {
      const outputs = await run(request.inputs);
      post({ id: request.id, outputs }, outputs.map((output) => output.buffer as ArrayBuffer));
    } catch (error) {
      post({ id: request.id, error: (error as Error).message });
    }
  });
} catch (error) {
  const { message, code } = error as { message: string; code?: string };
  post({ loadFailed: { message, code: code ?? 'IMGPUSH_BAD_MODEL', usage: error instanceof UsageError } });
  port.close();
}
