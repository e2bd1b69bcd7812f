import assert from 'node:assert/strict';
import { cp, mkdir, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { makeTree, type Tree } from '../helpers/files.js';
import { runCli } from '../helpers/cli.js';
import { startServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
let tree: Tree;

before(async () => {
  tree = await makeTree({ 'a.jpg': 300 });
});
after(() => tree.remove());

/**
 * imgpush as installed without its optional sharp: the built CLI, and every
 * package of node_modules but sharp, linked.
 */
async function installWithoutSharp(): Promise<Tree> {
  const install = await makeTree({});
  await cp(join(ROOT, 'bin'), install.path('bin'), { recursive: true });
  await cp(join(ROOT, 'dist'), install.path('dist'), { recursive: true });
  await cp(join(ROOT, 'package.json'), install.path('package.json'));
  await mkdir(install.path('node_modules'));
  for (const name of await readdir(join(ROOT, 'node_modules'))) {
    if (name !== 'sharp' && !name.startsWith('.')) await symlink(join(ROOT, 'node_modules', name), install.path(join('node_modules', name)));
  }
  return install;
}

test('without sharp installed: --help and plain runs work; --resize is a one-line usage error naming what to install, before anything is sent', async () => {
  const install = await installWithoutSharp();
  const server = await startServer();
  try {
    const bin = install.path('bin/imgpush');
    const help = await runCli(['--help'], { bin });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /--resize <max>/);

    const plain = await runCli([tree.root, '--url', server.url, '--body', 'json'], { bin, cwd: install.root });
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(server.received.length, 1);

    const resized = await runCli([tree.root, '--url', server.url, '--resize', '512'], { bin, cwd: install.root });
    assert.equal(resized.code, 2);
    assert.equal(resized.stderr, 'imgpush: --resize, --format and --quality need sharp, which is not installed: npm install sharp (npm install -g sharp next to a global imgpush)\n');
    assert.equal(server.received.length, 1, 'nothing more was sent');
  } finally {
    await server.close();
    await install.remove();
  }
});
