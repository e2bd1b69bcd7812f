import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateGate } from '../../src/client/pacing/rate-gate.js';

test('a burst of up to `burst` files goes at once, then one every 1/rate s, and the long-run rate is exact', () => {
  let now = 0;
  const gate = new RateGate(100, 4, () => now);
  assert.deepEqual([1, 2, 3, 4].map(() => gate.book()), [0, 0, 0, 0]);
  assert.equal(gate.book(), 10);
  assert.equal(gate.book(), 20);
  // 10,000 files booked as fast as they come: the last goes at 10,000 / 100 s, less the burst.
  let last = 0;
  for (let i = 0; i < 10_000; i++) last = gate.book();
  assert.equal(Math.round(last), (10_000 + 6 - 4) * 10);
});

test('an idle gate refills to its burst, no more', () => {
  let now = 0;
  const gate = new RateGate(10, 3, () => now);
  for (let i = 0; i < 5; i++) gate.book();
  now = 60_000;
  assert.deepEqual([1, 2, 3].map(() => gate.book()), [0, 0, 0]);
  assert.ok(gate.book() > 0);
});
