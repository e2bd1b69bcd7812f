import type { Stats } from 'node:fs';
import { access, constants, realpath, stat } from 'node:fs/promises';
import { basename, dirname, resolve, sep } from 'node:path';
import { UsageError } from '../../shared/errors.js';
import { extensionOf } from '../../shared/media-types.js';
import { STDOUT, type OpenMode } from './jsonl-writer.js';

interface LogPathSettings {
  readonly out: string | undefined;
  /** The results log is appended to (imgpush retry), not truncated. */
  readonly appendOut: boolean;
  readonly skipDone: readonly string[];
  readonly failures: string;
  /** The failure log was named by the caller, not the default: the user hears when it goes elsewhere. */
  readonly failuresGiven: boolean;
  readonly inputs: readonly string[];
  readonly extensions: ReadonlySet<string> | null;
  readonly dryRun: boolean;
}

/** A log path as found before the run: what is there now, and what it is known by. */
interface LogPath {
  readonly flag: string;
  readonly path: string;
  readonly stats: Stats | undefined;
  /** Device and inode of a file there, else its folder's real path and its name: two paths that are one file have one key. */
  readonly key: string;
}

function badPath(flag: string, path: string, why: string): UsageError {
  return new UsageError('IMGPUSH_BAD_LOG_PATH', `${flag} ${path}: ${why}`);
}

async function statOrNone(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function inspect(flag: string, path: string): Promise<LogPath> {
  const abs = resolve(path);
  let stats: Stats | undefined;
  try {
    stats = await statOrNone(abs);
  } catch (error) {
    throw badPath(flag, path, `cannot be reached (${String((error as NodeJS.ErrnoException).code)})`);
  }
  if (stats?.isDirectory() === true) throw badPath(flag, path, 'is a folder; name a file in it');
  if (stats !== undefined && !stats.isFile() && !stats.isCharacterDevice() && !stats.isFIFO()) {
    throw badPath(flag, path, 'is not a file, a pipe or a device that can be written to');
  }
  if (stats !== undefined) return { flag, path, stats, key: `${stats.dev}:${stats.ino}` };
  try {
    await access(dirname(abs), constants.W_OK);
    return { flag, path, stats, key: `${await realpath(dirname(abs))}${sep}${basename(abs)}` };
  } catch (error) {
    throw badPath(flag, path, `its folder ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be written to'}`);
  }
}

/** Two paths name one file (a symlink, a hard link, `a/../b`): only regular files, since /dev/null may well be both logs. */
function sameFile(a: LogPath, b: LogPath): boolean {
  return a.key === b.key && a.stats?.isFile() !== false && b.stats?.isFile() !== false;
}

/** The results log would be written over one of the images to send: a named one, or one a folder walk picks up. */
async function isInput(log: LogPath, inputs: readonly string[], extensions: ReadonlySet<string> | null): Promise<boolean> {
  if (log.stats?.isFile() !== true) return false;
  const picked = extensions === null || extensions.has(extensionOf(log.path));
  const real = await realpath(log.path);
  for (const input of inputs) {
    const stats = await stat(input).catch(() => undefined);
    if (stats === undefined) continue;
    if (`${stats.dev}:${stats.ino}` === log.key) return true;
    if (picked && stats.isDirectory() && real.startsWith(`${await realpath(input)}${sep}`)) return true;
  }
  return false;
}

/** How the run opens its logs. */
export interface LogPlan {
  readonly failures: OpenMode;
  readonly results: OpenMode;
  /** The results log is one of the `--skip-done` logs: the files done before are in it already. */
  readonly resumed: boolean;
  /** What the user should hear before the run. */
  readonly warnings: readonly string[];
}

/**
 * Checks the logs before anything is sent: a log that cannot be written
 * would be found out only after files were sent. Refuses a folder, a path
 * whose folder cannot be written, two logs that are one file, a results log
 * that is one of the inputs. A failure log is never written over: where
 * one holds an earlier run's failures, the run takes the next free name
 * (`imgpush-failures-2.jsonl`), which its summary prints.
 */
export async function planLogs(settings: LogPathSettings): Promise<LogPlan> {
  const { out, failures, failuresGiven, dryRun } = settings;
  const resumed = await resumesInto(out, settings.skipDone);
  if (dryRun) return { failures: 'exclusive', results: 'truncate', resumed, warnings: [] };
  const failureLog = await inspect('--failures', failures);
  const results = out === undefined || out === STDOUT ? undefined : await inspect('--out', out);
  if (results !== undefined && sameFile(results, failureLog)) {
    throw new UsageError('IMGPUSH_BAD_LOG_PATH', `--out ${out} and --failures ${failures} are one file: name two files`);
  }
  if (results !== undefined && await isInput(results, settings.inputs, settings.extensions)) {
    throw badPath('--out', results.path, 'is one of the images to send; name a file outside the inputs');
  }
  // A device, a pipe or an empty file named outright is written as it is; a file holding failures is never written over.
  const holdsFailures = failureLog.stats === undefined || (failureLog.stats.isFile() && failureLog.stats.size > 0);
  const warnings = failuresGiven && holdsFailures && failureLog.stats !== undefined
    ? [`--failures ${failures} holds the failures of an earlier run (imgpush retry ${failures} sends them): this run's go to a new file next to it`]
    : [];
  return { failures: holdsFailures ? 'exclusive' : 'truncate', results: settings.appendOut || resumed ? 'append' : 'truncate', resumed, warnings };
}

/** Whether the results log is one of the logs resumed from (`--skip-done X -o X`): it is appended to, not truncated. */
async function resumesInto(out: string | undefined, skipDone: readonly string[]): Promise<boolean> {
  if (out === undefined || out === STDOUT) return false;
  const key = async (path: string): Promise<string> => {
    const stats = await stat(path).catch(() => undefined);
    return stats === undefined ? resolve(path) : `${stats.dev}:${stats.ino}`;
  };
  const outKey = await key(out);
  for (const log of skipDone) if (await key(log) === outKey) return true;
  return false;
}
