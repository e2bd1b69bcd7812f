// Tools for the "nothing lost" tests (issue 14): a work folder, a server that holds each request
// until the test answers it, the real binary run as root or as nobody, and a small tmpfs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { push, UsageError, type PushHooks, type PushOptions, type PushSummary } from '../../src/client/index.js';
import { BIN } from './cli.js';
import { bytesFor } from './files.js';
import { parseMultipart, startServer, type Answer, type Received, type TestServer } from './server.js';

/** A temp folder that an unprivileged user can walk (mkdtemp makes it 0700). */
export interface Work {
  readonly root: string;
  path(rel: string): string;
  /** Writes a file (size in deterministic bytes, or the contents) and returns its absolute path. */
  file(rel: string, spec: number | string | Buffer): Promise<string>;
  remove(): Promise<void>;
}

export async function makeWork(): Promise<Work> {
  const root = await mkdtemp(join(tmpdir(), 'imgpush-lost-'));
  await chmod(root, 0o777);
  let seed = 100;
  return {
    root,
    path: (rel) => join(root, rel),
    async file(rel, spec) {
      const path = join(root, rel);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, typeof spec === 'number' ? bytesFor(seed++, spec) : spec);
      return path;
    },
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

/** A work folder and the server `start` starts, both removed when test `t` ends. */
export async function workWithServer<S extends { close(): Promise<void> }>(t: { after: (fn: () => Promise<void>) => void }, start: () => Promise<S>): Promise<{ work: Work; server: S }> {
  const work = await makeWork();
  const server = await start();
  t.after(async () => {
    await server.close();
    await work.remove();
  });
  return { work, server };
}

/** A request the server has read whole and not yet answered. */
export interface Held {
  readonly received: Received;
  readonly res: ServerResponse;
  /** The multipart file name of the request's (first) file, or its URL for a raw body. */
  readonly name: string;
  answer(answer: Answer): void;
}

export interface HoldingServer extends TestServer {
  /** The next request read whole (one already waiting, or the next to come). */
  next(): Promise<Held>;
  /** From now on, answer every request (those waiting too) at once with this. */
  answerAll(answer: Answer | ((held: Held) => Answer)): void;
}

function nameOf(received: Received): string {
  const type = String(received.headers['content-type'] ?? '');
  if (!type.startsWith('multipart/')) return received.url;
  return parseMultipart(received)[0]?.filename ?? received.url;
}

/** A real HTTP server that holds every request until the test answers it: races become steps. */
export async function startHoldingServer(): Promise<HoldingServer> {
  const waiting: Held[] = [];
  const takers: Array<(held: Held) => void> = [];
  let auto: ((held: Held) => Answer) | undefined;
  const server = await startServer((received, res) => new Promise<Answer>((resolve) => {
    const held: Held = { received, res, name: nameOf(received), answer: resolve };
    if (auto !== undefined) return resolve(auto(held));
    const taker = takers.shift();
    if (taker !== undefined) taker(held);
    else waiting.push(held);
  }));
  return {
    ...server,
    next: () => new Promise<Held>((resolve) => {
      const held = waiting.shift();
      if (held !== undefined) resolve(held);
      else takers.push(resolve);
    }),
    answerAll(answer) {
      auto = typeof answer === 'function' ? answer : () => answer;
      for (const held of waiting.splice(0)) held.answer(auto(held));
    },
  };
}

/** Multipart file names the server received. */
export function namesReceived(server: Pick<TestServer, 'received'>): string[] {
  return server.received.map(nameOf);
}

export interface Run {
  readonly child: ChildProcess;
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  /** Resolves once stdout or stderr has printed text matching `pattern`. */
  waitFor(pattern: RegExp): Promise<void>;
  stdout(): string;
  stderr(): string;
}

export interface RunOptions {
  readonly cwd?: string;
  /** Run as nobody (uid and gid 65534): permissions then apply. */
  readonly asNobody?: boolean;
  /** Written to stdin, which then closes; stdin stays open when undefined. */
  readonly input?: string;
  readonly env?: Record<string, string>;
  /** Its stdout a real pipe (`imgpush … | cat`), not the socket node gives a child. */
  readonly stdoutThroughPipe?: boolean;
}

const PROXY_VARIABLES = /^(https?|no)_proxy$/i;

/** Starts `bin/imgpush` (the built launcher) with these arguments. */
export function start(args: readonly string[], options: RunOptions = {}): Run {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !PROXY_VARIABLES.test(name))), ...options.env };
  let command = options.asNobody === true
    ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, BIN, ...args]
    : [process.execPath, BIN, ...args];
  // pipefail: the pipeline's status is imgpush's (cat's is 0).
  if (options.stdoutThroughPipe === true) command = ['bash', '-c', 'set -o pipefail; "$@" | cat', 'bash', ...command];
  const child = spawn(command[0] as string, command.slice(1), { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const watchers: Array<{ pattern: RegExp; resolve: () => void }> = [];
  const check = (): void => {
    for (const watcher of [...watchers]) {
      if (watcher.pattern.test(stdout) || watcher.pattern.test(stderr)) {
        watchers.splice(watchers.indexOf(watcher), 1);
        watcher.resolve();
      }
    }
  };
  child.stdout?.setEncoding('utf8').on('data', (text: string) => { stdout += text; check(); });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => { stderr += text; check(); });
  // A child that exits before reading its stdin must not fail the test with EPIPE.
  child.stdin?.on('error', () => {});
  if (options.input !== undefined) child.stdin?.end(options.input);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    done,
    waitFor: (pattern) => new Promise<void>((resolve) => {
      watchers.push({ pattern, resolve });
      check();
    }),
    stdout: () => stdout,
    stderr: () => stderr,
  };
}

/** Runs `bin/imgpush` to its end, stdin empty. */
export function run(args: readonly string[], options: RunOptions = {}): Run['done'] {
  return start(args, { input: '', ...options }).done;
}

/** Every JSON line of a log, and the lines that are not JSON (a line cut short), apart. */
export async function readLog(path: string): Promise<{ records: Array<Record<string, unknown>>; broken: string[] }> {
  const records: Array<Record<string, unknown>> = [];
  const broken: string[] = [];
  if (!existsSync(path)) return { records, broken };
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    if (line === '') continue;
    try {
      records.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      broken.push(line);
    }
  }
  return { records, broken };
}

/** The file entries (not headers) of every failure log in a folder, whatever it is called. */
export async function failuresIn(dir: string): Promise<Array<Record<string, unknown>>> {
  const entries: Array<Record<string, unknown>> = [];
  for (const name of await readdir(dir)) {
    if (!/failures/.test(name)) continue;
    for (const record of (await readLog(join(dir, name))).records) if (typeof record.path === 'string') entries.push(record);
  }
  return entries;
}

/** Text of a file, or '' when there is none. */
export function textOf(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

/** The regular files that `text` names by path (absolute, or relative to `cwd`). */
export function filesNamedIn(text: string, cwd: string): string[] {
  const names = [...text.matchAll(/[^\s'"`():,]+/g)].map((match) => match[0]);
  return [...new Set(names.map((name) => resolve(cwd, name)))].filter((path) => {
    try {
      return statSync(path).isFile();
    } catch {
      return false;
    }
  });
}

/** Mounts a tmpfs of `size` on a new folder; the reason, as a string, when this machine does not allow it. */
export async function mountTmpfs(size: string): Promise<{ dir: string; unmount(): Promise<void> } | string> {
  const dir = await mkdtemp(join(tmpdir(), 'imgpush-lost-fs-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0777`, 'tmpfs', dir], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    return `cannot mount a tmpfs here: ${(mounted.stderr || mounted.error?.message || 'mount failed').trim()}`;
  }
  return {
    dir,
    async unmount() {
      spawnSync('umount', ['-l', dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Makes a named pipe (mkfifo); false when this system cannot. */
export function mkfifo(path: string): boolean {
  return spawnSync('mkfifo', [path]).status === 0;
}

/** The main thread's /proc/PID/syscall line ('' when it cannot be read), and whether signal `signal` is still pending for it. */
function procState(pid: number, signal: number | undefined): { syscall: string; pending: boolean } {
  try {
    const syscall = readFileSync(`/proc/${pid}/syscall`, 'utf8').trim();
    if (signal === undefined) return { syscall, pending: false };
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const mask = (name: string): bigint => BigInt(`0x${new RegExp(`${name}:\\s*([0-9a-f]+)`).exec(status)?.[1] ?? '0'}`);
    const bit = 1n << BigInt(signal - 1);
    return { syscall, pending: ((mask('SigPnd') | mask('ShdPnd')) & bit) !== 0n };
  } catch {
    return { syscall: '', pending: false };
  }
}

/**
 * Resolves once the process's main thread is blocked in system call `nr`:
 * seen in it, with the same arguments, on 3 looks in a row a few ms apart (a
 * call that returns at once is never seen so), and, with `signal`, after
 * that signal was taken off the pending set (delivered, and the call
 * restarted: JavaScript never ran). Rejects if the process ends first.
 */
export function untilBlockedIn(pid: number, nr: number, exited: Promise<unknown>, signal?: number): Promise<void> {
  let over = false;
  void exited.then(() => { over = true; });
  let last = '';
  let seen = 0;
  return new Promise((resolve, reject) => {
    const look = (): void => {
      if (over) return reject(new Error(`process ${pid} ended before it was blocked in system call ${nr}`));
      const { syscall, pending } = procState(pid, signal);
      const inCall = !pending && syscall.split(' ')[0] === String(nr);
      seen = inCall && syscall === last ? seen + 1 : inCall ? 1 : 0;
      last = syscall;
      if (seen >= 3) return resolve();
      setTimeout(look, 5);
    };
    look();
  });
}

/** x86-64's openat; other machines differ, and the tests that use it say so. */
export const SYS_OPENAT = process.arch === 'x64' ? 257 : process.arch === 'arm64' ? 56 : -1;

/** Whether uid 65534 can run node here (setpriv present, the launcher readable). */
export function canRunAsNobody(): string | undefined {
  const probe = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(BIN)})`]);
  return probe.status === 0 ? undefined : `cannot run node as uid 65534 here (${probe.error?.message ?? probe.stderr.toString().trim()})`;
}

/** How a library push ended: its summary, or what it threw. */
export interface Outcome {
  readonly summary?: PushSummary;
  readonly error?: unknown;
}

/** Calls the library's push() in this process; what it throws is returned, not thrown. */
export async function pushIn(options: PushOptions, hooks: PushHooks = {}): Promise<Outcome> {
  try {
    return { summary: await push(options, hooks) };
  } catch (error) {
    return { error };
  }
}

/** The error of an outcome is a UsageError (a refusal before anything is sent). */
export function isUsageError(outcome: Outcome): boolean {
  return outcome.error instanceof UsageError;
}
