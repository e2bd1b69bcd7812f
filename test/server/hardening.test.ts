import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { request } from 'undici';
import { serve, type RunningServer } from '../../src/server/serve.js';
import { startCli } from '../helpers/cli.js';

let server: RunningServer;
let red: Buffer;
const batching = { maxBatch: 8, delayMs: 2, queueLimit: 64, concurrency: 1 };

before(async () => {
  red = await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
  server = await serve({
    model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 64 * 1024, maxFiles: 4, batching, cacheSize: 0,
    headerTimeoutMs: 500, requestTimeoutMs: 1500, logLevel: 'silent',
  }, () => {});
  await server.ready;
});
after(() => server.close());

async function predictRed(): Promise<string> {
  const answer = await request(`${server.url}/v1/predict`, { method: 'POST', body: red, headers: { 'content-type': 'image/png' } });
  const json = await answer.body.json() as { results: Array<{ top: Array<{ label: string }> }> };
  return json.results[0]?.top[0]?.label ?? `status ${answer.statusCode}`;
}

test('a slowloris client dripping its headers is cut off, and others are served meanwhile', { timeout: 15_000 }, async () => {
  const { port } = new URL(server.url);
  const socket = connect(Number(port), '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('POST /v1/predict HTTP/1.1\r\nHost: x\r\n');
  const drip = setInterval(() => socket.write('X-Slow: y\r\n'), 100);
  const closed = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    socket.once('close', () => resolve(text));
  });
  try {
    assert.equal(await predictRed(), 'red', 'served while the slow client drips');
    const answer = await closed;
    assert.ok(answer === '' || /^HTTP\/1\.1 408/.test(answer), `the slow client was cut off: ${JSON.stringify(answer.slice(0, 40))}`);
  } finally {
    clearInterval(drip);
    socket.destroy();
  }
});

test('a body of endless size gets 413 once past the limit, without the server holding it, and the server lives on', { timeout: 30_000 }, async () => {
  let sent = 0;
  const limit = 200 * 1024 * 1024;
  async function* endless() {
    const chunk = Buffer.alloc(64 * 1024);
    yield red;
    while (sent < limit) {
      sent += chunk.length;
      yield chunk;
    }
  }
  const before = process.memoryUsage().rss;
  let status = 0;
  try {
    const answer = await request(`${server.url}/v1/predict`, { method: 'POST', body: Readable.from(endless()), headers: { 'content-type': 'image/png' } });
    status = answer.statusCode;
    await answer.body.dump();
  } catch (error) {
    // The server may close the connection as soon as it has refused the body.
    assert.match(String((error as { code?: string }).code), /UND_ERR_SOCKET|ECONNRESET|EPIPE/);
  }
  assert.ok(status === 0 || status === 413, `status ${status}`);
  assert.ok(sent < limit, `the upload was stopped early (${(sent / 1024 / 1024).toFixed(0)} MiB sent)`);
  assert.ok(process.memoryUsage().rss - before < 100 * 1024 * 1024, 'the server did not hold the body');
  assert.equal(await predictRed(), 'red');
});

test('--rate-limit answers 429 with Retry-After past N requests a second from one address', async () => {
  const limited = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 64 * 1024, maxFiles: 4, batching, cacheSize: 0, rateLimit: 3 }, () => {});
  try {
    await limited.ready;
    const statuses: Array<{ status: number; retryAfter: unknown }> = [];
    for (let i = 0; i < 6; i++) {
      const answer = await request(`${limited.url}/v1/predict`, { method: 'POST', body: red, headers: { 'content-type': 'image/png' } });
      statuses.push({ status: answer.statusCode, retryAfter: answer.headers['retry-after'] });
      await answer.body.dump();
    }
    assert.deepEqual(statuses.slice(0, 3).map((s) => s.status), [200, 200, 200]);
    const refused = statuses.filter((s) => s.status === 429);
    assert.ok(refused.length >= 2, JSON.stringify(statuses));
    assert.ok(refused.every((s) => s.retryAfter === '1'));
  } finally {
    await limited.close();
  }
});

test('with --token, a wrong token is 401 and appears in no log line; each log line is JSON with a request id', { timeout: 20_000 }, async () => {
  const cli = startCli(['serve', '--port', '0', '--drain-delay', '0', '--token', 'right-token', '--log-level', 'info']);
  try {
    const [, url] = await cli.waitFor(/ready: colors on \w+ at (http:\/\/[^/\s]+) — push images to \1\/v1\/predict/);
    const answer = await request(`${url}/v1/predict`, { method: 'POST', body: red, headers: { 'content-type': 'image/png', authorization: 'Bearer wrong-token-value' } });
    assert.equal(answer.statusCode, 401);
    await answer.body.dump();
    await cli.waitFor(/"statusCode":401/);
  } finally {
    cli.child.kill('SIGTERM');
  }
  const { stdout, code } = await cli.done;
  assert.equal(code, 0);
  const lines = stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { reqId?: string });
  assert.ok(lines.some((line) => typeof line.reqId === 'string'), 'request logs carry a request id');
  assert.doesNotMatch(stdout, /wrong-token-value|right-token/);
});
