import type { IncomingHttpHeaders } from 'node:http';

/** What goes around one file's bytes in its request, and whether they go in as base64. */
export interface Envelope {
  readonly head: Buffer | undefined;
  readonly tail: Buffer | undefined;
  readonly base64: boolean;
  readonly contentType: string;
  /** Headers the format adds (the v2 header's length). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** The files of a request of several, framed: what goes before each one's bytes and after the last. */
export interface GroupFrame {
  readonly before: readonly Buffer[];
  readonly after: Buffer;
  readonly contentType: string;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** A file as it goes into a body: the name and type it is sent under, its path under its input root, its size. */
export interface BodyFile {
  readonly name: string;
  readonly type: string;
  readonly rel: string;
  readonly size: number;
}

/** An answer's body as read: its first bytes (up to MAX_ANSWER_BYTES), its whole length, its headers. */
export interface RawAnswer {
  readonly bytes: Buffer;
  readonly length: number;
  readonly headers: IncomingHttpHeaders;
}

/**
 * How files go into a request, and how its answer comes back per file: one
 * implementation per --body (multipart, raw, json, v2). The reader frames
 * bodies with it; the transport decodes answers with it.
 */
export interface BodyFormat {
  /** The envelope of a request of one file. */
  envelope(file: BodyFile): Envelope;
  /** The frame of a request of several files; absent where a body holds one file (raw, json). */
  readonly frame?: (files: readonly BodyFile[]) => GroupFrame;
  /** The answer as the results log keeps it. */
  decode(answer: RawAnswer): unknown;
  /** A request of one file: its share of the answer. */
  single(response: unknown): unknown;
  /** A request of `count` files: each one's share of the answer, in order. */
  perFile(response: unknown, count: number): unknown[];
}

/** JSON answers up to this size are parsed for the results log; anything else is kept as text cut at 4 KB. */
export const MAX_ANSWER_BYTES = 1024 * 1024;
const MAX_TEXT_CHARS = 4096;

/** An answer parsed when it is JSON, else as text cut at 4 KB. */
export function decodeAnswer({ bytes, length, headers }: RawAnswer): unknown {
  const type = String(headers['content-type'] ?? '');
  if (length <= MAX_ANSWER_BYTES && /[/+]json\b/i.test(type)) {
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch {
      // Not JSON after all: keep it as text.
    }
  }
  const text = bytes.toString('utf8', 0, Math.min(bytes.length, MAX_TEXT_CHARS * 4));
  return text.length > MAX_TEXT_CHARS ? text.slice(0, MAX_TEXT_CHARS) : text;
}

/** The whole answer for a file of its own. */
export function wholeAnswer(response: unknown): unknown {
  return response;
}

/** Where an answer to several files keeps its list of per-file answers, when it is an object: ours, TF Serving's, KServe's, and common ones. */
const LIST_KEYS = ['results', 'predictions', 'outputs', 'files', 'data'];

/**
 * Each file's share of an answer to several files: the list's items, in
 * order, when the answer is a list of one item per file (or an object
 * holding one under a usual name); else the whole answer for each.
 */
export function listedAnswers(response: unknown, count: number): unknown[] {
  let list: unknown = response;
  if (!Array.isArray(list) && typeof response === 'object' && response !== null) {
    const body = response as Record<string, unknown>;
    list = LIST_KEYS.map((key) => body[key]).find((value) => Array.isArray(value) && value.length === count);
  }
  return Array.isArray(list) && list.length === count ? list : new Array<unknown>(count).fill(response);
}
