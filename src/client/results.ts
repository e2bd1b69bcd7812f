import { ImgpushError } from '../shared/errors.js';
import { AnswerLostError, HttpStatusError } from './errors.js';

/** Live counters of a run. The same object is passed to every onProgress call: read it, do not keep it. */
export interface Progress {
  /** Files found so far, including those that failed or were skipped before sending. */
  discovered: number;
  bytesDiscovered: number;
  /** True once every input has been walked; until then `discovered` grows. */
  discoveryDone: boolean;
  /** Files counted ahead of discovery (folders and files named; not globs, lists or shards): the total to come. */
  expected: number;
  /** The count ahead is complete: `expected` is the total, while discovery still walks. */
  expectedKnown: boolean;
  ok: number;
  failed: number;
  skipped: number;
  /** Bytes of the files uploaded so far. */
  bytesSent: number;
  inFlight: number;
  retries: number;
  /** Answers 429 or 503: the server asking to slow down. */
  throttled: number;
  /** The server is taken to be down: uploads wait while imgpush probes it. */
  serverDown: boolean;
  /** Uploads allowed in flight now (it moves with --concurrency auto). */
  concurrency: number;
  /** With a shard: files found that belong to the other shards (in no log of this run). */
  otherShards: number;
}

export function newProgress(): Progress {
  return { discovered: 0, bytesDiscovered: 0, discoveryDone: false, expected: 0, expectedKnown: false, ok: 0, failed: 0, skipped: 0, bytesSent: 0, inFlight: 0, retries: 0, throttled: 0, serverDown: false, concurrency: 0, otherShards: 0 };
}

/** How one file ended: one line of the results log. */
export interface FileResult {
  readonly path: string;
  readonly rel: string;
  /** Size and modification time of the file when found (for `--skip-done`); absent when it could not be read. */
  readonly size?: number;
  readonly mtimeMs?: number;
  readonly url: string | null;
  readonly ok: boolean;
  /** HTTP status of the last answer; null when there was none. */
  readonly status: number | null;
  /** File bytes sent in the request that succeeded (re-encoded, if they were; before base64); 0 otherwise. */
  readonly bytes: number;
  /** Duration of the last attempt, ms. */
  readonly ms: number;
  readonly attempts: number;
  /** The server's answer, parsed JSON, else text cut at 4 KB: kept for failures, and for every file when there is a results log. */
  readonly response?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
  /** With --async: the job on the server, when it was still pending as the file ended (a stop); retry fetches its result. */
  readonly job?: string;
  /** Set when the file was not sent on purpose: a stable code and the reason in words. */
  readonly skipped?: { readonly code: string; readonly reason: string };
  /** With --checksum: the SHA-256 (hex) of the request body, as its Content-Digest header said. */
  readonly sha256?: string;
}

/** What a result says of the file itself: where it was found and, when known, its size and mtime. */
export interface FileIdentity {
  readonly path: string;
  readonly rel: string;
  readonly size?: number;
  readonly mtimeMs?: number;
}

/** How a request's attempts went: how many, how long the last took, and the URL it went to. */
export interface Attempts {
  readonly attempts: number;
  readonly ms: number;
  /** Null when no request could be addressed (the file was never sent). */
  readonly url: string | null;
}

/** What the request that succeeded came to. */
export interface Answered {
  readonly status: number;
  readonly bytes: number;
  readonly response: unknown;
  /** With --checksum: the SHA-256 of the body sent, hex. */
  readonly sha256?: string;
}

export function uploadedResult(file: FileIdentity, { status, bytes, response, sha256 }: Answered, { attempts, ms, url }: Attempts): FileResult {
  const result: FileResult = { path: file.path, rel: file.rel, size: file.size, mtimeMs: file.mtimeMs, url, ok: true, status, bytes, ms: roundMs(ms), attempts, response };
  return sha256 === undefined ? result : { ...result, sha256 };
}

/** The result of a file that failed, from whatever its last attempt threw. */
export function failedResult(file: FileIdentity, thrown: unknown, { attempts, ms, url }: Attempts): FileResult {
  const error = thrown instanceof ImgpushError
    ? thrown
    : new ImgpushError('IMGPUSH_INTERNAL', `unexpected error: ${thrown instanceof Error ? thrown.message : String(thrown)}`, { cause: thrown });
  const answer = error instanceof HttpStatusError ? error : undefined;
  const status = answer?.status ?? (error instanceof AnswerLostError ? error.status : null);
  return {
    path: file.path, rel: file.rel, size: file.size, mtimeMs: file.mtimeMs, url, ok: false, status, bytes: 0, ms: roundMs(ms), attempts, response: answer?.response, error: { code: error.code, message: error.message },
  };
}

/** A failure before any attempt: nothing was sent. */
export function unsentResult(file: FileIdentity, error: unknown, url: string | null): FileResult {
  return failedResult(file, error, { attempts: 0, ms: 0, url });
}

export function skippedResult(file: FileIdentity, code: string, reason: string): FileResult {
  return { path: file.path, rel: file.rel, size: file.size, mtimeMs: file.mtimeMs, url: null, ok: false, status: null, bytes: 0, ms: 0, attempts: 0, skipped: { code, reason } };
}

function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}
