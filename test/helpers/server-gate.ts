import { Batcher, type BatcherOptions } from '../../src/server/inference/batcher.js';
import { loadModel } from '../../src/server/inference/model.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import type { AppState } from '../../src/server/state.js';

/**
 * The state of a server (the built-in colours model) whose batches wait for
 * `open()`, so that work piles up on purpose; `release()` opens the gate
 * and frees the model.
 */
export async function gatedState(batching: BatcherOptions): Promise<{ state: AppState; open: () => void; release: () => Promise<void> }> {
  const model = await loadModel({ model: 'builtin:colors', device: 'cpu', log: () => {} });
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  const batcher = new Batcher(async (inputs) => {
    await gate;
    return model.run(inputs);
  }, batching);
  const state: AppState = { model, batcher, shuttingDown: false, metrics: new ServerMetrics() };
  return {
    state,
    open,
    async release() {
      open();
      await model.release();
    },
  };
}
