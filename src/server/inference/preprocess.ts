import sharp from 'sharp';
import { ServerError } from '../errors.js';

/** How a model wants its images: a square of `size`, channels scaled to 0–1 then (x − mean) / std. */
export interface ImageSpec {
  readonly size: number;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
  readonly layout: 'nchw' | 'nhwc';
}

export interface PreparedImage {
  /** One image's input, 3 × size × size floats in the model's layout. */
  readonly input: Float32Array;
  readonly width: number;
  readonly height: number;
  readonly decodeMs: number;
}

/**
 * Decodes and resizes an image with sharp (libvips, in the thread pool:
 * off the event loop) into the model's input. An image that does not
 * decode is a 422 that calls it by `name`, not a crash.
 */
export async function prepareImage(bytes: Buffer, spec: ImageSpec, name: string): Promise<PreparedImage> {
  const started = performance.now();
  let pixels: Buffer;
  let width: number;
  let height: number;
  try {
    const image = sharp(bytes, { failOn: 'error', limitInputPixels: 100_000_000 });
    const metadata = await image.metadata();
    width = metadata.width ?? 0;
    height = metadata.height ?? 0;
    pixels = await image.removeAlpha().toColourspace('srgb').resize(spec.size, spec.size, { fit: 'fill' }).raw().toBuffer();
  } catch (error) {
    throw new ServerError('IMGPUSH_UNDECODABLE', `${name} does not decode: ${(error as Error).message}`);
  }
  const plane = spec.size * spec.size;
  const input = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const value = ((pixels[i * 3 + c] as number) / 255 - spec.mean[c]!) / spec.std[c]!;
      input[spec.layout === 'nchw' ? c * plane + i : i * 3 + c] = value;
    }
  }
  return { input, width, height, decodeMs: performance.now() - started };
}
