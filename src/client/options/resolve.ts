import { resolve } from 'node:path';
import { UsageError } from '../../shared/errors.js';
import { IMAGE_EXTENSIONS } from '../../shared/media-types.js';
import { inferPath } from '../bodies/inference-body.js';
import { JsonTemplate } from '../bodies/json-template.js';
import { parseProxy, proxyFromEnvironment } from '../transport/proxy.js';
import type { ReencodeSettings } from '../bodies/reencode.js';
import { parseUrlTemplate, type UrlTemplate } from '../transport/url-template.js';
import { check, DEFAULTS, toPairs } from './declarations.js';
import type { BodyMode, CommonSettings, Pairs, PushOptions, ResolvedOptions } from './types.js';

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** imgpush frames the body itself; these would contradict it. */
const RESERVED_HEADERS = new Set(['content-length', 'transfer-encoding', 'host', 'connection', 'upgrade', 'expect']);
/** Header names whose values are never written to a log. */
const SECRET_HEADER = /auth|token|key|secret|cookie|password|session/i;
/** A URL typed without its scheme (`localhost:8000/predict`) parses as one with the scheme `localhost:`. */
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

function checkHeaders(pairs: Pairs, body: BodyMode): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase();
    if (!HEADER_NAME.test(name)) throw new UsageError('IMGPUSH_USAGE', `--header name ${JSON.stringify(name)} is not a valid HTTP header name`);
    if (/[\r\n\0]/.test(value)) throw new UsageError('IMGPUSH_USAGE', `--header ${name} must not hold line breaks`);
    if (RESERVED_HEADERS.has(lower)) throw new UsageError('IMGPUSH_USAGE', `--header ${name} cannot be set: imgpush frames the request itself`);
    if (lower === 'content-type' && body === 'multipart') {
      throw new UsageError('IMGPUSH_USAGE', '--header Content-Type cannot be set with --body multipart (the boundary is imgpush\'s); use --body raw');
    }
    headers[lower] = value;
  }
  return headers;
}

function extensionSet(value: readonly string[] | 'all'): ReadonlySet<string> | null {
  if (value === 'all') return null;
  return new Set(value.map((ext) => ext.trim().replace(/^\./, '').toLowerCase()));
}

/** `--url`, once or more; with body v2, a server's base URL, under which the model's infer path goes. */
function checkUrls(given: string | readonly string[] | undefined, model: string | undefined): UrlTemplate[] {
  const list = typeof given === 'string' ? [given] : given ?? [];
  if (list.length === 0 || list.some((text) => typeof text !== 'string' || text === '')) throw new UsageError('IMGPUSH_USAGE', '--url is required (where to send the files)');
  const bare = list.find((text) => !SCHEME.test(text));
  if (bare !== undefined) throw new UsageError('IMGPUSH_BAD_URL', `--url must start with http:// or https:// (got ${JSON.stringify(bare)}): add http://, e.g. http://${bare}`);
  const urls = list.map((text) => parseUrlTemplate(model === undefined ? text : inferUrl(text, model)));
  if (model !== undefined && urls.some((url) => url.perFile)) throw new UsageError('IMGPUSH_USAGE', '--body v2 sends to the model\'s infer URL: --url cannot hold placeholders');
  const origins = new Set(urls.map((url) => url.origin));
  if (origins.size < urls.length) throw new UsageError('IMGPUSH_BAD_URL', '--url names the same server twice: give each server (scheme, host and port) once');
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
  if (body !== 'multipart' && body !== 'v2') throw new UsageError('IMGPUSH_USAGE', `--files-per-request needs --body multipart: a ${body} body holds one file`);
  if (async) throw new UsageError('IMGPUSH_USAGE', '--files-per-request cannot be used with --async: a job holds one file');
  if (urls.some((url) => url.perFile)) throw new UsageError('IMGPUSH_USAGE', '--files-per-request cannot be used with placeholders in --url: the files of a request share one URL');
}

/** --model and --input-name, which --body v2 needs and nothing else takes. */
function checkInference(body: BodyMode, { model, inputName, form }: PushOptions): { model: string | undefined; inputName: string | undefined } {
  if (body !== 'v2') {
    if (model !== undefined || inputName !== undefined) throw new UsageError('IMGPUSH_USAGE', '--model and --input-name name the model of --body v2: add --body v2');
    return { model: undefined, inputName: undefined };
  }
  if (model === undefined || model === '') throw new UsageError('IMGPUSH_USAGE', '--body v2 needs --model: the name of the model to infer with, as the server knows it');
  if (inputName === '') throw new UsageError('IMGPUSH_USAGE', '--input-name must not be empty');
  if (toPairs(form).length > 0) throw new UsageError('IMGPUSH_USAGE', '--form adds multipart fields: --body v2 sends an inference request');
  return { model, inputName: inputName ?? DEFAULTS.inputName };
}

/** The JSON body's template, checked (--body json); undefined for the other bodies. */
function checkTemplate(body: BodyMode, template: string | undefined, form: Pairs): JsonTemplate | undefined {
  if (body !== 'json') {
    if (template !== undefined) throw new UsageError('IMGPUSH_USAGE', '--template is the body of --body json: add --body json');
    return undefined;
  }
  if (form.length > 0) throw new UsageError('IMGPUSH_USAGE', '--form adds multipart fields: with --body json, put them in --template');
  return new JsonTemplate(template ?? DEFAULTS.template);
}

/** --resize, --format and --quality, checked; undefined when none is given (sharp is then never loaded). */
function checkReencode({ resize, format, quality }: PushOptions): ReencodeSettings | undefined {
  if (resize === undefined && format === undefined && quality === undefined) return undefined;
  const target = format === undefined ? undefined : check('format', format);
  if (quality !== undefined && target === undefined) {
    throw new UsageError('IMGPUSH_USAGE', '--quality needs --format jpeg or --format webp (a format kept as it was is written at its default quality)');
  }
  return {
    resize: resize === undefined ? undefined : check('resize', resize),
    format: target,
    quality: quality === undefined ? undefined : check('quality', quality),
  };
}

/**
 * Validates options once, at the edge, and fills in defaults: everything
 * inside the library trusts the result. Messages name the CLI flag.
 */
export function resolveOptions(options: PushOptions): ResolvedOptions {
  const inputs = options.inputs ?? [];
  if (inputs.length === 0 && options.listed === undefined) {
    throw new UsageError('IMGPUSH_NO_INPUT', 'nothing to upload: name files, folders or glob patterns, or - to read paths from stdin');
  }
  const method = check('method', options.method ?? DEFAULTS.method);
  const body = check('body', options.body ?? DEFAULTS.body);
  const { model, inputName } = checkInference(body, options);
  const urls = checkUrls(options.url, model);
  const field = check('field', options.field ?? DEFAULTS.field);
  const form = toPairs(options.form);
  const jsonTemplate = checkTemplate(body, options.template, form);
  const reencode = checkReencode(options);
  const headerPairs = toPairs(options.headers);
  const headers = checkHeaders(headerPairs, body);
  if (options.token !== undefined) {
    if (options.token === '' || /\s/.test(options.token)) throw new UsageError('IMGPUSH_USAGE', '--token must be one word with no spaces or line breaks');
    headers.authorization = `Bearer ${options.token}`;
  }
  const chosen = check('concurrency', options.concurrency ?? DEFAULTS.concurrency);
  const adaptive = chosen === 'auto';
  const concurrency = chosen === 'auto' ? check('maxConcurrency', options.maxConcurrency ?? DEFAULTS.maxConcurrency) : chosen;
  const timeoutMs = check('timeoutMs', options.timeoutMs ?? DEFAULTS.timeoutMs);
  const connectTimeoutMs = check('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs);
  const retries = check('retries', options.retries ?? DEFAULTS.retries);
  const retryMinDelayMs = check('retryMinDelayMs', options.retryMinDelayMs ?? DEFAULTS.retryMinDelayMs);
  const retryMaxDelayMs = check('retryMaxDelayMs', options.retryMaxDelayMs ?? DEFAULTS.retryMaxDelayMs);
  if (retryMaxDelayMs < retryMinDelayMs) throw new UsageError('IMGPUSH_USAGE', '--retry-max-delay must not be shorter than --retry-min-delay');
  const extensions = extensionSet(check('extensions', options.extensions ?? IMAGE_EXTENSIONS));
  const filesPerRequest = check('filesPerRequest', options.filesPerRequest ?? DEFAULTS.filesPerRequest);
  if (filesPerRequest > 1) checkGrouping(body, options.async ?? false, urls);
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new UsageError('IMGPUSH_USAGE', '--cert and --key go together: give both the client certificate and its private key');
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
    concurrency, adaptive, timeoutMs, connectTimeoutMs, retries,
    maxTimeMs: options.maxTimeMs === undefined ? undefined : check('maxTimeMs', options.maxTimeMs), retryMinDelayMs, retryMaxDelayMs,
    maxOutageMs: check('maxOutageMs', options.maxOutageMs ?? DEFAULTS.maxOutageMs),
    async: options.async ?? false,
    checksum: options.checksum ?? false,
    filesPerRequest,
    maxRequestBytes: check('maxRequestBytes', options.maxRequestBytes ?? DEFAULTS.maxRequestBytes),
    rate: options.rate === undefined ? undefined : check('rate', options.rate),
    exclude: check('exclude', options.exclude ?? []),
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
    appendOut: options.appendOut ?? false,
    failures: options.failures ?? DEFAULTS.failures,
    failuresGiven: options.failures !== undefined,
    graceMs: check('graceMs', options.graceMs ?? DEFAULTS.graceMs),
    streamThresholdBytes: check('streamThresholdBytes', options.streamThresholdBytes ?? DEFAULTS.streamThresholdBytes),
    skipDone: options.skipDone ?? [],
    maxFailures: options.maxFailures === undefined ? undefined : check('maxFailures', options.maxFailures),
    dryRun: options.dryRun ?? false,
    maxFailureRate: options.maxFailureRate === undefined ? undefined : check('maxFailureRate', options.maxFailureRate),
    failIfP95Ms: options.failIfP95Ms === undefined ? undefined : check('failIfP95Ms', options.failIfP95Ms),
    shard: options.shard === undefined ? undefined : check('shard', options.shard),
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
