import type { FailureReason } from './failure-reasons.js';
import type { LatencySummary } from '../pacing/latency.js';
import type { OriginSummary } from '../transport/origins.js';
import type { Progress } from '../results.js';
import type { Shard } from '../filter/shard.js';

export interface PushSummary {
  readonly total: number;
  readonly ok: number;
  readonly failed: number;
  /** Why files failed, by reason (code and message), most files first. */
  readonly failureReasons: readonly FailureReason[];
  readonly skipped: number;
  /** Bytes of the files uploaded (with dryRun: of the files that would be sent). */
  readonly bytes: number;
  readonly seconds: number;
  readonly filesPerSecond: number;
  readonly bytesPerSecond: number;
  readonly latencyMs: LatencySummary;
  readonly retries: number;
  /** The failure log, when something failed; null otherwise. */
  readonly failuresFile: string | null;
  readonly resultsFile: string | null;
  /** A log could not be written (the run stopped; exit 4 on the command line), in words; null when every line was written. */
  readonly logError: string | null;
  /** Where the lines went that a log could not take; null when there were none, or when they went to stderr. */
  readonly unloggedFile: string | null;
  /** imgpush retry: lines of the failure log it could not read, kept in the new failure log and counted in `failed`. */
  readonly unreadable: number;
  /** The run was stopped before every file was done: every file not uploaded is in the failure log. */
  readonly interrupted: boolean;
  /** Why it stopped early, in words; null when it ran to its end. */
  readonly stopReason: string | null;
  /** With dryRun: the first files that would be sent. */
  readonly sample?: readonly string[];
  /** Why the run fails its gates (--max-failure-rate, --fail-if-p95), in words; empty when it passes. */
  readonly gateFailures: readonly string[];
  /** Uploads allowed in flight: at the end, and the range over the run (the same three for a fixed concurrency). */
  readonly concurrency: { readonly final: number; readonly min: number; readonly max: number; readonly adaptive: boolean };
  /** Per server (--url), in the order given: files uploaded through it, attempts that failed there, latency. */
  readonly origins: readonly OriginSummary[];
  /** With a shard: which one, and how many files found were left to the other shards (not counted in `total`). */
  readonly shard: (Shard & { readonly otherShards: number }) | null;
}

/** Everything a summary is made of, gathered by the run at its end. */
export interface SummaryParts {
  readonly progress: Readonly<Progress>;
  readonly seconds: number;
  readonly latencyMs: LatencySummary;
  readonly dryRun: boolean;
  readonly sample: readonly string[];
  readonly failuresFile: string | null;
  readonly resultsFile: string | null;
  readonly failureReasons: readonly FailureReason[];
  readonly unloggedFile: string | null;
  readonly logError: string | undefined;
  /** Why the run stopped early; undefined when it ran to its end. */
  readonly stopReason: string | undefined;
  readonly gates: { readonly maxFailureRate: number | undefined; readonly failIfP95Ms: number | undefined };
  readonly concurrency: PushSummary['concurrency'];
  readonly origins: readonly OriginSummary[];
  readonly shard: Shard | undefined;
}

export function summarize(parts: SummaryParts): PushSummary {
  const { progress, seconds, latencyMs, dryRun, stopReason } = parts;
  return {
    total: progress.discovered,
    ok: progress.ok,
    failed: progress.failed,
    failureReasons: parts.failureReasons,
    skipped: progress.skipped,
    bytes: dryRun ? progress.bytesDiscovered : progress.bytesSent,
    seconds: round(seconds, 3),
    filesPerSecond: round(progress.ok / seconds, 1),
    bytesPerSecond: Math.round(progress.bytesSent / seconds),
    latencyMs,
    retries: progress.retries,
    failuresFile: parts.failuresFile,
    resultsFile: parts.resultsFile,
    logError: parts.logError ?? null,
    unloggedFile: parts.unloggedFile,
    unreadable: 0,
    interrupted: stopReason !== undefined,
    stopReason: stopReason ?? null,
    ...(dryRun ? { sample: parts.sample } : {}),
    gateFailures: gateFailures(progress, latencyMs.p95, parts.gates),
    origins: parts.origins,
    shard: parts.shard === undefined ? null : { ...parts.shard, otherShards: progress.otherShards },
    concurrency: parts.concurrency,
  };
}

/** The reasons the run fails the gates a CI job set, in words. */
function gateFailures({ failed, discovered, skipped }: Readonly<Progress>, latencyP95: number, { maxFailureRate, failIfP95Ms }: SummaryParts['gates']): string[] {
  const rate = failed / Math.max(1, discovered - skipped);
  const reasons: string[] = [];
  if (maxFailureRate !== undefined && rate > maxFailureRate) {
    reasons.push(`${(rate * 100).toFixed(1)} % of the files failed, over --max-failure-rate ${(maxFailureRate * 100).toFixed(1)} %`);
  }
  if (failIfP95Ms !== undefined && latencyP95 > failIfP95Ms) {
    reasons.push(`upload latency p95 is ${latencyP95} ms, over --fail-if-p95 ${failIfP95Ms} ms`);
  }
  return reasons;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Number.isFinite(value) ? Math.round(value * scale) / scale : 0;
}
