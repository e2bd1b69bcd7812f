/**
 * `npm run bench:tree`: memory over huge trees. Makes trees of small files
 * (20,000 and 200,000 by default, BENCH_TREE_FILES to change the larger),
 * then runs imgpush --dry-run and a real push to a local sink over each, and
 * prints peak RSS, time, and the growth in bytes per file between the two
 * sizes; then the live heap per file after a full GC, in this process.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { push } from '../src/client/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LARGE = Number(process.env.BENCH_TREE_FILES ?? 200_000);
const SMALL = Math.round(LARGE / 10);
const PER_FOLDER = 1000;

async function makeTree(files: number): Promise<string> {
  const dir = join(ROOT, 'bench/corpus', `tree-${files}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  const body = Buffer.alloc(100, 0xab);
  for (let i = 0; i < files; i++) {
    const folder = join(dir, `d${Math.floor(i / PER_FOLDER)}`);
    if (i % PER_FOLDER === 0) await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `f${i}.jpg`), body);
  }
  await writeFile(join(dir, '.complete'), '');
  return dir;
}

interface Run {
  readonly seconds: number;
  readonly peakMiB: number;
}

async function timed(args: string[], scratch: string): Promise<Run> {
  const report = join(scratch, 'time.txt');
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%M', '-o', report, process.execPath, join(ROOT, 'bin/imgpush'), ...args], { stdio: ['ignore', 'ignore', 'inherit'], cwd: scratch });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`imgpush ${args.join(' ')} exited ${code}`))));
  });
  return { seconds: (performance.now() - started) / 1000, peakMiB: Number((await readFile(report, 'utf8')).trim()) / 1024 };
}

/** Live heap (after a full GC) per file found, every 50,000 files of a dry run: what the run keeps, not what V8 has yet to collect. */
async function liveHeapPerFile(dir: string): Promise<string[]> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const base = process.memoryUsage().heapUsed;
  const lines: string[] = [];
  let next = 50_000;
  await push({ inputs: [dir], url: 'http://127.0.0.1:9/', dryRun: true }, {
    onProgress: (progress) => {
      if (progress.discovered < next) return;
      next += 50_000;
      gc();
      lines.push(`${progress.discovered} files found: live heap ${((process.memoryUsage().heapUsed - base) / progress.discovered).toFixed(0)} bytes per file`);
    },
  });
  return lines;
}

async function main(): Promise<void> {
  if (!existsSync('/usr/bin/time')) throw new Error('bench:tree needs GNU time (/usr/bin/time) for peak memory: apt-get install time');
  process.stderr.write(`trees of ${SMALL} and ${LARGE} files (made once)…\n`);
  const trees = [[SMALL, await makeTree(SMALL)], [LARGE, await makeTree(LARGE)]] as const;
  const sink = spawn(process.execPath, [join(ROOT, 'build/bench/sink.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => sink.stdout.once('data', (data: Buffer) => resolve(data.toString().trim())));
  const scratch = await mkdtemp(join(tmpdir(), 'imgpush-tree-'));
  const rows: string[] = [];
  const peaks = new Map<string, number[]>();
  try {
    for (const [files, dir] of trees) {
      const modes: Array<[string, string[]]> = [
        ['--dry-run', [dir, '--url', 'http://127.0.0.1:9/', '--dry-run', '--quiet']],
        ['push, concurrency 20', [dir, '--url', `http://127.0.0.1:${port}/upload`, '--concurrency', '20', '--quiet']],
      ];
      for (const [mode, args] of modes) {
        const run = await timed(args, scratch);
        peaks.set(mode, [...(peaks.get(mode) ?? []), run.peakMiB]);
        rows.push(`| ${files} | ${mode} | ${run.seconds.toFixed(1)} | ${Math.round(files / run.seconds)} | ${run.peakMiB.toFixed(0)} |`);
      }
    }
  } finally {
    sink.kill();
    await rm(scratch, { recursive: true, force: true });
  }
  process.stdout.write('\n| files | run | seconds | files/s | peak RSS MiB |\n|---:|---|---:|---:|---:|\n');
  process.stdout.write(`${rows.join('\n')}\n\n`);
  for (const [mode, [small, large]] of peaks) {
    const perFile = (((large ?? 0) - (small ?? 0)) * 1024 * 1024) / (LARGE - SMALL);
    process.stdout.write(`${mode}: peak RSS grows ${perFile.toFixed(0)} bytes per file from ${SMALL} to ${LARGE} files\n`);
  }
  process.stdout.write(`${(await liveHeapPerFile(trees[1][1])).join('\n')}\n`);
}

await main();
