import { ConnectionError } from '../errors.js';
import { Call, Connection, type ConnectionOwner, type H1Handler, type H1Request } from './h1-connection.js';

/** The timer that holds the process while requests are under way never needs to fire: about 12 days. */
const KEEP_ALIVE_INTERVAL_MS = 2 ** 30;

function keepAlive(): void {}

export interface H1PoolSettings {
  /** http://host:port */
  readonly origin: string;
  readonly connections: number;
  /** Silence allowed on a busy connection, either way (--timeout). */
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
}

/**
 * A keep-alive pool of at most `connections` HTTP/1.1 connections to one
 * plain http:// origin, one request at a time on each, with undici's
 * dispatch interface (see Exchange); each connection is a Connection
 * (h1-connection.ts). It exists for speed: it writes a small file's request
 * in one system call, reads the answer with a small parser
 * (answer-parser.ts), and spares a run to an http:// server loading undici
 * (with the lazy start-up of the same work, a fifth to a quarter less CPU
 * on thumbnails and frames: docs/performance.md). https://, HTTP/2 and proxies go through
 * undici (see createDispatcher).
 *
 * Failures carry the codes undici gives the same failures (UND_ERR_SOCKET,
 * UND_ERR_CONNECT_TIMEOUT, UND_ERR_HEADERS_TIMEOUT, UND_ERR_BODY_TIMEOUT) or
 * the system's (ECONNREFUSED, ECONNRESET, EPIPE…), so that the run reads
 * both pools alike; IMGPUSH_BAD_ANSWER for an answer that is not HTTP/1.1.
 */
export class H1Pool implements ConnectionOwner {
  readonly host: string;
  readonly port: number;
  readonly hostHeader: string;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly #max: number;
  readonly #connections = new Set<Connection>();
  /** Connections open and free, the most recently used last: it is taken first, while the server still keeps it. */
  readonly #idle: Connection[] = [];
  /** Requests waiting for a connection, first come first served. */
  #waiting: Call[] = [];
  /** Why the pool was destroyed: every request from then on fails with it. */
  #destroyed: Error | undefined;
  #closing = false;
  /** Resolves close() and destroy() once the last connection is gone. */
  #whenEmpty: (() => void) | undefined;
  /** Requests dispatched and not ended. */
  #inFlight = 0;
  /** Keeps the process alive while requests are under way: the sockets themselves never do. */
  #alive: NodeJS.Timeout | undefined;

  constructor({ origin, connections, timeoutMs, connectTimeoutMs }: H1PoolSettings) {
    const url = new URL(origin);
    // node:net wants an IPv6 address without the brackets a URL gives it.
    this.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = Number(url.port === '' ? 80 : url.port);
    this.hostHeader = url.host;
    this.#max = connections;
    this.timeoutMs = timeoutMs;
    this.connectTimeoutMs = connectTimeoutMs;
  }

  /** Sends `request` on a free connection, a new one, or once one is free; its handler hears the outcome. */
  dispatch(request: H1Request, handler: H1Handler): boolean {
    const call = new Call(request, handler, this);
    const refusal = this.#destroyed ?? (this.#closing ? new ConnectionError('UND_ERR_CLOSED', 'the pool is closed') : undefined);
    if (refusal !== undefined) {
      // Never under way, so not counted in flight: it fails without telling the pool.
      call.ended = true;
      queueMicrotask(() => handler.onResponseError?.(call, refusal));
      return false;
    }
    if (this.#inFlight++ === 0) this.#alive = setInterval(keepAlive, KEEP_ALIVE_INTERVAL_MS);
    let idle = this.#idle.pop();
    // One the server closed a moment ago (see gone), or may be closing now, would fail a request for nothing.
    const now = performance.now();
    while (idle !== undefined && !idle.usable(now)) {
      this.#connections.delete(idle);
      idle.socket.destroy();
      idle = this.#idle.pop();
    }
    if (idle !== undefined) idle.start(call);
    else if (this.#connections.size < this.#max) this.#connections.add(new Connection(this, call));
    else this.#waiting.push(call);
    return true;
  }

  /** Takes a request that never got a connection out of the queue, failing it with `reason`. */
  unqueue(call: Call, reason: Error): void {
    this.#waiting = this.#waiting.filter((waiting) => waiting !== call);
    call.fail(reason);
  }

  settled(): void {
    if (--this.#inFlight === 0) clearInterval(this.#alive);
  }

  /** A connection's request ended and the connection can carry another: the next waiting request, or rest. */
  free(connection: Connection): void {
    const next = this.#waiting.shift();
    if (next !== undefined) {
      connection.start(next);
      return;
    }
    if (this.#closing || this.#destroyed !== undefined) {
      connection.socket.destroy();
      return;
    }
    connection.rest();
    this.#idle.push(connection);
  }

  /** A connection closed: a waiting request gets a new one. */
  gone(connection: Connection): void {
    // Not there: the pool let it go itself (see dispatch), and has already taken its place.
    if (!this.#connections.delete(connection)) return;
    const at = this.#idle.indexOf(connection);
    if (at >= 0) this.#idle.splice(at, 1);
    const next = this.#waiting.shift();
    if (next !== undefined) this.#connections.add(new Connection(this, next));
    else if (this.#connections.size === 0) this.#whenEmpty?.();
  }

  /** Lets the requests under way finish, then closes every connection. */
  async close(): Promise<void> {
    this.#closing = true;
    const empty = this.#empty();
    for (const connection of this.#idle.splice(0)) connection.socket.destroy();
    await empty;
  }

  /** Ends every request, waiting or under way, with `error`, and closes every connection. */
  async destroy(error: Error): Promise<void> {
    this.#destroyed ??= error;
    const empty = this.#empty();
    for (const call of this.#waiting.splice(0)) call.fail(error);
    for (const connection of this.#connections) connection.fail(error);
    await empty;
  }

  #empty(): Promise<void> {
    if (this.#connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#whenEmpty = resolve;
    });
  }
}
