/** Each bucket is 2 % wider than the last: percentiles are within 2 %, in fixed memory for any file count. */
const GROWTH = Math.log(1.02);
/** Latencies are kept in microseconds; buckets up to about an hour. */
const BUCKETS = Math.ceil(Math.log(3.6e9) / GROWTH) + 1;

export interface LatencySummary {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** A log-bucketed histogram of request latencies in milliseconds. */
export class LatencyHistogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #total = 0;
  #maxMs = 0;

  record(ms: number): void {
    const micros = Math.max(1, ms * 1000);
    this.#counts[Math.min(BUCKETS - 1, Math.ceil(Math.log(micros) / GROWTH))]! += 1;
    this.#total++;
    if (ms > this.#maxMs) this.#maxMs = ms;
  }

  get count(): number {
    return this.#total;
  }

  /** The latency under which `fraction` of the requests fell, in ms (the bucket's upper edge, at most the max seen). */
  percentile(fraction: number): number {
    if (this.#total === 0) return 0;
    const rank = Math.ceil(fraction * this.#total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(this.#maxMs, Math.exp(i * GROWTH) / 1000);
    }
    return this.#maxMs;
  }

  summary(): LatencySummary {
    const round = (ms: number) => Math.round(ms * 100) / 100;
    return {
      p50: round(this.percentile(0.5)),
      p95: round(this.percentile(0.95)),
      p99: round(this.percentile(0.99)),
      max: round(this.#maxMs),
    };
  }
}
