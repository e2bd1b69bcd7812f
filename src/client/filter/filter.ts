import type { Discovered, DiscoveredFile } from '../discovery/discover.js';
import { DONE_BEFORE, type DoneFiles } from './done-files.js';
import { skippedResult, unsentResult, type FileResult } from '../results.js';
import { inShard, type Shard } from './shard.js';
import { TargetSet } from './target-set.js';
import type { UrlTemplate } from '../transport/url-template.js';
import { ImgpushError } from '../../shared/errors.js';

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
  /** The first --url: when it is per-file, the URL each file takes is kept, so that no two take one. */
  readonly url: UrlTemplate | undefined;
}

/**
 * The filter stage: between discovery and scheduling, it keeps out the
 * other shards' files (--shard), ends what discovery could not read or
 * skipped, skips what an earlier run uploaded (--skip-done), fails a file
 * whose per-file URL another file took, and with
 * --dry-run lets nothing through to be sent.
 */
export class Filter {
  readonly #settings: FilterSettings;
  readonly #targets: TargetSet | undefined;

  constructor(settings: FilterSettings) {
    this.#settings = settings;
    this.#targets = settings.url?.perFile === true ? new TargetSet(settings.url) : undefined;
  }

  judge(item: Discovered): Verdict {
    const { shard, done, dryRun } = this.#settings;
    if (shard !== undefined && !inShard(item.rel, shard)) return { kind: 'other-shard' };
    if (item.kind === 'failed') return { kind: 'ended', result: unsentResult(item, item.error, null) };
    if (item.kind === 'skipped') return { kind: 'ended', result: skippedResult(item, item.code, item.reason) };
    if (done.has(item.path, item.size, item.mtimeMs)) {
      return { kind: 'ended', result: skippedResult(item, DONE_BEFORE, 'uploaded by an earlier run, unchanged since (--skip-done)') };
    }
    const first = this.#targets?.claim(item.rel, item.path);
    if (first !== undefined) {
      const error = new ImgpushError('IMGPUSH_SAME_TARGET', `same target URL as ${first}: sending it would overwrite that file on the server (make --url tell them apart, e.g. with {path})`);
      return { kind: 'ended', result: unsentResult(item, error, null) };
    }
    return { kind: dryRun ? 'would-send' : 'send', file: item };
  }
}
