import { ConnectionError } from '../errors.js';

/** The most an answer's head (status line and headers) or its trailers may take: undici's and Node's default. */
const MAX_HEAD_BYTES = 16 * 1024;
/** A chunk-size line, extensions included, longer than this is not an answer worth reading. */
const MAX_CHUNK_LINE = 1024;
const CRLF = 0x0a0d;
const HEAD_END = Buffer.from('\r\n\r\n');
const HTTP = Buffer.from('HTTP/');
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\r\n]*))?$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DIGITS = /^\d{1,15}$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|,)\s*timeout=(\d+)/i;
const NONE: readonly string[] = [];
/** A chunk's size: at most 12 hex digits (2^48 bytes), so the sum stays an exact number. */
const CHUNK_SIZE = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/;

export type AnswerHeaders = Record<string, string | string[]>;

/** What the parser tells of one answer, in order: its head once, its body in pieces, its end once. */
export interface AnswerEvents {
  onHead(status: number, headers: AnswerHeaders, reason: string): void;
  onBody(chunk: Buffer): void;
  onEnd(): void;
}

const enum State { Head, Length, ChunkLine, ChunkData, ChunkEnd, Trailers, UntilClose, Done }

/**
 * Reads one HTTP/1.1 answer from the bytes of a connection, as they come,
 * in pieces of any size: the head (1xx answers skipped), then a body framed
 * by Content-Length, by chunks, or by the connection's end. Strict where a
 * lenient reading could take one answer's bytes for another's: conflicting
 * lengths, folded headers and malformed chunks are errors. Body pieces are
 * views of the connection's buffers, not copies.
 */
export class AnswerParser {
  /** Whether the connection can carry another request once this answer ends. */
  keepAlive = true;
  /** The server's keep-alive timeout (`Keep-Alive: timeout=N`), ms; undefined when it gave none. */
  keepAliveMs: number | undefined;
  readonly #events: AnswerEvents;
  #state = State.Head;
  /** Bytes of a head, a chunk-size line or trailers not yet whole. */
  #pending: Buffer | undefined;
  #remaining = 0;

  constructor(events: AnswerEvents) {
    this.#events = events;
  }

  get done(): boolean {
    return this.#state === State.Done;
  }

  /** Whether the answer's head has come (its final status, 1xx aside). */
  get started(): boolean {
    return this.#state !== State.Head;
  }

  /**
   * Reads the bytes of `chunk`; returns how many it used. Fewer than all
   * means the answer ended before the chunk did: what follows is not part of
   * it. Throws ConnectionError (IMGPUSH_BAD_ANSWER) for what cannot be read.
   */
  feed(chunk: Buffer): number {
    let at = 0;
    while (at < chunk.length && this.#state !== State.Done) {
      switch (this.#state) {
        case State.Head: at = this.#head(chunk, at); break;
        case State.Length:
        case State.ChunkData: at = this.#data(chunk, at); break;
        case State.UntilClose: this.#events.onBody(at === 0 ? chunk : chunk.subarray(at)); at = chunk.length; break;
        case State.ChunkEnd: at = this.#chunkEnd(chunk, at); break;
        case State.ChunkLine: at = this.#line(chunk, at, MAX_CHUNK_LINE, (line) => this.#chunkSize(line)); break;
        case State.Trailers: at = this.#trailers(chunk, at); break;
      }
    }
    return at;
  }

  /** The connection ended: returns whether the answer is whole (framed by that end, or ended before). */
  finish(): boolean {
    if (this.#state === State.UntilClose) this.#end();
    return this.#state === State.Done;
  }

  /** Gathers the head up to its blank line, then reads it. */
  #head(chunk: Buffer, at: number): number {
    const before = this.#pending?.length ?? 0;
    const bytes = before === 0 ? (at === 0 ? chunk : chunk.subarray(at)) : Buffer.concat([this.#pending as Buffer, chunk.subarray(at)]);
    // Not even the start of a status line: another protocol on the port, told at its first bytes.
    if (before < HTTP.length && bytes.compare(HTTP, 0, Math.min(HTTP.length, bytes.length), 0, Math.min(HTTP.length, bytes.length)) !== 0) {
      throw badAnswer(`the answer does not begin with an HTTP/1.x status line: ${JSON.stringify(bytes.toString('latin1', 0, 80).split('\r\n', 1)[0])}`);
    }
    const end = bytes.indexOf(HEAD_END, Math.max(0, before - 3));
    if (end < 0) {
      if (bytes.length > MAX_HEAD_BYTES) throw badAnswer(`the answer's headers are over ${MAX_HEAD_BYTES / 1024} KB`);
      // Node gives each read its own buffer: a view of it can be kept.
      this.#pending = bytes;
      return chunk.length;
    }
    if (end > MAX_HEAD_BYTES) throw badAnswer(`the answer's headers are over ${MAX_HEAD_BYTES / 1024} KB`);
    this.#pending = undefined;
    this.#readHead(bytes.toString('latin1', 0, end));
    return at + end + 4 - before;
  }

  #readHead(text: string): void {
    const lines = text.split('\r\n');
    const match = STATUS_LINE.exec(lines[0] as string);
    if (match === null) throw badAnswer(`the answer does not begin with an HTTP/1.x status line: ${JSON.stringify((lines[0] as string).slice(0, 80))}`);
    const status = Number(match[2]);
    // 1xx answers (100 Continue, 103 Early Hints) come before the real one; 101 would switch protocols, which no request asked for.
    if (status < 200) {
      if (status === 101) throw badAnswer('the server switched protocols (101), which no request asked for');
      return;
    }
    const headers = readHeaders(lines, 1);
    const connection = lowerList(headers.connection);
    this.keepAlive = match[1] === '1' ? !connection.includes('close') : connection.includes('keep-alive');
    const hint = headers['keep-alive'];
    const timeout = hint === undefined ? undefined : KEEP_ALIVE_TIMEOUT.exec(String(hint))?.[1];
    this.keepAliveMs = timeout === undefined ? undefined : Number(timeout) * 1000;
    this.#state = this.#framing(status, headers);
    this.#events.onHead(status, headers, match[3] ?? '');
    if (this.#state === State.Length && this.#remaining === 0) this.#end();
  }

  /** How the body is delimited, by RFC 9112 section 6.3. */
  #framing(status: number, headers: AnswerHeaders): State {
    if (status === 204 || status === 304) return State.Length;
    const coding = lowerList(headers['transfer-encoding']);
    if (coding.length > 0) {
      // A length beside a coding could be read two ways: the connection is not used again.
      if (headers['content-length'] !== undefined) this.keepAlive = false;
      if (coding.at(-1) === 'chunked') return State.ChunkLine;
      this.keepAlive = false;
      return State.UntilClose;
    }
    const length = headers['content-length'];
    if (length === undefined) {
      this.keepAlive = false;
      return State.UntilClose;
    }
    const values = new Set((Array.isArray(length) ? length : [length]).flatMap((value) => value.split(',').map((part) => part.trim())));
    const [only] = values;
    if (values.size !== 1 || only === undefined || !DIGITS.test(only)) throw badAnswer(`the answer's Content-Length is not one number: ${JSON.stringify(length)}`);
    this.#remaining = Number(only);
    return State.Length;
  }

  /** Body bytes counted by Content-Length or by the current chunk. */
  #data(chunk: Buffer, at: number): number {
    const take = Math.min(this.#remaining, chunk.length - at);
    this.#events.onBody(at === 0 && take === chunk.length ? chunk : chunk.subarray(at, at + take));
    this.#remaining -= take;
    if (this.#remaining === 0) {
      if (this.#state === State.Length) this.#end();
      else this.#state = State.ChunkEnd;
    }
    return at + take;
  }

  /** The CRLF after a chunk's data, which may come in two pieces. */
  #chunkEnd(chunk: Buffer, at: number): number {
    const take = Math.min(2 - (this.#pending?.length ?? 0), chunk.length - at);
    const piece = chunk.subarray(at, at + take);
    const bytes = this.#pending === undefined ? piece : Buffer.concat([this.#pending, piece]);
    if (bytes.length < 2) {
      this.#pending = bytes;
      return at + take;
    }
    this.#pending = undefined;
    if (bytes.readUInt16LE(0) !== CRLF) throw badAnswer('a chunk of the answer is not followed by CRLF');
    this.#state = State.ChunkLine;
    return at + take;
  }

  #chunkSize(line: string): void {
    const match = CHUNK_SIZE.exec(line);
    if (match === null) throw badAnswer(`the answer holds a malformed chunk size: ${JSON.stringify(line.slice(0, 40))}`);
    this.#remaining = Number.parseInt(match[1] as string, 16);
    this.#state = this.#remaining === 0 ? State.Trailers : State.ChunkData;
  }

  /** Trailer lines after the last chunk, up to a blank line; their content is not used. */
  #trailers(chunk: Buffer, at: number): number {
    return this.#line(chunk, at, MAX_HEAD_BYTES, (line) => {
      if (line === '') this.#end();
    });
  }

  /** Gathers one CRLF-ended line (without its CRLF) and hands it on. */
  #line(chunk: Buffer, at: number, max: number, use: (line: string) => void): number {
    const newline = chunk.indexOf(0x0a, at);
    const piece = chunk.subarray(at, newline < 0 ? chunk.length : newline + 1);
    const bytes = this.#pending === undefined ? piece : Buffer.concat([this.#pending, piece]);
    if (bytes.length > max) throw badAnswer('a line of the answer is too long');
    if (newline < 0) {
      this.#pending = bytes;
      return chunk.length;
    }
    this.#pending = undefined;
    if (bytes.length < 2 || bytes[bytes.length - 2] !== 0x0d) throw badAnswer('a line of the answer does not end with CRLF');
    use(bytes.toString('latin1', 0, bytes.length - 2));
    return newline + 1;
  }

  #end(): void {
    this.#state = State.Done;
    this.#events.onEnd();
  }
}

/** Header lines into an object of lower-case names; a name given twice gets an array, as undici gives it. */
function readHeaders(lines: readonly string[], from: number): AnswerHeaders {
  const headers: AnswerHeaders = {};
  for (let i = from; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    // A folded line (starting with a space) or a name with spaces could hide a header from one reader and not another.
    if (colon <= 0 || !TOKEN.test(name)) throw badAnswer(`the answer holds a malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    const key = name.toLowerCase();
    const value = line.slice(colon + 1).trim();
    const before = headers[key];
    headers[key] = before === undefined ? value : Array.isArray(before) ? [...before, value] : [before, value];
  }
  return headers;
}

/** A header's comma-separated list, lower-cased; one plain value, the usual case, without splitting. */
function lowerList(value: string | string[] | undefined): readonly string[] {
  if (value === undefined) return NONE;
  const text = (Array.isArray(value) ? value.join(',') : value).toLowerCase();
  if (!text.includes(',')) return text === '' ? NONE : [text];
  return text.split(',').map((part) => part.trim()).filter((part) => part !== '');
}

/** The server's answer is not HTTP/1.1 a client can read: cut, malformed, or over the limits. */
function badAnswer(detail: string): ConnectionError {
  return new ConnectionError('IMGPUSH_BAD_ANSWER', detail);
}
