import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { request } from 'undici';
import { serve, type ServeOptions } from '../../src/server/serve.js';
import { slowPng } from '../helpers/server-bombs.js';

/*
 * Issue 16, items 1 and 9: a decode has a time limit, decodes at once have
 * a cap, and so do connections; each shown on the real server, over real
 * sockets.
 */

const batching = { maxBatch: 8, delayMs: 2, queueLimit: 64, concurrency: 1 };

async function started(options: Partial<ServeOptions>) {
  const server = await serve({
    model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 4 * 1024 ** 2, maxFiles: 4, batching, cacheSize: 0, logLevel: 'silent', ...options,
  }, () => {});
  await server.ready;
  return server;
}

function predict(url: string, image: Buffer, name: string): Promise<{ status: number; json: any }> {
  return request(`${url}/v1/predict`, { method: 'POST', body: image, headers: { 'content-type': 'image/png', 'x-filename': name } })
    .then(async (answer) => ({ status: answer.statusCode, json: await answer.body.json() }));
}

async function sample(url: string, name: string): Promise<number> {
  const text = await (await request(`${url}/metrics`)).body.text();
  return Number(text.split('\n').find((line) => line.startsWith(`${name} `))?.slice(name.length + 1));
}

test('--decode-timeout: a PNG that takes seconds to decode is cut at the limit, a 422 IMGPUSH_DECODE_TIMEOUT naming it', { timeout: 30_000 }, async () => {
  // libvips checks its clock once per tile of its output, the model's input: a 32×32 input is a single tile, checked
  // only once the decode is over, so this server feeds 512×512 (the colours model takes any size).
  const server = await started({ inputSize: 512, maxPixels: 300_000_000, decodeTimeoutMs: 1000 });
  try {
    // Some 4 s of decoding here, 5–10 times what the default --max-pixels lets through.
    const answer = await predict(server.url, slowPng(14_000, 14_000), 'slow.png');
    assert.equal(answer.status, 422, JSON.stringify(answer.json));
    assert.equal(answer.json.error.code, 'IMGPUSH_DECODE_TIMEOUT');
    assert.match(answer.json.error.message, /^slow\.png \(a PNG of 14000×14000 pixels\) took longer than --decode-timeout 1s to decode/);
  } finally {
    await server.close();
  }
});

test('--max-decodes 1: of three images sent at once, one is decoded while two wait for its slot', { timeout: 30_000 }, async () => {
  const server = await started({ maxDecodes: 1 });
  // Each some 0.3 s of decoding: long enough for the scrapes below to see all three at the decoder.
  const images = [0, 1, 2].map(() => slowPng(3800, 3800));
  let answered = false;
  const answers = Promise.all(images.map((image, i) => predict(server.url, image, `slow-${i}.png`))).finally(() => {
    answered = true;
  });
  try {
    let running = 0;
    let waiting = 0;
    while (!answered && running + waiting < 3) {
      [running, waiting] = [await sample(server.url, 'imgpush_decodes_running'), await sample(server.url, 'imgpush_decodes_waiting')];
      assert.ok(running <= 1, `${running} decodes ran at once`);
    }
    assert.deepEqual({ running, waiting }, { running: 1, waiting: 2 });
    assert.deepEqual((await answers).map((answer) => answer.status), [200, 200, 200]);
    assert.equal(await sample(server.url, 'imgpush_decodes_running'), 0);
  } finally {
    await answers.catch(() => {});
    await server.close();
  }
});

/** A connection that has been answered once (so the server has surely taken it), kept open. */
async function openConnection(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  assert.match(await exchange(socket), /^HTTP\/1\.1 200 /);
  return socket;
}

/** Sends a liveness request on `socket` and resolves with what comes back first, or '' when the server closes it instead. */
function exchange(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    const answered = (chunk: Buffer) => {
      socket.off('close', closed);
      resolve(chunk.toString('latin1'));
    };
    const closed = () => {
      socket.off('data', answered);
      resolve('');
    };
    socket.once('data', answered);
    socket.once('close', closed);
    socket.write('GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n');
  });
}

test('--max-connections 4: a fifth and sixth connection are closed unanswered while the first four are served; one closed makes room', async () => {
  const server = await started({ maxConnections: 4 });
  const port = Number(new URL(server.url).port);
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < 4; i++) sockets.push(await openConnection(port));
    for (let i = 0; i < 2; i++) {
      const extra = connect(port, '127.0.0.1');
      extra.on('error', () => {});
      sockets.push(extra);
      assert.equal(await exchange(extra), '', `connection ${5 + i} is dropped`);
    }
    for (const socket of sockets.slice(0, 4)) assert.match(await exchange(socket), /^HTTP\/1\.1 200 /, 'the first four still work');
    const freed = new Promise((resolve) => sockets[0]!.once('close', resolve));
    sockets[0]!.destroy();
    await freed;
    // The server counts the closed one out once it sees it go: try a few times rather than sleep.
    let answer = '';
    for (let tries = 0; tries < 50 && answer === ''; tries++) {
      const again = connect(port, '127.0.0.1');
      again.on('error', () => {});
      sockets.push(again);
      answer = await exchange(again);
    }
    assert.match(answer, /^HTTP\/1\.1 200 /, 'a closed connection makes room for a new one');
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.close();
  }
});
