import { Worker } from 'node:worker_threads';
import { InferenceProtocolError } from '../shared/inference-protocol.js';
import { ServerError } from './errors.js';
import type { ParseReply, ParseRequest } from './infer-parse-worker.js';
import { parseInferRequest, type InferCall, type InferLimits } from './inference-protocol.js';

/** JSON parts up to this are parsed in place (well under a millisecond's work); larger ones on the parse thread. */
const PARSE_IN_PLACE_BYTES = 256 * 1024;
/** An idle parse thread is stopped after this: its heap, grown by tens of megabytes of JSON, goes with it. */
const IDLE_MS = 1000;

/** The size of the JSON part of a v2 body: the header length of the binary extension, else the whole body. */
function jsonBytes(body: Buffer, headerLength: string | undefined): number {
  const length = headerLength === undefined ? Number.NaN : Number(headerLength);
  return Number.isSafeInteger(length) ? Math.min(length, body.length) : body.length;
}

/** The request checked; whatever a client sends answers 400 (or a limit's 413), never a 500 from a value the checks did not foresee. */
function parseHere(body: Buffer, headerLength: string | undefined, limits: InferLimits): InferCall {
  try {
    return parseInferRequest(body, headerLength, limits);
  } catch (error) {
    if (error instanceof InferenceProtocolError || error instanceof ServerError) throw error;
    throw new InferenceProtocolError(`the inference request does not check out: ${(error as Error).message}`);
  }
}

type Waiting = { resolve: (call: InferCall) => void; reject: (error: Error) => void };

/** One parse thread and the parses it owes. */
interface ParseThread {
  readonly worker: Worker;
  readonly pending: Map<number, Waiting>;
}

/**
 * Checks v2 infer requests: small JSON in place, large JSON on a thread of
 * its own (started on first use, one request at a time, in order, stopped
 * once idle), so that no body up to --max-body-size stops the event loop
 * for long.
 */
export class InferParser {
  readonly #limits: InferLimits;
  #thread: ParseThread | undefined;
  #nextId = 0;
  #idle: NodeJS.Timeout | undefined;

  constructor(limits: InferLimits) {
    this.#limits = limits;
  }

  parse(body: Buffer, headerLength: string | string[] | undefined): Promise<InferCall> | InferCall {
    if (Array.isArray(headerLength)) throw new InferenceProtocolError('Inference-Header-Content-Length is given more than once');
    if (jsonBytes(body, headerLength) <= PARSE_IN_PLACE_BYTES) return parseHere(body, headerLength, this.#limits);
    return this.#parseOnThread(body, headerLength);
  }

  /** Stops the parse thread, if one runs; parses under way fail. */
  async close(): Promise<void> {
    clearTimeout(this.#idle);
    const thread = this.#thread;
    this.#thread = undefined;
    await thread?.worker.terminate();
  }

  #parseOnThread(body: Buffer, headerLength: string | undefined): Promise<InferCall> {
    clearTimeout(this.#idle);
    const thread = this.#thread ??= this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      // Transferred when the body owns its memory (readBody's do): copying 50 MB would stop the loop for 40 ms.
      const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
      thread.worker.postMessage({ id, body, headerLength, limits: this.#limits } satisfies ParseRequest, owned ? [body.buffer as ArrayBuffer] : []);
    });
  }

  #start(): ParseThread {
    const thread: ParseThread = { worker: new Worker(new URL('./infer-parse-worker.js', import.meta.url)), pending: new Map() };
    const { worker, pending } = thread;
    worker.unref();
    worker.on('message', (reply: ParseReply) => {
      const waiting = pending.get(reply.id);
      pending.delete(reply.id);
      if (pending.size === 0 && this.#thread === thread) this.#idle = setTimeout(() => void this.close(), IDLE_MS).unref();
      if (waiting === undefined) return;
      if ('call' in reply) waiting.resolve({ ...reply.call, images: reply.call.images.map((image) => Buffer.from(image.buffer, image.byteOffset, image.byteLength)) });
      else if ('serverError' in reply) waiting.reject(new ServerError(reply.serverError.code, reply.serverError.message));
      else waiting.reject(new InferenceProtocolError(reply.protocolError));
    });
    const failAll = (error: Error): void => {
      if (this.#thread === thread) this.#thread = undefined;
      for (const waiting of pending.values()) waiting.reject(error);
      pending.clear();
    };
    worker.on('error', failAll);
    worker.on('exit', () => failAll(new Error('the parse thread stopped')));
    return thread;
  }
}
