import pLimit, { type LimitFunction } from 'p-limit';
import sharp, { type Metadata, type Sharp } from 'sharp';
import type { ImageType } from '../../shared/image-type.js';
import { ServerError } from '../errors.js';
import { channelTables, toModelInput, type ChannelTables } from './model-input.js';

/** How a model wants its images: a square of `size`, channels scaled to 0–1 then (x − mean) / std. */
export interface ImageSpec {
  readonly size: number;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
  readonly layout: 'nchw' | 'nhwc';
}

/** What one decode may cost. */
export interface DecodeLimits {
  /** Width × height, read from the header before anything is decoded (--max-pixels). */
  readonly maxPixels: number;
  /** One decode's time, libvips's own clock (--decode-timeout); whole seconds, rounded up. */
  readonly timeoutMs: number;
  /** Decodes at once (--max-decodes): below libuv's pool size, so that file I/O and DNS keep a thread. */
  readonly concurrency: number;
}

export interface PreparedImage {
  /** One image's input, 3 × size × size floats in the model's layout. */
  readonly input: Float32Array;
  readonly width: number;
  readonly height: number;
  readonly decodeMs: number;
}

/** Transparent pixels are laid on white before the model sees them (docs/server-limits.md). */
const BACKGROUND = { r: 255, g: 255, b: 255 };

/** What libvips's loaders this build of sharp has: BMP needs ImageMagick, HEIC an HEVC decoder; prebuilt sharp has neither. */
function decodableTypes(): ReadonlySet<ImageType> {
  const types = new Set<ImageType>(['jpeg', 'png', 'gif', 'webp', 'tiff', 'avif']);
  if (sharp.format.magick.input.buffer) types.add('bmp');
  if (sharp.format.heif.input.fileSuffix?.includes('.heic') === true) types.add('heic');
  return types;
}

/** The image's size as the model will see it, EXIF orientation applied. */
function orientedSize(metadata: Metadata): { width: number; height: number } {
  const width = metadata.width ?? 0;
  const height = metadata.height ?? 0;
  return (metadata.orientation ?? 1) >= 5 ? { width: height, height: width } : { width, height };
}

/** At most twice the model's size each way: resized here, where the cost follows the pixels, not libvips's cost per call. */
function isSmall(size: { width: number; height: number }, spec: ImageSpec): boolean {
  return size.width <= 2 * spec.size && size.height <= 2 * spec.size;
}

/**
 * Decodes and resizes images with sharp (libvips, in libuv's thread pool:
 * off the event loop) into a model's input, within limits: pixels checked
 * from the header first, a time limit per decode, a bounded number at
 * once, any decoder warning a failure. Error messages are built from what
 * this request knows, never from libvips's text: libvips keeps one error
 * buffer per process, so its text may be another request's.
 */
export class ImageDecoder {
  readonly #limits: DecodeLimits;
  readonly #slots: LimitFunction;
  readonly #decodable = decodableTypes();
  /** The look-up tables of the last spec seen: a server has one model, so one spec. */
  #tables: { spec: ImageSpec; tables: ChannelTables } | undefined;

  constructor(limits: DecodeLimits) {
    this.#limits = limits;
    this.#slots = pLimit(limits.concurrency);
  }

  /** Decodes holding a slot (at most --max-decodes). */
  get running(): number {
    return this.#slots.activeCount;
  }

  /** Decodes waiting for a slot. */
  get waiting(): number {
    return this.#slots.pendingCount;
  }

  /** 415 for a type this build cannot decode, before it takes a slot. */
  assertDecodable(type: ImageType, name: string): void {
    if (!this.#decodable.has(type)) {
      throw new ServerError('IMGPUSH_NOT_AN_IMAGE', `${name} is ${type.toUpperCase()}, which this server does not decode: send JPEG, PNG, GIF, WebP, TIFF or AVIF`);
    }
  }

  prepare(bytes: Buffer, type: ImageType, spec: ImageSpec, name: string): Promise<PreparedImage> {
    return this.#slots(() => this.#prepare(bytes, type, spec, name));
  }

  #tablesFor(spec: ImageSpec): ChannelTables {
    if (this.#tables?.spec !== spec) this.#tables = { spec, tables: channelTables(spec) };
    return this.#tables.tables;
  }

  /** libvips's resize costs about 3 ms of CPU per call even for a thumbnail, three times what this resize and conversion cost. */
  async #resizedHere(decoded: Sharp, spec: ImageSpec): Promise<Float32Array> {
    const { data, info } = await decoded.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, not 3`);
    return toModelInput(data, info.width, info.height, spec, this.#tablesFor(spec));
  }

  /** Resizing to the model's size lets libjpeg decode a large JPEG at 1/2, 1/4 or 1/8 scale (shrink-on-load). */
  async #resizedBySharp(decoded: Sharp, spec: ImageSpec): Promise<Float32Array> {
    const pixels = await decoded.resize(spec.size, spec.size, { fit: 'fill' }).raw().toBuffer();
    return toModelInput(pixels, spec.size, spec.size, spec, this.#tablesFor(spec));
  }

  async #prepare(bytes: Buffer, type: ImageType, spec: ImageSpec, name: string): Promise<PreparedImage> {
    const { maxPixels, timeoutMs } = this.#limits;
    const started = performance.now();
    let size: { width: number; height: number } | undefined;
    try {
      // sharp's own pixel limit is off: the header's size is checked here, before decoding, so that a bomb's size can be said.
      const image = sharp(bytes, { failOn: 'warning', limitInputPixels: false, autoOrient: true });
      size = orientedSize(await image.metadata());
      if (size.width * size.height > maxPixels) {
        throw new ServerError('IMGPUSH_TOO_MANY_PIXELS', `${name} is ${size.width}×${size.height} pixels, over --max-pixels ${maxPixels}: it was not decoded`);
      }
      const decoded = image.timeout({ seconds: Math.ceil(timeoutMs / 1000) }).flatten({ background: BACKGROUND }).toColourspace('srgb');
      const input = isSmall(size, spec) ? await this.#resizedHere(decoded, spec) : await this.#resizedBySharp(decoded, spec);
      return { input, ...size, decodeMs: performance.now() - started };
    } catch (error) {
      if (error instanceof ServerError) throw error;
      const format = type.toUpperCase();
      if (size === undefined) throw new ServerError('IMGPUSH_UNDECODABLE', `${name} does not decode: its ${format} header does not parse`);
      if (performance.now() - started >= timeoutMs) {
        throw new ServerError('IMGPUSH_DECODE_TIMEOUT', `${name} (a ${format} of ${size.width}×${size.height} pixels) took longer than --decode-timeout ${Math.ceil(timeoutMs / 1000)}s to decode`);
      }
      throw new ServerError('IMGPUSH_UNDECODABLE', `${name} does not decode: it is a ${format} of ${size.width}×${size.height} pixels whose data is damaged, truncated or not what its header says`);
    }
  }
}
