import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { request } from 'undici';
import { SERVER_DEFAULTS } from '../../src/server/defaults.js';
import { serve, type RunningServer } from '../../src/server/serve.js';
import { avifDeclaring, jpegDeclaring, noise, pngDeclaring, tinyBmp } from '../helpers/server-bombs.js';

/*
 * Issue 16, decoding and bodies: what a hostile client sends is refused
 * early, in bounded time and memory, with a message of its own request.
 */

const MAX_BODY = 256 * 1024;
const batching = { maxBatch: 8, delayMs: 2, queueLimit: 64, concurrency: 1 };
let server: RunningServer;

before(async () => {
  server = await serve({
    model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 200 * 1024, maxFiles: 4, batching, cacheSize: 0,
    maxBodySize: MAX_BODY, logLevel: 'silent',
  }, () => {});
  await server.ready;
});
after(() => server.close());

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly json: any;
}

async function send(path: string, body: Buffer | Readable, headers: Record<string, string>): Promise<Answer> {
  const answer = await request(`${server.url}${path}`, { method: 'POST', body, headers });
  return { status: answer.statusCode, headers: answer.headers, json: await answer.body.json() };
}

function predictRaw(image: Buffer, name = 'image'): Promise<Answer> {
  return send('/v1/predict', image, { 'content-type': 'application/octet-stream', 'x-filename': name });
}

test('tiny PNG, JPEG and AVIF files declaring 10000×10000 are refused from their header, at once, under the default --max-pixels', async () => {
  const bombs = { 'bomb.png': await pngDeclaring(10_000, 10_000), 'bomb.jpg': await jpegDeclaring(10_000, 10_000), 'bomb.avif': await avifDeclaring(10_000, 10_000) };
  for (const [name, bytes] of Object.entries(bombs)) {
    assert.ok(bytes.length < 4096, `${name} is tiny (${bytes.length} bytes)`);
    const started = performance.now();
    const answer = await predictRaw(bytes, name);
    // Generous: bounded, where decoding the AVIF took 11 s.
    assert.ok(performance.now() - started < 5000, `${name} answered in ${Math.round(performance.now() - started)} ms`);
    assert.equal(answer.status, 422, `${name}: ${JSON.stringify(answer.json)}`);
    assert.equal(answer.json.error.code, 'IMGPUSH_TOO_MANY_PIXELS', name);
    assert.match(answer.json.error.message, new RegExp(`^${name.replace('.', '\\.')} is 10000×10000 pixels, over --max-pixels ${SERVER_DEFAULTS.maxPixels}`));
  }
});

test('--max-pixels refuses a real image over it and takes one under it', async () => {
  const small = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 1024 * 1024, maxFiles: 4, batching, cacheSize: 0, maxPixels: 100 * 100, logLevel: 'silent' }, () => {});
  try {
    await small.ready;
    const post = async (width: number, height: number) => {
      const answer = await request(`${small.url}/v1/predict`, { method: 'POST', body: await noise(width, height).png().toBuffer(), headers: { 'content-type': 'image/png' } });
      return { status: answer.statusCode, json: await answer.body.json() as any };
    };
    const over = await post(101, 100);
    assert.equal(over.status, 422);
    assert.equal(over.json.error.code, 'IMGPUSH_TOO_MANY_PIXELS');
    assert.equal((await post(100, 100)).status, 200);
  } finally {
    await small.close();
  }
});

test('a JPEG whose header says more pixels than its scan holds, and a truncated JPEG with trailing noise, are 422 naming the image', async () => {
  const lying = await jpegDeclaring(1280, 960, { width: 320, height: 240 });
  const whole = await noise(256, 256).jpeg({ quality: 90 }).toBuffer();
  const truncated = Buffer.concat([whole.subarray(0, Math.floor(whole.length * 0.6)), Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) % 251))]);
  for (const [name, bytes] of [['lying.jpg', lying], ['truncated.jpg', truncated]] as const) {
    const answer = await predictRaw(bytes, name);
    assert.equal(answer.status, 422, `${name}: ${JSON.stringify(answer.json)}`);
    assert.equal(answer.json.error.code, 'IMGPUSH_UNDECODABLE');
    assert.match(answer.json.error.message, new RegExp(`^${name.replace('.', '\\.')} does not decode`));
  }
});

test('two clients decoding different bad files at once each get a message of their own file, with no decoder text in it', async () => {
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#123456' } }).png().toBuffer();
  const badPng = Buffer.concat([png.subarray(0, 60), Buffer.alloc(300, 9)]);
  const badJpeg = Buffer.concat([(await noise(128, 128).jpeg().toBuffer()).subarray(0, 900), Buffer.alloc(100, 3)]);
  const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? predictRaw(badPng, `bad-${i}.png`) : predictRaw(badJpeg, `bad-${i}.jpg`))));
  answers.forEach((answer, i) => {
    const { message } = answer.json.error as { message: string };
    assert.equal(answer.status, 422, message);
    const [own, format] = i % 2 === 0 ? [`bad-${i}.png`, 'PNG'] : [`bad-${i}.jpg`, 'JPEG'];
    assert.ok(message.startsWith(`${own} does not decode: `), message);
    assert.match(message, new RegExp(`\\b${format}\\b`));
    assert.doesNotMatch(message, /vips|jpeg:|png:|libpng|premature|corrupt/i, `no decoder text: ${message}`);
    assert.equal(message.match(/bad-\d+/g)?.length, 1, `no other file's name: ${message}`);
  });
});

test('EXIF orientation is applied, a transparent image is laid on white, and BMP is a 415 that says so', async () => {
  const landscape = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#ff0000' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
  const turned = await predictRaw(landscape, 'turned.jpg');
  assert.equal(turned.status, 200);
  assert.deepEqual([turned.json.results[0].width, turned.json.results[0].height], [20, 40], 'orientation 6 turns 40×20 into 20×40');

  const clear = await sharp({ create: { width: 16, height: 16, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
  const transparent = await predictRaw(clear, 'clear.png');
  assert.equal(transparent.json.results[0].top[0].label, 'white');

  const bmp = await predictRaw(tinyBmp(), 'tiny.bmp');
  assert.equal(bmp.status, 415);
  assert.equal(bmp.json.error.code, 'IMGPUSH_NOT_AN_IMAGE');
  assert.match(bmp.json.error.message, /^tiny\.bmp is BMP, which this server does not decode/);
});

/** A body of `size` bytes, streamed in 16 KiB chunks without Content-Length. */
function streamed(parts: Buffer[]): Readable {
  return Readable.from((function* () {
    for (const part of parts) for (let at = 0; at < part.length; at += 16 * 1024) yield part.subarray(at, at + 16 * 1024);
  })());
}

test('--max-body-size: 413 from Content-Length on every route, and from the bytes read of a multipart body sent without one', async () => {
  const over = Buffer.alloc(MAX_BODY + 1024, 'a');
  for (const [path, type] of [['/v2/models/builtin:colors/infer', 'application/json'], ['/v1/jobs', 'image/png'], ['/v1/predict', 'application/octet-stream'], ['/v2/health/live', 'text/plain']] as const) {
    const answer = await send(path, over, { 'content-type': type });
    assert.equal(answer.status, 413, `${path}: ${JSON.stringify(answer.json)}`);
    const code = path.startsWith('/v2/') ? answer.json.code : answer.json.error.code;
    assert.equal(code, 'IMGPUSH_BODY_TOO_LARGE', path);
  }
  const boundary = 'cap-boundary';
  const file = (i: number) => [Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${i}.png"\r\nContent-Type: image/png\r\n\r\n`), Buffer.alloc(150 * 1024, i), Buffer.from('\r\n')];
  const body = streamed([...file(1), ...file(2), Buffer.from(`--${boundary}--\r\n`)]);
  const multipart = await send('/v1/predict', body, { 'content-type': `multipart/form-data; boundary=${boundary}` });
  assert.equal(multipart.status, 413, JSON.stringify(multipart.json));
  assert.equal(multipart.json.error.code, 'IMGPUSH_BODY_TOO_LARGE');
});

test('shape, name, datatype, binary_data_size or top_k nested 10,000 deep is a 400, never a 500', async () => {
  const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
  const input = (field: string) => `{"name":${field === 'name' ? deep : '"image"'},"datatype":${field === 'datatype' ? deep : '"BYTES"'},"shape":${field === 'shape' ? deep : '[1]'},`
    + `"parameters":{"binary_data_size":${field === 'binary_data_size' ? deep : '4'}}}`;
  for (const field of ['shape', 'name', 'datatype', 'binary_data_size', 'top_k']) {
    const header = `{"inputs":[${input(field)}]${field === 'top_k' ? `,"parameters":{"top_k":${deep}}` : ''}}`;
    const body = Buffer.concat([Buffer.from(header), Buffer.alloc(4)]);
    const answer = await send('/v2/models/builtin:colors/infer', body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(Buffer.byteLength(header)) });
    assert.equal(answer.status, 400, `${field}: ${JSON.stringify(answer.json).slice(0, 200)}`);
    assert.equal(answer.json.code, 'IMGPUSH_BAD_V2_BODY', field);
  }
});

test('a body with Content-Encoding gzip or deflate is a 415 that names the encoding, not a JSON parse error', async () => {
  for (const [path, encoding] of [['/v2/models/builtin:colors/infer', 'gzip'], ['/v1/predict', 'deflate']] as const) {
    const answer = await send(path, gzipSync(Buffer.from('{"inputs":[]}')), { 'content-type': 'application/json', 'content-encoding': encoding });
    assert.equal(answer.status, 415, `${path}: ${JSON.stringify(answer.json)}`);
    const { code, message } = path.startsWith('/v2/') ? { code: answer.json.code, message: answer.json.error } : answer.json.error;
    assert.equal(code, 'IMGPUSH_UNSUPPORTED_ENCODING');
    assert.match(message, new RegExp(`Content-Encoding "${encoding}"`));
  }
});

/** Writes `text` on a fresh connection and reads until the server closes it. */
function raw(text: string): Promise<string> {
  const { port } = new URL(server.url);
  const socket = connect(Number(port), '127.0.0.1');
  let answer = '';
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString('latin1');
  });
  socket.write(text);
  return new Promise((resolve) => socket.once('close', () => resolve(answer)));
}

test('errors have one shape, application/json without a charset, Node\'s 431 and Fastify\'s own errors included, and each is counted', async () => {
  const headers = await raw(`GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.match(headers, /^HTTP\/1\.1 431 /);
  assert.match(headers, /\r\nContent-Type: application\/json\r\n/i);
  assert.deepEqual(JSON.parse(headers.slice(headers.indexOf('\r\n\r\n') + 4)).error.code, 'IMGPUSH_HEADERS_TOO_LARGE');

  const wrongType = await request(`${server.url}/v1/predict`, { method: 'POST', body: 'a,b', headers: { 'content-type': 'text/csv' } });
  assert.equal(wrongType.statusCode, 415);
  assert.equal(wrongType.headers['content-type'], 'application/json');
  assert.equal((await wrongType.body.json() as any).error.code, 'FST_ERR_CTP_INVALID_MEDIA_TYPE');
  const missing = await request(`${server.url}/v2/models/nothing/infer`, { method: 'POST', body: '{}' });
  assert.equal(missing.headers['content-type'], 'application/json');
  await missing.body.dump();

  const metrics = await (await request(`${server.url}/metrics`)).body.text();
  assert.match(metrics, /imgpush_http_requests_total\{route="unmatched",status="431"\} 1/);
});

test('an idle connection is kept 65 s, above common load balancers\' 60 s, and says so in Keep-Alive', async () => {
  const answer = await request(`${server.url}/v2/health/live`);
  await answer.body.dump();
  assert.equal(answer.headers['keep-alive'], `timeout=${SERVER_DEFAULTS.keepAliveTimeoutMs / 1000}`);
  assert.equal(SERVER_DEFAULTS.keepAliveTimeoutMs, 65_000);
});

test('a body dripping slower than --min-body-rate is cut with a 408 well before --request-timeout, while others are served', { timeout: 20_000 }, async () => {
  const strict = await serve({
    model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 65536, maxFiles: 4, batching, cacheSize: 0,
    requestTimeoutMs: 60_000, minBodyRate: 1000, bodyRateWindowMs: 300, logLevel: 'silent',
  }, () => {});
  await strict.ready;
  const socket = connect(Number(new URL(strict.url).port), '127.0.0.1');
  socket.on('error', () => {});
  let drip: NodeJS.Timeout | undefined;
  try {
    const started = performance.now();
    let answer = '';
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 10000\r\n\r\n');
    drip = setInterval(() => socket.write('x'), 50);
    const red = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#ff0000' } }).png().toBuffer();
    const other = await request(`${strict.url}/v1/predict`, { method: 'POST', body: red, headers: { 'content-type': 'image/png' } });
    assert.equal(other.statusCode, 200);
    await other.body.dump();
    await closed;
    assert.ok(performance.now() - started < 10_000, `cut after ${Math.round(performance.now() - started)} ms`);
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.equal(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error.code, 'IMGPUSH_REQUEST_TIMEOUT');
  } finally {
    clearInterval(drip);
    socket.destroy();
    await strict.close();
  }
});
