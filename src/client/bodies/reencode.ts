import { UsageError } from '../../shared/errors.js';
import { importModule } from '../../shared/import-module.js';
import { sniffImageType, type ImageType } from '../../shared/image-type.js';
import { contentTypeFor } from '../../shared/media-types.js';
import { ReencodeError } from '../errors.js';

/** What --format may ask for. */
export type TargetFormat = 'jpeg' | 'webp';
/** The encoders' quality when --quality is not given: each encoder's own sweet spot, so it lives with the encoding. */
export const DEFAULT_QUALITY: Readonly<Record<TargetFormat, number>> = { jpeg: 85, webp: 80 };
/** What a re-encoded file may be: the target, or a format kept as it was. */
type OutputFormat = TargetFormat | 'png' | 'gif' | 'tiff' | 'avif';

export interface ReencodeSettings {
  /** Fit within this many pixels each way, never enlarged; undefined: keep the size. */
  readonly resize: number | undefined;
  /** undefined: keep the file's format where sharp writes it, else JPEG. */
  readonly format: TargetFormat | undefined;
  /** Encoder quality 1–100 for JPEG and WebP; undefined: DEFAULT_QUALITY. */
  readonly quality: number | undefined;
}

/** A file's new bytes, with the name and type they go under. */
export interface Reencoded {
  readonly data: Buffer;
  readonly name: string;
  readonly type: string;
}

/** The format a file keeps when --format is not given: its own where sharp writes it, JPEG for the rest. */
const KEPT: Readonly<Record<ImageType, OutputFormat>> = {
  jpeg: 'jpeg', png: 'png', webp: 'webp', gif: 'gif', tiff: 'tiff', avif: 'avif', heic: 'jpeg', bmp: 'jpeg',
};

const EXTENSION: Readonly<Record<OutputFormat, string>> = { jpeg: 'jpg', webp: 'webp', png: 'png', gif: 'gif', tiff: 'tif', avif: 'avif' };

/**
 * The little of sharp's API used here, typed here: sharp is an optional
 * dependency, and the client must build where it is not installed.
 */
interface SharpImage {
  rotate(): SharpImage;
  resize(width: number, height: number, options: { fit: 'inside'; withoutEnlargement: boolean }): SharpImage;
  toFormat(format: OutputFormat, options: { quality?: number }): SharpImage;
  toBuffer(): Promise<Buffer>;
}
type Sharp = (input: Buffer) => SharpImage;

/** Not a literal, so that TypeScript does not look for sharp's types, nor bundlers for sharp. */
const SHARP: string = 'sharp';
const INSTALL = 'npm install sharp (npm install -g sharp next to a global imgpush)';

/**
 * Loads sharp, which only runs that re-encode need: a usage error naming
 * what to install when it is missing or does not load, before anything is sent.
 */
export async function loadReencoder(settings: ReencodeSettings): Promise<Reencoder> {
  let sharp: Sharp;
  try {
    sharp = ((await importModule(SHARP)) as { default: Sharp }).default;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND';
    const why = missing ? 'is not installed' : `did not load (${(error instanceof Error ? error.message : String(error)).split('\n', 1)[0]})`;
    throw new UsageError('IMGPUSH_SHARP_MISSING', `--resize, --format and --quality need sharp, which ${why}: ${INSTALL}`);
  }
  return new Reencoder(sharp, settings);
}

/**
 * Re-encodes images with sharp (libvips, in the thread pool: off the event
 * loop), upright by their EXIF orientation, within a box, never enlarged.
 */
export class Reencoder {
  readonly #sharp: Sharp;
  readonly #settings: ReencodeSettings;

  constructor(sharp: Sharp, settings: ReencodeSettings) {
    this.#sharp = sharp;
    this.#settings = settings;
  }

  /**
   * The image `name` holds as new bytes; the name's extension changes when
   * the format does, so that a server going by the name reads it right.
   * Throws ReencodeError for what sharp cannot decode or encode.
   */
  async reencode(bytes: Buffer, name: string): Promise<Reencoded> {
    const { resize, format: target, quality } = this.#settings;
    const format = target ?? KEPT[sniffImageType(bytes) ?? 'jpeg'];
    let data: Buffer;
    try {
      let image = this.#sharp(bytes).rotate();
      if (resize !== undefined) image = image.resize(resize, resize, { fit: 'inside', withoutEnlargement: true });
      const options = format === 'jpeg' || format === 'webp' ? { quality: quality ?? DEFAULT_QUALITY[format] } : {};
      data = await image.toFormat(format, options).toBuffer();
    } catch (error) {
      throw new ReencodeError(error);
    }
    const type = `image/${format}`;
    return { data, name: contentTypeFor(name) === type ? name : `${stemOf(name)}.${EXTENSION[format]}`, type };
  }
}

function stemOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? name : name.slice(0, dot);
}
