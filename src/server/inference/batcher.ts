import { ServerError } from '../errors.js';

export interface BatcherOptions {
  /** Run as soon as this many inputs wait. */
  readonly maxBatch: number;
  /** …or once the oldest has waited this long. */
  readonly delayMs: number;
  /** Inputs waiting beyond this are refused (429): memory and latency stay bounded. */
  readonly queueLimit: number;
  /** Batches running at once on the session. */
  readonly concurrency: number;
}

/** What one input went through. */
export interface BatchResult {
  readonly output: Float32Array;
  readonly queueMs: number;
  readonly inferenceMs: number;
  readonly batchSize: number;
}

interface Waiting {
  readonly input: Float32Array;
  readonly since: number;
  readonly resolve: (result: BatchResult) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Dynamic batching: inputs wait until `maxBatch` of them are there or the
 * oldest has waited `delayMs`, then run together, so that under load the
 * batch fills and the model's fixed cost per run is shared.
 */
export class Batcher {
  readonly #run: (inputs: readonly Float32Array[]) => Promise<Float32Array[]>;
  readonly #options: BatcherOptions;
  readonly #onBatch: (size: number, ms: number) => void;
  #queue: Waiting[] = [];
  #running = 0;
  #timer: NodeJS.Timeout | undefined;
  /** How many batches ran at each size (index = size). */
  readonly batchSizes: number[] = [];

  /** `onBatch` hears of every batch that ran: its size and how long it took. */
  constructor(run: (inputs: readonly Float32Array[]) => Promise<Float32Array[]>, options: BatcherOptions, onBatch: (size: number, ms: number) => void = () => {}) {
    this.#run = run;
    this.#options = options;
    this.#onBatch = onBatch;
  }

  get depth(): number {
    return this.#queue.length;
  }

  get running(): number {
    return this.#running;
  }

  submit(input: Float32Array): Promise<BatchResult> {
    if (this.#queue.length >= this.#options.queueLimit) {
      return Promise.reject(new ServerError('IMGPUSH_QUEUE_FULL', `the inference queue is full (${this.#options.queueLimit} images waiting): try again shortly`, 1));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ input, since: performance.now(), resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#running >= this.#options.concurrency || this.#queue.length === 0) return;
    const oldest = this.#queue[0] as Waiting;
    const waited = performance.now() - oldest.since;
    if (this.#queue.length >= this.#options.maxBatch || waited >= this.#options.delayMs) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      void this.#runBatch(this.#queue.splice(0, this.#options.maxBatch));
    } else {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#schedule();
      }, this.#options.delayMs - waited);
    }
  }

  async #runBatch(batch: Waiting[]): Promise<void> {
    this.#running++;
    const started = performance.now();
    this.batchSizes[batch.length] = (this.batchSizes[batch.length] ?? 0) + 1;
    try {
      const outputs = await this.#run(batch.map((item) => item.input));
      const inferenceMs = performance.now() - started;
      this.#onBatch(batch.length, inferenceMs);
      batch.forEach((item, i) => item.resolve({ output: outputs[i] as Float32Array, queueMs: started - item.since, inferenceMs, batchSize: batch.length }));
    } catch (error) {
      for (const item of batch) item.reject(error);
    } finally {
      this.#running--;
      this.#schedule();
    }
  }
}
