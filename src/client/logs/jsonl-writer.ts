import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { ImgpushError } from '../../shared/errors.js';

/**
 * Appends JSON lines to a file as they come. Lines that arrive in one turn
 * of the event loop go out in one write of whole lines, so a process killed
 * at any moment leaves a file that is valid JSONL up to its last line.
 * The file is created (or truncated, unless appending) on the first line, not before.
 */
export class JsonlWriter {
  readonly path: string;
  readonly #onError: (error: ImgpushError) => void;
  readonly #flags: 'a' | 'w';
  #fd: number | undefined;
  #pending: string[] = [];
  #scheduled = false;
  #failed = false;

  /**
   * `onError` hears of a failed write once; the lines after it are dropped,
   * so the caller must stop the run. `append` keeps what the file holds.
   */
  constructor(path: string, onError: (error: ImgpushError) => void, { append = false } = {}) {
    this.path = path;
    this.#onError = onError;
    this.#flags = append ? 'a' : 'w';
  }

  get opened(): boolean {
    return this.#fd !== undefined;
  }

  write(record: unknown): void {
    if (this.#failed) return;
    this.#pending.push(JSON.stringify(record));
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flushSoon);
    }
  }

  /** Writes what is pending now; for signal handlers and the end of a run. */
  flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0 || this.#failed) return;
    const text = `${this.#pending.join('\n')}\n`;
    this.#pending = [];
    try {
      this.#fd ??= openSync(this.path, this.#flags);
      writeSync(this.#fd, text);
    } catch (error) {
      this.#failed = true;
      const { code, message } = error as NodeJS.ErrnoException;
      this.#onError(new ImgpushError('IMGPUSH_LOG_WRITE', `cannot write ${this.path}: ${code ?? message}`, { cause: error }));
    }
  }

  /** Flushes, syncs to disk and closes. */
  close(): void {
    this.flush();
    if (this.#fd === undefined) return;
    try {
      fsyncSync(this.#fd);
    } finally {
      closeSync(this.#fd);
      this.#fd = undefined;
    }
  }

  readonly #flushSoon = (): void => {
    if (this.#scheduled) this.flush();
  };
}
