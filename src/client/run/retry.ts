import { rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { openFailureLog } from '../logs/failure-log.js';
import type { PushOptions, RequestSettings } from '../options/types.js';
import { push, type PushHooks } from './push.js';
import type { PushSummary } from '../logs/summary.js';

/** Options of a retry: any of push's, each overriding what the failure log recorded. */
export type RetryOverrides = Partial<Omit<PushOptions, 'inputs' | 'listed'>>;
type RecordedOptions = Omit<PushOptions, 'inputs' | 'listed'>;

/** The recorded settings as push options: the headers whose values were kept, not the token nor the proxy's credentials. */
function fromSettings({ headers, token: _sent, proxyCredentials: _had, adaptive, concurrency, ...settings }: RequestSettings): RecordedOptions {
  const kept = headers.filter((pair): pair is readonly [string, string] => pair[1] !== null);
  return { ...settings, headers: kept, ...(adaptive ? { concurrency: 'auto', maxConcurrency: concurrency } : { concurrency }) };
}

/**
 * A retry with another --body leaves out what only the recorded body used
 * (its --template, --form fields, or v2 model), and one with a fixed
 * --concurrency the recorded bound of auto.
 */
function forOverrides(recorded: RecordedOptions, overrides: RetryOverrides): RecordedOptions {
  let kept = recorded;
  if (typeof overrides.concurrency === 'number') {
    const { maxConcurrency: _bound, ...rest } = kept;
    kept = rest;
  }
  if (overrides.body !== undefined && overrides.body !== recorded.body) {
    const { template: _template, form: _form, model: _model, inputName: _input, ...rest } = kept;
    kept = rest;
  }
  return kept;
}

function missingSecrets(settings: RequestSettings, overrides: RetryOverrides): string[] {
  const pairs = Array.isArray(overrides.headers) ? overrides.headers : Object.entries(overrides.headers ?? {});
  const given = new Set(pairs.map(([name]) => name.toLowerCase()));
  const warnings = settings.headers
    .filter(([name, value]) => value === null && !given.has(name.toLowerCase()))
    .map(([name]) => `header ${name} was not recorded (it may be a secret): give it again with --header '${name}: …'`);
  if (settings.token && overrides.token === undefined) warnings.push('the first run sent a token: give --token again or set IMGPUSH_TOKEN');
  if (settings.proxyCredentials && overrides.proxy === undefined) {
    warnings.push(`the first run's proxy ${settings.proxy} had a user and password, which were not recorded: give --proxy again with them`);
  }
  return warnings;
}

/**
 * Sends again exactly the files of a failure log, with the request settings
 * it recorded (overrides win), and writes a new failure log of what still
 * failed. By default that new log replaces the old one, but only once the
 * run has finished: an interrupted retry leaves the old log whole.
 *
 * @example
 * const summary = await retry('imgpush-failures.jsonl', { concurrency: 4 });
 */
export async function retry(failureLog: string, overrides: RetryOverrides = {}, hooks: PushHooks = {}): Promise<PushSummary> {
  const log = await openFailureLog(failureLog, (line) => hooks.onWarning?.(`${failureLog} line ${line} is not a complete entry; skipped`));
  for (const warning of missingSecrets(log.settings, overrides)) hooks.onWarning?.(warning);
  const target = overrides.failures ?? failureLog;
  const replacing = resolve(target) === resolve(failureLog);
  const failures = replacing ? `${target}.retry-${process.pid}` : target;
  const summary = await push({ ...forOverrides(fromSettings(log.settings), overrides), ...overrides, listed: log.files, failures }, hooks);
  if (!replacing) return summary;
  if (summary.interrupted) {
    await rm(failures, { force: true });
    return { ...summary, failuresFile: failureLog };
  }
  if (summary.failuresFile === null) {
    await rm(failureLog, { force: true });
    return summary;
  }
  await rename(failures, failureLog);
  return { ...summary, failuresFile: failureLog };
}
