import { constants, crc32, deflateRawSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';

/*
 * Images whose headers lie: small files made with sharp, then patched to
 * declare another size. A decoder that trusts the header (as a pixel limit
 * must, to refuse before decoding) sees the declared size.
 */

function solid(width: number, height: number): Sharp {
  return sharp({ create: { width, height, channels: 3, background: { r: 90, g: 90, b: 90 } } });
}

/** A PNG whose IHDR declares width × height, its CRC made right again. */
export async function pngDeclaring(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await solid(8, 8).png().toBuffer());
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

/** A baseline JPEG of `real` pixels whose SOF0 declares width × height. */
export async function jpegDeclaring(width: number, height: number, real: { width: number; height: number } = { width: 16, height: 16 }): Promise<Buffer> {
  const jpeg = Buffer.from(await noise(real.width, real.height).jpeg({ quality: 80 }).toBuffer());
  const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
  if (sof < 0) throw new Error('no SOF0 in the JPEG sharp wrote');
  jpeg.writeUInt16BE(height, sof + 5);
  jpeg.writeUInt16BE(width, sof + 7);
  return jpeg;
}

/** An AVIF whose every `ispe` box declares width × height. */
export async function avifDeclaring(width: number, height: number): Promise<Buffer> {
  const avif = Buffer.from(await solid(16, 16).avif({ effort: 0 }).toBuffer());
  for (let at = avif.indexOf('ispe'); at >= 0; at = avif.indexOf('ispe', at + 4)) {
    avif.writeUInt32BE(width, at + 8);
    avif.writeUInt32BE(height, at + 12);
  }
  return avif;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/**
 * A valid black 16-bit RGB PNG of width × height whose every row is
 * Paeth-filtered, the costliest filter to undo: some 20 ms of decoding per
 * million pixels on the shared 2-core machine, in a file of some 6 bytes
 * per thousand pixels, written in milliseconds. The rows are alike, so one
 * deflated run of them (flushed, so that runs chain) is repeated.
 */
export function slowPng(width: number, height: number): Buffer {
  const PAETH = 4;
  const rowLength = 1 + width * 6;
  const rowsPerRun = Math.max(1, Math.floor(2 ** 20 / rowLength));
  const rows = Buffer.alloc(rowsPerRun * rowLength);
  for (let at = 0; at < rows.length; at += rowLength) rows[at] = PAETH;
  const run = deflateRawSync(rows, { level: 9, finishFlush: constants.Z_FULL_FLUSH });
  const runs = Math.floor(height / rowsPerRun);
  const last = deflateRawSync(rows.subarray(0, (height - runs * rowsPerRun) * rowLength), { level: 9 });
  // zlib's Adler-32 of the inflated rows: each adds PAETH then zeros.
  let a = 1;
  let b = 0;
  for (let row = 0; row < height; row++) {
    a = (a + PAETH) % 65521;
    b = (b + a * rowLength) % 65521;
  }
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE(((b << 16) | a) >>> 0);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.writeUInt8(16, 8);
  header.writeUInt8(2, 9);
  const data = Buffer.concat([Buffer.from([0x78, 0xda]), ...Array.from({ length: runs }, () => run), last, adler]);
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), pngChunk('IHDR', header), pngChunk('IDAT', data), pngChunk('IEND', Buffer.alloc(0))]);
}

/** Pixels of noise, so that a JPEG of them has a long scan to cut. */
export function noise(width: number, height: number, seed = 1): Sharp {
  const pixels = Buffer.alloc(width * height * 3);
  let state = seed;
  for (let i = 0; i < pixels.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    pixels[i] = state >>> 24;
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } });
}

/** A 2×2 24-bit BMP: a type sharp's prebuilt libvips has no loader for. */
export function tinyBmp(): Buffer {
  const rowSize = 8;
  const bmp = Buffer.alloc(54 + rowSize * 2);
  bmp.write('BM', 0, 'latin1');
  bmp.writeUInt32LE(bmp.length, 2);
  bmp.writeUInt32LE(54, 10);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(2, 18);
  bmp.writeInt32LE(2, 22);
  bmp.writeUInt16LE(1, 26);
  bmp.writeUInt16LE(24, 28);
  bmp.writeUInt32LE(rowSize * 2, 34);
  bmp.fill(0xff, 54);
  return bmp;
}
