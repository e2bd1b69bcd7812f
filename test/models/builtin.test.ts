import assert from 'node:assert/strict';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { colorsModel, syntheticModel } from '../../src/models/builtin.js';

/** A batch of plain-colour images, [N, 3, size, size], values 0–1. */
function plainImages(colors: ReadonlyArray<readonly [number, number, number]>, size: number): ort.Tensor {
  const data = new Float32Array(colors.length * 3 * size * size);
  colors.forEach((rgb, n) => {
    rgb.forEach((value, channel) => data.fill(value, (n * 3 + channel) * size * size, (n * 3 + channel + 1) * size * size));
  });
  return new ort.Tensor('float32', data, [colors.length, 3, size, size]);
}

function argmax(values: Float32Array, offset: number, count: number): number {
  let best = 0;
  for (let i = 1; i < count; i++) if ((values[offset + i] as number) > (values[offset + best] as number)) best = i;
  return best;
}

test('builtin:colors runs in onnxruntime and names plain colours right, in one batch', async () => {
  const model = colorsModel();
  const session = await ort.InferenceSession.create(model.bytes);
  assert.deepEqual(session.inputNames, ['image']);
  assert.deepEqual(session.outputNames, ['probabilities']);
  const cases: Array<[string, [number, number, number]]> = [
    ['red', [1, 0, 0]], ['green', [0, 1, 0]], ['blue', [0, 0, 1]], ['yellow', [1, 1, 0]], ['cyan', [0, 1, 1]],
    ['magenta', [1, 0, 1]], ['white', [1, 1, 1]], ['black', [0, 0, 0]], ['gray', [0.5, 0.5, 0.5]], ['red', [0.9, 0.1, 0.05]],
  ];
  const { probabilities } = await session.run({ image: plainImages(cases.map(([, rgb]) => rgb), 8) });
  const labels = model.labels.length;
  assert.deepEqual(probabilities?.dims, [cases.length, labels]);
  const scores = probabilities?.data as Float32Array;
  cases.forEach(([expected], n) => {
    assert.equal(model.labels[argmax(scores, n * labels, labels)], expected, `case ${n}`);
    const sum = scores.subarray(n * labels, (n + 1) * labels).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-4, 'softmax sums to 1');
  });
  assert.ok((scores[0] as number) > 0.99, 'a pure red image is red with confidence');
  await session.release();
});

test('builtin:synthetic is about 0.5 GFLOP per image and runs with a dynamic batch', async () => {
  const model = syntheticModel();
  assert.ok(model.flopsPerImage > 0.4e9 && model.flopsPerImage < 0.6e9, `${model.flopsPerImage} FLOP`);
  const session = await ort.InferenceSession.create(model.bytes);
  for (const batch of [1, 3]) {
    const input = new ort.Tensor('float32', new Float32Array(batch * 3 * 224 * 224).fill(0.5), [batch, 3, 224, 224]);
    const { probabilities } = await session.run({ image: input });
    assert.deepEqual(probabilities?.dims, [batch, 10]);
  }
  await session.release();
});
