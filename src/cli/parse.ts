import { Command, CommanderError, Option, type OutputConfiguration } from 'commander';
import type { PushOptions } from '../client/options/types.js';
import { UsageError } from '../shared/errors.js';
import { addRunFlags, headingOf, type GivenOptions } from './flags.js';
import { addServerCommands } from './serve-command.js';

/** How the CLI prints: flags of the CLI alone. */
export interface Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
}

/** A first run: the library's options (but the environment and the lists of paths, which main opens) and where more paths come from. */
export interface PushArguments {
  readonly command: 'push';
  readonly options: PushOptions;
  /** `-` was among the inputs: paths are read from stdin too. */
  readonly fromStdin: boolean;
  readonly filesFrom: string | undefined;
  /** Paths in stdin and --files-from are NUL-separated. */
  readonly nul: boolean;
  readonly output: Output;
}

export interface RetryArguments {
  readonly command: 'retry';
  readonly failureLog: string;
  /** Only the flags given: each overrides what the failure log recorded. */
  readonly overrides: GivenOptions;
  readonly output: Output;
}

/** `--help` or `--version`: the text to print, and nothing to run. */
interface TextArguments {
  readonly command: 'help' | 'version';
  readonly text: string;
}

/** `imgpush serve` and `imgpush demo`, whose flags are the server's business: `runServerCommand` parses them. */
interface ServerArguments {
  readonly command: 'serve' | 'demo';
}

export type ParsedArguments = PushArguments | RetryArguments | TextArguments | ServerArguments;

const EXAMPLES = `
Examples:
  imgpush ./frames --url http://127.0.0.1:8000/v1/predict
      every image under ./frames, to one endpoint
  imgpush ./photos --url https://api.example.com/upload --token "$TOKEN" -o results.jsonl
      with a bearer token, and a results log of one JSON line per file
  find ./frames -name '*.jpg' -print0 | imgpush - -0 --url http://127.0.0.1:8000/v1/predict
      the paths another program lists
  imgpush ./frames --url http://127.0.0.1:8000/v1/predict --skip-done results.jsonl -o results.jsonl
      resume a stopped run: files already uploaded, unchanged, are skipped
  imgpush retry imgpush-failures.jsonl --timeout 2m
      send again what failed, as it was sent, with a longer timeout
`;

/** --help, last among the output flags rather than alone under a heading of its own. */
function helpOption(): Option {
  return new Option('-h, --help', 'display help for command').helpGroup(headingOf('output'));
}

function outputOf(command: Command): Output {
  const { json, quiet, verbose } = command.opts();
  return { json: json === true, quiet: quiet === true, verbose: verbose === true };
}

const HELP: ReadonlySet<string> = new Set(['help', '-h', '--help']);

/**
 * The whole command line of imgpush, as commander knows it. The actions of
 * push and retry hand their arguments to `found`; serve and demo run the
 * server's side (only when `runServerCommand` parses them). Commands that
 * `argv` cannot reach are left out: building retry's flags and the server's
 * costs every run about 10 ms; help sees them all.
 */
function buildProgram(version: string, found: (parsed: ParsedArguments) => void, output: OutputConfiguration, argv: readonly string[]): Command {
  const help = argv.some((arg) => HELP.has(arg));
  const program = new Command('imgpush')
    .description('Push images (files, folders, globs, lists) to an HTTP endpoint, concurrently, without losing a file.')
    .usage('[options] <inputs...> --url <url>\n       imgpush retry <failure-log> [options]\n       imgpush serve [options]\n       imgpush demo')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput(output)
    .argument('[inputs...]', 'files, folders (recursive), glob patterns, or - to read paths from stdin');
  const given: GivenOptions = {};
  addRunFlags(program, 'push', given)
    // --version, added after the declared flags, goes last among the output flags.
    .optionsGroup(headingOf('output'))
    .version(version, '-V, --version')
    .addHelpOption(helpOption())
    .addHelpText('after', EXAMPLES)
    .action((args: string[]) => {
      const { filesFrom, null: nul } = program.opts();
      found({
        command: 'push',
        options: pushOptions(given, args.filter((arg) => arg !== '-')),
        fromStdin: args.includes('-'),
        filesFrom: typeof filesFrom === 'string' ? filesFrom : undefined,
        nul: nul === true,
        output: outputOf(program),
      });
    });
  if (help || argv.includes('retry')) addRetryCommand(program, found);
  if (help || argv.includes('serve') || argv.includes('demo')) addServerCommands(program);
  return program;
}

function addRetryCommand(program: Command, found: (parsed: ParsedArguments) => void): void {
  const overrides: GivenOptions = {};
  const retry = program.command('retry')
    .description('send again the files of a failure log, as they were sent (flags given here override)')
    .argument('<failure-log>', 'a failure log written by imgpush');
  addRunFlags(retry, 'retry', overrides)
    .addHelpOption(helpOption())
    .action((failureLog: string) => found({ command: 'retry', failureLog, overrides, output: outputOf(retry) }));
}

function pushOptions(given: GivenOptions, inputs: string[]): PushOptions {
  const { url, ...rest } = given;
  if (url === undefined) throw new UsageError('IMGPUSH_USAGE', '--url is required (where to send the files), e.g. --url http://localhost:8000/predict');
  return { ...rest, url, inputs };
}

/**
 * Reads imgpush's command line (without `node` and the script) into what to
 * run, every flag parsed and checked as its declaration says; `version` is
 * what --version prints. Throws a UsageError with the message users see for
 * a bad flag; options that depend on each other are checked by the library
 * (resolveOptions), as push() starts.
 *
 * @example
 * parseArguments(['./frames', '--url', 'http://127.0.0.1:8000/v1/predict', '--timeout', '2m'], '1.0.0')
 * // { command: 'push', options: { url: 'http://…', timeoutMs: 120000, inputs: ['./frames'] }, … }
 */
export function parseArguments(argv: readonly string[], version: string): ParsedArguments {
  const first = argv[0];
  if (first === 'serve' || first === 'demo') return { command: first };
  let parsed: ParsedArguments | undefined;
  let text = '';
  const keep = (chunk: string): void => {
    text += chunk;
  };
  // Errors come back as UsageErrors, for main to print once, its way.
  const program = buildProgram(version, (found) => {
    parsed = found;
  }, { writeOut: keep, writeErr: keep, outputError: () => undefined }, argv);
  try {
    program.parse([...argv], { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.exitCode !== 0) throw new UsageError('IMGPUSH_USAGE', error.message.replace(/^error: /, ''));
    return { command: error.code === 'commander.version' ? 'version' : 'help', text };
  }
  // Commander runs one action or throws (`imgpush` alone runs push's): this is a bug, not the user's doing.
  if (parsed === undefined) throw new Error(`imgpush: commander ran no command for ${JSON.stringify(argv)}`);
  return parsed;
}

/** Runs `imgpush serve` or `imgpush demo`: their flags, help and errors are the server commands' own (commander's errors are thrown). */
export async function runServerCommand(argv: readonly string[], version: string): Promise<void> {
  const program = buildProgram(version, () => undefined, { outputError: (text, write) => write(`imgpush: ${text.replace(/^error: /, '')}`) }, argv);
  await program.parseAsync([...argv], { from: 'user' });
}
