import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../../shared/errors.js';

/** The skip code of a file that an earlier run uploaded: it counts as done for the next resume too. */
export const DONE_BEFORE = 'IMGPUSH_DONE_BEFORE';

interface ResultLine {
  readonly path?: unknown;
  readonly size?: unknown;
  readonly mtimeMs?: unknown;
  readonly ok?: unknown;
  readonly skipped?: { readonly code?: unknown };
}

/** join() builds one flat string; a template literal builds a rope that keeps its parts: 123 vs 266 bytes a key, measured. */
function keyOf(path: string, size: number, mtimeMs: number): string {
  return [path, size, mtimeMs].join('\0');
}

/**
 * The files earlier runs uploaded, from their results logs (`--skip-done`):
 * a file is done when its last line says so and it still has the size and
 * modification time it had then. Kept exact (a path per entry, about 125
 * bytes each with paths of 50 characters): a hash could skip a file that was never sent.
 */
export class DoneFiles {
  readonly #keys = new Set<string>();
  readonly #warnings: string[] = [];

  /** What the user should hear: a log named that is not there yet. */
  get warnings(): readonly string[] {
    return this.#warnings;
  }

  get size(): number {
    return this.#keys.size;
  }

  has(path: string, size: number, mtimeMs: number): boolean {
    return this.#keys.has(keyOf(path, size, mtimeMs));
  }

  /**
   * Reads results logs in order: a later line about a file wins over an
   * earlier one. A log not there yet holds nothing done (the first run of
   * `--skip-done X -o X`); a file that is not a results log is a UsageError.
   */
  static async load(logs: readonly string[], out?: string): Promise<DoneFiles> {
    const done = new DoneFiles();
    for (const log of logs) await done.#read(log, out !== undefined && resolve(out) === resolve(log));
    return done;
  }

  async #read(log: string, isOut: boolean): Promise<void> {
    const { createInterface } = process.getBuiltinModule('node:readline');
    const stream = createReadStream(log);
    let checked = false;
    let lines = 0;
    try {
      for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
        if (line.trim() !== '') lines++;
        const entry = parse(line);
        // The first line that parses says what the file is; a list of paths or a failure log is no evidence of anything done.
        if (!checked && entry !== undefined) {
          if (!isResultLine(entry)) throw notAResultsLog(log, 'its lines are not results (imgpush -o writes them)');
          checked = true;
        }
        if (typeof entry?.path !== 'string' || typeof entry.size !== 'number' || typeof entry.mtimeMs !== 'number') continue;
        const key = keyOf(entry.path, entry.size, entry.mtimeMs);
        if (entry.ok === true || entry.skipped?.code === DONE_BEFORE) this.#keys.add(key);
        else this.#keys.delete(key);
      }
    } catch (error) {
      if (error instanceof UsageError) throw error;
      const { code } = error as NodeJS.ErrnoException;
      if (code === 'ENOENT') {
        if (!isOut) this.#warnings.push(`--skip-done ${log} does not exist (yet): no file counts as done by it`);
        return;
      }
      throw notAResultsLog(log, `cannot be read (${code})`);
    }
    if (!checked && lines > 0) throw notAResultsLog(log, 'no line of it is JSON');
  }
}

function notAResultsLog(log: string, why: string): UsageError {
  return new UsageError('IMGPUSH_BAD_RESULTS_LOG', `--skip-done ${log}: ${why}`);
}

/** A line of a results log: the file's path, and whether it went. */
function isResultLine(entry: ResultLine): boolean {
  return typeof entry === 'object' && entry !== null && typeof entry.path === 'string' && typeof entry.ok === 'boolean';
}

/** A line cut short by a killed process is no evidence of anything: skip it. */
function parse(line: string): ResultLine | undefined {
  try {
    return JSON.parse(line) as ResultLine;
  } catch {
    return undefined;
  }
}
