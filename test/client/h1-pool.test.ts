import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { Exchange, type SendOptions } from '../../src/client/transport/exchange.js';
import { H1Pool } from '../../src/client/transport/h1-pool.js';

interface RawServer {
  readonly origin: string;
  /** Connections accepted so far. */
  connections: number;
}

/**
 * A TCP server that speaks whatever `serve` writes: the pool's peer when
 * node:http would not misbehave the way a test needs. `serve` gets each
 * request's head as text, once it came whole, and the socket.
 */
async function rawServer(t: TestContext, serve: (head: string, socket: Socket) => void): Promise<RawServer> {
  const sockets = new Set<Socket>();
  const state = { origin: '', connections: 0 };
  const server = createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      for (let end = text.indexOf('\r\n\r\n'); end >= 0; end = text.indexOf('\r\n\r\n')) {
        const head = text.slice(0, end);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        // A request whose body has not come whole waits, unless the server answers on its head alone.
        if (text.length < end + 4 + length && !head.includes('x-answer-early')) return;
        text = text.slice(Math.min(text.length, end + 4 + length));
        serve(head, socket);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  state.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return state;
}

function pool(t: TestContext, origin: string, settings: Partial<{ connections: number; timeoutMs: number }> = {}): H1Pool {
  const made = new H1Pool({ origin, connections: settings.connections ?? 4, timeoutMs: settings.timeoutMs ?? 10_000, connectTimeoutMs: 10_000 });
  t.after(() => made.destroy(new Error('test over')));
  return made;
}

function send(through: H1Pool, options: Partial<SendOptions> = {}): Exchange {
  return Exchange.send(through, { origin: '', path: '/up', method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: Buffer.from('image'), ...options }, () => true);
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

test('fifty requests through four connections: every answer read, no more connections than the pool holds', async (t) => {
  const heads: string[] = [];
  const server = await rawServer(t, (head, socket) => {
    heads.push(head);
    socket.write(OK);
  });
  const through = pool(t, server.origin);
  const answers = await Promise.all(Array.from({ length: 50 }, () => send(through).answer));
  assert.deepEqual(new Set(answers.map((answer) => `${answer.status} ${answer.bytes.toString()}`)), new Set(['200 ok']));
  assert.ok(server.connections <= 4, `${server.connections} connections`);
  assert.match(heads[0] as string, /^POST \/up HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\ncontent-type: image\/jpeg\r\ncontent-length: 5$/);
});

test('an answer with Connection: close, or with bytes after its end, leaves its connection: the next request opens another', async (t) => {
  let turn = 0;
  const server = await rawServer(t, (_head, socket) => {
    turn++;
    socket.write(turn === 1 ? 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok' : `${OK}garbage`);
  });
  const through = pool(t, server.origin, { connections: 1 });
  for (let i = 0; i < 3; i++) assert.equal((await send(through).answer).status, 200);
  assert.equal(server.connections, 3);
});

test('a server\'s Keep-Alive: timeout=1 is too short to send another request on: each request gets a new connection', async (t) => {
  const server = await rawServer(t, (_head, socket) => socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok'));
  const through = pool(t, server.origin, { connections: 1 });
  for (let i = 0; i < 2; i++) assert.equal((await send(through).answer).status, 200);
  assert.equal(server.connections, 2);
});

test('a 413 that comes while a large streamed body is still going ends the request with the 413, and the pool goes on', async (t) => {
  const server = await rawServer(t, (head, socket) => {
    socket.write(head.includes('x-answer-early') ? 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbig' : OK);
    if (head.includes('x-answer-early')) socket.end();
  });
  const through = pool(t, server.origin, { connections: 1 });
  const size = 64 * 1024 * 1024;
  let produced = 0;
  const body = new Readable({
    read() {
      produced += 1024 * 1024;
      this.push(produced > size ? null : Buffer.alloc(1024 * 1024));
    },
  });
  const exchange = send(through, { body, headers: { 'x-answer-early': '1', 'content-length': String(size) } });
  const answer = await exchange.answer;
  assert.equal(answer.status, 413);
  assert.equal(answer.bytes.toString(), 'big');
  assert.equal(exchange.sent, false);
  assert.ok(produced < size, `${produced} bytes read of ${size}`);
  assert.equal((await send(through).answer).status, 200);
});

test('a server that takes the request and closes without answering: UND_ERR_SOCKET, and the request is known to have gone whole', async (t) => {
  const server = await rawServer(t, (_head, socket) => socket.end());
  const exchange = send(pool(t, server.origin));
  await assert.rejects(exchange.answer, { code: 'UND_ERR_SOCKET' });
  assert.equal(exchange.sent, true);
  assert.equal(exchange.status, undefined);
});

test('an answer cut in its body fails with UND_ERR_SOCKET after its status', async (t) => {
  const server = await rawServer(t, (_head, socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'));
  const exchange = send(pool(t, server.origin));
  await assert.rejects(exchange.answer, { code: 'UND_ERR_SOCKET' });
  assert.equal(exchange.status, 200);
});

test('silence past the timeout: before the status it is a headers timeout, after it a body timeout', async (t) => {
  const server = await rawServer(t, (head, socket) => {
    if (head.includes('x-half')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab');
  });
  const through = pool(t, server.origin, { timeoutMs: 200 });
  await assert.rejects(send(through).answer, { code: 'UND_ERR_HEADERS_TIMEOUT' });
  await assert.rejects(send(through, { headers: { 'x-half': '1' } }).answer, { code: 'UND_ERR_BODY_TIMEOUT' });
});

test('something that is not an HTTP server on the port: IMGPUSH_BAD_ANSWER quoting what it said', async (t) => {
  const banner = createServer((socket) => socket.end('SSH-2.0-OpenSSH_9.2\r\n'));
  banner.listen(0, '127.0.0.1');
  await once(banner, 'listening');
  t.after(() => banner.close());
  const through = pool(t, `http://127.0.0.1:${(banner.address() as AddressInfo).port}`);
  await assert.rejects(send(through).answer, { code: 'IMGPUSH_BAD_ANSWER', message: /SSH-2\.0-OpenSSH_9\.2/ });
});

test('destroy ends the requests under way and those waiting for a connection with its error', async (t) => {
  const server = await rawServer(t, () => {});
  const through = pool(t, server.origin, { connections: 1 });
  const failed = [send(through), send(through)].map((exchange) => assert.rejects(exchange.answer, { message: 'stopped' }));
  await through.destroy(new Error('stopped'));
  await Promise.all(failed);
  await assert.rejects(send(through).answer, { message: 'stopped' });
});

test('close lets the request under way finish, then closes the connections', async (t) => {
  let arrive: (socket: Socket) => void = () => {};
  const arrived = new Promise<Socket>((resolve) => {
    arrive = resolve;
  });
  const server = await rawServer(t, (_head, socket) => arrive(socket));
  const through = pool(t, server.origin);
  const exchange = send(through);
  const socket = await arrived;
  const closed = through.close();
  socket.write(OK);
  assert.equal((await exchange.answer).status, 200);
  await closed;
  await assert.rejects(send(through).answer, { code: 'UND_ERR_CLOSED' });
});

test('a connection the server closed while it was idle is not used again: the next request opens another and succeeds', async (t) => {
  let closed: Promise<unknown> = Promise.resolve();
  const server = await rawServer(t, (_head, socket) => {
    closed = once(socket, 'close');
    socket.end(OK);
  });
  const through = pool(t, server.origin, { connections: 1 });
  assert.equal((await send(through).answer).status, 200);
  // The server's side closes once this side, told of its end, closed too.
  await closed;
  assert.equal((await send(through).answer).status, 200);
  assert.equal(server.connections, 2);
});

test('a connection free for longer than the server keeps one (Keep-Alive: timeout=2, less a second) is not used again; one free a moment is', async (t) => {
  const server = await rawServer(t, (_head, socket) => socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\nok'));
  const through = pool(t, server.origin, { connections: 1 });
  assert.equal((await send(through).answer).status, 200);
  assert.equal((await send(through).answer).status, 200);
  assert.equal(server.connections, 1);
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assert.equal((await send(through).answer).status, 200);
  assert.equal(server.connections, 2);
});

test('the pool holds the process while a request is under way, and not once the answers came: a program exits with its connections open', async (t) => {
  const server = await rawServer(t, (_head, socket) => setTimeout(() => socket.write(OK), 300));
  const module = new URL('../../src/client/transport/h1-pool.js', import.meta.url).href;
  const exchange = new URL('../../src/client/transport/exchange.js', import.meta.url).href;
  // No timer or handle of its own: only the pool can keep it running until the answer, and nothing should after.
  const program = `
    import { H1Pool } from ${JSON.stringify(module)};
    import { Exchange } from ${JSON.stringify(exchange)};
    const pool = new H1Pool({ origin: ${JSON.stringify(server.origin)}, connections: 2, timeoutMs: 60000, connectTimeoutMs: 60000 });
    const send = () => Exchange.send(pool, { origin: '', path: '/', method: 'GET', headers: {} }, () => true).answer;
    const answers = await Promise.all([send(), send()]);
    process.stdout.write(answers.map((answer) => answer.status).join(' '));`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const started = performance.now();
  const [code] = await once(child, 'exit') as [number];
  assert.equal(code, 0);
  assert.equal(out, '200 200');
  // The sockets' own timeout (60 s) would hold it a minute if they kept the process.
  assert.ok(performance.now() - started < 10_000, `exited after ${Math.round(performance.now() - started)} ms`);
  assert.equal(server.connections, 2);
});
