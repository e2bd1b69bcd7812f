import type { Batcher } from './inference/batcher.js';
import type { Model } from './inference/model.js';
import { ServerError } from './errors.js';
import type { ServerMetrics } from './metrics.js';

/** What the routes read: set once the model is loaded and warmed up; `shuttingDown` once SIGTERM came. */
export interface AppState {
  model: Model | undefined;
  batcher: Batcher | undefined;
  shuttingDown: boolean;
  readonly metrics: ServerMetrics;
}

export type ReadyState = AppState & { model: Model; batcher: Batcher };

export function isReady(state: AppState): state is ReadyState {
  return state.model !== undefined && state.batcher !== undefined && !state.shuttingDown;
}

/** 503 with Retry-After until the model is loaded, and once shutting down. */
export function assertReady(state: AppState): asserts state is ReadyState {
  if (!isReady(state)) throw new ServerError('IMGPUSH_NOT_READY', state.shuttingDown ? 'the server is shutting down' : 'the model is still loading', 1);
}
