/**
 * `npm run bench:server`: the reference server's throughput with
 * builtin:synthetic. First the model alone, in this process, at batch sizes
 * 1, 4, 8, 16, 32; then the server end to end over HTTP (its own process),
 * pushed by imgpush at concurrency 1, 8, 32, 64. Prints images/s, latency
 * percentiles and the mean batch size the server formed, and the ratios the
 * targets are about. BENCH_IMAGES (default 192) sets the images per run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syntheticModel } from '../src/models/builtin.js';
import { makeJpegSet } from './corpus.js';
import { pushWithCli, startServe } from './processes.js';
import { loadModel } from '../src/server/inference/model.js';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 192);
const BATCHES = [1, 4, 8, 16, 32];
const CONCURRENCIES = [1, 8, 32, 64];

async function inProcess(): Promise<Map<number, { imagesPerSecond: number; batchMs: number }>> {
  const model = await loadModel({ model: 'builtin:synthetic', device: 'cpu', log: () => {} });
  const input = new Float32Array(3 * 224 * 224).fill(0.1);
  const rows = new Map<number, { imagesPerSecond: number; batchMs: number }>();
  for (const batch of BATCHES) {
    const inputs = Array.from({ length: batch }, () => input);
    await model.run(inputs);
    const runs = Math.max(2, Math.ceil(IMAGES / batch / 2));
    const started = performance.now();
    for (let i = 0; i < runs; i++) await model.run(inputs);
    const ms = (performance.now() - started) / runs;
    rows.set(batch, { imagesPerSecond: (batch * 1000) / ms, batchMs: ms });
  }
  await model.release();
  return rows;
}

async function batchSizes(url: string): Promise<Record<string, number>> {
  const answer = await fetch(`${url}/v1/models`);
  return (await answer.json() as { batching: { batchSizes: Record<string, number> } }).batching.batchSizes;
}

function meanBatch(before: Record<string, number>, after: Record<string, number>): number {
  let images = 0;
  let batches = 0;
  for (const [size, count] of Object.entries(after)) {
    const ran = count - (before[size] ?? 0);
    images += Number(size) * ran;
    batches += ran;
  }
  return batches === 0 ? 0 : images / batches;
}

async function main(): Promise<void> {
  process.stderr.write(`builtin:synthetic: ${(syntheticModel().flopsPerImage / 1e9).toFixed(2)} GFLOP per image, ${IMAGES} images per run\n`);
  const alone = await inProcess();
  const best = Math.max(...[...alone.values()].map((row) => row.imagesPerSecond));
  process.stdout.write('\nIn process (the model alone):\n\n| batch | images/s | ms per batch |\n|---:|---:|---:|\n');
  for (const [batch, row] of alone) process.stdout.write(`| ${batch} | ${row.imagesPerSecond.toFixed(1)} | ${row.batchMs.toFixed(1)} |\n`);

  const scratch = await mkdtemp(join(tmpdir(), 'imgpush-bench-server-'));
  const server = await startServe(['--model', 'builtin:synthetic', '--device', 'cpu', '--max-batch', '16', '--queue-limit', '1024']);
  try {
    await makeJpegSet(join(scratch, 'images'), IMAGES);
    process.stdout.write('\nEnd to end (imgpush → imgpush serve over HTTP, max batch 16):\n\n| concurrency | images/s | of best in-process | p50 ms | p95 ms | p99 ms | mean batch | p99 / batch compute |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n');
    for (const concurrency of CONCURRENCIES) {
      const before = await batchSizes(server.url);
      const summary = await pushWithCli([join(scratch, 'images'), '--url', `${server.url}/v1/predict`, '--concurrency', String(concurrency)]);
      const mean = meanBatch(before, await batchSizes(server.url));
      const compute = alone.get(BATCHES.reduce((a, b) => (Math.abs(b - mean) < Math.abs(a - mean) ? b : a)))?.batchMs ?? 0;
      const { p50, p95, p99 } = summary.latencyMs;
      process.stdout.write(`| ${concurrency} | ${summary.filesPerSecond.toFixed(1)} | ${((summary.filesPerSecond / best) * 100).toFixed(0)} % | ${p50} | ${p95} | ${p99} | ${mean.toFixed(1)} | ${(p99 / compute).toFixed(1)}x |\n`);
    }
  } finally {
    server.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
