import type { ImgpushError } from '../../shared/errors.js';
import { Discovery, pullUnlessAborted, type Discovered } from '../discovery/discover.js';
import { assertInputsExist, nothingFound } from '../discovery/inputs.js';
import { countAhead } from '../discovery/count-ahead.js';
import { DoneFiles } from '../filter/done-files.js';
import { FileAccess } from '../discovery/file-access.js';
import { Filter } from '../filter/filter.js';
import { LatencyHistogram } from '../pacing/latency.js';
import { planLogs, type LogPlan } from '../logs/log-paths.js';
import { resolveOptions } from '../options/resolve.js';
import type { PushOptions, ResolvedOptions } from '../options/types.js';
import { Packer } from '../schedule/packer.js';
import { Pacer, pacerReports } from '../pacing/pacer.js';
import { Recorder } from '../logs/recorder.js';
import { loadReencoder, type Reencoder } from '../bodies/reencode.js';
import { FileBodyReader } from '../bodies/request-body.js';
import { bodyFormatFor } from '../bodies/body-formats.js';
import { newProgress, type FileResult, type Progress } from '../results.js';
import { RunControl } from '../run-control.js';
import { summarize, type PushSummary } from '../logs/summary.js';
import { loadTlsContext, type TlsContext } from '../transport/tls-context.js';
import { loadUndici, needsUndici, type Undici } from '../transport/dispatcher.js';
import { Transport } from '../transport/transport.js';
import { Uploader } from '../attempt/uploader.js';

export interface PushHooks {
  /** Aborting stops the run: nothing new starts, uploads in flight get `graceMs` to finish, the rest go to the failure log. */
  readonly signal?: AbortSignal;
  /** Aborting ends uploads in flight at once and cuts discovery short (a second Ctrl-C). */
  readonly cancelSignal?: AbortSignal;
  /** The run's counters as they move; with it, the tree's total is counted ahead of discovery (`expected`). */
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
 * const summary = await push({ inputs: ['./frames'], url: 'http://localhost:8000/v1/predict', concurrency: 20 });
 * if (summary.failed > 0) console.log(`see ${summary.failuresFile}`);
 */
export async function push(options: PushOptions, hooks: PushHooks = {}): Promise<PushSummary> {
  const resolved = resolveOptions(options);
  await assertInputsExist(resolved.inputs);
  const logs = await planLogs(resolved);
  const tls = await loadTlsContext(resolved);
  const proxied = resolved.proxies.some((proxy) => proxy !== undefined);
  const undici = resolved.urls.some((url, i) => needsUndici(url.origin, resolved.proxies[i] !== undefined)) ? await loadUndici(proxied) : undefined;
  const reencoder = resolved.reencode === undefined ? undefined : await loadReencoder(resolved.reencode);
  const done = await DoneFiles.load(resolved.skipDone, resolved.out);
  for (const warning of [...resolved.warnings, ...logs.warnings, ...done.warnings]) hooks.onWarning?.(warning);
  return new PushRun(resolved, hooks, { done, logs, tls, undici, reencoder }).run();
}

const NO_CALLBACK = (): void => {};

/** What push() prepared before the run: files done before, how the logs open, TLS, the proxy agent, sharp. */
interface Prepared {
  readonly done: DoneFiles;
  readonly logs: LogPlan;
  readonly tls: TlsContext | undefined;
  readonly undici: Undici | undefined;
  readonly reencoder: Reencoder | undefined;
}
/** A dry run lists this many of the files it would send. */
const DRY_RUN_SAMPLE = 10;

/**
 * The wiring of one run's stages: discovery → filter → packer (schedule) →
 * uploader (attempt, through the pacer) → recorder. Files flow forward;
 * this class only pulls discovery while the queue has room and waits for
 * every file to end.
 */
class PushRun {
  readonly #options: ResolvedOptions;
  readonly #hooks: PushHooks;
  readonly #progress = newProgress();
  readonly #onProgress: (progress: Readonly<Progress>) => void;
  readonly #control: RunControl;
  readonly #latency = new LatencyHistogram();
  readonly #files: FileAccess;
  readonly #transport: Transport;
  readonly #pacer: Pacer;
  readonly #recorder: Recorder;
  readonly #filter: Filter;
  readonly #packer: Packer;
  readonly #uploader: Uploader;
  /** With dryRun: the first paths that would be sent. */
  readonly #sample: string[] = [];
  /** Files may wait in the pacer's queue up to this many (plus one batch from discovery); then discovery waits. */
  readonly #queueLimit: number;
  #started = 0;
  #scheduled = 0;
  #finished = 0;
  /** A log that could not be written: the run stops, and says so in its summary. */
  #logError: ImgpushError | undefined;
  /** The run is over (its logs closing): a log error then stops nothing. */
  #ended = false;
  #wake: (() => void) | undefined;

  constructor(options: ResolvedOptions, hooks: PushHooks, { done, logs, tls, undici, reencoder }: Prepared) {
    this.#options = options;
    this.#hooks = hooks;
    this.#onProgress = hooks.onProgress ?? NO_CALLBACK;
    const control = this.#control = new RunControl(options.graceMs);
    this.#files = new FileAccess({ cancel: control.cancelSignal });
    this.#recorder = new Recorder(options, logs, {
      progress: this.#progress, onResult: hooks.onResult, onWarning: hooks.onWarning, stop: (why) => control.stop(why), onLogError: (error) => this.#fail(error),
    });
    const format = bodyFormatFor(options);
    this.#transport = new Transport({ ...options, format, tls, undici, connections: options.concurrency, clientCertificate: options.cert !== undefined, keepResponses: this.#recorder.keepsResults });
    control.signal.addEventListener('abort', () => this.#transport.cancel(), { once: true });
    this.#pacer = new Pacer({ ...options, burst: options.concurrency * options.filesPerRequest }, {
      origins: this.#transport.origins, latency: this.#latency, signal: control.signal, stopping: () => control.stopping,
    }, pacerReports(this.#progress, hooks.onWarning ?? NO_CALLBACK, (why) => control.stop(why)));
    this.#progress.concurrency = this.#pacer.concurrency;
    this.#queueLimit = options.concurrency * options.filesPerRequest + 256;
    control.onStop(() => {
      this.#pacer.gate.close(control.interrupted());
      this.#wake?.();
    });
    this.#filter = new Filter({ shard: options.shard, done, dryRun: options.dryRun, url: options.urls[0] });
    const bodies = new FileBodyReader(this.#files, format, options.streamThresholdBytes, reencoder, options.checksum);
    this.#uploader = new Uploader({ bodies, transport: this.#transport, pacer: this.#pacer, control, progress: this.#progress, async: options.async }, (result) => this.#finish(result));
    this.#packer = new Packer(options, {
      one: (file) => this.#pacer.schedule(this.#uploader.one, file),
      group: (files) => this.#pacer.schedule(this.#uploader.group, files),
    });
  }

  async run(): Promise<PushSummary> {
    this.#started = performance.now();
    const control = this.#control;
    const unfollow = control.follow(this.#hooks.signal, this.#hooks.cancelSignal);
    // The total for the progress, counted ahead of discovery; it ends with discovery. Only for a caller who
    // shows progress: it reads every folder a second time.
    const counting = new AbortController();
    const counted = this.#options.shard === undefined && this.#hooks.onProgress !== undefined ? countAhead(this.#options, this.#progress, counting.signal) : undefined;
    try {
      await this.#discoverAndSchedule();
      counting.abort();
      while (this.#finished < this.#scheduled) await this.#roomInQueue();
    } finally {
      counting.abort();
      // Not awaited: a count stuck on a dead mount must not hold the run's end.
      counted?.catch(NO_CALLBACK);
      unfollow();
      this.#ended = true;
      control.end();
      this.#pacer.gate.close();
      await this.#transport.close();
      this.#recorder.close();
    }
    const progress = this.#progress;
    // A shard may well be empty when the others are not.
    if (progress.discovered === 0 && progress.otherShards === 0 && !control.stopping) throw await nothingFound(this.#options);
    const { dryRun, maxFailureRate, failIfP95Ms, shard } = this.#options;
    return summarize({
      progress,
      seconds: (performance.now() - this.#started) / 1000,
      latencyMs: this.#latency.summary(),
      dryRun,
      sample: this.#sample,
      ...this.#recorder.recorded,
      stopReason: control.stopping ? control.reason : undefined,
      logError: this.#logError?.message,
      gates: { maxFailureRate, failIfP95Ms },
      concurrency: this.#pacer.concurrencySummary,
      origins: this.#transport.origins.all.map((origin) => origin.summary()),
      shard,
    });
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
        const next = await pullUnlessAborted(found, this.#control.cancelSignal);
        if (next === undefined) {
          this.#recorder.recordUnfinished(discovery.unfinished());
          return;
        }
        if (next.done === true) break;
        for (const item of next.value) this.#accept(item);
        this.#onProgress(this.#progress);
        while (!this.#control.stopping && this.#scheduled - this.#finished >= this.#queueLimit) await this.#roomInQueue();
      }
      this.#progress.discoveryDone = true;
    } finally {
      this.#packer.flush();
      // Not awaited: a generator busy in a read settles its return() only when that read does.
      found.return(undefined).catch(NO_CALLBACK);
    }
  }

  #accept(item: Discovered): void {
    const verdict = this.#filter.judge(item);
    const progress = this.#progress;
    if (verdict.kind === 'other-shard') {
      progress.otherShards++;
      return;
    }
    progress.discovered++;
    if (verdict.kind === 'ended') {
      this.#recorder.record(verdict.result);
      return;
    }
    const { file } = verdict;
    progress.bytesDiscovered += file.size;
    if (verdict.kind === 'would-send') {
      if (this.#sample.length < DRY_RUN_SAMPLE) this.#sample.push(file.path);
    } else if (this.#control.stopping) {
      this.#recorder.record(this.#uploader.unsent(file));
    } else {
      this.#scheduled++;
      this.#packer.add(file);
    }
  }

  #finish(result: FileResult): void {
    this.#recorder.record(result);
    this.#finished++;
    this.#wake?.();
    this.#onProgress(this.#progress);
  }

  #roomInQueue(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /**
   * A log that cannot be written stops the run (a result nobody can find is
   * a lost file): uploads in flight finish, the lines go to the fallback, and
   * the summary says why.
   */
  #fail(error: ImgpushError): void {
    this.#logError ??= error;
    if (!this.#ended) this.#control.stop(`imgpush could not write its log (${error.message})`);
  }
}
