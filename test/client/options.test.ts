import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS, UsageError } from '../../src/client/index.js';
import { check, declarationOf, OPTION_KEYS, OPTIONS, type Declarations } from '../../src/client/options/declarations.js';
import { resolveOptions } from '../../src/client/options/resolve.js';
import type { PushOptions, RequestSettings } from '../../src/client/options/types.js';
import type { GivenOptions } from '../../src/cli/flags.js';

const BASE: PushOptions = { url: 'http://127.0.0.1:9/predict', inputs: ['frames'] };

test('DEFAULTS, built from the declarations, keeps the keys and values the library has always exported', () => {
  assert.deepEqual({ ...DEFAULTS }, {
    method: 'POST',
    body: 'multipart',
    field: 'image',
    concurrency: 'auto',
    maxConcurrency: 64,
    timeoutMs: 60_000,
    connectTimeoutMs: 10_000,
    retries: 3,
    retryMinDelayMs: 250,
    retryMaxDelayMs: 30_000,
    maxOutageMs: 5 * 60_000,
    failures: 'imgpush-failures.jsonl',
    appendOut: false,
    graceMs: 5_000,
    streamThresholdBytes: 1024 * 1024,
    filesPerRequest: 1,
    maxRequestBytes: 8 * 1024 * 1024,
    template: '{"image":"{base64}","name":"{name}"}',
    inputName: 'image',
    quality: { jpeg: 85, webp: 80 },
  });
});

test('a misspelt option key does not compile: in the declarations, in a check, in the flags given', () => {
  // @ts-expect-error: timeoutMS is not an option
  const misspelt: Declarations = { ...OPTIONS, timeoutMS: OPTIONS.timeoutMs };
  // @ts-expect-error: the option is timeoutMs
  const checked = (): number => check('timeout', 1);
  // @ts-expect-error: the CLI's flags land under the library's keys
  const given: GivenOptions = { timeout: 1 };
  assert.equal(misspelt.timeoutMs, OPTIONS.timeoutMs);
  assert.equal(typeof checked, 'function');
  assert.deepEqual(given, { timeout: 1 });
});

/** The options the failure log records under their own key (maxConcurrency goes as the concurrency of an adaptive run). */
type RecordedKey = { [K in keyof typeof OPTIONS]: typeof OPTIONS[K]['recorded'] extends 'no' ? never : K }[keyof typeof OPTIONS];
type Drift = Exclude<RecordedKey, keyof RequestSettings | 'maxConcurrency'> | Exclude<Extract<keyof RequestSettings, keyof typeof OPTIONS>, RecordedKey>;

test('what the failure log records is what each declaration says it records', () => {
  const inStep: [Drift] extends [never] ? true : Drift = true;
  assert.equal(inStep, true);
  const { settings } = resolveOptions(BASE);
  for (const key of OPTION_KEYS) {
    if (key === 'maxConcurrency') continue;
    assert.equal(key in settings, declarationOf(key).recorded !== 'no', key);
  }
});

test('every option has a flag with help, but the three of the library alone; every check names the flag', () => {
  const library = OPTION_KEYS.filter((key) => !('flag' in declarationOf(key)));
  assert.deepEqual(library, ['appendOut', 'graceMs', 'streamThresholdBytes']);
  assert.throws(() => resolveOptions({ ...BASE, timeoutMs: 0 }), { name: 'UsageError', message: '--timeout must be a duration of at least 1 ms (got 0 ms)' });
  assert.throws(() => resolveOptions({ ...BASE, graceMs: -1 }), { name: 'UsageError', message: 'grace period must be a duration of at least 0 ms (got -1 ms)' });
});

test('extensions: \'all\' is every file; \'*\', in a list or alone, is a usage error that says so', () => {
  assert.equal(resolveOptions({ ...BASE, extensions: 'all' }).extensions, null);
  assert.deepEqual([...resolveOptions({ ...BASE, extensions: ['.JPG', 'png'] }).extensions ?? []], ['jpg', 'png']);
  assert.throws(() => resolveOptions({ ...BASE, extensions: ['*'] }), { name: 'UsageError', message: "--ext: * stands alone for every file (in the library: extensions: 'all')" });
  // What a JavaScript caller, unchecked by TypeScript, may pass.
  const star: unknown = '*';
  assert.throws(() => resolveOptions({ ...BASE, extensions: star as 'all' }), (error: unknown) => error instanceof UsageError && /must be a list of extensions or 'all'/.test(error.message));
});

test('exclude: an empty pattern is a usage error, not an unexpected one', () => {
  assert.throws(() => resolveOptions({ ...BASE, exclude: ['*.tmp', ''] }), { name: 'UsageError', message: "--exclude needs a pattern, e.g. --exclude '*.tmp' (got an empty one)" });
});

test('a URL without its scheme is a usage error that says to add http://', () => {
  assert.throws(() => resolveOptions({ ...BASE, url: ['http://a:8000/p', 'b:8000/p'] }), {
    name: 'UsageError', message: '--url must start with http:// or https:// (got "b:8000/p"): add http://, e.g. http://b:8000/p',
  });
});
