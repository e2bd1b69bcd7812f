/**
 * Two parts of `npm run bench` about what a run costs beyond its uploads:
 * a one-file run against `node -e 0` and curl (the start and the exit, which
 * a CI job that calls imgpush per folder pays each time), and the system
 * calls per file of a whole set, counted by strace where it is installed.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CorpusSet } from './corpus.js';
import { BIN } from './processes.js';

const ONE_FILE_ROUNDS = Number(process.env.BENCH_ONE_FILE_ROUNDS ?? 10);

const now = (): number => performance.timeOrigin + performance.now();

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function wallMs(argv: readonly string[]): Promise<{ started: number; ms: number }> {
  const started = now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.slice(0, 2).join(' ')} exited ${code}`))));
  });
  return { started, ms: now() - started };
}

/**
 * One file, ten alternating rounds: wall time of each client and time from
 * its spawn to its request reaching the sink, medians. `stats()` asks the
 * sink when the last request arrived.
 */
export async function oneFileCase(file: string, url: string, stats: () => Promise<{ requests: number; lastArrivedAt: number }>): Promise<string> {
  const clients: Record<string, string[]> = {
    'node -e 0': [process.execPath, '-e', '0'],
    imgpush: [process.execPath, BIN, file, '--url', url, '--quiet'],
    curl: ['curl', '-s', '-f', '-o', '/dev/null', '-F', `image=@${file};type=image/jpeg`, url],
  };
  const walls = new Map<string, number[]>(Object.keys(clients).map((name) => [name, []]));
  const firstBytes = new Map<string, number[]>(Object.keys(clients).map((name) => [name, []]));
  for (let round = 0; round < ONE_FILE_ROUNDS; round++) {
    for (const [name, argv] of Object.entries(clients)) {
      const { started, ms } = await wallMs(argv);
      walls.get(name)?.push(ms);
      const answer = await stats();
      if (name !== 'node -e 0') {
        if (answer.requests !== 1) throw new Error(`${name}: the sink got ${answer.requests} requests, expected 1`);
        firstBytes.get(name)?.push(answer.lastArrivedAt - started);
      }
    }
  }
  const base = median(walls.get('node -e 0') ?? []);
  const rows = Object.keys(clients).map((name) => {
    const wall = median(walls.get(name) ?? []);
    const arrived = firstBytes.get(name) ?? [];
    return `| ${name} | ${wall.toFixed(0)} | ${(wall - base).toFixed(0)} | ${arrived.length === 0 ? '' : median(arrived).toFixed(0)} |`;
  });
  return `One file, median of ${ONE_FILE_ROUNDS} alternating rounds:\n\n| client | wall ms | ms beyond node -e 0 | ms from spawn to the request's arrival |\n|---|---:|---:|---:|\n${rows.join('\n')}\n`;
}

const SHOWN_CALLS = ['openat', 'statx', 'newfstatat', 'fstat', 'read', 'pread64', 'close', 'writev', 'write', 'sendto', 'futex', 'epoll_pwait', 'epoll_wait'];

/** strace -f -c of one run: calls by name. */
async function countCalls(argv: readonly string[], report: string): Promise<Map<string, number>> {
  execFileSync('strace', ['-f', '-c', '-o', report, ...argv], { stdio: 'ignore' });
  const calls = new Map<string, number>();
  for (const line of (await readFile(report, 'utf8')).split('\n')) {
    // % time, seconds, usecs/call, calls, [errors], syscall
    const fields = line.trim().split(/\s+/);
    const name = fields.at(-1);
    if (fields.length >= 5 && /^\d+$/.test(fields[3] as string) && name !== undefined && name !== 'total') calls.set(name, Number(fields[3]));
  }
  return calls;
}

/** System calls per file of imgpush and curl on one set, where strace is installed; undefined where it is not. */
export async function syscallsPerFile(set: CorpusSet, url: string, curlConfig: string, scratch: string): Promise<string | undefined> {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  const report = join(scratch, 'strace.txt');
  const counted = {
    imgpush: await countCalls([process.execPath, BIN, set.dir, '--url', url, '--concurrency', '20', '--quiet'], report),
    curl: await countCalls(['curl', '--parallel', '--parallel-max', '20', '-K', curlConfig], report),
  };
  await writeFile(report, '');
  const perFile = (calls: Map<string, number>, name: string): string => ((calls.get(name) ?? 0) / set.files).toFixed(2);
  const total = (calls: Map<string, number>): string => ([...calls.values()].reduce((sum, n) => sum + n, 0) / set.files).toFixed(1);
  const names = SHOWN_CALLS.filter((name) => counted.imgpush.has(name) || counted.curl.has(name));
  const rows = Object.entries(counted).map(([client, calls]) => `| ${client} | ${total(calls)} | ${names.map((name) => perFile(calls, name)).join(' | ')} |`);
  return `System calls per file on ${set.name} (${set.files} files, strace -f -c, all threads):\n\n| client | all | ${names.join(' | ')} |\n|---|${'---:|'.repeat(names.length + 1)}\n${rows.join('\n')}\n`;
}
