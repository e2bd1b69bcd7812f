import { FileChangedError, FileReadError, HttpStatusError, NetworkError } from '../errors.js';

/** Statuses worth another try: the server is busy, restarting or timed out, not refusing the file. */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);

/**
 * Failures to connect that no retry mends: a certificate that is not
 * trusted, expired or for another host, or a proxy that wants other
 * credentials. Retrying them, or taking them for an outage, would only make
 * the run wait before it says what is wrong.
 */
const FINAL_NETWORK_CODES: ReadonlySet<string> = new Set(['IMGPUSH_TLS', 'IMGPUSH_PROXY_AUTH']);

/** Transient file errors: the file is still there, the process or system ran short. */
const RETRYABLE_FILE_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY']);

export interface BackoffSettings {
  /** First backoff ceiling in ms; each retry doubles it. */
  readonly minDelayMs: number;
  /** No wait is longer than this, Retry-After included. */
  readonly maxDelayMs: number;
}

/**
 * Whether a failed attempt deserves another: network errors and the statuses
 * that mean "not now" do; other 4xx, missing files and certificates that
 * fail their check never do.
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof HttpStatusError) return RETRYABLE_STATUSES.has(error.status);
  if (error instanceof NetworkError) return !FINAL_NETWORK_CODES.has(error.code);
  if (error instanceof FileChangedError) return true;
  if (error instanceof FileReadError) return RETRYABLE_FILE_CODES.has(error.code);
  return false;
}

/** Statuses that refuse what a request holds: malformed, too large, not an image, does not decode. */
const CONTENT_STATUSES: ReadonlySet<number> = new Set([400, 413, 415, 422]);

/**
 * Whether the server refused a request for what it holds, so that with
 * several files in it, sending them one by one tells which file it was.
 */
export function isRefusedForContent(error: unknown): boolean {
  return error instanceof HttpStatusError && CONTENT_STATUSES.has(error.status);
}

/** Statuses that say the server as a whole is not serving (a proxy with no backend, a restart). */
const OUTAGE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

/**
 * Whether a failure says the server is not there at all, rather than that it
 * refused this file: no answer, or 502/503/504. Enough of these in a row and
 * the run backs off as one (see OutageGate).
 */
export function isOutage(error: unknown): boolean {
  if (error instanceof HttpStatusError) return OUTAGE_STATUSES.has(error.status);
  return error instanceof NetworkError && !FINAL_NETWORK_CODES.has(error.code);
}

/** The server saying "too much" outright: 429, 503, or no answer in time. */
const OVERLOAD_CODES: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'IMGPUSH_MAX_TIME']);

/** Whether a failure tells the adaptive limit to back off (see AdaptiveLimit). */
export function isOverload(error: unknown): boolean {
  if (error instanceof HttpStatusError) return error.status === 429 || error.status === 503;
  return error instanceof NetworkError && OVERLOAD_CODES.has(error.code);
}

/** The server saying "not now" with 429 or 503, counted for the progress line. */
export function isThrottled(error: unknown): boolean {
  return error instanceof HttpStatusError && (error.status === 429 || error.status === 503);
}

/**
 * How long to wait before retry number `retry` (1 for the first): the
 * server's Retry-After when it sent one, else exponential backoff with full
 * jitter, so many files failing at once do not come back in lockstep.
 */
export function retryDelayMs(error: unknown, retry: number, settings: BackoffSettings, random = Math.random): number {
  // Retry-After: 0 sets no wait: the backoff does, or every refused request would come back at once, and again.
  if (error instanceof HttpStatusError && error.retryAfterMs !== undefined && error.retryAfterMs > 0) {
    return Math.min(error.retryAfterMs, settings.maxDelayMs);
  }
  const ceiling = Math.min(settings.maxDelayMs, settings.minDelayMs * 2 ** (retry - 1));
  return Math.round(random() * ceiling);
}

/**
 * Retry-After as milliseconds, from either form HTTP allows (seconds, or an
 * HTTP date); undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text.trim() === '') return undefined;
  if (/^\s*\d+\s*$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
