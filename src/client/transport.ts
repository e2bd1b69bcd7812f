import { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import { HttpStatusError, InterruptedError, toNetworkError, type FileReadError, type ReencodeError } from './errors.js';
import type { FileBody, GroupBody } from './request-body.js';
import { parseRetryAfter } from './retry-policy.js';
import type { UrlTemplate } from './url-template.js';

/** JSON answers up to this size are parsed for the results log; anything else is kept as text cut at 4 KB. */
const MAX_JSON_BYTES = 1024 * 1024;
const MAX_TEXT_CHARS = 4096;

export interface TransportSettings {
  readonly url: UrlTemplate;
  readonly method: 'POST' | 'PUT';
  /** Lower-case names; may hold authorization, never logged. */
  readonly headers: Readonly<Record<string, string>>;
  readonly connections: number;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
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
 * Sends request bodies (see FileBodyReader) through a keep-alive undici Pool of exactly
 * `connections` sockets (its default is one socket per concurrent request,
 * unbounded). Every answer's body is read or dumped so sockets are reused.
 */
export class Transport {
  readonly #settings: TransportSettings;
  readonly #pool: Pool;
  /** Headers by the body's content type, built once: the per-file path only adds content-length for streams. */
  readonly #headersByType = new Map<string, Record<string, string>>();
  #cancelled: Promise<void> | undefined;

  constructor(settings: TransportSettings) {
    this.#settings = settings;
    this.#pool = new Pool(settings.url.origin, {
      connections: settings.connections,
      pipelining: 1,
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      connect: { timeout: settings.connectTimeoutMs },
    });
  }

  /** The URL a file goes to, for logs. */
  urlFor(rel: string): string {
    return this.#settings.url.origin + this.#settings.url.pathFor(rel);
  }

  /**
   * Sends the body of the file found at `rel` once. Throws HttpStatusError
   * for a non-2xx answer, NetworkError when there was no answer,
   * FileChangedError when a streamed file changed, InterruptedError once cancelled.
   */
  async send(body: FileBody, rel: string): Promise<Delivery> {
    const answer = await this.#exchange(this.#settings.url.pathFor(rel), body.contentType, body.data, body.length);
    const location = answer.status === 202 ? answer.location : undefined;
    const job = typeof location === 'string' ? new URL(location, this.#settings.url.origin).pathname : undefined;
    return { status: answer.status, response: answer.response, bytes: body.fileBytes, ...(job === undefined ? {} : { job }) };
  }

  /**
   * Sends several files in one multipart request, once; throws as send()
   * does for the request. A file left out of the body has its reason in
   * its answer's place.
   */
  async sendGroup(body: GroupBody, rel: string): Promise<GroupDelivery> {
    let status: number | null = null;
    let answers: unknown[] = [];
    if (body.data !== undefined) {
      const answer = await this.#exchange(this.#settings.url.pathFor(rel), body.contentType, body.data, body.data.length);
      status = answer.status;
      answers = answerPerFile(answer.response, body.files.filter((file) => typeof file === 'number').length);
    }
    let next = 0;
    return { status, files: body.files.map((file) => (typeof file === 'number' ? { bytes: file, response: answers[next++] } : file)) };
  }

  /** One request and its whole answer; a non-2xx answer throws HttpStatusError. */
  async #exchange(path: string, contentType: string, data: Buffer | Readable, length: number): Promise<{ status: number; response: unknown; location: unknown }> {
    let headers = this.#headersFor(contentType);
    // undici sets content-length itself for a Buffer, not for a stream.
    if (data instanceof Readable) headers = { ...headers, 'content-length': String(length) };
    let answer: Dispatcher.ResponseData;
    try {
      answer = await this.#pool.request({ path, method: this.#settings.method, headers, body: data });
    } catch (error) {
      throw this.#failure(error);
    } finally {
      if (data instanceof Readable) data.destroy();
    }
    const ok = answer.statusCode >= 200 && answer.statusCode < 300;
    let response: unknown;
    try {
      if (ok && !this.#settings.keepResponses) await answer.body.dump();
      else response = await readAnswer(answer);
    } catch (error) {
      throw this.#failure(error);
    }
    if (ok) return { status: answer.statusCode, response, location: answer.headers.location };
    const retryAfter = parseRetryAfter(answer.headers['retry-after']);
    throw new HttpStatusError(answer.statusCode, serverMessage(response), response, retryAfter);
  }

  /** Asks a job's URL how the job stands. A 404 means the job is gone (expired, or never known). */
  async poll(job: string): Promise<JobState> {
    let answer: Dispatcher.ResponseData;
    try {
      answer = await this.#pool.request({ path: job, method: 'GET', headers: this.#settings.headers });
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
   * Ends every request in flight now. Destroying the pool does for all of
   * them what a per-request AbortSignal would, without a listener per request.
   */
  cancel(): void {
    this.#cancelled ??= this.#pool.destroy(new InterruptedError(true));
  }

  /** Closes the pool once its requests are done (at once after cancel()). */
  async close(): Promise<void> {
    await (this.#cancelled ?? this.#pool.close());
  }

  #headersFor(contentType: string): Record<string, string> {
    let headers = this.#headersByType.get(contentType);
    if (headers === undefined) {
      headers = { 'content-type': contentType, ...this.#settings.headers };
      this.#headersByType.set(contentType, headers);
    }
    return headers;
  }

  #failure(error: unknown): Error {
    if (this.#cancelled !== undefined) return new InterruptedError(true);
    const { url, timeoutMs, connectTimeoutMs } = this.#settings;
    return toNetworkError(error, url.host, timeoutMs, connectTimeoutMs);
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

/** Where an answer to several files keeps its list of per-file answers, when it is an object: ours, TF Serving's, KServe's, and common ones. */
const LIST_KEYS = ['results', 'predictions', 'outputs', 'files', 'data'];

/**
 * Each file's share of an answer to several files: the list's items, in
 * order, when the answer is a list of one item per file (or an object
 * holding one under a usual name); else the whole answer for each.
 */
function answerPerFile(response: unknown, count: number): unknown[] {
  let list: unknown = response;
  if (!Array.isArray(list) && typeof response === 'object' && response !== null) {
    const body = response as Record<string, unknown>;
    list = LIST_KEYS.map((key) => body[key]).find((value) => Array.isArray(value) && value.length === count);
  }
  return Array.isArray(list) && list.length === count ? list : new Array<unknown>(count).fill(response);
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
