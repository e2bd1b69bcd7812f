import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { request } from 'undici';
import { serve, type RunningServer } from '../../src/server/serve.js';
import { startServer } from '../helpers/server.js';

let server: RunningServer;
let red: Buffer;
const batching = { maxBatch: 8, delayMs: 2, queueLimit: 64, concurrency: 1 };

before(async () => {
  red = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
  server = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 64 * 1024, maxFiles: 4, batching, cacheSize: 0, jobTtlMs: 300 }, () => {});
  await server.ready;
});
after(() => server.close());

async function call(path: string, init: { method?: 'GET' | 'POST'; body?: Buffer; type?: string } = {}): Promise<{ status: number; json: any; location: unknown }> {
  const answer = await request(`${server.url}${path}`, { method: init.method ?? 'GET', body: init.body, headers: init.type === undefined ? {} : { 'content-type': init.type } });
  return { status: answer.statusCode, json: await answer.body.json(), location: answer.headers.location };
}

async function until(path: string, done: (json: any) => boolean): Promise<any> {
  for (;;) {
    const { json } = await call(path);
    if (done(json)) return json;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('a job answers 202 with Location at once, then its result; after --job-ttl it is a clear 404', { timeout: 20_000 }, async () => {
  const submitted = await call('/v1/jobs?top_k=2', { method: 'POST', body: red, type: 'image/png' });
  assert.equal(submitted.status, 202);
  assert.equal(submitted.location, `/v1/jobs/${submitted.json.id}`);
  assert.ok(['queued', 'running'].includes(submitted.json.status));
  const finished = await until(String(submitted.location), (json) => json.status === 'done' || json.status === 'failed');
  assert.equal(finished.status, 'done');
  assert.equal(finished.result.results[0].top[0].label, 'red');
  assert.equal(finished.result.results[0].top.length, 2);
  const gone = await until(String(submitted.location), (json) => json.error !== undefined);
  assert.equal(gone.error.code, 'IMGPUSH_NO_SUCH_JOB');
  assert.match(gone.error.message, /--job-ttl/);
});

test('a job whose image fails ends failed with the reason', { timeout: 20_000 }, async () => {
  const submitted = await call('/v1/jobs', { method: 'POST', body: Buffer.from('not an image at all'), type: 'image/png' });
  assert.equal(submitted.status, 202);
  const finished = await until(String(submitted.location), (json) => json.status === 'failed');
  assert.equal(finished.error.code, 'IMGPUSH_NOT_AN_IMAGE');
});

test('callback_url gets the finished job POSTed; a non-loopback callback is refused unless allowed', { timeout: 20_000 }, async () => {
  const hook = await startServer();
  try {
    const boundary = 'jobs-boundary';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="callback_url"\r\n\r\n${hook.url}/done\r\n`),
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="red.png"\r\nContent-Type: image/png\r\n\r\n`), red,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const submitted = await call('/v1/jobs', { method: 'POST', body, type: `multipart/form-data; boundary=${boundary}` });
    assert.equal(submitted.status, 202);
    while (hook.received.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const delivered = JSON.parse(hook.received[0]!.body.toString());
    assert.equal(hook.received[0]!.url, '/done');
    assert.equal(delivered.id, submitted.json.id);
    assert.equal(delivered.result.results[0].top[0].label, 'red');

    const refused = await call(`/v1/jobs?callback_url=${encodeURIComponent('http://example.com/hook')}`, { method: 'POST', body: red, type: 'image/png' });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.code, 'IMGPUSH_CALLBACK_REFUSED');
  } finally {
    await hook.close();
  }
});
