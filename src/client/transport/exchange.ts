import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { MAX_ANSWER_BYTES, type RawAnswer } from '../bodies/body-format.js';
import type { H1Handler, RequestControl } from './h1-connection.js';

/** An answer's status, and its body as read (see RawAnswer); `bytes` is empty where the body was not kept. */
export interface Answer extends RawAnswer {
  readonly status: number;
}

/** A request as both pools take it. */
export interface SendOptions {
  /** The origin, which undici's ProxyAgent needs to pick its pool. */
  readonly origin: string;
  readonly path: string;
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer | Readable;
}

/** What requests go through: undici's Pool or ProxyAgent (https://, HTTP/2, proxies), or H1Pool (plain http://). */
export interface Sender {
  dispatch(options: SendOptions, handler: Exchange): boolean;
  close(): Promise<void>;
  destroy(error: Error): Promise<void>;
}

/**
 * One request through a pool's dispatch interface (undici's, which H1Pool
 * shares), its answer read to the
 * end so the socket is reused. This is undici's own layer under its
 * `request()`: no stream per answer, no promise per chunk, no abort listener
 * per request unless a deadline asks for one; at thousands of small files per
 * second that is a fifth of the client's CPU.
 *
 * `keep(status)` says whether the answer's body is wanted; an unwanted body is
 * counted and dropped as it comes. `status` tells, once `answer` has failed,
 * whether the answer had begun (the status line came) or not.
 */
export class Exchange implements H1Handler {
  readonly answer: Promise<Answer>;
  status: number | undefined;
  /** H1Pool says when the whole request went; undici says it on a diagnostics channel (see Transport). */
  sent = false;
  readonly #keep: (status: number) => boolean;
  readonly #deadline: AbortSignal | undefined;
  #resolve!: (answer: Answer) => void;
  #reject!: (error: unknown) => void;
  #headers: IncomingHttpHeaders = {};
  #chunks: Buffer[] | undefined;
  #length = 0;
  #controller: RequestControl | undefined;
  #stop: (() => void) | undefined;

  constructor(keep: (status: number) => boolean, deadline?: AbortSignal) {
    this.#keep = keep;
    this.#deadline = deadline;
    this.answer = new Promise<Answer>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** Sends the request; the outcome is in `answer`. */
  static send(dispatcher: Sender, options: SendOptions, keep: (status: number) => boolean, deadline?: AbortSignal): Exchange {
    const exchange = new Exchange(keep, deadline);
    dispatcher.dispatch(options, exchange);
    return exchange;
  }

  // Called again when undici sends the request anew on another socket: the deadline then stops that one.
  onRequestStart(controller: RequestControl): void {
    this.#controller = controller;
    const deadline = this.#deadline;
    if (deadline === undefined) return;
    if (deadline.aborted) {
      controller.abort(deadline.reason);
      return;
    }
    if (this.#stop !== undefined) return;
    const stop = (): void => this.#controller?.abort(deadline.reason);
    deadline.addEventListener('abort', stop, { once: true });
    this.#stop = () => deadline.removeEventListener('abort', stop);
  }

  onRequestSent(): void {
    this.sent = true;
  }

  onResponseStart(_controller: RequestControl, status: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx answers (100 Continue, 103 Early Hints) come before the real one.
    if (status < 200) return;
    this.status = status;
    this.#headers = headers;
    this.#chunks = this.#keep(status) ? [] : undefined;
  }

  onResponseData(_controller: RequestControl, chunk: Buffer): void {
    if (this.#chunks !== undefined && this.#length <= MAX_ANSWER_BYTES) this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  onResponseEnd(): void {
    this.#stop?.();
    const bytes = this.#chunks === undefined ? EMPTY : this.#chunks.length === 1 ? this.#chunks[0] as Buffer : Buffer.concat(this.#chunks);
    this.#resolve({ status: this.status ?? 0, headers: this.#headers, bytes, length: this.#length });
  }

  onResponseError(_controller: RequestControl, error: Error): void {
    this.#stop?.();
    this.#reject(error);
  }
}

const EMPTY = Buffer.alloc(0);
