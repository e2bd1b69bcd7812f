import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { MAX_ANSWER_BYTES, type RawAnswer } from '../bodies/body-format.js';

/** An answer's status, and its body as read (see RawAnswer); `bytes` is empty where the body was not kept. */
export interface Answer extends RawAnswer {
  readonly status: number;
}

type Handler = Dispatcher.DispatchHandler;
type Controller = Parameters<NonNullable<Handler['onRequestStart']>>[0];

/**
 * One request through undici's dispatch interface, its answer read to the
 * end so the socket is reused. This is undici's own layer under its
 * `request()`: no stream per answer, no promise per chunk, no abort listener
 * per request unless a deadline asks for one; at thousands of small files per
 * second that is a fifth of the client's CPU.
 *
 * `keep(status)` says whether the answer's body is wanted; an unwanted body is
 * counted and dropped as it comes. `status` tells, once `answer` has failed,
 * whether the answer had begun (the status line came) or not.
 */
export class Exchange implements Handler {
  readonly answer: Promise<Answer>;
  status: number | undefined;
  readonly #keep: (status: number) => boolean;
  readonly #deadline: AbortSignal | undefined;
  #resolve!: (answer: Answer) => void;
  #reject!: (error: unknown) => void;
  #headers: IncomingHttpHeaders = {};
  #chunks: Buffer[] | undefined;
  #length = 0;
  #controller: Controller | undefined;
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
  static send(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, keep: (status: number) => boolean, deadline?: AbortSignal): Exchange {
    const exchange = new Exchange(keep, deadline);
    dispatcher.dispatch(options, exchange);
    return exchange;
  }

  // Called again when undici sends the request anew on another socket: the deadline then stops that one.
  onRequestStart(controller: Controller): void {
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

  onResponseStart(_controller: Controller, status: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx answers (100 Continue, 103 Early Hints) come before the real one.
    if (status < 200) return;
    this.status = status;
    this.#headers = headers;
    this.#chunks = this.#keep(status) ? [] : undefined;
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    if (this.#chunks !== undefined && this.#length <= MAX_ANSWER_BYTES) this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  onResponseEnd(): void {
    this.#stop?.();
    const bytes = this.#chunks === undefined ? EMPTY : this.#chunks.length === 1 ? this.#chunks[0] as Buffer : Buffer.concat(this.#chunks);
    this.#resolve({ status: this.status ?? 0, headers: this.#headers, bytes, length: this.#length });
  }

  onResponseError(_controller: Controller, error: Error): void {
    this.#stop?.();
    this.#reject(error);
  }
}

const EMPTY = Buffer.alloc(0);
