import { ImgpushError, UsageError } from '../../shared/errors.js';
import type { Unfinished } from '../discovery/discover.js';
import { resolve } from 'node:path';
import { DONE_BEFORE } from '../filter/done-files.js';
import { FailureLog } from './failure-log.js';
import { FailureReasons } from './failure-reasons.js';
import type { SummaryParts } from './summary.js';
import { JsonlWriter, STDOUT } from './jsonl-writer.js';
import type { LogPlan } from './log-paths.js';
import { Unlogged } from './unlogged.js';
import type { ResolvedOptions } from '../options/types.js';
import { unsentResult, type FileResult, type Progress } from '../results.js';

export interface RecorderHooks {
  readonly progress: Progress;
  readonly onResult: ((result: FileResult) => void) | undefined;
  readonly onWarning: ((message: string) => void) | undefined;
  /** Called when the run must stop, with why (--max-failures). */
  readonly stop: (why: string) => void;
  /** A log could not be written. */
  readonly onLogError: (error: ImgpushError) => void;
}

type RecorderSettings = Pick<ResolvedOptions, 'failures' | 'out' | 'dryRun' | 'maxFailures' | 'settings'>;

/**
 * The record stage: every file's result goes to the counters, to the
 * failure log when it failed, to the results log when there is one, and to
 * the caller's onResult. Every file found ends here exactly once.
 */
export class Recorder {
  readonly #settings: RecorderSettings;
  readonly #hooks: RecorderHooks;
  readonly #failures: FailureLog;
  /** The results log (-o); undefined without one, and with --dry-run. */
  readonly #results: JsonlWriter | undefined;
  /** Failures by reason, for the summary. */
  readonly #reasons = new FailureReasons();
  /** What a log could not take. */
  readonly #unlogged = new Unlogged();
  /** The results log already says which files were done before: no line again for each. */
  readonly #resumed: boolean;

  /** Opens the results log now: one that cannot be opened is a UsageError before anything is sent. */
  constructor(settings: RecorderSettings, plan: LogPlan, hooks: RecorderHooks) {
    this.#settings = settings;
    this.#hooks = hooks;
    this.#resumed = plan.resumed;
    const { failures, out, dryRun } = settings;
    const spill = this.#unlogged.add;
    const results = out === undefined || out === STDOUT ? null : resolve(out);
    this.#failures = new FailureLog(failures, { settings: settings.settings, results, mode: plan.failures, onError: hooks.onLogError, spill });
    if (out === undefined || dryRun) return;
    this.#results = new JsonlWriter(out, { mode: plan.results, onError: hooks.onLogError, spill });
    try {
      this.#results.open();
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      throw new UsageError('IMGPUSH_BAD_LOG_PATH', `--out ${out}: cannot be written (${code ?? message})`);
    }
  }

  /** Whether every answer is kept, for the results log. */
  get keepsResults(): boolean {
    return this.#results !== undefined;
  }

  /** What the summary says of the logs (the failure log only when something failed) and of the failures, by reason. */
  get recorded(): Pick<SummaryParts, 'failuresFile' | 'resultsFile' | 'unloggedFile' | 'failureReasons'> {
    return { failuresFile: this.#failures.count > 0 ? this.#failures.path : null, resultsFile: this.#results?.path ?? null, unloggedFile: this.#unlogged.path, failureReasons: this.#reasons.list() };
  }

  close(): void {
    this.#failures.close();
    this.#results?.close();
    this.#unlogged.close();
  }

  record(result: FileResult): void {
    const { dryRun, maxFailures } = this.#settings;
    const { progress, onResult, stop } = this.#hooks;
    const failures = this.#failures;
    const results = this.#results;
    if (result.ok) {
      progress.ok++;
      progress.bytesSent += result.bytes;
    } else if (result.skipped !== undefined) {
      progress.skipped++;
    } else {
      progress.failed++;
      this.#reasons.add(result);
      if (maxFailures !== undefined && progress.failed >= maxFailures) stop(`the run stopped after ${maxFailures} files failed (--max-failures)`);
      if (!dryRun) failures.add({
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
    if (!(this.#resumed && result.skipped?.code === DONE_BEFORE)) results?.write(result);
    onResult?.(result);
  }

  /** What a cancel kept discovery from walking: each a failure that imgpush retry walks again. */
  recordUnfinished({ paths, listCutShort }: Unfinished): void {
    const error = new ImgpushError('IMGPUSH_NOT_LISTED', 'the run was stopped before this was walked to its end; imgpush retry walks it again');
    for (const { path, rel = '' } of paths) {
      this.#hooks.progress.discovered++;
      this.record(unsentResult({ path, rel }, error, null));
    }
    if (listCutShort) this.#hooks.onWarning?.('the run was stopped while the list of paths was still being read: paths after that point are in no log');
  }
}
