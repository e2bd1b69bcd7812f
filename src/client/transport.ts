import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { createDispatcher } from './dispatcher.js';
import { HttpStatusError, InterruptedError, toNetworkError, type NetworkContext } from './errors.js';
import type { MultipartFraming } from './multipart.js';
import type { FileAccess } from './file-access.js';
import { FileBodyReader } from './request-body.js';
import type { Proxy } from './proxy.js';
import { parseRetryAfter } from './retry-policy.js';
import type { TlsContext } from './tls-context.js';
import type { UrlTemplate } from './url-template.js';

/** JSON answers up to this size are parsed for the results log; anything else is kept as text cut at 4 KB. */
const MAX_JSON_BYTES = 1024 * 1024;
const MAX_TEXT_CHARS = 4096;

export interface TransportSettings {
  readonly url: UrlTemplate;
  readonly method: 'POST' | 'PUT';
  /** Set for multipart bodies; raw bodies are the file's bytes alone. */
  readonly framing: MultipartFraming | undefined;
  /** Lower-case names; may hold authorization, never logged. */
  readonly headers: Readonly<Record<string, string>>;
  readonly connections: number;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly http2: boolean;
  readonly tls: TlsContext | undefined;
  readonly proxy: Proxy | undefined;
  /** A client certificate was given (--cert). */
  readonly clientCertificate: boolean;
  readonly streamThresholdBytes: number;
  /** The run's file calls, shared with discovery. */
  readonly files: FileAccess;
  /** Read and keep every answer (for the results log), not only the failures'. */
  readonly keepResponses: boolean;
}

/** What a 2xx answer to one file's request carried. */
export interface Delivery {
  readonly status: number;
  readonly response: unknown;
  /** The file's bytes sent in the request that succeeded. */
  readonly bytes: number;
  /** Where the server said the file's job is (a 202 with Location), as a path on the same origin. */
  readonly job?: string;
}

/** What a job's URL answered: its state, or that it is gone. */
export interface JobState {
  readonly status: 'queued' | 'running' | 'done' | 'failed' | 'gone';
  readonly result?: unknown;
  readonly error?: { readonly code?: string; readonly message?: string };
  readonly retryAfterMs?: number | undefined;
}

/**
 * Sends one file per request through the run's dispatcher (see
 * createDispatcher). Every answer's body is read or dumped so sockets are
 * reused.
 */
export class Transport {
  readonly #settings: TransportSettings;
  readonly #dispatcher: Dispatcher;
  readonly #files: FileBodyReader;
  /** Headers by the body's content type, built once: the per-file path only adds content-length for streams. */
  readonly #headersByType = new Map<string, Record<string, string>>();
  /** The run's headers, with host when through a proxy (see the constructor). */
  readonly #headers: Readonly<Record<string, string>>;
  readonly #context: NetworkContext;
  #cancelled: Promise<void> | undefined;

  constructor(settings: TransportSettings) {
    const { url, connections, timeoutMs, connectTimeoutMs, http2, tls, proxy } = settings;
    this.#settings = settings;
    this.#files = new FileBodyReader(settings.files, settings.framing, settings.streamThresholdBytes);
    this.#dispatcher = createDispatcher({ origin: url.origin, connections, timeoutMs, connectTimeoutMs, http2, tls, proxy: proxy?.url });
    // A ProxyAgent writes a missing host header into the object it is given: given here, the shared objects stay as they are.
    this.#headers = proxy === undefined ? settings.headers : { ...settings.headers, host: url.host };
    this.#context = {
      host: url.host,
      timeoutMs,
      connectTimeoutMs,
      proxy: proxy?.shown,
      withoutClientCertificate: url.origin.startsWith('https:') && !settings.clientCertificate,
    };
  }

  /** The URL a file goes to, for logs. */
  urlFor(rel: string): string {
    return this.#settings.url.origin + this.#settings.url.pathFor(rel);
  }

  /**
   * Sends one file once. Throws HttpStatusError for a non-2xx answer,
   * NetworkError when there was no answer, FileReadError/FileChangedError
   * when the file could not be read, InterruptedError once cancelled.
   */
  async send(path: string, rel: string): Promise<Delivery> {
    const settings = this.#settings;
    const body = await this.#files.read(path);
    const contentType = settings.framing?.contentType ?? body.fileType;
    let headers = this.#headersFor(contentType);
    // undici sets content-length itself for a Buffer, not for a stream.
    if (body.data instanceof Readable) headers = { ...headers, 'content-length': String(body.length) };
    let answer: Dispatcher.ResponseData;
    try {
      answer = await this.#dispatcher.request({ origin: settings.url.origin, path: settings.url.pathFor(rel), method: settings.method, headers, body: body.data });
    } catch (error) {
      throw this.#failure(error);
    } finally {
      if (body.data instanceof Readable) body.data.destroy();
    }
    const ok = answer.statusCode >= 200 && answer.statusCode < 300;
    let response: unknown;
    try {
      if (ok && !settings.keepResponses) await answer.body.dump();
      else response = await readAnswer(answer);
    } catch (error) {
      throw this.#failure(error);
    }
    if (ok) {
      const location = answer.statusCode === 202 ? answer.headers.location : undefined;
      const job = typeof location === 'string' ? new URL(location, settings.url.origin).pathname : undefined;
      return { status: answer.statusCode, response, bytes: body.fileBytes, ...(job === undefined ? {} : { job }) };
    }
    const retryAfter = parseRetryAfter(answer.headers['retry-after']);
    throw new HttpStatusError(answer.statusCode, serverMessage(response), response, retryAfter);
  }

  /** Asks a job's URL how the job stands. A 404 means the job is gone (expired, or never known). */
  async poll(job: string): Promise<JobState> {
    let answer: Dispatcher.ResponseData;
    try {
      answer = await this.#dispatcher.request({ origin: this.#settings.url.origin, path: job, method: 'GET', headers: this.#headers });
    } catch (error) {
      throw this.#failure(error);
    }
    let body: unknown;
    try {
      body = await readAnswer(answer);
    } catch (error) {
      throw this.#failure(error);
    }
    if (answer.statusCode === 404) return { status: 'gone' };
    const retryAfterMs = parseRetryAfter(answer.headers['retry-after']);
    if (answer.statusCode >= 300) throw new HttpStatusError(answer.statusCode, serverMessage(body), body, retryAfterMs);
    const state = body as Partial<JobState>;
    const status = state.status === 'done' || state.status === 'failed' ? state.status : 'running';
    return { status, result: state.result, error: state.error, retryAfterMs };
  }

  /**
   * Ends every request in flight now. Destroying the dispatcher does for all of
   * them what a per-request AbortSignal would, without a listener per request.
   */
  cancel(): void {
    this.#cancelled ??= this.#dispatcher.destroy(new InterruptedError(true));
  }

  /** Closes the dispatcher once its requests are done (at once after cancel()). */
  async close(): Promise<void> {
    await (this.#cancelled ?? this.#dispatcher.close());
  }

  #headersFor(contentType: string): Record<string, string> {
    let headers = this.#headersByType.get(contentType);
    if (headers === undefined) {
      headers = { 'content-type': contentType, ...this.#headers };
      this.#headersByType.set(contentType, headers);
    }
    return headers;
  }

  #failure(error: unknown): Error {
    if (this.#cancelled !== undefined) return new InterruptedError(true);
    return toNetworkError(error, this.#context);
  }
}

/** The whole answer, parsed when it is JSON, else as text cut at 4 KB; the body is always read to its end. */
async function readAnswer(answer: Dispatcher.ResponseData): Promise<unknown> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of answer.body as AsyncIterable<Buffer>) {
    if (length <= MAX_JSON_BYTES) chunks.push(chunk);
    length += chunk.length;
  }
  const bytes = Buffer.concat(chunks);
  const type = String(answer.headers['content-type'] ?? '');
  if (length <= MAX_JSON_BYTES && /[/+]json\b/i.test(type)) {
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch {
      // Not JSON after all: keep it as text.
    }
  }
  const text = bytes.toString('utf8', 0, Math.min(bytes.length, MAX_TEXT_CHARS * 4));
  return text.length > MAX_TEXT_CHARS ? text.slice(0, MAX_TEXT_CHARS) : text;
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
