import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyHistogram } from '../../src/client/pacing/latency.js';

test('percentiles are within 2 % of the exact ones, and max is exact', () => {
  const histogram = new LatencyHistogram();
  const values = Array.from({ length: 10_000 }, (_, i) => 1 + i * 0.05); // 1 ms … 500.95 ms
  for (const value of values) histogram.record(value);
  const exact = (fraction: number) => values[Math.ceil(fraction * values.length) - 1] as number;
  for (const fraction of [0.5, 0.95, 0.99]) {
    const got = histogram.percentile(fraction);
    assert.ok(Math.abs(got - exact(fraction)) / exact(fraction) <= 0.02, `p${fraction * 100}: ${got} vs ${exact(fraction)}`);
  }
  assert.equal(histogram.summary().max, 500.95);
  assert.equal(histogram.count, 10_000);
});

test('an empty histogram reports zeros', () => {
  assert.deepEqual(new LatencyHistogram().summary(), { p50: 0, p95: 0, p99: 0, max: 0 });
});
