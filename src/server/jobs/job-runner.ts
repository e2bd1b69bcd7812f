import { deliverCallback, deliverOnce } from './callback.js';
import type { Job, JobStore } from './job-store.js';

interface Running {
  readonly job: Job;
  readonly callback: URL | undefined;
  readonly done: Promise<boolean>;
}

/**
 * Runs accepted jobs after their 202 and delivers their callbacks, and
 * knows which are still under way, so that a shutdown can wait for them
 * and report the ones it could not finish: never a job silently lost.
 */
export class JobRunner {
  readonly #store: JobStore;
  readonly #log: (line: string) => void;
  readonly #secret: string | undefined;
  readonly #running = new Set<Running>();
  /** Aborted when shutdown's grace is over: callback retries stop waiting. */
  readonly #stop = new AbortController();

  /** `secret` (--callback-secret) signs every callback. */
  constructor(store: JobStore, log: (line: string) => void, secret: string | undefined) {
    this.#store = store;
    this.#log = log;
    this.#secret = secret;
  }

  get active(): number {
    return this.#running.size;
  }

  /** Runs `work` for `job`, records its outcome, then POSTs it to `callback`, if any. */
  start(job: Job, work: () => Promise<unknown>, callback: URL | undefined): void {
    const done = this.#run(job, work, callback);
    const running: Running = { job, callback, done };
    this.#running.add(running);
    void done.finally(() => this.#running.delete(running));
  }

  async #run(job: Job, work: () => Promise<unknown>, callback: URL | undefined): Promise<boolean> {
    job.status = 'running';
    try {
      this.#store.finish(job, { result: await work() });
    } catch (error) {
      const { code, message } = error as { code?: string; message: string };
      this.#store.finish(job, { error: { code: code ?? 'IMGPUSH_SERVER_ERROR', message } });
    }
    if (callback === undefined) return true;
    return deliverCallback(callback, job, this.#secret, this.#log, this.#stop.signal);
  }

  /**
   * Waits for every job under way, and its callback, until `deadline`
   * aborts; then each one left is marked failed, told to its callback
   * (one try) and logged. Answers how many were not finished and delivered.
   */
  async drain(deadline: AbortSignal): Promise<number> {
    const running = [...this.#running];
    const aborted = new Promise<void>((resolve) => {
      if (deadline.aborted) resolve();
      deadline.addEventListener('abort', () => resolve(), { once: true });
    });
    const settled = Promise.all(running.map((entry) => entry.done));
    const outcomes = await Promise.race([settled, aborted.then(() => undefined)]);
    if (outcomes !== undefined) return outcomes.filter((delivered) => !delivered).length;
    this.#stop.abort();
    const left = running.filter((entry) => this.#running.has(entry));
    await Promise.all(left.map((entry) => this.#reportLost(entry)));
    return left.length;
  }

  async #reportLost({ job, callback }: Running): Promise<void> {
    if (job.finished === undefined) {
      this.#store.finish(job, { error: { code: 'IMGPUSH_SHUT_DOWN', message: 'the server shut down before this job finished (--shutdown-timeout)' } });
    }
    const told = callback !== undefined && await deliverOnce(callback, job, this.#secret);
    this.#log(`job ${job.id} lost at shutdown: ${job.status === 'done' ? 'done, but its callback was not delivered' : 'not finished'}`
      + `${callback === undefined ? '' : told ? '; its callback was told it failed' : `; its callback ${callback.host} could not be told`}`);
  }
}
