// Issue 14, cases 14–15: files that change under imgpush, and storage calls that never return.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { open, readFile, rm, truncate } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { describe, test } from 'node:test';
import { sha256 } from '../helpers/server.js';

/** A valid 1×1 PNG, for a server that decodes what it gets. */
const ONE_PIXEL_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==', 'base64');
import { failuresIn, makeWork, mkfifo, pushIn, readLog, start, startHoldingServer, SYS_OPENAT, untilBlockedIn, workWithServer } from '../helpers/nothing-lost-kit.js';

// Each test has its own folder and servers: they run side by side.
describe('issue 14, cases 14–15: files that change, calls that never return', { concurrency: true }, () => {
  test('a file truncated between being found and being sent is a failure "changed while sending", never logged ok with 0 bytes', async (t) => {
    const { work, server } = await workWithServer(t, startHoldingServer);
    await work.file('in/a.jpg', 4950);
    await work.file('in/b.jpg', 4950);

    const pushed = pushIn({ inputs: [work.path('in')], url: server.url, concurrency: 1, retries: 0, out: work.path('results.jsonl'), failures: work.path('failures.jsonl') });
    // One file is on the wire; the other has been found and waits its turn: empty it now.
    const first = await server.next();
    const other = first.name === 'a.jpg' ? 'b.jpg' : 'a.jpg';
    await truncate(work.path(`in/${other}`), 0);
    first.answer({ status: 200 });
    server.answerAll({ status: 200 });
    await pushed;

    const line = (await readLog(work.path('results.jsonl'))).records.find((record) => record.path === work.path(`in/${other}`));
    assert.notEqual(line?.ok, true, `logged ${JSON.stringify(line)}`);
    assert.match(String((line?.error as { message?: string } | undefined)?.message), /changed/);
  });

  /** A server that stops reading the first request after its first chunk until `resume()` is called, then answers 200. */
  async function pausingServer() {
    let paused: (() => void) | undefined;
    const firstChunk = new Promise<void>((resolveFirst) => { paused = resolveFirst; });
    let resume: () => void = () => {};
    const bodies: string[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const hash = createHash('sha256');
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        if (paused === undefined) return;
        const tell = paused;
        paused = undefined;
        req.pause();
        resume = () => req.resume();
        tell();
      });
      req.on('end', () => {
        bodies.push(hash.digest('hex'));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      firstChunk,
      resume: () => resume(),
      bodies,
      close: () => new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    };
  }

  test('a large file rewritten in place while it streams is a failure "changed while sending", never logged ok', async (t) => {
    const work = await makeWork();
    const server = await pausingServer();
    t.after(async () => {
      await server.close();
      await work.remove();
    });
    const size = 8 * 1024 * 1024;
    const path = await work.file('in/big.jpg', size);
    const before = sha256(await readFile(path));

    const pushed = pushIn({ inputs: [work.path('in')], url: server.url, body: 'raw', retries: 0, out: work.path('results.jsonl'), failures: work.path('failures.jsonl') });
    await server.firstChunk;
    const file = await open(path, 'r+');
    await file.write(Buffer.alloc(size, 0x55), 0, size, 0);
    await file.close();
    server.resume();
    await pushed;

    assert.equal(server.bodies.length, 1);
    // Neither the old bytes nor the new went whole: the body the server got was torn.
    assert.notEqual(server.bodies[0], before, 'the old bytes went whole: the rewrite came too late to prove anything');
    assert.notEqual(server.bodies[0], sha256(Buffer.alloc(size, 0x55)), 'the new bytes went whole: the rewrite came too early to prove anything');
    const [line] = (await readLog(work.path('results.jsonl'))).records;
    assert.notEqual(line?.ok, true, 'a torn body was logged ok');
    assert.match(String((line?.error as { message?: string } | undefined)?.message), /changed/);
  });

  test('--checksum sends Content-Digest: sha-256=:…: of the bytes sent, and records it in the results log', async (t) => {
    const work = await makeWork();
    const server = await startHoldingServer();
    server.answerAll({ status: 200 });
    t.after(async () => {
      await server.close();
      await work.remove();
    });
    const path = await work.file('in/a.jpg', 3000);

    const imgpush = start([work.path('in'), '--url', server.url, '--body', 'raw', '--checksum', '-o', 'results.jsonl'], { cwd: work.root, input: '' });
    const result = await imgpush.done;

    assert.equal(result.code, 0, result.stderr);
    const digest = createHash('sha256').update(server.received[0]?.body ?? Buffer.alloc(0)).digest();
    assert.equal(server.received[0]?.headers['content-digest'], `sha-256=:${digest.toString('base64')}:`);
    const [line] = (await readLog(work.path('results.jsonl'))).records;
    assert.equal(line?.path, path);
    assert.equal(line?.sha256, digest.toString('hex'));
  });

  test('imgpush serve answers 400 to a request whose Content-Digest does not match its body, and 200 when it does', async (t) => {
    const server = start(['serve', '--model', 'builtin:colors', '--device', 'cpu', '--host', '127.0.0.1', '--port', '0'], { input: '' });
    t.after(async () => {
      server.child.kill('SIGKILL');
      await server.done;
    });
    await Promise.race([server.waitFor(/ready: .* at http:\/\/\S+/), server.done]);
    const url = /ready: .* at (http:\/\/\S+)/.exec(server.stdout() + server.stderr())?.[1];
    assert.ok(url !== undefined, `imgpush serve did not start: ${server.stderr()}`);
    const boundary = 'nothing-lost-boundary';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="dot.png"\r\nContent-Type: image/png\r\n\r\n`),
      ONE_PIXEL_PNG,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const post = async (digest: Buffer): Promise<number> => {
      const answer = await fetch(`${url}/v1/predict`, {
        method: 'POST',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-digest': `sha-256=:${digest.toString('base64')}:` },
        body,
      });
      await answer.arrayBuffer();
      return answer.status;
    };

    const right = await post(createHash('sha256').update(body).digest());
    const wrong = await post(createHash('sha256').update('other bytes').digest());

    assert.equal(right, 200);
    assert.equal(wrong, 400);
  });

  test('a file replaced by a named pipe after it was found does not freeze the run: Ctrl-C still stops it, and the pipe is a failure with its reason', {
    skip: SYS_OPENAT < 0 ? `no openat number known for ${process.arch}` : undefined,
    timeout: 30_000, // a safety net for a process that never ends, not a measure
  }, async (t) => {
    const { work, server } = await workWithServer(t, startHoldingServer);
    await work.file('in/a.jpg', 100);
    await work.file('in/b.jpg', 100);

    const imgpush = start([work.path('in'), '--url', server.url, '--concurrency', '1', '--retries', '0'], { cwd: work.root, input: '' });
    t.after(() => { imgpush.child.kill('SIGKILL'); });
    const first = await server.next();
    const swapped = work.path(`in/${first.name === 'a.jpg' ? 'b.jpg' : 'a.jpg'}`);
    await rm(swapped);
    if (!mkfifo(swapped)) return t.skip('mkfifo is not available');
    first.answer({ status: 200 });
    // A run that opens it without blocking may end by itself: that is fine too.
    const exited = imgpush.done.then(() => 'exited' as const);
    const blocked = untilBlockedIn(imgpush.child.pid as number, SYS_OPENAT, imgpush.done).then(() => 'blocked' as const, () => 'exited' as const);
    if (await Promise.race([blocked, exited]) === 'blocked') {
      imgpush.child.kill('SIGINT');
      const handled = imgpush.waitFor(/stopping/).then(() => 'handled' as const);
      // SIGINT delivered and the main thread back in open(): the handler can never run.
      const frozen = untilBlockedIn(imgpush.child.pid as number, SYS_OPENAT, imgpush.done, 2).then(() => 'frozen' as const, () => 'exited' as const);
      const verdict = await Promise.race([handled, exited, frozen]);
      if (verdict === 'frozen') imgpush.child.kill('SIGKILL');
      assert.notEqual(verdict, 'frozen', 'SIGINT was delivered, and the process went back to waiting in open() on the pipe');
    }
    await imgpush.done;

    const failed = await failuresIn(work.root);
    assert.deepEqual(failed.map((record) => basename(String(record.path))), [basename(swapped)]);
  });
});
