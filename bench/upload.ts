/**
 * `npm run bench`: pushes the corpus to a local sink with imgpush and with
 * its peers (curl --parallel, a Python thread pool, bare Node loops), in the same run, and
 * prints files/s, MB/s, client CPU and peak memory, with imgpush's ratio to curl;
 * then a one-file run and the system calls per file (see start-and-calls.ts).
 * Environment: BENCH_ROUNDS (default 3; the median is reported), BENCH_CONCURRENCY (default 20),
 * BENCH_SETS (the sets to push, comma-separated; default all).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCorpus, type CorpusSet } from './corpus.js';
import { ROOT, startScript } from './processes.js';
import { oneFileCase, syscallsPerFile } from './start-and-calls.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 20);
const TIME = '/usr/bin/time';

interface Measure {
  readonly seconds: number;
  readonly cpuSeconds: number | undefined;
  readonly peakMiB: number | undefined;
}

interface Peer {
  readonly name: string;
  command(set: CorpusSet, url: string, scratch: string): Promise<string[]>;
}

function available(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const imgpush: Peer = {
  name: 'imgpush',
  command: async (set, url) => [process.execPath, join(ROOT, 'bin/imgpush'), set.dir, '--url', url, '--concurrency', String(CONCURRENCY), '--quiet'],
};

const curl: Peer = {
  name: 'curl',
  async command(set, url, scratch) {
    const config = join(scratch, `${set.name}.curl`);
    const names = (await readdir(set.dir)).filter((name) => name.endsWith('.jpg')).sort();
    const sections = names.map((name) => `url = "${url}"\nform = "image=@${join(set.dir, name)};type=image/jpeg"\noutput = "/dev/null"\nsilent\nfail\n`);
    await writeFile(config, sections.join('next\n'));
    return ['curl', '--parallel', '--parallel-max', String(CONCURRENCY), '--parallel-immediate', '-K', config];
  },
};

const undiciLoop: Peer = {
  name: 'undici loop',
  command: async (set, url) => [process.execPath, join(ROOT, 'build/bench/undici-loop.js'), set.dir, url, String(CONCURRENCY)],
};

const netLoop: Peer = {
  name: 'node:net loop',
  command: async (set, url) => [process.execPath, join(ROOT, 'build/bench/net-loop.js'), set.dir, url, String(CONCURRENCY)],
};

const python: Peer = {
  name: 'python threads',
  command: async (set, url) => ['python3', join(ROOT, 'bench/threadpool.py'), set.dir, url, String(CONCURRENCY)],
};

async function run(argv: string[], scratch: string): Promise<Measure> {
  const timed = existsSync(TIME);
  const report = join(scratch, 'time.txt');
  const [command, ...args] = timed ? [TIME, '-f', '%U %S %M', '-o', report, ...argv] : argv;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command as string, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.slice(0, 2).join(' ')} exited ${code}`))));
  });
  const seconds = (performance.now() - started) / 1000;
  if (!timed) return { seconds, cpuSeconds: undefined, peakMiB: undefined };
  const [user, system, peakKiB] = (await readFile(report, 'utf8')).trim().split(/\s+/).map(Number) as [number, number, number];
  return { seconds, cpuSeconds: user + system, peakMiB: peakKiB / 1024 };
}

async function sinkStats(url: string): Promise<{ requests: number; bytes: number; lastArrivedAt: number }> {
  const response = await fetch(`${url}/stats`);
  return await response.json() as { requests: number; bytes: number; lastArrivedAt: number };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

const format = (value: number | undefined, digits = 0) => (value === undefined ? 'n/a' : value.toFixed(digits));

async function main(): Promise<void> {
  const corpusRoot = join(ROOT, 'bench/corpus');
  process.stderr.write(`corpus in ${corpusRoot} (made once)…\n`);
  const chosen = process.env.BENCH_SETS?.split(',');
  const sets = (await makeCorpus(corpusRoot)).filter((set) => chosen === undefined || chosen.includes(set.name));
  const peers = [imgpush, undiciLoop, netLoop];
  if (available('curl', ['--version'])) peers.push(curl);
  const withPython = available('python3', ['-c', 'import requests']);
  const sink = await startScript('sink.js');
  const scratch = await mkdtemp(join(tmpdir(), 'imgpush-bench-'));
  const rows: string[] = [];
  const extras: string[] = [];
  try {
    for (const set of sets) {
      // The thread pool needs about 20 s for the steady-state set alone: it runs on the two sets of the issue.
      const setPeers = withPython && set.files <= 4000 ? [...peers, python] : peers;
      const measures = new Map<string, Measure[]>(setPeers.map((peer) => [peer.name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const peer of setPeers) {
          const measure = await run(await peer.command(set, `${sink.url}/upload`, scratch), scratch);
          const stats = await sinkStats(sink.url);
          if (stats.requests !== set.files || stats.bytes < set.bytes) {
            throw new Error(`${peer.name} on ${set.name}: the sink got ${stats.requests} requests and ${stats.bytes} bytes, expected ${set.files} files of ${set.bytes} bytes`);
          }
          measures.get(peer.name)?.push(measure);
        }
      }
      const filesPerSecond = (name: string) => median((measures.get(name) ?? []).map((m) => set.files / m.seconds));
      for (const peer of setPeers) {
        const list = measures.get(peer.name) ?? [];
        const rate = filesPerSecond(peer.name);
        const cpu = list.every((m) => m.cpuSeconds !== undefined) ? median(list.map((m) => m.cpuSeconds as number)) : undefined;
        const peak = list.every((m) => m.peakMiB !== undefined) ? Math.max(...list.map((m) => m.peakMiB as number)) : undefined;
        const ratio = peers.includes(curl) ? (rate / filesPerSecond('curl')).toFixed(2) : 'n/a';
        rows.push(`| ${set.name} | ${peer.name} | ${format(rate)} | ${format((rate * set.bytes) / set.files / 1e6, 1)} | ${format(cpu, 2)} | ${format(cpu === undefined ? undefined : (cpu / set.files) * 1e6)} | ${format(peak)} | ${ratio} |`);
      }
    }
    const small = sets[0];
    if (small !== undefined && peers.includes(curl)) {
      const url = `${sink.url}/upload`;
      const first = (await readdir(small.dir)).filter((name) => name.endsWith('.jpg')).sort()[0] as string;
      extras.push(await oneFileCase(join(small.dir, first), url, () => sinkStats(sink.url)));
      const config = (await curl.command(small, url, scratch)).at(-1) as string;
      const calls = await syscallsPerFile(small, url, config, scratch);
      await sinkStats(sink.url);
      extras.push(calls ?? 'System calls per file: strace is not installed (apt-get install strace).\n');
    }
  } finally {
    sink.stop();
    await rm(scratch, { recursive: true, force: true });
  }
  process.stdout.write(`\nconcurrency ${CONCURRENCY}, median of ${ROUNDS} rounds, client and sink on the same machine\n\n`);
  process.stdout.write('| set | client | files/s | MB/s | client CPU s | CPU µs/file | peak MiB | files/s vs curl |\n|---|---|---:|---:|---:|---:|---:|---:|\n');
  process.stdout.write(`${rows.join('\n')}\n`);
  for (const extra of extras) process.stdout.write(`\n${extra}`);
}

await main();
