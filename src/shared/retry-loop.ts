/**
 * The one loop that tries again: uploads, job polls and the server's
 * callbacks all go through it, each with its own `decide`. What to retry
 * and how long to wait are the caller's policy (see the client's Pacer);
 * this only counts, sleeps and stops when told.
 */

/** What comes after a failed attempt. */
export type Decision =
  | { readonly retry: false }
  | {
    readonly retry: true;
    readonly waitMs: number;
    /** Whether this retry uses up one of `retries` (an outage, a failover or a pending job does not). */
    readonly consumes: boolean;
    /** The attempt made progress (a job moved on): the retries used so far are forgiven. */
    readonly reset?: boolean;
  };

export const FINAL: Decision = { retry: false };

export interface RetryLoopOptions {
  /** Retries that consume, after the first attempt. */
  readonly retries: number;
  /** Decides after failed attempt number `attempt` (1 for the first). */
  readonly decide: (error: unknown, attempt: number) => Decision;
  /** Aborting ends a wait at once; the loop then throws the last error. */
  readonly signal?: AbortSignal | undefined;
  /** Told of each retry about to be made (after its wait is decided, before it). */
  readonly onRetry?: (() => void) | undefined;
}

/**
 * Calls `attempt` until it resolves, `decide` says the failure is final, the
 * retries that consume are used up, or `signal` aborts during a wait: then
 * the last error is thrown as it was.
 *
 * @example
 * await callWithRetries(() => deliver(job), { retries: 3, decide: (error, n) => ({ retry: true, waitMs: 100 * 2 ** n, consumes: true }) });
 */
export async function callWithRetries<T>(attempt: (attempt: number) => Promise<T>, { retries, decide, signal, onRetry }: RetryLoopOptions): Promise<T> {
  let used = 0;
  for (let number = 1; ; number++) {
    try {
      return await attempt(number);
    } catch (error) {
      const decision = decide(error, number);
      if (!decision.retry) throw error;
      if (decision.reset === true) used = 0;
      if (decision.consumes && used++ >= retries) throw error;
      onRetry?.();
      await sleep(decision.waitMs, signal);
      if (signal?.aborted === true) throw error;
    }
  }
}

/** Waits `ms`, or less if `signal` aborts first (then it resolves: the caller checks the signal). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted === true) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
