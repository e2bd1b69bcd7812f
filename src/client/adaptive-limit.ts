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
/** Just under the limit where the server last pushed back, the limit probes one higher only after this many calm windows. */
const WINDOWS_BETWEEN_PROBES = 16;

/**
 * How many uploads to keep in flight, found as TCP finds its window
 * (AIMD, with slow start): every window of samples, the limit doubles
 * until the first sign of congestion, then grows by one; it is cut when
 * the server says it is overloaded or when latency grows well past the
 * best seen, since by Little's law more in flight at the same latency is
 * more throughput, and more in flight at rising latency is only a queue.
 * As TCP CUBIC does, it remembers where it was cut: it climbs back at once
 * to just under that ceiling, stays there, and only now and then probes
 * above it, so that a hard limit is met rarely instead of once a cycle.
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
  /** Outcomes still to come from requests sent before the last cut: they say nothing about the new limit. */
  #stale = 0;

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

  /** One request's outcome: its latency, and whether the server said it was overloaded. Returns the limit to use now. */
  sample(latencyMs: number, overloaded: boolean): number {
    if (this.#stale > 0) {
      this.#stale--;
      return this.#limit;
    }
    if (overloaded) {
      this.#cut(OVERLOAD_CUT);
      return this.#limit;
    }
    this.#window.push(latencyMs);
    // A window is as many samples as uploads in flight: one round trip of the whole pipeline.
    if (this.#window.length >= Math.max(this.#limit, 4)) this.#decide();
    return this.#limit;
  }

  #decide(): void {
    const sorted = this.#window.sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] as number;
    this.#window = [];
    // The best latency seen; at the floor there is nothing lower to compare with, so a server that got slower
    // for good drives the limit down to it and its latency there becomes the new best.
    this.#baseline = this.#limit === this.#settings.min ? median : Math.min(this.#baseline, median);
    if (median > this.#baseline * LATENCY_TOLERANCE) this.#cut(LATENCY_CUT);
    else if (this.#slowStart) this.#set(this.#limit * 2);
    else this.#grow();
  }

  #grow(): void {
    if (this.#limit >= this.#ceiling) {
      // A calm window at or above the ceiling: the server's limit moved up, so climb freely again.
      this.#ceiling = Number.POSITIVE_INFINITY;
      this.#set(this.#limit + 1);
    } else if (this.#limit + 1 < this.#ceiling) {
      this.#set(this.#ceiling - 1);
    } else if (++this.#calm >= WINDOWS_BETWEEN_PROBES) {
      this.#calm = 0;
      // The probe is judged on requests sent under it, not on those still in flight from before.
      this.#stale = this.#limit;
      this.#set(this.#limit + 1);
    }
  }

  #cut(factor: number): void {
    this.#slowStart = false;
    this.#ceiling = this.#limit;
    this.#calm = 0;
    // Those in flight were sent under the old limit: their outcomes would only count the same congestion again.
    this.#stale = this.#limit - 1;
    this.#window = [];
    this.#set(Math.floor(this.#limit * factor));
  }

  #set(limit: number): void {
    this.#limit = Math.min(this.#settings.max, Math.max(this.#settings.min, limit));
    this.#lowest = Math.min(this.#lowest, this.#limit);
    this.#highest = Math.max(this.#highest, this.#limit);
  }
}
