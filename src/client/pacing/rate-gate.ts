/**
 * Paces files to `perSecond` on average, in bursts of up to `burst` (the
 * generic cell rate algorithm: each take books the next slot before it
 * waits, so concurrent takers queue in order and the long-run rate is exact).
 */
export class RateGate {
  readonly #intervalMs: number;
  readonly #burstMs: number;
  readonly #now: () => number;
  /** When the next file would go if the gate had no burst allowance. */
  #next = Number.NEGATIVE_INFINITY;

  constructor(perSecond: number, burst: number, now: () => number = () => performance.now()) {
    this.#intervalMs = 1000 / perSecond;
    this.#burstMs = (Math.max(1, burst) - 1) * this.#intervalMs;
    this.#now = now;
  }

  /** How long the next file must wait, in ms, with its slot booked. */
  book(): number {
    const now = this.#now();
    this.#next = Math.max(this.#next, now - this.#burstMs);
    const wait = Math.max(0, this.#next - now);
    this.#next += this.#intervalMs;
    return wait;
  }
}
