import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { push } from '../../src/client/index.js';
import { inShard } from '../../src/client/filter/shard.js';
import { makeTree, type Tree } from '../helpers/files.js';
import { parseMultipart, startServer } from '../helpers/server.js';
import { runCli } from '../helpers/cli.js';

let tree: Tree;
const NAMES = Array.from({ length: 60 }, (_, i) => `set-${i % 3}/day-${i % 7}/frame-${i}.jpg`);

before(async () => {
  tree = await makeTree(Object.fromEntries(NAMES.map((name, i) => [name, 100 + i])));
});
after(() => tree.remove());

/** Pushes one shard and says which files the server got. */
async function pushShard(index: number, count: number, inputs: string[]): Promise<string[]> {
  const server = await startServer();
  try {
    const logs = { failures: join(tree.root, `failures-${index}-${count}.jsonl`) };
    const summary = await push({ inputs, url: `${server.url}/upload`, shard: { index, count }, ...logs });
    assert.equal(summary.failed, 0);
    assert.equal(summary.ok + (summary.shard?.otherShards ?? 0), NAMES.length, 'every file is this shard\'s or another\'s');
    return server.received.map((request) => parseMultipart(request)[0]?.filename as string);
  } finally {
    await server.close();
  }
}

test('--shard K/4: the four shares are disjoint and together are every file', async () => {
  const shares = [];
  for (let index = 1; index <= 4; index++) shares.push(await pushShard(index, 4, [tree.root]));
  const all = shares.flat();
  assert.equal(new Set(all).size, all.length, 'no file in two shares');
  assert.deepEqual(all.sort(), NAMES.map((name) => name.split('/').at(-1)).sort());
  assert.ok(shares.every((share) => share.length > 0 && share.length < NAMES.length / 2), `shares of ${shares.map((share) => share.length).join(', ')}`);
});

test('a shard holds the same files whether the tree is named as a folder or as a glob, found in another order', async () => {
  const byFolder = await pushShard(2, 3, [tree.root]);
  const byGlob = await pushShard(2, 3, [join(tree.root, '**/*.jpg')]);
  const expected = NAMES.filter((name) => inShard(name, { index: 2, count: 3 })).map((name) => name.split('/').at(-1));
  assert.ok(expected.length > 0);
  assert.deepEqual(byFolder.sort(), [...expected].sort());
  assert.deepEqual(byGlob.sort(), [...expected].sort());
});

test('an empty shard is no error, and --shard is checked at the edge', async () => {
  const one = await makeTree({ 'only.jpg': 10 });
  try {
    const results = await Promise.all([1, 2, 3, 4].map((index) => runCli([one.root, '--url', 'http://127.0.0.1:9/x', '--shard', `${index}/4`, '--dry-run', '--json'])));
    assert.ok(results.every((result) => result.code === 0), results.map((result) => result.stderr).join('\n'));
    const totals = results.map((result) => (JSON.parse(result.stdout) as { total: number }).total);
    assert.deepEqual(totals.sort(), [0, 0, 0, 1]);
  } finally {
    await one.remove();
  }
  const bad = await runCli([tree.root, '--url', 'http://127.0.0.1:9/x', '--shard', '5/4']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--shard must be K\/N with K from 1 to N \(got 5\/4\)/);
  const malformed = await runCli([tree.root, '--url', 'http://127.0.0.1:9/x', '--shard', 'half']);
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /expected K\/N/);
});
