import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FileChangedError, FileReadError, HttpStatusError, InterruptedError, NetworkError } from '../../src/client/errors.js';
import { isOutage, isRetryable, parseRetryAfter, retryDelayMs } from '../../src/client/pacing/retry-policy.js';

const status = (code: number, retryAfterMs?: number) => new HttpStatusError(code, '', undefined, retryAfterMs);

test('which failures are retried', () => {
  const cases: Array<[string, unknown, boolean]> = [
    ['408', status(408), true],
    ['425', status(425), true],
    ['429', status(429), true],
    ['500', status(500), true],
    ['502', status(502), true],
    ['503', status(503), true],
    ['504', status(504), true],
    ['400', status(400), false],
    ['401', status(401), false],
    ['404', status(404), false],
    ['413', status(413), false],
    ['422', status(422), false],
    ['501', status(501), false],
    ['connection refused', new NetworkError('ECONNREFUSED', 'x', undefined), true],
    ['socket closed', new NetworkError('UND_ERR_SOCKET', 'x', undefined), true],
    ['TLS certificate not trusted, expired, for another host', new NetworkError('IMGPUSH_TLS', 'x', undefined), false],
    ['proxy wants other credentials (407)', new NetworkError('IMGPUSH_PROXY_AUTH', 'x', undefined), false],
    ['proxy could not reach the server', new NetworkError('IMGPUSH_PROXY', 'x', undefined), true],
    ['file changed while sent', new FileChangedError('10 bytes expected, 5 read'), true],
    ['too many open files', new FileReadError('EMFILE', 'x'), true],
    ['file missing', new FileReadError('ENOENT', 'x'), false],
    ['permission denied', new FileReadError('EACCES', 'x'), false],
    ['interrupted', new InterruptedError(true), false],
    ['anything else', new Error('x'), false],
  ];
  for (const [name, error, expected] of cases) assert.equal(isRetryable(error), expected, name);
});

test('which failures say the server is down, for the outage gate', () => {
  const cases: Array<[string, unknown, boolean]> = [
    ['connection refused', new NetworkError('ECONNREFUSED', 'x', undefined), true],
    ['503', status(503), true],
    ['proxy could not reach the server', new NetworkError('IMGPUSH_PROXY', 'x', undefined), true],
    ['TLS certificate not trusted', new NetworkError('IMGPUSH_TLS', 'x', undefined), false],
    ['proxy wants other credentials', new NetworkError('IMGPUSH_PROXY_AUTH', 'x', undefined), false],
    ['404', status(404), false],
  ];
  for (const [name, error, expected] of cases) assert.equal(isOutage(error), expected, name);
});

test('backoff is full jitter under a doubling ceiling, capped by the max delay', () => {
  const settings = { minDelayMs: 250, maxDelayMs: 30_000 };
  const cases: Array<[number, number, number]> = [
    // retry, random(), expected ms
    [1, 1, 250],
    [2, 1, 500],
    [3, 0.5, 500],
    [10, 1, 30_000],
    [4, 0, 0],
  ];
  for (const [retry, random, expected] of cases) {
    assert.equal(retryDelayMs(status(503), retry, settings, () => random), expected, `retry ${retry} at ${random}`);
  }
});

test('Retry-After wins over backoff, capped by the max delay', () => {
  const settings = { minDelayMs: 250, maxDelayMs: 30_000 };
  assert.equal(retryDelayMs(status(429, 2000), 1, settings, () => 1), 2000);
  assert.equal(retryDelayMs(status(503, 120_000), 1, settings, () => 1), 30_000);
});

test('Retry-After is read as seconds or as an HTTP date', () => {
  const now = Date.parse('2026-11-23T00:00:00Z');
  assert.equal(parseRetryAfter('2', now), 2000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Mon, 23 Nov 2026 00:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('Sun, 22 Nov 2026 23:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter(['3', '9'], now), 3000);
  assert.equal(parseRetryAfter(undefined, now), undefined);
  assert.equal(parseRetryAfter('soon', now), undefined);
});
