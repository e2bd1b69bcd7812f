import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { seededRandom } from '../models/random.js';
import { serve } from '../server/serve.js';

const BIN = fileURLToPath(new URL('../../bin/imgpush', import.meta.url));
const SIZE = { width: 160, height: 120 };
const FRAMES = 240;

type Rgb = readonly [number, number, number];

/** Raw RGB pixels from a function of (x, y), encoded as PNG or JPEG. */
function render(paint: (x: number, y: number) => Rgb, format: 'png' | 'jpeg'): Promise<Buffer> {
  const pixels = Buffer.alloc(SIZE.width * SIZE.height * 3);
  for (let y = 0; y < SIZE.height; y++) {
    for (let x = 0; x < SIZE.width; x++) pixels.set(paint(x, y), (y * SIZE.width + x) * 3);
  }
  const image = sharp(pixels, { raw: { ...SIZE, channels: 3 } });
  return (format === 'png' ? image.png() : image.jpeg({ quality: 90 })).toBuffer();
}

function mix(a: Rgb, b: Rgb, t: number): Rgb {
  return [0, 1, 2].map((i) => Math.round(a[i]! + (b[i]! - a[i]!) * t)) as unknown as Rgb;
}

const PLAIN: ReadonlyArray<readonly [string, Rgb]> = [
  ['red', [220, 20, 30]], ['green', [30, 190, 40]], ['blue', [20, 40, 230]], ['yellow', [240, 230, 20]], ['cyan', [20, 220, 230]],
  ['magenta', [220, 30, 210]], ['white', [245, 245, 245]], ['black', [10, 10, 12]], ['gray', [128, 128, 128]],
];

/** Writes the sample set: plain colours, gradients, noise, and the frames of a scene whose sky darkens. */
async function writeSamples(dir: string): Promise<number> {
  let count = 0;
  const put = async (folder: string, name: string, data: Promise<Buffer>): Promise<void> => {
    await mkdir(join(dir, folder), { recursive: true });
    await writeFile(join(dir, folder, name), await data);
    count++;
  };
  for (const [name, rgb] of PLAIN) {
    for (let shade = 0; shade < 4; shade++) await put('plain', `${name}-${shade}.png`, render(() => mix(rgb, [128, 128, 128], shade * 0.12), 'png'));
  }
  for (let i = 0; i < PLAIN.length * 2; i++) {
    const from = PLAIN[i % PLAIN.length]![1];
    const to = PLAIN[(i * 5 + 3) % PLAIN.length]![1];
    await put('gradients', `gradient-${i}.jpg`, render((x) => mix(from, to, x / (SIZE.width - 1)), 'jpeg'));
  }
  for (let i = 0; i < 20; i++) {
    const random = seededRandom(i + 1);
    await put('noise', `noise-${i}.png`, render(() => [random() * 255, random() * 255, random() * 255].map(Math.round) as unknown as Rgb, 'png'));
  }
  for (let frame = 0; frame < FRAMES; frame++) {
    const t = frame / (FRAMES - 1);
    // A day in 240 frames: a cyan sky turns blue, then night; a yellow sun crosses it and sets.
    const sky = t < 0.5 ? mix([60, 210, 230], [20, 40, 200], t * 2) : mix([20, 40, 200], [5, 5, 20], (t - 0.5) * 2);
    const sun = { x: 20 + t * 120, y: 25 + t * 90, r: 18 };
    await put('scene', `frame-${String(frame).padStart(4, '0')}.jpg`, render((x, y) => ((x - sun.x) ** 2 + (y - sun.y) ** 2 < sun.r ** 2 ? [250, 220, 40] : sky), 'jpeg'));
  }
  return count;
}

function runImgpush(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

interface ResultLine {
  readonly ok: boolean;
  readonly rel: string;
  readonly response?: { results?: Array<{ top?: Array<{ label: string; score: number }> }> };
}

/**
 * `imgpush demo`: the whole pipeline on one machine, offline. Starts the
 * reference server with builtin:colors on a free port, writes sample
 * images, pushes them with imgpush, and prints what the model saw.
 */
export async function runDemo(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'imgpush-demo-'));
  const say = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const server = await serve({
    model: 'builtin:colors', device: 'auto', host: '127.0.0.1', port: 0, maxFileSize: 25 * 1024 ** 2, maxFiles: 64, cacheSize: 10_000, logLevel: 'silent',
    batching: { maxBatch: 16, delayMs: 2, queueLimit: 256, concurrency: 1 },
  }, (line) => say(`server: ${line}`));
  try {
    await server.ready;
    const images = join(dir, 'images');
    const count = await writeSamples(images);
    say(`demo: wrote ${count} sample images (plain colours, gradients, noise, ${FRAMES} frames of a scene) in ${images}`);
    const results = join(dir, 'results.jsonl');
    const code = await runImgpush([images, '--url', `${server.url}/v1/predict`, '--concurrency', '16', '-o', results]);
    const lines = (await readFile(results, 'utf8')).split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as ResultLine);
    const byLabel = new Map<string, { count: number; score: number; folders: Set<string> }>();
    for (const line of lines) {
      const top = line.response?.results?.[0]?.top?.[0];
      if (!line.ok || top === undefined) continue;
      const entry = byLabel.get(top.label) ?? { count: 0, score: 0, folders: new Set<string>() };
      entry.count++;
      entry.score += top.score;
      entry.folders.add(line.rel.split(/[\\/]/)[0] ?? '');
      byLabel.set(top.label, entry);
    }
    say('\ndemo: what builtin:colors saw');
    say('  label      images  mean score  from');
    for (const [label, entry] of [...byLabel].sort((a, b) => b[1].count - a[1].count)) {
      say(`  ${label.padEnd(9)} ${String(entry.count).padStart(7)}  ${(entry.score / entry.count).toFixed(3).padStart(10)}  ${[...entry.folders].sort().join(', ')}`);
    }
    const models = await fetch(`${server.url}/v1/models`);
    const { batching } = await models.json() as { batching: { batchSizes: Record<string, number> } };
    say(`\ndemo: batches the server formed (size: count): ${Object.entries(batching.batchSizes).map(([size, n]) => `${size}: ${n}`).join(', ')}`);
    say(`demo: the images and the results log stay in ${dir}`);
    return code;
  } finally {
    await server.close();
  }
}
