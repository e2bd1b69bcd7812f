import { UsageError } from '../../shared/errors.js';
import { IMAGE_EXTENSIONS } from '../../shared/media-types.js';
import { formatDuration, formatSize, InvalidValueError, parseDuration, parseSize, parseWholeNumber } from '../../shared/units.js';
import { DEFAULT_TEMPLATE } from '../bodies/json-template.js';
import { DEFAULT_QUALITY, type TargetFormat } from '../bodies/reencode.js';
import type { Shard } from '../filter/shard.js';
import { choice, duration, fraction, integer, oneOf, positive } from './checks.js';
import type { BodyMode, Method, Pairs, PushOptions } from './types.js';

/*
 * Every option of push() and retry(), declared once: its flag, default,
 * parser, checks, help and what the failure log keeps of it. The CLI builds
 * its flags and --help from here (without this module knowing commander),
 * and the library its DEFAULTS and its checks.
 */

/** The headings of --help, in their order. */
export const HELP_GROUPS = ['inputs', 'target and body', 'logs and resume', 'retries and timeouts', 'speed', 'transport', 'output'] as const;
export type HelpGroup = typeof HELP_GROUPS[number];
/** The commands that take run options. */
export type RunCommand = 'push' | 'retry';

/**
 * What the failure log keeps of an option, for `imgpush retry`: `yes`, and a
 * retry sends the same unless given it again; `without secrets`, what may be
 * a secret is left out and must be given again; `no`, it concerns one run.
 */
type Recorded = 'yes' | 'without secrets' | 'no';

interface Declared<T> {
  /** The library's default, in DEFAULTS; absent when there is none or the absence means something. */
  readonly default?: T;
  /** Checks a value, from the library or the command line; throws a UsageError naming the flag. */
  readonly validate?: (value: T, name: string) => T;
  readonly recorded: Recorded;
}

/** An option of the library alone: no flag. */
interface LibraryOption<T> extends Declared<T> {
  /** What messages call it. */
  readonly name: string;
}

/** An option the CLI takes as a flag. */
export interface FlagOption<T> extends Declared<T> {
  /** As commander reads it: `--timeout <duration>`; one with no `<value>` is a switch. */
  readonly flag: `--${string}`;
  readonly short?: `-${string}`;
  /** From what the user wrote (and what the flag gave before, for one given again); throws InvalidValueError. */
  readonly parse: (text: string, previous: T | undefined, name: string) => T;
  readonly help: string;
  readonly group: HelpGroup;
  readonly commands: readonly RunCommand[];
  /** Shown in --help as they are allowed. */
  readonly choices?: readonly string[];
  /** An environment variable that stands in for the flag. */
  readonly env?: string;
  /** The default as users write it (`1m`, `250ms`, `8MB`); default String. */
  readonly format?: (value: T) => string;
  /** The default, in --help, of an option whose default is not a value of its own. */
  readonly shown?: string;
  /** What --help of `imgpush retry` says the default is, where the failure log does not simply hold it. */
  readonly retryShown?: string;
}

export type OptionDeclaration<T> = LibraryOption<T> | FlagOption<T>;
/** The options that are declared: all but the inputs, which are arguments, and the environment, which the CLI passes. */
export type OptionKey = Exclude<keyof PushOptions, 'inputs' | 'listed' | 'proxyEnv'>;
export type OptionValue<K extends OptionKey> = NonNullable<PushOptions[K]>;
export type Declarations = { readonly [K in OptionKey]: OptionDeclaration<OptionValue<K>> };

const BOTH: readonly RunCommand[] = ['push', 'retry'];
const MAX_CONCURRENCY = 1024;
const BODIES: readonly BodyMode[] = ['multipart', 'raw', 'json', 'v2'];
const METHODS: readonly Method[] = ['POST', 'PUT'];
const FORMATS: readonly TargetFormat[] = ['jpeg', 'webp'];

const text = (value: string): string => value;
/** A switch: commander calls its parser, with no text, when the flag is given. */
const on = (): true => true;
const collect = (value: string, previous: readonly string[] | undefined): readonly string[] => [...(previous ?? []), value];

/** A duration flag: written `250ms`, `30s`, `5m`, `1h`, held in ms. */
function durationFlag(min: number): Pick<FlagOption<number>, 'parse' | 'format' | 'validate'> {
  return { parse: parseDuration, format: formatDuration, validate: (ms, name) => duration(name, ms, min) };
}

/** A count flag: a whole number from `min` (to `max`). */
function countFlag(min: number, max?: number): Pick<FlagOption<number>, 'parse' | 'validate'> {
  return { parse: parseWholeNumber, validate: (value, name) => integer(name, value, min, max) };
}

function positiveNumber(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) throw new InvalidValueError('expected a number above 0');
  return number;
}

function share(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(%)?$/.exec(value.trim());
  if (match === null) throw new InvalidValueError('expected a fraction such as 0.01, or a percentage such as 1%');
  return match[2] === '%' ? Number(match[1]) / 100 : Number(match[1]);
}

/** `K/N`: share K of N. */
function shard(value: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(value.trim());
  if (match === null) throw new InvalidValueError('expected K/N, e.g. 2/4 for the second of four shares');
  return { index: Number(match[1]), count: Number(match[2]) };
}

function checkShard({ index, count }: Shard): Shard {
  integer('--shard count', count, 1, 1_000_000);
  if (!Number.isInteger(index) || index < 1 || index > count) throw new UsageError('IMGPUSH_USAGE', `--shard must be K/N with K from 1 to N (got ${index}/${count})`);
  return { index, count };
}

export function toPairs(value: Pairs | Readonly<Record<string, string>> | undefined): Pairs {
  if (value === undefined) return [];
  return Array.isArray(value) ? value as Pairs : Object.entries(value);
}

/** `key=value` or `Name: value`, added to the pairs given before. */
function pairs(separator: string, example: string) {
  return (value: string, previous: Pairs | Readonly<Record<string, string>> | undefined): Pairs => {
    const at = value.indexOf(separator);
    if (at <= 0) throw new InvalidValueError(`expected ${example}`);
    return [...toPairs(previous), [value.slice(0, at).trim(), value.slice(at + 1).trim()]];
  };
}

/** One `--url` is a string, several a list. */
function addUrl(value: string, previous: string | readonly string[] | undefined): string | readonly string[] {
  if (previous === undefined) return value;
  return [...(typeof previous === 'string' ? [previous] : previous), value];
}

/** `*` (the CLI) or `'all'` (the library) for every file; otherwise names without the dot. */
function checkExtensions(value: readonly string[] | 'all', name: string): readonly string[] | 'all' {
  if (value === 'all') return value;
  if (!Array.isArray(value)) throw new UsageError('IMGPUSH_USAGE', `${name} must be a list of extensions or 'all' (got ${JSON.stringify(value)})`);
  if (value.some((ext) => ext.trim() === '*')) throw new UsageError('IMGPUSH_USAGE', `${name}: * stands alone for every file (in the library: extensions: 'all')`);
  if (value.length === 0 || value.some((ext) => ext.trim().replace(/^\./, '') === '')) {
    throw new UsageError('IMGPUSH_USAGE', `${name} needs a comma-separated list of extensions, e.g. jpg,png (or * for every file)`);
  }
  return value;
}

function checkExclude(patterns: readonly string[], name: string): readonly string[] {
  if (patterns.some((pattern) => pattern.trim() === '')) throw new UsageError('IMGPUSH_USAGE', `${name} needs a pattern, e.g. --exclude '*.tmp' (got an empty one)`);
  return patterns;
}

export const OPTIONS = {
  url: {
    flag: '--url <url>', short: '-u', parse: addUrl, recorded: 'yes', group: 'target and body', commands: BOTH,
    help: 'where to send each file; may hold {path}, {name}, {stem}, {ext}; repeat it to spread uploads over several servers',
  },
  method: {
    flag: '--method <method>', short: '-X', default: 'POST', recorded: 'yes', group: 'target and body', commands: BOTH,
    parse: (value, _previous, name) => oneOf(name, value.toUpperCase(), METHODS),
    validate: (value, name) => oneOf(name, value.toUpperCase(), METHODS),
    help: 'HTTP method, POST or PUT',
  },
  body: {
    flag: '--body <mode>', default: 'multipart', choices: BODIES, recorded: 'yes', group: 'target and body', commands: BOTH,
    parse: (value) => choice(value, BODIES), validate: (value, name) => oneOf(name, value, BODIES),
    help: 'multipart: one file per form; raw: the bytes alone; json: base64 in --template; v2: Open Inference Protocol',
  },
  model: {
    flag: '--model <name>', parse: text, recorded: 'yes', group: 'target and body', commands: BOTH,
    help: 'with --body v2: the model; --url is the server, and /v2/models/<name>/infer goes under it',
  },
  inputName: {
    flag: '--input-name <name>', default: 'image', parse: text, recorded: 'yes', group: 'target and body', commands: BOTH,
    help: 'with --body v2: the model\'s BYTES input the images go in',
  },
  template: {
    flag: '--template <json>', default: DEFAULT_TEMPLATE, parse: text, recorded: 'yes', group: 'target and body', commands: BOTH,
    help: 'with --body json: the body, {base64} where the file goes; {name}, {path}, {stem}, {ext} may stand in its strings',
  },
  field: {
    flag: '--field <name>', default: 'image', parse: text, recorded: 'yes', group: 'target and body', commands: BOTH,
    validate: (value, name) => {
      if (value === '') throw new UsageError('IMGPUSH_USAGE', `${name} must not be empty`);
      return value;
    },
    help: 'multipart field of the file',
  },
  form: {
    flag: '--form <key=value>', short: '-F', parse: pairs('=', 'key=value'), recorded: 'yes', group: 'target and body', commands: BOTH,
    help: 'extra multipart field, repeatable',
  },
  headers: {
    flag: '--header <header>', short: '-H', parse: pairs(':', "'Name: value'"), recorded: 'without secrets', group: 'target and body', commands: BOTH,
    help: "extra request header 'Name: value', repeatable",
  },
  token: {
    // Checked by resolveOptions, not here: IMGPUSH_TOKEN is parsed on every command line, --help's too.
    flag: '--token <token>', env: 'IMGPUSH_TOKEN', parse: text, recorded: 'without secrets', group: 'target and body', commands: BOTH,
    retryShown: 'none: the log records only that one was sent',
    help: 'send Authorization: Bearer <token>',
  },
  async: {
    flag: '--async', parse: on, recorded: 'yes', group: 'target and body', commands: BOTH,
    help: '--url is a jobs endpoint (202 + Location): poll each file\'s job and log its result',
  },
  checksum: {
    flag: '--checksum', parse: on, recorded: 'yes', group: 'target and body', commands: BOTH,
    help: 'send each body\'s SHA-256 as Content-Digest (RFC 9530), and log it as sha256',
  },
  resize: {
    flag: '--resize <max>', ...countFlag(1), recorded: 'yes', group: 'target and body', commands: BOTH,
    help: 're-encode each image (needs sharp) to fit within max x max pixels, never enlarged',
  },
  format: {
    flag: '--format <format>', choices: FORMATS, shown: 'keep its format', recorded: 'yes', group: 'target and body', commands: BOTH,
    parse: (value) => choice(value, FORMATS), validate: (value, name) => oneOf(name, value, FORMATS),
    help: 're-encode each image (needs sharp) as jpeg or webp',
  },
  quality: {
    flag: '--quality <q>', ...countFlag(1, 100), recorded: 'yes', group: 'target and body', commands: BOTH,
    shown: Object.entries(DEFAULT_QUALITY).map(([format, quality]) => `${quality} for ${format}`).join(', '),
    help: 'with --format: encoder quality, 1-100',
  },
  extensions: {
    flag: '--ext <list>', recorded: 'yes', group: 'inputs', commands: BOTH,
    parse: (value) => (value.trim() === '*' ? 'all' : value.split(',')), validate: checkExtensions,
    shown: IMAGE_EXTENSIONS.join(','),
    // One spelling for every file: * on the command line, 'all' in the library; a * in a list is an error.
    help: 'extensions picked up in folders, comma-separated, or * for every file',
  },
  exclude: {
    flag: '--exclude <glob>', parse: collect, validate: checkExclude, recorded: 'yes', group: 'inputs', commands: BOTH,
    help: 'leave out paths matching this pattern, repeatable',
  },
  hidden: {
    flag: '--hidden', parse: on, recorded: 'yes', group: 'inputs', commands: BOTH,
    help: 'include files and folders whose name starts with a dot',
  },
  shard: {
    flag: '--shard <K/N>', parse: shard, validate: checkShard, recorded: 'no', group: 'inputs', commands: BOTH,
    help: 'push only share K of N (by a hash of each path under its input root): N jobs push all, once',
  },
  out: {
    flag: '--out <file>', short: '-o', parse: text, recorded: 'no', group: 'logs and resume', commands: BOTH,
    retryShown: 'the results log of the run that failed, appended to',
    help: 'results log: one JSON line per file; - for stdout (the summary then goes to stderr)',
  },
  failures: {
    flag: '--failures <file>', default: 'imgpush-failures.jsonl', parse: text, recorded: 'no', group: 'logs and resume', commands: BOTH,
    retryShown: 'the failure log given, replaced once the retry ends',
    help: 'failure log, written only if a file fails',
  },
  skipDone: {
    flag: '--skip-done <results-log>', parse: collect, recorded: 'no', group: 'logs and resume', commands: BOTH,
    help: 'skip files an earlier run uploaded, unchanged since (repeatable)',
  },
  timeoutMs: {
    flag: '--timeout <duration>', default: 60_000, ...durationFlag(1), recorded: 'yes', group: 'retries and timeouts', commands: BOTH,
    help: 'longest the server may stay silent per request',
  },
  maxTimeMs: {
    flag: '--max-time <duration>', ...durationFlag(1), recorded: 'yes', group: 'retries and timeouts', commands: BOTH, shown: 'none',
    help: 'longest a request may take in all, answer included (as curl\'s): a reply trickled slowly still ends',
  },
  connectTimeoutMs: {
    flag: '--connect-timeout <duration>', default: 10_000, ...durationFlag(1), recorded: 'yes', group: 'retries and timeouts', commands: BOTH,
    help: 'longest a connection may take to open',
  },
  retries: {
    flag: '--retries <n>', default: 3, ...countFlag(0, 100), recorded: 'yes', group: 'retries and timeouts', commands: BOTH,
    help: 'retries per file after the first attempt',
  },
  retryMinDelayMs: {
    flag: '--retry-min-delay <duration>', default: 250, ...durationFlag(0), recorded: 'yes', group: 'retries and timeouts', commands: BOTH,
    help: 'first backoff, doubled per retry, with jitter',
  },
  retryMaxDelayMs: {
    flag: '--retry-max-delay <duration>', default: 30_000, ...durationFlag(0), recorded: 'yes', group: 'retries and timeouts', commands: BOTH,
    help: 'longest wait between attempts, Retry-After included',
  },
  maxOutageMs: {
    flag: '--max-outage <duration>', default: 5 * 60_000, ...durationFlag(0), recorded: 'yes', group: 'retries and timeouts', commands: BOTH,
    help: 'how long the server may stay unreachable (uploads paused, probing) before the run gives up',
  },
  maxFailures: {
    flag: '--max-failures <n>', ...countFlag(1), recorded: 'no', group: 'retries and timeouts', commands: BOTH,
    help: 'stop the run once this many files have failed',
  },
  concurrency: {
    flag: '--concurrency <n>', short: '-c', default: 'auto', recorded: 'yes', group: 'speed', commands: BOTH,
    parse: (value) => (value === 'auto' ? 'auto' : parseWholeNumber(value)),
    validate: (value, name) => (value === 'auto' ? value : integer(name, value, 1, MAX_CONCURRENCY)),
    help: 'uploads in flight at once, or auto to find it as the run goes',
  },
  maxConcurrency: {
    flag: '--max-concurrency <n>', default: 64, ...countFlag(1, MAX_CONCURRENCY), recorded: 'yes', group: 'speed', commands: BOTH,
    help: 'with --concurrency auto (the default): the most in flight',
  },
  rate: {
    flag: '--rate <files/s>', parse: positiveNumber, validate: (value, name) => positive(name, value), recorded: 'yes', group: 'speed', commands: BOTH,
    help: 'files a second at most, on average (bursts up to --concurrency)',
  },
  filesPerRequest: {
    flag: '--files-per-request <n>', default: 1, ...countFlag(1, 1000), recorded: 'yes', group: 'speed', commands: BOTH,
    help: 'files packed into one multipart request, the field repeated',
  },
  maxRequestBytes: {
    flag: '--max-request-bytes <size>', default: 8 * 1024 * 1024, parse: parseSize, format: formatSize, recorded: 'yes', group: 'speed', commands: BOTH,
    validate: (value, name) => integer(name, value, 1),
    help: 'with --files-per-request: most file bytes in one request, e.g. 8MB',
  },
  http2: {
    flag: '--http2', parse: on, recorded: 'yes', group: 'transport', commands: BOTH,
    help: 'offer HTTP/2 to an https:// server (it is negotiated in the TLS handshake)',
  },
  cacert: {
    flag: '--cacert <file>', parse: text, recorded: 'yes', group: 'transport', commands: BOTH,
    help: 'also trust the certificate authorities in this PEM file (a private CA)',
  },
  cert: {
    flag: '--cert <file>', parse: text, recorded: 'yes', group: 'transport', commands: BOTH,
    help: 'client certificate (PEM) for a server that asks for one; with --key',
  },
  key: {
    flag: '--key <file>', parse: text, recorded: 'yes', group: 'transport', commands: BOTH,
    help: 'private key (PEM, no passphrase) of --cert',
  },
  insecure: {
    flag: '--insecure', short: '-k', parse: on, recorded: 'yes', group: 'transport', commands: BOTH,
    help: 'do not check the server\'s certificate',
  },
  proxy: {
    flag: '--proxy <url>', parse: text, recorded: 'without secrets', group: 'transport', commands: BOTH,
    shown: 'HTTPS_PROXY or HTTP_PROXY, unless NO_PROXY lists the host',
    help: 'send through this proxy: http://[user:password@]host:port',
  },
  dryRun: {
    flag: '--dry-run', parse: on, recorded: 'no', group: 'output', commands: BOTH,
    help: 'list what would be sent, and send nothing',
  },
  maxFailureRate: {
    flag: '--max-failure-rate <rate>', parse: share, validate: (value, name) => fraction(name, value), recorded: 'no', group: 'output', commands: BOTH,
    help: 'exit 1 when more than this share of the files failed: 0.01 or 1%',
  },
  failIfP95Ms: {
    flag: '--fail-if-p95 <ms>', parse: positiveNumber, validate: (value, name) => positive(name, value), recorded: 'no', group: 'output', commands: BOTH,
    help: 'exit 1 when the upload latency p95 is over this many ms',
  },
  appendOut: { name: 'append to the results log', default: false, recorded: 'no' },
  graceMs: { name: 'grace period', default: 5_000, validate: (ms, name) => duration(name, ms, 0), recorded: 'no' },
  streamThresholdBytes: { name: 'stream threshold', default: 1024 * 1024, validate: (value, name) => integer(name, value, 0), recorded: 'no' },
} as const satisfies Declarations;

/** Option `key`'s declaration, typed by its value (OPTIONS itself keeps its literal defaults, for DEFAULTS). */
export function declarationOf<K extends OptionKey>(key: K): OptionDeclaration<OptionValue<K>> {
  const declarations: Declarations = OPTIONS;
  return declarations[key];
}

/** The declared keys: OPTIONS satisfies Declarations, so they are exactly OptionKey (Object.keys types them as strings). */
export const OPTION_KEYS = Object.keys(OPTIONS) as OptionKey[];

/** What messages call an option: its long flag, or its name. */
export function nameOf(declaration: { readonly flag: string } | { readonly name: string }): string {
  return 'flag' in declaration ? declaration.flag.split(' ', 1)[0] ?? declaration.flag : declaration.name;
}

/** A value of option `key` (given, or its default), checked by its declaration. */
export function check<K extends OptionKey>(key: K, value: OptionValue<K>): OptionValue<K> {
  const declaration = declarationOf(key);
  return declaration.validate === undefined ? value : declaration.validate(value, nameOf(declaration));
}

type DefaultedKey = { [K in OptionKey]: typeof OPTIONS[K] extends { readonly default: unknown } ? K : never }[OptionKey];
type Defaults = { readonly [K in DefaultedKey]: typeof OPTIONS[K]['default'] };

function defaultsOf(): Defaults {
  const entries = Object.entries(OPTIONS).flatMap(([key, declaration]) => ('default' in declaration ? [[key, declaration.default]] : []));
  // fromEntries types its result loosely; the filter above is Defaults' own condition.
  return Object.fromEntries(entries) as Defaults;
}

/** The library's defaults, from the declarations (the quality, which depends on the format, from the encoder). */
export const DEFAULTS = Object.freeze({ ...defaultsOf(), quality: DEFAULT_QUALITY });
