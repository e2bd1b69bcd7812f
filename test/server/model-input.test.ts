import assert from 'node:assert/strict';
import { test } from 'node:test';
import { channelTables, toModelInput } from '../../src/server/inference/model-input.js';
import type { ImageSpec } from '../../src/server/inference/preprocess.js';

const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;

function input(pixels: number[] | Uint8Array, width: number, height: number, spec: ImageSpec): Float32Array {
  return toModelInput(Uint8Array.from(pixels), width, height, spec, channelTables(spec));
}

/** NHWC values read back in NCHW order. */
function toNchw(nhwc: Float32Array, size: number): Float32Array {
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) out[c * plane + i] = nhwc[i * 3 + c] as number;
  return out;
}

test('an image of the model\'s size is normalised value by value, channel by channel, in both layouts', () => {
  const pixels = [255, 0, 128, 10, 20, 30, 0, 0, 0, 200, 100, 50];
  const nchw = input(pixels, 2, 2, { size: 2, layout: 'nchw', ...IMAGENET });
  const expected = (value: number, c: 0 | 1 | 2) => Math.fround((value / 255 - IMAGENET.mean[c]) / IMAGENET.std[c]);
  for (let i = 0; i < 4; i++) {
    for (const c of [0, 1, 2] as const) assert.equal(nchw[c * 4 + i], expected(pixels[i * 3 + c] as number, c), `pixel ${i} channel ${c}`);
  }
  assert.deepEqual(toNchw(input(pixels, 2, 2, { size: 2, layout: 'nhwc', ...IMAGENET }), 2), nchw);
});

test('enlarging two pixels to four blends them by distance, as a triangle filter does', () => {
  const plain = { size: 4, layout: 'nchw', mean: [0, 0, 0], std: [1, 1, 1] } as const;
  const row = Array.from(input([0, 0, 0, 255, 255, 255], 2, 1, plain).subarray(0, 4));
  // Output centres fall at 0.25, 0.75, 1.25 and 1.75 source pixels: the middle two are 1/4 and 3/4 of the way.
  [0, 0.25, 0.75, 1].forEach((value, x) => assert.ok(Math.abs((row[x] as number) - value) < 1e-6, `x ${x}: ${row[x]}`));
});

test('resized up or down, a plain colour stays that colour and both layouts agree', () => {
  const size = 224;
  for (const [width, height] of [[160, 120], [400, 300], [224, 100], [1, 1]] as const) {
    const pixels = new Uint8Array(width * height * 3);
    for (let i = 0; i < pixels.length; i += 3) pixels.set([200, 30, 90], i);
    const nchw = input(pixels, width, height, { size, layout: 'nchw', ...IMAGENET });
    [200, 30, 90].forEach((value, c) => {
      const want = (value / 255 - (IMAGENET.mean[c] as number)) / (IMAGENET.std[c] as number);
      const plane = nchw.subarray(c * size * size, (c + 1) * size * size);
      assert.ok(plane.every((v) => Math.abs(v - want) < 1e-5), `${width}×${height} channel ${c}`);
    });
    assert.deepEqual(toNchw(input(pixels, width, height, { size, layout: 'nhwc', ...IMAGENET }), size), nchw, `${width}×${height}`);
  }
});
