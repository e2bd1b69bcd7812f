import { access, constants } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import type { PushHooks, PushSummary } from '../client/index.js';
import type { ListedFile } from '../client/discover.js';
import { addRunFlags, toPushOptions, type InputFlags, type RunFlags } from './flags.js';
import { addServerCommands } from './serve-command.js';

/** Exit codes, documented in README. */
const EXIT = { ok: 0, failed: 1, usage: 2, SIGINT: 130, SIGTERM: 143 } as const;
/** After this many failure lines on stderr the rest are only in the failure log. */
const MAX_RESULT_LINES = 10;

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

type Client = typeof import('../client/index.js');

/**
 * Runs one push or retry with progress, signals and the summary, and returns
 * the exit code. The client and the progress bar load here, not at start,
 * so `--help` and `--version` stay fast.
 */
async function execute(flags: RunFlags, start: (client: Client, hooks: PushHooks) => Promise<PushSummary>): Promise<number> {
  const [client, { createProgressView }, report] = await Promise.all([
    import('../client/index.js'), import('./progress.js'), import('./report.js'),
  ]);
  const mode = flags.quiet === true ? 'none' : process.stderr.isTTY ? 'bar' : 'lines';
  const view = await createProgressView(mode);
  const stop = new AbortController();
  const cancel = new AbortController();
  let stoppedBy: 'SIGINT' | 'SIGTERM' | undefined;
  const onSignal = (name: 'SIGINT' | 'SIGTERM'): void => {
    if (stoppedBy === undefined) {
      stoppedBy = name;
      view.note('imgpush: stopping: uploads in flight get 5 s to finish (Ctrl-C again to abort them now)');
      stop.abort();
    } else {
      cancel.abort();
    }
  };
  const onSigint = (): void => onSignal('SIGINT');
  const onSigterm = (): void => onSignal('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  let shown = 0;
  try {
    const summary = await start(client, {
      signal: stop.signal,
      cancelSignal: cancel.signal,
      onProgress: (progress) => view.watch(progress),
      onResult: (result) => {
        // Files a stop kept from being sent, and those done before a resume, are the summary's business, not a line each.
        if (result.ok || result.error?.code === 'IMGPUSH_INTERRUPTED' || result.skipped?.code === 'IMGPUSH_DONE_BEFORE') return;
        if (result.skipped !== undefined && flags.quiet === true) return;
        if (++shown <= MAX_RESULT_LINES) view.note(report.formatResultLine(result));
        else if (shown === MAX_RESULT_LINES + 1) view.note('imgpush: more files failed or were skipped; the logs list every one');
      },
      onWarning: (message) => view.note(`imgpush: warning: ${message}`),
    });
    view.stop();
    if (flags.json === true) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else if (flags.quiet !== true) process.stdout.write(`${report.formatSummary(summary, 'imgpush retry')}\n`);
    if (stoppedBy !== undefined) return EXIT[stoppedBy];
    return summary.failed > 0 || summary.gateFailures.length > 0 ? EXIT.failed : EXIT.ok;
  } catch (error) {
    view.stop();
    return reportError(error, client, flags.verbose === true);
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
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
    throw new UsageError(`${flag} ${path} ${why}`);
  }
}

async function* chain(lists: ReadonlyArray<AsyncIterable<string>>): AsyncGenerator<string> {
  for (const list of lists) yield* list;
}

async function runPush(args: string[], flags: InputFlags): Promise<number> {
  const fromStdin = args.includes('-');
  const inputs = args.filter((arg) => arg !== '-');
  const code = await execute(flags, async (client, hooks) => {
    const nul = flags.null === true;
    if (flags.filesFrom !== undefined) await assertReadable(flags.filesFrom, '--files-from', client.UsageError);
    const lists: AsyncIterable<string>[] = [];
    if (fromStdin) lists.push(client.readPathList(process.stdin, nul));
    if (flags.filesFrom !== undefined) lists.push(client.readPathListFile(flags.filesFrom, nul));
    const listed: AsyncIterable<string | ListedFile> | undefined = lists.length === 0 ? undefined : chain(lists);
    const options = toPushOptions(flags);
    if (options.url === undefined) throw new client.UsageError('--url is required (where to send the files), e.g. --url http://localhost:8000/predict');
    return client.push({ ...options, url: options.url, inputs, listed }, hooks);
  });
  // A stop can leave stdin waiting for a line that never comes; it must not keep the process alive.
  if (fromStdin) process.stdin.destroy();
  return code;
}

function runRetry(failureLog: string, flags: RunFlags): Promise<number> {
  return execute(flags, (client, hooks) => client.retry(failureLog, toPushOptions(flags), hooks));
}

const program = new Command('imgpush')
  .description('Push images (files, folders, globs, lists) to an HTTP endpoint, concurrently, without losing a file.')
  .version(version, '-V, --version')
  .usage('[options] <inputs...> --url <url>\n       imgpush retry <failure-log> [options]\n       imgpush serve [options]\n       imgpush demo')
  .enablePositionalOptions()
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(`imgpush: ${text.replace(/^error: /, '')}`) })
  .argument('[inputs...]', 'files, folders (recursive), glob patterns, or - to read paths from stdin');
addRunFlags(program)
  .option('--files-from <file>', 'read more paths from this file, one a line')
  .option('-0, --null', 'paths in stdin and --files-from are NUL-separated (find -print0)')
  .action(async (args: string[], flags: InputFlags) => {
    process.exitCode = await runPush(args, flags);
  });

addRunFlags(program.command('retry')
  .description('send again the files of a failure log, as they were sent (flags given here override)')
  .argument('<failure-log>', 'a failure log written by imgpush'))
  .action(async (failureLog: string, flags: RunFlags) => {
    process.exitCode = await runRetry(failureLog, flags);
  });

addServerCommands(program);

try {
  await program.parseAsync();
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
}
