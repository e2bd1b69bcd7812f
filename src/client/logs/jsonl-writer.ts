import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { ImgpushError } from '../../shared/errors.js';

/** The results log's name for stdout (`-o -`). */
export const STDOUT = '-';

/** How a log is opened: truncated, appended to, or created anew (never over an existing file: the next free name). */
export type OpenMode = 'truncate' | 'append' | 'exclusive';

export interface WriterOptions {
  readonly mode?: OpenMode;
  /** Hears of the first failed write; the writer then sends its lines to `spill`. */
  readonly onError: (error: ImgpushError) => void;
  /** Where lines go that this log could not take: whole lines, each once. */
  readonly spill?: (lines: readonly string[]) => void;
}

/** `name.jsonl`, then `name-2.jsonl`, `name-3.jsonl`… */
function nthName(path: string, n: number): string {
  if (n === 1) return path;
  const ext = extname(path);
  return join(dirname(path), `${basename(path, ext)}-${n}${ext}`);
}

/** Enough free names for any number of runs at once in one folder. */
const MAX_NAMES = 10_000;

/**
 * Appends JSON lines to a file as they come. Lines that arrive in one turn
 * of the event loop go out in one write of whole lines; a write that fails
 * part-way (a full disk) is cut back to the last whole line, and the lines
 * it held, and every later one, go to `spill`: the file is valid JSONL up to
 * its last line and no line is lost. The file is opened by `open()` or on
 * the first line. `-` is stdout.
 */
export class JsonlWriter {
  #path: string;
  readonly #mode: OpenMode;
  readonly #onError: (error: ImgpushError) => void;
  readonly #spill: ((lines: readonly string[]) => void) | undefined;
  #fd: number | undefined;
  /** Only regular files are synced and cut back; /dev/null, pipes and terminals cannot be. */
  #regular = false;
  /** Where the last whole line ends, in a regular file. */
  #end = 0;
  #pending: string[] = [];
  #scheduled = false;
  #failed = false;

  constructor(path: string, options: WriterOptions) {
    this.#path = path;
    this.#mode = options.mode ?? 'truncate';
    this.#onError = options.onError;
    this.#spill = options.spill;
  }

  /** The file written: with `exclusive`, the name found free once opened. */
  get path(): string {
    return this.#path;
  }

  get opened(): boolean {
    return this.#fd !== undefined;
  }

  /** Opens the file now; throws the system's error (EISDIR, EACCES…). */
  open(): void {
    if (this.#fd !== undefined) return;
    if (this.#path === STDOUT) {
      // Through the stream, not fd 1: the stream may have made it non-blocking, and it hears of a reader gone (EPIPE).
      process.stdout.once('error', (error) => this.#fail(error, []));
      this.#fd = 1;
      return;
    }
    const fd = this.#mode === 'exclusive' ? this.#openFree() : openSync(this.#path, this.#mode === 'append' ? 'a' : 'w');
    try {
      const stats = fstatSync(fd);
      this.#regular = stats.isFile();
      this.#end = stats.size;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    this.#fd = fd;
  }

  write(record: unknown): void {
    this.writeLine(JSON.stringify(record));
  }

  /** A line as it is (no newline in it). */
  writeLine(line: string): void {
    if (this.#failed) {
      this.#spill?.([line]);
      return;
    }
    this.#pending.push(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#flushSoon);
    }
  }

  /** Writes what is pending now; for signal handlers and the end of a run. */
  flush(): void {
    this.#scheduled = false;
    if (this.#pending.length === 0 || this.#failed) return;
    const lines = this.#pending;
    this.#pending = [];
    try {
      this.open();
      this.#writeAll(Buffer.from(`${lines.join('\n')}\n`));
    } catch (error) {
      this.#fail(error, lines);
    }
  }

  /** Flushes, syncs a regular file to disk and closes. */
  close(): void {
    this.flush();
    const fd = this.#fd;
    if (fd === undefined || fd === 1) return;
    this.#fd = undefined;
    try {
      if (this.#regular && !this.#failed) fsyncSync(fd);
    } catch (error) {
      this.#fail(error, []);
    } finally {
      closeSync(fd);
    }
  }

  #openFree(): number {
    for (let n = 1; ; n++) {
      const path = nthName(this.#path, n);
      try {
        const fd = openSync(path, 'wx');
        this.#path = path;
        return fd;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || n >= MAX_NAMES) throw error;
      }
    }
  }

  #writeAll(bytes: Buffer): void {
    const fd = this.#fd as number;
    if (fd === 1) {
      process.stdout.write(bytes);
      return;
    }
    // A short write (a disk filling up) returns fewer bytes: write the rest, or fail on the next call.
    for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done);
    this.#end += bytes.length;
  }

  #fail(error: unknown, lines: readonly string[]): void {
    if (this.#failed) return;
    this.#failed = true;
    if (this.#regular && this.#fd !== undefined) {
      try {
        ftruncateSync(this.#fd, this.#end);
      } catch {
        // The cut line stays; the lines still go to spill, and a reader skips a line cut short.
      }
    }
    const { code, message } = error as NodeJS.ErrnoException;
    this.#onError(new ImgpushError('IMGPUSH_LOG_WRITE', `cannot write ${this.#path}: ${code ?? message}`, { cause: error }));
    if (lines.length > 0) this.#spill?.(lines);
  }

  readonly #flushSoon = (): void => {
    if (this.#scheduled) this.flush();
  };
}
