import { stat } from 'node:fs/promises';
import { UsageError } from '../../shared/errors.js';
import { toFileReadError } from '../errors.js';

/** fast-glob (with micromatch under it) loads only when an input is not a path that exists. */
export async function isGlob(input: string): Promise<boolean> {
  const { default: fg } = await import('fast-glob');
  return fg.isDynamicPattern(input);
}

export function isNodeError(error: unknown, code: string): boolean {
  return (error as { code?: unknown } | null)?.code === code;
}

/**
 * Checks, before a run starts, that every path on the command line exists or
 * is a glob pattern: a typo is a usage error, not an empty run.
 */
export async function assertInputsExist(inputs: readonly string[]): Promise<void> {
  for (const input of inputs) {
    try {
      await stat(input);
    } catch (error) {
      if (await isGlob(input)) continue;
      const cause = isNodeError(error, 'ENOENT') ? 'does not exist' : toFileReadError(error).message;
      throw new UsageError('IMGPUSH_INPUT_NOT_FOUND', `input ${JSON.stringify(input)} ${cause}`);
    }
  }
}

/** The inputs held nothing to send: a usage error naming where imgpush looked and for what. */
export async function nothingFound({ inputs, extensions }: { inputs: readonly string[]; extensions: ReadonlySet<string> | null }): Promise<UsageError> {
  const { default: picomatch } = await import('picomatch');
  // A glob matches names whatever --ext says: its message is about the glob.
  if (inputs.length > 0 && inputs.every((input) => picomatch.scan(input).isGlob)) {
    return new UsageError('IMGPUSH_NOTHING_FOUND', `nothing to upload: no file matches ${inputs.join(', ')}`);
  }
  const where = inputs.length === 0 ? 'the list' : inputs.join(', ');
  const kinds = extensions === null ? 'files' : `files with extensions ${[...extensions].join(', ')}`;
  return new UsageError('IMGPUSH_NOTHING_FOUND', `nothing to upload: no ${kinds} found in ${where} (--ext changes the extensions, --hidden includes dot files)`);
}
