import type { ImageSpec } from './preprocess.js';

/** Each channel's 256 values scaled and normalised: (v / 255 − mean) / std, the same floats as computing it per pixel. */
export type ChannelTables = readonly [Float32Array, Float32Array, Float32Array];

export function channelTables(spec: ImageSpec): ChannelTables {
  const table = (c: 0 | 1 | 2) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - spec.mean[c]) / spec.std[c]);
  return [table(0), table(1), table(2)];
}

/** Which source pixels make each output pixel along one axis, and their weights (a triangle filter, widened when shrinking). */
interface Axis {
  readonly first: Int32Array;
  readonly count: Int32Array;
  readonly weights: Float64Array;
  readonly taps: number;
}

function axis(from: number, to: number): Axis {
  const scale = from / to;
  const support = Math.max(scale, 1);
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(to);
  const count = new Int32Array(to);
  const weights = new Float64Array(to * taps);
  for (let i = 0; i < to; i++) {
    const centre = (i + 0.5) * scale;
    // Only pixels whose weight is above 0: when enlarging, two a value.
    const low = Math.max(0, Math.floor(centre - support + 0.5));
    const high = Math.min(from, Math.ceil(centre + support - 0.5));
    let total = 0;
    for (let j = low; j < high; j++) {
      const weight = Math.max(0, 1 - Math.abs((j + 0.5 - centre) / support));
      weights[i * taps + j - low] = weight;
      total += weight;
    }
    for (let k = 0; k < high - low; k++) weights[i * taps + k] = (weights[i * taps + k] as number) / total;
    first[i] = low;
    count[i] = high - low;
  }
  return { first, count, weights, taps };
}

let rowsBuffer = new Float32Array(0);

/** The rows between the two passes: one buffer, grown when needed, reused by every resize (they are synchronous). */
function scratch(length: number): Float32Array {
  if (rowsBuffer.length < length) rowsBuffer = new Float32Array(length);
  return rowsBuffer;
}

/**
 * Each row resized across, normalised ((v / 255 − mean) / std: the weights sum to 1, so normalising before
 * resizing down is the same), written in the model's layout: NCHW as three planes of `height` rows, NHWC interleaved.
 */
function resizeAcross(pixels: Uint8Array, width: number, height: number, spec: ImageSpec): Float32Array {
  const { size, layout } = spec;
  const { first, count, weights, taps } = axis(width, size);
  const [scaleR, scaleG, scaleB] = spec.std.map((std) => 1 / (255 * std)) as [number, number, number];
  const [shiftR, shiftG, shiftB] = spec.mean.map((mean, c) => -mean / (spec.std[c] as number)) as [number, number, number];
  const rows = scratch(3 * height * size);
  const plane = height * size;
  const { pixel, channel } = layout === 'nhwc' ? { pixel: 3, channel: 1 } : { pixel: 1, channel: plane };
  for (let y = 0, o = 0; y < height; y++) {
    const source = y * width * 3;
    for (let x = 0; x < size; x++, o += pixel) {
      let p = source + (first[x] as number) * 3;
      let w = x * taps;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = count[x] as number; k > 0; k--, p += 3, w++) {
        const weight = weights[w] as number;
        r += (pixels[p] as number) * weight;
        g += (pixels[p + 1] as number) * weight;
        b += (pixels[p + 2] as number) * weight;
      }
      rows[o] = r * scaleR + shiftR;
      rows[o + channel] = g * scaleG + shiftG;
      rows[o + 2 * channel] = b * scaleB + shiftB;
    }
  }
  return rows;
}

/** Rows of the model's width (in its layout) resized down to its height: NCHW plane by plane, NHWC as one plane three values wide. */
function resizeDown(rows: Float32Array, height: number, spec: ImageSpec): Float32Array {
  const { size } = spec;
  const { first, count, weights, taps } = axis(height, size);
  const [planes, width] = spec.layout === 'nhwc' ? [1, 3 * size] : [3, size];
  const input = new Float32Array(3 * size * size);
  for (let plane = 0; plane < planes; plane++) {
    const source = plane * height * width;
    for (let y = 0, o = plane * size * width; y < size; y++, o += width) {
      const base = source + (first[y] as number) * width;
      const w = y * taps;
      if (count[y] === 2) {
        // Enlarging, every value is a blend of two rows: one loop without an accumulator's loads and stores.
        const above = weights[w] as number;
        const below = weights[w + 1] as number;
        for (let x = 0; x < width; x++) input[o + x] = (rows[base + x] as number) * above + (rows[base + width + x] as number) * below;
      } else {
        for (let k = 0; k < (count[y] as number); k++) {
          const weight = weights[w + k] as number;
          for (let x = 0, from = base + k * width; x < width; x++) input[o + x] = (input[o + x] as number) + (rows[from + x] as number) * weight;
        }
      }
    }
  }
  return input;
}

/** Where a pixel's three values go: the step from one pixel to the next, and from one channel to the next. */
function steps(spec: ImageSpec): { pixel: number; channel: number } {
  return spec.layout === 'nhwc' ? { pixel: 3, channel: 1 } : { pixel: 1, channel: spec.size * spec.size };
}

/** HWC bytes of the model's size to its input: each through its channel's table, written in the model's layout. */
function convertBytes(values: Uint8Array, spec: ImageSpec, [r, g, b]: ChannelTables): Float32Array {
  const input = new Float32Array(3 * spec.size * spec.size);
  const { pixel, channel } = steps(spec);
  for (let i = 0, o = 0; i < input.length; i += 3, o += pixel) {
    input[o] = r[values[i] as number] as number;
    input[o + channel] = g[values[i + 1] as number] as number;
    input[o + 2 * channel] = b[values[i + 2] as number] as number;
  }
  return input;
}

/**
 * An image's RGB bytes (HWC, `width`×`height`) to a model's input: at the
 * model's size, each value through its channel's table; else resized to it
 * here (a separable triangle filter, across then down) and normalised on
 * the way.
 */
export function toModelInput(pixels: Uint8Array, width: number, height: number, spec: ImageSpec, tables: ChannelTables): Float32Array {
  if (width === spec.size && height === spec.size) return convertBytes(pixels, spec, tables);
  return resizeDown(resizeAcross(pixels, width, height, spec), height, spec);
}
