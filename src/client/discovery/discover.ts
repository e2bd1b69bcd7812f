import type { Dir, Dirent, Stats } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { FileAccess } from './file-access.js';
import { basename, dirname, relative, resolve, sep } from 'node:path';
import { isGlob, isNodeError } from './inputs.js';
import { ImgpushError } from '../../shared/errors.js';
import { extensionOf } from '../../shared/media-types.js';
import { toFileReadError } from '../errors.js';

/** A file to send. `rel` is its path relative to the input root it was found under, for `{path}`. */
export interface DiscoveredFile {
  readonly kind: 'file';
  readonly path: string;
  readonly rel: string;
  readonly size: number;
  /** Modification time when found: with the size, what `--skip-done` compares. */
  readonly mtimeMs: number;
  /** A job an earlier run left pending for this file (from a failure log): its result is fetched, not the file sent again. */
  readonly job?: string;
}

/** Something named or found that cannot be sent (a missing file, an unreadable folder). */
interface DiscoveryFailure {
  readonly kind: 'failed';
  readonly path: string;
  readonly rel: string;
  readonly error: ImgpushError;
}

/** A file the user named that a filter keeps out, with the reason. */
interface SkippedFile {
  readonly kind: 'skipped';
  readonly path: string;
  readonly rel: string;
  readonly code: string;
  readonly reason: string;
}

export type Discovered = DiscoveredFile | DiscoveryFailure | SkippedFile;

/** A path from a list (stdin, --files-from, a failure log), with its `{path}` value when known. */
export interface ListedFile {
  readonly path: string;
  readonly rel?: string;
  readonly job?: string | undefined;
}

export interface DiscoveryOptions {
  readonly inputs: readonly string[];
  readonly listed?: AsyncIterable<string | ListedFile> | undefined;
  /** Extensions picked up inside folders, lower case without dot; null for every file. */
  readonly extensions: ReadonlySet<string> | null;
  readonly exclude: readonly string[];
  readonly hidden: boolean;
  /** The run's file calls; a new one when not given. */
  readonly files?: FileAccess;
}

/**
 * The same file reached twice (overlapping inputs, symlinks, a loop) is known
 * by its device and inode: a few dozen bytes per file, not its whole path.
 */
class SeenSet {
  readonly #byDevice = new Map<number, Set<number>>();
  // An inode too large for a double cannot be told apart by number: key those by path.
  readonly #byPath = new Set<string>();
  /** The first name of a file that can be reached under another: hard-linked, or reached through a symlink or by name. */
  readonly #firstNames = new Map<string, string>();

  /**
   * Adds a file: undefined when it is new, else the path it was first found
   * at ('' when that was not kept). Only files that can recur keep their
   * name, so that memory stays flat for a tree of plain files.
   */
  addFile(stats: Stats, path: string, mayRecur: boolean): string | undefined {
    if (!this.add(stats, path)) return this.#firstNames.get(`${stats.dev}:${stats.ino}`) ?? '';
    if (mayRecur || stats.nlink > 1) this.#firstNames.set(`${stats.dev}:${stats.ino}`, path);
    return undefined;
  }

  /** Adds the file; false when it was already there. */
  add(stats: Stats, path: string): boolean {
    if (!Number.isSafeInteger(stats.ino)) return addNew(this.#byPath, path);
    let inodes = this.#byDevice.get(stats.dev);
    if (inodes === undefined) this.#byDevice.set(stats.dev, inodes = new Set());
    return addNew(inodes, stats.ino);
  }
}

function addNew<T>(set: Set<T>, value: T): boolean {
  if (set.has(value)) return false;
  set.add(value);
  return true;
}

/** Path of a listed file relative to the working directory; absolute paths outside it keep their whole path. */
function listedRel(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel === '' || rel.startsWith('..') || resolve(rel) !== abs ? abs.replace(/^[/\\]+/, '') : rel;
}

function toPosix(path: string): string {
  return sep === '/' ? path : path.split(sep).join('/');
}

interface WalkRoot {
  readonly abs: string;
  readonly rel: string;
  /** For globs: which paths (relative to the walk root) match, and how deep the pattern can reach. */
  readonly match?: (posixRel: string) => boolean;
  readonly maxDepth?: number;
}

/** Most files a folder walk hands over at once: one buffer of folder entries. */
const BATCH = 256;

interface Folder {
  readonly abs: string;
  readonly rel: string;
  /** Its path under the walk's root, with '/' separators, for matching. */
  readonly below: string;
  readonly depth: number;
  /** The device that holds it (st_dev): its storage is checked once per device. */
  readonly dev: number;
}

/** The walk in progress, kept where unfinished() can see it. */
interface Walk {
  /** The glob being walked; undefined for a folder walk. */
  readonly pattern: string | undefined;
  readonly stack: Folder[];
  current: Folder | undefined;
}

/**
 * The next batch, or undefined once `signal` aborts (a cancel): a list on
 * stdin may not send its next line for a long time. A fresh wait per pull,
 * not a race against one long-lived promise, whose reactions would keep
 * every batch ever pulled alive.
 */
export function pullUnlessAborted(found: AsyncGenerator<Discovered[]>, signal: AbortSignal): Promise<IteratorResult<Discovered[]> | undefined> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      resolve(undefined);
      return;
    }
    const onAbort = (): void => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    found.next().then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** What a discovery had not finished when it was cut short. */
export interface Unfinished {
  /** Folders not walked to their end, globs not matched to their end, inputs not started: `retry` takes them as they are. */
  readonly paths: ListedFile[];
  /** A list (stdin, --files-from) was still being read: the paths after that point cannot be known. */
  readonly listCutShort: boolean;
}

/**
 * Finds the files named by inputs and lists, in batches of at most 256, so
 * a consumer that stops pulling stops the walk: memory stays flat for any
 * tree size, and the per-file cost of async iteration is paid per batch.
 */
export class Discovery {
  readonly #options: DiscoveryOptions;
  readonly #files = new SeenSet();
  readonly #folders = new SeenSet();
  /** Set when the run starts: picomatch loads only for runs with --exclude. */
  #excluded: (posixRel: string) => boolean = never;
  readonly #access: FileAccess;
  #nextInput = 0;
  #walk: Walk | undefined;
  #listOpen = false;

  constructor(options: DiscoveryOptions) {
    this.#options = options;
    this.#access = options.files ?? new FileAccess();
  }

  async* run(): AsyncGenerator<Discovered[]> {
    const { inputs, listed, exclude } = this.#options;
    this.#excluded = await excludeMatcher(exclude);
    while (this.#nextInput < inputs.length) yield* this.#path(inputs[this.#nextInput++] as string, undefined, 'named');
    if (listed === undefined) return;
    this.#listOpen = true;
    for await (const item of listed) {
      const { path, rel, job } = typeof item === 'string' ? { path: item, rel: undefined, job: undefined } : item;
      yield* this.#path(path, rel ?? listedRel(resolve(path)), 'listed', job);
    }
    this.#listOpen = false;
  }

  /** Where discovery stands, for a run cut short: what it had not yet handed over. */
  unfinished(): Unfinished {
    const paths: ListedFile[] = [];
    const walk = this.#walk;
    if (walk?.pattern !== undefined) {
      paths.push({ path: walk.pattern, rel: '' });
    } else if (walk !== undefined) {
      // The folder being read is walked again whole: some of its files may go twice, none is left out.
      for (const folder of walk.current === undefined ? walk.stack : [walk.current, ...walk.stack]) {
        paths.push({ path: folder.abs, rel: folder.rel });
      }
    }
    for (const input of this.#options.inputs.slice(this.#nextInput)) paths.push({ path: input, rel: '' });
    return { paths, listCutShort: this.#listOpen };
  }

  /**
   * A path, named or listed, or a glob pattern. `rel` is its {path} root:
   * given by a list, or for a name on the command line '' (a folder is the
   * root of its files) and the file's own name for a file.
   */
  async* #path(text: string, rel: string | undefined, how: 'named' | 'listed', job?: string): AsyncGenerator<Discovered[]> {
    const abs = resolve(text);
    // A listed file's folder: one check for all of its files (a path itself for a name, which may be a mount).
    await this.#access.onLocalStorage(how === 'listed' ? dirname(abs) : abs);
    const stats = await this.#statOrError(abs);
    if (!(stats instanceof ImgpushError)) {
      yield* this.#named(abs, rel, stats, how, job);
    } else if (await isGlob(text)) {
      yield* this.#glob(text);
    } else {
      yield [{ kind: 'failed', path: abs, rel: rel || basename(abs), error: stats }];
    }
  }

  async* #named(abs: string, rel: string | undefined, stats: Stats, how: 'named' | 'listed', job?: string): AsyncGenerator<Discovered[]> {
    if (stats.isDirectory()) {
      yield* this.#walkFolder({ abs, rel: rel ?? '' }, stats, this.#folders, undefined);
      return;
    }
    const fileRel = rel || basename(abs);
    if (!stats.isFile()) {
      if (this.#files.add(stats, abs)) yield [{ kind: 'failed', path: abs, rel: fileRel, error: notAFile() }];
    } else if (this.#excluded(toPosix(fileRel))) {
      yield [{ kind: 'skipped', path: abs, rel: fileRel, code: 'IMGPUSH_EXCLUDED', reason: `${how} but matches --exclude` }];
    } else {
      // A name on the command line may well be reached again in a folder: it keeps its name (there are few).
      const first = this.#files.addFile(stats, abs, how === 'named');
      if (first === undefined) yield [{ kind: 'file', path: abs, rel: fileRel, size: stats.size, mtimeMs: stats.mtimeMs, ...(job === undefined ? {} : { job }) }];
      // The same path named again (overlapping inputs) has its record already.
      else if (first !== '' && first !== abs) yield [sameFile(abs, fileRel, first)];
    }
  }

  async #statOrError(path: string): Promise<Stats | ImgpushError> {
    try {
      return await this.#access.stat(path);
    } catch (error) {
      return toFileReadError(error);
    }
  }

  async* #glob(pattern: string): AsyncGenerator<Discovered[]> {
    const { hidden } = this.#options;
    const [{ default: fg }, { default: picomatch }] = await Promise.all([import('fast-glob'), import('picomatch')]);
    for (const task of fg.generateTasks(pattern, { dot: hidden })) {
      const base = task.base === '.' ? '' : task.base;
      const below = task.patterns
        .filter((p) => !p.startsWith('!'))
        .map((p) => (base === '' ? p : p.slice(base.length + 1)));
      const abs = resolve(base);
      const stats = await this.#statOrError(abs);
      if (stats instanceof ImgpushError || !stats.isDirectory()) continue; // a base that is no folder matches nothing
      const maxDepth = below.some((p) => p.includes('**'))
        ? Infinity
        : Math.max(...below.map((p) => p.split('/').length)) - 1;
      // A glob walks its own way (its matches may differ from a folder walk of the same place): loops are its only concern.
      yield* this.#walkFolder({ abs, rel: '', match: picomatch(below, { dot: hidden }), maxDepth }, stats, new SeenSet(), pattern);
    }
  }

  /** Walks a folder tree; `folders` keeps it from entering a folder twice (loops, overlapping inputs). */
  async* #walkFolder(root: WalkRoot, rootStats: Stats, folders: SeenSet, pattern: string | undefined): AsyncGenerator<Discovered[]> {
    if (!folders.add(rootStats, root.abs)) return;
    const walk: Walk = { pattern, stack: [{ abs: root.abs, rel: root.rel, below: '', depth: 0, dev: rootStats.dev }], current: undefined };
    this.#walk = walk;
    try {
      for (let folder = walk.stack.pop(); folder !== undefined; folder = walk.stack.pop()) {
        walk.current = folder;
        yield* this.#readFolder(root, folder, folders, walk.stack);
      }
    } finally {
      this.#walk = undefined;
    }
  }

  /** One folder's wanted files, in batches; its subfolders go on the stack. */
  async* #readFolder(root: WalkRoot, folder: Folder, folders: SeenSet, stack: Folder[]): AsyncGenerator<Discovered[]> {
    const { hidden, extensions } = this.#options;
    const access = this.#access;
    let batch: Discovered[] = [];
    let dir: Dir | undefined;
    try {
      // A folder of the walk may be a mount of its own: a device not seen before.
      await access.onLocalStorage(folder.abs, folder.dev);
      dir = await access.opendir(folder.abs);
      for (let entry = await access.readEntry(dir); entry !== null; entry = await access.readEntry(dir)) {
        const name = entry.name;
        if (!hidden && name.charCodeAt(0) === 46 /* . */) continue;
        const below = folder.below === '' ? name : `${folder.below}/${name}`;
        if (this.#excluded(below)) continue;
        const wanted = root.match === undefined
          ? extensions === null || extensions.has(extensionOf(name))
          : root.match(below);
        // Without a stat, only a symlink can turn out to be a folder: skip unwanted plain files early.
        if (!wanted && !entry.isDirectory() && !entry.isSymbolicLink()) continue;
        const abs = folder.abs + sep + name;
        const rel = folder.rel === '' ? name : folder.rel + sep + name;
        let stats: Stats;
        try {
          stats = await access.stat(abs);
        } catch (error) {
          if (name.includes(REPLACEMENT) && isNodeError(error, 'ENOENT')) batch.push({ kind: 'failed', path: abs, rel, error: nameNotUtf8() });
          else if (wanted) batch.push({ kind: 'failed', path: abs, rel, error: brokenLinkOr(error, entry.isSymbolicLink()) });
          // A folder that cannot be reached (EACCES, ENAMETOOLONG, ELOOP) holds files nobody would hear of: it fails, and retry walks it again.
          else if (mayBeFolder(entry, error)) batch.push({ kind: 'failed', path: abs, rel, error: folderUnreadable(error) });
          continue;
        }
        if (stats.isDirectory()) {
          if (folder.depth < (root.maxDepth ?? Infinity) && folders.add(stats, abs)) {
            stack.push({ abs, rel, below, depth: folder.depth + 1, dev: stats.dev });
          }
        } else if (wanted) {
          let first = this.#files.addFile(stats, abs, entry.isSymbolicLink());
          // A link to a file first found by its own name, which was not kept: the link's target is that name.
          if (first === '' && entry.isSymbolicLink()) first = await realpath(abs).catch(() => '');
          if (first === '' || first === abs) continue;
          if (first !== undefined) batch.push(sameFile(abs, rel, first));
          else batch.push(stats.isFile() ? { kind: 'file', path: abs, rel, size: stats.size, mtimeMs: stats.mtimeMs } : { kind: 'failed', path: abs, rel, error: notAFile() });
          if (batch.length === BATCH) {
            yield batch;
            batch = [];
          }
        }
      }
    } catch (error) {
      batch.push({ kind: 'failed', path: folder.abs, rel: folder.rel, error: folderUnreadable(error) });
    } finally {
      dir?.closeSync();
    }
    if (batch.length > 0) yield batch;
  }
}

/**
 * `--exclude` as rsync reads it: a pattern without a slash matches a name at
 * any depth, one with a slash matches the path under the input root.
 */
export async function excludeMatcher(patterns: readonly string[]): Promise<(posixRel: string) => boolean> {
  if (patterns.length === 0) return never;
  // Loaded by the runs that use it: its module costs every start about 3 ms.
  const { default: picomatch } = await import('picomatch');
  const names = patterns.filter((p) => !p.includes('/'));
  const paths = patterns.filter((p) => p.includes('/'));
  const byName = names.length === 0 ? never : picomatch(names, { dot: true });
  const byPath = paths.length === 0 ? never : picomatch(paths, { dot: true });
  return (rel) => byPath(rel) || byName(rel.slice(rel.lastIndexOf('/') + 1));
}

function never(): boolean {
  return false;
}

/** What a name that is not valid UTF-8 reads as: the path built from it names no file. */
const REPLACEMENT = '\uFFFD';

function nameNotUtf8(): ImgpushError {
  return new ImgpushError('IMGPUSH_NAME_NOT_UTF8', 'its name is not valid UTF-8, which imgpush cannot name yet: rename it (convmv) and send it again');
}

/** A second name of a file already found (a hard link, a symlink, overlapping inputs): not sent twice, and not silent. */
function sameFile(path: string, rel: string, first: string): SkippedFile {
  return { kind: 'skipped', path, rel, code: 'IMGPUSH_SAME_FILE', reason: first === '' ? 'same file as one found before under another name' : `same file as ${first}` };
}

function notAFile(): ImgpushError {
  return new ImgpushError('IMGPUSH_NOT_A_FILE', 'not a regular file (a device, socket or pipe)');
}

function folderUnreadable(error: unknown): ImgpushError {
  return new ImgpushError('IMGPUSH_FOLDER_UNREADABLE', `cannot read folder: ${toFileReadError(error).message}`, { cause: error });
}

/** An entry whose stat failed may be a folder: one listed as such, of an unknown type, or a link that points somewhere (not a broken one). */
function mayBeFolder(entry: Dirent, error: unknown): boolean {
  if (entry.isDirectory()) return true;
  if (entry.isSymbolicLink()) return !isNodeError(error, 'ENOENT');
  return !entry.isFile() && !entry.isFIFO() && !entry.isSocket() && !entry.isCharacterDevice() && !entry.isBlockDevice();
}

function brokenLinkOr(error: unknown, isLink: boolean): ImgpushError {
  if (isLink && isNodeError(error, 'ENOENT')) {
    return new ImgpushError('IMGPUSH_BROKEN_LINK', 'broken symbolic link (its target does not exist)');
  }
  return toFileReadError(error);
}
