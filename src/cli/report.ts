import { relative } from 'node:path';
import type { FileResult, Progress, PushSummary } from '../client/index.js';
import { reasonOf } from '../client/logs/failure-reasons.js';

function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  return minutes < 60 ? `${minutes}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s` : `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

/** A path as the user would write it: relative to the working directory when that is shorter. */
function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel !== '' && rel.length < path.length ? rel : path;
}

/** The run's total as known now: discovery's once it is done, else the count ahead once complete; `known` false while it grows. */
export function totalOf(progress: Readonly<Progress>): { readonly total: number; readonly known: boolean } {
  if (progress.discoveryDone) return { total: progress.discovered, known: true };
  if (progress.expectedKnown) return { total: Math.max(progress.expected, progress.discovered), known: true };
  return { total: Math.max(progress.expected, progress.discovered), known: false };
}

/** `1200/5000` once the total is known, `1200/1456+` while it still grows. */
export function doneOfTotal(progress: Readonly<Progress>): string {
  const done = progress.ok + progress.failed + progress.skipped;
  const { total, known } = totalOf(progress);
  return `${done}/${total}${known ? '' : '+'}`;
}

/** One line about a file that failed or was skipped, for stderr. */
function formatResultLine(result: FileResult): string {
  const path = displayPath(result.path);
  if (result.skipped !== undefined) return `imgpush: skipped ${path}: ${result.skipped.reason}`;
  const attempts = result.attempts > 1 ? ` (${result.attempts} attempts)` : '';
  return `imgpush: failed ${path}: ${result.error?.message ?? 'unknown error'}${attempts}`;
}

/**
 * Which results get a line of their own on stderr while the run goes: the
 * first file of each reason, up to `max` reasons. Files that failed alike
 * are counted in the summary instead of a line each.
 */
export class ResultLines {
  readonly #max: number;
  readonly #seen = new Set<string>();
  #toldMore = false;

  constructor(max: number) {
    this.#max = max;
  }

  /** The line to print for `result`, or undefined when the summary will count it. */
  lineFor(result: FileResult): string | undefined {
    const { message: reason } = reasonOf(result);
    if (this.#seen.has(reason)) return undefined;
    if (this.#seen.size < this.#max) {
      this.#seen.add(reason);
      return formatResultLine(result);
    }
    if (this.#toldMore) return undefined;
    this.#toldMore = true;
    return 'imgpush: more files failed or were skipped for other reasons; the logs list every one';
  }
}

/** A failure's reason as the summary counts it: an answer by its status, a file the stop kept back as not sent. */
function reasonText(message: string, stopReason: string | null): string {
  if (stopReason !== null && message === `not sent: ${stopReason}`) return 'not sent: the run stopped early';
  return message.replace(/^server answered /, '');
}

/** What a dry run found, for a person. */
function formatDryRun(summary: PushSummary): string {
  const sending = summary.total - summary.failed - summary.skipped;
  const lines = [`imgpush: dry run: would send ${sending} files (${formatBytes(summary.bytes)}); ${summary.failed} cannot be sent, ${summary.skipped} skipped`];
  for (const path of summary.sample ?? []) lines.push(`  ${displayPath(path)}`);
  if (sending > (summary.sample?.length ?? 0)) lines.push('  …');
  return lines.join('\n');
}

/** The end-of-run summary a person reads. */
export function formatSummary(summary: PushSummary, retryCommand: string): string {
  if (summary.sample !== undefined) return formatDryRun(summary);
  const { latencyMs: latency } = summary;
  const stopped = summary.stopReason === null ? '' : ` (stopped early: ${summary.stopReason})`;
  const lines = [
    `imgpush: ${summary.total} files: ${summary.ok} uploaded, ${summary.failed} failed, ${summary.skipped} skipped${stopped}`,
    `  ${formatBytes(summary.bytes)} in ${summary.seconds.toFixed(1)} s: ${summary.filesPerSecond} files/s, ${formatBytes(summary.bytesPerSecond)}/s`,
    `  latency p50 ${latency.p50} ms, p95 ${latency.p95} ms, p99 ${latency.p99} ms, max ${latency.max} ms; ${summary.retries} retries`,
  ];
  if (summary.concurrency.adaptive) {
    const { final, min, max } = summary.concurrency;
    lines.push(`  concurrency auto: ${final} at the end, ${min}–${max} over the run`);
  }
  if (summary.origins.length > 1) {
    for (const origin of summary.origins) {
      lines.push(`  ${origin.url}: ${origin.ok} uploaded, ${origin.failedAttempts} failed attempts, latency p50 ${origin.latencyMs.p50} ms, p95 ${origin.latencyMs.p95} ms`);
    }
  }
  if (summary.shard !== null) {
    const { index, count, otherShards } = summary.shard;
    lines.push(`  shard ${index}/${count}: ${otherShards} files found were left to the other shards`);
  }
  if (summary.failureReasons.length > 0) {
    lines.push('  failed:');
    for (const { message, count } of summary.failureReasons) lines.push(`    ${count} × ${reasonText(message, summary.stopReason)}`);
  }
  if (summary.resultsFile !== null) lines.push(`  results: ${summary.resultsFile}`);
  for (const reason of summary.gateFailures) lines.push(`  gate failed: ${reason}`);
  if (summary.failuresFile !== null) {
    lines.push(`  failures: ${summary.failuresFile} (send them again: ${retryCommand} ${summary.failuresFile})`);
  }
  return lines.join('\n');
}
