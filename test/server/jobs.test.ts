import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { request } from 'undici';
import { push, retry } from '../../src/client/index.js';
import type { FailureRecord } from '../../src/client/logs/failure-log.js';
import { serve, type RunningServer } from '../../src/server/serve.js';
import { makeTree, readJsonl } from '../helpers/files.js';
import { startServer } from '../helpers/server.js';

let server: RunningServer;
let red: Buffer;
const batching = { maxBatch: 8, delayMs: 2, queueLimit: 64, concurrency: 1 };

before(async () => {
  red = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
  server = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 64 * 1024, maxFiles: 4, batching, cacheSize: 0, jobTtlMs: 300, allowCallbackHosts: ['127.0.0.1'] }, () => {});
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

test('imgpush --async submits jobs, polls them, and writes each job\'s result to the results log', { timeout: 30_000 }, async () => {
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 12; i++) files[`img-${i}.png`] = await sharp({ create: { width: 8, height: 8, channels: 3, background: i % 2 === 0 ? { r: 255, g: 0, b: 0 } : { r: 0, g: 0, b: 255 } } }).png().toBuffer();
  const tree = await makeTree(files);
  try {
    const out = tree.path('results.jsonl');
    const summary = await push({ inputs: [tree.root], url: `${server.url}/v1/jobs`, async: true, concurrency: 4, out, failures: tree.path('f.jsonl') });
    assert.equal(summary.ok, 12);
    for (const line of await readJsonl<{ rel: string; status: number; response: { results: Array<{ top: Array<{ label: string }> }> } }>(out)) {
      const n = Number(/img-(\d+)/.exec(line.rel)?.[1]);
      assert.equal(line.response.results[0]?.top[0]?.label, n % 2 === 0 ? 'red' : 'blue', line.rel);
    }
    const wrong = await push({ inputs: [tree.path('img-0.png')], url: `${server.url}/v1/predict`, async: true, failures: tree.path('f2.jsonl') });
    assert.equal(wrong.failed, 1, 'a URL that is no jobs endpoint is a clear failure');
    const [, failure] = await readJsonl<{ code: string }>(tree.path('f2.jsonl'));
    assert.equal(failure?.code, 'IMGPUSH_NOT_A_JOB');
  } finally {
    await tree.remove();
  }
});

test('jobs still pending at a stop go to the failure log with their place, and retry fetches their results without sending the files again', { timeout: 30_000 }, async () => {
  let released = false;
  const jobs = new Map<string, string>();
  const stop = new AbortController();
  const server = await startServer((req) => {
    if (req.method === 'POST') {
      const id = `job-${jobs.size}`;
      jobs.set(id, /filename="([^"]+)"/.exec(req.body.toString('latin1'))?.[1] ?? '');
      // Every file has its job: now stop the run while they are pending.
      if (jobs.size === 6) setImmediate(() => stop.abort());
      return { status: 202, body: { id, status: 'queued' }, headers: { location: `/jobs/${id}` } };
    }
    const id = req.url.split('/').pop() ?? '';
    if (!jobs.has(id)) return { status: 404, body: { error: { code: 'IMGPUSH_NO_SUCH_JOB', message: 'gone' } } };
    return { status: 200, body: released ? { id, status: 'done', result: { name: jobs.get(id) } } : { id, status: 'running' } };
  });
  const tree = await makeTree(Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`f${i}.jpg`, 32])));
  try {
    const failures = tree.path('failures.jsonl');
    const first = await push({ inputs: [tree.root], url: `${server.url}/jobs`, async: true, concurrency: 6, failures, graceMs: 50 }, { signal: stop.signal });
    assert.equal(first.ok, 0);
    const [, ...pending] = await readJsonl<FailureRecord>(failures);
    assert.equal(pending.length, 6);
    assert.ok(pending.every((f) => typeof f.job === 'string' && f.job.startsWith('/jobs/')), JSON.stringify(pending[0]));

    released = true;
    const posts = server.received.filter((r) => r.method === 'POST').length;
    const out = tree.path('results.jsonl');
    const again = await retry(failures, { out });
    assert.equal(again.ok, 6);
    assert.equal(server.received.filter((r) => r.method === 'POST').length, posts, 'no file was sent again');
    const names = (await readJsonl<{ response: { name: string } }>(out)).map((line) => line.response.name).sort();
    assert.deepEqual(names, ['f0.jpg', 'f1.jpg', 'f2.jpg', 'f3.jpg', 'f4.jpg', 'f5.jpg']);
  } finally {
    await server.close();
    await tree.remove();
  }
});

test('callback_url: a loopback host not named in --allow-callback-hosts is refused, and so is the server itself even when named', { timeout: 20_000 }, async () => {
  const notNamed = await call(`/v1/jobs?callback_url=${encodeURIComponent('http://localhost:9/hook')}`, { method: 'POST', body: red, type: 'image/png' });
  assert.equal(notNamed.status, 400);
  assert.equal(notNamed.json.error.code, 'IMGPUSH_CALLBACK_REFUSED');
  assert.match(notNamed.json.error.message, /not in --allow-callback-hosts/);
  const itself = await call(`/v1/jobs?callback_url=${encodeURIComponent(`${server.url}/v1/predict`)}`, { method: 'POST', body: red, type: 'image/png' });
  assert.equal(itself.status, 400);
  assert.equal(itself.json.error.code, 'IMGPUSH_CALLBACK_REFUSED');
  assert.match(itself.json.error.message, /this server itself/);
});

test('with --callback-secret, every callback carries X-Imgpush-Signature: sha256= the HMAC-SHA256 of its body', { timeout: 20_000 }, async () => {
  const hook = await startServer();
  const signed = await serve({
    model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 64 * 1024, maxFiles: 4, batching, cacheSize: 0,
    allowCallbackHosts: [new URL(hook.url).host], callbackSecret: 'shh',
  }, () => {});
  try {
    await signed.ready;
    const answer = await request(`${signed.url}/v1/jobs?callback_url=${encodeURIComponent(`${hook.url}/done`)}`, { method: 'POST', body: red, headers: { 'content-type': 'image/png' } });
    assert.equal(answer.statusCode, 202);
    await answer.body.dump();
    while (hook.received.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const [delivered] = hook.received;
    assert.equal(delivered!.headers['x-imgpush-signature'], `sha256=${createHmac('sha256', 'shh').update(delivered!.body).digest('hex')}`);
  } finally {
    await signed.close();
    await hook.close();
  }
});

test('a job forgotten to make room under --max-jobs says so, not that its TTL passed', { timeout: 20_000 }, async () => {
  const small = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 64 * 1024, maxFiles: 4, batching, cacheSize: 0, maxJobs: 1 }, () => {});
  try {
    await small.ready;
    const submit = async () => {
      const answer = await request(`${small.url}/v1/jobs`, { method: 'POST', body: red, headers: { 'content-type': 'image/png' } });
      return (await answer.body.json() as { id: string }).id;
    };
    const first = await submit();
    for (;;) {
      const job = await (await request(`${small.url}/v1/jobs/${first}`)).body.json() as { status: string };
      if (job.status === 'done') break;
    }
    await submit();
    const gone = await request(`${small.url}/v1/jobs/${first}`);
    assert.equal(gone.statusCode, 404);
    const { error } = await gone.body.json() as { error: { code: string; message: string } };
    assert.equal(error.code, 'IMGPUSH_NO_SUCH_JOB');
    assert.match(error.message, /forgotten to make room for newer jobs \(--max-jobs\)/);
  } finally {
    await small.close();
  }
});
