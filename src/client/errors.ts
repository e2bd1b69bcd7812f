import { ImgpushError } from '../shared/errors.js';

/**
 * The phrase HTTP gives a status ("Service Unavailable"). node:http loads
 * when one is needed, not at every start: it brings ten modules that a run
 * whose answers are all 2xx never uses.
 */
export function reasonPhrase(status: number): string | undefined {
  return process.getBuiltinModule('node:http').STATUS_CODES[status];
}

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
    const reason = reasonPhrase(status) === undefined ? '' : ` ${reasonPhrase(status)}`;
    const detail = serverMessage === '' ? '' : `: ${serverMessage}`;
    super('IMGPUSH_HTTP_STATUS', `server answered ${status}${reason}${detail}`);
    this.status = status;
    this.serverMessage = serverMessage;
    this.response = response;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * The request did not get an answer: refused, reset, timed out, DNS… `code`
 * is the system's or undici's code, or IMGPUSH_TLS (the TLS handshake
 * failed), IMGPUSH_PROXY, IMGPUSH_PROXY_AUTH (the proxy turned it down).
 */
export class NetworkError extends ImgpushError {
  constructor(code: string, message: string, cause: unknown) {
    super(code, message, { cause });
  }
}

/**
 * The request reached the server whole (or its 2xx status came back), and
 * then the answer was lost: the server may have taken the file. Retried like
 * any network error, so delivery is at least once; the logs say which files.
 */
export class AnswerLostError extends NetworkError {
  /** The status that came before the answer was cut; null when none came. */
  readonly status: number | null;
  readonly sent = true;

  constructor(status: number | null, why: string, cause: unknown) {
    super('IMGPUSH_ANSWER_LOST', status === null
      ? `sent whole, but no answer came (${why}): the server may have taken it`
      : `the server answered ${status}, but the rest of its answer was lost (${why})`, cause);
    this.status = status;
  }
}

/**
 * A connection of the plain-HTTP pool (transport/h1-pool.ts) failed without
 * a system error. `code` is the one undici gives the same failure
 * (UND_ERR_SOCKET, UND_ERR_CONNECT_TIMEOUT, UND_ERR_HEADERS_TIMEOUT,
 * UND_ERR_BODY_TIMEOUT), so that a run reads both pools' failures alike, or
 * IMGPUSH_BAD_ANSWER for an answer that is not HTTP/1.1.
 */
export class ConnectionError extends ImgpushError {}

/** The file could not be read: `code` is the system's (ENOENT, EACCES…). */
export class FileReadError extends ImgpushError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

/** The file changed (its size, modification or change time) while it was being read or sent; the next attempt reads it again. */
export class FileChangedError extends ImgpushError {
  constructor(detail: string) {
    super('IMGPUSH_FILE_CHANGED', `file changed while it was being sent (${detail})`);
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

/** The host name of `host:port`. */
function hostOf(host: string): string {
  return host.replace(/:\d+$/, '');
}

function firstLine(error: unknown): string {
  return messageOf(error).trim().split(/\r?\n/, 1)[0] ?? '';
}

const NETWORK_EXPLANATIONS: Readonly<Record<string, (host: string, seconds: number) => string>> = {
  ECONNREFUSED: (host) => `nothing is listening on ${host} (connection refused) — is the server running?`,
  ECONNRESET: (host) => `connection reset by ${host}`,
  EPIPE: (host) => `${host} closed the connection while the file was being sent`,
  ETIMEDOUT: (host) => `connection to ${host} timed out`,
  ENOTFOUND: (host) => `cannot resolve host ${hostOf(host)} (DNS lookup failed)`,
  EAI_AGAIN: (host) => `host name of ${host} could not be looked up right now (DNS)`,
  EHOSTUNREACH: (host) => `${host} is unreachable (no route to host)`,
  ENETUNREACH: (host) => `${host} is unreachable (network down)`,
  UND_ERR_SOCKET: (host) => `${host} closed the connection before answering`,
  UND_ERR_CLOSED: (host) => `the connection to ${host} was closed`,
  UND_ERR_CONNECT_TIMEOUT: (host, s) => `could not connect to ${host} within ${s} s`,
  UND_ERR_HEADERS_TIMEOUT: (host, s) => `${host} did not answer within ${s} s (--timeout)`,
  UND_ERR_BODY_TIMEOUT: (host, s) => `${host} stopped sending its answer for ${s} s (--timeout)`,
};

const SKIP_CHECK = 'or skip the check with --insecure';
const untrusted = (host: string): string =>
  `the TLS certificate of ${host} is not signed by an authority this machine trusts: give that authority's certificate with --cacert FILE, ${SKIP_CHECK}`;

/** Certificate checks that failed on this side, by Node's and OpenSSL's codes, with what to do. */
const CERTIFICATE_EXPLANATIONS: Readonly<Record<string, (host: string) => string>> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: untrusted,
  UNABLE_TO_GET_ISSUER_CERT: untrusted,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: untrusted,
  SELF_SIGNED_CERT_IN_CHAIN: untrusted,
  CERT_UNTRUSTED: untrusted,
  DEPTH_ZERO_SELF_SIGNED_CERT: (host) => `the TLS certificate of ${host} is self-signed: give that certificate with --cacert FILE, ${SKIP_CHECK}`,
  ERR_TLS_CERT_ALTNAME_INVALID: (host) => `the TLS certificate of ${host} is for other host names: use one it names in --url, ${SKIP_CHECK}`,
  CERT_HAS_EXPIRED: (host) => `the TLS certificate of ${host} has expired: it must be renewed on the server, ${SKIP_CHECK}`,
  CERT_NOT_YET_VALID: (host) => `the TLS certificate of ${host} is not valid yet (is this machine's clock right?), ${SKIP_CHECK}`,
};

/** OpenSSL's alerts from a server that turned down this side's certificate, or its absence. */
const REFUSED_BY_SERVER = /^ERR_SSL_(SSLV3_ALERT_HANDSHAKE_FAILURE|SSLV3_ALERT_BAD_CERTIFICATE|TLSV13_ALERT_CERTIFICATE_REQUIRED|TLSV1_ALERT_UNKNOWN_CA|SSLV3_ALERT_CERTIFICATE_UNKNOWN|TLSV1_ALERT_ACCESS_DENIED)$/;

function tlsExplanation(code: string, host: string): string | undefined {
  const certificate = CERTIFICATE_EXPLANATIONS[code];
  if (certificate !== undefined) return certificate(host);
  if (REFUSED_BY_SERVER.test(code)) {
    return `${host} refused the TLS handshake: does it require a client certificate (--cert and --key) from an authority it trusts?`;
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') return `${host} does not speak TLS on that port: is the URL http:// rather than https://?`;
  if (/^ERR_SSL_|^ERR_TLS_|CERT/.test(code)) return `the TLS handshake with ${host} failed: check --cacert, --cert and --key, ${SKIP_CHECK}`;
  return undefined;
}

/**
 * How a TLS 1.3 server that wants a client certificate, and got none, shows
 * to this side: the handshake is over by then, so its alert races the
 * request, and whichever way the connection fails first is what undici says.
 */
const HANG_UPS: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'EPIPE', 'ECONNRESET']);

/** How a request went out: what a message about its failure needs to name. */
export interface NetworkContext {
  /** host:port of the server. */
  readonly host: string;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  /** The proxy requests go through, if any, without user and password. */
  readonly proxy: string | undefined;
  /** https:// with no client certificate given: a server that hangs up at once may want one. */
  readonly withoutClientCertificate: boolean;
}

/**
 * A proxy's refusal, read from undici's message: it gives no status field
 * for a CONNECT that did not answer 200, nor for a 407 to a relayed request.
 */
function proxyRefusal(error: unknown): number | undefined {
  const match = /^Proxy response \((\d{3})\) !== 200|^Proxy Authentication Required \((407)\)/.exec(messageOf(error));
  return match === null ? undefined : Number(match[1] ?? match[2]);
}

function proxyError(status: number, { host, proxy }: NetworkContext, error: unknown): NetworkError {
  const reason = reasonPhrase(status) === undefined ? '' : ` ${reasonPhrase(status)}`;
  if (status === 407) {
    return new NetworkError('IMGPUSH_PROXY_AUTH', `the proxy ${proxy} answered 407${reason}: give its user and password in the proxy URL (http://user:password@host:port)`, error);
  }
  return new NetworkError('IMGPUSH_PROXY', `the proxy ${proxy} answered ${status}${reason} when asked to connect to ${host}`, error);
}

/**
 * Wraps what undici threw for a request into a NetworkError whose message a
 * person can act on. TLS failures get the code IMGPUSH_TLS, with OpenSSL's
 * reason in the message; a proxy's refusal, IMGPUSH_PROXY or IMGPUSH_PROXY_AUTH.
 */
export function toNetworkError(error: unknown, context: NetworkContext): NetworkError {
  const { host, proxy } = context;
  const refusal = proxy === undefined ? undefined : proxyRefusal(error);
  if (refusal !== undefined) return proxyError(refusal, context, error);
  const code = systemCode(error) ?? 'IMGPUSH_NETWORK';
  const via = proxy === undefined ? '' : ` (through the proxy ${proxy})`;
  const tls = tlsExplanation(code, host);
  if (tls !== undefined) return new NetworkError('IMGPUSH_TLS', `${tls} (${code})${via}`, error);
  const explain = NETWORK_EXPLANATIONS[code];
  const seconds = (code === 'UND_ERR_CONNECT_TIMEOUT' ? context.connectTimeoutMs : context.timeoutMs) / 1000;
  let message = explain === undefined ? `${messageOf(error)} (${host})` : explain(host, seconds);
  if (HANG_UPS.has(code) && context.withoutClientCertificate) message += ' (if it requires a client certificate, give --cert and --key)';
  return new NetworkError(code, message + via, error);
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
  if (error instanceof FileReadError) return error;
  const code = systemCode(error) ?? 'IMGPUSH_FILE_READ';
  return new FileReadError(code, FILE_EXPLANATIONS[code] ?? `cannot read: ${messageOf(error)}`, error);
}
