import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { push, type Progress } from '../../src/client/index.js';
import type { FailureRecord } from '../../src/client/logs/failure-log.js';
import { SAME_ANSWER_LIMIT } from '../../src/client/pacing/same-answer.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { startServer, type TestServer } from '../helpers/server.js';

const FILES = 40;
let tree: Tree;
let logNumber = 0;

before(async () => {
  tree = await makeTree(Object.fromEntries(Array.from({ length: FILES }, (_, i) => [`d${i % 3}/f${i}.jpg`, 100 + i])));
});
after(() => tree.remove());

function logs(): { out: string; failures: string } {
  logNumber++;
  return { out: join(tree.root, `results-${logNumber}.jsonl`), failures: join(tree.root, `failures-${logNumber}.jsonl`) };
}

/** A port nothing listens on: a server's, once it has closed. */
async function deadPort(): Promise<string> {
  const server = await startServer();
  await server.close();
  return server.url;
}

async function failureLines(path: string): Promise<FailureRecord[]> {
  const [, ...records] = await readJsonl<FailureRecord>(path);
  return records;
}

async function withServer<T>(server: TestServer, body: (server: TestServer) => Promise<T>): Promise<T> {
  try {
    return await body(server);
  } finally {
    await server.close();
  }
}

// Before the fix, the outage gate kept such a run waiting for --max-outage (5 minutes): the timeout proves it is bounded.
test('a port with nothing listening ends the run after the first file\'s own retries: one reason naming the URL, every file in the failure log', { timeout: 10_000 }, async () => {
  const url = `${await deadPort()}/predict`;
  const log = logs();
  const warnings: string[] = [];
  const summary = await push({ inputs: [tree.root], url, ...log }, { onWarning: (message) => warnings.push(message) });
  const host = new URL(url).host;
  assert.equal(summary.stopReason, `no answer from ${url}: nothing is listening on ${host} (connection refused) — is the server running?`);
  assert.equal(summary.failed, FILES);
  assert.equal((await failureLines(log.failures)).length, FILES);
  assert.deepEqual(warnings, [], 'no outage warning: the server never answered, so the run did not pause for it');
});

test('something on the port that does not speak HTTP (an SSH server) ends the run at first contact, quoting what it said', { timeout: 10_000 }, async (t) => {
  const banner = createServer((socket) => socket.end('SSH-2.0-OpenSSH_9.2\r\n'));
  banner.listen(0, '127.0.0.1');
  await once(banner, 'listening');
  t.after(() => banner.close());
  const url = `http://127.0.0.1:${(banner.address() as AddressInfo).port}/predict`;
  const log = logs();
  const summary = await push({ inputs: [tree.root], url, retryMinDelayMs: 1, ...log });
  assert.match(summary.stopReason ?? '', /^no answer from http:\/\/127\.0\.0\.1:\d+\/predict: the answer does not begin with an HTTP\/1\.x status line: "SSH-2\.0-OpenSSH_9\.2"/);
  assert.equal(summary.failed, FILES);
  const codes = (await failureLines(log.failures)).map((record) => record.code);
  assert.equal(codes.length, FILES);
  assert.ok(codes.includes('IMGPUSH_BAD_ANSWER'));
  assert.deepEqual(codes.filter((code) => code !== 'IMGPUSH_BAD_ANSWER' && code !== 'IMGPUSH_INTERRUPTED'), []);
});

test('a host name that does not resolve ends the run with "cannot resolve host"', { timeout: 10_000 }, async () => {
  const summary = await push({ inputs: [tree.root], url: 'http://no-such-host.invalid:8000/predict', concurrency: 1, retries: 1, retryMinDelayMs: 1, ...logs() });
  assert.match(summary.stopReason ?? '', /^no answer from http:\/\/no-such-host\.invalid:8000\/predict: cannot resolve host no-such-host\.invalid/);
  assert.equal(summary.failed, FILES);
});

test('--retries 0 against a port with nothing listening: nothing waits, no retry, no pause', { timeout: 10_000 }, async () => {
  const warnings: string[] = [];
  const summary = await push({ inputs: [tree.root], url: await deadPort(), retries: 0, concurrency: 4, ...logs() }, { onWarning: (message) => warnings.push(message) });
  assert.equal(summary.retries, 0);
  assert.equal(summary.failed, FILES);
  assert.deepEqual(warnings, []);
});

test('a server that answered once and then goes away pauses the run (the outage gate), not the first-contact stop', { timeout: 20_000 }, async () => {
  const server = await startServer();
  const warnings: string[] = [];
  let closed: Promise<void> | undefined;
  const log = logs();
  const summary = await push({ inputs: [tree.root], url: server.url, concurrency: 2, retries: 2, retryMinDelayMs: 5, retryMaxDelayMs: 50, maxOutageMs: 300, ...log }, {
    onWarning: (message) => warnings.push(message),
    onResult: () => {
      if (closed === undefined && server.received.length >= 4) closed = server.close();
    },
  });
  await closed;
  assert.match(summary.stopReason ?? '', /--max-outage/);
  assert.ok(warnings.some((w) => /uploads pause/.test(w)), warnings.join('\n'));
  assert.equal(summary.ok + (await failureLines(log.failures)).length, FILES);
});

for (const [status, hint] of [[404, 'check --url'], [401, 'check --token'], [403, 'check --token']] as const) {
  test(`a server that answers ${status} to everything gets at most 20 requests; the stop names the status and the URL (${hint}); every file is in the failure log`, async () => {
    await withServer(await startServer(() => ({ status, body: { detail: 'no route POST /predict' } })), async (server) => {
      const url = `${server.url}/predict`;
      const log = logs();
      const summary = await push({ inputs: [tree.root], url, concurrency: 64, ...log });
      assert.ok(server.received.length <= 20, `${server.received.length} requests`);
      assert.ok(server.received.length >= SAME_ANSWER_LIMIT);
      assert.match(summary.stopReason ?? '', new RegExp(`^every answer so far is ${status} [A-Za-z ]+ from ${url} — ${hint}$`));
      assert.equal(summary.failed, FILES);
      const records = await failureLines(log.failures);
      assert.equal(records.length, FILES);
      assert.equal(records.filter((r) => r.code === 'IMGPUSH_INTERRUPTED').length, FILES - server.received.length);
    });
  });
}

test('the summary groups failures by reason, most files first', async () => {
  await withServer(await startServer(() => ({ status: 404, body: { detail: 'no route POST /predict' } })), async (server) => {
    const summary = await push({ inputs: [tree.root], url: `${server.url}/predict`, concurrency: 1, ...logs() });
    const [unsent, answered] = summary.failureReasons;
    assert.deepEqual(answered, { code: 'IMGPUSH_HTTP_STATUS', message: 'server answered 404 Not Found: no route POST /predict', count: SAME_ANSWER_LIMIT });
    assert.deepEqual(unsent, { code: 'IMGPUSH_INTERRUPTED', message: `not sent: ${summary.stopReason}`, count: FILES - SAME_ANSWER_LIMIT });
  });
});

test('failures whose messages name their own file still group as one reason, the name shown as <file>', async () => {
  const undecodable = (req: { body: Buffer }): string => `${/filename="([^"]+)"/.exec(req.body.toString('latin1'))?.[1] ?? '?'} does not decode`;
  await withServer(await startServer((req, _res, index) => (index === 0 ? { status: 200 } : { status: 422, body: { detail: undecodable(req) } })), async (server) => {
    const summary = await push({ inputs: [tree.root], url: server.url, concurrency: 1, ...logs() });
    assert.deepEqual(summary.failureReasons, [{ code: 'IMGPUSH_HTTP_STATUS', message: 'server answered 422 Unprocessable Entity: <file> does not decode', count: FILES - 1 }]);
  });
});

test('a server that fails some files and accepts others is not stopped', async () => {
  await withServer(await startServer((_req, _res, index) => ({ status: index % 3 === 0 ? 200 : 404 })), async (server) => {
    const summary = await push({ inputs: [tree.root], url: server.url, concurrency: 1, ...logs() });
    assert.equal(summary.stopReason, null);
    assert.equal(server.received.length, FILES);
    assert.equal(summary.ok, Math.ceil(FILES / 3));
  });
});

test('a server whose answers differ (404 and 415) with no success yet is not stopped for them', async () => {
  await withServer(await startServer((_req, _res, index) => ({ status: index % 2 === 0 ? 404 : 415 })), async (server) => {
    const summary = await push({ inputs: [tree.root], url: server.url, concurrency: 1, ...logs() });
    assert.equal(summary.stopReason, null);
    assert.equal(server.received.length, FILES);
  });
});

test('a Retry-After longer than --retry-max-delay is capped with one warning, and the progress counts the 429 and 503 answers', async () => {
  const throttling = (_req: unknown, _res: unknown, index: number) => (index < 3 ? { status: index === 1 ? 503 : 429, headers: { 'retry-after': '120' } } : { status: 200 });
  await withServer(await startServer(throttling), async (server) => {
    const warnings: string[] = [];
    let last: Readonly<Progress> | undefined;
    const summary = await push({ inputs: [tree.path('d0/f0.jpg')], url: server.url, retryMinDelayMs: 10, retryMaxDelayMs: 100, ...logs() }, {
      onWarning: (message) => warnings.push(message),
      onProgress: (progress) => {
        last = progress;
      },
    });
    assert.equal(summary.ok, 1);
    assert.deepEqual(warnings, ['the server asked to wait 120 s (Retry-After), more than --retry-max-delay: imgpush waits 0.1 s instead']);
    assert.equal(last?.throttled, 3);
  });
});

test('until a first success at most 8 requests are in flight; after it, the whole --concurrency', { timeout: 10_000 }, async () => {
  const held: Array<() => void> = [];
  let released = false;
  const server = await startServer(async (_req, _res, index) => {
    // The first answers at once; the next are held until 12 are in flight at the same time, which a cap of 8 never allows.
    if (index > 0 && !released) {
      await new Promise<void>((resolve) => {
        held.push(resolve);
        if (held.length === 12) {
          released = true;
          for (const release of held) release();
        }
      });
    }
    return { status: 200 };
  });
  await withServer(server, async () => {
    const summary = await push({ inputs: [tree.root], url: server.url, concurrency: 16, ...logs() });
    assert.equal(summary.ok, FILES);
    assert.ok(server.maxInFlight() >= 12);
  });
});
