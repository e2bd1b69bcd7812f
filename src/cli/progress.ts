import type { Progress } from '../client/index.js';
import { doneOfTotal, formatSeconds, totalOf } from './report.js';

/** Where a run's progress goes: a bar on a terminal, a plain line every few seconds elsewhere, or nowhere. */
export interface ProgressView {
  /** Hands over the run's live counters; the view reads them on its own clock. */
  watch(progress: Readonly<Progress>): void;
  /** A line of text above the bar (or plain, without one). */
  note(line: string): void;
  /** Draws the last state and gives the terminal back (cursor shown); safe to call twice. */
  stop(): void;
}

export type ProgressMode = 'bar' | 'lines' | 'none';

/** Every 5 s in CI logs: often enough to see a run move, rarely enough to keep the log short. */
const LINE_INTERVAL_MS = 5_000;
const BAR_INTERVAL_MS = 100;
/** files/s and MB/s are averaged over this much of the run's recent past. */
const RATE_WINDOW_MS = 5_000;
const BAR_COMPLETE = '\u2588';
const BAR_INCOMPLETE = '\u2591';
/** The bar is at most this wide, and drawn only if at least MIN_BAR fits beside the words. */
const MAX_BAR = 30;
const MIN_BAR = 8;
/** Parts of this rank or lower (the counts, the server's state, the ETA) are kept before the bar. */
const ESSENTIAL_RANK = 2;

interface Rates {
  readonly done: number;
  readonly filesPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly etaSeconds: number;
}

/**
 * Uploads per second and bytes per second over the last RATE_WINDOW_MS, so
 * the figures say how the run goes now, not on average since it began.
 * Skipped files and those a stop kept back are no uploads and are not counted.
 */
export class RateMeter {
  readonly #samples: Array<{ readonly at: number; readonly uploaded: number; readonly bytes: number }> = [];
  readonly #windowMs: number;

  constructor(windowMs = RATE_WINDOW_MS) {
    this.#windowMs = windowMs;
  }

  /** Takes the counters at `now` (ms) and returns the rates over the window. */
  sample(progress: Readonly<Progress>, now = performance.now()): Rates {
    const samples = this.#samples;
    samples.push({ at: now, uploaded: progress.ok, bytes: progress.bytesSent });
    // Keep one sample at or before the window's start, so the window is covered whole.
    while (samples.length > 2 && (samples[1] as { at: number }).at <= now - this.#windowMs) samples.shift();
    const first = samples[0] as { at: number; uploaded: number; bytes: number };
    const seconds = (now - first.at) / 1000;
    const filesPerSecond = seconds > 0 ? (progress.ok - first.uploaded) / seconds : 0;
    const done = progress.ok + progress.failed + progress.skipped;
    const { total, known } = totalOf(progress);
    return {
      done,
      filesPerSecond,
      megabytesPerSecond: seconds > 0 ? (progress.bytesSent - first.bytes) / 1e6 / seconds : 0,
      etaSeconds: known && filesPerSecond > 0 ? Math.max(0, total - done) / filesPerSecond : Number.POSITIVE_INFINITY,
    };
  }
}

export async function createProgressView(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr, lineIntervalMs = LINE_INTERVAL_MS): Promise<ProgressView> {
  if (mode === 'bar') return barView(stream, (await import('cli-progress')).default);
  if (mode === 'lines') return lineView(stream, lineIntervalMs);
  return { watch() {}, note: (line) => stream.write(`${line}\n`), stop() {} };
}

function lineView(stream: NodeJS.WriteStream, intervalMs: number): ProgressView {
  const meter = new RateMeter(Math.max(RATE_WINDOW_MS, intervalMs));
  let watched: Readonly<Progress> | undefined;
  const timer = setInterval(() => {
    if (watched === undefined) return;
    const rates = meter.sample(watched);
    stream.write(`imgpush: ${doneOfTotal(watched)} files (${watched.ok} ok, ${watched.failed} failed, ${watched.skipped} skipped), `
      + `${rates.filesPerSecond.toFixed(1)} files/s, ${rates.megabytesPerSecond.toFixed(1)} MB/s, ${watched.inFlight}/${watched.concurrency} in flight`
      + `${watched.throttled > 0 ? `, ${watched.throttled} × 429/503` : ''}${watched.serverDown ? ', server not answering: paused' : ''}\n`);
  }, intervalMs);
  timer.unref();
  return {
    watch(progress) {
      watched = progress;
    },
    note: (line) => stream.write(`${line}\n`),
    stop: () => clearInterval(timer),
  };
}

/** What the bar's line says, a part each; parts go whole or not at all. */
interface Part {
  readonly text: string;
  /** Lower is kept longer when the terminal is narrow. */
  readonly rank: number;
}

/**
 * The bar's line, fitted to `width` columns: the bar shrinks first, then
 * whole parts go, least needed first, and on a very narrow terminal the bar
 * before the counts, the server's state and the ETA; words are never cut.
 */
export function fitBarLine(fraction: number, parts: readonly Part[], width: number): string {
  const room = Math.max(0, width - 1);
  let kept = parts.filter((part) => part.text !== '');
  const length = (list: readonly Part[]): number => list.reduce((sum, part) => sum + part.text.length, 0) + Math.max(0, list.length - 1) * 3;
  const leastNeeded = (list: readonly Part[]): Part => list.reduce((worst, part) => (part.rank > worst.rank ? part : worst));
  // Room for a bar is made by dropping the parts a user can do without; the essential ones go only when they alone do not fit.
  while (kept.length > 1 && length(kept) > room - MIN_BAR - 1 && leastNeeded(kept).rank > ESSENTIAL_RANK) kept = kept.filter((part) => part !== leastNeeded(kept));
  while (kept.length > 1 && length(kept) > room) kept = kept.filter((part) => part !== leastNeeded(kept));
  const text = kept.map((part) => part.text).join(' | ');
  const size = Math.min(MAX_BAR, room - text.length - 1);
  if (size < MIN_BAR) return text.slice(0, room);
  const complete = Math.round(Math.min(1, Math.max(0, fraction)) * size);
  return `${BAR_COMPLETE.repeat(complete)}${BAR_INCOMPLETE.repeat(size - complete)} ${text}`;
}

function barParts(progress: Readonly<Progress>, rates: Rates): Part[] {
  return [
    { text: doneOfTotal(progress), rank: 0 },
    { text: progress.serverDown ? 'server not answering: paused' : '', rank: 1 },
    { text: `ETA ${formatSeconds(rates.etaSeconds)}`, rank: 2 },
    { text: `${progress.ok} ok ${progress.failed} failed`, rank: 3 },
    { text: `${rates.filesPerSecond.toFixed(1)} files/s ${rates.megabytesPerSecond.toFixed(1)} MB/s`, rank: 4 },
    { text: progress.throttled > 0 ? `${progress.throttled} × 429/503` : '', rank: 5 },
    { text: `${progress.inFlight}/${progress.concurrency} in flight`, rank: 6 },
  ];
}

/**
 * The bar on a terminal. Line wrap stays on (cli-progress would turn it off,
 * and every line above the bar would be cut at the terminal's width): lines
 * above wrap and read in full, and the bar's own line is fitted to the width.
 */
function barView(stream: NodeJS.WriteStream, cliProgress: typeof import('cli-progress')): ProgressView {
  const meter = new RateMeter();
  let line = '';
  const bars = new cliProgress.MultiBar({
    stream,
    format: () => line,
    hideCursor: true,
    clearOnComplete: false,
    linewrap: true,
    fps: 10,
  });
  let watched: Readonly<Progress> | undefined;
  let stopped = false;
  const render = (): void => {
    if (watched === undefined) return;
    const rates = meter.sample(watched);
    const { total } = totalOf(watched);
    line = fitBarLine(total > 0 ? rates.done / total : 0, barParts(watched, rates), stream.columns || 80);
  };
  render();
  // The bar's own figures are not used: the line is drawn whole by `format`, fitted to the width.
  const bar = bars.create(1, 0);
  const draw = (): void => {
    if (stopped) return;
    render();
    bar.update(0);
  };
  const timer = setInterval(draw, BAR_INTERVAL_MS);
  timer.unref();
  return {
    watch(progress) {
      watched = progress;
    },
    note(text) {
      if (stopped) stream.write(`${text}\n`);
      else bars.log(`${text}\n`);
    },
    stop() {
      if (stopped) return;
      clearInterval(timer);
      draw();
      stopped = true;
      // Lines noted since the last redraw are still in cli-progress's buffer, which stop() would drop.
      bars.update();
      bars.stop();
    },
  };
}
