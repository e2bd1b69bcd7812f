import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { push, UsageError } from '../../src/client/index.js';
import { makeTree, type Tree } from '../helpers/files.js';

let tree: Tree;

before(async () => {
  tree = await makeTree({ 'a.jpg': 10 });
});
after(() => tree.remove());

test('a glob that matches nothing is a usage error that names the glob, not --ext', async () => {
  const glob = join(tree.root, '*.png');
  await assert.rejects(push({ inputs: [glob], url: 'http://127.0.0.1:9/' }), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.code, 'IMGPUSH_NOTHING_FOUND');
    assert.equal(error.message, `nothing to upload: no file matches ${glob}`);
    return true;
  });
});
