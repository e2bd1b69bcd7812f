import { resolve } from 'node:path';
import { ImgpushError, UsageError } from '../shared/errors.js';
import { assertInputsExist, Discovery, type Discovered } from './discover.js';
import { DoneFiles } from './done-files.js';
import { FailureLog } from './failure-log.js';
import { FileAccess } from './file-access.js';
import { Filter } from './filter.js';
import { JsonlWriter } from './jsonl-writer.js';
import { LatencyHistogram } from './latency.js';
import { assertLogsWritable } from './log-paths.js';
import { resolveOptions, type PushOptions, type ResolvedOptions } from './options.js';
import { Packer } from './packer.js';
import { Pacer, type PacerEvents } from './pacer.js';
import { Recorder } from './recorder.js';
import { loadReencoder, type Reencoder } from './reencode.js';
import { FileBodyReader } from './request-body.js';
import { bodyFormatFor } from './body-formats.js';
import { newProgress, type FileResult, type Progress } from './results.js';
import { RunControl } from './run-control.js';
import { summarize, type PushSummary } from './summary.js';
import { loadTlsContext, type TlsContext } from './tls-context.js';
import { Transport } from './transport.js';
import { Uploader } from './uploader.js';

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
 * const summary = await push({ inputs: ['./frames'], url: 'http://localhost:8000/v1/predict', concurrency: 20 });
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

const NO_CALLBACK = (): void => {};
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
  readonly #files = new FileAccess();
  readonly #transport: Transport;
  readonly #pacer: Pacer;
  readonly #failures: FailureLog;
  readonly #results: JsonlWriter | undefined;
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
  #fatal: ImgpushError | undefined;
  #wake: (() => void) | undefined;

  constructor(options: ResolvedOptions, hooks: PushHooks, done: DoneFiles, tls: TlsContext | undefined, reencoder: Reencoder | undefined) {
    this.#options = options;
    this.#hooks = hooks;
    this.#onProgress = hooks.onProgress ?? NO_CALLBACK;
    const control = this.#control = new RunControl(options.graceMs);
    const onLogError = (error: ImgpushError): void => this.#fail(error);
    this.#failures = new FailureLog(options.failures, options.settings, onLogError);
    // Resuming into the log being resumed from adds to it: its earlier lines still say what is done.
    const append = options.out !== undefined && options.skipDone.some((log) => resolve(log) === resolve(options.out as string));
    this.#results = options.out === undefined || options.dryRun ? undefined : new JsonlWriter(options.out, onLogError, { append });
    const format = bodyFormatFor(options);
    this.#transport = new Transport({
      format,
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
    control.signal.addEventListener('abort', () => this.#transport.cancel(), { once: true });
    this.#pacer = new Pacer({ ...options, burst: options.concurrency * options.filesPerRequest }, {
      origins: this.#transport.origins, latency: this.#latency, signal: control.signal, stopping: () => control.stopping,
    }, this.#pacerEvents());
    this.#progress.concurrency = this.#pacer.concurrency;
    this.#queueLimit = options.concurrency * options.filesPerRequest + 256;
    control.onStop(() => {
      this.#pacer.gate.close(control.interrupted());
      this.#wake?.();
    });
    this.#recorder = new Recorder({
      failures: this.#failures, results: this.#results, progress: this.#progress, dryRun: options.dryRun, maxFailures: options.maxFailures,
      onResult: hooks.onResult, onWarning: hooks.onWarning, stop: (why) => control.stop(why),
    });
    this.#filter = new Filter({ shard: options.shard, done, dryRun: options.dryRun });
    const bodies = new FileBodyReader(this.#files, format, options.streamThresholdBytes, reencoder);
    const finish = (result: FileResult): void => this.#finish(result);
    this.#uploader = new Uploader({ bodies, transport: this.#transport, pacer: this.#pacer, control, progress: this.#progress, async: options.async }, finish);
    this.#packer = new Packer(options, {
      one: (file) => this.#pacer.schedule(this.#uploader.one, file),
      group: (files) => this.#pacer.schedule(this.#uploader.group, files),
    });
  }

  /** What the pacer tells the user while the run goes. */
  #pacerEvents(): PacerEvents {
    const warn = this.#hooks.onWarning ?? NO_CALLBACK;
    const progress = this.#progress;
    return {
      onDown: (failures, last) => {
        progress.serverDown = true;
        warn(`the server is not answering (${failures} failures in a row, the last: ${last}): uploads pause while imgpush probes it`);
      },
      onUp: (ms) => {
        progress.serverDown = false;
        warn(`the server answers again after ${(ms / 1000).toFixed(1)} s: uploads resume`);
      },
      onGiveUp: (ms) => this.#control.stop(`the server did not answer for ${(ms / 1000).toFixed(0)} s (--max-outage)`),
      onRetry: () => progress.retries++,
      onConcurrency: (limit) => {
        progress.concurrency = limit;
      },
    };
  }

  async run(): Promise<PushSummary> {
    this.#started = performance.now();
    const control = this.#control;
    const unfollow = control.follow(this.#hooks.signal, this.#hooks.cancelSignal);
    try {
      await this.#discoverAndSchedule();
      while (this.#finished < this.#scheduled) await this.#roomInQueue();
    } finally {
      unfollow();
      control.end();
      this.#pacer.gate.close();
      await this.#transport.close();
      this.#failures.close();
      this.#results?.close();
    }
    if (this.#fatal !== undefined) throw this.#fatal;
    const progress = this.#progress;
    // A shard may well be empty when the others are not.
    if (progress.discovered === 0 && progress.otherShards === 0 && !control.stopping) throw this.#nothingFound();
    const { dryRun, maxFailureRate, failIfP95Ms, shard } = this.#options;
    return summarize({
      progress,
      seconds: (performance.now() - this.#started) / 1000,
      latencyMs: this.#latency.summary(),
      dryRun,
      sample: this.#sample,
      failuresFile: this.#failures.count > 0 ? this.#failures.path : null,
      resultsFile: this.#results?.path ?? null,
      stopReason: control.stopping ? control.reason : undefined,
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
        const next = await this.#pullUnlessCancelled(found);
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

  /**
   * The next batch, or undefined once the run is cancelled: a list on stdin
   * may not send its next line for a long time. A fresh wait per pull, not a
   * race against one long-lived promise, whose reactions would keep every
   * batch ever pulled alive.
   */
  #pullUnlessCancelled(found: AsyncGenerator<Discovered[]>): Promise<IteratorResult<Discovered[]> | undefined> {
    const cancelled = this.#control.cancelSignal;
    return new Promise((resolve, reject) => {
      if (cancelled.aborted) {
        resolve(undefined);
        return;
      }
      const onCancel = (): void => resolve(undefined);
      cancelled.addEventListener('abort', onCancel, { once: true });
      found.next().then(resolve, reject).finally(() => cancelled.removeEventListener('abort', onCancel));
    });
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

  /** A log that cannot be written ends the run: a result nobody can find is a lost file. */
  #fail(error: ImgpushError): void {
    this.#fatal ??= error;
    this.#control.stop(`imgpush could not write its log (${error.message})`);
  }

  #nothingFound(): UsageError {
    const { inputs, extensions } = this.#options;
    const where = inputs.length === 0 ? 'the list' : inputs.join(', ');
    const kinds = extensions === null ? 'files' : `files with extensions ${[...extensions].join(', ')}`;
    return new UsageError(`nothing to upload: no ${kinds} found in ${where} (--ext changes the extensions, --hidden includes dot files)`, 'IMGPUSH_NOTHING_FOUND');
  }
}
