import { createCipheriv } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { seededRandom } from '../src/models/random.js';

export interface CorpusSet {
  readonly name: string;
  readonly dir: string;
  readonly files: number;
  readonly bytes: number;
}

/**
 * Deterministic pseudo-random bytes (AES-CTR over zeros with a fixed key):
 * fast, and the same corpus on every machine. Wrapped in JPEG start and end
 * markers so tools that look at the type see a JPEG; the sink does not decode.
 */
function jpegShaped(seed: number, size: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seed, 12);
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), iv);
  const body = cipher.update(Buffer.alloc(size));
  body[0] = 0xff;
  body[1] = 0xd8;
  body[2] = 0xff;
  body[size - 2] = 0xff;
  body[size - 1] = 0xd9;
  return body;
}

async function makeSet(root: string, name: string, count: number, meanBytes: number, seedBase: number): Promise<CorpusSet> {
  const dir = join(root, name);
  let bytes = 0;
  const marker = join(dir, '.complete');
  const sizes = Array.from({ length: count }, (_, i) => Math.round(meanBytes * (0.75 + ((i * 7919) % 1000) / 2000)));
  for (const size of sizes) bytes += size;
  if (existsSync(marker)) return { name, dir, files: count, bytes };
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    await writeFile(join(dir, `${name}-${String(i).padStart(5, '0')}.jpg`), jpegShaped(seedBase + i, sizes[i] as number));
  }
  await writeFile(marker, '');
  return { name, dir, files: count, bytes };
}

/**
 * The benchmark corpus: 4,000 thumbnails of about 8 KB and 2,000 frames of
 * about 200 KB (the size of a 1280x720 JPEG), and 16,000 more thumbnails for
 * the steady state, where start-up no longer weighs on the figure.
 */
export async function makeCorpus(root: string): Promise<CorpusSet[]> {
  return [
    await makeSet(root, 'thumbnails', 4000, 8 * 1024, 0),
    await makeSet(root, 'frames', 2000, 200 * 1024, 100_000),
    await makeSet(root, 'thumbnails-16k', 16_000, 8 * 1024, 200_000),
  ];
}

/** Real JPEGs of 256x256 in plain colours, for the reference server to decode (made once per folder). */
export async function makeJpegSet(dir: string, count: number): Promise<string> {
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return dir;
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const image = sharp({ create: { width: 256, height: 256, channels: 3, background: { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 53) % 256 } } });
    await writeFile(join(dir, `img-${i}.jpg`), await image.jpeg().toBuffer());
  }
  await writeFile(marker, '');
  return dir;
}

/** The frames' size by default: a 720p camera's. */
const FRAME = { width: 1280, height: 720 } as const;

/** Film grain around mid-grey, the same for every image: it keeps a JPEG from compressing to nothing, as a camera's does. */
function grain(amplitude: number, width: number, height: number): Buffer {
  const random = seededRandom(1);
  const pixels = Buffer.allocUnsafe(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = 128 + Math.round((random() + random() + random() - 1.5) * amplitude);
  return pixels;
}

/**
 * Photo-like JPEGs at quality 85, 1280x720 (about 200 KB each) unless
 * `size` says otherwise; made once per folder, deterministic: smooth colour
 * fields, each from its own seeded 16x9 of random colours scaled up, under
 * a grain laid over them.
 */
export async function makePhotoSet(dir: string, count: number, size: { readonly width: number; readonly height: number } = FRAME): Promise<CorpusSet> {
  const { width, height } = size;
  const marker = join(dir, '.complete');
  const name = `img-frames-${count}`;
  const files = Array.from({ length: count }, (_, i) => join(dir, `frame-${String(i).padStart(5, '0')}.jpg`));
  if (!existsSync(marker)) {
    await mkdir(dir, { recursive: true });
    const layer = { input: grain(31, width, height), raw: { width, height, channels: 3 as const }, blend: 'overlay' as const };
    for (const [i, file] of files.entries()) {
      const random = seededRandom(1000 + i);
      const colours = Buffer.from(Array.from({ length: 16 * 9 * 3 }, () => Math.floor(random() * 256)));
      const field = await sharp(colours, { raw: { width: 16, height: 9, channels: 3 } }).resize(width, height, { kernel: 'cubic' }).raw().toBuffer();
      await sharp(field, { raw: { width, height, channels: 3 } }).composite([layer]).jpeg({ quality: 85 }).toFile(file);
    }
    await writeFile(marker, '');
  }
  let bytes = 0;
  for (const file of files) bytes += statSync(file).size;
  return { name, dir, files: count, bytes };
}
