/** What inference said about an image, kept by its sha256. */
export interface CachedResult {
  readonly output: Float32Array;
  readonly width: number;
  readonly height: number;
}

/**
 * A bounded LRU of predictions by image sha256: the same image sent again
 * skips decoding and inference. A Map keeps insertion order, so the first
 * key is the least recently used once hits are moved to the end.
 */
export class ResultCache {
  readonly #entries = new Map<string, CachedResult>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get(sha256: string): CachedResult | undefined {
    const hit = this.#entries.get(sha256);
    if (hit !== undefined) {
      this.#entries.delete(sha256);
      this.#entries.set(sha256, hit);
    }
    return hit;
  }

  set(sha256: string, result: CachedResult): void {
    if (this.#capacity === 0) return;
    this.#entries.delete(sha256);
    this.#entries.set(sha256, result);
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value as string);
  }
}
