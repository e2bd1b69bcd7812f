import { Command, InvalidArgumentError, Option } from 'commander';
import type { PushOptions } from '../client/options.js';
import { InvalidValueError, parseDuration as duration, parseSize as size, parseWholeNumber } from '../shared/units.js';

/** A shared parser, with the error commander prints beside the flag's name. */
function asFlag<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (error) {
      if (error instanceof InvalidValueError) throw new InvalidArgumentError(error.message);
      throw error;
    }
  };
}
const wholeNumber = asFlag(parseWholeNumber);
const parseDuration = asFlag(duration);
const parseSize = asFlag(size);

/** The flags both `imgpush` and `imgpush retry` take, as commander gives them. */
export interface RunFlags {
  url?: string[];
  concurrency?: number | 'auto';
  maxConcurrency?: number;
  method?: string;
  body?: string;
  template?: string;
  model?: string;
  inputName?: string;
  resize?: number;
  format?: string;
  quality?: number;
  field?: string;
  form?: Array<[string, string]>;
  header?: Array<[string, string]>;
  token?: string;
  timeout?: number;
  connectTimeout?: number;
  retries?: number;
  retryMinDelay?: number;
  retryMaxDelay?: number;
  ext?: string[] | 'all';
  exclude?: string[];
  hidden?: boolean;
  out?: string;
  failures?: string;
  skipDone?: string[];
  maxFailures?: number;
  maxOutage?: number;
  dryRun?: boolean;
  async?: boolean;
  rate?: number;
  filesPerRequest?: number;
  maxRequestBytes?: number;
  shard?: { index: number; count: number };
  maxFailureRate?: number;
  failIfP95?: number;
  http2?: boolean;
  cacert?: string;
  cert?: string;
  key?: string;
  insecure?: boolean;
  proxy?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

/** Flags only the first run takes: where the paths come from. */
export interface InputFlags extends RunFlags {
  filesFrom?: string;
  null?: boolean;
}

/** `K/N`: share K of N. */
function shard(value: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(value.trim());
  if (match === null) throw new InvalidArgumentError('expected K/N, e.g. 2/4 for the second of four shares');
  return { index: Number(match[1]), count: Number(match[2]) };
}

function collectPair(separator: string, example: string) {
  return (value: string, previous: Array<[string, string]> = []): Array<[string, string]> => {
    const at = value.indexOf(separator);
    if (at <= 0) throw new InvalidArgumentError(`expected ${example}`);
    return [...previous, [value.slice(0, at).trim(), value.slice(at + 1).trim()]];
  };
}

function positiveNumber(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) throw new InvalidArgumentError('expected a number above 0');
  return number;
}

function share(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(%)?$/.exec(value.trim());
  if (match === null) throw new InvalidArgumentError('expected a fraction such as 0.01, or a percentage such as 1%');
  return match[2] === '%' ? Number(match[1]) / 100 : Number(match[1]);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function extensions(value: string): string[] | 'all' {
  return value.trim() === '*' ? 'all' : value.split(',');
}

/** Adds the request, filter and output flags to a command; defaults are shown, but applied by the library. */
export function addRunFlags(command: Command): Command {
  return command
    .option('-u, --url <url>', 'where to send each file; may hold {path}, {name}, {stem}, {ext}; repeat it to spread uploads over several servers', collect)
    .option('-c, --concurrency <n>', 'uploads in flight at once, or auto to find it as the run goes (default: auto)', (value: string) => (value === 'auto' ? 'auto' : wholeNumber(value)))
    .option('--max-concurrency <n>', 'with --concurrency auto (the default): the most in flight (default: 64)', wholeNumber)
    .option('-X, --method <method>', 'HTTP method, POST or PUT (default: POST)')
    .addOption(new Option('--body <mode>', 'multipart: one file per form; raw: the bytes alone; json: base64 in --template; v2: Open Inference Protocol (default: multipart)').choices(['multipart', 'raw', 'json', 'v2']))
    .option('--model <name>', 'with --body v2: the model; --url is the server, and /v2/models/<name>/infer goes under it')
    .option('--input-name <name>', 'with --body v2: the model\'s BYTES input the images go in (default: image)')
    .option('--template <json>', 'with --body json: the body, {base64} where the file goes; {name}, {path}, {stem}, {ext} may stand in its strings (default: {"image":"{base64}","name":"{name}"})')
    .option('--resize <max>', 're-encode each image (needs sharp) to fit within max x max pixels, never enlarged', wholeNumber)
    .addOption(new Option('--format <format>', 're-encode each image (needs sharp) as jpeg or webp (default: keep its format)').choices(['jpeg', 'webp']))
    .option('--quality <q>', 'with --format: encoder quality, 1-100 (default: 85 for jpeg, 80 for webp)', wholeNumber)
    .option('--field <name>', 'multipart field of the file (default: image)')
    .option('-F, --form <key=value>', 'extra multipart field, repeatable', collectPair('=', 'key=value'))
    .option('-H, --header <header>', "extra request header 'Name: value', repeatable", collectPair(':', "'Name: value'"))
    .addOption(new Option('--token <token>', 'send Authorization: Bearer <token>').env('IMGPUSH_TOKEN'))
    .option('--timeout <duration>', 'longest the server may stay silent per request (default: 60s)', parseDuration)
    .option('--connect-timeout <duration>', 'longest a connection may take to open (default: 10s)', parseDuration)
    .option('--retries <n>', 'retries per file after the first attempt (default: 3)', wholeNumber)
    .option('--retry-min-delay <duration>', 'first backoff, doubled per retry, with jitter (default: 250ms)', parseDuration)
    .option('--retry-max-delay <duration>', 'longest wait between attempts, Retry-After included (default: 30s)', parseDuration)
    .option('--ext <list>', 'extensions picked up in folders, comma-separated, or * for all (default: jpg,jpeg,png,webp,gif,bmp,tif,tiff,avif,heic)', extensions)
    .option('--exclude <glob>', 'leave out paths matching this pattern, repeatable', collect)
    .option('--hidden', 'include files and folders whose name starts with a dot')
    .option('-o, --out <file>', 'results log: one JSON line per file')
    .option('--failures <file>', 'failure log, written only if a file fails (default: imgpush-failures.jsonl)')
    .option('--skip-done <results-log>', 'skip files an earlier run uploaded, unchanged since (repeatable)', collect)
    .option('--max-failures <n>', 'stop the run once this many files have failed', wholeNumber)
    .option('--max-outage <duration>', 'how long the server may stay unreachable (uploads paused, probing) before the run gives up (default: 5m)', parseDuration)
    .option('--dry-run', 'list what would be sent, and send nothing')
    .option('--files-per-request <n>', 'files packed into one multipart request, the field repeated (default: 1)', wholeNumber)
    .option('--max-request-bytes <size>', 'with --files-per-request: most file bytes in one request, e.g. 8MB (default: 8MB)', parseSize)
    .option('--shard <K/N>', 'push only share K of N (by a hash of each path under its input root): N jobs push all, once', shard)
    .option('--rate <files/s>', 'files a second at most, on average (bursts up to --concurrency)', positiveNumber)
    .option('--max-failure-rate <rate>', 'exit 1 when more than this share of the files failed: 0.01 or 1%', share)
    .option('--fail-if-p95 <ms>', 'exit 1 when the upload latency p95 is over this many ms', positiveNumber)
    .option('--async', '--url is a jobs endpoint (202 + Location): poll each file\'s job and log its result')
    .option('--http2', 'offer HTTP/2 to an https:// server (it is negotiated in the TLS handshake)')
    .option('--cacert <file>', 'also trust the certificate authorities in this PEM file (a private CA)')
    .option('--cert <file>', 'client certificate (PEM) for a server that asks for one; with --key')
    .option('--key <file>', 'private key (PEM, no passphrase) of --cert')
    .option('-k, --insecure', 'do not check the server\'s certificate')
    .option('--proxy <url>', 'send through this proxy: http://[user:password@]host:port (default: HTTPS_PROXY or HTTP_PROXY, unless NO_PROXY lists the host)')
    .option('--json', 'print the summary as one JSON object on stdout')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--verbose', 'show stack traces of unexpected errors');
}

/** The request and output options of flags, leaving out those the user did not give. */
export function toPushOptions(flags: RunFlags): Omit<PushOptions, 'url'> & { url?: PushOptions['url'] } {
  const options: Record<string, unknown> = {
    url: flags.url?.length === 1 ? flags.url[0] : flags.url,
    concurrency: flags.concurrency,
    maxConcurrency: flags.maxConcurrency,
    method: flags.method?.toUpperCase(),
    body: flags.body,
    template: flags.template,
    model: flags.model,
    inputName: flags.inputName,
    resize: flags.resize,
    format: flags.format,
    quality: flags.quality,
    field: flags.field,
    form: flags.form,
    headers: flags.header,
    token: flags.token,
    timeoutMs: flags.timeout,
    connectTimeoutMs: flags.connectTimeout,
    retries: flags.retries,
    retryMinDelayMs: flags.retryMinDelay,
    retryMaxDelayMs: flags.retryMaxDelay,
    extensions: flags.ext,
    exclude: flags.exclude,
    hidden: flags.hidden,
    out: flags.out,
    failures: flags.failures,
    skipDone: flags.skipDone,
    maxFailures: flags.maxFailures,
    maxOutageMs: flags.maxOutage,
    async: flags.async,
    rate: flags.rate,
    filesPerRequest: flags.filesPerRequest,
    maxRequestBytes: flags.maxRequestBytes,
    shard: flags.shard,
    maxFailureRate: flags.maxFailureRate,
    failIfP95Ms: flags.failIfP95,
    dryRun: flags.dryRun,
    http2: flags.http2,
    cacert: flags.cacert,
    cert: flags.cert,
    key: flags.key,
    insecure: flags.insecure,
    proxy: flags.proxy,
    // Read at every run, retries included: a proxy from the environment is never recorded.
    proxyEnv: process.env,
  };
  for (const key of Object.keys(options)) if (options[key] === undefined) delete options[key];
  return options as Omit<PushOptions, 'url'> & { url?: PushOptions['url'] };
}
