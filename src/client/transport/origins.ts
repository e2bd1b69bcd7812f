import type { NetworkContext } from '../errors.js';
import type { Sender } from './exchange.js';
import { LatencyHistogram, type LatencySummary } from '../pacing/latency.js';
import type { UrlTemplate } from './url-template.js';

/** Failures in a row (no answer, 502, 503, 504) after which a server is left alone while others carry on. */
const FAILURES_TO_BACK_OFF = 2;
const FIRST_BACK_OFF_MS = 1_000;
const MAX_BACK_OFF_MS = 30_000;

/** How one server of the run did. */
export interface OriginSummary {
  readonly url: string;
  /** Files uploaded through it. */
  readonly ok: number;
  /** Attempts that failed there, whatever became of their files. */
  readonly failedAttempts: number;
  readonly latencyMs: LatencySummary;
}

/** One server of the run (one `--url`): how to reach it, its load, its health and its figures. */
export class Origin {
  readonly url: UrlTemplate;
  readonly dispatcher: Sender;
  /** The run's headers, with host when through a proxy. */
  readonly headers: Readonly<Record<string, string>>;
  /** What its network errors' messages name. */
  readonly context: NetworkContext;
  inFlight = 0;
  ok = 0;
  failedAttempts = 0;
  readonly latency = new LatencyHistogram();
  failuresInRow = 0;
  /** Until when (performance.now()) it is left alone; 0 when it is up. */
  downUntil = 0;

  /** Headers by the body's content type, built once: the per-file path only adds content-length for streams. */
  readonly #headersByType = new Map<string, Record<string, string>>();

  constructor(url: UrlTemplate, dispatcher: Sender, { headers, context }: { headers: Readonly<Record<string, string>>; context: NetworkContext }) {
    this.url = url;
    this.dispatcher = dispatcher;
    this.headers = headers;
    this.context = context;
  }

  headersFor(contentType: string): Record<string, string> {
    let headers = this.#headersByType.get(contentType);
    if (headers === undefined) {
      headers = { 'content-type': contentType, ...this.headers };
      this.#headersByType.set(contentType, headers);
    }
    return headers;
  }

  summary(): OriginSummary {
    return { url: this.url.text, ok: this.ok, failedAttempts: this.failedAttempts, latencyMs: this.latency.summary() };
  }
}

/**
 * Spreads requests over the servers of a run: each goes to the one with the
 * fewest in flight among those up (a slower server keeps more in flight, so
 * it gets fewer). A server that fails twice in a row is left alone for 1 s,
 * then 2 s, 4 s… up to 30 s, while the others carry on; once its time is
 * up, the next request to it is its probe. With one server this is a no-op:
 * the run's outage gate decides what a dead server means.
 */
export class OriginSet {
  readonly all: readonly Origin[];
  readonly #now: () => number;
  /** Where the search for the least loaded starts, turning, so that ties are spread evenly. */
  #turn = 0;

  constructor(origins: readonly Origin[], now: () => number = () => performance.now()) {
    this.all = origins;
    this.#now = now;
  }

  pick(): Origin {
    const all = this.all;
    if (all.length === 1) return all[0] as Origin;
    const now = this.#now();
    let best: Origin | undefined;
    let soonest = all[0] as Origin;
    for (let i = 0; i < all.length; i++) {
      const origin = all[(this.#turn + i) % all.length] as Origin;
      if (origin.downUntil < soonest.downUntil) soonest = origin;
      if (origin.downUntil <= now && (best === undefined || origin.inFlight < best.inFlight)) best = origin;
    }
    this.#turn = (this.#turn + 1) % all.length;
    // Every server is left alone: the one back soonest takes the request, as its probe.
    return best ?? soonest;
  }

  /** An answer came, `ok` (2xx) or not: the server is there. */
  answered(origin: Origin, ms: number, ok: boolean): void {
    if (!ok) origin.failedAttempts++;
    origin.failuresInRow = 0;
    origin.downUntil = 0;
    origin.latency.record(ms);
  }

  /** A failure that says the server is not there. Returns whether another server can take the request instead. */
  unreachable(origin: Origin): boolean {
    origin.failedAttempts++;
    if (this.all.length === 1) return false;
    origin.failuresInRow++;
    if (origin.failuresInRow >= FAILURES_TO_BACK_OFF) {
      const backOff = Math.min(MAX_BACK_OFF_MS, FIRST_BACK_OFF_MS * 2 ** (origin.failuresInRow - FAILURES_TO_BACK_OFF));
      origin.downUntil = this.#now() + backOff;
    }
    const now = this.#now();
    return this.all.some((other) => other !== origin && other.downUntil <= now);
  }
}
