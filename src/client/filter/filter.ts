import type { Discovered, DiscoveredFile } from '../discovery/discover.js';
import { DONE_BEFORE, type DoneFiles } from './done-files.js';
import { skippedResult, unsentResult, type FileResult } from '../results.js';
import { inShard, type Shard } from './shard.js';

/**
 * What becomes of a file found: another shard's (in no log), ended before
 * sending (with its result), to be sent, or with --dry-run one that would be.
 */
export type Verdict =
  | { readonly kind: 'other-shard' }
  | { readonly kind: 'ended'; readonly result: FileResult }
  | { readonly kind: 'send' | 'would-send'; readonly file: DiscoveredFile };

export interface FilterSettings {
  readonly shard: Shard | undefined;
  /** Files uploaded by earlier runs (--skip-done). */
  readonly done: DoneFiles;
  readonly dryRun: boolean;
}

/**
 * The filter stage: between discovery and scheduling, it keeps out the
 * other shards' files (--shard), ends what discovery could not read or
 * skipped, skips what an earlier run uploaded (--skip-done), and with
 * --dry-run lets nothing through to be sent.
 */
export class Filter {
  readonly #settings: FilterSettings;

  constructor(settings: FilterSettings) {
    this.#settings = settings;
  }

  judge(item: Discovered): Verdict {
    const { shard, done, dryRun } = this.#settings;
    if (shard !== undefined && !inShard(item.rel, shard)) return { kind: 'other-shard' };
    if (item.kind === 'failed') return { kind: 'ended', result: unsentResult(item, item.error, null) };
    if (item.kind === 'skipped') return { kind: 'ended', result: skippedResult(item, item.code, item.reason) };
    if (done.has(item.path, item.size, item.mtimeMs)) {
      return { kind: 'ended', result: skippedResult(item, DONE_BEFORE, 'uploaded by an earlier run, unchanged since (--skip-done)') };
    }
    return { kind: dryRun ? 'would-send' : 'send', file: item };
  }
}
