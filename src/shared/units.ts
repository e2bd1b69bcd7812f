/**
 * The values users write on a command line or in a config: durations, sizes,
 * counts. One parser each, shared by `imgpush` and `imgpush serve`, so that
 * `90s`, `2m` and `1h` mean the same everywhere. A parser throws
 * InvalidValueError with what it expected; the CLI names the flag.
 */
export class InvalidValueError extends Error {
  override name = 'InvalidValueError';
}

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** A duration in ms from `250ms`, `1.5s`, `2m`, `1h`, or a bare number of seconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (match === null) throw new InvalidValueError('expected a duration such as 30s, 250ms, 2m or 1h');
  return Number(match[1]) * DURATION_UNITS_MS[(match[2] ?? 's') as keyof typeof DURATION_UNITS_MS];
}

/** A duration in ms as a user would write it: `250ms`, `30s`, `2m`, `1h`. */
export function formatDuration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

const SIZE_UNITS = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 } as const;

/** A size in bytes from `25MB`, `512KB`, `1.5GB` or a bare number of bytes. */
export function parseSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(value.trim());
  if (match === null) throw new InvalidValueError('expected a size such as 25MB or 512KB');
  return Math.round(Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase() as keyof typeof SIZE_UNITS]);
}

/** A size as a user would write it: `64MB`, `512KB`, `100B`. */
export function formatSize(bytes: number): string {
  for (const [unit, scale] of [['GB', SIZE_UNITS.gb], ['MB', SIZE_UNITS.mb], ['KB', SIZE_UNITS.kb]] as const) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return `${bytes}B`;
}

/** 0, 1, 2, … */
export function parseWholeNumber(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidValueError('expected a whole number');
  return Number(value);
}

/** 1, 2, 3, … */
export function parsePositiveInteger(value: string): number {
  const number = parseWholeNumber(value);
  if (number < 1) throw new InvalidValueError('expected a whole number of 1 or more');
  return number;
}
