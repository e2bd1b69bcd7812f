import type { ListedFile } from '../discovery/discover.js';
import type { JsonTemplate } from '../bodies/json-template.js';
import type { Environment, Proxy } from '../transport/proxy.js';
import type { ReencodeSettings, TargetFormat } from '../bodies/reencode.js';
import type { Shard } from '../filter/shard.js';
import type { UrlTemplate } from '../transport/url-template.js';

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
  /** How long a request may take in all, its answer included (curl's --max-time); default none. */
  readonly maxTimeMs?: number;
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
  /** Results log (JSONL), one line per file; `-` for stdout. */
  readonly out?: string;
  /** Append to `out` instead of truncating it (imgpush retry does); default false. */
  readonly appendOut?: boolean;
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
  /** Send each body's SHA-256 as `Content-Digest: sha-256=:…:` (RFC 9530) and log it as `sha256`; default false. */
  readonly checksum?: boolean;
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
export interface CommonSettings {
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
  readonly maxTimeMs: number | undefined;
  readonly connectTimeoutMs: number;
  readonly retries: number;
  readonly retryMinDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly maxOutageMs: number;
  readonly async: boolean;
  readonly checksum: boolean;
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
  readonly appendOut: boolean;
  readonly failures: string;
  /** `failures` was given, not the default: it is written where named, and refused if it holds an earlier run's failures. */
  readonly failuresGiven: boolean;
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
