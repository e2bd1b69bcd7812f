import { access, constants, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { CommanderError } from 'commander';
import type { PushHooks, PushSummary } from '../client/index.js';
import type { ListedFile } from '../client/discovery/discover.js';
import { UsageError } from '../shared/errors.js';
import { parseArguments, runServerCommand, type Output, type ParsedArguments, type PushArguments, type RetryArguments } from './parse.js';

/** Exit codes, documented in README and docs/errors.md. */
const EXIT = { ok: 0, failed: 1, usage: 2, logFailed: 4, SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = 'SIGHUP' | 'SIGINT' | 'SIGTERM';
const STOP_SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * A reader gone (`imgpush … | head -1`, a closed terminal) ends the output,
 * not the run: the logs still account for every file, and the exit code is
 * the run's. Without a listener, EPIPE would be an uncaught 'error' event.
 */
function outliveClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', () => {});
  }
}
const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** After this many reasons on stderr, failures for others are only in the failure log (and the summary counts them). */
const MAX_RESULT_LINES = 10;

type Client = typeof import('../client/index.js');

/**
 * Runs one push or retry with progress, signals and the summary, and returns
 * the exit code. The client and the progress bar load here, not at start,
 * so `--help` and `--version` stay fast.
 */
async function execute(output: Output, resultsOnStdout: boolean, start: (client: Client, hooks: PushHooks) => Promise<PushSummary>): Promise<number> {
  const [client, { createProgressView }, report] = await Promise.all([
    import('../client/index.js'), import('./progress.js'), import('./report.js'),
  ]);
  const mode = output.quiet ? 'none' : process.stderr.isTTY ? 'bar' : 'lines';
  const view = await createProgressView(mode);
  const stop = new AbortController();
  const cancel = new AbortController();
  let stoppedBy: StopSignal | undefined;
  const onSignal = (name: StopSignal): void => {
    if (stoppedBy === undefined) {
      stoppedBy = name;
      view.note('imgpush: stopping: uploads in flight get 5 s to finish (Ctrl-C again to abort them now)');
      stop.abort();
    } else {
      cancel.abort();
    }
  };
  const listeners = STOP_SIGNALS.map((name) => [name, (): void => onSignal(name)] as const);
  for (const [name, listener] of listeners) process.on(name, listener);
  const resultLines = new report.ResultLines(MAX_RESULT_LINES);
  try {
    const summary = await start(client, {
      signal: stop.signal,
      cancelSignal: cancel.signal,
      // --quiet shows no progress: the run then skips what only progress needs (the count ahead).
      onProgress: mode === 'none' ? undefined : (progress) => view.watch(progress),
      onResult: (result) => {
        // Files a stop kept from being sent, and those done before a resume, are the summary's business, not a line each.
        if (result.ok || result.error?.code === 'IMGPUSH_INTERRUPTED' || result.skipped?.code === 'IMGPUSH_DONE_BEFORE') return;
        if (result.skipped !== undefined && output.quiet) return;
        const line = resultLines.lineFor(result);
        if (line !== undefined) view.note(line);
      },
      onWarning: (message) => view.note(`imgpush: warning: ${message}`),
    });
    view.stop();
    // With -o -, stdout is the results log's: the summary goes to stderr.
    const out = resultsOnStdout ? process.stderr : process.stdout;
    if (output.json) out.write(`${JSON.stringify(summary)}\n`);
    else if (!output.quiet) out.write(`${report.formatSummary(summary, 'imgpush retry')}\n`);
    if (summary.logError !== null) {
      const where = summary.unloggedFile === null ? 'stderr' : summary.unloggedFile;
      process.stderr.write(`imgpush: ${summary.logError}: the lines it could not take are in ${where}\n`);
      return EXIT.logFailed;
    }
    if (stoppedBy !== undefined) return EXIT[stoppedBy];
    return summary.failed > 0 || summary.gateFailures.length > 0 ? EXIT.failed : EXIT.ok;
  } catch (error) {
    view.stop();
    return reportError(error, client, output.verbose);
  } finally {
    for (const [name, listener] of listeners) process.off(name, listener);
  }
}

function reportError(error: unknown, client: Pick<Client, 'ImgpushError' | 'UsageError'>, verbose: boolean): number {
  if (error instanceof client.UsageError) {
    process.stderr.write(`imgpush: ${error.message}\n`);
    return EXIT.usage;
  }
  if (error instanceof client.ImgpushError) {
    process.stderr.write(`imgpush: ${error.message}\n`);
    return EXIT.failed;
  }
  const detail = verbose && error instanceof Error ? `\n${error.stack}` : ' (--verbose shows where)';
  process.stderr.write(`imgpush: unexpected error: ${error instanceof Error ? error.message : String(error)}${detail}\n`);
  return EXIT.failed;
}

async function assertReadable(path: string, flag: string, UsageError: Client['UsageError']): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
    throw new UsageError('IMGPUSH_USAGE', `${flag} ${path} ${why}`);
  }
}

async function* chain(lists: ReadonlyArray<AsyncIterable<string>>): AsyncGenerator<string> {
  for (const list of lists) yield* list;
}

async function runPush({ options, fromStdin, filesFrom, nul, output }: PushArguments): Promise<number> {
  const code = await execute(output, options.out === '-', async (client, hooks) => {
    if (filesFrom !== undefined) await assertReadable(filesFrom, '--files-from', client.UsageError);
    const lists: AsyncIterable<string>[] = [];
    if (fromStdin) lists.push(client.readPathList(process.stdin, nul));
    if (filesFrom !== undefined) lists.push(client.readPathListFile(filesFrom, nul));
    const listed: AsyncIterable<string | ListedFile> | undefined = lists.length === 0 ? undefined : chain(lists);
    // Read at every run, retries included: a proxy from the environment is never recorded.
    return client.push({ ...options, listed, proxyEnv: process.env }, hooks);
  });
  // A stop can leave stdin waiting for a line that never comes; it must not keep the process alive.
  if (fromStdin) process.stdin.destroy();
  return code;
}

/** A folder named where the failure log goes is the user's slip, not an unexpected error. */
async function assertNotFolder(path: string): Promise<void> {
  // A log missing or unreadable is the library's to report, in its words.
  const found = await stat(path).catch(() => undefined);
  if (found?.isDirectory() === true) {
    throw new UsageError('IMGPUSH_BAD_FAILURE_LOG', `${path} is a folder: imgpush retry takes a failure log file, such as imgpush-failures.jsonl`);
  }
}

function runRetry({ failureLog, overrides, output }: RetryArguments): Promise<number> {
  return execute(output, overrides.out === '-', async (client, hooks) => {
    await assertNotFolder(failureLog);
    return client.retry(failureLog, { ...overrides, proxyEnv: process.env }, hooks);
  });
}

/**
 * Ends the process once a run is over: its logs are closed and its summary
 * written, so what may still be pending is nobody's business (sockets
 * closing, V8 compiling on its threads, a call stuck on a network mount
 * that hangs, see FileAccess), and waiting for it only delays the exit.
 */
async function exitNow(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((stream) => new Promise<void>((resolve) => {
    stream.write('', () => resolve());
  })));
  process.exit(code);
}

async function main(argv: readonly string[]): Promise<number> {
  outliveClosedOutput();
  let parsed: ParsedArguments;
  try {
    parsed = parseArguments(argv, version);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`imgpush: ${error.message}\n`);
    return EXIT.usage;
  }
  switch (parsed.command) {
    case 'help':
    case 'version':
      process.stdout.write(parsed.text);
      return EXIT.ok;
    case 'push':
      return exitNow(await runPush(parsed));
    case 'retry':
      return exitNow(await runRetry(parsed));
    case 'serve':
    case 'demo':
      try {
        await runServerCommand(argv, version);
        // The server's commands set their exit code themselves.
        return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
      } catch (error) {
        if (!(error instanceof CommanderError)) throw error;
        return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
      }
  }
}

// A promise, not a top-level await: the CLI is bundled as CommonJS (scripts/bundle.mjs).
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
