import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import sharp from 'sharp';
import { request } from 'undici';
import { buildApp } from '../../src/server/app.js';
import { gatedState } from '../helpers/server-gate.js';

/*
 * Issue 16, item 5: the server bounds what it has accepted and not yet
 * answered, from the moment a request arrives, and refuses the rest at
 * once with 429 and Retry-After, before reading the body.
 */

const batching = { maxBatch: 8, delayMs: 1, queueLimit: 4, concurrency: 1 };

/** A server whose batches wait for `open()`, so that work piles up on purpose. */
async function gatedServer(limits: { maxBodyBytesInFlight?: number } = {}) {
  // The batcher's own queue is large: only admission may refuse.
  const { state, open, release } = await gatedState({ ...batching, queueLimit: 1000 });
  const app = buildApp({ maxFileSize: 1024 * 1024, maxFiles: 4, batching, cacheSize: 0, ...limits }, state);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    open,
    async close() {
      open();
      await app.close();
      await release();
    },
  };
}

/** A Prometheus sample's value, scraped now. */
async function sample(url: string, name: string): Promise<number> {
  const text = await (await request(`${url}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.slice(name.length + 1));
}

/** Scrapes until the sample reads `value`; fails after 500 scrapes rather than hang. */
async function until(url: string, name: string, value: number): Promise<void> {
  for (let i = 0; i < 500; i++) if (await sample(url, name) === value) return;
  assert.fail(`${name} never reached ${value} (last ${await sample(url, name)})`);
}

/** Sends headers and the first bytes of a body that never ends; resolves with all the server answered once it closes. */
function neverEnding(port: number, length: number): { socket: Socket; answer: Promise<string> } {
  const socket = connect(port, '127.0.0.1');
  socket.write(`POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: ${length}\r\n\r\n${'x'.repeat(10)}`);
  let text = '';
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
  });
  socket.on('error', () => {});
  return { socket, answer: new Promise((resolve) => socket.once('close', () => resolve(text))) };
}

test('beyond --queue-limit images accepted and not answered, a request is 429 with Retry-After before its body is read; imgpush_queue_depth shows the backlog', async () => {
  const server = await gatedServer();
  try {
    const red = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#ff0000' } }).png().toBuffer();
    const accepted = Array.from({ length: 4 }, () => request(`${server.url}/v1/predict`, { method: 'POST', body: red, headers: { 'content-type': 'image/png' } }));
    await until(server.url, 'imgpush_queue_depth', 4);
    const { answer } = neverEnding(server.port, 1_000_000);
    const refused = await answer;
    assert.match(refused, /^HTTP\/1\.1 429 /);
    assert.match(refused, /\r\nretry-after: 1\r\n/i);
    assert.match(refused, /"code":"IMGPUSH_QUEUE_FULL"/);
    server.open();
    const statuses = await Promise.all(accepted.map(async (pending) => {
      const done = await pending;
      await done.body.dump();
      return done.statusCode;
    }));
    assert.deepEqual(statuses, [200, 200, 200, 200]);
    assert.equal(await sample(server.url, 'imgpush_queue_depth'), 0);
  } finally {
    await server.close();
  }
});

test('bodies in flight have a byte budget: past it a request is 429 at once, and the budget comes back when a body goes', async () => {
  const server = await gatedServer({ maxBodyBytesInFlight: 300_000 });
  try {
    const held = neverEnding(server.port, 200_000);
    await until(server.url, 'imgpush_body_bytes_in_flight', 200_000);
    const refused = await neverEnding(server.port, 200_000).answer;
    assert.match(refused, /^HTTP\/1\.1 429 /);
    assert.match(refused, /--max-body-bytes-in-flight 300000/);
    held.socket.destroy();
    await until(server.url, 'imgpush_body_bytes_in_flight', 0);
  } finally {
    await server.close();
  }
});
