/**
 * `npm run bench:server`: `imgpush serve` against the server users write
 * today (bench/fastapi_peer.py: FastAPI, UploadFile, run_in_executor,
 * Pillow, onnxruntime per image), both running the same builtin:synthetic
 * ONNX bytes, on two sets of photo-like JPEGs (600 thumbnails of 160×120,
 * 300 frames of 1280×720), pushed by imgpush at concurrency 16. The two
 * servers take turns in the same run, BENCH_ROUNDS (default 3) rounds, and
 * each figure is the median of its rounds. Before that: the model alone,
 * and the server's own decode + infer pipeline in this process without
 * HTTP, the ceiling its HTTP figure is held to. BENCH_SETS (say
 * `frames`) runs only the sets it names, comma-separated.
 *
 * The peer needs a virtual environment (skipped, saying so, without it):
 *   python3 -m venv bench/.venv && bench/.venv/bin/pip install onnxruntime pillow numpy fastapi uvicorn python-multipart
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { syntheticModel } from '../src/models/builtin.js';
import { SERVER_DEFAULTS } from '../src/server/defaults.js';
import { Batcher } from '../src/server/inference/batcher.js';
import { loadModel } from '../src/server/inference/model.js';
import { startModelWorker } from '../src/server/inference/model-worker.js';
import { ImageDecoder } from '../src/server/inference/preprocess.js';
import { makePhotoSet } from './corpus.js';
import { cpuSecondsOf, pushWithCli, ROOT, startPrintingPort, startServe, type PushRun, type Started } from './processes.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = 16;
const PYTHON = join(ROOT, 'bench/.venv/bin/python');
const VENV_COMMAND = 'python3 -m venv bench/.venv && bench/.venv/bin/pip install onnxruntime pillow numpy fastapi uvicorn python-multipart';
const ALL_SETS = [
  { name: 'thumbnails', label: '600 thumbnails, 160×120', count: 600, size: { width: 160, height: 120 } },
  { name: 'frames', label: '300 frames, 1280×720', count: 300, size: { width: 1280, height: 720 } },
] as const;
const SETS = ALL_SETS.filter((set) => process.env.BENCH_SETS?.split(',').includes(set.name) ?? true);

interface ServerUnderTest {
  readonly name: string;
  readonly started: Started;
  readonly url: string;
}

interface Measured {
  readonly imagesPerSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly cpuSeconds: number | undefined;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** The model alone, in this process, on one thread of calls: what batching buys on this machine. */
async function modelAlone(): Promise<string[]> {
  const model = await loadModel({ model: 'builtin:synthetic', device: 'cpu', log: () => {} });
  const input = new Float32Array(3 * 224 * 224).fill(0.1);
  const rows: string[] = [];
  for (const batch of [1, 8, 16]) {
    const inputs = Array.from({ length: batch }, () => input);
    await model.run(inputs);
    const runs = Math.max(4, Math.ceil(192 / batch));
    const started = performance.now();
    for (let i = 0; i < runs; i++) await model.run(inputs);
    const ms = (performance.now() - started) / runs;
    rows.push(`| ${batch} | ${((batch * 1000) / ms).toFixed(0)} | ${ms.toFixed(1)} |`);
  }
  await model.release();
  return rows;
}

/** The server's decode + batch + infer code, in this process with the server's defaults, fed `CONCURRENCY` images at a time: images/s. */
async function pipelineInProcess(images: readonly Buffer[]): Promise<number> {
  const model = await startModelWorker({ model: 'builtin:synthetic', device: 'cpu', log: () => {} });
  const decoder = new ImageDecoder({ maxPixels: SERVER_DEFAULTS.maxPixels, timeoutMs: SERVER_DEFAULTS.decodeTimeoutMs, concurrency: SERVER_DEFAULTS.maxDecodes });
  const batcher = new Batcher((inputs) => model.run(inputs), {
    maxBatch: SERVER_DEFAULTS.maxBatch,
    delayMs: SERVER_DEFAULTS.batchDelayMs,
    queueLimit: SERVER_DEFAULTS.queueLimit,
    concurrency: SERVER_DEFAULTS.batchConcurrency,
  });
  const limit = pLimit(CONCURRENCY);
  const one = async (bytes: Buffer): Promise<void> => {
    const prepared = await decoder.prepare(bytes, 'jpeg', model.image, 'image');
    await batcher.submit(prepared.input);
  };
  try {
    await Promise.all(images.slice(0, 32).map((bytes) => limit(() => one(bytes))));
    const rates: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const started = performance.now();
      await Promise.all(images.map((bytes) => limit(() => one(bytes))));
      rates.push((images.length * 1000) / (performance.now() - started));
    }
    return median(rates);
  } finally {
    await model.release();
  }
}

async function readImages(dir: string): Promise<Buffer[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith('.jpg')).sort();
  return Promise.all(names.map((name) => readFile(join(dir, name))));
}

async function startPeer(modelFile: string): Promise<ServerUnderTest | string> {
  if (!existsSync(PYTHON)) return `no bench/.venv: make it with \`${VENV_COMMAND}\``;
  const started = await startPrintingPort(PYTHON, [join(ROOT, 'bench/fastapi_peer.py'), modelFile]);
  return { name: 'FastAPI + Pillow + onnxruntime (Python)', started, url: `${started.url}/predict` };
}

async function pushOnce(server: ServerUnderTest, dir: string, count: number): Promise<Measured> {
  const before = await cpuSecondsOf(server.started.pid);
  const summary: PushRun = await pushWithCli([dir, '--url', server.url, '--concurrency', String(CONCURRENCY), '--field', 'file']);
  const after = await cpuSecondsOf(server.started.pid);
  if (summary.ok !== count || summary.failed > 0) throw new Error(`${server.name}: ${summary.ok} of ${count} images answered, ${summary.failed} failed`);
  return {
    imagesPerSecond: summary.filesPerSecond,
    p50: summary.latencyMs.p50,
    p99: summary.latencyMs.p99,
    cpuSeconds: before === undefined || after === undefined ? undefined : after - before,
  };
}

function medianOf(runs: readonly Measured[]): Measured {
  const cpu = runs.flatMap((run) => (run.cpuSeconds === undefined ? [] : [run.cpuSeconds]));
  return {
    imagesPerSecond: median(runs.map((run) => run.imagesPerSecond)),
    p50: median(runs.map((run) => run.p50)),
    p99: median(runs.map((run) => run.p99)),
    cpuSeconds: cpu.length === 0 ? undefined : median(cpu),
  };
}

function row(set: string, server: string, measured: Measured, count: number): string {
  const cpu = measured.cpuSeconds === undefined ? '?' : measured.cpuSeconds.toFixed(2);
  const perImage = measured.cpuSeconds === undefined ? '?' : ((measured.cpuSeconds / count) * 1000).toFixed(2);
  return `| ${set} | ${server} | ${measured.imagesPerSecond.toFixed(0)} | ${measured.p50.toFixed(1)} | ${measured.p99.toFixed(1)} | ${cpu} | ${perImage} |`;
}

async function main(): Promise<void> {
  if (SETS.length === 0) throw new Error(`BENCH_SETS=${process.env.BENCH_SETS}: no such set (${ALL_SETS.map((set) => set.name).join(', ')})`);
  const load = () => loadavg().map((value) => value.toFixed(2)).join(' ');
  process.stdout.write(`builtin:synthetic, concurrency ${CONCURRENCY}, ${ROUNDS} rounds, load average at start ${load()}\n`);
  const sets = await Promise.all(SETS.map(async (set) => ({ ...set, dir: (await makePhotoSet(join(ROOT, `bench/corpus/photo-${set.size.width}x${set.size.height}-${set.count}`), set.count, set.size)).dir })));

  process.stdout.write('\nThe model alone, in process:\n\n| batch | images/s | ms per batch |\n|---:|---:|---:|\n');
  for (const line of await modelAlone()) process.stdout.write(`${line}\n`);

  const pipeline = new Map<string, number>();
  for (const set of sets) pipeline.set(set.name, await pipelineInProcess(await readImages(set.dir)));

  const scratch = await mkdtemp(join(tmpdir(), 'imgpush-bench-server-'));
  const modelFile = join(scratch, 'synthetic.onnx');
  await writeFile(modelFile, syntheticModel().bytes);
  const servers: ServerUnderTest[] = [];
  try {
    const serve = await startServe(['--model', 'builtin:synthetic', '--device', 'cpu', '--cache-size', '0']);
    servers.push({ name: 'imgpush serve', started: serve, url: `${serve.url}/v1/predict` });
    const peer = await startPeer(modelFile);
    if (typeof peer === 'string') process.stdout.write(`\nThe Python peer is skipped: ${peer}\n`);
    else servers.push(peer);
    // JIT and thread pools warm, on both, before anything counts.
    const [warm] = sets;
    for (const server of servers) if (warm !== undefined) await pushOnce(server, warm.dir, warm.count);

    const runs = new Map<string, Measured[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const set of sets) {
        const order = round % 2 === 0 ? servers : [...servers].reverse();
        for (const server of order) {
          const key = `${set.name}/${server.name}`;
          runs.set(key, [...runs.get(key) ?? [], await pushOnce(server, set.dir, set.count)]);
        }
      }
    }

    process.stdout.write(`\nOver HTTP, imgpush pushing at concurrency ${CONCURRENCY}, median of ${ROUNDS} alternating rounds:\n\n`);
    process.stdout.write('| images | server | images/s | p50 ms | p99 ms | server CPU s | server CPU ms/image |\n|---|---|---:|---:|---:|---:|---:|\n');
    const summary: string[] = [];
    for (const set of sets) {
      const [ours, theirs] = servers.map((server) => medianOf(runs.get(`${set.name}/${server.name}`) ?? []));
      for (const [i, measured] of [ours, theirs].entries()) if (measured !== undefined) process.stdout.write(`${row(set.label, servers[i]?.name ?? '', measured, set.count)}\n`);
      const inProcess = pipeline.get(set.name) ?? 0;
      const share = ours === undefined ? '' : `imgpush serve at ${((ours.imagesPerSecond / inProcess) * 100).toFixed(0)} % of its own pipeline in process (${inProcess.toFixed(0)} images/s)`;
      const ratio = ours === undefined || theirs === undefined ? '' : `; ${(ours.imagesPerSecond / theirs.imagesPerSecond).toFixed(2)}x the peer's images/s, p99 ${ours.p99.toFixed(0)} against ${theirs.p99.toFixed(0)} ms`;
      summary.push(`- ${set.label}: ${share}${ratio}`);
    }
    process.stdout.write(`\n${summary.join('\n')}\n\nload average at the end ${load()}\n`);
  } finally {
    for (const server of servers) server.started.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
