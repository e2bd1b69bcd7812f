import assert from 'node:assert/strict';
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { push, type Progress } from '../../src/client/index.js';
import { countAhead } from '../../src/client/discovery/count-ahead.js';
import { makeTree, type Tree } from '../helpers/files.js';
import { startServer } from '../helpers/server.js';

const FILES = 1_200;
let tree: Tree;

before(async () => {
  tree = await makeTree(Object.fromEntries(Array.from({ length: FILES }, (_, i) => [`d${i % 7}/e${i % 5}/f${i}.jpg`, 10])));
});
after(() => tree.remove());

test('the count ahead knows the whole tree\'s total while discovery is still a few hundred files in', async () => {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const server = await startServer(async () => {
    await held;
    return { status: 200 };
  });
  let progress: Readonly<Progress> | undefined;
  const stop = new AbortController();
  try {
    const run = push({ inputs: [tree.root], url: server.url, concurrency: 1, failures: join(tree.root, 'failures.jsonl') }, {
      signal: stop.signal,
      onProgress: (live) => {
        progress = live;
      },
    });
    // The run's live counters, read until the count is done: uploads are held, so discovery cannot run far.
    while (progress?.expectedKnown !== true) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(progress.expected, FILES);
    assert.ok(progress.discovered < FILES / 2, `${progress.discovered} found`);
    // Seen: the rest of the run would only take time.
    stop.abort();
    release();
    const summary = await run;
    assert.equal(summary.total, FILES);
  } finally {
    release();
    await server.close();
  }
});

test('the count ahead finds what discovery finds: hidden, excluded and other files left out, a link to a folder above walked once', async () => {
  const mixed = await makeTree({
    'a.jpg': 1, 'b.PNG': 1, 'notes.txt': 1, '.hidden.jpg': 1, '.dot/c.jpg': 1, 'tmp/d.jpg': 1, 'sub/e.webp': 1, 'sub/skip.tmp.jpg': 1, 'sub/deep/f.gif': 1,
  });
  try {
    await symlink(mixed.root, mixed.path('sub/loop'));
    await symlink(mixed.path('missing.jpg'), mixed.path('sub/broken.jpg'));
    const options = { inputs: [mixed.root], exclude: ['tmp', '*.tmp.jpg'], hidden: false };
    const found = await push({ ...options, url: 'http://127.0.0.1:9', dryRun: true });
    const sink = { expected: 0, expectedKnown: false };
    await countAhead({ ...options, listed: undefined, extensions: new Set(['jpg', 'png', 'webp', 'gif']) }, sink, new AbortController().signal);
    assert.equal(sink.expectedKnown, true);
    assert.equal(sink.expected, found.total);
    assert.equal(sink.expected, 5);
  } finally {
    await mixed.remove();
  }
});

test('a glob or a list of paths is not counted ahead: the total grows with discovery', async () => {
  const sink = { expected: 0, expectedKnown: false };
  await countAhead({ inputs: [join(tree.root, '**/*.jpg')], listed: undefined, extensions: null, exclude: [], hidden: false }, sink, new AbortController().signal);
  assert.equal(sink.expectedKnown, false);
  await countAhead({ inputs: [], listed: [], extensions: null, exclude: [], hidden: false }, sink, new AbortController().signal);
  assert.equal(sink.expectedKnown, false);
});
