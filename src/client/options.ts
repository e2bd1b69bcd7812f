import { resolve } from 'node:path';
import { UsageError } from '../shared/errors.js';
import { IMAGE_EXTENSIONS } from '../shared/media-types.js';
import type { ListedFile } from './discover.js';
import { inferPath } from './inference-body.js';
import { JsonTemplate } from './json-template.js';
import { parseProxy, proxyFromEnvironment, type Environment, type Proxy } from './proxy.js';
import type { ReencodeSettings, TargetFormat } from './reencode.js';
import type { Shard } from './shard.js';
import { parseUrlTemplate, type UrlTemplate } from './url-template.js';

export type BodyMode = 'multipart' | 'raw' | 'json' | 'v2';
export type Method = 'POST' | 'PUT';
export type Pairs = ReadonlyArray<readonly [string, string]>;

/** Everything `push()` takes. Only `url` and something to send (`inputs` or `listed`) are required. */
export interface PushOptions {
  /** Files, folders (walked recursively) and glob patterns. */
  readonly inputs?: readonly string[];
  /** More paths, as a list arrives: stdin, `--files-from`, a failure log. Sent whatever their extension. */
  readonly listed?: AsyncIterable<string | ListedFile>;
  /** Where files go; may hold `{path}`, `{name}`, `{stem}`, `{ext}`. Several: uploads are spread over them (see OriginSet). */
  readonly url: string | readonly string[];
  /** Default POST. */
  readonly method?: Method;
  /** `multipart` (default): one file per request in field `field`; `raw`: the bytes alone; `json`: the file as base64 in `template`. */
  readonly body?: BodyMode;
  /**
   * With body `json`: the body, `{base64}` where the file goes; `{name}`,
   * `{path}`, `{stem}`, `{ext}` may stand inside its strings. Default
   * `{"image":"{base64}","name":"{name}"}`.
   */
  readonly template?: string;
  /** With body `v2`: the model, whose infer URL (`/v2/models/{model}/infer`) goes under each `url`. */
  readonly model?: string;
  /** With body `v2`: the model's BYTES input the images go in; default `image` (what `imgpush serve` calls it). */
  readonly inputName?: string;
  /** Multipart field of the file; default `image`. */
  readonly field?: string;
  /** Extra multipart fields, sent before the file, in order. */
  readonly form?: Pairs | Readonly<Record<string, string>>;
  /** Extra request headers. */
  readonly headers?: Pairs | Readonly<Record<string, string>>;
  /** Sent as `Authorization: Bearer …`; never written to any output. */
  readonly token?: string;
  /** Uploads in flight at once (and sockets in the pool), or 'auto' (the default) to find it while the run goes. */
  readonly concurrency?: number | 'auto';
  /** With concurrency 'auto': the most uploads in flight; default 64. */
  readonly maxConcurrency?: number;
  /** How long the server may stay silent (no answer, no progress) per request; default 60 000 ms. */
  readonly timeoutMs?: number;
  /** How long a connection may take to open; default 10 000 ms. */
  readonly connectTimeoutMs?: number;
  /** Retries per file after the first attempt; default 3. */
  readonly retries?: number;
  /** First backoff ceiling; default 250 ms, doubling per retry. */
  readonly retryMinDelayMs?: number;
  /** Longest wait between attempts, Retry-After included; default 30 000 ms. */
  readonly retryMaxDelayMs?: number;
  /** Extensions picked up inside folders (any case, no dot), or `'all'`; default the common image types. */
  readonly extensions?: readonly string[] | 'all';
  /** Glob patterns of paths to leave out (matched against the path under its input root, or the name alone). */
  readonly exclude?: readonly string[];
  /** Include files and folders whose name starts with a dot; default false. */
  readonly hidden?: boolean;
  /** Results log (JSONL), one line per file. */
  readonly out?: string;
  /** Failure log (JSONL); default `imgpush-failures.jsonl`, created only when a file fails. */
  readonly failures?: string;
  /** After a stop, how long uploads in flight may take to finish before they are aborted; default 5 000 ms. */
  readonly graceMs?: number;
  /** Files larger than this are streamed from disk instead of read whole; default 1 MiB. */
  readonly streamThresholdBytes?: number;
  /** Re-encode each image (with sharp) to fit within this many pixels each way, never enlarged. */
  readonly resize?: number;
  /** Re-encode each image (with sharp) as JPEG or WebP; without it, --resize keeps the format where sharp writes it. */
  readonly format?: TargetFormat;
  /** With `format`: the encoder's quality, 1–100; default 85 for JPEG, 80 for WebP. */
  readonly quality?: number;
  /** Results logs of earlier runs: a file whose last line there is uploaded, with the same size and mtime, is skipped. */
  readonly skipDone?: readonly string[];
  /** Stop the run once this many files have failed; the rest go to the failure log as not attempted. */
  readonly maxFailures?: number;
  /** Find the files and report what would be sent, without sending or writing a log. */
  readonly dryRun?: boolean;
  /** How long the server may stay unreachable (uploads paused, probing) before the run gives up; default 5 min. */
  readonly maxOutageMs?: number;
  /** `--url` is a jobs endpoint: each file's 202 + Location is polled until its job is done. */
  readonly async?: boolean;
  /** Files packed into one multipart request (the field repeated), up to `maxRequestBytes`; default 1. */
  readonly filesPerRequest?: number;
  /** With filesPerRequest: the most file bytes in one request (a larger file goes alone); default 8 MiB. */
  readonly maxRequestBytes?: number;
  /** Push only this share of the files (by a hash of their path under the input root), for N jobs that split a dataset. */
  readonly shard?: Shard;
  /** Files a second at most, on average, in bursts of up to `concurrency`. */
  readonly rate?: number;
  /** The run fails (exit 1) when more than this fraction (0–1) of its files failed. */
  readonly maxFailureRate?: number;
  /** The run fails (exit 1) when the upload latency p95 is over this many ms. */
  readonly failIfP95Ms?: number;
  /** Offer HTTP/2 to an https:// server (undici negotiates it in the TLS handshake, never over http://). */
  readonly http2?: boolean;
  /** PEM file of certificate authorities to trust besides the default ones (a private CA). */
  readonly cacert?: string;
  /** PEM file of a client certificate, for servers that ask for one (mutual TLS); goes with `key`. */
  readonly cert?: string;
  /** PEM file of the private key of `cert`, without a passphrase. */
  readonly key?: string;
  /** Do not check the server's certificate. */
  readonly insecure?: boolean;
  /** Proxy for every request: http://host:port or http://user:password@host:port; wins over `proxyEnv`. */
  readonly proxy?: string;
  /**
   * Where to read HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lower-case
   * forms) from; the CLI passes process.env. Without it no proxy is used
   * but `proxy`: the library reads no environment of its own.
   */
  readonly proxyEnv?: Environment;
}

/** The settings a run and its failure log's record have in common, as they are. */
interface CommonSettings {
  readonly method: Method;
  readonly body: BodyMode;
  readonly field: string;
  readonly form: Pairs;
  /** With body `json`, the template (the default one written out, so that a retry sends the same). */
  readonly template: string | undefined;
  /** With body `v2`: the model and its input. */
  readonly model: string | undefined;
  readonly inputName: string | undefined;
  readonly resize: number | undefined;
  readonly format: TargetFormat | undefined;
  readonly quality: number | undefined;
  /** Uploads in flight at most (sockets in the pool); with `adaptive`, the ceiling of the limit. */
  readonly concurrency: number;
  /** The limit is found while the run goes (--concurrency auto). */
  readonly adaptive: boolean;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly retries: number;
  readonly retryMinDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly maxOutageMs: number;
  readonly async: boolean;
  readonly filesPerRequest: number;
  readonly maxRequestBytes: number;
  readonly rate: number | undefined;
  readonly exclude: readonly string[];
  readonly hidden: boolean;
  readonly http2: boolean;
  /** Absolute paths of the TLS files, read again by a retry. */
  readonly cacert: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly insecure: boolean;
}

/** The request settings a failure log records, so `imgpush retry` sends the same way. */
export interface RequestSettings extends CommonSettings {
  /** As given: one URL, or several. */
  readonly url: string | readonly string[];
  /** Header values that may be secrets are recorded as null. */
  readonly headers: ReadonlyArray<readonly [string, string | null]>;
  /** Whether a token was sent (never the token). */
  readonly token: boolean;
  readonly extensions: readonly string[] | 'all';
  /** The proxy given as `proxy` (--proxy), without user and password; one from the environment is read again by a retry. */
  readonly proxy: string | undefined;
  /** That proxy had a user or password, which a retry must be given again. */
  readonly proxyCredentials: boolean;
}

/** Options after validation, with every default filled in. */
export interface ResolvedOptions extends CommonSettings {
  readonly inputs: readonly string[];
  readonly listed: AsyncIterable<string | ListedFile> | undefined;
  /** One or more, each on its own server. */
  readonly urls: readonly UrlTemplate[];
  /** With body `json`: the template, checked. */
  readonly jsonTemplate: JsonTemplate | undefined;
  /** Set when the files are to be re-encoded (and only then is sharp loaded). */
  readonly reencode: ReencodeSettings | undefined;
  /** Lower-case names, authorization included. */
  readonly headers: Readonly<Record<string, string>>;
  readonly extensions: ReadonlySet<string> | null;
  readonly out: string | undefined;
  readonly failures: string;
  readonly graceMs: number;
  readonly streamThresholdBytes: number;
  readonly skipDone: readonly string[];
  readonly maxFailures: number | undefined;
  readonly dryRun: boolean;
  readonly maxFailureRate: number | undefined;
  readonly failIfP95Ms: number | undefined;
  /** Not recorded in the failure log: a retry sends every file the log holds. */
  readonly shard: Shard | undefined;
  /** Per URL of `urls`: from `proxy`, else from `proxyEnv` for that URL. */
  readonly proxies: ReadonlyArray<Proxy | undefined>;
  /** Valid, but worth telling the user before the run: --insecure, TLS options on an http:// URL. */
  readonly warnings: readonly string[];
  readonly settings: RequestSettings;
}

export const DEFAULTS = {
  method: 'POST',
  body: 'multipart',
  field: 'image',
  concurrency: 'auto',
  maxConcurrency: 64,
  timeoutMs: 60_000,
  connectTimeoutMs: 10_000,
  retries: 3,
  retryMinDelayMs: 250,
  retryMaxDelayMs: 30_000,
  maxOutageMs: 5 * 60_000,
  failures: 'imgpush-failures.jsonl',
  graceMs: 5_000,
  streamThresholdBytes: 1024 * 1024,
  filesPerRequest: 1,
  maxRequestBytes: 8 * 1024 * 1024,
  template: '{"image":"{base64}","name":"{name}"}',
  inputName: 'image',
  quality: { jpeg: 85, webp: 80 },
} as const;

const MAX_CONCURRENCY = 1024;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** imgpush frames the body itself; these would contradict it. */
const RESERVED_HEADERS = new Set(['content-length', 'transfer-encoding', 'host', 'connection', 'upgrade', 'expect']);
/** Header names whose values are never written to a log. */
const SECRET_HEADER = /auth|token|key|secret|cookie|password|session/i;

function integer(flag: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    throw new UsageError(`${flag} must be a whole number ${range} (got ${value})`);
  }
  return value;
}

function duration(flag: string, ms: number, min: number): number {
  if (!Number.isFinite(ms) || ms < min) throw new UsageError(`${flag} must be a duration of at least ${min} ms (got ${ms} ms)`);
  return ms;
}

function positive(flag: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`${flag} must be a number above 0 (got ${value})`);
  return value;
}

function fraction(flag: string, value: number): number {
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new UsageError(`${flag} must be a fraction from 0 to 1, or a percentage (got ${value})`);
  return value;
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`${flag} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
  }
  return value as T;
}

function toPairs(value: Pairs | Readonly<Record<string, string>> | undefined): Pairs {
  if (value === undefined) return [];
  return Array.isArray(value) ? value as Pairs : Object.entries(value);
}

function checkHeaders(pairs: Pairs, body: BodyMode): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name)) throw new UsageError(`--header name ${JSON.stringify(name)} is not a valid HTTP header name`);
    if (/[\r\n\0]/.test(value)) throw new UsageError(`--header ${name} must not hold line breaks`);
    if (RESERVED_HEADERS.has(lower)) throw new UsageError(`--header ${name} cannot be set: imgpush frames the request itself`);
    if (lower === 'content-type' && body === 'multipart') {
      throw new UsageError('--header Content-Type cannot be set with --body multipart (the boundary is imgpush\'s); use --body raw');
    }
    headers[lower] = value;
  }
  return headers;
}

function checkExtensions(value: readonly string[] | 'all' | undefined): ReadonlySet<string> | null {
  if (value === 'all') return null;
  const list = (value ?? IMAGE_EXTENSIONS).map((ext) => ext.trim().replace(/^\./, '').toLowerCase());
  if (list.length === 0 || list.some((ext) => ext === '')) {
    throw new UsageError('--ext needs a comma-separated list of extensions, e.g. jpg,png (or * for every file)');
  }
  return new Set(list);
}

function checkShard({ index, count }: Shard): Shard {
  integer('--shard count', count, 1, 1_000_000);
  if (!Number.isInteger(index) || index < 1 || index > count) throw new UsageError(`--shard must be K/N with K from 1 to N (got ${index}/${count})`);
  return { index, count };
}

/** `--url`, once or more; with body v2, a server's base URL, under which the model's infer path goes. */
function checkUrls(given: string | readonly string[] | undefined, model: string | undefined): UrlTemplate[] {
  const list = typeof given === 'string' ? [given] : given ?? [];
  if (list.length === 0 || list.some((text) => typeof text !== 'string' || text === '')) throw new UsageError('--url is required (where to send the files)');
  const urls = list.map((text) => parseUrlTemplate(model === undefined ? text : inferUrl(text, model)));
  if (model !== undefined && urls.some((url) => url.perFile)) throw new UsageError('--body v2 sends to the model\'s infer URL: --url cannot hold placeholders');
  const origins = new Set(urls.map((url) => url.origin));
  if (origins.size < urls.length) throw new UsageError('--url names the same server twice: give each server (scheme, host and port) once', 'IMGPUSH_BAD_URL');
  return urls;
}

/** The model's infer URL under a server's base URL (kept as it is when it names an infer URL already). */
function inferUrl(text: string, model: string): string {
  const [base = text, query] = text.split(/\?(.*)/s);
  if (/\/infer\/?$/.test(base)) return text;
  return inferPath(base, model) + (query === undefined ? '' : `?${query}`);
}

/** Several files in one request need one multipart form (or v2 tensor), one URL for all, and one answer for all. */
function checkGrouping(body: BodyMode, async: boolean, urls: readonly UrlTemplate[]): void {
  if (body !== 'multipart' && body !== 'v2') throw new UsageError(`--files-per-request needs --body multipart: a ${body} body holds one file`);
  if (async) throw new UsageError('--files-per-request cannot be used with --async: a job holds one file');
  if (urls.some((url) => url.perFile)) throw new UsageError('--files-per-request cannot be used with placeholders in --url: the files of a request share one URL');
}

/** --model and --input-name, which --body v2 needs and nothing else takes. */
function checkInference(body: BodyMode, { model, inputName, form }: PushOptions): { model: string | undefined; inputName: string | undefined } {
  if (body !== 'v2') {
    if (model !== undefined || inputName !== undefined) throw new UsageError('--model and --input-name name the model of --body v2: add --body v2');
    return { model: undefined, inputName: undefined };
  }
  if (model === undefined || model === '') throw new UsageError('--body v2 needs --model: the name of the model to infer with, as the server knows it');
  if (inputName === '') throw new UsageError('--input-name must not be empty');
  if (toPairs(form).length > 0) throw new UsageError('--form adds multipart fields: --body v2 sends an inference request');
  return { model, inputName: inputName ?? DEFAULTS.inputName };
}

/** The JSON body's template, checked (--body json); undefined for the other bodies. */
function checkTemplate(body: BodyMode, template: string | undefined, form: Pairs): JsonTemplate | undefined {
  if (body !== 'json') {
    if (template !== undefined) throw new UsageError('--template is the body of --body json: add --body json');
    return undefined;
  }
  if (form.length > 0) throw new UsageError('--form adds multipart fields: with --body json, put them in --template');
  return new JsonTemplate(template ?? DEFAULTS.template);
}

/** --resize, --format and --quality, checked; undefined when none is given (sharp is then never loaded). */
function checkReencode({ resize, format, quality }: PushOptions): ReencodeSettings | undefined {
  if (resize === undefined && format === undefined && quality === undefined) return undefined;
  const target = format === undefined ? undefined : oneOf('--format', format, ['jpeg', 'webp'] as const);
  if (quality !== undefined && target === undefined) {
    throw new UsageError('--quality needs --format jpeg or --format webp (a format kept as it was is written at its default quality)');
  }
  return {
    resize: resize === undefined ? undefined : integer('--resize', resize, 1),
    format: target,
    quality: quality === undefined ? undefined : integer('--quality', quality, 1, 100),
  };
}

/**
 * Validates options once, at the edge, and fills in defaults: everything
 * inside the library trusts the result. Messages name the CLI flag.
 */
export function resolveOptions(options: PushOptions): ResolvedOptions {
  const inputs = options.inputs ?? [];
  if (inputs.length === 0 && options.listed === undefined) {
    throw new UsageError('nothing to upload: name files, folders or glob patterns, or - to read paths from stdin', 'IMGPUSH_NO_INPUT');
  }
  const method = oneOf('--method', (options.method ?? DEFAULTS.method).toUpperCase(), ['POST', 'PUT'] as const);
  const body = oneOf('--body', options.body ?? DEFAULTS.body, ['multipart', 'raw', 'json', 'v2'] as const);
  const { model, inputName } = checkInference(body, options);
  const urls = checkUrls(options.url, model);
  const field = options.field ?? DEFAULTS.field;
  if (field === '') throw new UsageError('--field must not be empty');
  const form = toPairs(options.form);
  const jsonTemplate = checkTemplate(body, options.template, form);
  const reencode = checkReencode(options);
  const headerPairs = toPairs(options.headers);
  const headers = checkHeaders(headerPairs, body);
  if (options.token !== undefined) {
    if (options.token === '' || /[\s]/.test(options.token)) throw new UsageError('--token must be one word with no spaces or line breaks');
    headers.authorization = `Bearer ${options.token}`;
  }
  const chosen = options.concurrency ?? DEFAULTS.concurrency;
  const adaptive = chosen === 'auto';
  const concurrency = adaptive
    ? integer('--max-concurrency', options.maxConcurrency ?? DEFAULTS.maxConcurrency, 1, MAX_CONCURRENCY)
    : integer('--concurrency', chosen, 1, MAX_CONCURRENCY);
  const timeoutMs = duration('--timeout', options.timeoutMs ?? DEFAULTS.timeoutMs, 1);
  const connectTimeoutMs = duration('--connect-timeout', options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs, 1);
  const retries = integer('--retries', options.retries ?? DEFAULTS.retries, 0, 100);
  const retryMinDelayMs = duration('--retry-min-delay', options.retryMinDelayMs ?? DEFAULTS.retryMinDelayMs, 0);
  const retryMaxDelayMs = duration('--retry-max-delay', options.retryMaxDelayMs ?? DEFAULTS.retryMaxDelayMs, 0);
  if (retryMaxDelayMs < retryMinDelayMs) throw new UsageError('--retry-max-delay must not be shorter than --retry-min-delay');
  const extensions = checkExtensions(options.extensions);
  const filesPerRequest = integer('--files-per-request', options.filesPerRequest ?? DEFAULTS.filesPerRequest, 1, 1000);
  if (filesPerRequest > 1) checkGrouping(body, options.async ?? false, urls);
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new UsageError('--cert and --key go together: give both the client certificate and its private key');
  }
  const tlsPath = (path: string | undefined): string | undefined => (path === undefined ? undefined : resolve(path));
  const given = options.proxy === undefined ? undefined : parseProxy(options.proxy, '--proxy');
  const proxies = urls.map((url) => given ?? proxyFromEnvironment(new URL(url.origin), options.proxyEnv ?? {}));
  const common: CommonSettings = {
    method, body, field, form,
    template: jsonTemplate?.text,
    model,
    inputName,
    resize: reencode?.resize,
    format: reencode?.format,
    quality: reencode?.quality,
    concurrency, adaptive, timeoutMs, connectTimeoutMs, retries, retryMinDelayMs, retryMaxDelayMs,
    maxOutageMs: duration('--max-outage', options.maxOutageMs ?? DEFAULTS.maxOutageMs, 0),
    async: options.async ?? false,
    filesPerRequest,
    maxRequestBytes: integer('--max-request-bytes', options.maxRequestBytes ?? DEFAULTS.maxRequestBytes, 1),
    rate: options.rate === undefined ? undefined : positive('--rate', options.rate),
    exclude: options.exclude ?? [],
    hidden: options.hidden ?? false,
    http2: options.http2 ?? false,
    cacert: tlsPath(options.cacert),
    cert: tlsPath(options.cert),
    key: tlsPath(options.key),
    insecure: options.insecure ?? false,
  };
  return {
    ...common,
    inputs,
    listed: options.listed,
    urls,
    jsonTemplate,
    reencode,
    headers,
    extensions,
    out: options.out,
    failures: options.failures ?? DEFAULTS.failures,
    graceMs: duration('grace period', options.graceMs ?? DEFAULTS.graceMs, 0),
    streamThresholdBytes: integer('stream threshold', options.streamThresholdBytes ?? DEFAULTS.streamThresholdBytes, 0),
    skipDone: options.skipDone ?? [],
    maxFailures: options.maxFailures === undefined ? undefined : integer('--max-failures', options.maxFailures, 1),
    dryRun: options.dryRun ?? false,
    maxFailureRate: options.maxFailureRate === undefined ? undefined : fraction('--max-failure-rate', options.maxFailureRate),
    failIfP95Ms: options.failIfP95Ms === undefined ? undefined : positive('--fail-if-p95', options.failIfP95Ms),
    shard: options.shard === undefined ? undefined : checkShard(options.shard),
    proxies,
    warnings: [
      ...(!adaptive && options.maxConcurrency !== undefined ? [`--max-concurrency: no effect with a fixed --concurrency ${concurrency} (it bounds --concurrency auto)`] : []),
      ...new Set(urls.flatMap((url) => connectionWarnings(url.origin, common))),
    ],
    settings: {
      ...common,
      url: options.url,
      headers: headerPairs.map(([name, value]) => [name, SECRET_HEADER.test(name) ? null : value] as const),
      token: options.token !== undefined,
      extensions: extensions === null ? 'all' : [...extensions],
      proxy: given?.shown,
      proxyCredentials: given?.credentials === true,
    },
  };
}

/** What the user should hear about the connection options before the run: they are valid, but weaken or do nothing. */
function connectionWarnings(origin: string, { http2, cacert, cert, insecure }: CommonSettings): string[] {
  if (origin.startsWith('https:')) {
    return insecure ? ['--insecure: the server\'s certificate is not checked, so anyone on the way can read or change the uploads'] : [];
  }
  const warnings: string[] = [];
  if (http2) warnings.push('--http2: no effect on an http:// URL (HTTP/2 is offered in the TLS handshake, so to https:// only)');
  const tls = [cacert === undefined ? '' : '--cacert', cert === undefined ? '' : '--cert and --key', insecure ? '--insecure' : ''].filter((flag) => flag !== '');
  if (tls.length > 0) warnings.push(`${tls.join(', ')}: no effect on an http:// URL, which has no TLS`);
  return warnings;
}
