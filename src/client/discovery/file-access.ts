import { close, closeSync, constants, fstat, fstatSync, open, openSync, opendirSync, read, readSync, stat, statSync, type Dir, type Dirent, type Stats, type StatsFs } from 'node:fs';
import { opendir, statfs } from 'node:fs/promises';
import { promisify } from 'node:util';
import { FileReadError } from '../errors.js';

const statAsync = promisify(stat);
const openAsync = promisify(open);
const fstatAsync = promisify(fstat);
const readAsync = promisify(read);
const closeAsync = promisify(close);

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/**
 * A call slower than this did not come from the page cache. Not less: on a
 * busy machine (two cores, four processes) the scheduler alone stretches a
 * cached call past 2 ms often enough to send every run to the thread pool.
 */
const SLOW_CALL_MS = 10;
/**
 * One slow call can be the scheduler; several close together are the
 * storage. Each slow call adds one to a score that every call lowers by a
 * hundredth: a cold disk, whose calls are all slow, reaches it within
 * five calls, while the odd preemption of a busy machine (one call in
 * thousands, 80,000 calls in a run of 16,000 files) never does.
 */
const SLOW_SCORE_TO_GO_ASYNC = 4;
const SLOW_SCORE_KEPT = 0.99;
/** A storage that takes longer than this to say what it is may be a mount that hangs. */
const STORAGE_CHECK_MS = 1_000;

/**
 * Linux file systems whose calls answer from local storage or memory (the
 * magic numbers of statfs(2)). Anything else, NFS, SMB, FUSE (sshfs, s3fs),
 * 9p, Ceph and Lustre among them, may hang on a server: its calls go to the
 * thread pool from the first.
 */
const LOCAL_FILE_SYSTEMS: ReadonlySet<number> = new Set([
  0xef53, // ext2, ext3, ext4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs, devtmpfs
  0x858458f6, // ramfs
  0x794c7630, // overlayfs (containers)
  0x2fc12fc1, // zfs
  0xf2f52010, // f2fs
  0xca451a4e, // bcachefs
  0x73717368, // squashfs
  0xe0f5e1e2, // erofs
  0x52654973, // reiserfs
  0x3153464a, // jfs
  0x00004d44, // vfat, msdos
  0x2011bab0, // exfat
  0x7366746e, // ntfs3
  0x00009660, // iso9660
  0x15013346, // udf
]);

/** How long statfs takes, and what it answers: a parameter so that a test can be a mount that never answers. */
type StorageCheck = (path: string) => Promise<Pick<StatsFs, 'type'>>;

/** What a call stuck on a dead mount comes to once the run is cancelled. */
const abandoned = (): FileReadError => new FileReadError('IMGPUSH_INTERRUPTED', 'not sent: the run was cancelled while the file\'s storage did not answer');

/**
 * The file calls of a run (stat, open, fstat, read, close), made
 * synchronously while they are fast, as curl makes them: on a page-cached
 * disk a small file's calls take microseconds, and going through the thread
 * pool costs several times the CPU (measured here: 20 vs 70–110 µs per
 * file). On slow storage a synchronous call would stall every socket: a
 * network or FUSE mount sends the run to the thread pool from the start
 * (see onLocalStorage), and so do a few slow calls on a local one (a cold
 * disk), for good. Each method returns a value or a promise: await it.
 */
export class FileAccess {
  #sync = true;
  #slowScore = 0;
  readonly #checkStorage: StorageCheck;
  readonly #cancel: AbortSignal | undefined;
  /** Paths and devices whose storage was checked (see onLocalStorage). */
  readonly #checkedPaths = new Set<string>();
  readonly #checkedDevices = new Set<number>();
  /** How to give up each call waiting in the thread pool, at a cancel. */
  readonly #waiting = new Set<() => void>();

  /**
   * `cancel`: once it aborts, calls still waiting in the thread pool (stuck
   * on a dead mount) are given up, so that the run can end; a file they
   * held is not sent (see abandoned).
   */
  constructor({ checkStorage = statfs, cancel }: { checkStorage?: StorageCheck; cancel?: AbortSignal } = {}) {
    this.#checkStorage = checkStorage;
    this.#cancel = cancel;
    // One listener for every call in the thread pool: one each would pass Node's limit of ten (a warning on stderr).
    cancel?.addEventListener('abort', () => {
      for (const giveUp of this.#waiting) giveUp();
      this.#waiting.clear();
    }, { once: true });
  }

  /** Whether calls still go synchronously (false once storage proved slow). */
  get synchronous(): boolean {
    return this.#sync;
  }

  /**
   * Asks, through the thread pool, what storage holds `folder` before any
   * synchronous call touches it: a network or FUSE mount, one that cannot
   * say, or one that takes over a second to (a server gone), sends every
   * call of the run to the thread pool, where a hung call blocks a worker
   * and not the event loop. Once per path, and once per `device` where the
   * caller knows it (a folder of a walk); none once the run went async.
   */
  async onLocalStorage(folder: string, device?: number): Promise<void> {
    if (!this.#sync || process.platform !== 'linux') return;
    const seen = this.#checkedPaths.has(folder) || (device !== undefined && this.#checkedDevices.has(device));
    this.#checkedPaths.add(folder);
    if (device !== undefined) this.#checkedDevices.add(device);
    if (seen) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, STORAGE_CHECK_MS, undefined);
    });
    try {
      const storage = await Promise.race([this.#checkStorage(folder), late]);
      if (storage === undefined || !LOCAL_FILE_SYSTEMS.has(storage.type)) this.#sync = false;
    } catch {
      // A folder that does not exist says nothing of the storage: the calls that follow report it.
    } finally {
      clearTimeout(timer);
    }
  }

  stat(path: string): Stats | Promise<Stats> {
    return this.#sync ? this.#timed(() => statSync(path)) : this.#unlessCancelled(statAsync(path));
  }

  /**
   * Opens for reading without ever waiting: a FIFO put where a file was
   * found opens at once (O_NONBLOCK) instead of blocking the event loop until
   * a writer comes; the caller's fstat then refuses it. Reads of regular files
   * are unaffected by the flag.
   */
  open(path: string): number | Promise<number> {
    return this.#sync ? this.#timed(() => openSync(path, OPEN_FLAGS)) : this.#unlessCancelled(openAsync(path, OPEN_FLAGS), closeSync);
  }

  fstat(fd: number): Stats | Promise<Stats> {
    return this.#sync ? this.#timed(() => fstatSync(fd)) : this.#unlessCancelled(fstatAsync(fd));
  }

  /** Reads into `into` at `offset`; the number of bytes read (0 at the end of the file). */
  read(fd: number, into: Buffer, offset: number, length: number, position: number): number | Promise<number> {
    if (this.#sync) return this.#timed(() => readSync(fd, into, offset, length, position));
    return this.#unlessCancelled(readAsync(fd, into, offset, length, position).then((result) => result.bytesRead));
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

  /** An asynchronous call, or its being given up at a cancel; `late` takes what it brings after that (an fd to close). */
  #unlessCancelled<T>(call: Promise<T>, late?: (value: T) => void): Promise<T> {
    const cancel = this.#cancel;
    if (cancel === undefined) return call;
    return new Promise<T>((resolve, reject) => {
      let given = false;
      const giveUp = (): void => {
        given = true;
        reject(abandoned());
      };
      if (cancel.aborted) giveUp();
      else this.#waiting.add(giveUp);
      call.then((value) => {
        this.#waiting.delete(giveUp);
        if (given) late?.(value);
        else resolve(value);
      }, (error: unknown) => {
        this.#waiting.delete(giveUp);
        reject(error);
      });
    });
  }

  /** Makes a synchronous call, and counts it if it was slow. */
  #timed<T>(call: () => T): T {
    const started = performance.now();
    try {
      return call();
    } finally {
      this.#slowScore = this.#slowScore * SLOW_SCORE_KEPT + (performance.now() - started > SLOW_CALL_MS ? 1 : 0);
      if (this.#slowScore >= SLOW_SCORE_TO_GO_ASYNC) this.#sync = false;
    }
  }
}
