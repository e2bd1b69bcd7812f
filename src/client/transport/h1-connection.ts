import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { ConnectionError } from '../errors.js';
import { AnswerParser, type AnswerEvents, type AnswerHeaders } from './answer-parser.js';

/** How long a free connection is still taken for a request when the server gives no keep-alive timeout: undici's default. Past it, the connection is closed when next met, or by the server. */
const IDLE_MS = 4_000;
/** Taken off a server's own keep-alive timeout: a request sent at its very edge would meet a closing socket. */
const KEEP_ALIVE_MARGIN_MS = 1_000;
/** A body up to this size goes out in one buffer with its head: one write, one system call, for a thumbnail. */
const ONE_WRITE_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);
/** What undici's onRequestStart gives as context; a run uses none. */
const NO_CONTEXT = Object.freeze({});

/** A request as the pool takes it: the part of undici's DispatchOptions a run uses. */
export interface H1Request {
  readonly path: string;
  readonly method: string;
  /** Lower-case names, checked at the edge (options/resolve.ts); host and content-length are the pool's. */
  readonly headers: Readonly<Record<string, string>>;
  /** A stream goes with the content-length its headers give; a Buffer gets its own. */
  readonly body?: Buffer | Readable | undefined;
}

/** Ends a request early: what undici calls the dispatch controller, as far as a run uses it. */
export interface RequestControl {
  abort(reason: Error): void;
}

/** What hears how a request goes: undici's dispatch handler's calls, and onRequestSent once the request went whole. */
export interface H1Handler {
  onRequestStart?(controller: RequestControl, context: object): void;
  onRequestSent?(): void;
  onResponseStart?(controller: RequestControl, status: number, headers: AnswerHeaders, reason: string): void;
  onResponseData?(controller: RequestControl, chunk: Buffer): void;
  onResponseEnd?(controller: RequestControl, trailers: AnswerHeaders): void;
  onResponseError?(controller: RequestControl, error: Error): void;
}
/** What a connection needs of its pool (H1Pool): where to connect, its limits, and to hear when the connection is free or gone. */
export interface ConnectionOwner {
  readonly host: string;
  readonly port: number;
  /** The Host header: the origin's host, with its port when not 80. */
  readonly hostHeader: string;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Takes a request that never got a connection out of the queue, failing it with `reason`. */
  unqueue(call: Call, reason: Error): void;
  /** A request ended, answered or failed. */
  settled(): void;
  free(connection: Connection): void;
  gone(connection: Connection): void;
}

/** One request, from dispatch to its end; it is its own controller. */
export class Call implements RequestControl {
  readonly request: H1Request;
  readonly handler: H1Handler;
  readonly #pool: ConnectionOwner;
  connection: Connection | undefined;
  ended = false;

  constructor(request: H1Request, handler: H1Handler, pool: ConnectionOwner) {
    this.request = request;
    this.handler = handler;
    this.#pool = pool;
  }

  abort(reason: Error): void {
    if (this.ended) return;
    if (this.connection === undefined) this.#pool.unqueue(this, reason);
    else this.connection.fail(reason);
  }

  fail(error: Error): void {
    if (this.ended) return;
    this.end();
    this.handler.onResponseError?.(this, error);
  }

  end(): void {
    this.ended = true;
    this.#pool.settled();
  }
}

/** One socket of the pool and the request it carries, if any. */
export class Connection implements AnswerEvents {
  readonly socket: Socket;
  readonly #pool: ConnectionOwner;
  #connected = false;
  #call: Call | undefined;
  #parser: AnswerParser | undefined;
  /** The whole request went out (its last byte was handed to the system). */
  #sent = false;
  /** How a streamed body stops being sent when the request ends first. */
  #unpipe: (() => void) | undefined;
  #idleMs = IDLE_MS;
  /** When it was last freed (performance.now()). */
  #restedAt = 0;

  constructor(pool: ConnectionOwner, first: Call) {
    this.#pool = pool;
    const socket = connect({ host: pool.host, port: pool.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 });
    this.socket = socket;
    // The pool keeps the process alive while it has requests (see H1Pool): toggling each socket per request cost more.
    socket.unref();
    socket.setTimeout(pool.connectTimeoutMs);
    socket.once('connect', () => {
      this.#connected = true;
      socket.setTimeout(pool.timeoutMs);
    });
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('timeout', () => this.#timedOut());
    socket.on('error', (error) => this.fail(error));
    socket.on('end', () => this.#ended());
    socket.on('close', () => {
      this.fail(new ConnectionError('UND_ERR_SOCKET', 'other side closed'));
      pool.gone(this);
    });
    // Node holds what is written before the connection is up, and sends it once it is.
    this.start(first);
  }

  start(call: Call): void {
    this.#call = call;
    call.connection = this;
    this.#parser = new AnswerParser(this);
    this.#sent = false;
    // The socket's timeout stays --timeout from its connection on: writing the request restarts its count.
    call.handler.onRequestStart?.(call, NO_CONTEXT);
    if (!call.ended) this.#write(call.request);
  }

  /** Free in the pool from now. */
  rest(): void {
    this.#restedAt = performance.now();
  }

  /**
   * Whether it can take another request: open, and free for less than the
   * server keeps an idle connection (less a margin), after which a request
   * could meet the server closing it.
   */
  usable(now: number): boolean {
    return this.socket.writable && now - this.#restedAt < this.#idleMs;
  }

  /** Ends the request under way, if any, with `error`, and the connection with it. */
  fail(error: Error): void {
    const call = this.#call;
    this.#call = undefined;
    this.#unpipe?.();
    this.socket.destroy();
    call?.fail(error);
  }

  #write({ method, path, headers, body }: H1Request): void {
    const socket = this.socket;
    let head = `${method} ${path} HTTP/1.1\r\nhost: ${this.#pool.hostHeader}\r\n${headerLines(headers)}`;
    if (body instanceof Readable) {
      socket.write(`${head}\r\n`, 'latin1');
      this.#pipe(body);
      return;
    }
    if (body === undefined) {
      socket.write(method === 'GET' ? `${head}\r\n` : `${head}content-length: 0\r\n\r\n`, 'latin1', this.#wentWhole);
      return;
    }
    head += `content-length: ${body.length}\r\n\r\n`;
    if (body.length <= ONE_WRITE_BYTES) {
      // Head and body in one buffer: one write. The copy costs less than a second system call.
      const whole = Buffer.allocUnsafe(head.length + body.length);
      whole.write(head, 0, 'latin1');
      body.copy(whole, head.length);
      socket.write(whole, this.#wentWhole);
      return;
    }
    socket.cork();
    socket.write(head, 'latin1');
    socket.write(body, this.#wentWhole);
    socket.uncork();
  }

  /** Sends a streamed body as fast as the connection takes it; its own failure (the file changed) ends the request. */
  #pipe(body: Readable): void {
    const socket = this.socket;
    const resume = (): void => {
      body.resume();
    };
    const onData = (chunk: Buffer): void => {
      if (!socket.write(chunk)) {
        body.pause();
        socket.once('drain', resume);
      }
    };
    const onEnd = (): void => {
      this.#unpipe = undefined;
      socket.write(EMPTY, this.#wentWhole);
    };
    const onError = (error: Error): void => this.fail(error);
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    this.#unpipe = () => {
      this.#unpipe = undefined;
      body.off('data', onData).off('end', onEnd).off('error', onError);
      socket.off('drain', resume);
    };
  }

  readonly #wentWhole = (error?: Error | null): void => {
    if (error != null || this.#call === undefined) return;
    this.#sent = true;
    this.#call.handler.onRequestSent?.();
  };

  #read(chunk: Buffer): void {
    const parser = this.#parser;
    // Bytes when no request is under way: the server is not speaking HTTP/1.1 to us.
    if (this.#call === undefined || parser === undefined) {
      this.socket.destroy();
      return;
    }
    let used: number;
    try {
      used = parser.feed(chunk);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    // More after the answer's end: no request asked for it, so the connection cannot be trusted with another.
    if (parser.done) this.#answered(used === chunk.length);
  }

  onHead(status: number, headers: AnswerHeaders, reason: string): void {
    const call = this.#call as Call;
    const { keepAliveMs } = this.#parser as AnswerParser;
    if (keepAliveMs !== undefined) this.#idleMs = Math.min(IDLE_MS, keepAliveMs - KEEP_ALIVE_MARGIN_MS);
    call.handler.onResponseStart?.(call, status, headers, reason);
  }

  onBody(chunk: Buffer): void {
    const call = this.#call as Call;
    call.handler.onResponseData?.(call, chunk);
  }

  onEnd(): void {
    (this.#call as Call).end();
  }

  /** The answer ended: the request with it, and the connection takes the next one if it can. */
  #answered(reusable: boolean): void {
    const call = this.#call as Call;
    const parser = this.#parser as AnswerParser;
    this.#call = undefined;
    this.#parser = undefined;
    this.#unpipe?.();
    // An answer that came before the whole request went (a 413 to a large body) leaves the connection mid-request.
    const again = reusable && parser.keepAlive && this.#sent && this.#idleMs > 0;
    if (!again) this.socket.destroy();
    call.handler.onResponseEnd?.(call, {});
    if (again) this.#pool.free(this);
  }

  /** The server closed its side: an answer framed by the connection's end is whole; any other request under way failed. */
  #ended(): void {
    const parser = this.#parser;
    if (this.#call === undefined || parser === undefined) {
      this.socket.destroy();
      return;
    }
    if (parser.finish()) {
      this.#answered(false);
      return;
    }
    this.fail(new ConnectionError('UND_ERR_SOCKET', parser.started ? 'other side closed before the answer ended' : 'other side closed'));
  }

  #timedOut(): void {
    if (!this.#connected) {
      this.fail(new ConnectionError('UND_ERR_CONNECT_TIMEOUT', 'Connect Timeout Error'));
      return;
    }
    if (this.#call === undefined) {
      this.socket.destroy();
      return;
    }
    const started = this.#parser?.started === true;
    this.fail(new ConnectionError(started ? 'UND_ERR_BODY_TIMEOUT' : 'UND_ERR_HEADERS_TIMEOUT', started ? 'Body Timeout Error' : 'Headers Timeout Error'));
  }
}

/** A headers object as lines of the request's head, made once per object: the run's headers are one object per content type. */
const lines = new WeakMap<object, string>();
function headerLines(headers: Readonly<Record<string, string>>): string {
  let text = lines.get(headers);
  if (text === undefined) {
    text = '';
    for (const name in headers) text += `${name}: ${headers[name]}\r\n`;
    lines.set(headers, text);
  }
  return text;
}
