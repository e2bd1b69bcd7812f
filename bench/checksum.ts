/**
 * `npm run bench:checksum`: what --checksum costs per file. Reads bodies
 * (multipart, as a run does) of thumbnails (~5 KB) and 1280x720 JPEG frames
 * (~200 KB; the digest's cost depends on the size alone, so the bytes are
 * random) with and without the SHA-256 and its Content-Digest, and prints
 * the CPU time per file (user + system, the least of BENCH_ROUNDS, default 7:
 * on a shared machine the least disturbed round is the steadiest figure).
 * No server: the cost is the client's, on top of the read.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBodyReader } from '../src/client/bodies/request-body.js';
import { MultipartBody } from '../src/client/bodies/multipart.js';
import { FileAccess } from '../src/client/discovery/file-access.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const SIZES: ReadonlyArray<readonly [string, number, number]> = [
  ['thumbnail, 5 KB', 5 * 1024, 4000],
  ['1280x720 JPEG frame, 200 KB', 200 * 1024, 1000],
];


/** CPU µs per read of `path`, `count` times over. */
async function cpuPerRead(reader: FileBodyReader, path: string, count: number): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) await reader.read(path, 'f.jpg');
  const { user, system } = process.cpuUsage(before);
  return (user + system) / count;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'imgpush-bench-checksum-'));
  try {
    const format = new MultipartBody('image', []);
    // One FileAccess for both: on a busy machine it may go to the thread pool (slow calls), and then for both alike.
    const files = new FileAccess();
    const plain = new FileBodyReader(files, format, 1024 * 1024, undefined, false);
    const hashed = new FileBodyReader(files, format, 1024 * 1024, undefined, true);
    console.log(`CPU per file, least of ${ROUNDS} rounds (node ${process.version}, ${process.arch})`);
    for (const [label, size, count] of SIZES) {
      const path = join(dir, `${size}.jpg`);
      await writeFile(path, randomBytes(size));
      await cpuPerRead(hashed, path, count); // warm-up
      const without: number[] = [];
      const withDigest: number[] = [];
      // Alternated, so that neither pays more of the other's garbage collection.
      for (let round = 0; round < ROUNDS; round++) {
        if (round % 2 === 0) without.push(await cpuPerRead(plain, path, count));
        withDigest.push(await cpuPerRead(hashed, path, count));
        if (round % 2 === 1) without.push(await cpuPerRead(plain, path, count));
      }
      const [a, b] = [Math.min(...without), Math.min(...withDigest)];
      const calls = files.synchronous ? 'sync file calls' : 'file calls on the thread pool';
      console.log(`${label} (${calls}): read ${a.toFixed(1)} µs, with --checksum ${b.toFixed(1)} µs: +${(b - a).toFixed(1)} µs a file (${((b - a) / (size / 1024 / 1024)).toFixed(0)} µs/MiB)`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
