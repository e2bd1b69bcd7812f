import { subscribe } from 'node:diagnostics_channel';
import { Readable } from 'node:stream';
import { createDispatcher, type Undici } from './dispatcher.js';
import { AnswerLostError, HttpStatusError, InterruptedError, NetworkError, toNetworkError, type FileReadError, type ReencodeError } from '../errors.js';
import { decodeAnswer, type BodyFormat } from '../bodies/body-format.js';
import { Exchange, type Answer } from './exchange.js';
import { Origin, OriginSet } from './origins.js';
import type { FileBody, GroupBody } from '../bodies/request-body.js';
import type { Proxy } from './proxy.js';
import { parseRetryAfter } from '../pacing/retry-policy.js';
import type { TlsContext } from './tls-context.js';
import type { UrlTemplate } from './url-template.js';

/**
 * The bodies undici wrote whole to a socket (H1Pool tells its Exchange instead) (its `bodySent` channel names the
 * request, which holds our Buffer or stream as it is): a request that then
 * fails reached the server, which may have taken the file.
 */
const sentWhole = new WeakSet<object>();
/** How a connection ends when the server took the request and never answered: closed, reset, or silent past --timeout. */
const CUT_AFTER_SENDING: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_HEADERS_TIMEOUT']);
subscribe('undici:request:bodySent', (message) => {
  const { body } = (message as { request: { body: unknown } }).request;
  if (typeof body === 'object' && body !== null) sentWhole.add(body);
});

export interface TransportSettings {
  /** One or several servers (--url repeated): see OriginSet. */
  readonly urls: readonly UrlTemplate[];
  readonly method: 'POST' | 'PUT';
  /** Lower-case names; may hold authorization, never logged. */
  readonly headers: Readonly<Record<string, string>>;
  readonly connections: number;
  readonly timeoutMs: number;
  /** A request's whole time, answer included (--max-time); undefined for none. */
  readonly maxTimeMs: number | undefined;
  readonly connectTimeoutMs: number;
  readonly http2: boolean;
  readonly tls: TlsContext | undefined;
  /** Per URL of `urls`: the proxy to reach it through, if any. */
  readonly proxies: ReadonlyArray<Proxy | undefined>;
  /** undici, loaded when a server needs it (see needsUndici, loadUndici). */
  readonly undici: Undici | undefined;
  /** A client certificate was given (--cert). */
  readonly clientCertificate: boolean;
  /** Read and keep every answer (for the results log), not only the failures'. */
  readonly keepResponses: boolean;
  /** How bodies are framed, and so how answers are read. */
  readonly format: BodyFormat;
}

/** What a 2xx answer to one file's request carried. */
export interface Delivery {
  readonly status: number;
  readonly response: unknown;
  /** The file's bytes sent in the request that succeeded. */
  readonly bytes: number;
  /** Where the server said the file's job is (a 202 with Location): a path, or with several servers a whole URL. */
  readonly job?: string;
  /** With --checksum: the SHA-256 of the body sent, hex. */
  readonly sha256?: string;
}

/** What a request of several files came to: per file, its bytes and its share of the answer, or why it was left out. */
export interface GroupDelivery {
  /** The answer's status; null when no file could be read and nothing was sent. */
  readonly status: number | null;
  readonly files: ReadonlyArray<{ readonly bytes: number; readonly response: unknown } | FileReadError | ReencodeError>;
}

/** What a job's URL answered: its state, or that it is gone. */
export interface JobState {
  readonly status: 'queued' | 'running' | 'done' | 'failed' | 'gone';
  readonly result?: unknown;
  readonly error?: { readonly code?: string; readonly message?: string };
  readonly retryAfterMs?: number | undefined;
}

/**
 * Sends request bodies (see FileBodyReader), one or several files each, to
 * one or several servers, each through its own dispatcher (see createDispatcher). Every answer's
 * body is read or dumped so sockets are reused.
 */
export class Transport {
  readonly origins: OriginSet;
  readonly #settings: TransportSettings;
  /** Whether an answer's body is read: a failure's always, a success's only for the results log. */
  readonly #keep: (status: number) => boolean;
  #cancelled: Promise<void> | undefined;

  constructor(settings: TransportSettings) {
    const { urls, connections, timeoutMs, connectTimeoutMs, http2, tls, proxies, undici } = settings;
    this.#settings = settings;
    this.#keep = settings.keepResponses ? () => true : (status) => status < 200 || status >= 300;
    this.origins = new OriginSet(urls.map((url, i) => {
      const proxy = proxies[i];
      return new Origin(url, createDispatcher({ origin: url.origin, connections, timeoutMs, connectTimeoutMs, http2, tls, proxy: proxy?.url, undici }), {
        // A ProxyAgent writes a missing host header into the object it is given: given one, the shared objects stay as they are.
        headers: proxy === undefined ? settings.headers : { ...settings.headers, host: url.host },
        context: {
          host: url.host,
          timeoutMs,
          connectTimeoutMs,
          proxy: proxy?.shown,
          withoutClientCertificate: url.origin.startsWith('https:') && !settings.clientCertificate,
        },
      });
    }));
  }

  /** The URL a file goes to on `origin` (by default the first), for logs. */
  urlFor(rel: string, origin = this.origins.all[0] as Origin): string {
    return origin.url.origin + origin.url.pathFor(rel);
  }

  /**
   * Sends the body of the file found at `rel` once. Throws HttpStatusError
   * for a non-2xx answer, NetworkError when there was no answer,
   * FileChangedError when a streamed file changed, InterruptedError once cancelled.
   */
  async send(origin: Origin, body: FileBody, rel: string): Promise<Delivery> {
    const answer = await this.#exchange(origin, rel, body);
    const location = answer.status === 202 ? answer.location : undefined;
    const job = typeof location === 'string' ? this.#jobPlace(new URL(location, origin.url.origin)) : undefined;
    const response = this.#settings.format.single(answer.response);
    return { status: answer.status, response, bytes: body.fileBytes, ...(job === undefined ? {} : { job }) };
  }

  /**
   * Sends several files in one request, once; throws as send() does for
   * the request. A file left out of the body has its reason in its
   * answer's place.
   */
  async sendGroup(origin: Origin, body: GroupBody, rel: string): Promise<GroupDelivery> {
    let status: number | null = null;
    let answers: unknown[] = [];
    if (body.data !== undefined) {
      const answer = await this.#exchange(origin, rel, { data: body.data, length: body.data.length, contentType: body.contentType, headers: body.headers });
      status = answer.status;
      answers = this.#settings.format.perFile(answer.response, body.files.filter((file) => typeof file === 'number').length);
    }
    let next = 0;
    return { status, files: body.files.map((file) => (typeof file === 'number' ? { bytes: file, response: answers[next++] } : file)) };
  }

  /** One request of file `rel`'s and its whole answer; a non-2xx answer throws HttpStatusError. */
  async #exchange(origin: Origin, rel: string, body: Pick<FileBody, 'data' | 'length' | 'contentType' | 'headers'>): Promise<{ status: number; response: unknown; location: unknown }> {
    const { data, length } = body;
    let headers = origin.headersFor(body.contentType);
    if (body.headers !== undefined) headers = { ...headers, ...body.headers };
    // undici sets content-length itself for a Buffer, not for a stream.
    if (data instanceof Readable) headers = { ...headers, 'content-length': String(length) };
    // Only with --max-time: a timer per request is a cost the others need not pay.
    const { maxTimeMs, method, format } = this.#settings;
    const deadline = maxTimeMs === undefined ? undefined : AbortSignal.timeout(maxTimeMs);
    const exchange = Exchange.send(origin.dispatcher, { origin: origin.url.origin, path: origin.url.pathFor(rel), method, headers, body: data }, this.#keep, deadline);
    let answer: Answer;
    try {
      answer = await exchange.answer;
    } catch (error) {
      // Before the status line: the request may have reached the server (its body went whole). After a 2xx status: only the answer was lost.
      const { status } = exchange;
      const lostAfter = status === undefined ? (exchange.sent || sentWhole.has(data) ? null : undefined) : status < 300 ? status : undefined;
      throw this.#failure(error, origin, deadline, lostAfter);
    } finally {
      if (data instanceof Readable) data.destroy();
    }
    const ok = answer.status < 300;
    const response = this.#keep(answer.status) ? format.decode(answer) : undefined;
    if (ok) return { status: answer.status, response, location: answer.headers.location };
    throw new HttpStatusError(answer.status, serverMessage(response), response, parseRetryAfter(answer.headers['retry-after']));
  }

  /** Asks a job's URL how the job stands. A 404 means the job is gone (expired, or never known). */
  async poll(job: string): Promise<JobState> {
    const place = new URL(job, this.origins.all[0]?.url.origin);
    const origin = this.origins.all.find((candidate) => candidate.url.origin === place.origin);
    if (origin === undefined) return { status: 'gone' };
    let answer: Answer;
    try {
      answer = await Exchange.send(origin.dispatcher, { origin: origin.url.origin, path: place.pathname + place.search, method: 'GET', headers: origin.headers }, () => true).answer;
    } catch (error) {
      throw this.#failure(error, origin, undefined);
    }
    const body = decodeAnswer(answer);
    if (answer.status === 404) return { status: 'gone' };
    const retryAfterMs = parseRetryAfter(answer.headers['retry-after']);
    if (answer.status >= 300) throw new HttpStatusError(answer.status, serverMessage(body), body, retryAfterMs);
    const state = body as Partial<JobState>;
    const status = state.status === 'done' || state.status === 'failed' ? state.status : 'running';
    return { status, result: state.result, error: state.error, retryAfterMs };
  }

  /**
   * Ends every request in flight now. Destroying the dispatcher does for all of
   * them what a per-request AbortSignal would, without a listener per request.
   */
  cancel(): void {
    this.#cancelled ??= Promise.all(this.origins.all.map((origin) => origin.dispatcher.destroy(new InterruptedError(true)))).then(() => {});
  }

  /** Closes the dispatchers once their requests are done (at once after cancel()). */
  async close(): Promise<void> {
    await (this.#cancelled ?? Promise.all(this.origins.all.map((origin) => origin.dispatcher.close())));
  }

  /** A job's place as the failure log keeps it: its path, or with several servers its whole URL, since only its server knows it. */
  #jobPlace(url: URL): string {
    return this.origins.all.length === 1 ? url.pathname + url.search : url.href;
  }

  /** `lostAfter`: the request reached the server (null), or its 2xx status came (the status): the answer alone was lost. */
  #failure(error: unknown, origin: Origin, deadline: AbortSignal | undefined, lostAfter?: number | null): Error {
    const cancelled = this.#cancelled !== undefined;
    if (!cancelled && deadline?.aborted === true) {
      const seconds = (this.#settings.maxTimeMs ?? 0) / 1000;
      return new NetworkError('IMGPUSH_MAX_TIME', `${origin.context.host} did not finish answering within ${seconds} s (--max-time)`, error);
    }
    const network = cancelled ? undefined : toNetworkError(error, origin.context);
    // A proxy's refusal or a timeout before the body went is no lost answer: only a connection cut after it, or a stop.
    if (lostAfter !== undefined && (network === undefined || lostAfter !== null || CUT_AFTER_SENDING.has(network.code))) {
      return new AnswerLostError(lostAfter, network?.message ?? 'the run was stopped', error);
    }
    return network ?? new InterruptedError(true);
  }
}

/** What the server said, in one line: a JSON error's message (FastAPI's detail, ours) or the text's first line. */
function serverMessage(response: unknown): string {
  let text: unknown = response;
  if (typeof response === 'object' && response !== null) {
    const body = response as { error?: { message?: unknown } | unknown; message?: unknown; detail?: unknown };
    const nested = typeof body.error === 'object' && body.error !== null ? (body.error as { message?: unknown }).message : body.error;
    const json = JSON.stringify(response);
    text = [nested, body.message, body.detail].find((value) => typeof value === 'string') ?? (json === '{}' || json === '[]' ? '' : json);
  }
  const line = String(text ?? '').trim().split(/\r?\n/, 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
