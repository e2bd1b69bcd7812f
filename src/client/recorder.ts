import { ImgpushError } from '../shared/errors.js';
import type { Unfinished } from './discover.js';
import type { FailureLog } from './failure-log.js';
import type { JsonlWriter } from './jsonl-writer.js';
import { unsentResult, type FileResult, type Progress } from './results.js';

export interface RecorderParts {
  readonly failures: FailureLog;
  /** The results log (-o); undefined without one. */
  readonly results: JsonlWriter | undefined;
  readonly progress: Progress;
  /** With --dry-run nothing is written to the failure log. */
  readonly dryRun: boolean;
  /** --max-failures: the run stops once this many files failed. */
  readonly maxFailures: number | undefined;
  readonly onResult: ((result: FileResult) => void) | undefined;
  readonly onWarning: ((message: string) => void) | undefined;
  /** Called when the run must stop, with why. */
  readonly stop: (why: string) => void;
}

/**
 * The record stage: every file's result goes to the counters, to the
 * failure log when it failed, to the results log when there is one, and to
 * the caller's onResult. Every file found ends here exactly once.
 */
export class Recorder {
  readonly #parts: RecorderParts;

  constructor(parts: RecorderParts) {
    this.#parts = parts;
  }

  record(result: FileResult): void {
    const { progress, failures, results, dryRun, maxFailures, onResult, stop } = this.#parts;
    if (result.ok) {
      progress.ok++;
      progress.bytesSent += result.bytes;
    } else if (result.skipped !== undefined) {
      progress.skipped++;
    } else {
      progress.failed++;
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
    results?.write(result);
    onResult?.(result);
  }

  /** What a cancel kept discovery from walking: each a failure that imgpush retry walks again. */
  recordUnfinished({ paths, listCutShort }: Unfinished): void {
    const error = new ImgpushError('IMGPUSH_NOT_LISTED', 'the run was stopped before this was walked to its end; imgpush retry walks it again');
    for (const { path, rel = '' } of paths) {
      this.#parts.progress.discovered++;
      this.record(unsentResult({ path, rel }, error, null));
    }
    if (listCutShort) this.#parts.onWarning?.('the run was stopped while the list of paths was still being read: paths after that point are in no log');
  }
}
