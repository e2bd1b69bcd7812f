import { setMaxListeners } from 'node:events';
import { access, constants } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import pLimit, { type LimitFunction } from 'p-limit';
import pRetry, { type Options as RetryOptions } from 'p-retry';
import { ImgpushError, UsageError } from '../shared/errors.js';
import { assertInputsExist, Discovery, type Discovered, type DiscoveredFile, type Unfinished } from './discover.js';
import { HttpStatusError, InterruptedError } from './errors.js';
import { AdaptiveLimit } from './adaptive-limit.js';
import { DONE_BEFORE, DoneFiles } from './done-files.js';
import { FailureLog } from './failure-log.js';
import { FileAccess } from './file-access.js';
import { JsonlWriter } from './jsonl-writer.js';
import { LatencyHistogram, type LatencySummary } from './latency.js';
import { InferenceFraming } from './inference-body.js';
import { MultipartFraming } from './multipart.js';
import { DEFAULTS, resolveOptions, type PushOptions, type ResolvedOptions } from './options.js';
import type { Origin, OriginSummary } from './origins.js';
import { OutageGate } from './outage-gate.js';
import { RateGate } from './rate-gate.js';
import { loadReencoder, type Reencoder } from './reencode.js';
import { FileBodyReader, type BodyFraming } from './request-body.js';
import { inShard, type Shard } from './shard.js';
import { isOutage, isOverload, isRefusedForContent, isRetryable, retryDelayMs } from './retry-policy.js';
import { loadTlsContext, type TlsContext } from './tls-context.js';
import { Transport, type Delivery, type GroupDelivery, type JobState } from './transport.js';

/** Live counters of a run. The same object is passed to every onProgress call: read it, do not keep it. */
export interface Progress {
  /** Files found so far, including those that failed or were skipped before sending. */
  discovered: number;
  bytesDiscovered: number;
  /** True once every input has been walked; until then `discovered` grows. */
  discoveryDone: boolean;
  ok: number;
  failed: number;
  skipped: number;
  /** Bytes of the files uploaded so far. */
  bytesSent: number;
  inFlight: number;
  retries: number;
  /** The server is taken to be down: uploads wait while imgpush probes it. */
  serverDown: boolean;
  /** Uploads allowed in flight now (it moves with --concurrency auto). */
  concurrency: number;
  /** With a shard: files found that belong to the other shards (in no log of this run). */
  otherShards: number;
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
}

export interface PushSummary {
  readonly total: number;
  readonly ok: number;
  readonly failed: number;
  readonly skipped: number;
  /** Bytes of the files uploaded (with dryRun: of the files that would be sent). */
  readonly bytes: number;
  readonly seconds: number;
  readonly filesPerSecond: number;
  readonly bytesPerSecond: number;
  readonly latencyMs: LatencySummary;
  readonly retries: number;
  /** The failure log, when something failed; null otherwise. */
  readonly failuresFile: string | null;
  readonly resultsFile: string | null;
  /** The run was stopped before every file was done: every file not uploaded is in the failure log. */
  readonly interrupted: boolean;
  /** Why it stopped early, in words; null when it ran to its end. */
  readonly stopReason: string | null;
  /** With dryRun: the first files that would be sent. */
  readonly sample?: readonly string[];
  /** Why the run fails its gates (--max-failure-rate, --fail-if-p95), in words; empty when it passes. */
  readonly gateFailures: readonly string[];
  /** Uploads allowed in flight: at the end, and the range over the run (the same three for a fixed concurrency). */
  readonly concurrency: { readonly final: number; readonly min: number; readonly max: number; readonly adaptive: boolean };
  /** Per server (--url), in the order given: files uploaded through it, attempts that failed there, latency. */
  readonly origins: readonly OriginSummary[];
  /** With a shard: which one, and how many files found were left to the other shards (not counted in `total`). */
  readonly shard: (Shard & { readonly otherShards: number }) | null;
}

export interface PushHooks {
  /** Aborting stops the run: nothing new starts, uploads in flight get `graceMs` to finish, the rest go to the failure log. */
  readonly signal?: AbortSignal;
  /** Aborting ends uploads in flight at once and cuts discovery short (a second Ctrl-C). */
  readonly cancelSignal?: AbortSignal;
  readonly onProgress?: (progress: Readonly<Progress>) => void;
  readonly onResult?: (result: FileResult) => void;
  /** Things the user should know that are no file's failure. */
  readonly onWarning?: (message: string) => void;
}

/**
 * Pushes every file the options name to the URL, `concurrency` at a time,
 * and resolves with the run's summary once each file has ended uploaded,
 * failed (in the failure log) or skipped.
 *
 * @example
 * const summary = await push({ inputs: ['./frames'], url: 'http://localhost:8000/predict', concurrency: 20 });
 * if (summary.failed > 0) console.log(`see ${summary.failuresFile}`);
 */
export async function push(options: PushOptions, hooks: PushHooks = {}): Promise<PushSummary> {
  const resolved = resolveOptions(options);
  await assertInputsExist(resolved.inputs);
  await assertLogsWritable(resolved);
  const tls = await loadTlsContext(resolved);
  const reencoder = resolved.reencode === undefined ? undefined : await loadReencoder(resolved.reencode);
  const done = await DoneFiles.load(resolved.skipDone);
  for (const warning of resolved.warnings) hooks.onWarning?.(warning);
  return new PushRun(resolved, hooks, done, tls, reencoder).run();
}

/** A log that cannot be written would be found out only after files were sent: check its folder first. */
async function assertLogsWritable({ out, failures, dryRun }: ResolvedOptions): Promise<void> {
  if (dryRun) return;
  if (out !== undefined && resolve(out) === resolve(failures)) {
    throw new UsageError('--out and --failures must be different files');
  }
  for (const [flag, path] of [['--out', out], ['--failures', failures]] as const) {
    if (path === undefined) continue;
    try {
      await access(dirname(resolve(path)), constants.W_OK);
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be written to';
      throw new UsageError(`${flag} ${path}: its folder ${why}`, 'IMGPUSH_BAD_LOG_PATH');
    }
  }
}

const NO_CALLBACK = (): void => {};
/** Outage failures in a row (no answer, 502, 503, 504) after which the run backs off as one. */
const OUTAGE_THRESHOLD = 5;
const FIRST_PROBE_DELAY_MS = 1_000;
/** A job's first poll comes this soon; each next one twice as late, up to MAX_POLL_MS. */
const FIRST_POLL_MS = 50;
const MAX_POLL_MS = 5_000;
/** --concurrency auto starts here, then finds its way (see AdaptiveLimit). */
const ADAPTIVE_START = 8;
/**
 * A request of several files that is not full goes after this long, as
 * Nagle's algorithm does for small writes: a list read from a pipe may bring
 * its next path late, or never.
 */
const PACKING_WAIT_MS = 10;
/** A dry run lists this many of the files it would send. */
const DRY_RUN_SAMPLE = 10;
const STOPPED = 'the run was stopped';

class PushRun {
  readonly #options: ResolvedOptions;
  readonly #hooks: PushHooks;
  readonly #bodies: FileBodyReader;
  readonly #transport: Transport;
  readonly #limit: LimitFunction;
  readonly #failures: FailureLog;
  readonly #results: JsonlWriter | undefined;
  readonly #latency = new LatencyHistogram();
  readonly #files = new FileAccess();
  readonly #progress: Progress = {
    discovered: 0, bytesDiscovered: 0, discoveryDone: false, ok: 0, failed: 0, skipped: 0, bytesSent: 0, inFlight: 0, retries: 0, serverDown: false, concurrency: 0, otherShards: 0,
  };
  readonly #onProgress: (progress: Readonly<Progress>) => void;
  /** Aborted when uploads in flight must end now: the grace period ran out, or a second stop. */
  readonly #inFlight = new AbortController();
  readonly #retryOptions: RetryOptions;
  readonly #retryOptionsAfterOutage: RetryOptions;
  readonly #gate: OutageGate;
  readonly #rateGate: RateGate | undefined;
  readonly #adaptive: AdaptiveLimit | undefined;
  readonly #done: DoneFiles;
  /** With dryRun: the first paths that would be sent. */
  readonly #sample: string[] = [];
  /** Files may wait in p-limit's queue up to this many (plus one batch from discovery); then discovery waits. */
  readonly #queueLimit: number;
  /** Files packed for the next request of several, and their bytes (--files-per-request). */
  #packing: DiscoveredFile[] = [];
  #packingBytes = 0;
  #packingTimer: NodeJS.Timeout | undefined;
  /** Failures of a server while another was up to take the request (see #unreachable). */
  readonly #failedOver = new WeakSet<object>();
  #started = 0;
  #scheduled = 0;
  #finished = 0;
  #stopping = false;
  #cancelled = false;
  /** Why the run is stopping, in words, for the files it leaves unsent. */
  #stopReason = STOPPED;
  #fatal: ImgpushError | undefined;
  #wake: (() => void) | undefined;
  /** Set while discovery runs: ends its wait for the next batch. */
  #onCancel: () => void = NO_CALLBACK;
  #graceTimer: NodeJS.Timeout | undefined;

  constructor(options: ResolvedOptions, hooks: PushHooks, done: DoneFiles, tls: TlsContext | undefined, reencoder: Reencoder | undefined) {
    this.#options = options;
    this.#hooks = hooks;
    this.#done = done;
    this.#onProgress = hooks.onProgress ?? NO_CALLBACK;
    const onLogError = (error: ImgpushError): void => this.#fail(error);
    this.#failures = new FailureLog(options.failures, options.settings, onLogError);
    // Resuming into the log being resumed from adds to it: its earlier lines still say what is done.
    const append = options.out !== undefined && options.skipDone.some((log) => resolve(log) === resolve(options.out as string));
    this.#results = options.out === undefined || options.dryRun ? undefined : new JsonlWriter(options.out, onLogError, { append });
    this.#adaptive = options.adaptive ? new AdaptiveLimit({ min: 1, max: options.concurrency, initial: Math.min(ADAPTIVE_START, options.concurrency) }) : undefined;
    this.#limit = pLimit(this.#adaptive?.limit ?? options.concurrency);
    this.#progress.concurrency = this.#limit.concurrency;
    this.#queueLimit = options.concurrency * options.filesPerRequest + 256;
    // Every backoff in progress listens to this signal: more than Node's default of 10 is expected.
    setMaxListeners(0, this.#inFlight.signal);
    const framing: BodyFraming = options.body === 'multipart'
      ? new MultipartFraming(options.field, options.form)
      : options.body === 'v2' ? new InferenceFraming(options.inputName ?? DEFAULTS.inputName) : options.jsonTemplate;
    this.#bodies = new FileBodyReader(this.#files, framing, options.streamThresholdBytes, reencoder);
    this.#transport = new Transport({
      urls: options.urls,
      method: options.method,
      headers: options.headers,
      connections: options.concurrency,
      timeoutMs: options.timeoutMs,
      connectTimeoutMs: options.connectTimeoutMs,
      http2: options.http2,
      tls,
      proxies: options.proxies,
      clientCertificate: options.cert !== undefined,
      keepResponses: this.#results !== undefined,
    });
    this.#inFlight.signal.addEventListener('abort', () => this.#transport.cancel(), { once: true });
    const retryOptions: RetryOptions = {
      retries: options.retries,
      // The wait is ours (Retry-After, full jitter, the outage gate): p-retry only counts attempts. Its attempt 1 is the file's second.
      minTimeout: 0,
      shouldRetry: ({ error, attemptNumber }) => this.#waitBeforeRetry(error, attemptNumber + 1),
      shouldConsumeRetry: ({ error }) => this.#consumesRetry(error),
    };
    // The first attempt is made before p-retry is called (see #upload): it used one retry, unless an outage took the blame.
    this.#retryOptions = { ...retryOptions, retries: Math.max(0, options.retries - 1) };
    this.#retryOptionsAfterOutage = retryOptions;
    this.#gate = this.#outageGate();
    this.#rateGate = options.rate === undefined ? undefined : new RateGate(options.rate, options.concurrency * options.filesPerRequest);
  }

  /** The gate that pauses the run while the server is down, telling the user as it goes. */
  #outageGate(): OutageGate {
    const { retryMaxDelayMs, maxOutageMs } = this.#options;
    const warn = this.#hooks.onWarning ?? NO_CALLBACK;
    return new OutageGate({
      threshold: OUTAGE_THRESHOLD,
      firstProbeDelayMs: Math.min(FIRST_PROBE_DELAY_MS, retryMaxDelayMs),
      maxProbeDelayMs: retryMaxDelayMs,
      maxOutageMs,
    }, {
      onDown: (failures, last) => {
        this.#progress.serverDown = true;
        warn(`the server is not answering (${failures} failures in a row, the last: ${last}): uploads pause while imgpush probes it`);
      },
      onUp: (ms) => {
        this.#progress.serverDown = false;
        warn(`the server answers again after ${(ms / 1000).toFixed(1)} s: uploads resume`);
      },
      onGiveUp: (ms) => this.#stop(`the server did not answer for ${(ms / 1000).toFixed(0)} s (--max-outage)`),
    });
  }

  async run(): Promise<PushSummary> {
    this.#started = performance.now();
    const { signal, cancelSignal } = this.#hooks;
    const stop = (): void => this.#stop(STOPPED);
    const cancel = (): void => this.#cancel();
    signal?.addEventListener('abort', stop, { once: true });
    cancelSignal?.addEventListener('abort', cancel, { once: true });
    if (signal?.aborted === true) this.#stop(STOPPED);
    if (cancelSignal?.aborted === true) cancel();
    try {
      await this.#discoverAndSchedule();
      await this.#allFinished();
    } finally {
      signal?.removeEventListener('abort', stop);
      cancelSignal?.removeEventListener('abort', cancel);
      clearTimeout(this.#graceTimer);
      this.#gate.close();
      await this.#transport.close();
      this.#failures.close();
      this.#results?.close();
    }
    if (this.#fatal !== undefined) throw this.#fatal;
    // A shard may well be empty when the others are not.
    if (this.#progress.discovered === 0 && this.#progress.otherShards === 0 && !this.#stopping) throw this.#nothingFound();
    return this.#summary();
  }

  /**
   * Pulls discovery while the queue has room. After a stop, discovery runs
   * on to its end without sending, so that every file not uploaded is in the
   * failure log; a cancel cuts that short too, and what discovery had not
   * finished (folders, globs, inputs) goes to the failure log for retry.
   */
  async #discoverAndSchedule(): Promise<void> {
    const { inputs, listed, extensions, exclude, hidden } = this.#options;
    const discovery = new Discovery({ inputs, listed, extensions, exclude, hidden, files: this.#files });
    const found = discovery.run();
    try {
      for (;;) {
        const next = await this.#pullUnlessCancelled(found);
        if (next === undefined) {
          this.#recordUnfinished(discovery.unfinished());
          return;
        }
        if (next.done === true) break;
        for (const item of next.value) this.#accept(item);
        this.#onProgress(this.#progress);
        while (!this.#stopping && this.#scheduled - this.#finished >= this.#queueLimit) await this.#roomInQueue();
      }
      this.#progress.discoveryDone = true;
    } finally {
      this.#sendPacked();
      // Not awaited: a generator busy in a read settles its return() only when that read does.
      found.return(undefined).catch(NO_CALLBACK);
    }
  }

  /**
   * The next batch, or undefined once the run is cancelled: a list on stdin
   * may not send its next line for a long time. A fresh wait per pull, not a
   * race against one long-lived promise, whose reactions would keep every
   * batch ever pulled alive.
   */
  #pullUnlessCancelled(found: AsyncGenerator<Discovered[]>): Promise<IteratorResult<Discovered[]> | undefined> {
    return new Promise((resolve, reject) => {
      this.#onCancel = () => resolve(undefined);
      if (this.#cancelled) resolve(undefined);
      found.next().then(resolve, reject);
    });
  }

  #accept(item: Discovered): void {
    const progress = this.#progress;
    const { shard } = this.#options;
    if (shard !== undefined && !inShard(item.rel, shard)) {
      progress.otherShards++;
      return;
    }
    progress.discovered++;
    if (item.kind === 'failed') {
      this.#record(failedResult(item, null, item.error, 0, 0));
    } else if (item.kind === 'skipped') {
      this.#record(skippedResult(item, item.code, item.reason));
    } else if (this.#done.has(item.path, item.size, item.mtimeMs)) {
      this.#record(skippedResult(item, DONE_BEFORE, 'uploaded by an earlier run, unchanged since (--skip-done)'));
    } else {
      progress.bytesDiscovered += item.size;
      if (this.#options.dryRun) {
        if (this.#sample.length < DRY_RUN_SAMPLE) this.#sample.push(item.path);
      } else if (this.#stopping) {
        this.#record(failedResult(item, this.#transport.urlFor(item.rel), new InterruptedError(false, this.#stopReason), 0, 0));
      } else {
        this.#schedule(item);
      }
    }
  }

  /** Sends a file on its own, or packs it into the next request of several (--files-per-request). */
  #schedule(file: DiscoveredFile): void {
    this.#scheduled++;
    const { filesPerRequest, maxRequestBytes, streamThresholdBytes } = this.#options;
    // A file too large to be read whole is streamed, on its own.
    if (filesPerRequest === 1 || file.size > streamThresholdBytes) {
      void this.#limit(this.#uploadOne, file);
      return;
    }
    if (this.#packing.length > 0 && this.#packingBytes + file.size > maxRequestBytes) this.#sendPacked();
    this.#packing.push(file);
    this.#packingBytes += file.size;
    if (this.#packing.length === filesPerRequest) this.#sendPacked();
    else if (this.#packing.length === 1) this.#packingTimer = setTimeout(this.#sendPacked, PACKING_WAIT_MS);
  }

  /** Sends the files packed so far, however few: at the end, or when more are long in coming. */
  readonly #sendPacked = (): void => {
    clearTimeout(this.#packingTimer);
    if (this.#packing.length === 0) return;
    const files = this.#packing;
    this.#packing = [];
    this.#packingBytes = 0;
    void this.#limit(this.#uploadGroup, files);
  };

  /** One file, from its first attempt to its line in the logs. Never rejects. */
  readonly #uploadOne = async (file: DiscoveredFile): Promise<void> => {
    if (this.#stopping) {
      this.#finish(failedResult(file, this.#transport.urlFor(file.rel), new InterruptedError(false, this.#stopReason), 0, 0));
      return;
    }
    this.#progress.inFlight++;
    await this.#pace(1);
    const tally: Tally = { attempts: 0, ms: 0 };
    // The job whose result is awaited (--async), for the failure log if the run stops first.
    let job = file.job;
    try {
      // A job an earlier run left pending is fetched; only a job the server no longer knows means sending the file again.
      let delivery = job === undefined ? undefined : await this.#awaitJob(job, file.size);
      if (delivery === undefined) {
        delivery = await this.#withRetries(() => this.#bodies.read(file.path, file.rel), (origin, body) => this.#transport.send(origin, body, file.rel), tally);
        if (this.#options.async) {
          job = delivery.job;
          if (job === undefined) throw new ImgpushError('IMGPUSH_NOT_A_JOB', `--async: the server answered ${delivery.status} without a Location header; is --url a jobs endpoint (such as /v1/jobs)?`);
          delivery = await this.#awaitJob(job, delivery.bytes);
          if (delivery === undefined) throw new ImgpushError('IMGPUSH_JOB_GONE', `the server no longer knows job ${job} (expired?)`);
        }
      }
      if (tally.origin !== undefined) tally.origin.ok++;
      this.#finish(uploadedResult(file, this.#transport.urlFor(file.rel, tally.origin), delivery.status, delivery.bytes, delivery.response, tally));
    } catch (error) {
      const failed = failedResult(file, this.#transport.urlFor(file.rel, tally.origin), error, tally.attempts, tally.ms);
      this.#finish(job === undefined || error instanceof ImgpushError && error.code === 'IMGPUSH_JOB_FAILED' ? failed : { ...failed, job });
    } finally {
      this.#progress.inFlight--;
    }
  };

  /**
   * Several files in one request, each to its own line in the logs. When
   * the server refuses the request for what it holds (400, 413, 415, 422),
   * its files are sent again one by one, so that one bad file does not take
   * the others down with it, now or at every retry. Never rejects.
   */
  readonly #uploadGroup = async (files: DiscoveredFile[]): Promise<void> => {
    const first = files[0] as DiscoveredFile;
    if (this.#stopping) {
      const url = this.#transport.urlFor(first.rel);
      for (const file of files) this.#finish(failedResult(file, url, new InterruptedError(false, this.#stopReason), 0, 0));
      return;
    }
    this.#progress.inFlight += files.length;
    await this.#pace(files.length);
    const tally: Tally = { attempts: 0, ms: 0 };
    let delivery: GroupDelivery;
    try {
      const paths = files.map((file) => file.path);
      delivery = await this.#withRetries(() => this.#bodies.readGroup(paths), (origin, body) => this.#transport.sendGroup(origin, body, first.rel), tally);
    } catch (error) {
      this.#progress.inFlight -= files.length;
      if (files.length > 1 && isRefusedForContent(error) && !this.#stopping) {
        for (const file of files) await this.#uploadOne(file);
        return;
      }
      const at = this.#transport.urlFor(first.rel, tally.origin);
      for (const file of files) this.#finish(failedResult(file, at, error, tally.attempts, tally.ms));
      return;
    }
    this.#progress.inFlight -= files.length;
    const at = this.#transport.urlFor(first.rel, tally.origin);
    files.forEach((file, index) => {
      const outcome = delivery.files[index];
      if (outcome === undefined || outcome instanceof ImgpushError) {
        this.#finish(failedResult(file, at, outcome, tally.attempts, 0));
      } else {
        if (tally.origin !== undefined) tally.origin.ok++;
        this.#finish(uploadedResult(file, at, delivery.status ?? 0, outcome.bytes, outcome.response, tally));
      }
    });
  };

  /** Waits for the rate limit's slots of `files` files (--rate). */
  async #pace(files: number): Promise<void> {
    if (this.#rateGate === undefined) return;
    let wait = 0;
    for (let i = 0; i < files; i++) wait = this.#rateGate.book();
    if (wait > 0) await sleep(wait, this.#inFlight.signal);
  }

  /**
   * Reads the body and sends it, and does both again while the error is
   * retryable and retries are left. Each attempt waits at the outage gate,
   * and tells the latency histogram and the adaptive limit how it went;
   * `tally` counts them.
   */
  async #withRetries<B, T extends { readonly status: number | null }>(read: () => Promise<B>, send: (origin: Origin, body: B) => Promise<T>, tally: Tally): Promise<T> {
    const origins = this.#transport.origins;
    const attempt = async (): Promise<T> => {
      const closed = this.#gate.admit();
      if (closed !== undefined) await closed;
      tally.attempts++;
      if (this.#inFlight.signal.aborted) throw new InterruptedError(false, this.#stopReason);
      const body = await read();
      const origin = origins.pick();
      tally.origin = origin;
      origin.inFlight++;
      const epoch = this.#adaptive?.epoch ?? 0;
      // The clock starts once the body is ready: latency is the network's and the server's, not the disk's or sharp's.
      const started = performance.now();
      let answered = false;
      let ok = false;
      let overloaded = false;
      try {
        const delivery = await send(origin, body);
        // A request of files none of which could be read was never sent.
        answered = ok = delivery.status !== null;
        if (answered) this.#gate.answered();
        return delivery;
      } catch (error) {
        answered = error instanceof HttpStatusError;
        if (isOutage(error)) this.#unreachable(origin, error as Error);
        else if (answered) this.#gate.answered();
        overloaded = isOverload(error);
        throw error;
      } finally {
        origin.inFlight--;
        tally.ms = performance.now() - started;
        if (answered) {
          this.#latency.record(tally.ms);
          origins.answered(origin, tally.ms, ok);
        }
        if (answered || overloaded) this.#adapt(tally.ms, overloaded, epoch);
      }
    };
    try {
      return await attempt();
    } catch (error) {
      // Most files succeed at once: p-retry is set up only for those that did not.
      const consumed = this.#consumesRetry(error);
      if (!(await this.#waitBeforeRetry(error, 1))) throw error;
      return await pRetry(attempt, consumed ? this.#retryOptions : this.#retryOptionsAfterOutage);
    }
  }

  /**
   * Polls a job until it ends, with a doubling wait (or the server's
   * Retry-After); undefined when the server no longer knows it. A stop
   * leaves it pending: the caller records where it is.
   */
  async #awaitJob(job: string, bytes: number): Promise<Delivery | undefined> {
    let wait = FIRST_POLL_MS;
    let failures = 0;
    for (;;) {
      if (this.#inFlight.signal.aborted) {
        throw new ImgpushError('IMGPUSH_INTERRUPTED', `${this.#stopReason} while its job was pending on the server: imgpush retry fetches the result`);
      }
      let state: JobState;
      try {
        state = await this.#transport.poll(job);
        failures = 0;
      } catch (error) {
        if (!isRetryable(error) || ++failures > this.#options.retries) throw error;
        await sleep(retryDelayMs(error, failures, { minDelayMs: this.#options.retryMinDelayMs, maxDelayMs: this.#options.retryMaxDelayMs }), this.#inFlight.signal);
        continue;
      }
      if (state.status === 'gone') return undefined;
      if (state.status === 'done') return { status: 200, response: state.result, bytes, job };
      if (state.status === 'failed') {
        throw new ImgpushError('IMGPUSH_JOB_FAILED', `the job failed on the server: ${state.error?.code ?? 'error'}: ${state.error?.message ?? 'no reason given'}`);
      }
      await sleep(state.retryAfterMs ?? wait, this.#inFlight.signal);
      wait = Math.min(wait * 2, MAX_POLL_MS);
    }
  }

  /**
   * Before retry number `retry` of a file: only retryable errors, never once
   * the run is stopping, never with --retries 0; waits the backoff, or for an
   * outage, nothing: the gate makes the attempt wait for the server.
   */
  async #waitBeforeRetry(error: unknown, retry: number): Promise<boolean> {
    if (this.#options.retries === 0 || this.#stopping || !isRetryable(error)) return false;
    this.#progress.retries++;
    if (!this.#consumesRetry(error)) return true;
    const delay = retryDelayMs(error, retry, { minDelayMs: this.#options.retryMinDelayMs, maxDelayMs: this.#options.retryMaxDelayMs });
    await sleep(delay, this.#inFlight.signal);
    return !this.#inFlight.signal.aborted;
  }

  /** Tells the adaptive limit (with --concurrency auto) how a request went, and applies the limit it chooses. */
  #adapt(ms: number, overloaded: boolean, epoch: number): void {
    if (this.#adaptive === undefined) return;
    const limit = this.#adaptive.sample(ms, overloaded, epoch);
    if (limit !== this.#limit.concurrency) {
      this.#limit.concurrency = limit;
      this.#progress.concurrency = limit;
    }
  }

  /**
   * A server not there: with several, another takes the request while this
   * one is left alone; only when none can does the run's outage gate hear of it.
   */
  #unreachable(origin: Origin, error: Error): void {
    if (this.#transport.origins.unreachable(origin)) this.#failedOver.add(error);
    else this.#gate.failedToReach(error.message);
  }

  /**
   * A failure while the server is down is the outage's, not the file's, and
   * one that another server can make good is the server's: neither uses up
   * the file's retries.
   */
  #consumesRetry(error: unknown): boolean {
    if (typeof error === 'object' && error !== null && this.#failedOver.has(error)) return false;
    return !(this.#gate.down && isOutage(error));
  }

  #finish(result: FileResult): void {
    this.#record(result);
    this.#finished++;
    this.#wake?.();
    this.#onProgress(this.#progress);
  }

  #record(result: FileResult): void {
    const progress = this.#progress;
    if (result.ok) {
      progress.ok++;
      progress.bytesSent += result.bytes;
    } else if (result.skipped !== undefined) {
      progress.skipped++;
    } else {
      progress.failed++;
      const { maxFailures } = this.#options;
      if (maxFailures !== undefined && progress.failed >= maxFailures) this.#stop(`the run stopped after ${maxFailures} files failed (--max-failures)`);
      if (!this.#options.dryRun) this.#failures.add({
        path: result.path,
        rel: result.rel,
        url: result.url,
        status: result.status,
        code: result.error?.code ?? 'IMGPUSH_INTERNAL',
        message: result.error?.message ?? '',
        attempts: result.attempts,
        time: new Date().toISOString(),
        ...(result.job === undefined ? {} : { job: result.job }),
      });
    }
    this.#results?.write(result);
    this.#hooks.onResult?.(result);
  }

  #recordUnfinished({ paths, listCutShort }: Unfinished): void {
    const error = new ImgpushError('IMGPUSH_NOT_LISTED', 'the run was stopped before this was walked to its end; imgpush retry walks it again');
    for (const { path, rel = '' } of paths) {
      this.#progress.discovered++;
      this.#record(failedResult({ path, rel }, null, error, 0, 0));
    }
    if (listCutShort) this.#hooks.onWarning?.('the run was stopped while the list of paths was still being read: paths after that point are in no log');
  }

  #roomInQueue(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }

  async #allFinished(): Promise<void> {
    while (this.#finished < this.#scheduled) await this.#roomInQueue();
  }

  #stop(why: string): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#stopReason = why;
    this.#gate.close(new InterruptedError(false, why));
    this.#wake?.();
    this.#graceTimer = setTimeout(() => this.#inFlight.abort(new InterruptedError(true)), this.#options.graceMs);
  }

  /** Ends uploads in flight now and cuts discovery short (a second Ctrl-C). */
  #cancel(): void {
    this.#stop(STOPPED);
    this.#cancelled = true;
    this.#inFlight.abort(new InterruptedError(true));
    this.#onCancel();
  }

  /** A log that cannot be written ends the run: a result nobody can find is a lost file. */
  #fail(error: ImgpushError): void {
    this.#fatal ??= error;
    this.#stop(`imgpush could not write its log (${error.message})`);
  }

  #nothingFound(): UsageError {
    const { inputs, extensions } = this.#options;
    const where = inputs.length === 0 ? 'the list' : inputs.join(', ');
    const kinds = extensions === null ? 'files' : `files with extensions ${[...extensions].join(', ')}`;
    return new UsageError(`nothing to upload: no ${kinds} found in ${where} (--ext changes the extensions, --hidden includes dot files)`, 'IMGPUSH_NOTHING_FOUND');
  }

  /** The reasons the run fails the gates a CI job set, in words. */
  #gateFailures(latencyP95: number): string[] {
    const { maxFailureRate, failIfP95Ms } = this.#options;
    const { failed, discovered, skipped } = this.#progress;
    const rate = failed / Math.max(1, discovered - skipped);
    const reasons: string[] = [];
    if (maxFailureRate !== undefined && rate > maxFailureRate) {
      reasons.push(`${(rate * 100).toFixed(1)} % of the files failed, over --max-failure-rate ${(maxFailureRate * 100).toFixed(1)} %`);
    }
    if (failIfP95Ms !== undefined && latencyP95 > failIfP95Ms) {
      reasons.push(`upload latency p95 is ${latencyP95} ms, over --fail-if-p95 ${failIfP95Ms} ms`);
    }
    return reasons;
  }

  #summary(): PushSummary {
    const progress = this.#progress;
    const seconds = (performance.now() - this.#started) / 1000;
    const latencyMs = this.#latency.summary();
    return {
      total: progress.discovered,
      ok: progress.ok,
      failed: progress.failed,
      skipped: progress.skipped,
      bytes: this.#options.dryRun ? progress.bytesDiscovered : progress.bytesSent,
      seconds: round(seconds, 3),
      filesPerSecond: round(progress.ok / seconds, 1),
      bytesPerSecond: Math.round(progress.bytesSent / seconds),
      latencyMs,
      retries: progress.retries,
      failuresFile: this.#failures.count > 0 ? this.#failures.path : null,
      resultsFile: this.#results?.path ?? null,
      interrupted: this.#stopping,
      stopReason: this.#stopping ? this.#stopReason : null,
      ...(this.#options.dryRun ? { sample: this.#sample } : {}),
      gateFailures: this.#gateFailures(latencyMs.p95),
      origins: this.#transport.origins.all.map((origin) => origin.summary()),
      shard: this.#options.shard === undefined ? null : { ...this.#options.shard, otherShards: progress.otherShards },
      concurrency: { final: this.#limit.concurrency, ...(this.#adaptive?.range ?? { min: this.#limit.concurrency, max: this.#limit.concurrency }), adaptive: this.#adaptive !== undefined },
    };
  }
}

/** Attempts made for a request so far, and how long the last one took. */
interface Tally {
  attempts: number;
  ms: number;
  /** Where the last attempt went. */
  origin?: Origin;
}

function uploadedResult(file: DiscoveredFile, url: string, status: number, bytes: number, response: unknown, { attempts, ms }: Tally): FileResult {
  return { path: file.path, rel: file.rel, size: file.size, mtimeMs: file.mtimeMs, url, ok: true, status, bytes, ms: roundMs(ms), attempts, response };
}

/** The result of a file that failed, from whatever its last attempt threw. */
function failedResult(file: { path: string; rel: string; size?: number; mtimeMs?: number }, url: string | null, thrown: unknown, attempts: number, ms: number): FileResult {
  const error = thrown instanceof ImgpushError
    ? thrown
    : new ImgpushError('IMGPUSH_INTERNAL', `unexpected error: ${thrown instanceof Error ? thrown.message : String(thrown)}`, { cause: thrown });
  const answer = error instanceof HttpStatusError ? error : undefined;
  return {
    path: file.path, rel: file.rel, size: file.size, mtimeMs: file.mtimeMs, url, ok: false, status: answer?.status ?? null, bytes: 0, ms: roundMs(ms), attempts, response: answer?.response, error: { code: error.code, message: error.message },
  };
}

function skippedResult(file: { path: string; rel: string; size?: number; mtimeMs?: number }, code: string, reason: string): FileResult {
  return { path: file.path, rel: file.rel, size: file.size, mtimeMs: file.mtimeMs, url: null, ok: false, status: null, bytes: 0, ms: 0, attempts: 0, skipped: { code, reason } };
}

function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Number.isFinite(value) ? Math.round(value * scale) / scale : 0;
}

/** Waits `ms`, or less if `signal` aborts first (then it resolves: the caller checks the signal). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
