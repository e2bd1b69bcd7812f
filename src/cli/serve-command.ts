import { Command, InvalidArgumentError, Option } from 'commander';
import { SERVER_DEFAULTS as DEFAULTS } from '../server/defaults.js';
import { importModule } from '../shared/import-module.js';
import { formatDuration, formatSize, InvalidValueError, parseDuration as duration, parsePositiveInteger, parseSize as size, parseWholeNumber } from '../shared/units.js';

interface ServeFlags {
  model: string;
  labels?: string;
  inputSize?: number;
  mean?: [number, number, number];
  std?: [number, number, number];
  layout?: 'nchw' | 'nhwc';
  device: 'cpu' | 'cuda' | 'auto';
  threads?: number;
  host: string;
  port: number;
  maxBatch: number;
  batchDelayMs: number;
  queueLimit: number;
  batchConcurrency: number;
  maxFileSize: number;
  maxFiles: number;
  token?: string;
  cacheSize: number;
  rateLimit?: number;
  requestTimeout: number;
  headerTimeout: number;
  maxConnections: number;
  minBodyRate: number;
  maxBodySize: number;
  maxBodyBytesInFlight: number;
  maxPixels: number;
  decodeTimeout: number;
  maxDecodes: number;
  shutdownTimeout: number;
  drainDelay: number;
  keepAliveTimeout: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  jobTtl: number;
  maxJobs: number;
  allowCallbackHosts?: string[];
  callbackSecret?: string;
}

const SERVER_PACKAGES = 'onnxruntime-node sharp fastify @fastify/multipart';
const SERVE_MODULE = '../server/serve.js';
const DEMO_MODULE = '../demo/demo.js';

function perSecond(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(\/s)?$/.exec(value.trim());
  if (match === null || Number(match[1]) <= 0) throw new InvalidArgumentError('expected requests a second, e.g. 50 or 50/s');
  return Number(match[1]);
}

/** A shared parser, with the error commander prints beside the flag's name. */
function asFlag<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (error) {
      if (error instanceof InvalidValueError) throw new InvalidArgumentError(error.message);
      throw error;
    }
  };
}
const positiveInteger = asFlag(parsePositiveInteger);
const wholeNumber = asFlag(parseWholeNumber);
const parseDuration = asFlag(duration);
const parseSize = asFlag(size);

/** A flag taking a duration, its default shown in help as users write it (`2m`, not 120000). */
function durationOption(flags: string, description: string, defaultMs: number): Option {
  return new Option(flags, description).argParser(parseDuration).default(defaultMs, formatDuration(defaultMs));
}

/** A flag taking a size, its default shown in help as users write it (`25MB`). */
function sizeOption(flags: string, description: string, defaultBytes: number): Option {
  return new Option(flags, description).argParser(parseSize).default(defaultBytes, formatSize(defaultBytes));
}

function port(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('expected a port from 0 to 65535');
  return Number(value);
}

function triple(value: string): [number, number, number] {
  const parts = value.split(',').map(Number);
  if (parts.length !== 3 || parts.some((part) => !Number.isFinite(part))) throw new InvalidArgumentError('expected three numbers, e.g. 0.485,0.456,0.406');
  return parts as [number, number, number];
}

function isMissingPackage(error: unknown): boolean {
  const { code } = error as { code?: unknown };
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/** The duration flags, under the names the server takes them by. */
interface ServeDurations {
  requestTimeoutMs: number;
  headerTimeoutMs: number;
  jobTtlMs: number;
  decodeTimeoutMs: number;
  shutdownTimeoutMs: number;
  drainDelayMs: number;
  keepAliveTimeoutMs: number;
}

function durationsOf(flags: ServeFlags): ServeDurations {
  return {
    requestTimeoutMs: flags.requestTimeout,
    headerTimeoutMs: flags.headerTimeout,
    jobTtlMs: flags.jobTtl,
    decodeTimeoutMs: flags.decodeTimeout,
    shutdownTimeoutMs: flags.shutdownTimeout,
    drainDelayMs: flags.drainDelay,
    keepAliveTimeoutMs: flags.keepAliveTimeout,
  };
}

/** What the CLI uses of the server's modules. */
interface ServeModule {
  serve(options: ServeFlags & ServeDurations & { batching: { maxBatch: number; delayMs: number; queueLimit: number; concurrency: number } }, log: (message: string) => void):
    Promise<{ url: string; ready: Promise<void>; close(): Promise<{ requestsCut: number; jobsLost: number }> }>;
}
interface DemoModule {
  runDemo(): Promise<number>;
}

/**
 * Imports a module of the server's side; undefined (and one line on
 * stderr) when its optional packages, or the module itself, are not
 * installed. The path is a variable, not a literal, so that the client
 * compiles without the server (npm install --omit=optional).
 */
async function loadServerSide<T>(command: string, path: string): Promise<T | undefined> {
  try {
    return await importModule(new URL(path, import.meta.url).href) as T;
  } catch (error) {
    if (!isMissingPackage(error)) throw error;
    // In a clone installed without them, the server's own files were not built either.
    const build = (error as Error).message.includes(path.slice(3)) ? ' && npm run build' : '';
    process.stderr.write(`imgpush ${command} needs the server's packages, which this install left out: npm install ${SERVER_PACKAGES}${build}\n`);
    return undefined;
  }
}

async function runServe(flags: ServeFlags): Promise<number> {
  const loaded = await loadServerSide<ServeModule>('serve', SERVE_MODULE);
  if (loaded === undefined) return 2;
  const { serve } = loaded;
  const log = (message: string): void => {
    process.stderr.write(`imgpush serve: ${message}\n`);
  };
  const { maxBatch, batchDelayMs: delayMs, queueLimit, batchConcurrency: concurrency } = flags;
  try {
    const server = await serve({ ...flags, ...durationsOf(flags), batching: { maxBatch, delayMs, queueLimit, concurrency } }, log);
    log(`listening at ${server.url}, loading ${flags.model}…`);
    // Listening from here on: a SIGTERM, even during loading, is a clean stop.
    const stopped = new Promise<{ requestsCut: number; jobsLost: number }>((resolve) => {
      const stop = (): void => {
        log(`stopping: not ready, no new requests after --drain-delay ${formatDuration(flags.drainDelay)}, those in flight get until --shutdown-timeout ${formatDuration(flags.shutdownTimeout)}`);
        void server.close().then(resolve);
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    await Promise.race([server.ready, stopped]);
    const { requestsCut, jobsLost } = await stopped;
    // Exit 0 only when nothing accepted was lost; each loss has its own log line already.
    if (requestsCut + jobsLost > 0) {
      log(`stopped: ${requestsCut} request(s) cut, ${jobsLost} job(s) lost`);
      return 1;
    }
    log('stopped');
    return 0;
  } catch (error) {
    log((error as Error).message);
    return (error as { code?: unknown }).code === 'EADDRINUSE' ? 2 : (error as Error).name === 'UsageError' ? 2 : 1;
  }
}

/** `imgpush serve` and `imgpush demo`: the reference inference server, loaded only when these commands run. */
export function addServerCommands(program: Command): void {
  program.command('demo')
    .description('the whole pipeline on this machine: start the server, write sample images, push them, show what the model saw')
    .action(async () => {
      const loaded = await loadServerSide<DemoModule>('demo', DEMO_MODULE);
      if (loaded === undefined) {
        process.exitCode = 2;
        return;
      }
      try {
        process.exitCode = await loaded.runDemo();
      } catch (error) {
        process.stderr.write(`imgpush demo: ${(error as Error).message}\n`);
        process.exitCode = 1;
      }
    });
  program.command('serve')
    .description('run the reference image-inference server (onnxruntime-node, dynamic batching)')
    .option('--model <model>', 'builtin:colors, builtin:synthetic, or a path to an .onnx classifier', DEFAULTS.model)
    .option('--labels <file>', 'labels of a --model file, one a line')
    .option('--input-size <n>', 'square image size the model takes (default: from the model, else 224)', positiveInteger)
    .option('--mean <r,g,b>', 'per-channel mean after scaling pixels to 0–1 (default: ImageNet\'s for model files)', triple)
    .option('--std <r,g,b>', 'per-channel standard deviation (default: ImageNet\'s for model files)', triple)
    .option('--layout <layout>', 'nchw or nhwc (default: nchw)')
    .option('--device <device>', 'cpu, cuda or auto (auto falls back to CPU and says so)', DEFAULTS.device)
    .option('--threads <n>', 'intra-op threads of the model (default on CPU: half the cores, at least 1)', positiveInteger)
    .option('--host <host>', 'address to listen on', DEFAULTS.host)
    .option('--port <port>', 'port to listen on (0: any free one)', port, DEFAULTS.port)
    .option('--max-batch <n>', 'run a batch once this many images wait', positiveInteger, DEFAULTS.maxBatch)
    .option('--batch-delay-ms <ms>', '…or once the oldest has waited this long (0: no wait)', wholeNumber, DEFAULTS.batchDelayMs)
    .option('--queue-limit <n>', 'images accepted and not yet answered (decoded or not); beyond, 429 with Retry-After', positiveInteger, DEFAULTS.queueLimit)
    .option('--batch-concurrency <n>', 'batches running at once', positiveInteger, DEFAULTS.batchConcurrency)
    .addOption(sizeOption('--max-file-size <size>', 'largest image (413 beyond)', DEFAULTS.maxFileSize))
    .option('--max-files <n>', 'most images in one request (413 beyond)', positiveInteger, DEFAULTS.maxFiles)
    .addOption(sizeOption('--max-body-size <size>', 'largest request body, every route (413 beyond)', DEFAULTS.maxBodySize))
    .addOption(sizeOption('--max-body-bytes-in-flight <size>', 'bodies being read or held at once, by Content-Length (429 beyond)', DEFAULTS.maxBodyBytesInFlight))
    .option('--max-pixels <n>', 'largest image by width × height, read from its header before decoding (422 beyond)', positiveInteger, DEFAULTS.maxPixels)
    .addOption(durationOption('--decode-timeout <duration>', 'longest decode of one image, whole seconds (422 beyond)', DEFAULTS.decodeTimeoutMs))
    .option('--max-decodes <n>', 'images decoded at once (keep it below UV_THREADPOOL_SIZE, default 4)', positiveInteger, DEFAULTS.maxDecodes)
    .addOption(new Option('--token <token>', 'require Authorization: Bearer <token> on every route but the health ones').env('IMGPUSH_SERVER_TOKEN'))
    .option('--cache-size <n>', 'predictions kept by image sha256 (0: no cache)', wholeNumber, DEFAULTS.cacheSize)
    .option('--rate-limit <n/s>', 'requests a second per client address on /v1/predict (429 with Retry-After beyond)', perSecond)
    .addOption(durationOption('--request-timeout <duration>', 'the whole request must arrive within this', DEFAULTS.requestTimeoutMs))
    .addOption(durationOption('--header-timeout <duration>', 'the headers must arrive within this (slowloris)', DEFAULTS.headerTimeoutMs))
    .option('--max-connections <n>', 'connections open at once; beyond, new ones are dropped', positiveInteger, DEFAULTS.maxConnections)
    .addOption(sizeOption('--min-body-rate <size>', 'bytes a second a body must keep arriving at, judged every 5s (408 below; 0: no check)', DEFAULTS.minBodyRate))
    .addOption(durationOption('--keep-alive-timeout <duration>', 'how long an idle connection is kept (above load balancers\' 60 s)', DEFAULTS.keepAliveTimeoutMs))
    .addOption(durationOption('--drain-delay <duration>', 'on SIGTERM, not ready this long before the listener closes', DEFAULTS.drainDelayMs))
    .addOption(durationOption('--shutdown-timeout <duration>', 'on SIGTERM, requests and jobs in flight get this long, then are cut and reported (exit 1)', DEFAULTS.shutdownTimeoutMs))
    .addOption(durationOption('--job-ttl <duration>', 'how long a finished job\'s result is kept', DEFAULTS.jobTtlMs))
    .option('--max-jobs <n>', 'jobs kept at once (the oldest finished go first)', positiveInteger, DEFAULTS.maxJobs)
    .option('--allow-callback-hosts <hosts>', 'hosts (host or host:port) a job\'s callback_url may name, comma-separated; loopback ones too only when named', (value: string) => value.split(',').map((host) => host.trim()).filter((host) => host !== ''))
    .addOption(new Option('--callback-secret <secret>', 'sign every job callback: X-Imgpush-Signature: sha256=<HMAC-SHA256 of the body, hex>').env('IMGPUSH_CALLBACK_SECRET'))
    .addOption(new Option('--log-level <level>', 'JSON request logs on stdout, with request ids').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(DEFAULTS.logLevel))
    .action(async (flags: ServeFlags) => {
      if (!['cpu', 'cuda', 'auto'].includes(flags.device)) throw new InvalidArgumentError(`--device must be cpu, cuda or auto (got ${flags.device})`);
      process.exitCode = await runServe(flags);
    });
}
