import { close, closeSync, constants, fstat, fstatSync, open, openSync, opendirSync, read, readSync, stat, statSync, type Dir, type Dirent, type Stats } from 'node:fs';
import { opendir } from 'node:fs/promises';
import { promisify } from 'node:util';

const statAsync = promisify(stat);
const openAsync = promisify(open);
const fstatAsync = promisify(fstat);
const readAsync = promisify(read);
const closeAsync = promisify(close);

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** A call slower than this did not come from the page cache. */
const SLOW_CALL_MS = 2;
/** One slow call can be the scheduler; this many is the storage. */
const SLOW_CALLS_TO_GO_ASYNC = 8;

/**
 * The file calls of a run (stat, open, fstat, read, close), made
 * synchronously while they are fast, as curl makes them: on a page-cached
 * disk a small file's calls take microseconds, and going through the thread
 * pool costs several times the CPU (measured here: 20 vs 70–110 µs per
 * file). On slow storage (NFS, a cold disk) a synchronous call would stall
 * every socket, so after a few slow calls the run switches to the thread
 * pool for good. Each method returns a value or a promise: await it.
 */
export class FileAccess {
  #sync = true;
  #slowCalls = 0;

  /** Whether calls still go synchronously (false once storage proved slow). */
  get synchronous(): boolean {
    return this.#sync;
  }

  stat(path: string): Stats | Promise<Stats> {
    return this.#sync ? this.#timed(() => statSync(path)) : statAsync(path);
  }

  /**
   * Opens for reading without ever waiting: a FIFO put where a file was
   * found opens at once (O_NONBLOCK) instead of blocking the event loop until
   * a writer comes; the caller's fstat then refuses it. Reads of regular files
   * are unaffected by the flag.
   */
  open(path: string): number | Promise<number> {
    return this.#sync ? this.#timed(() => openSync(path, OPEN_FLAGS)) : openAsync(path, OPEN_FLAGS);
  }

  fstat(fd: number): Stats | Promise<Stats> {
    return this.#sync ? this.#timed(() => fstatSync(fd)) : fstatAsync(fd);
  }

  /** Reads into `into` at `offset`; the number of bytes read (0 at the end of the file). */
  read(fd: number, into: Buffer, offset: number, length: number, position: number): number | Promise<number> {
    if (this.#sync) return this.#timed(() => readSync(fd, into, offset, length, position));
    return readAsync(fd, into, offset, length, position).then((result) => result.bytesRead);
  }

  close(fd: number): void | Promise<void> {
    if (!this.#sync) return closeAsync(fd);
    closeSync(fd);
  }

  /** Opens a folder to read its entries a buffer at a time (never the whole listing at once). */
  opendir(path: string): Dir | Promise<Dir> {
    return this.#sync ? this.#timed(() => opendirSync(path, { bufferSize: 256 })) : opendir(path, { bufferSize: 256 });
  }

  /** The folder's next entry; null at its end. */
  readEntry(dir: Dir): Dirent | null | Promise<Dirent | null> {
    return this.#sync ? this.#timed(() => dir.readSync()) : dir.read();
  }

  /** Makes a synchronous call, and counts it if it was slow. */
  #timed<T>(call: () => T): T {
    const started = performance.now();
    try {
      return call();
    } finally {
      if (performance.now() - started > SLOW_CALL_MS && ++this.#slowCalls >= SLOW_CALLS_TO_GO_ASYNC) this.#sync = false;
    }
  }
}
