/**
 * `npm run bench:pack`: what --files-per-request gains on small files.
 * Pushes the 16,000 thumbnails of the corpus to the sink, and 2,000 small
 * JPEGs to the reference server (builtin:colors, where the model is cheap and
 * each request's overhead shows), with 1, 4, 16 and 64 files per request at
 * the same concurrency. Prints files/s (median of BENCH_ROUNDS, default 3)
 * and the ratio to one file per request. BENCH_CONCURRENCY (default 8).
 */
import { join } from 'node:path';
import { makeCorpus, makeJpegSet } from './corpus.js';
import { ROOT, pushWithCli, startScript, startServe, type Started } from './processes.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const PACKING = [1, 4, 16, 64];
const SERVER_IMAGES = 2000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function sweep(label: string, dir: string, files: number, url: string): Promise<string[]> {
  const rates = new Map<number, number>();
  for (const packing of PACKING) {
    const runs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const summary = await pushWithCli([dir, '--url', url, '--concurrency', String(CONCURRENCY), '--files-per-request', String(packing), '--max-request-bytes', '64MB']);
      if (summary.failed > 0 || summary.ok !== files) throw new Error(`${label}, ${packing} per request: ${summary.ok} of ${files} files uploaded`);
      runs.push(summary.filesPerSecond);
    }
    rates.set(packing, median(runs));
  }
  const single = rates.get(1) as number;
  return PACKING.map((packing) => `| ${label} | ${packing} | ${(rates.get(packing) as number).toFixed(0)} | ${((rates.get(packing) as number) / single).toFixed(2)}x |`);
}

async function main(): Promise<void> {
  const [, , thumbnails] = await makeCorpus(join(ROOT, 'bench/corpus'));
  const images = await makeJpegSet(join(ROOT, `bench/corpus/jpeg-256-${SERVER_IMAGES}`), SERVER_IMAGES);
  const rows: string[] = [];
  let started: Started | undefined;
  try {
    if (thumbnails === undefined) throw new Error('the corpus has no 16k thumbnails set');
    started = await startScript('sink.js');
    rows.push(...await sweep(`sink, ${thumbnails.files} thumbnails of ~8 KB`, thumbnails.dir, thumbnails.files, `${started.url}/upload`));
    started.stop();
    started = await startServe(['--model', 'builtin:colors', '--max-files', '64', '--cache-size', '0']);
    rows.push(...await sweep(`reference server (builtin:colors), ${SERVER_IMAGES} JPEGs of 256x256`, images, SERVER_IMAGES, `${started.url}/v1/predict`));
  } finally {
    started?.stop();
  }
  process.stdout.write(`\nconcurrency ${CONCURRENCY}, median of ${ROUNDS} rounds, client and server on the same machine\n\n`);
  process.stdout.write('| server | files per request | files/s | vs 1 per request |\n|---|---:|---:|---:|\n');
  process.stdout.write(`${rows.join('\n')}\n`);
}

await main();
