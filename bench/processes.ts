import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(ROOT, 'bin/imgpush');

export interface Started {
  readonly url: string;
  /** The server's process, for its CPU time. */
  readonly pid: number;
  stop(): void;
}

/** Starts a benchmark server script (compiled, under build/bench) that prints its port once listening. */
export function startScript(script: string, env: Record<string, string> = {}): Promise<Started> {
  return startPrintingPort(process.execPath, [join(ROOT, 'build/bench', script)], env);
}

/** Starts a server program that prints its port once listening (a Python peer, a bench script). */
export function startPrintingPort(command: string, args: string[], env: Record<string, string> = {}): Promise<Started> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  return new Promise((resolve, reject) => {
    child.stdout.once('data', (data: Buffer) => resolve({ url: `http://127.0.0.1:${data.toString().trim()}`, pid: child.pid as number, stop: () => child.kill() }));
    child.once('close', (code) => reject(new Error(`${args[0] ?? command} exited ${code}`)));
  });
}

/** Starts `imgpush serve` with these arguments and resolves once it is ready. */
export function startServe(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--log-level', 'silent', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let text = '';
    child.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const url = /ready: .* at (http:\/\/\S+)/.exec(text)?.[1];
      if (url !== undefined) resolve({ url, pid: child.pid as number, stop: () => child.kill('SIGTERM') });
    });
    child.once('close', (code) => reject(new Error(`imgpush serve exited ${code}: ${text}`)));
  });
}

export interface PushRun {
  readonly ok: number;
  /** File bytes uploaded (as sent: re-encoded, if they were). */
  readonly bytes: number;
  readonly filesPerSecond: number;
  readonly retries: number;
  readonly failed: number;
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number };
  readonly concurrency: { readonly final: number; readonly min: number; readonly max: number };
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc; undefined where there is no /proc. */
export async function cpuSecondsOf(pid: number): Promise<number | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command's name (which may hold spaces): state is the 3rd field, utime the 14th and stime the 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Linux counts CPU time in these ticks a second (USER_HZ, 100 on every Linux build in use). */
const CLOCK_TICKS = 100;

/** Runs the imgpush CLI with --json --quiet and these arguments; its summary. */
export function pushWithCli(args: string[]): Promise<PushRun> {
  return summaryOf([process.execPath, BIN, ...args, '--json', '--quiet']);
}

const TIME = '/usr/bin/time';

/**
 * As pushWithCli, under /usr/bin/time: also the CPU seconds the client used,
 * all its threads (sharp's and libuv's) included; undefined where there is no /usr/bin/time.
 */
export async function pushWithCliTimed(args: string[]): Promise<PushRun & { readonly cpuSeconds: number | undefined }> {
  if (!existsSync(TIME)) return { ...await pushWithCli(args), cpuSeconds: undefined };
  const report = join(tmpdir(), `imgpush-bench-time-${process.pid}.txt`);
  const summary = await summaryOf([TIME, '-f', '%U %S', '-o', report, process.execPath, BIN, ...args, '--json', '--quiet']);
  const [user, system] = (await readFile(report, 'utf8')).trim().split(/\s+/).map(Number) as [number, number];
  await rm(report, { force: true });
  return { ...summary, cpuSeconds: user + system };
}

function summaryOf([command, ...args]: string[]): Promise<PushRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command as string, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('close', (code) => (out === '' ? reject(new Error(`imgpush exited ${code}`)) : resolve(JSON.parse(out) as PushRun)));
  });
}
