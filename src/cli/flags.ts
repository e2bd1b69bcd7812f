import { InvalidArgumentError, Option, type Command } from 'commander';
import {
  declarationOf, HELP_GROUPS, nameOf, OPTION_KEYS,
  type FlagOption, type HelpGroup, type OptionKey, type OptionValue, type RunCommand,
} from '../client/options/declarations.js';
import { InvalidValueError } from '../shared/units.js';

/** The run options the user gave on the command line, each as its declaration parsed and checked it. */
export type GivenOptions = { -readonly [K in OptionKey]?: OptionValue<K> };

/** Flags of the CLI alone, not options of the library: declared here, in the manner of the library's. */
interface CliFlag {
  readonly flag: `--${string}`;
  readonly short?: `-${string}`;
  readonly help: string;
  readonly group: HelpGroup;
  readonly commands: readonly RunCommand[];
}

const CLI_FLAGS = {
  filesFrom: { flag: '--files-from <file>', help: 'read more paths from this file, one a line', group: 'inputs', commands: ['push'] },
  null: { flag: '--null', short: '-0', help: 'paths in stdin and --files-from are NUL-separated (find -print0)', group: 'inputs', commands: ['push'] },
  json: { flag: '--json', help: 'print the summary as one JSON object on stdout', group: 'output', commands: ['push', 'retry'] },
  quiet: { flag: '--quiet', short: '-q', help: 'print nothing but errors', group: 'output', commands: ['push', 'retry'] },
  verbose: { flag: '--verbose', help: 'show stack traces of unexpected errors', group: 'output', commands: ['push', 'retry'] },
} as const satisfies Record<string, CliFlag>;

/** A heading of --help: `Retries and timeouts:`. */
export function headingOf(group: HelpGroup): string {
  return `${group[0]?.toUpperCase() ?? ''}${group.slice(1)}:`;
}

function flagsOf({ flag, short }: { readonly flag: string; readonly short?: string }): string {
  return short === undefined ? flag : `${short}, ${flag}`;
}

/** The help line's default: the first run's, as users write it, or, for a retry, what the failure log holds. */
function shownDefault<T>(declaration: FlagOption<T>, command: RunCommand): string | undefined {
  if (command === 'retry') {
    if (declaration.retryShown !== undefined) return declaration.retryShown;
    if (declaration.recorded === 'yes') return 'as recorded in the log';
    if (declaration.recorded === 'without secrets') return 'as recorded in the log, less what may be secret';
  }
  if (declaration.shown !== undefined) return declaration.shown;
  if (declaration.default === undefined) return undefined;
  return declaration.format === undefined ? String(declaration.default) : declaration.format(declaration.default);
}

/**
 * The commander option of a declared flag. Its parser stores the checked
 * value in `given` under the library's key: what the user gave, with its
 * type, and nothing else (defaults are the library's to apply).
 */
function optionOf<K extends OptionKey>(key: K, declaration: FlagOption<OptionValue<K>>, command: RunCommand, given: GivenOptions): Option {
  const shown = shownDefault(declaration, command);
  const option = new Option(flagsOf(declaration), shown === undefined ? declaration.help : `${declaration.help} (default: ${shown})`)
    .helpGroup(headingOf(declaration.group));
  if (declaration.choices !== undefined) option.choices(declaration.choices);
  if (declaration.env !== undefined) option.env(declaration.env);
  const name = nameOf(declaration);
  // After choices(), which sets a parser of its own: this one checks them too, and stores the value.
  return option.argParser((text: string, previous: OptionValue<K> | undefined) => {
    let value: OptionValue<K>;
    try {
      value = declaration.parse(text, previous, name);
    } catch (error) {
      // Commander prints it after the flag and the value given: "option '--timeout <duration>' argument 'soon' is invalid. expected …".
      if (error instanceof InvalidValueError) throw new InvalidArgumentError(error.message);
      throw error;
    }
    const checked = declaration.validate === undefined ? value : declaration.validate(value, name);
    given[key] = checked;
    return checked;
  });
}

/** The flag of option `key` for `command`; undefined when the option has no flag there. */
function flagOf<K extends OptionKey>(key: K, command: RunCommand, given: GivenOptions): { group: HelpGroup; option: Option } | undefined {
  const declaration = declarationOf(key);
  if (!('flag' in declaration) || !declaration.commands.includes(command)) return undefined;
  return { group: declaration.group, option: optionOf(key, declaration, command, given) };
}

function groupRank(group: HelpGroup): number {
  return HELP_GROUPS.indexOf(group);
}

/** Adds the flags `command` takes, in the order of the help groups; what is given lands in `given`. */
export function addRunFlags(program: Command, command: RunCommand, given: GivenOptions): Command {
  const options: Array<{ group: HelpGroup; option: Option }> = [];
  for (const key of OPTION_KEYS) {
    const flag = flagOf(key, command, given);
    if (flag !== undefined) options.push(flag);
  }
  for (const flag of Object.values(CLI_FLAGS)) {
    if ((flag.commands as readonly RunCommand[]).includes(command)) {
      options.push({ group: flag.group, option: new Option(flagsOf(flag), flag.help).helpGroup(headingOf(flag.group)) });
    }
  }
  // sort is stable: within a group, the order of the declarations.
  for (const { option } of options.sort((a, b) => groupRank(a.group) - groupRank(b.group))) program.addOption(option);
  return program;
}
