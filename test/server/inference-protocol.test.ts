import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import sharp from 'sharp';
import { request } from 'undici';
import { buildApp } from '../../src/server/app.js';
import type { AppState } from '../../src/server/state.js';
import { Batcher } from '../../src/server/inference/batcher.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { loadModel } from '../../src/server/inference/model.js';
import { serve, type RunningServer } from '../../src/server/serve.js';
import {
  decodeInferenceResponse, encodeBytesTensor, encodeImageRequest, HEADER_LENGTH, joinBinaryBody, type InferenceResponse,
} from '../../src/shared/inference-protocol.js';

const COLORS = { red: [255, 0, 0], green: [0, 200, 0], blue: [0, 0, 255] } as const;
const NAMES = Object.keys(COLORS);
const batching = { maxBatch: 16, delayMs: 5, queueLimit: 256, concurrency: 1 };
const MAX_FILE_SIZE = 64 * 1024;
let server: RunningServer;
let images: Buffer[];
let infer: string;

function plain(rgb: readonly number[]): Promise<Buffer> {
  return sharp({ create: { width: 40, height: 30, channels: 3, background: { r: rgb[0]!, g: rgb[1]!, b: rgb[2]! } } }).png().toBuffer();
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

async function call(url: string, init: { body?: Buffer; headers?: Record<string, string> } = {}): Promise<Answer> {
  const answer = await request(url, { method: init.body === undefined ? 'GET' : 'POST', body: init.body, headers: init.headers });
  return { status: answer.statusCode, headers: answer.headers, body: Buffer.from(await answer.body.arrayBuffer()) };
}

function json(answer: Answer): any {
  return JSON.parse(answer.body.toString());
}

/** An answer as a client reads it, JSON or binary extension alike. */
function decoded(answer: Answer): InferenceResponse {
  assert.equal(answer.status, 200, answer.body.toString().slice(0, 300));
  return decodeInferenceResponse(answer.body, answer.headers[HEADER_LENGTH] as string | undefined);
}

function output(answer: InferenceResponse, name: string): { shape: readonly number[]; data: ReadonlyArray<unknown> } {
  const found = answer.outputs.find((tensor) => tensor.name === name);
  assert.ok(found?.data !== undefined, `output ${name} is there`);
  return { shape: found.shape, data: found.data };
}

/** The top label of each image, from an answer's label output of shape [N, k]. */
function topLabels(answer: InferenceResponse): unknown[] {
  const { shape, data } = output(answer, 'label');
  return Array.from({ length: shape[0]! }, (_, i) => data[i * shape[1]!]);
}

function jsonRequest(body: unknown): { body: Buffer; headers: Record<string, string> } {
  return { body: Buffer.from(JSON.stringify(body)), headers: { 'content-type': 'application/json' } };
}

/** A binary-extension request whose image input carries `tensor` and says `size` bytes. */
function binaryRequest(tensor: Buffer, size: number, shape: number[]): { body: Buffer; headers: Record<string, string> } {
  const { body, headerLength } = joinBinaryBody({ inputs: [{ name: 'image', shape, datatype: 'BYTES', parameters: { binary_data_size: size } }] }, [tensor]);
  return { body, headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(headerLength) } };
}

/** The value of a Prometheus sample, by its name and labels as they appear in the text. */
async function sample(series: string): Promise<number> {
  const text = (await call(`${server.url}/metrics`)).body.toString();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

before(async () => {
  server = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: MAX_FILE_SIZE, maxFiles: 4, batching, cacheSize: 0 }, () => {});
  await server.ready;
  images = await Promise.all(Object.values(COLORS).map((rgb) => plain(rgb)));
  infer = `${server.url}/v2/models/colors/infer`;
});
after(() => server.close());

test('GET /v2, the model\'s metadata and its ready probe describe the one model, at its path and at versions/1', async () => {
  const metadata = json(await call(`${server.url}/v2`));
  assert.equal(metadata.name, 'imgpush');
  assert.match(metadata.version, /^\d+\.\d+\.\d+/);
  assert.deepEqual(metadata.extensions, ['binary_tensor_data', 'classification']);

  for (const path of ['/v2/models/colors', '/v2/models/builtin:colors', '/v2/models/builtin%3Acolors', '/v2/models/colors/versions/1']) {
    const model = await call(`${server.url}${path}`);
    assert.equal(model.status, 200, path);
    assert.deepEqual(json(model), {
      name: 'colors', versions: ['1'], platform: 'onnxruntime_onnx',
      inputs: [{ name: 'image', datatype: 'BYTES', shape: [-1] }],
      outputs: [{ name: 'label', datatype: 'BYTES', shape: [-1, -1] }, { name: 'score', datatype: 'FP32', shape: [-1, -1] }],
    });
    const ready = await call(`${server.url}${path}/ready`);
    assert.equal(ready.status, 200, `${path}/ready`);
    assert.deepEqual(json(ready), { name: 'colors', ready: true });
  }
});

test('JSON infer: red, green and blue as base64 come out as their colours, [3, k] labels and scores, the id echoed', async () => {
  const { body, headers } = encodeImageRequest(images, { binaryInput: false, id: 'request-7', topK: 2 });
  const answer = await call(infer, { body, headers });
  assert.match(String(answer.headers['content-type']), /^application\/json/);
  const response = decoded(answer);
  assert.equal(response.model_name, 'colors', 'the short name, the one a tritonclient user guesses');
  assert.equal(response.model_version, '1');
  assert.equal(response.id, 'request-7');
  assert.deepEqual(topLabels(response), NAMES);
  const labels = output(response, 'label');
  const scores = output(response, 'score');
  assert.deepEqual([labels.shape, scores.shape], [[3, 2], [3, 2]]);
  assert.equal(labels.data.length, 6);
  assert.ok(scores.data.every((score) => typeof score === 'number' && score >= 0 && score <= 1));
  assert.ok((scores.data[0] as number) >= (scores.data[1] as number), 'each row is ranked, best first');

  // Shape [N, 1] with one list per image.
  const nested = jsonRequest({
    inputs: [{ name: 'image', shape: [3, 1], datatype: 'BYTES', data: images.map((image) => [image.toString('base64')]) }],
    outputs: [{ name: 'label' }],
    parameters: { top_k: 3 },
  });
  const only = decoded(await call(infer, nested));
  assert.deepEqual(only.outputs.map((tensor) => tensor.name), ['label'], 'only the output asked for');
  assert.deepEqual(output(only, 'label').shape, [3, 3]);
  assert.deepEqual(topLabels(only), NAMES);
  assert.equal(only.id, undefined, 'no id asked, none given');
});

/** Triton's classification strings, `<score>:<index>:<label>`, taken apart. */
function classes(data: ReadonlyArray<unknown>): Array<{ score: number; index: number; label: string }> {
  return data.map((element) => {
    const match = /^(\d+\.\d{6}):(\d+):(.+)$/.exec(String(element));
    assert.ok(match !== null, `${String(element)} reads as score:index:label`);
    return { score: Number(match[1]), index: Number(match[2]), label: match[3]! };
  });
}

test('an output with Triton\'s classification parameter is BYTES [N, count] of "score:index:label", best first, beside top_k\'s outputs, in JSON and binary', async () => {
  const palette = ['red', 'green', 'blue', 'yellow', 'cyan', 'magenta', 'white', 'black', 'gray'];
  const header = {
    inputs: [{ name: 'image', shape: [3], datatype: 'BYTES', data: images.map((image) => image.toString('base64')) }],
    parameters: { top_k: 2 },
  };
  for (const binary of [false, true]) {
    const answer = decoded(await call(infer, jsonRequest({ ...header, outputs: [{ name: 'label', parameters: { classification: 4, binary_data: binary } }, { name: 'score', parameters: { binary_data: binary } }] })));
    const label = answer.outputs.find((tensor) => tensor.name === 'label');
    assert.equal(label?.datatype, 'BYTES');
    assert.deepEqual(label?.shape, [3, 4], 'count columns, whatever top_k says');
    assert.deepEqual(output(answer, 'score').shape, [3, 2], 'the other output keeps top_k');
    const rows = classes(output(answer, 'label').data);
    NAMES.forEach((name, i) => {
      const row = rows.slice(i * 4, i * 4 + 4);
      assert.equal(row[0]?.label, name, `image ${i} is ${name} (binary ${binary})`);
      row.forEach((entry) => assert.equal(palette[entry.index], entry.label, 'the index is the label\'s place in the model\'s output'));
      assert.ok(row.every((entry, j) => j === 0 || entry.score <= row[j - 1]!.score), 'sorted by score, best first');
      assert.ok(Math.abs(row[0]!.score - (output(answer, 'score').data[i * 2] as number)) < 1e-5, 'the same score as the score output');
    });
  }
  const capped = decoded(await call(infer, jsonRequest({ ...header, outputs: [{ name: 'score', parameters: { classification: 50 } }] })));
  assert.deepEqual(output(capped, 'score').shape, [3, palette.length], 'a count over the classes gives every class, as Triton does');
});

test('binary-extension infer gives the same answer as JSON, whatever the Content-Type, and runs through the batcher like /v1/predict', async () => {
  const decodedBefore = await sample('imgpush_images_decoded_total');
  const reference = decoded(await call(infer, encodeImageRequest(images, { binaryInput: false })));
  const { body, headers } = encodeImageRequest(images);
  for (const type of ['application/octet-stream', 'application/json', undefined]) {
    const sent: Record<string, string> = type === undefined ? { [HEADER_LENGTH]: headers[HEADER_LENGTH]! } : { ...headers, 'content-type': type };
    const answer = await call(infer, { body, headers: sent });
    assert.deepEqual(decoded(answer).outputs, reference.outputs, `Content-Type ${type ?? 'none'}`);
  }
  const versioned = decoded(await call(`${server.url}/v2/models/builtin:colors/versions/1/infer`, { body, headers }));
  assert.deepEqual(topLabels(versioned), NAMES);
  assert.equal(await sample('imgpush_images_decoded_total') - decodedBefore, 15, 'every image decoded on the server\'s one path');
  assert.ok(await sample('imgpush_http_requests_total{route="/v2/models/:name/infer",status="200"}') > 0, 'counted under its route');
});

test('binary outputs, asked for in the request or per output, come back in the binary extension and parse back to the JSON answer', async () => {
  const reference = decoded(await call(infer, encodeImageRequest(images, { topK: 3 })));
  const all = await call(infer, encodeImageRequest(images, { topK: 3, binaryOutput: true, id: 'bin' }));
  assert.equal(all.headers['content-type'], 'application/octet-stream');
  const headerLength = Number(all.headers[HEADER_LENGTH]);
  const header = JSON.parse(all.body.subarray(0, headerLength).toString());
  assert.deepEqual(header.outputs.map((tensor: any) => [tensor.name, tensor.datatype, tensor.shape, tensor.data]), [['label', 'BYTES', [3, 3], undefined], ['score', 'FP32', [3, 3], undefined]]);
  assert.equal(header.outputs[1].parameters.binary_data_size, 9 * 4);
  assert.equal(all.body.length, headerLength + header.outputs[0].parameters.binary_data_size + header.outputs[1].parameters.binary_data_size);
  const binary = decoded(all);
  assert.equal(binary.id, 'bin');
  assert.deepEqual(output(binary, 'label').data, output(reference, 'label').data);
  const scores = output(binary, 'score').data as number[];
  (output(reference, 'score').data as number[]).forEach((score, i) => assert.ok(Math.abs(score - scores[i]!) < 1e-6, `score ${i}`));

  const mixed = await call(infer, jsonRequest({
    inputs: [{ name: 'image', shape: [3], datatype: 'BYTES', data: images.map((image) => image.toString('base64')) }],
    outputs: [{ name: 'score', parameters: { binary_data: false } }, { name: 'label', parameters: { binary_data: true } }],
    parameters: { top_k: 3 },
  }));
  const parts = decoded(mixed);
  assert.deepEqual(parts.outputs.map((tensor) => tensor.name), ['score', 'label']);
  assert.deepEqual(output(parts, 'label').data, output(reference, 'label').data);
});

test('the model answers to --model\'s spelling too (builtin:colors), by its own name, and GET /v2/models/{name}/config gives its configuration', async () => {
  const alias = decoded(await call(`${server.url}/v2/models/builtin:colors/infer`, encodeImageRequest([images[2]!])));
  assert.deepEqual(topLabels(alias), ['blue']);
  assert.equal(alias.model_name, 'colors');
  for (const path of ['/v2/models/colors/config', '/v2/models/builtin:colors/config', '/v2/models/colors/versions/1/config']) {
    const config = await call(`${server.url}${path}`);
    assert.equal(config.status, 200, path);
    assert.deepEqual(json(config), {
      name: 'colors', platform: 'onnxruntime_onnx', max_batch_size: batching.maxBatch,
      input: [{ name: 'image', data_type: 'TYPE_STRING', dims: [1] }],
      output: [{ name: 'label', data_type: 'TYPE_STRING', dims: [-1] }, { name: 'score', data_type: 'TYPE_FP32', dims: [-1] }],
      dynamic_batching: { max_queue_delay_microseconds: batching.delayMs * 1000 },
    });
  }
  assert.equal((await call(`${server.url}/v2/models/resnet50/config`)).status, 404);
});

test('an unknown model or version is a 404 in the protocol\'s error form', async () => {
  for (const path of ['/v2/models/resnet50', '/v2/models/resnet50/ready', '/v2/models/builtin:colors/versions/2', '/v2/models/nope/infer']) {
    const { body, headers } = encodeImageRequest(images.slice(0, 1));
    const answer = await call(`${server.url}${path}`, path.endsWith('/infer') ? { body, headers } : {});
    assert.equal(answer.status, 404, path);
    assert.equal(typeof json(answer).error, 'string', path);
  }
  const named = json(await call(`${server.url}/v2/models/resnet50`));
  assert.match(named.error, /no model "resnet50" here: this server serves "colors"/);
  assert.equal(named.code, 'IMGPUSH_NO_SUCH_MODEL');
  assert.match(json(await call(`${server.url}/v2/elsewhere`)).error, /no route GET \/v2\/elsewhere/);
});

test('a bad request is a 400 whose message names the cause and the image; limits are 413; the server lives on', async () => {
  const [red, green] = images as [Buffer, Buffer, Buffer];
  const base64 = (data: string[], shape = [data.length]) => jsonRequest({ inputs: [{ name: 'image', shape, datatype: 'BYTES', data }] });
  const tensor = encodeBytesTensor([red, green]);
  const undecodable = Buffer.concat([red.subarray(0, 40), Buffer.alloc(200, 7)]);
  const cases: Array<[string, { body: Buffer; headers: Record<string, string> }, number, RegExp]> = [
    ['bad base64', base64([red.toString('base64'), 'not*base64!']), 400, /input image 1 is not base64/],
    ['a number for an image', jsonRequest({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [42] }] }), 400, /input image 0 is a number, not a base64 string/],
    ['an element that is no image', base64([red, green, Buffer.from('plain text, no image')].map((b) => b.toString('base64'))), 400, /input image 2 is not an image/],
    ['an image that does not decode', base64([undecodable.toString('base64')]), 400, /input image 0 does not decode/],
    ['an empty element', base64(['']), 400, /input image 0 is empty/],
    ['binary data shorter than binary_data_size', binaryRequest(tensor.subarray(0, 100), tensor.length, [2]), 400, new RegExp(`says binary_data_size ${tensor.length} but only 100 bytes follow`)],
    ['binary data longer than binary_data_size', binaryRequest(tensor, tensor.length - 10, [2]), 400, new RegExp(`${tensor.length} bytes follow the JSON header but input "image" says binary_data_size ${tensor.length - 10}`)],
    ['an element cut short', binaryRequest(tensor.subarray(0, tensor.length - 5), tensor.length - 5, [2]), 400, /ends inside element 1/],
    ['a shape that does not match the data', binaryRequest(tensor, tensor.length, [3]), 400, /has shape \[3\] but its data holds 2 images/],
    ['a shape of no image list', base64([red.toString('base64')], [1, 2]), 400, /has shape \[1,2\]: it takes \[N\] or \[N, 1\]/],
    ['the wrong datatype', jsonRequest({ inputs: [{ name: 'image', shape: [1], datatype: 'FP32', data: [1] }] }), 400, /datatype "FP32": it takes BYTES/],
    ['another input name', jsonRequest({ inputs: [{ name: 'input0', shape: [1], datatype: 'BYTES', data: [''] }] }), 400, /unknown input "input0": this model's input is "image"/],
    ['an unknown output', jsonRequest({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [red.toString('base64')] }], outputs: [{ name: 'logits' }] }), 400, /unknown output "logits"/],
    ['a classification count of 0', jsonRequest({ inputs: [{ name: 'image', shape: [1], datatype: 'BYTES', data: [red.toString('base64')] }], outputs: [{ name: 'label', parameters: { classification: 0 } }] }), 400, /output "label" classification must be a whole number of 1 or more \(got 0\)/],
    ['a JSON header that does not parse', { body: Buffer.from('{"inputs": ['), headers: { 'content-type': 'application/json' } }, 400, /the body does not parse as JSON/],
    ['a header length past the body', { body: Buffer.from('{}'), headers: { [HEADER_LENGTH]: '50' } }, 400, /Inference-Header-Content-Length is 50 but the whole body is 2 bytes/],
    ['more images than --max-files', base64(Array.from({ length: 5 }, () => red.toString('base64'))), 413, /5 images, over --max-files 4/],
    ['an image over --max-file-size', base64([red.toString('base64'), Buffer.alloc(MAX_FILE_SIZE + 1).toString('base64')]), 413, /input image 1 is 65537 bytes, over --max-file-size 65536/],
    ['a body over what --max-files images can take', binaryRequest(Buffer.alloc(4 * MAX_FILE_SIZE * 2), 4 * MAX_FILE_SIZE * 2, [1]), 413, /the body is over \d+ bytes, what --max-files 4 images of --max-file-size 65536 bytes take in base64/],
    ['no body', { body: Buffer.alloc(0), headers: {} }, 400, /the body is empty: send the inference request as JSON/],
  ];
  for (const [name, sent, status, message] of cases) {
    const answer = await call(infer, sent);
    assert.equal(answer.status, status, `${name}: ${answer.body.toString().slice(0, 300)}`);
    const { error } = json(answer);
    assert.equal(typeof error, 'string', name);
    assert.match(error, message, name);
  }
  assert.deepEqual(topLabels(decoded(await call(infer, encodeImageRequest([red])))), ['red'], 'the server still answers');
});

test('not ready: the model\'s ready probe, metadata and infer answer 503, with Retry-After where it helps', async () => {
  const state: AppState = { model: undefined, batcher: undefined, shuttingDown: false, metrics: new ServerMetrics() };
  const app = buildApp({ maxFileSize: MAX_FILE_SIZE, maxFiles: 4, batching, cacheSize: 0 }, state);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/v2/models/builtin:colors`;
  try {
    const ready = await call(`${base}/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(json(ready), { name: 'builtin:colors', ready: false });
    const metadata = await call(base);
    assert.equal(metadata.status, 503);
    assert.equal(metadata.headers['retry-after'], '1');
    const early = await call(`${base}/infer`, encodeImageRequest(images));
    assert.equal(early.status, 503);
    assert.equal(json(early).error, 'the model is still loading');
  } finally {
    await app.close();
  }
});

test('a full queue answers 429 with Retry-After, and --rate-limit holds for v2 infer too', async () => {
  const model = await loadModel({ model: 'builtin:colors', device: 'cpu', log: () => {} });
  let open = (): void => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  // The batch that runs first waits at the gate: one more image can queue, the next finds the queue full.
  const batcher = new Batcher(async (inputs) => {
    await gate;
    return model.run(inputs);
  }, { maxBatch: 1, delayMs: 0, queueLimit: 1, concurrency: 1 });
  const state: AppState = { model, batcher, shuttingDown: false, metrics: new ServerMetrics() };
  const app = buildApp({ maxFileSize: MAX_FILE_SIZE, maxFiles: 4, batching, cacheSize: 0, rateLimit: 4 }, state);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/v2/models/builtin:colors/infer`;
  try {
    const running = call(url, encodeImageRequest([images[0]!]));
    while (batcher.running === 0) await nextTurn();
    const queued = call(url, encodeImageRequest([images[1]!]));
    while (batcher.depth === 0) await nextTurn();
    const refused = await call(url, encodeImageRequest([images[2]!]));
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['retry-after'], '1');
    assert.match(json(refused).error, /the inference queue is full/);
    open();
    assert.deepEqual([...topLabels(decoded(await running)), ...topLabels(decoded(await queued))], ['red', 'green']);
    const burst = await Promise.all(Array.from({ length: 6 }, () => call(url, encodeImageRequest([images[0]!]))));
    const limited = burst.filter((answer) => answer.status === 429);
    assert.ok(limited.length >= 2, 'at most 4 of 6 at once pass --rate-limit 4');
    assert.ok(limited.every((answer) => answer.headers['retry-after'] !== undefined && /--rate-limit/.test(json(answer).error)));
  } finally {
    await app.close();
    await model.release();
  }
});
