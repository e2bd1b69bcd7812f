import { sep } from 'node:path';

/** This job's share of the files: share `index` (1-based) of `count`. */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/**
 * Whether the file whose path under its input root is `rel` belongs to the
 * shard. The share is a hash of that path alone, so N jobs with shards 1/N …
 * N/N push disjoint shares that together are every file, whatever order
 * each job's discovery finds them in, on any platform.
 */
export function inShard(rel: string, { index, count }: Shard): boolean {
  return count === 1 || hashPath(rel) % count === index - 1;
}

/** FNV-1a over the path with `/` separators, then a final mix (MurmurHash3's) so that its low bits are spread too. */
function hashPath(rel: string): number {
  const path = sep === '/' ? rel : rel.replaceAll(sep, '/');
  let hash = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) hash = Math.imul(hash ^ path.charCodeAt(i), 0x01000193);
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}
