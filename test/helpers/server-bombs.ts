import { crc32 } from 'node:zlib';
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
