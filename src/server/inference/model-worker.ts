import { Worker } from 'node:worker_threads';
import { ImgpushError, UsageError } from '../../shared/errors.js';
import { ServerError } from '../errors.js';
import type { ModelInfo, WorkerReply, WorkerRequest } from './inference-worker.js';
import type { Model, ModelOptions } from './model.js';

/**
 * Loads the model in a worker thread and returns it as a Model whose run()
 * posts the batch there: inference then overlaps with HTTP and decoding
 * instead of stopping them. Inputs are transferred, not copied.
 */
export function startModelWorker(options: ModelOptions): Promise<Model> {
  const { log, ...data } = options;
  const worker = new Worker(new URL('./inference-worker.js', import.meta.url), { workerData: data });
  const pending = new Map<number, { resolve: (outputs: Float32Array[]) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  return new Promise((resolve, reject) => {
    worker.on('error', (error) => {
      reject(error);
      for (const waiting of pending.values()) waiting.reject(error);
      pending.clear();
    });
    worker.on('message', (reply: WorkerReply) => {
      if ('log' in reply) {
        log(reply.log);
      } else if ('loadFailed' in reply) {
        const { message, code, usage } = reply.loadFailed;
        // A usage error is always one of ours, so its code is an IMGPUSH_ code.
        reject(usage ? new UsageError(code as `IMGPUSH_${string}`, message) : new ImgpushError(code, message));
      } else if ('loaded' in reply) {
        resolve(workerModel(worker, reply.loaded, pending, () => nextId++));
      } else {
        const waiting = pending.get(reply.id);
        pending.delete(reply.id);
        if (reply.error !== undefined) waiting?.reject(new ServerError('IMGPUSH_INFERENCE', `inference failed: ${reply.error}`));
        else waiting?.resolve(reply.outputs ?? []);
      }
    });
  });
}

function workerModel(
  worker: Worker,
  info: ModelInfo,
  pending: Map<number, { resolve: (outputs: Float32Array[]) => void; reject: (error: Error) => void }>,
  nextId: () => number,
): Model {
  return {
    ...info,
    run(inputs) {
      const id = nextId();
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        const request: WorkerRequest = { id, inputs: [...inputs] };
        worker.postMessage(request, inputs.map((input) => input.buffer as ArrayBuffer));
      });
    },
    async release() {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage({ close: true } satisfies WorkerRequest);
      await exited;
    },
  };
}
