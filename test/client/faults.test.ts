import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { push, retry, type FileResult } from '../../src/client/index.js';
import type { FailureRecord } from '../../src/client/logs/failure-log.js';
import { startChaosServer } from '../helpers/chaos-server.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { startServer } from '../helpers/server.js';

const FILES = 120;
let tree: Tree;

before(async () => {
  tree = await makeTree(Object.fromEntries(Array.from({ length: FILES }, (_, i) => [`d${i % 4}/f${i}.jpg`, 500 + i * 97])));
});
after(() => tree.remove());

const fast = { retryMinDelayMs: 1, retryMaxDelayMs: 20 };
const nameOf = (path: string) => path.slice(path.lastIndexOf('/') + 1);

for (const seed of [1, 2, 3]) {
  test(`seed ${seed}: 503, 429, cut connections and slow answers: each file ends in one place, and retry gets every file in intact`, async () => {
    const server = await startChaosServer(seed, { ok: 50, slow: 10, '503': 15, '429': 10, cut: 15 });
    const logs = { out: join(tree.root, `results-${seed}.jsonl`), failures: join(tree.root, `failures-${seed}.jsonl`) };
    try {
      const summary = await push({ inputs: [tree.root], url: server.url, concurrency: 6, retries: 1, ...fast, ...logs });
      const results = await readJsonl<FileResult>(logs.out);
      const failures = summary.failuresFile === null ? [] : (await readJsonl<FailureRecord>(logs.failures)).slice(1);

      // Every file in exactly one place.
      assert.equal(results.length, FILES);
      assert.equal(new Set(results.map((r) => r.path)).size, FILES);
      const okPaths = new Set(results.filter((r) => r.ok).map((r) => r.path));
      const failedPaths = new Set(failures.map((f) => f.path));
      assert.equal(okPaths.size + failedPaths.size, FILES);
      assert.ok([...failedPaths].every((path) => !okPaths.has(path)));
      // Every file the server answered 200 is uploaded in the results log.
      for (const name of server.accepted.keys()) assert.ok([...okPaths].some((p) => nameOf(p) === name), `${name} was accepted`);
      // No file was received more often than it was attempted.
      const attempts = new Map(results.map((r) => [nameOf(r.path), r.attempts]));
      for (const [name, count] of server.receptions) assert.ok(count <= (attempts.get(name) ?? 0), `${name}: ${count} receptions`);

      server.heal();
      if (summary.failuresFile !== null) {
        const again = await retry(logs.failures, { ...fast, out: join(tree.root, `again-${seed}.jsonl`) });
        assert.equal(again.failed, 0);
      }
      // The server now holds every file, byte for byte.
      for (const [rel, hash] of tree.hashes) assert.equal(server.accepted.get(nameOf(rel)), hash, rel);
    } finally {
      await server.close();
    }
  });
}

test('the server stops mid-run and comes back: uploads pause instead of failing, and every file goes in', async () => {
  const server = await startServer(() => ({ status: 200, delayMs: 1 }));
  const warnings: string[] = [];
  let restarted: Promise<void> | undefined;
  try {
    const summary = await push({ inputs: [tree.root], url: server.url, concurrency: 6, retries: 2, retryMinDelayMs: 5, retryMaxDelayMs: 200, failures: join(tree.root, 'pause-failures.jsonl') }, {
      onWarning: (message) => warnings.push(message),
      onResult: (result) => {
        if (result.ok && restarted === undefined && server.received.length >= 30) {
          // Down for a second: far longer than three quick retries of every file in flight.
          restarted = server.close().then(() => delay(1000)).then(() => server.restart());
        }
      },
    });
    assert.equal(summary.failed, 0, JSON.stringify(summary));
    assert.equal(summary.ok, FILES);
    assert.ok(warnings.some((w) => /uploads pause/.test(w)), warnings.join('\n'));
    assert.ok(warnings.some((w) => /uploads resume/.test(w)), warnings.join('\n'));
  } finally {
    await restarted;
    await server.close();
  }
});

test('a server that stays down past --max-outage ends the run, with every file not sent in the failure log', async () => {
  const server = await startServer();
  const logs = { out: join(tree.root, 'outage-results.jsonl'), failures: join(tree.root, 'outage-failures.jsonl') };
  let closing = false;
  const summary = await push({ inputs: [tree.root], url: server.url, concurrency: 2, retries: 2, retryMinDelayMs: 5, retryMaxDelayMs: 50, maxOutageMs: 300, ...logs }, {
    onResult: () => {
      if (!closing && server.received.length >= 10) {
        closing = true;
        void server.close();
      }
    },
  });
  assert.match(summary.stopReason ?? '', /the server did not answer for \d+ s \(--max-outage\)/);
  const [, ...failures] = await readJsonl<FailureRecord>(logs.failures);
  assert.equal(summary.ok + failures.length, FILES);
  assert.ok(summary.ok >= 10);
});
