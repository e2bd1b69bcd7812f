import { opendir, stat } from 'node:fs/promises';
import { sep } from 'node:path';
import { extensionOf } from '../../shared/media-types.js';
import { excludeMatcher } from './discover.js';

export interface CountAheadOptions {
  readonly inputs: readonly string[];
  /** A list (stdin, --files-from, a failure log): how long it is cannot be known ahead. */
  readonly listed: unknown;
  /** Extensions picked up inside folders, lower case without dot; null for every file. */
  readonly extensions: ReadonlySet<string> | null;
  readonly exclude: readonly string[];
  readonly hidden: boolean;
}

/** Where the count goes: the run's progress counters. */
export interface CountSink {
  /** Files counted so far; final once `counted` is true. */
  expected: number;
  /** The whole tree is counted: `expected` is the total discovery will find. */
  expectedKnown: boolean;
}

/** Folder entries read per call: the walk holds no more than this of a folder at once. */
const ENTRIES_PER_READ = 1024;

/**
 * Counts the files the inputs hold, ahead of discovery (which walks only a
 * few hundred files ahead of the uploads), so that the progress shows a real
 * total and ETA from the start. It holds no file paths, only the folders
 * still to walk, and reads no more than a folder's type from its entry where
 * that tells: a million files are counted in seconds. A glob or a list of
 * paths cannot be counted ahead; the total then grows with discovery as
 * before. Discovery's own count is the truth: this is only a forecast.
 */
export async function countAhead(options: CountAheadOptions, sink: CountSink, signal: AbortSignal): Promise<void> {
  if (options.listed !== undefined) return;
  const counter = new Counter(options, sink, signal, await excludeMatcher(options.exclude));
  for (const input of options.inputs) {
    if (!await counter.input(input)) return;
  }
  if (!signal.aborted) sink.expectedKnown = true;
}

class Counter {
  readonly #options: CountAheadOptions;
  readonly #sink: CountSink;
  readonly #signal: AbortSignal;
  readonly #excluded: (posixRel: string) => boolean;
  /** Folders entered, by device and inode: a symbolic link back up the tree is walked once. */
  readonly #folders = new Set<string>();

  constructor(options: CountAheadOptions, sink: CountSink, signal: AbortSignal, excluded: (posixRel: string) => boolean) {
    this.#options = options;
    this.#sink = sink;
    this.#signal = signal;
    this.#excluded = excluded;
  }

  /** Counts one input; false when it cannot be counted (a glob) or the count was stopped. */
  async input(input: string): Promise<boolean> {
    const found = await stat(input).catch(() => undefined);
    if (found === undefined) return false;
    if (!found.isDirectory()) {
      this.#sink.expected++;
      return true;
    }
    return this.#walk(input, found);
  }

  async #walk(root: string, rootStats: { dev: number; ino: number }): Promise<boolean> {
    this.#enter(rootStats);
    const stack: Array<{ abs: string; below: string }> = [{ abs: root, below: '' }];
    for (let folder = stack.pop(); folder !== undefined; folder = stack.pop()) {
      if (this.#signal.aborted) return false;
      await this.#folder(folder.abs, folder.below, stack);
    }
    return !this.#signal.aborted;
  }

  async #folder(abs: string, below: string, stack: Array<{ abs: string; below: string }>): Promise<void> {
    const { hidden, extensions } = this.#options;
    let dir;
    try {
      dir = await opendir(abs, { bufferSize: ENTRIES_PER_READ });
    } catch {
      // Discovery reports a folder it cannot read as one failure.
      this.#sink.expected++;
      return;
    }
    try {
      for await (const entry of dir) {
        if (this.#signal.aborted) return;
        const name = entry.name;
        if (!hidden && name.charCodeAt(0) === 46 /* . */) continue;
        const rel = below === '' ? name : `${below}/${name}`;
        if (this.#excluded(rel)) continue;
        const wanted = extensions === null || extensions.has(extensionOf(name));
        if (entry.isDirectory()) await this.#subfolder(abs + sep + name, rel, stack);
        else if (entry.isSymbolicLink()) await this.#link(abs + sep + name, rel, wanted, stack);
        else if (wanted && entry.isFile()) this.#sink.expected++;
      }
    } catch {
      // A folder that fails half-way: discovery counts what it gets; the forecast is only that.
    }
  }

  async #subfolder(abs: string, rel: string, stack: Array<{ abs: string; below: string }>): Promise<void> {
    const found = await stat(abs).catch(() => undefined);
    if (found !== undefined && this.#enter(found)) stack.push({ abs, below: rel });
  }

  /** A symbolic link: to a folder, walked (once); to a file, counted; broken, counted as discovery's failure. */
  async #link(abs: string, rel: string, wanted: boolean, stack: Array<{ abs: string; below: string }>): Promise<void> {
    const found = await stat(abs).catch(() => undefined);
    if (found?.isDirectory() === true) {
      if (this.#enter(found)) stack.push({ abs, below: rel });
    } else if (wanted && (found === undefined || found.isFile())) {
      this.#sink.expected++;
    }
  }

  #enter({ dev, ino }: { dev: number; ino: number }): boolean {
    const key = `${dev}:${ino}`;
    if (this.#folders.has(key)) return false;
    this.#folders.add(key);
    return true;
  }
}
