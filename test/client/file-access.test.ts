import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Discovery, type Discovered } from '../../src/client/discovery/discover.js';
import { FileAccess } from '../../src/client/discovery/file-access.js';
import { IMAGE_EXTENSIONS } from '../../src/shared/media-types.js';

// What statfs(2) answers for an NFS mount: its magic number.
const NFS = { type: 0x6969 };
const EXT4 = { type: 0xef53 };
const linux = process.platform === 'linux';

test('files on local storage are read synchronously: statfs of the test folder names a local file system', { skip: !linux && 'statfs types are Linux\'s' }, async () => {
  const access = new FileAccess();
  await access.onLocalStorage(tmpdir());
  assert.equal(access.synchronous, true);
});

test('a network mount sends every file call to the thread pool, before discovery makes the first one', { skip: !linux && 'statfs types are Linux\'s' }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'imgpush-nfs-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await Promise.all(['a.jpg', 'b.jpg'].map((name) => writeFile(join(root, name), 'x')));
  const asked: string[] = [];
  const access = new FileAccess({
    checkStorage: async (path) => {
      asked.push(path);
      return NFS;
    },
  });
  const found: Discovered[] = [];
  for await (const batch of new Discovery({ inputs: [root], extensions: new Set(IMAGE_EXTENSIONS), exclude: [], hidden: false, files: access }).run()) found.push(...batch);
  assert.deepEqual(found.map((item) => item.rel).sort(), ['a.jpg', 'b.jpg']);
  assert.deepEqual(asked, [root]);
  assert.equal(access.synchronous, false);
});

test('a walk asks once per device, not once per folder: a tree of folders on one disk costs one statfs', { skip: !linux && 'statfs types are Linux\'s' }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'imgpush-devices-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  for (const folder of ['a', 'a/b', 'c']) await mkdir(join(root, folder));
  await Promise.all(['a/1.jpg', 'a/b/2.jpg', 'c/3.jpg'].map((name) => writeFile(join(root, name), 'x')));
  const asked: string[] = [];
  const access = new FileAccess({
    checkStorage: async (path) => {
      asked.push(path);
      return EXT4;
    },
  });
  const found: Discovered[] = [];
  for await (const batch of new Discovery({ inputs: [root], extensions: new Set(IMAGE_EXTENSIONS), exclude: [], hidden: false, files: access }).run()) found.push(...batch);
  assert.equal(found.length, 3);
  assert.deepEqual(asked, [root]);
  assert.equal(access.synchronous, true);
});

test('a mount that never answers statfs (a server gone) is given a second, then the run goes on through the thread pool', { skip: !linux && 'statfs types are Linux\'s' }, async () => {
  const access = new FileAccess({ checkStorage: () => new Promise(() => {}) });
  const started = performance.now();
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 50);
  await access.onLocalStorage('/mnt/hung');
  clearInterval(ticker);
  const waited = performance.now() - started;
  assert.equal(access.synchronous, false);
  assert.ok(waited >= 900 && waited < 3_000, `waited ${waited} ms`);
  // The event loop ran all along: nothing waited on the mount but this call.
  assert.ok(ticks >= 10, `${ticks} ticks of 50 ms in ${waited} ms`);
});

test('a cancel gives up on file calls waiting in the thread pool, and closes a file they open after it', { skip: !linux && 'statfs types are Linux\'s' }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'imgpush-cancel-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'a.jpg'), 'x');
  const cancel = new AbortController();
  const access = new FileAccess({ checkStorage: async () => NFS, cancel: cancel.signal });
  await access.onLocalStorage(root);
  const openFiles = (): number => readdirSync('/proc/self/fd').length;
  const before = openFiles();
  // Still in the thread pool when the cancel comes, as a call on a dead mount would be for good.
  const opening = access.open(join(root, 'a.jpg'));
  cancel.abort();
  await assert.rejects(Promise.resolve(opening), { code: 'IMGPUSH_INTERRUPTED', message: /cancelled while the file's storage did not answer/ });
  await assert.rejects(Promise.resolve(access.stat(root)), { code: 'IMGPUSH_INTERRUPTED' });
  for (let waited = 0; openFiles() > before && waited < 2_000; waited += 20) await sleep(20);
  assert.equal(openFiles(), before);
});

test('twenty calls in the thread pool at once under one cancel signal: no listener warning on stderr, and a cancel still gives each up', { skip: !linux && 'statfs types are Linux\'s' }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'imgpush-many-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'a.jpg'), 'x');
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning.name);
  };
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const cancel = new AbortController();
  const access = new FileAccess({ checkStorage: async () => NFS, cancel: cancel.signal });
  await access.onLocalStorage(root);
  const calls = Array.from({ length: 20 }, () => access.stat(join(root, 'a.jpg')));
  await Promise.all(calls);
  const stuck = Array.from({ length: 20 }, () => Promise.resolve(access.stat(join(root, 'a.jpg'))).then(() => 'done', (error: { code?: string }) => error.code));
  cancel.abort();
  assert.deepEqual(new Set(await Promise.all(stuck)), new Set(['IMGPUSH_INTERRUPTED']));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(warnings, []);
});
