import { appendFile, rename, rm, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { failureLogHeader, openFailureLog, type OpenedFailureLog } from '../logs/failure-log.js';
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
 * The lines of the old log that name no file it could read go into the new
 * failure log as they were (a later retry finds them unreadable again, and
 * keeps them again), so no retry ever drops them; they count as failed.
 */
async function keepUnreadable(log: OpenedFailureLog, summary: PushSummary, failures: string, results: string | null): Promise<PushSummary> {
  const kept = log.unreadable;
  if (kept.length === 0) return summary;
  const lines = `${kept.join('\n')}\n`;
  if (summary.failuresFile === null) await writeFile(failures, `${JSON.stringify(failureLogHeader(log.settings, results))}\n${lines}`, { flag: 'wx' });
  else await appendFile(summary.failuresFile, lines);
  return { ...summary, failuresFile: summary.failuresFile ?? failures, failed: summary.failed + kept.length, unreadable: kept.length };
}

/**
 * Sends again exactly the files of a failure log, with the request settings
 * it recorded (overrides win), and writes a new failure log of what still
 * failed. By default that new log replaces the old one, but only once the
 * run has finished: an interrupted retry leaves the old log whole. The
 * answers are appended to the results log the first run wrote (or `out`).
 * A line of the log it cannot read is kept in the new log, never dropped.
 *
 * @example
 * const summary = await retry('imgpush-failures.jsonl', { concurrency: 4 });
 */
export async function retry(failureLog: string, overrides: RetryOverrides = {}, hooks: PushHooks = {}): Promise<PushSummary> {
  const log = await openFailureLog(failureLog, (line) => hooks.onWarning?.(`${failureLog} line ${line} is not a complete entry; kept in the new failure log`));
  for (const warning of missingSecrets(log.settings, overrides)) hooks.onWarning?.(warning);
  const target = overrides.failures ?? failureLog;
  const replacing = resolve(target) === resolve(failureLog);
  const failures = replacing ? `${target}.retry-${process.pid}` : target;
  const out = overrides.out ?? log.results ?? undefined;
  const results = out === undefined || out === '-' ? null : resolve(out);
  const options = { ...forOverrides(fromSettings(log.settings), overrides), ...overrides, listed: log.files, failures, out, appendOut: true };
  const summary = await push(options, hooks);
  if (summary.interrupted) {
    if (replacing) await rm(summary.failuresFile ?? failures, { force: true });
    return replacing ? { ...summary, failuresFile: failureLog } : summary;
  }
  const kept = await keepUnreadable(log, summary, failures, results);
  if (!replacing) return kept;
  if (kept.failuresFile === null) {
    await rm(failureLog, { force: true });
    return kept;
  }
  await rename(kept.failuresFile, failureLog);
  return { ...kept, failuresFile: failureLog };
}
