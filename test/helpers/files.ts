import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { sha256 } from './server.js';

/** Deterministic bytes: the same seed and size always give the same file. */
export function bytesFor(seed: number, size: number): Buffer {
  const data = Buffer.allocUnsafe(size);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    data[i] = state & 0xff;
  }
  return data;
}

export interface Tree {
  readonly root: string;
  /** Path under root → sha256 of what was written. */
  readonly hashes: Map<string, string>;
  path(rel: string): string;
  remove(): Promise<void>;
}

/** A temp folder with the given files (path under root → size in bytes, or the contents). */
export async function makeTree(files: Record<string, number | string | Buffer>): Promise<Tree> {
  const root = await mkdtemp(join(tmpdir(), 'imgpush-test-'));
  const hashes = new Map<string, string>();
  let seed = 1;
  for (const [rel, spec] of Object.entries(files)) {
    const data = typeof spec === 'number' ? bytesFor(seed++, spec) : Buffer.from(spec);
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), data);
    hashes.set(rel, sha256(data));
  }
  return {
    root,
    hashes,
    path: (rel) => join(root, rel),
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

/** The JSON lines of a log file. */
export async function readJsonl<T = Record<string, unknown>>(path: string): Promise<T[]> {
  const text = await readFile(path, 'utf8');
  return text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as T);
}
