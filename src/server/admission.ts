import { ServerError } from './errors.js';

export interface AdmissionLimits {
  /** Images accepted and not yet answered, decoded or not (--queue-limit). */
  readonly maxImages: number;
  /** Bytes of request bodies being read or held, by their Content-Length (--max-body-bytes-in-flight). */
  readonly maxBodyBytes: number;
}

/**
 * Admission control: bounds the work the server holds, counted from the
 * moment a request arrives, not once its images are decoded, so that a
 * backlog can only wait in clients (429 with Retry-After), never here.
 */
export class Admission {
  readonly #limits: AdmissionLimits;
  #images = 0;
  #bodyBytes = 0;

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  /** Images accepted and not yet answered: the real backlog (imgpush_queue_depth). */
  get images(): number {
    return this.#images;
  }

  get bodyBytes(): number {
    return this.#bodyBytes;
  }

  /** Before a body is read: 429 when no image could be taken now, or when this body would pass the bytes in flight; else its bytes are held until `release`. */
  admitBody(contentLength: number): void {
    if (this.#images >= this.#limits.maxImages) throw this.#full();
    if (contentLength > 0 && this.#bodyBytes + contentLength > this.#limits.maxBodyBytes) {
      throw new ServerError('IMGPUSH_QUEUE_FULL', `the server is reading ${this.#bodyBytes} bytes of bodies, and this one's ${contentLength} would pass --max-body-bytes-in-flight ${this.#limits.maxBodyBytes}: try again shortly`, 1);
    }
    this.#bodyBytes += contentLength;
  }

  releaseBody(contentLength: number): void {
    this.#bodyBytes -= contentLength;
  }

  /** One image accepted, before it is hashed or decoded; 429 beyond --queue-limit. Every take is paired with a `releaseImage`. */
  takeImage(): void {
    if (this.#images >= this.#limits.maxImages) throw this.#full();
    this.#images++;
  }

  releaseImage(): void {
    this.#images--;
  }

  #full(): ServerError {
    return new ServerError('IMGPUSH_QUEUE_FULL', `the server holds ${this.#images} images not yet answered, its --queue-limit: try again shortly`, 1);
  }
}
