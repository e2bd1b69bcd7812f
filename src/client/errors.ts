import { STATUS_CODES } from 'node:http';
import { ImgpushError } from '../shared/errors.js';

/**
 * The server answered with a status other than 2xx. `serverMessage` is the
 * first line of its body, for the user to read; `retryAfterMs` comes from a
 * Retry-After header when there was one.
 */
export class HttpStatusError extends ImgpushError {
  readonly status: number;
  readonly serverMessage: string;
  readonly retryAfterMs: number | undefined;
  /** What the server sent back (parsed JSON, else text cut at 4 KB), for the results log. */
  readonly response: unknown;

  constructor(status: number, serverMessage: string, response: unknown, retryAfterMs?: number) {
    const reason = STATUS_CODES[status] === undefined ? '' : ` ${STATUS_CODES[status]}`;
    const detail = serverMessage === '' ? '' : `: ${serverMessage}`;
    super('IMGPUSH_HTTP_STATUS', `server answered ${status}${reason}${detail}`);
    this.status = status;
    this.serverMessage = serverMessage;
    this.response = response;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The request did not get an answer: refused, reset, timed out, DNS… `code` is the system's or undici's code. */
export class NetworkError extends ImgpushError {
  constructor(code: string, message: string, cause: unknown) {
    super(code, message, { cause });
  }
}

/** The file could not be read: `code` is the system's (ENOENT, EACCES…). */
export class FileReadError extends ImgpushError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

/** The file's size changed while it was being sent; the next attempt reads it again. */
export class FileChangedError extends ImgpushError {
  constructor(expected: number, actual: number) {
    super('IMGPUSH_FILE_CHANGED', `file changed while it was being sent (${expected} bytes expected, ${actual} read)`);
  }
}

/** sharp could not decode or encode the file (--resize, --format): final, since the same bytes fail the same way. */
export class ReencodeError extends ImgpushError {
  constructor(cause: unknown) {
    super('IMGPUSH_REENCODE_FAILED', `could not be re-encoded (--resize, --format): ${firstLine(cause)}`, { cause });
  }
}

/**
 * The run stopped before this file was done: Ctrl-C, SIGTERM, an aborted
 * signal, --max-failures. `why` says which, in words.
 */
export class InterruptedError extends ImgpushError {
  constructor(started: boolean, why = 'the run was stopped') {
    super('IMGPUSH_INTERRUPTED', started
      ? `${why} while it was being sent; not known to have reached the server`
      : `not sent: ${why}`);
  }
}

function systemCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code } = error as { code?: unknown };
  if (typeof code === 'string') return code;
  // Happy-eyeballs connects (localhost → ::1 and 127.0.0.1) fail with an AggregateError of the tries.
  const inner = (error as { errors?: unknown[] }).errors?.[0];
  return inner === undefined ? undefined : systemCode(inner);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function firstLine(error: unknown): string {
  return messageOf(error).trim().split(/\r?\n/, 1)[0] ?? '';
}

const NETWORK_EXPLANATIONS: Readonly<Record<string, (host: string, seconds: number) => string>> = {
  ECONNREFUSED: (host) => `connection refused by ${host} — is the server running?`,
  ECONNRESET: (host) => `connection reset by ${host}`,
  EPIPE: (host) => `${host} closed the connection while the file was being sent`,
  ETIMEDOUT: (host) => `connection to ${host} timed out`,
  ENOTFOUND: (host) => `host name of ${host} not found (DNS lookup failed)`,
  EAI_AGAIN: (host) => `host name of ${host} could not be looked up right now (DNS)`,
  EHOSTUNREACH: (host) => `${host} is unreachable (no route to host)`,
  ENETUNREACH: (host) => `${host} is unreachable (network down)`,
  UND_ERR_SOCKET: (host) => `${host} closed the connection before answering`,
  UND_ERR_CLOSED: (host) => `the connection to ${host} was closed`,
  UND_ERR_CONNECT_TIMEOUT: (host, s) => `could not connect to ${host} within ${s} s`,
  UND_ERR_HEADERS_TIMEOUT: (host, s) => `${host} did not answer within ${s} s (--timeout)`,
  UND_ERR_BODY_TIMEOUT: (host, s) => `${host} stopped sending its answer for ${s} s (--timeout)`,
};

/** Wraps what undici threw for a request to `host` into a NetworkError whose message a person can act on. */
export function toNetworkError(error: unknown, host: string, timeoutMs: number, connectTimeoutMs: number): NetworkError {
  const code = systemCode(error) ?? 'IMGPUSH_NETWORK';
  const explain = NETWORK_EXPLANATIONS[code];
  const seconds = (code === 'UND_ERR_CONNECT_TIMEOUT' ? connectTimeoutMs : timeoutMs) / 1000;
  const message = explain === undefined ? `${messageOf(error)} (${host})` : explain(host, seconds);
  return new NetworkError(code, message, error);
}

const FILE_EXPLANATIONS: Readonly<Record<string, string>> = {
  ENOENT: 'file not found (removed or renamed after it was listed?)',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a folder, not a file',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files on this system',
  EIO: 'input/output error reading the disk',
};

/** Wraps an fs error into a FileReadError with the cause in plain words. */
export function toFileReadError(error: unknown): FileReadError {
  const code = systemCode(error) ?? 'IMGPUSH_FILE_READ';
  return new FileReadError(code, FILE_EXPLANATIONS[code] ?? `cannot read: ${messageOf(error)}`, error);
}
