import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdaptiveLimit } from '../../src/client/pacing/adaptive-limit.js';
import { seededRandom } from '../../src/models/random.js';

/**
 * A server in a loop, no network: `latency(inFlight)` says how it answers
 * with that many uploads in flight, and `takes(inFlight)` how many of them
 * it takes (the rest it refuses, as a 429). Returns the limits the limiter
 * chose, round after round, and the refusals it caused.
 */
function drive(limiter: AdaptiveLimit, rounds: number, latency: (inFlight: number) => number, takes: (inFlight: number) => number) {
  const limits: number[] = [];
  let refused = 0;
  for (let round = 0; round < rounds; round++) {
    const inFlight = limiter.limit;
    const epoch = limiter.epoch;
    for (let i = 0; i < inFlight; i++) {
      const overloaded = i >= takes(inFlight);
      if (overloaded) refused++;
      limiter.sample(latency(inFlight), overloaded, epoch);
    }
    limits.push(limiter.limit);
  }
  return { limits, refused };
}

const tail = (values: number[]) => values.slice(-40);

test('a server whose capacity is 16 in flight (latency grows past it): the limit settles near 16', () => {
  const limiter = new AdaptiveLimit({ min: 1, max: 64, initial: 4 });
  // 10 ms up to 16 in flight; beyond, requests queue: latency grows with the excess.
  const { limits } = drive(limiter, 300, (n) => (n <= 16 ? 10 : 10 * (n / 16) ** 2), (n) => n);
  for (const limit of tail(limits)) assert.ok(limit >= 8 && limit <= 32, `limit ${limit} (tail ${tail(limits).join(',')})`);
});

test('a server that answers 429 above 12 in flight: the limit hovers at 12, never more than one over, with few refusals', () => {
  const limiter = new AdaptiveLimit({ min: 1, max: 64, initial: 4 });
  const { limits, refused } = drive(limiter, 300, () => 10, () => 12);
  assert.ok(tail(limits).every((limit) => limit >= 8 && limit <= 13), `the last rounds: ${tail(limits).join(',')}`);
  const fixedAt64 = 300 * (64 - 12);
  assert.ok(refused < fixedAt64 / 10, `${refused} refusals (a fixed 64 would have ${fixedAt64})`);
});

test('under a hard limit of 12 the limit sits at 12, probing 13 only now and then', () => {
  const limiter = new AdaptiveLimit({ min: 1, max: 64, initial: 4 });
  const { limits, refused } = drive(limiter, 400, () => 10, () => 12);
  const settled = limits.slice(100);
  const atLimit = settled.filter((limit) => limit === 12).length;
  assert.ok(atLimit >= settled.length * 0.8, `at 12 in ${atLimit} of ${settled.length} rounds: ${settled.join(',')}`);
  // A probe costs one refusal (the 13th in flight), and comes once in 16 calm rounds at most.
  assert.ok(refused <= Math.ceil(400 / 16) + 8, `${refused} refusals`);
});

test('when the server\'s limit rises from 12 to 24, the limit follows it up', () => {
  const limiter = new AdaptiveLimit({ min: 1, max: 64, initial: 4 });
  let capacity = 12;
  const takes = () => capacity;
  drive(limiter, 150, () => 10, takes);
  capacity = 24;
  const { limits } = drive(limiter, 600, () => 10, takes);
  assert.ok(limits.slice(-50).every((limit) => limit >= 18 && limit <= 25), `the last rounds: ${limits.slice(-50).join(',')}`);
});

test('a server that refuses every request: the limit goes down to its floor', () => {
  const limiter = new AdaptiveLimit({ min: 1, max: 64, initial: 16 });
  const { limits } = drive(limiter, 100, () => 10, () => 0);
  assert.equal(limits.at(-1), 1, limits.join(','));
});

test('a fast sink that never pushes back: the limit climbs to its maximum', () => {
  const limiter = new AdaptiveLimit({ min: 1, max: 64, initial: 4 });
  const { limits } = drive(limiter, 60, () => 2, (n) => n);
  assert.equal(limits.at(-1), 64);
  assert.deepEqual(limiter.range, { min: 4, max: 64 });
});

test('the limit stays within its bounds however the server behaves', () => {
  const limiter = new AdaptiveLimit({ min: 2, max: 20, initial: 8 });
  const { limits } = drive(limiter, 200, (n) => 5 * n, (n) => (n % 3 === 0 ? 0 : n));
  assert.ok(limits.every((limit) => limit >= 2 && limit <= 20));
});

test('a fast server with a hard limit of 8 and noisy latency: chance in the latency does not pass for congestion', () => {
  for (const seed of [1, 2, 3]) {
    const random = seededRandom(seed);
    const limiter = new AdaptiveLimit({ min: 1, max: 64, initial: 4 });
    // About a millisecond, a little more with more in flight (the client's own work), and as much again by chance.
    const { limits } = drive(limiter, 2000, (n) => (0.5 + n / 8) * (0.5 + random() * 1.5), () => 8);
    const settled = limits.slice(200);
    const below = settled.filter((limit) => limit < 7).length;
    assert.ok(below <= settled.length * 0.05, `seed ${seed}: under 7 in ${below} of ${settled.length} rounds`);
    assert.ok(Math.min(...settled) >= 4, `seed ${seed}: down to ${Math.min(...settled)}`);
  }
});

test('on a slow server a window closes after a second, so the limit still climbs in a short run', () => {
  const limiter = new AdaptiveLimit({ min: 1, max: 64, initial: 4 });
  let now = 0;
  // Two answers a second from each upload in flight: 32 samples would take four seconds at a limit of 4.
  for (let i = 0; i < 9; i++) limiter.sample(500, false, limiter.epoch, (now += 125));
  assert.equal(limiter.limit, 8);
});
