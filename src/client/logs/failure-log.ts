import { createReadStream } from 'node:fs';
import { ImgpushError, UsageError } from '../../shared/errors.js';
import type { ListedFile } from '../discovery/discover.js';
import { JsonlWriter, type OpenMode } from './jsonl-writer.js';
import type { RequestSettings } from '../options/types.js';

const KIND = 'imgpush-failures';
const VERSION = 1;

/** The failure log's first line: how the files were sent, for `imgpush retry`. */
export interface FailureLogHeader {
  readonly kind: typeof KIND;
  readonly version: number;
  readonly created: string;
  readonly settings: RequestSettings;
  /** The run's results log (absolute), which `imgpush retry` appends to; null without one. Absent in logs of imgpush 0.1. */
  readonly results?: string | null;
}

/** The header of a new failure log. */
export function failureLogHeader(settings: RequestSettings, results: string | null): FailureLogHeader {
  return { kind: KIND, version: VERSION, created: new Date().toISOString(), settings, results };
}

/** One file that did not end in a 2xx. */
export interface FailureRecord {
  readonly path: string;
  /** Its path under its input root, for `{path}`. */
  readonly rel: string;
  readonly url: string | null;
  /** The HTTP status of the last answer, null when there was none. */
  readonly status: number | null;
  /** IMGPUSH_… or the system's code (ECONNREFUSED, ENOENT…). */
  readonly code: string;
  readonly message: string;
  readonly attempts: number;
  readonly time: string;
  /** A job still pending on the server (with --async): `imgpush retry` fetches its result instead of sending the file again. */
  readonly job?: string;
}

/**
 * The failure log: created at the first failure (never for a clean run), a
 * header line with the request settings, then one line per failed file.
 */
export class FailureLog {
  readonly #writer: JsonlWriter;
  readonly #settings: RequestSettings;
  readonly #results: string | null;
  #count = 0;

  /** `exclusive` (the default name, or a path not there yet) never writes over a file: it takes the next free name. */
  constructor(path: string, { settings, results, mode, onError, spill }: {
    settings: RequestSettings;
    results: string | null;
    mode: OpenMode;
    onError: (error: ImgpushError) => void;
    spill: (lines: readonly string[]) => void;
  }) {
    this.#writer = new JsonlWriter(path, { mode, onError, spill });
    this.#settings = settings;
    this.#results = results;
  }

  get path(): string {
    return this.#writer.path;
  }

  get count(): number {
    return this.#count;
  }

  add(record: FailureRecord): void {
    if (this.#count++ === 0) this.#writer.write(failureLogHeader(this.#settings, this.#results));
    this.#writer.write(record);
  }

  flush(): void {
    this.#writer.flush();
  }

  close(): void {
    this.#writer.close();
  }
}

export interface OpenedFailureLog {
  readonly settings: RequestSettings;
  /** The results log the run wrote (absolute), null without one or when the log does not say. */
  readonly results: string | null;
  /** The failed files, read as they are needed. */
  readonly files: AsyncIterable<ListedFile>;
  /** The lines read so far that name no file imgpush can read (a line cut short), as they are: kept, never dropped. */
  readonly unreadable: readonly string[];
}

function notAFailureLog(path: string, why: string): UsageError {
  return new UsageError('IMGPUSH_BAD_FAILURE_LOG', `${path} is not an imgpush failure log: ${why}`);
}

/**
 * Opens a failure log for `imgpush retry`: reads its header now, its
 * entries as they are pulled. A line cut short (a killed process) or
 * otherwise unreadable is reported through `onBadLine` and kept in `unreadable`.
 */
export async function openFailureLog(path: string, onBadLine: (line: number) => void): Promise<OpenedFailureLog> {
  const stream = createReadStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    throw new UsageError('IMGPUSH_BAD_FAILURE_LOG', `cannot read failure log ${path}: ${code === 'ENOENT' ? 'it does not exist' : code}`);
  }
  // node:readline loads for the runs that read a log: imgpush retry and --skip-done.
  const { createInterface } = process.getBuiltinModule('node:readline');
  const lines = createInterface({ input: stream, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done === true) throw notAFailureLog(path, 'it is empty');
  let header: Partial<FailureLogHeader>;
  try {
    header = JSON.parse(first.value) as Partial<FailureLogHeader>;
  } catch {
    throw notAFailureLog(path, 'its first line is not JSON');
  }
  if (header.kind !== KIND || typeof header.settings !== 'object' || header.settings === null) {
    throw notAFailureLog(path, `its first line has no "kind": "${KIND}" header`);
  }
  if (header.version !== VERSION) throw notAFailureLog(path, `it is version ${String(header.version)}; this imgpush reads version ${VERSION}`);
  const unreadable: string[] = [];
  const keep = (line: number, text: string): void => {
    unreadable.push(text);
    onBadLine(line);
  };
  const results = typeof header.results === 'string' ? header.results : null;
  return { settings: header.settings, results, files: entries(lines, keep), unreadable };
}

async function* entries(lines: AsyncIterator<string>, keep: (line: number, text: string) => void): AsyncGenerator<ListedFile> {
  let number = 1;
  for (let next = await lines.next(); next.done !== true; next = await lines.next()) {
    number++;
    if (next.value.trim() === '') continue;
    let record: Partial<FailureRecord>;
    try {
      record = JSON.parse(next.value) as Partial<FailureRecord>;
    } catch {
      keep(number, next.value);
      continue;
    }
    if (typeof record.path !== 'string' || typeof record.rel !== 'string') {
      keep(number, next.value);
      continue;
    }
    yield { path: record.path, rel: record.rel, job: typeof record.job === 'string' ? record.job : undefined };
  }
}
