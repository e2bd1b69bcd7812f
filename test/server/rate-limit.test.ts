import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimiter } from '../../src/server/rate-limit.js';

test('a client gets a burst of N, then one request per 1/N s; another client has its own bucket', () => {
  const limiter = new RateLimiter(4);
  const at = 1000;
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('a', at)), [0, 0, 0, 0]);
  assert.equal(limiter.take('a', at), 0.25, 'the fifth waits a quarter second');
  assert.equal(limiter.take('b', at), 0, 'b is not held back by a');
  assert.equal(limiter.take('a', at + 250), 0, 'a quarter second later one more goes');
  assert.ok(limiter.take('a', at + 250) > 0);
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('a', at + 10_000)), [0, 0, 0, 0], 'an idle client has a full bucket again, no more');
  assert.ok(limiter.take('a', at + 10_000) > 0);
});
