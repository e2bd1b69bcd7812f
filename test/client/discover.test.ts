import assert from 'node:assert/strict';
import { symlink } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';
import { UsageError } from '../../src/shared/errors.js';
import { Discovery, type Discovered, type DiscoveryOptions } from '../../src/client/discovery/discover.js';
import { assertInputsExist } from '../../src/client/discovery/inputs.js';
import { IMAGE_EXTENSIONS } from '../../src/shared/media-types.js';
import { makeTree, type Tree } from '../helpers/files.js';

let tree: Tree;

before(async () => {
  tree = await makeTree({
    'a.jpg': 10,
    'b.PNG': 10,
    'notes.txt': 5,
    'sub/c.jpeg': 10,
    'sub/deep/d.webp': 10,
    'sub/deep/e.HEIC': 10,
    '.hidden.jpg': 10,
    '.cache/f.jpg': 10,
    'thumbs/t.jpg': 10,
  });
});
after(() => tree.remove());

function options(overrides: Partial<DiscoveryOptions>): DiscoveryOptions {
  return { inputs: [], extensions: new Set(IMAGE_EXTENSIONS), exclude: [], hidden: false, ...overrides };
}

async function all(overrides: Partial<DiscoveryOptions>): Promise<Discovered[]> {
  const found: Discovered[] = [];
  for await (const batch of new Discovery(options(overrides)).run()) found.push(...batch);
  return found;
}

const rels = (items: Discovered[], kind = 'file') => items.filter((i) => i.kind === kind).map((i) => i.rel).sort();

test('a folder is walked recursively for image extensions in any case, hidden names left out', async () => {
  assert.deepEqual(rels(await all({ inputs: [tree.root] })), ['a.jpg', 'b.PNG', 'sub/c.jpeg', 'sub/deep/d.webp', 'sub/deep/e.HEIC', 'thumbs/t.jpg']);
});

test('--hidden takes dot files and dot folders too', async () => {
  const found = rels(await all({ inputs: [tree.root], hidden: true }));
  assert.ok(found.includes('.hidden.jpg') && found.includes('.cache/f.jpg'), found.join());
});

test('--ext changes the filter; all takes every file', async () => {
  assert.deepEqual(rels(await all({ inputs: [tree.root], extensions: new Set(['txt']) })), ['notes.txt']);
  assert.equal(rels(await all({ inputs: [tree.root], extensions: null })).length, 7);
});

test('--exclude prunes by name or by path under the root', async () => {
  assert.deepEqual(rels(await all({ inputs: [tree.root], exclude: ['thumbs', '*.PNG', 'sub/deep/**'] })), ['a.jpg', 'sub/c.jpeg']);
});

test('a glob pattern matches under its base, and {path} is relative to that base', async () => {
  const found = await all({ inputs: [`${tree.root}/sub/**/*.webp`, `${tree.root}/*.jpg`] });
  assert.deepEqual(rels(found), ['a.jpg', 'deep/d.webp']);
});

test('a file named twice through overlapping inputs is found once', async () => {
  const found = await all({ inputs: [tree.path('sub'), tree.root, tree.path('a.jpg'), `${tree.root}/**/*.jpg`] });
  const paths = found.map((i) => i.path);
  assert.equal(new Set(paths).size, paths.length, 'no path twice');
  assert.equal(found.length, 6);
});

test('a symlink loop ends, and a symlinked file is sent once, under the first name found', async () => {
  const looped = await makeTree({ 'x/one.jpg': 4, 'x/y/two.jpg': 4 });
  try {
    await symlink('../..', looped.path('x/y/up'));
    await symlink('../x', looped.path('x/self'));
    await symlink('one.jpg', looped.path('x/alias.jpg'));
    const found = await all({ inputs: [looped.root, `${looped.root}/**/*.jpg`] });
    const names = rels(found);
    assert.equal(names.length, 2, names.join());
    assert.ok(names.includes('x/y/two.jpg'));
    assert.ok(names.includes('x/one.jpg') || names.includes('x/alias.jpg'));
  } finally {
    await looped.remove();
  }
});

test('a broken symlink and a named pipe are failures with their reason, not silence', async () => {
  const odd = await makeTree({ 'ok.jpg': 4 });
  try {
    await symlink('gone.jpg', odd.path('dangling.jpg'));
    await promisify(execFile)('mkfifo', [odd.path('pipe.jpg')]);
    const found = await all({ inputs: [odd.root, odd.path('pipe.jpg')] });
    const failed = found.filter((i) => i.kind === 'failed');
    assert.deepEqual(rels(found), ['ok.jpg']);
    assert.deepEqual(failed.map((i) => [i.rel, i.kind === 'failed' ? i.error.code : '']).sort(), [
      ['dangling.jpg', 'IMGPUSH_BROKEN_LINK'],
      ['pipe.jpg', 'IMGPUSH_NOT_A_FILE'],
    ]);
  } finally {
    await odd.remove();
  }
});

test('listed paths are sent whatever their extension; a missing one is a failure; a listed folder is walked', async () => {
  async function* list() {
    yield tree.path('notes.txt');
    yield { path: tree.path('nope.jpg'), rel: 'kept/rel.jpg' };
    yield tree.path('sub');
  }
  const found = await all({ listed: list() });
  const files = found.filter((i) => i.kind === 'file').map((i) => i.path).sort();
  assert.deepEqual(files, [tree.path('notes.txt'), tree.path('sub/c.jpeg'), tree.path('sub/deep/d.webp'), tree.path('sub/deep/e.HEIC')].sort());
  const missing = found.find((i) => i.kind === 'failed');
  assert.equal(missing?.rel, 'kept/rel.jpg');
  assert.equal(missing?.kind === 'failed' && missing.error.code, 'ENOENT');
});

test('a named file that matches --exclude is skipped with its reason', async () => {
  const found = await all({ inputs: [tree.path('a.jpg')], exclude: ['a.*'] });
  assert.equal(found.length, 1);
  assert.equal(found[0]?.kind, 'skipped');
});

test('a missing input on the command line is a usage error; a glob that matches nothing is not', async () => {
  await assert.rejects(assertInputsExist([tree.path('missing')]), (error: unknown) => error instanceof UsageError && /does not exist/.test(error.message));
  await assertInputsExist([`${tree.root}/*.none`]);
});

test('a discovery cut short says what it had not finished: the folder being read, the folders left, the inputs not started', async () => {
  const deep = await makeTree(Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`d${i % 3}/f${i}.jpg`, 1])));
  try {
    const discovery = new Discovery(options({ inputs: [deep.root, tree.path('a.jpg'), `${tree.root}/*.png`] }));
    const run = discovery.run();
    const first = await run.next();
    assert.equal(first.done, false);
    const { paths, listCutShort } = discovery.unfinished();
    assert.equal(listCutShort, false);
    const folders = paths.filter((p) => p.path.startsWith(deep.root)).map((p) => p.rel).sort();
    assert.ok(folders.length >= 3, `the folder being read and those left: ${folders.join()}`);
    assert.deepEqual(paths.slice(-2), [{ path: tree.path('a.jpg'), rel: '' }, { path: `${tree.root}/*.png`, rel: '' }]);
    await run.return(undefined);
  } finally {
    await deep.remove();
  }
});
