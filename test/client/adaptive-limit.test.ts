import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdaptiveLimit } from '../../src/client/adaptive-limit.js';

/**
 * A server in a loop, no network: `latency(inFlight)` and `refuses(inFlight)`
 * say how it answers with that many uploads in flight. Returns the limits
 * the limiter chose, round after round, and the refusals it caused.
 */
function drive(limiter: AdaptiveLimit, rounds: number, latency: (inFlight: number) => number, refuses: (inFlight: number) => boolean) {
  const limits: number[] = [];
  let refused = 0;
  for (let round = 0; round < rounds; round++) {
    const inFlight = limiter.limit;
    for (let i = 0; i < inFlight; i++) {
      const overloaded = refuses(inFlight);
      if (overloaded) refused++;
      limiter.sample(latency(inFlight), overloaded);
    }
    limits.push(limiter.limit);
  }
  return { limits, refused };
}

const tail = (values: number[]) => values.slice(-40);

test('a server whose capacity is 16 in flight (latency grows past it): the limit settles near 16', () => {
  const limiter = new AdaptiveLimit({ min: 1, max: 64, initial: 4 });
  // 10 ms up to 16 in flight; beyond, requests queue: latency grows with the excess.
  const { limits } = drive(limiter, 300, (n) => (n <= 16 ? 10 : 10 * (n / 16) ** 2), () => false);
  for (const limit of tail(limits)) assert.ok(limit >= 8 && limit <= 32, `limit ${limit} (tail ${tail(limits).join(',')})`);
});

test('a server that answers 429 above 12 in flight: the limit hovers at 12, never more than one over, with few refusals', () => {
  const limiter = new AdaptiveLimit({ min: 1, max: 64, initial: 4 });
  const { limits, refused } = drive(limiter, 300, () => 10, (n) => n > 12);
  assert.ok(tail(limits).every((limit) => limit >= 8 && limit <= 13), `the last rounds: ${tail(limits).join(',')}`);
  const fixedAt64 = 300 * 64;
  assert.ok(refused < fixedAt64 / 10, `${refused} refusals (a fixed 64 would have ${fixedAt64})`);
});

test('a fast sink that never pushes back: the limit climbs to its maximum', () => {
  const limiter = new AdaptiveLimit({ min: 1, max: 64, initial: 4 });
  const { limits } = drive(limiter, 60, () => 2, () => false);
  assert.equal(limits.at(-1), 64);
  assert.deepEqual(limiter.range, { min: 4, max: 64 });
});

test('the limit stays within its bounds however the server behaves', () => {
  const limiter = new AdaptiveLimit({ min: 2, max: 20, initial: 8 });
  const { limits } = drive(limiter, 200, (n) => 5 * n, (n) => n % 3 === 0);
  assert.ok(limits.every((limit) => limit >= 2 && limit <= 20));
});
