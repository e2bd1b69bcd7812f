/** Addresses remembered at most: beyond, the least recently seen is forgotten (it then starts with a full bucket). */
const MAX_CLIENTS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per client address: `perSecond` requests a second, bursts
 * up to the same number. `take` answers how long to wait (0: go now).
 */
export class RateLimiter {
  readonly #perSecond: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(perSecond: number) {
    this.#perSecond = perSecond;
  }

  /** Seconds until the next request of `client` may go; 0 and a token taken when it may go now. */
  take(client: string, now = performance.now()): number {
    const bucket = this.#buckets.get(client) ?? { tokens: this.#perSecond, at: now };
    this.#buckets.delete(client);
    this.#buckets.set(client, bucket);
    if (this.#buckets.size > MAX_CLIENTS) this.#buckets.delete(this.#buckets.keys().next().value as string);
    bucket.tokens = Math.min(this.#perSecond, bucket.tokens + ((now - bucket.at) / 1000) * this.#perSecond);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / this.#perSecond;
  }
}
