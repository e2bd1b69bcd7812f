import { setMaxListeners } from 'node:events';
import pLimit, { type LimitFunction } from 'p-limit';
import { callWithRetries, FINAL, sleep, type Decision } from '../../shared/retry-loop.js';
import { AdaptiveLimit } from './adaptive-limit.js';
import { HttpStatusError, InterruptedError } from '../errors.js';
import type { LatencyHistogram } from './latency.js';
import type { Origin, OriginSet } from '../transport/origins.js';
import { FirstContact } from './first-contact.js';
import { OutageGate } from './outage-gate.js';
import { RateGate } from './rate-gate.js';
import type { Progress } from '../results.js';
import { isOutage, isOverload, isRetryable, isThrottled, retryDelayMs } from './retry-policy.js';
import { SameAnswerWatch } from './same-answer.js';

export interface PacerSettings {
  readonly retries: number;
  readonly retryMinDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly maxOutageMs: number;
  /** Uploads in flight at most; with `adaptive`, the ceiling of the limit. */
  readonly concurrency: number;
  readonly adaptive: boolean;
  /** Files a second at most (--rate), in bursts of up to `burst`. */
  readonly rate: number | undefined;
  readonly burst: number;
}

/** What the pacer tells the run, for the user and the progress line. */
export interface PacerEvents {
  onDown(failures: number, lastError: string): void;
  onUp(downForMs: number): void;
  /** The server stayed down past --max-outage: the run must stop. */
  onGiveUp(downForMs: number): void;
  onRetry(): void;
  onConcurrency(limit: number): void;
  /** Sending more is pointless (the server never answered, or refused every file alike): the run must stop. */
  onHopeless(why: string): void;
  /** The server said 429 or 503. */
  onThrottled(): void;
  /** A Retry-After longer than --retry-max-delay was cut to it (told once a run). */
  onRetryAfterCapped(askedMs: number, waitedMs: number): void;
}

/** Where a request's attempts went, and how many were made: filled in while `call` runs. */
export interface Tally {
  attempts: number;
  ms: number;
  origin?: Origin;
}

/** The pacer's events as the progress counters and the user see them; `stop` ends the run when the server stayed down too long. */
export function pacerReports(progress: Progress, warn: (message: string) => void, stop: (why: string) => void): PacerEvents {
  return {
    onDown: (failures, last) => {
      progress.serverDown = true;
      warn(`the server is not answering (${failures} failures in a row, the last: ${last}): uploads pause while imgpush probes it`);
    },
    onUp: (ms) => {
      progress.serverDown = false;
      warn(`the server answers again after ${(ms / 1000).toFixed(1)} s: uploads resume`);
    },
    onGiveUp: (ms) => stop(`the server did not answer for ${(ms / 1000).toFixed(0)} s (--max-outage)`),
    onRetry: () => progress.retries++,
    onConcurrency: (limit) => {
      progress.concurrency = limit;
    },
    onHopeless: stop,
    onThrottled: () => progress.throttled++,
    onRetryAfterCapped: (asked, waited) => warn(`the server asked to wait ${seconds(asked)} (Retry-After), more than --retry-max-delay: imgpush waits ${seconds(waited)} instead`),
  };
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** Outage failures in a row (no answer, 502, 503, 504) after which the run backs off as one. */
const OUTAGE_THRESHOLD = 5;
const FIRST_PROBE_DELAY_MS = 1_000;
/** --concurrency auto starts here, then finds its way (see AdaptiveLimit). */
const ADAPTIVE_START = 8;
/** A job's first poll comes this soon; each next one twice as late, up to MAX_POLL_MS. */
const FIRST_POLL_MS = 50;
const MAX_POLL_MS = 5_000;
/** Until a first success, at most this many in flight: a server that refuses everything gets few requests. */
const FIRST_CONTACT_CONCURRENCY = 8;
/** Until the server first answers, retries back off this long at most: a wrong --url should end the run in seconds. */
const FIRST_CONTACT_MAX_DELAY_MS = 1_000;

/** A job still running: the poll loop waits `waitMs`, and its wait is no failure. */
export class JobPending extends Error {
  readonly waitMs: number;

  constructor(waitMs: number) {
    super('the job is still running');
    this.waitMs = waitMs;
  }
}

/**
 * The one home of every wait and retry decision of a run, as rclone's pacer
 * is: the concurrency limit (fixed, or found with --concurrency auto), the
 * rate (--rate), the outage gate that pauses the run while the server is
 * down, the choice of server, and retries with Retry-After or backoff with
 * full jitter. A request goes through `call`, a job's poll through `poll`.
 */
export class Pacer {
  readonly gate: OutageGate;
  readonly #settings: PacerSettings;
  readonly #origins: OriginSet;
  readonly #events: PacerEvents;
  readonly #latency: LatencyHistogram;
  readonly #limit: LimitFunction;
  readonly #adaptive: AdaptiveLimit | undefined;
  readonly #rate: RateGate | undefined;
  /** Aborted when waits and requests in flight must end now. */
  readonly #signal: AbortSignal;
  readonly #stopping: () => boolean;
  /** Failures of a server while another was up to take the request (see #unreachable). */
  readonly #failedOver = new WeakSet<object>();
  readonly #contact: FirstContact;
  readonly #sameAnswer: SameAnswerWatch;
  #cappedRetryAfterTold = false;
  /** No request has succeeded yet: at most FIRST_CONTACT_CONCURRENCY in flight. */
  #beforeFirstSuccess = true;

  constructor(settings: PacerSettings, parts: { origins: OriginSet; latency: LatencyHistogram; signal: AbortSignal; stopping: () => boolean }, events: PacerEvents) {
    this.#settings = settings;
    this.#origins = parts.origins;
    this.#latency = parts.latency;
    this.#signal = parts.signal;
    this.#stopping = parts.stopping;
    this.#events = events;
    // Every backoff in progress listens to this signal: more than Node's default of 10 is expected.
    setMaxListeners(0, this.#signal);
    const { concurrency, adaptive, rate, burst, retryMaxDelayMs, maxOutageMs } = settings;
    this.#adaptive = adaptive ? new AdaptiveLimit({ min: 1, max: concurrency, initial: Math.min(ADAPTIVE_START, concurrency) }) : undefined;
    this.#contact = new FirstContact(events.onHopeless);
    this.#sameAnswer = new SameAnswerWatch(events.onHopeless);
    this.#limit = pLimit(this.#allowed(this.#adaptive?.limit ?? concurrency));
    this.#rate = rate === undefined ? undefined : new RateGate(rate, burst);
    this.gate = new OutageGate({
      threshold: OUTAGE_THRESHOLD,
      firstProbeDelayMs: Math.min(FIRST_PROBE_DELAY_MS, retryMaxDelayMs),
      maxProbeDelayMs: retryMaxDelayMs,
      maxOutageMs,
    }, events);
  }

  /** Uploads allowed in flight now. */
  get concurrency(): number {
    return this.#limit.concurrency;
  }

  /** The limit at the end, and its range over the run. */
  get concurrencySummary(): { readonly final: number; readonly min: number; readonly max: number; readonly adaptive: boolean } {
    const final = this.#limit.concurrency;
    return { final, ...(this.#adaptive?.range ?? { min: final, max: final }), adaptive: this.#adaptive !== undefined };
  }

  /** Runs `task(arg)` once a slot of the concurrency limit is free. */
  schedule<A>(task: (arg: A) => Promise<void>, arg: A): void {
    void this.#limit(task, arg);
  }

  /** Waits for the rate limit's slots of `files` files (--rate). */
  async pace(files: number): Promise<void> {
    if (this.#rate === undefined) return;
    let wait = 0;
    for (let i = 0; i < files; i++) wait = this.#rate.book();
    await sleep(wait, this.#signal);
  }

  /**
   * Reads a request's body and sends it, again while the failure is
   * retryable and retries are left. Each attempt waits at the outage gate,
   * goes to the server with the fewest in flight, and tells the latency
   * histogram and the adaptive limit how it went; `tally` counts them.
   */
  call<B, T extends { readonly status: number | null }>(read: () => Promise<B>, send: (origin: Origin, body: B) => Promise<T>, tally: Tally): Promise<T> {
    const attempt = async (): Promise<T> => {
      const closed = this.gate.admit();
      if (closed !== undefined) await closed;
      tally.attempts++;
      if (this.#signal.aborted) throw new InterruptedError(false);
      const body = await read();
      const origin = this.#origins.pick();
      tally.origin = origin;
      return this.#send(origin, () => send(origin, body), tally);
    };
    return callWithRetries(attempt, { retries: this.#settings.retries, decide: this.#decide, signal: this.#signal, onRetry: this.#events.onRetry })
      .catch((error: unknown) => {
        const url = tally.origin?.url.text;
        if (url !== undefined && !this.#stopping()) {
          this.#contact.failedForGood(error, url);
          this.#sameAnswer.failedForGood(error, url);
        }
        throw error;
      });
  }

  /**
   * Asks `check` how a job stands until it ends: `check` throws JobPending
   * while it runs, and the wait doubles from one poll to the next (or is the
   * server's Retry-After). A failed poll is retried as a request is.
   */
  poll<T>(check: (wait: number) => Promise<T>): Promise<T> {
    let wait = FIRST_POLL_MS;
    const next = (): Promise<T> => {
      const current = wait;
      wait = Math.min(wait * 2, MAX_POLL_MS);
      return check(current);
    };
    const decide = (error: unknown, attempt: number): Decision => (error instanceof JobPending
      ? { retry: true, waitMs: error.waitMs, consumes: false, reset: true }
      : this.#decide(error, attempt));
    return callWithRetries(next, { retries: this.#settings.retries, decide, signal: this.#signal });
  }

  /** One attempt on `origin`, timed from when its body is ready: latency is the network's and the server's, not the disk's. */
  async #send<T extends { readonly status: number | null }>(origin: Origin, send: () => Promise<T>, tally: Tally): Promise<T> {
    origin.inFlight++;
    const epoch = this.#adaptive?.epoch ?? 0;
    const started = performance.now();
    let answered = false;
    let ok = false;
    let overloaded = false;
    try {
      const delivery = await send();
      // A request of files none of which could be read was never sent.
      answered = ok = delivery.status !== null;
      if (answered) {
        this.#contact.answered();
        this.gate.answered();
      }
      if (ok) this.#succeeded();
      return delivery;
    } catch (error) {
      answered = error instanceof HttpStatusError;
      // A 502, 503 or 504 is an answer too: from then on, an outage is a restart the gate rides out.
      if (answered) this.#contact.answered();
      if (isOutage(error)) this.#unreachable(origin, error as Error);
      else if (answered) this.gate.answered();
      if (isThrottled(error)) this.#events.onThrottled();
      overloaded = isOverload(error);
      throw error;
    } finally {
      origin.inFlight--;
      tally.ms = performance.now() - started;
      if (answered) {
        this.#latency.record(tally.ms);
        this.#origins.answered(origin, tally.ms, ok);
      }
      if (answered || overloaded) this.#adapt(tally.ms, overloaded, epoch);
    }
  }

  /**
   * After a failed attempt: retry only what is retryable, never once the run
   * is stopping, never with --retries 0. An outage's failure waits at the
   * gate instead of a backoff, and neither it nor one another server can
   * make good uses up the file's retries.
   */
  readonly #decide = (error: unknown, attempt: number): Decision => {
    if (this.#settings.retries === 0 || this.#stopping() || !isRetryable(error)) return FINAL;
    if (!this.#consumesRetry(error)) return { retry: true, waitMs: 0, consumes: false };
    const { retryMinDelayMs: minDelayMs, retryMaxDelayMs } = this.#settings;
    const maxDelayMs = this.#contact.made ? retryMaxDelayMs : Math.min(retryMaxDelayMs, FIRST_CONTACT_MAX_DELAY_MS);
    const waitMs = retryDelayMs(error, attempt, { minDelayMs, maxDelayMs });
    this.#tellIfCapped(error, waitMs);
    return { retry: true, waitMs, consumes: true };
  };

  /** Says once a run that the server's Retry-After was longer than the wait it got. */
  #tellIfCapped(error: unknown, waitMs: number): void {
    if (this.#cappedRetryAfterTold || !(error instanceof HttpStatusError) || error.retryAfterMs === undefined || error.retryAfterMs <= waitMs) return;
    this.#cappedRetryAfterTold = true;
    this.#events.onRetryAfterCapped(error.retryAfterMs, waitMs);
  }

  /** The first success lifts the cap on the requests in flight, and ends the watch for one refusal of every file. */
  #succeeded(): void {
    if (!this.#beforeFirstSuccess) return;
    this.#beforeFirstSuccess = false;
    this.#sameAnswer.succeeded();
    this.#setLimit(this.#adaptive?.limit ?? this.#settings.concurrency);
  }

  /** Uploads allowed in flight for a limit of `limit`: fewer until a first success. */
  #allowed(limit: number): number {
    return this.#beforeFirstSuccess ? Math.min(limit, FIRST_CONTACT_CONCURRENCY) : limit;
  }

  #setLimit(limit: number): void {
    const allowed = this.#allowed(limit);
    if (allowed === this.#limit.concurrency) return;
    this.#limit.concurrency = allowed;
    this.#events.onConcurrency(allowed);
  }

  #consumesRetry(error: unknown): boolean {
    if (typeof error === 'object' && error !== null && this.#failedOver.has(error)) return false;
    return !(this.gate.down && isOutage(error));
  }

  /**
   * A server not there: with several, another takes the request; only when
   * none can does the outage gate hear of it, and only once the server has
   * answered in this run (a restart) and retries may wait (not --retries 0).
   */
  #unreachable(origin: Origin, error: Error): void {
    if (this.#origins.unreachable(origin)) this.#failedOver.add(error);
    else if (this.#contact.made && this.#settings.retries > 0) this.gate.failedToReach(error.message);
  }

  #adapt(ms: number, overloaded: boolean, epoch: number): void {
    if (this.#adaptive === undefined) return;
    this.#setLimit(this.#adaptive.sample(ms, overloaded, epoch));
  }
}
