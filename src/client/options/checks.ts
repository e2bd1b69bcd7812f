import { UsageError } from '../../shared/errors.js';
import { InvalidValueError } from '../../shared/units.js';

/*
 * The checks the declarations share. Each names the flag it checks (or, for
 * an option with no flag, what the option is called), so that a library user
 * and a CLI user read the same message.
 */

export function integer(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    throw new UsageError('IMGPUSH_USAGE', `${name} must be a whole number ${range} (got ${value})`);
  }
  return value;
}

export function duration(name: string, ms: number, min: number): number {
  if (!Number.isFinite(ms) || ms < min) throw new UsageError('IMGPUSH_USAGE', `${name} must be a duration of at least ${min} ms (got ${ms} ms)`);
  return ms;
}

export function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new UsageError('IMGPUSH_USAGE', `${name} must be a number above 0 (got ${value})`);
  return value;
}

export function fraction(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new UsageError('IMGPUSH_USAGE', `${name} must be a fraction from 0 to 1, or a percentage (got ${value})`);
  return value;
}

export function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  const found = allowed.find((item) => item === value);
  if (found === undefined) throw new UsageError('IMGPUSH_USAGE', `${name} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
  return found;
}

/** A value from the command line among `allowed`, with the words commander uses for its own choices. */
export function choice<T extends string>(text: string, allowed: readonly T[]): T {
  const found = allowed.find((item) => item === text);
  if (found === undefined) throw new InvalidValueError(`Allowed choices are ${allowed.join(', ')}.`);
  return found;
}
