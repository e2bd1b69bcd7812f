import { basename } from 'node:path';
import type { FileResult } from '../results.js';

/** What stands for the file's own name in a reason shared by many files. */
const THE_FILE = '<file>';

/**
 * A result's reason, the same for every file that failed alike: the file's
 * own name, which many servers put in their messages (imgpush serve does),
 * stands as <file>.
 */
export function reasonOf(result: FileResult): { readonly code: string; readonly message: string } {
  const code = result.skipped?.code ?? result.error?.code ?? 'IMGPUSH_INTERNAL';
  const message = result.skipped?.reason ?? result.error?.message ?? '';
  const name = basename(result.rel === '' ? result.path : result.rel);
  return { code, message: name === '' ? message : message.split(name).join(THE_FILE) };
}

/** One reason files failed for, and how many did. */
export interface FailureReason {
  readonly code: string;
  readonly message: string;
  readonly count: number;
}

/** Distinct reasons kept at most: beyond them, failures are counted under one "other reasons" line. */
const MAX_REASONS = 50;
/** The code of the line that counts the failures beyond MAX_REASONS: no code of a file's. */
const OTHER = 'various';

/**
 * Failures counted by reason (code and message, the file's name left out:
 * see reasonOf), so that a summary says "301 × 404 Not Found" once instead
 * of a line per file; memory is bounded by MAX_REASONS.
 */
export class FailureReasons {
  readonly #counts = new Map<string, { code: string; message: string; count: number }>();
  #other = 0;

  add(result: FileResult): void {
    if (result.ok || result.skipped !== undefined) return;
    const { code, message } = reasonOf(result);
    const key = `${code}\n${message}`;
    const known = this.#counts.get(key);
    if (known !== undefined) known.count++;
    else if (this.#counts.size < MAX_REASONS) this.#counts.set(key, { code, message, count: 1 });
    else this.#other++;
  }

  /** The reasons, most files first. */
  list(): FailureReason[] {
    const reasons: FailureReason[] = [...this.#counts.values()].sort((a, b) => b.count - a.count);
    if (this.#other > 0) reasons.push({ code: OTHER, message: 'other reasons (the failure log has each)', count: this.#other });
    return reasons;
  }
}
