import type { Progress } from '../client/index.js';
import { doneOfTotal, formatSeconds } from './report.js';

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

interface Rates {
  readonly done: number;
  readonly filesPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly etaSeconds: number;
}

function ratesOf(progress: Readonly<Progress>, startedAt: number): Rates {
  const seconds = Math.max(0.001, (performance.now() - startedAt) / 1000);
  const done = progress.ok + progress.failed + progress.skipped;
  const filesPerSecond = done / seconds;
  const remaining = progress.discovered - done;
  return {
    done,
    filesPerSecond,
    megabytesPerSecond: progress.bytesSent / 1e6 / seconds,
    etaSeconds: progress.discoveryDone && filesPerSecond > 0 ? remaining / filesPerSecond : Number.POSITIVE_INFINITY,
  };
}

export async function createProgressView(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr, lineIntervalMs = LINE_INTERVAL_MS): Promise<ProgressView> {
  if (mode === 'bar') return barView(stream, (await import('cli-progress')).default);
  if (mode === 'lines') return lineView(stream, lineIntervalMs);
  return { watch() {}, note: (line) => stream.write(`${line}\n`), stop() {} };
}

function lineView(stream: NodeJS.WriteStream, intervalMs: number): ProgressView {
  const startedAt = performance.now();
  let watched: Readonly<Progress> | undefined;
  const timer = setInterval(() => {
    if (watched === undefined) return;
    const rates = ratesOf(watched, startedAt);
    stream.write(`imgpush: ${doneOfTotal(watched)} files (${watched.ok} ok, ${watched.failed} failed, ${watched.skipped} skipped), `
      + `${rates.filesPerSecond.toFixed(1)} files/s, ${rates.megabytesPerSecond.toFixed(1)} MB/s, ${watched.inFlight}/${watched.concurrency} in flight${watched.serverDown ? ', server not answering: paused' : ''}\n`);
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

function barView(stream: NodeJS.WriteStream, cliProgress: typeof import('cli-progress')): ProgressView {
  const startedAt = performance.now();
  const bars = new cliProgress.MultiBar({
    stream,
    format: '{bar} {counts} | {ok} ok {failed} failed | {rate} files/s {mbps} MB/s | {flight} in flight | ETA {etaText}{state}',
    hideCursor: true,
    clearOnComplete: false,
    barsize: 24,
    fps: 10,
  }, cliProgress.Presets.shades_classic);
  const bar = bars.create(0, 0, { counts: '0/0+', ok: 0, failed: 0, rate: '0.0', mbps: '0.0', etaText: '?', state: '', flight: '0/0' });
  let watched: Readonly<Progress> | undefined;
  let stopped = false;
  const draw = (): void => {
    if (watched === undefined || stopped) return;
    const rates = ratesOf(watched, startedAt);
    bar.setTotal(Math.max(1, watched.discovered));
    bar.update(rates.done, {
      counts: doneOfTotal(watched),
      ok: watched.ok,
      failed: watched.failed,
      rate: rates.filesPerSecond.toFixed(1),
      mbps: rates.megabytesPerSecond.toFixed(1),
      etaText: formatSeconds(rates.etaSeconds),
      state: watched.serverDown ? ' | server not answering: paused' : '',
      flight: `${watched.inFlight}/${watched.concurrency}`,
    });
  };
  const timer = setInterval(draw, BAR_INTERVAL_MS);
  timer.unref();
  return {
    watch(progress) {
      watched = progress;
    },
    note(line) {
      if (stopped) stream.write(`${line}\n`);
      else bars.log(`${line}\n`);
    },
    stop() {
      if (stopped) return;
      clearInterval(timer);
      draw();
      stopped = true;
      bars.stop();
    },
  };
}
