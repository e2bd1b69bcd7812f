import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import sharp from 'sharp';
import { request } from 'undici';
import { buildApp } from '../../src/server/app.js';
import { serve } from '../../src/server/serve.js';
import { InFlight, shutDown } from '../../src/server/shutdown.js';
import { gatedState } from '../helpers/server-gate.js';
import { startCli } from '../helpers/cli.js';
import { startServer } from '../helpers/server.js';

/*
 * Issue 16, item 10: a shutdown turns readiness false first, closes the
 * listener after the drain delay, and gives what is in flight until the
 * shutdown timeout; what it cannot finish is cut and reported, never lost
 * in silence, and a client dripping its body cannot hold the process.
 */

const batching = { maxBatch: 8, delayMs: 1, queueLimit: 64, concurrency: 1 };

/** Scrapes /metrics until `name` reads `value`; fails after 500 scrapes rather than hang. */
async function until(url: string, name: string, value: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const text = await (await request(`${url}/metrics`)).body.text();
    if (text.split('\n').includes(`${name} ${value}`)) return;
  }
  assert.fail(`${name} never reached ${value}`);
}

/** Headers and 10 bytes of a body of `length`, the rest never sent. */
function drip(url: string, length: number): Socket {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${length}\r\n\r\n${'x'.repeat(10)}`);
  return socket;
}

test('once a shutdown begins, readiness is 503 with Retry-After and IMGPUSH_NOT_READY while live stays 200', async () => {
  const server = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 65536, maxFiles: 4, batching, cacheSize: 0, drainDelayMs: 300, logLevel: 'silent' }, () => {});
  await server.ready;
  const closed = server.close();
  const ready = await request(`${server.url}/v2/health/ready`);
  assert.equal(ready.statusCode, 503);
  assert.equal(ready.headers['retry-after'], '1');
  assert.equal((await ready.body.json() as any).error.code, 'IMGPUSH_NOT_READY');
  const live = await request(`${server.url}/v2/health/live`);
  assert.equal(live.statusCode, 200);
  await live.body.dump();
  assert.deepEqual(await closed, { requestsCut: 0, jobsLost: 0 });
});

test('a client dripping its body holds a shutdown no longer than --shutdown-timeout, and is reported cut', { timeout: 20_000 }, async () => {
  const server = await serve({
    model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 65536, maxFiles: 4, batching, cacheSize: 0,
    requestTimeoutMs: 120_000, shutdownTimeoutMs: 300, logLevel: 'silent',
  }, () => {});
  await server.ready;
  const socket = drip(server.url, 1000);
  try {
    await until(server.url, 'imgpush_body_bytes_in_flight', 1000);
    const started = performance.now();
    const report = await server.close();
    // Generous: bounded by the shutdown timeout, where it was the 2-minute request timeout.
    assert.ok(performance.now() - started < 5000, `closed in ${Math.round(performance.now() - started)} ms`);
    assert.deepEqual(report, { requestsCut: 1, jobsLost: 0 });
  } finally {
    socket.destroy();
  }
});

test('a request answered after the listener closed closes its keep-alive connection, so the shutdown ends with it, not at the 65 s keep-alive timeout', { timeout: 20_000 }, async () => {
  const { state, open, release } = await gatedState(batching);
  const inFlight = new InFlight();
  const app = buildApp({ maxFileSize: 65536, maxFiles: 4, batching, cacheSize: 0 }, state, inFlight);
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const red = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#ff0000' } }).png().toBuffer();
    const pending = request(`${url}/v1/predict`, { method: 'POST', body: red, headers: { 'content-type': 'image/png' } });
    await until(url, 'imgpush_queue_depth', 1);
    const closed = shutDown(app, state, inFlight, { drainDelayMs: 0, shutdownTimeoutMs: 15_000 });
    open();
    const answer = await pending;
    await answer.body.dump();
    assert.equal(answer.statusCode, 200);
    assert.equal(answer.headers.connection, 'close');
    const started = performance.now();
    assert.deepEqual(await closed, { requestsCut: 0, jobsLost: 0 });
    // Generous: the connection's end, where it was the keep-alive timeout.
    assert.ok(performance.now() - started < 5000, `closed ${Math.round(performance.now() - started)} ms after the answer`);
  } finally {
    await release();
  }
});

/** An app whose batches wait for `open()`, with jobs under way on purpose. */
async function gatedJobs(log: (line: string) => void) {
  const { state, open, release } = await gatedState(batching);
  const inFlight = new InFlight(log);
  const app = buildApp({ maxFileSize: 65536, maxFiles: 4, batching, cacheSize: 0, allowCallbackHosts: ['127.0.0.1'] }, state, inFlight);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const red = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#ff0000' } }).png().toBuffer();
  const submit = async (callback: string) => {
    const answer = await request(`${url}/v1/jobs?callback_url=${encodeURIComponent(callback)}`, { method: 'POST', body: red, headers: { 'content-type': 'image/png' } });
    await answer.body.dump();
    assert.equal(answer.statusCode, 202);
  };
  return { app, state, inFlight, open, submit, release };
}

test('jobs accepted before a shutdown finish within its grace and their callbacks are delivered; nothing is reported lost', async () => {
  const hook = await startServer();
  const server = await gatedJobs(() => {});
  try {
    for (let i = 0; i < 3; i++) await server.submit(`${hook.url}/done`);
    const report = shutDown(server.app, server.state, server.inFlight, { drainDelayMs: 0, shutdownTimeoutMs: 10_000 });
    server.open();
    assert.deepEqual(await report, { requestsCut: 0, jobsLost: 0 });
    assert.equal(hook.received.length, 3);
    assert.ok(hook.received.every((callback) => JSON.parse(callback.body.toString()).status === 'done'));
  } finally {
    server.open();
    await server.release();
    await hook.close();
  }
});

test('jobs that cannot finish within the grace are reported failed to their callback and in a log line, and counted lost', async () => {
  const hook = await startServer();
  const lines: string[] = [];
  const server = await gatedJobs((line) => lines.push(line));
  try {
    for (let i = 0; i < 3; i++) await server.submit(`${hook.url}/done`);
    const report = await shutDown(server.app, server.state, server.inFlight, { drainDelayMs: 0, shutdownTimeoutMs: 300 });
    assert.deepEqual(report, { requestsCut: 0, jobsLost: 3 });
    assert.equal(hook.received.length, 3);
    for (const callback of hook.received) {
      const job = JSON.parse(callback.body.toString());
      assert.equal(job.status, 'failed');
      assert.equal(job.error.code, 'IMGPUSH_SHUT_DOWN');
    }
    assert.equal(lines.filter((line) => /^job \S+ lost at shutdown: not finished; its callback was told it failed$/.test(line)).length, 3, lines.join('\n'));
  } finally {
    server.open();
    await server.release();
    await hook.close();
  }
});

test('imgpush serve exits 1 within --shutdown-timeout of SIGTERM when a client drips its body, saying what it cut', { timeout: 20_000 }, async () => {
  const cli = startCli(['serve', '--port', '0', '--drain-delay', '0', '--shutdown-timeout', '300ms', '--log-level', 'silent']);
  const [, url] = await cli.waitFor(/ready: colors on \w+ at (http:\/\/[^/\s]+) — push images to \1\/v1\/predict/);
  const socket = drip(url!, 1000);
  try {
    await until(url!, 'imgpush_body_bytes_in_flight', 1000);
    const started = performance.now();
    cli.child.kill('SIGTERM');
    const result = await cli.done;
    assert.ok(performance.now() - started < 5000, `exited ${Math.round(performance.now() - started)} ms after SIGTERM`);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /1 request\(s\) still unanswered at --shutdown-timeout/);
    assert.match(result.stderr, /stopped: 1 request\(s\) cut, 0 job\(s\) lost/);
  } finally {
    socket.destroy();
  }
});
