export interface AdaptiveLimitSettings {
  readonly min: number;
  readonly max: number;
  readonly initial: number;
}

/** Latency this many times the best seen is congestion, even without a 429. */
const LATENCY_TOLERANCE = 2;
/** Cuts: hard on an explicit "slow down" (429, 503, timeout), softer on latency growth. */
const OVERLOAD_CUT = 0.85;
const LATENCY_CUT = 0.9;
/** Refusals per unit of the limit, with nothing let through, after which a cut is cut again. */
const REFUSALS_WITHOUT_CALM = 4;
/** Just under the limit where the server last pushed back, the limit probes one higher only after this many calm windows. */
const WINDOWS_BETWEEN_PROBES = 16;
/**
 * Samples a window needs before its median is judged: on a fast server a
 * median of a handful is mostly chance, and the best of many such medians
 * drifts ever lower until ordinary latency reads as congestion…
 */
const SAMPLES_PER_WINDOW = 32;
/** …unless they come slowly: then a window closes after this long, once it holds one round trip. */
const WINDOW_MS = 1000;
/** The fewest samples a window holds, on the slowest server. */
const MIN_SAMPLES = 4;

/**
 * How many uploads to keep in flight, found as TCP finds its window
 * (AIMD, with slow start): every window of samples, the limit doubles
 * until the first sign of congestion, then grows by one; it is cut when
 * the server says it is overloaded or when latency grows well past the
 * best seen, since by Little's law more in flight at the same latency is
 * more throughput, and more in flight at rising latency is only a queue.
 * As TCP CUBIC does, it remembers where the server refused: it climbs back
 * at once to just under that ceiling, stays there, and only now and then
 * probes above it, so that a hard limit is met rarely instead of once a cycle.
 */
export class AdaptiveLimit {
  readonly #settings: AdaptiveLimitSettings;
  #limit: number;
  #lowest: number;
  #highest: number;
  #slowStart = true;
  /** The limit at the last cut; +∞ until the first one, and again once a probe above it went well. */
  #ceiling = Number.POSITIVE_INFINITY;
  /** Calm windows since the last cut or probe, just under the ceiling. */
  #calm = 0;
  #baseline = Number.POSITIVE_INFINITY;
  #window: number[] = [];
  /** When the window's first sample came. */
  #windowStart = 0;
  /** Counts the limit's changes: a request is sent in an epoch, and its outcome speaks of that epoch's limit only. */
  #epoch = 0;
  /** The epoch the last cut ended: a refusal of a request sent in it or before was that same congestion. */
  #cutEpoch = -1;
  /** Whether a request sent since the last cut has gone through: until one has, refusals are still that cut's… */
  #calmSinceCut = true;
  /** …unless four limits' worth of them are refused: a server that refuses everything is cut down to the floor. */
  #refusedSinceCut = 0;

  constructor(settings: AdaptiveLimitSettings) {
    this.#settings = settings;
    this.#limit = Math.min(settings.max, Math.max(settings.min, settings.initial));
    this.#lowest = this.#limit;
    this.#highest = this.#limit;
  }

  get limit(): number {
    return this.#limit;
  }

  /** The range the limit took over the run. */
  get range(): { readonly min: number; readonly max: number } {
    return { min: this.#lowest, max: this.#highest };
  }

  /** The epoch to give sample() for a request sent now. */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * One request's outcome: its latency, whether the server said it was
   * overloaded, the epoch it was sent in, and when it came (a monotonic
   * clock, in ms). Returns the limit to use now.
   * Outcomes of requests sent under another limit say nothing of this one:
   * a calm one is left out, and a refusal counts only if it came after the
   * last cut (the refusals of one burst are cut for once).
   */
  sample(latencyMs: number, overloaded: boolean, sentIn = this.#epoch, now = performance.now()): number {
    if (overloaded) {
      if (sentIn > this.#cutEpoch && (this.#calmSinceCut || ++this.#refusedSinceCut >= REFUSALS_WITHOUT_CALM * this.#limit)) this.#cut(OVERLOAD_CUT, true);
      return this.#limit;
    }
    if (sentIn > this.#cutEpoch) this.#calmSinceCut = true;
    if (sentIn !== this.#epoch) return this.#limit;
    if (this.#window.length === 0) this.#windowStart = now;
    this.#window.push(latencyMs);
    // A window is at least as many samples as uploads in flight: one round trip of the whole pipeline.
    const samples = this.#window.length;
    if (samples >= Math.max(this.#limit, MIN_SAMPLES) && (samples >= SAMPLES_PER_WINDOW || now - this.#windowStart >= WINDOW_MS)) this.#decide();
    return this.#limit;
  }

  #decide(): void {
    const sorted = this.#window.sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] as number;
    this.#window = [];
    // The best latency seen; at the floor there is nothing lower to compare with, so a server that got slower
    // for good drives the limit down to it and its latency there becomes the new best.
    this.#baseline = this.#limit === this.#settings.min ? median : Math.min(this.#baseline, median);
    if (median > this.#baseline * LATENCY_TOLERANCE) this.#cut(LATENCY_CUT, false);
    else if (this.#slowStart) this.#set(this.#limit * 2);
    else this.#grow();
  }

  #grow(): void {
    // A calm window at or above the ceiling: the server's limit moved up, so climb freely again.
    if (this.#limit >= this.#ceiling) this.#ceiling = Number.POSITIVE_INFINITY;
    if (this.#ceiling === Number.POSITIVE_INFINITY) {
      this.#set(this.#limit + 1);
    } else if (this.#limit + 1 < this.#ceiling) {
      this.#set(this.#ceiling - 1);
    } else if (++this.#calm >= WINDOWS_BETWEEN_PROBES) {
      this.#calm = 0;
      this.#set(this.#limit + 1);
    }
  }

  /** A cut; a refusal also marks the limit as a ceiling, while latency, which noise moves too, does not. */
  #cut(factor: number, refused: boolean): void {
    this.#slowStart = false;
    if (refused) this.#ceiling = this.#limit;
    this.#calm = 0;
    this.#cutEpoch = this.#epoch;
    this.#calmSinceCut = false;
    this.#refusedSinceCut = 0;
    this.#set(Math.floor(this.#limit * factor));
  }

  #set(limit: number): void {
    const next = Math.min(this.#settings.max, Math.max(this.#settings.min, limit));
    // A new epoch even when the limit stays (at a bound): the window starts afresh either way.
    this.#epoch++;
    this.#window = [];
    this.#limit = next;
    this.#lowest = Math.min(this.#lowest, this.#limit);
    this.#highest = Math.max(this.#highest, this.#limit);
  }
}
