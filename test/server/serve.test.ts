import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { request } from 'undici';
import { push, type FileResult } from '../../src/client/index.js';
import { colorsModel } from '../../src/models/builtin.js';
import { buildApp } from '../../src/server/app.js';
import type { AppState } from '../../src/server/state.js';
import { Batcher } from '../../src/server/inference/batcher.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { loadModel } from '../../src/server/inference/model.js';
import { serve, type RunningServer } from '../../src/server/serve.js';
import { UsageError } from '../../src/shared/errors.js';
import { makeTree, readJsonl } from '../helpers/files.js';
import { startCli } from '../helpers/cli.js';

const COLORS = { red: [255, 0, 0], green: [0, 200, 0], blue: [0, 0, 255], yellow: [250, 250, 0] } as const;
const batching = { maxBatch: 16, delayMs: 5, queueLimit: 256, concurrency: 1 };
let server: RunningServer;

function plain(rgb: readonly number[], format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const image = sharp({ create: { width: 40, height: 30, channels: 3, background: { r: rgb[0]!, g: rgb[1]!, b: rgb[2]! } } });
  return (format === 'png' ? image.png() : image.jpeg()).toBuffer();
}

function multipart(parts: Array<{ field: string; name: string; data: Buffer }>): { body: Buffer; type: string } {
  const boundary = 'test-boundary-42';
  const chunks: Buffer[] = [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${part.field}"; filename="${part.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`), part.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

async function post(url: string, body: Buffer, type: string): Promise<{ status: number; json: any; headers: Record<string, unknown> }> {
  const answer = await request(url, { method: 'POST', body, headers: { 'content-type': type } });
  return { status: answer.statusCode, json: await answer.body.json(), headers: answer.headers };
}

before(async () => {
  server = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 64 * 1024, maxFiles: 4, batching, cacheSize: 0 }, () => {});
  await server.ready;
});
after(() => server.close());

test('plain red, green, blue and yellow images come out as their colour, from multipart fields of any name and raw bodies', async () => {
  const images = await Promise.all(Object.values(COLORS).map((rgb, i) => plain(rgb, i % 2 === 0 ? 'png' : 'jpeg')));
  const { body, type } = multipart(Object.keys(COLORS).map((name, i) => ({ field: i === 0 ? 'image' : `file${i}`, name: `${name}.img`, data: images[i]! })));
  const answer = await post(`${server.url}/v1/predict?top_k=3`, body, type);
  assert.equal(answer.status, 200, JSON.stringify(answer.json));
  assert.deepEqual(answer.json.results.map((r: any) => r.top[0].label), Object.keys(COLORS));
  for (const result of answer.json.results) {
    assert.equal(result.top.length, 3);
    assert.deepEqual([result.width, result.height], [40, 30]);
    assert.match(result.sha256, /^[0-9a-f]{64}$/);
    assert.ok(result.timings.batchSize >= 1);
  }
  const raw = await post(`${server.url}/v1/predict`, images[2]!, 'image/png');
  assert.equal(raw.json.results[0].top[0].label, 'blue');
});

test('every error is JSON with the right status, and none takes the server down', async () => {
  const red = await plain(COLORS.red);
  const big = Buffer.concat([red, Buffer.alloc(70 * 1024)]);
  const cases: Array<[string, Buffer, string, number, string]> = [
    ['not an image', Buffer.from('just some text, no magic bytes'), 'image/png', 415, 'IMGPUSH_NOT_AN_IMAGE'],
    ['an image that does not decode', Buffer.concat([red.subarray(0, 40), Buffer.alloc(200, 7)]), 'image/png', 422, 'IMGPUSH_UNDECODABLE'],
    ['a file over --max-file-size', big, 'image/png', 413, 'FST_ERR_CTP_BODY_TOO_LARGE'],
    ['an unsupported content type', red, 'text/csv', 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE'],
    ['malformed multipart', Buffer.from('--x\r\nnot a part header\r\n'), 'multipart/form-data; boundary=x', 400, ''],
  ];
  for (const [name, body, type, status, code] of cases) {
    const answer = await post(`${server.url}/v1/predict`, body, type);
    assert.equal(answer.status, status, `${name}: ${JSON.stringify(answer.json)}`);
    assert.equal(typeof answer.json.error.message, 'string', name);
    if (code !== '') assert.equal(answer.json.error.code, code, name);
  }
  const tooMany = multipart(Array.from({ length: 5 }, (_, i) => ({ field: 'image', name: `${i}.png`, data: red })));
  assert.equal((await post(`${server.url}/v1/predict`, tooMany.body, tooMany.type)).status, 413);
  const bigPart = multipart([{ field: 'image', name: 'big.png', data: big }]);
  assert.equal((await post(`${server.url}/v1/predict`, bigPart.body, bigPart.type)).status, 413);
  const missing = await request(`${server.url}/v1/nothing`);
  assert.equal(missing.statusCode, 404);
  await missing.body.dump();
  const still = await post(`${server.url}/v1/predict`, red, 'image/png');
  assert.equal(still.json.results[0].top[0].label, 'red', 'the server still answers');
});

test('under 64 concurrent requests, batches larger than 1 form and every answer is right', async () => {
  const images = await Promise.all(Object.values(COLORS).map((rgb) => plain(rgb)));
  const names = Object.keys(COLORS);
  const answers = await Promise.all(Array.from({ length: 64 }, (_, i) => post(`${server.url}/v1/predict`, images[i % 4]!, 'image/png')));
  answers.forEach((answer, i) => assert.equal(answer.json.results[0].top[0].label, names[i % 4]));
  assert.ok(answers.some((answer) => answer.json.results[0].timings.batchSize > 1), 'some batch held more than one image');
  const models = await request(`${server.url}/v1/models`);
  const info = await models.body.json() as { name: string; batching: { batchSizes: Record<string, number> }; labels: string[]; device: string };
  assert.equal(info.name, 'colors', 'the name v2 paths and answers use');
  assert.ok(Object.keys(info.batching.batchSizes).some((size) => Number(size) > 1));
  assert.equal(info.device, 'cpu');
  assert.equal(info.labels.length, 9);
});

test('not ready (503 with Retry-After) until a model is there, and not while shutting down; live all along', async () => {
  const state: AppState = { model: undefined, batcher: undefined, shuttingDown: false, metrics: new ServerMetrics() };
  const app = buildApp({ maxFileSize: 1024 * 1024, maxFiles: 4, batching, cacheSize: 0 }, state);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const status = async (path: string) => {
    const answer = await request(`${base}${path}`);
    await answer.body.dump();
    return answer.statusCode;
  };
  try {
    assert.equal(await status('/v2/health/live'), 200);
    assert.equal(await status('/v2/health/ready'), 503);
    const early = await post(`${base}/v1/predict`, await plain(COLORS.red), 'image/png');
    assert.equal(early.status, 503);
    assert.equal(early.headers['retry-after'], '1');
    const model = await loadModel({ model: 'builtin:colors', device: 'cpu', log: () => {} });
    state.model = model;
    state.batcher = new Batcher((inputs) => model.run(inputs), batching);
    assert.equal(await status('/v2/health/ready'), 200);
    state.shuttingDown = true;
    assert.equal(await status('/v2/health/ready'), 503);
    assert.equal(await status('/v2/health/live'), 200);
    await model.release();
  } finally {
    await app.close();
  }
});

test('a full queue answers 429 with Retry-After', async () => {
  const state: AppState = { model: undefined, batcher: undefined, shuttingDown: false, metrics: new ServerMetrics() };
  const tiny = { maxBatch: 1, delayMs: 1, queueLimit: 1, concurrency: 1 };
  // The queue limit counts images from their arrival (admission), so the app is given it too, not the batcher alone.
  const app = buildApp({ maxFileSize: 1024 * 1024, maxFiles: 4, batching: tiny, cacheSize: 0 }, state);
  const model = await loadModel({ model: 'builtin:colors', device: 'cpu', log: () => {} });
  state.model = model;
  state.batcher = new Batcher((inputs) => model.run(inputs), tiny);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  try {
    const red = await plain(COLORS.red);
    const answers = await Promise.all(Array.from({ length: 40 }, () => post(`${base}/v1/predict`, red, 'image/png')));
    const refused = answers.filter((answer) => answer.status === 429);
    assert.ok(refused.length > 0, 'some requests found the queue full');
    assert.ok(refused.every((answer) => answer.headers['retry-after'] === '1' && answer.json.error.code === 'IMGPUSH_QUEUE_FULL'));
    assert.ok(answers.every((answer) => answer.status === 200 || answer.status === 429));
  } finally {
    await app.close();
    await model.release();
  }
});

test('--device cuda without CUDA fails at start, saying why and how to install it', async () => {
  await assert.rejects(loadModel({ model: 'builtin:colors', device: 'cuda', log: () => {} }),
    (error: unknown) => error instanceof UsageError && /--device cuda: .*CUDA.*ONNXRUNTIME_NODE_INSTALL=cuda12/.test(error.message));
  const logs: string[] = [];
  const fallback = await loadModel({ model: 'builtin:colors', device: 'auto', log: (line) => logs.push(line) });
  assert.equal(fallback.device, 'cpu');
  assert.match(logs.join('\n'), /running on CPU/);
  await fallback.release();
  const cli = startCli(['serve', '--device', 'cuda', '--port', '0']);
  const result = await cli.done;
  assert.equal(result.code, 2);
  assert.match(result.stderr, /--device cuda: .*CUDA/);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
});

test('imgpush pushes a folder to the reference server and the results log holds each file\'s colour', async () => {
  const names = Object.keys(COLORS);
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 40; i++) files[`frames/${names[i % 4]}-${i}.png`] = await plain(Object.values(COLORS)[i % 4]!);
  const tree = await makeTree(files);
  try {
    const out = join(tree.root, 'results.jsonl');
    const summary = await push({ inputs: [tree.path('frames')], url: `${server.url}/v1/predict`, concurrency: 8, out, failures: join(tree.root, 'f.jsonl') });
    assert.equal(summary.ok, 40);
    for (const line of await readJsonl<FileResult & { response: { results: Array<{ top: Array<{ label: string }> }> } }>(out)) {
      assert.equal(line.response.results[0]?.top[0]?.label, line.rel.split('-')[0]);
    }
  } finally {
    await tree.remove();
  }
});

test('imgpush serve stops on SIGTERM with exit 0', async () => {
  const cli = startCli(['serve', '--port', '0', '--drain-delay', '0']);
  await cli.waitFor(/ready: colors on/);
  cli.child.kill('SIGTERM');
  const result = await cli.done;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /stopped/);
});

test('a model file of the user\'s, with --labels and the preprocessing flags, is served like a built-in one', async () => {
  const tree = await makeTree({ 'labels.txt': `${['r', 'g', 'b', 'y', 'c', 'm', 'w', 'k', 'gray'].join('\n')}\n` });
  await writeFile(tree.path('mine.onnx'), colorsModel().bytes);
  const own = await serve({
    model: tree.path('mine.onnx'), labels: tree.path('labels.txt'), inputSize: 16, mean: [0, 0, 0], std: [1, 1, 1], layout: 'nchw',
    device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 1024 * 1024, maxFiles: 4, batching, cacheSize: 0,
  }, () => {});
  try {
    await own.ready;
    const answer = await post(`${own.url}/v1/predict`, await plain(COLORS.blue), 'image/png');
    assert.equal(answer.json.model, 'mine', 'a model file is named by its stem');
    assert.equal(answer.json.results[0].top[0].label, 'b');
    for (const name of ['mine', 'mine.onnx']) {
      const metadata = await request(`${own.url}/v2/models/${name}`);
      assert.equal(metadata.statusCode, 200, name);
      assert.equal((await metadata.body.json() as { name: string }).name, 'mine');
    }
  } finally {
    await own.close();
    await tree.remove();
  }
  await assert.rejects(loadModel({ model: tree.path('missing.onnx'), device: 'cpu', log: () => {} }), /--model .*missing\.onnx: it does not exist/);
  await assert.rejects(loadModel({ model: 'builtin:nope', device: 'cpu', log: () => {} }), /no such built-in model/);
});

test('npm run demo: the whole pipeline runs offline and shows what the model saw', async () => {
  const demo = startCli(['demo']);
  const result = await demo.done;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /wrote 314 sample images/);
  assert.match(result.stdout, /314 files: 314 uploaded, 0 failed/);
  assert.match(result.stdout, /^ {2}(red|blue|gray|black) +\d+ +[\d.]+ /m);
  assert.match(result.stdout, /batches the server formed \(size: count\): 1: \d+/);
  const kept = /stay in (\S+)/.exec(result.stdout)?.[1];
  if (kept !== undefined) await rm(kept, { recursive: true, force: true });
});

/** The value of a Prometheus sample, by its name and labels as they appear in the text. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

test('metrics add up after real traffic, the same image twice runs the model once, and a token guards every route but health', async () => {
  const guarded = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 1024 * 1024, maxFiles: 4, batching, cacheSize: 100, token: 's3cret' }, () => {});
  const auth = { authorization: 'Bearer s3cret' };
  const send = async (body: Buffer, headers: Record<string, string> = auth) => {
    const answer = await request(`${guarded.url}/v1/predict`, { method: 'POST', body, headers: { 'content-type': 'image/png', ...headers } });
    return { status: answer.statusCode, cache: answer.headers['x-cache'], json: await answer.body.json() as any };
  };
  try {
    await guarded.ready;
    const images = await Promise.all([COLORS.red, COLORS.green, COLORS.blue].map((rgb) => plain(rgb)));
    assert.equal((await send(images[0]!, {})).status, 401);
    assert.equal((await send(images[0]!, { authorization: 'Bearer wrong' })).status, 401);
    const health = await request(`${guarded.url}/v2/health/ready`);
    assert.equal(health.statusCode, 200);
    await health.body.dump();

    const first = await Promise.all(images.map((image) => send(image)));
    assert.ok(first.every((answer) => answer.status === 200 && answer.cache === 'miss'));
    const again = await send(images[0]!);
    assert.equal(again.cache, 'hit');
    assert.equal(again.json.results[0].cache, true);
    assert.equal(again.json.results[0].top[0].label, 'red');

    const scrape = await request(`${guarded.url}/metrics`, { headers: auth });
    const text = await scrape.body.text();
    assert.equal(scrape.statusCode, 200);
    assert.equal(sample(text, 'imgpush_http_requests_total{route="/v1/predict",status="200"}'), 4);
    assert.equal(sample(text, 'imgpush_http_requests_total{route="/v1/predict",status="401"}'), 2);
    assert.equal(sample(text, 'imgpush_images_decoded_total'), 3, 'the repeated image was not decoded again');
    assert.equal(sample(text, 'imgpush_batch_size_sum'), 3, 'nor run through the model again');
    assert.equal(sample(text, 'imgpush_cache_lookups_total{result="hit"}'), 1);
    assert.equal(sample(text, 'imgpush_upload_bytes_total'), images.reduce((sum, image) => sum + image.length, 0) + images[0]!.length);
    assert.equal(sample(text, 'imgpush_model_info{name="colors",device="cpu"}'), 1);
    assert.equal(sample(text, 'imgpush_decode_seconds_count'), 3);
    const unauthorized = await request(`${guarded.url}/metrics`);
    assert.equal(unauthorized.statusCode, 401);
    await unauthorized.body.dump();
  } finally {
    await guarded.close();
  }
});
