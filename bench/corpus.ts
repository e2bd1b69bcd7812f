import { createCipheriv } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';

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
