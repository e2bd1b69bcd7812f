import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { push, retry, type FileResult } from '../../src/client/index.js';
import type { FailureRecord } from '../../src/client/logs/failure-log.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { parseMultipart, sha256, startServer, type Received, type Responder } from '../helpers/server.js';

let tree: Tree;
/** Ten files of different sizes, 1 000 to about 10 000 bytes. */
const SIZES = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`f${i}.jpg`, 1000 + i * 1000]));

before(async () => {
  tree = await makeTree(SIZES);
});
after(() => tree.remove());

function logs(name: string) {
  const stamp = process.hrtime.bigint();
  return { out: join(tree.root, `${name}-results-${stamp}.jsonl`), failures: join(tree.root, `${name}-failures-${stamp}.jsonl`) };
}

/** The image parts of a request. */
function files(request: Received) {
  return parseMultipart(request).filter((part) => part.name === 'image');
}

/** Answers as the reference server does: a list with one entry per file, in order. */
const perFile: Responder = (req) => ({ status: 200, body: { model: 'test', results: files(req).map((part) => ({ name: part.filename, sha256: sha256(part.data) })) } });

test('--files-per-request 4 packs 10 files into 4 + 4 + 2, the form fields once, and gives each file its own answer', async () => {
  const server = await startServer(perFile);
  try {
    const paths = logs('pack');
    const summary = await push({ inputs: [tree.root], url: `${server.url}/predict`, filesPerRequest: 4, form: [['top_k', '1']], concurrency: 1, ...paths });
    assert.equal(summary.ok, 10);
    assert.deepEqual(server.received.map((request) => files(request).length).sort(), [2, 4, 4]);
    for (const request of server.received) {
      const parts = parseMultipart(request);
      assert.deepEqual(parts.filter((part) => part.name !== 'image').map((part) => part.name), ['top_k']);
      assert.equal(parts[0]?.name, 'top_k');
      for (const part of files(request)) assert.equal(sha256(part.data), tree.hashes.get(part.filename as string), part.filename);
    }
    const results = await readJsonl<FileResult & { response: { name: string; sha256: string } }>(paths.out);
    assert.equal(results.length, 10);
    for (const result of results) {
      assert.equal(result.ok, true);
      assert.equal(result.response.name, result.rel, 'each file gets its own entry of the list');
      assert.equal(result.response.sha256, tree.hashes.get(result.rel));
      assert.equal(result.bytes, SIZES[result.rel]);
    }
  } finally {
    await server.close();
  }
});

test('--max-request-bytes caps the file bytes of a request; a file over the cap goes alone', async () => {
  const server = await startServer(perFile);
  try {
    const cap = 12_000;
    const summary = await push({ inputs: [tree.root], url: `${server.url}/predict`, filesPerRequest: 10, maxRequestBytes: cap, ...logs('cap') });
    assert.equal(summary.ok, 10);
    const sent = server.received.flatMap((request) => {
      const parts = files(request);
      const bytes = parts.reduce((sum, part) => sum + part.data.length, 0);
      assert.ok(parts.length === 1 || bytes <= cap, `${parts.length} files of ${bytes} bytes in one request`);
      return parts.map((part) => part.filename);
    });
    assert.deepEqual(sent.sort(), Object.keys(SIZES).sort(), 'every file sent once');
    assert.ok(server.received.length < 10, 'files were packed');
  } finally {
    await server.close();
  }
});

test('a failed request sends each of its files to the failure log with its error, and retry re-sends them packed', async () => {
  const down = await startServer(() => ({ status: 500, body: { error: { message: 'model crashed' } } }));
  const paths = logs('fail');
  try {
    const summary = await push({ inputs: [tree.root], url: `${down.url}/predict`, filesPerRequest: 5, retries: 0, ...paths });
    assert.equal(summary.failed, 10);
    assert.equal(down.received.length, 2);
  } finally {
    await down.close();
  }
  const [header, ...failed] = await readJsonl<FailureRecord & { settings?: { filesPerRequest: number } }>(paths.failures);
  assert.equal(header?.settings?.filesPerRequest, 5);
  assert.equal(failed.length, 10);
  for (const record of failed) {
    assert.equal(record.status, 500);
    assert.match(record.message, /model crashed/);
  }
  const up = await startServer(perFile);
  try {
    const summary = await retry(paths.failures, { url: `${up.url}/predict`, out: paths.out, failures: `${paths.failures}.again` });
    assert.equal(summary.ok, 10);
    assert.deepEqual(up.received.map((request) => files(request).length), [5, 5]);
  } finally {
    await up.close();
  }
});

test('a request refused for one bad file (422) is sent again file by file: only that file fails', async () => {
  const bad = await makeTree({ 'ok1.jpg': 500, 'broken.jpg': 'not an image at all', 'ok2.jpg': 700 });
  const server = await startServer((req) => (files(req).some((part) => part.data.toString().startsWith('not an image'))
    ? { status: 422, body: { error: { code: 'UNDECODABLE', message: 'an image does not decode' } } }
    : perFile(req, undefined as never, 0)));
  try {
    const paths = { out: join(bad.root, 'results.jsonl'), failures: join(bad.root, 'failures.jsonl') };
    const summary = await push({ inputs: [bad.root], url: `${server.url}/predict`, filesPerRequest: 3, ...paths });
    assert.equal(summary.ok, 2);
    assert.equal(summary.failed, 1);
    assert.deepEqual(server.received.map((request) => files(request).length), [3, 1, 1, 1]);
    const [, failed] = await readJsonl<FailureRecord>(paths.failures);
    assert.equal(failed?.rel, 'broken.jpg');
    assert.equal(failed?.status, 422);
  } finally {
    await server.close();
    await bad.remove();
  }
});

test('--files-per-request refuses a raw body and per-file URL placeholders, naming the flag', async () => {
  await assert.rejects(push({ inputs: [tree.root], url: 'http://127.0.0.1:9/x', filesPerRequest: 2, body: 'raw' }), /--files-per-request needs --body multipart/);
  await assert.rejects(push({ inputs: [tree.root], url: 'http://127.0.0.1:9/{name}', filesPerRequest: 2 }), /placeholders in --url/);
  await assert.rejects(push({ inputs: [tree.root], url: 'http://127.0.0.1:9/x', filesPerRequest: 0 }), /--files-per-request must be a whole number from 1/);
});
