/**
 * `npm run bench:reencode`: what --resize 512 --format webp --quality 80
 * saves, and what it costs. Pushes photo-like JPEG frames of 1280x720 (about
 * 200 KB, made once with sharp; BENCH_FRAMES, default 400) to the sink, as
 * they are and re-encoded, at BENCH_CONCURRENCY (default 8). Prints files/s,
 * the client's CPU per frame (steadier than files/s on a shared machine) and
 * the bytes the sink received (median of BENCH_ROUNDS, default 3).
 */
import { join } from 'node:path';
import { makePhotoSet } from './corpus.js';
import { ROOT, pushWithCliTimed, startScript, type Started } from './processes.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const FRAMES = Number(process.env.BENCH_FRAMES ?? 400);
const VARIANTS: ReadonlyArray<readonly [string, string[]]> = [
  ['as they are', []],
  ['--resize 512 (JPEG kept, quality 85)', ['--resize', '512']],
  ['--resize 512 --format webp --quality 80', ['--resize', '512', '--format', 'webp', '--quality', '80']],
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** The sink's counts since the last call (which resets them). */
async function sinkStats(sink: Started): Promise<{ requests: number; bytes: number }> {
  const answer = await fetch(`${sink.url}/stats`);
  return await answer.json() as { requests: number; bytes: number };
}

async function main(): Promise<void> {
  const frames = await makePhotoSet(join(ROOT, `bench/corpus/photo-frames-${FRAMES}`), FRAMES);
  const rows: string[] = [];
  let sink: Started | undefined;
  try {
    sink = await startScript('sink.js');
    let baseline: number | undefined;
    for (const [label, flags] of VARIANTS) {
      const rates: number[] = [];
      const cpu: number[] = [];
      const sent: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        await sinkStats(sink);
        const summary = await pushWithCliTimed([frames.dir, '--url', `${sink.url}/upload`, '--concurrency', String(CONCURRENCY), ...flags]);
        const stats = await sinkStats(sink);
        if (summary.failed > 0 || summary.ok !== FRAMES || stats.requests !== FRAMES) throw new Error(`${label}: ${summary.ok} of ${FRAMES} files uploaded`);
        rates.push(summary.filesPerSecond);
        if (summary.cpuSeconds !== undefined) cpu.push((summary.cpuSeconds / FRAMES) * 1000);
        sent.push(stats.bytes);
      }
      const bytes = median(sent);
      baseline ??= bytes;
      const cpuPerFrame = cpu.length === 0 ? '?' : median(cpu).toFixed(1);
      rows.push(`| ${label} | ${median(rates).toFixed(0)} | ${cpuPerFrame} | ${(bytes / 1e6).toFixed(1)} | ${(bytes / FRAMES / 1024).toFixed(1)} | ${((bytes / baseline) * 100).toFixed(1)} % |`);
    }
  } finally {
    sink?.stop();
  }
  process.stdout.write(`\n${FRAMES} JPEG frames of 1280x720 (${(frames.bytes / FRAMES / 1024).toFixed(1)} KiB on average), concurrency ${CONCURRENCY}, median of ${ROUNDS} rounds, client and sink on the same machine\n\n`);
  process.stdout.write('| frames sent | files/s | client CPU ms per frame | MB received by the sink | KiB per request | of the bytes as they are |\n|---|---:|---:|---:|---:|---:|\n');
  process.stdout.write(`${rows.join('\n')}\n`);
}

await main();
