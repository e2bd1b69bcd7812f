import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The real launcher, as users run it. */
export const BIN = fileURLToPath(new URL('../../../bin/imgpush', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRun {
  readonly child: ChildProcess;
  readonly done: Promise<CliResult>;
  /** Resolves, with the match, once stderr or stdout has printed text matching `pattern`. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
}

/** Proxy settings of the machine the tests run on would send the tests' requests elsewhere: only a test sets them. */
const PROXY_VARIABLES = /^(https?|no)_proxy$/i;

function environment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(([name]) => !PROXY_VARIABLES.test(name));
  return { ...Object.fromEntries(inherited), ...extra };
}

export interface CliOptions {
  readonly cwd?: string;
  readonly input?: string | Buffer;
  readonly env?: Record<string, string>;
  /** Another copy of the launcher (an install laid out by a test); default BIN. */
  readonly bin?: string;
}

/** Starts `bin/imgpush` with these arguments; stdin gets `input` (then closes) unless it is undefined. */
export function startCli(args: string[], options: CliOptions = {}): CliRun {
  const child = spawn(process.execPath, [options.bin ?? BIN, ...args], {
    cwd: options.cwd,
    env: environment(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const watchers: Array<{ pattern: RegExp; resolve: (match: RegExpExecArray) => void }> = [];
  const check = (): void => {
    for (const watcher of [...watchers]) {
      const match = watcher.pattern.exec(stdout) ?? watcher.pattern.exec(stderr);
      if (match !== null) {
        watchers.splice(watchers.indexOf(watcher), 1);
        watcher.resolve(match);
      }
    }
  };
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    check();
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
    check();
  });
  if (options.input !== undefined) child.stdin.end(options.input);
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    done,
    waitFor: (pattern) => new Promise<RegExpExecArray>((resolve) => {
      watchers.push({ pattern, resolve });
      check();
    }),
  };
}

/** Runs `bin/imgpush` to the end. */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, { input: '', ...options }).done;
}
