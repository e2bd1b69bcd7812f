import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { push } from '../../src/client/index.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { parseMultipart, startServer, type Received, type TestServer } from '../helpers/server.js';
import { runCli } from '../helpers/cli.js';

let tree: Tree;
const FILES = 300;

before(async () => {
  tree = await makeTree(Object.fromEntries(Array.from({ length: FILES }, (_, i) => [`d${i % 5}/f${i}.jpg`, 200 + i])));
});
after(() => tree.remove());

function logs(name: string) {
  const stamp = process.hrtime.bigint();
  return { out: join(tree.root, `${name}-${stamp}.jsonl`), failures: join(tree.root, `${name}-failures-${stamp}.jsonl`) };
}

const names = (server: TestServer) => server.received.map((request: Received) => parseMultipart(request)[0]?.filename);

test('several --url: uploads are spread over every server, and the summary gives each its files and latency', async () => {
  const servers = await Promise.all([startServer(), startServer(), startServer()]);
  try {
    const summary = await push({ inputs: [tree.root], url: servers.map((server) => `${server.url}/predict`), concurrency: 6, ...logs('spread') });
    assert.equal(summary.ok, FILES);
    assert.deepEqual(summary.origins.map((origin) => origin.url), servers.map((server) => `${server.url}/predict`));
    for (const [i, origin] of summary.origins.entries()) {
      assert.ok(origin.ok > FILES / 10, `server ${i} took ${origin.ok} files`);
      assert.equal(origin.ok, servers[i]?.received.length);
      assert.ok(origin.latencyMs.p50 > 0);
    }
    const all = servers.flatMap(names);
    assert.equal(new Set(all).size, FILES, 'each file sent once');
  } finally {
    await Promise.all(servers.map((server) => server.close()));
  }
});

test('one of three servers stopped mid-run: nothing is lost, the other two take its share, and no file uses up its retries on it', async () => {
  const healthy = await Promise.all([startServer(), startServer()]);
  // Slow enough that the run is still going when it stops.
  const stopping: TestServer = await startServer((_req, _res, index) => {
    if (index === 20) {
      void stopping.close();
      return 'handled';
    }
    return { status: 200, body: { ok: true }, delayMs: 2 };
  });
  const paths = logs('stopped');
  try {
    const urls = [stopping, ...healthy].map((server) => `${server.url}/predict`);
    const summary = await push({ inputs: [tree.root], url: urls, concurrency: 6, retries: 1, ...paths });
    assert.equal(summary.failed, 0, 'no file failed');
    assert.equal(summary.ok, FILES);
    const [gone, ...others] = summary.origins;
    assert.ok(gone !== undefined && gone.failedAttempts > 0, 'the stopped server\'s failures are counted');
    // It answered at most the 20 requests before the one that stopped it (an answer on its way may be cut with its socket).
    assert.ok(gone.ok > 0 && gone.ok <= 20, `it took ${gone.ok} files before it stopped`);
    assert.equal(others.reduce((sum, origin) => sum + origin.ok, 0), FILES - gone.ok);
    const results = await readJsonl<{ ok: boolean; url: string }>(paths.out);
    assert.equal(results.length, FILES);
    assert.equal(results.filter((result) => result.url.startsWith(stopping.url)).length, gone.ok, 'each result names the server that took it');
  } finally {
    await Promise.all(healthy.map((server) => server.close()));
  }
});

test('a slower server is given fewer files: each request goes to the server with the fewest in flight', async () => {
  const slow = await startServer(() => ({ status: 200, body: {}, delayMs: 20 }));
  const fast = await startServer();
  try {
    const summary = await push({ inputs: [tree.root], url: [`${slow.url}/p`, `${fast.url}/p`], concurrency: 4, ...logs('slow') });
    assert.equal(summary.ok, FILES);
    assert.ok(fast.received.length > slow.received.length * 2, `fast ${fast.received.length}, slow ${slow.received.length}`);
  } finally {
    await Promise.all([slow.close(), fast.close()]);
  }
});

test('--url repeated on the command line; the same server twice is a usage error', async () => {
  const a = await startServer();
  const b = await startServer();
  try {
    const run = await runCli([tree.root, '--url', `${a.url}/p`, '--url', `${b.url}/p`, '--json', ...Object.entries(logs('cli')).flatMap(([flag, path]) => [flag === 'out' ? '-o' : '--failures', path])]);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as { ok: number; origins: Array<{ ok: number }> };
    assert.equal(summary.ok, FILES);
    assert.equal(summary.origins.length, 2);
    assert.equal(a.received.length + b.received.length, FILES);
    const twice = await runCli([tree.root, '--url', `${a.url}/p`, '--url', `${a.url}/q`]);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /--url names the same server twice/);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
