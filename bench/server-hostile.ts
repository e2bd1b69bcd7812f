/**
 * The reference server under hostile load (issue 16), measured against
 * `imgpush serve` in its own process with its default limits unless said:
 * decompression bombs (time and peak RSS), liveness while a 50 MB JSON body
 * is parsed, a burst of large bodies (RSS after), 800 images in flight (429s
 * and p99), SIGTERM with a client dripping its body (time to exit), and jobs
 * accepted vs delivered across a SIGTERM. Prints one line per figure
 * (`inFlight` two, and where an accepted image's time in the server went).
 *
 *   npm run build && npx tsc -p tsconfig.test.json && node build/bench/server-hostile.js
 *
 * The 10000×10000 bombs take about 40 s to make the first time; they are
 * kept in bench/corpus/bombs/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import sharp from 'sharp';
import { Agent, request } from 'undici';
import { BIN, ROOT } from './processes.js';

interface Served {
  readonly url: string;
  readonly child: ChildProcess;
  /** VmRSS and VmHWM (the peak) of the server process, in MiB. */
  memory(): Promise<{ rss: number; peak: number }>;
  /** Sends `signal` and resolves with the exit code and the ms until exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number; stderr: string }>;
}

function startServe(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--log-level', 'silent', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const url = /ready: .* at (http:\/\/\S+)/.exec(stderr)?.[1];
      if (url === undefined) return;
      resolve({
        url,
        child,
        async memory() {
          const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
          const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
          return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
        },
        async stop(signal = 'SIGTERM') {
          const started = performance.now();
          child.kill(signal);
          const code = await exited;
          return { code, ms: performance.now() - started, stderr };
        },
      });
    });
    void exited.then((code) => reject(new Error(`imgpush serve exited ${code}: ${stderr}`)));
  });
}

const BOMBS = join(ROOT, 'bench/corpus/bombs');

/** Real side×side images of one colour: a few KB to a few hundred; 100 M pixels to decode at 10000. */
async function bomb(format: 'png' | 'jpeg' | 'avif', side = 10_000): Promise<Buffer> {
  const path = join(BOMBS, `${side}.${format}`);
  if (existsSync(path)) return readFile(path);
  await mkdir(BOMBS, { recursive: true });
  const image = sharp({ create: { width: side, height: side, channels: 3, background: { r: 10, g: 20, b: 30 } }, limitInputPixels: false });
  const bytes = await (format === 'png' ? image.png({ compressionLevel: 9 }) : format === 'jpeg' ? image.jpeg({ quality: 1 }) : image.avif({ quality: 1, effort: 0 })).toBuffer();
  await writeFile(path, bytes);
  return bytes;
}

function mib(bytes: number): string {
  return `${(bytes).toFixed(0)} MiB`;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** What the server said of one image's stages, from a v1 answer's `results[0].timings`. */
interface Stages {
  readonly decodeMs: number;
  readonly queueMs: number;
  readonly inferenceMs: number;
}

async function post(url: string, body: Buffer | string, headers: Record<string, string>, dispatcher?: Agent): Promise<{ status: number; retryAfter: unknown; ms: number; serverMs: number; stages: Stages | undefined }> {
  const started = performance.now();
  const answer = await request(url, { method: 'POST', body, headers, dispatcher });
  const text = await answer.body.text();
  const serverMs = Number(/dur=([\d.]+)/.exec(String(answer.headers['server-timing']))?.[1]);
  const stages = answer.statusCode === 200 && url.includes('/v1/predict') ? (JSON.parse(text) as { results: Array<{ timings: Stages }> }).results[0]?.timings : undefined;
  return { status: answer.statusCode, retryAfter: answer.headers['retry-after'], ms: performance.now() - started, serverMs, stages };
}

/** CPU time of a process so far, all its threads, user and system, in ms (from /proc/<pid>/stat, in clock ticks of 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function p50p99(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50).toFixed(0)} ms, p99 ${percentile(sorted, 99).toFixed(0)} ms`;
}

/** A Prometheus sample's value from the server's /metrics. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await request(`${url}/metrics`)).body.text();
  return Number(text.split('\n').find((line) => line.startsWith(`${name} `))?.slice(name.length + 1));
}

async function bombs(): Promise<void> {
  for (const format of ['avif', 'png', 'jpeg'] as const) {
    const bytes = await bomb(format);
    for (const args of [[], ['--max-pixels', '100000001']]) {
      const server = await startServe(args);
      const before = await server.memory();
      const answer = await post(`${server.url}/v1/predict`, bytes, { 'content-type': 'application/octet-stream' });
      const after = await server.memory();
      console.log(`bomb ${format} 10000x10000 (${bytes.length} bytes)${args.length === 0 ? '' : ` ${args.join(' ')}`}: ${answer.status} in ${answer.ms.toFixed(0)} ms, peak RSS +${mib(after.peak - before.rss)}`);
      await server.stop();
    }
  }
  // The worst an image under the default --max-pixels can cost: an AVIF (decoded whole) of 5000×5000.
  const limit = await bomb('avif', 5000);
  const server = await startServe([]);
  const before = await server.memory();
  const answer = await post(`${server.url}/v1/predict`, limit, { 'content-type': 'application/octet-stream' });
  const after = await server.memory();
  console.log(`avif 5000x5000 (${limit.length} bytes), at the default --max-pixels: ${answer.status} in ${answer.ms.toFixed(0)} ms, peak RSS +${mib(after.peak - before.rss)}`);
  await server.stop();
}

async function liveness(): Promise<void> {
  const server = await startServe([]);
  const count = 5_000_000;
  // Encoded before the probes start, so that the bench's own work does not delay them.
  const body = Buffer.from(`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":[${'"",       '.repeat(count - 1)}""]}]}`);
  let worst = 0;
  let probes = 0;
  let busy = true;
  const probing = (async () => {
    while (busy) {
      const started = performance.now();
      const answer = await request(`${server.url}/v2/health/live`);
      await answer.body.dump();
      worst = Math.max(worst, performance.now() - started);
      probes++;
      await delay(10);
    }
  })();
  const answer = await post(`${server.url}/v2/models/builtin:colors/infer`, body, { 'content-type': 'application/json' });
  busy = false;
  await probing;
  console.log(`liveness while a ${(body.length / 1e6).toFixed(0)} MB JSON of ${count / 1e6} M empty strings is parsed: infer ${answer.status} in ${answer.ms.toFixed(0)} ms; /v2/health/live worst ${worst.toFixed(0)} ms over ${probes} probes`);
  await server.stop();
}

async function largeBodies(): Promise<void> {
  const server = await startServe([]);
  const baseline = await server.memory();
  const size = 60 * 1024 * 1024;
  const body = Buffer.alloc(size, 'A');
  const answers = await Promise.all(Array.from({ length: 4 }, () => post(`${server.url}/v2/models/builtin:colors/infer`, body, { 'content-type': 'application/json' })));
  const peak = await server.memory();
  await delay(3000);
  const after = await server.memory();
  console.log(`4 bodies of 60 MiB at once: ${answers.map((a) => a.status).join(' ')}; RSS ${mib(baseline.rss)} before, peak ${mib(peak.peak)}, ${mib(after.rss)} 3 s after`);
  const huge = await new Promise<string>((resolve) => {
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    socket.on('error', () => {});
    socket.once('close', () => resolve(text.split('\r\n')[0] ?? ''));
    socket.write(`POST /v2/models/builtin:colors/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${1024 ** 3}\r\n\r\n`);
    socket.write(Buffer.alloc(1024 * 1024, 'A'));
  });
  console.log(`a 1 GiB body: "${huge}" from its Content-Length, RSS ${mib((await server.memory()).rss)}`);
  await server.stop();
}

async function inFlight(): Promise<void> {
  const args = process.argv.slice(3);
  const server = await startServe(args);
  const pid = server.child.pid ?? 0;
  const images = await Promise.all(Array.from({ length: 800 }, (_, i) => sharp({ create: { width: 64, height: 64, channels: 3, background: { r: i % 256, g: (i >> 8) * 60, b: 128 } } }).png().toBuffer()));
  const agent = new Agent({ connections: 800, pipelining: 0 });
  // The floor on this machine: the same 800 connections asking for nothing but liveness.
  let cpu = await cpuMs(pid);
  const probes = await Promise.all(images.map(async () => {
    const begun = performance.now();
    const answer = await request(`${server.url}/v2/health/live`, { dispatcher: agent });
    await answer.body.dump();
    return { ms: performance.now() - begun, serverMs: Number(/dur=([\d.]+)/.exec(String(answer.headers['server-timing']))?.[1]) };
  }));
  console.log(`800 concurrent liveness probes, 800 connections: at the client ${p50p99(probes.map((p) => p.ms))}; in the server ${p50p99(probes.map((p) => p.serverMs))}; `
    + `server CPU ${((await cpuMs(pid)) - cpu) / 800} ms a probe`);
  await agent.close();
  const fresh = new Agent({ connections: 800, pipelining: 0 });
  cpu = await cpuMs(pid);
  const started = performance.now();
  const answers = await Promise.all(images.map((image) => post(`${server.url}/v1/predict`, image, { 'content-type': 'image/png' }, fresh)));
  const wall = performance.now() - started;
  const cpuPerRequest = ((await cpuMs(pid)) - cpu) / 800;
  const accepted = answers.filter((a) => a.status === 200);
  const ok = accepted.map((a) => a.ms);
  // The server's own time (Server-Timing): what admission bounds, apart from the connection burst's cost to the client.
  const inServer = accepted.map((a) => a.serverMs);
  const refused = answers.filter((a) => a.status === 429);
  const batchMs = 1000 * await metric(server.url, 'imgpush_inference_seconds_sum') / await metric(server.url, 'imgpush_inference_seconds_count');
  const meanBatch = await metric(server.url, 'imgpush_batch_size_sum') / await metric(server.url, 'imgpush_batch_size_count');
  console.log(`800 images in flight (one per request, 800 connections)${args.length === 0 ? '' : ` ${args.join(' ')}`}: ${ok.length} answered 200 (at the client ${p50p99(ok)}; in the server ${p50p99(inServer)}), `
    + `${refused.length} 429 (${refused.filter((a) => a.retryAfter !== undefined).length} with Retry-After; at the client ${p50p99(refused.map((a) => a.ms))}), others ${answers.length - ok.length - refused.length}; ${wall.toFixed(0)} ms in all; `
    + `server CPU ${cpuPerRequest.toFixed(2)} ms a request; a batch ran ${batchMs.toFixed(1)} ms on average (mean size ${meanBatch.toFixed(1)})`);
  // Where an accepted image's time in the server went: the stages it reports, and the rest (admission, body, the wait for a decode slot, the loop's turns, the answer).
  const stages = accepted.flatMap((a) => (a.stages === undefined ? [] : [{ ...a.stages, serverMs: a.serverMs }]));
  console.log(`  accepted images' stages: decode ${p50p99(stages.map((t) => t.decodeMs))}; batch wait ${p50p99(stages.map((t) => t.queueMs))}; inference ${p50p99(stages.map((t) => t.inferenceMs))}; `
    + `the rest (before the decode: a decode slot, the loop) ${p50p99(stages.map((t) => t.serverMs - t.decodeMs - t.queueMs - t.inferenceMs))}`);
  await fresh.close();
  await server.stop();
}

async function drip(): Promise<void> {
  for (const args of [['--shutdown-timeout', '10s'], ['--shutdown-timeout', '10s', '--min-body-rate', '0']]) {
    const server = await startServe(args);
    const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
    socket.on('error', () => {});
    socket.write('POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n');
    const dripping = setInterval(() => socket.write('x'), 1000);
    await delay(1500);
    const { code, ms } = await server.stop();
    clearInterval(dripping);
    socket.destroy();
    console.log(`SIGTERM 1.5 s after a client began dripping one byte a second (${args.join(' ')}, --drain-delay 2s): exit ${code} after ${ms.toFixed(0)} ms`);
  }
}

async function jobs(): Promise<void> {
  const delivered: Array<{ status: string }> = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      delivered.push(JSON.parse(body) as { status: string });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const callback = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/done`;
  const server = await startServe(['--model', 'builtin:synthetic', '--allow-callback-hosts', '127.0.0.1']);
  const image = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#336699' } }).jpeg().toBuffer();
  const accepted = (await Promise.all(Array.from({ length: 60 }, (_, i) => post(`${server.url}/v1/jobs?callback_url=${encodeURIComponent(`${callback}?${i}`)}`,
    Buffer.concat([image, Buffer.from([i])]), { 'content-type': 'image/jpeg' })))).filter((answer) => answer.status === 202).length;
  const { code, ms } = await server.stop();
  hook.close();
  console.log(`jobs across SIGTERM (builtin:synthetic, SIGTERM right after the 202s): ${accepted} accepted, ${delivered.filter((job) => job.status === 'done').length} delivered done, `
    + `${delivered.filter((job) => job.status === 'failed').length} delivered failed; exit ${code} after ${ms.toFixed(0)} ms`);
}

const only = process.argv[2];
const parts: Record<string, () => Promise<void>> = { bombs, liveness, largeBodies, inFlight, drip, jobs };
for (const [name, run] of Object.entries(parts)) if (only === undefined || only === name) await run();
