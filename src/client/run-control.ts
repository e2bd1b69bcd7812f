import { InterruptedError } from './errors.js';

const STOPPED = 'the run was stopped';

/**
 * Whether the run goes on, and why not. A stop lets uploads in flight
 * finish for `graceMs`, then aborts them; a cancel (a second Ctrl-C) aborts
 * them at once. Stages read `stopping` and `reason`, and wait on `signal`.
 */
export class RunControl {
  /** Aborted when uploads in flight must end now: the grace period ran out, or a cancel. */
  readonly #inFlight = new AbortController();
  /** Aborted by a cancel only: discovery, which runs on after a stop, ends too. */
  readonly #cancel = new AbortController();
  readonly #graceMs: number;
  readonly #onStop: Array<(why: string) => void> = [];
  #stopping = false;
  #reason = STOPPED;
  #graceTimer: NodeJS.Timeout | undefined;

  constructor(graceMs: number) {
    this.#graceMs = graceMs;
  }

  get signal(): AbortSignal {
    return this.#inFlight.signal;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  get cancelSignal(): AbortSignal {
    return this.#cancel.signal;
  }

  /** Why the run is stopping, in words, for the files it leaves unsent. */
  get reason(): string {
    return this.#reason;
  }

  /** The error of a file the stop kept from being sent (`started`: it was on its way). */
  interrupted(started = false): InterruptedError {
    return new InterruptedError(started, this.#reason);
  }

  /** Calls `listener` once, when the run starts to stop. */
  onStop(listener: (why: string) => void): void {
    this.#onStop.push(listener);
  }

  stop(why = STOPPED): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#reason = why;
    for (const listener of this.#onStop) listener(why);
    this.#graceTimer = setTimeout(() => this.#inFlight.abort(new InterruptedError(true)), this.#graceMs);
  }

  /** Ends uploads in flight now and cuts discovery short. */
  cancel(): void {
    this.stop();
    this.#inFlight.abort(new InterruptedError(true));
    this.#cancel.abort();
  }

  /** Follows a caller's signals: `stop` stops, `cancel` cancels. Returns what undoes it. */
  follow(stop: AbortSignal | undefined, cancel: AbortSignal | undefined): () => void {
    const onStop = (): void => this.stop();
    const onCancel = (): void => this.cancel();
    stop?.addEventListener('abort', onStop, { once: true });
    cancel?.addEventListener('abort', onCancel, { once: true });
    if (stop?.aborted === true) onStop();
    if (cancel?.aborted === true) onCancel();
    return () => {
      stop?.removeEventListener('abort', onStop);
      cancel?.removeEventListener('abort', onCancel);
    };
  }

  /** The run is over: no grace period runs on. */
  end(): void {
    clearTimeout(this.#graceTimer);
  }
}
