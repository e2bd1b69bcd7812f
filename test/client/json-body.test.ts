import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { push, retry, UsageError } from '../../src/client/index.js';
import type { FailureLogHeader } from '../../src/client/logs/failure-log.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { sha256, startServer, type Received } from '../helpers/server.js';

let tree: Tree;
/** Over the 1 MiB stream threshold, and not a multiple of 3: the base64 ends in padding. */
const LARGE = 3 * 1024 * 1024 + 1;

before(async () => {
  tree = await makeTree({ 'small.jpg': 10_000, 'sub/q"uo\\te.jpg': LARGE, 'photo.jpg': await sharp({ create: { width: 640, height: 480, channels: 3, background: 'teal' } }).jpeg().toBuffer() });
});
after(() => tree.remove());

function logs(name: string) {
  const stamp = process.hrtime.bigint();
  return { out: join(tree.root, `${name}-results-${stamp}.jsonl`), failures: join(tree.root, `${name}-failures-${stamp}.jsonl`) };
}

function json(request: Received): Record<string, unknown> {
  return JSON.parse(request.body.toString('utf8')) as Record<string, unknown>;
}

test('--body json: the default template carries the file as base64 that decodes to its exact bytes, and its name', async () => {
  const server = await startServer();
  try {
    const summary = await push({ inputs: [tree.path('small.jpg')], url: `${server.url}/v1/predict`, body: 'json', ...logs('default') });
    assert.equal(summary.ok, 1);
    const request = server.received[0] as Received;
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(Number(request.headers['content-length']), request.size);
    const body = json(request);
    assert.deepEqual(Object.keys(body), ['image', 'name']);
    assert.equal(body.name, 'small.jpg');
    assert.equal(sha256(Buffer.from(body.image as string, 'base64')), tree.hashes.get('small.jpg'));
    assert.equal(summary.bytes, 10_000, 'bytes: the file\'s, not its base64');
  } finally {
    await server.close();
  }
});

test('a file above 1 MiB is streamed into the template with a computed Content-Length; names are escaped inside their strings', async () => {
  const server = await startServer();
  try {
    const template = '{"instances": [{"b64": "{base64}"}], "meta": {"file": "{name}", "at": "{path}", "stem": "{stem}", "ext": "{ext}"}}';
    const summary = await push({ inputs: [tree.root], url: server.url, body: 'json', template, ...logs('large') });
    assert.equal(summary.ok, 3);
    const request = server.received.find((r) => r.size > LARGE) as Received;
    assert.equal(Number(request.headers['content-length']), request.size, 'Content-Length is the body\'s length');
    const body = json(request) as { instances: Array<{ b64: string }>; meta: Record<string, string> };
    assert.equal(body.instances[0]?.b64.length, 4 * Math.ceil(LARGE / 3));
    assert.equal(sha256(Buffer.from(body.instances[0]?.b64 as string, 'base64')), tree.hashes.get('sub/q"uo\\te.jpg'));
    assert.deepEqual(body.meta, { file: 'q"uo\\te.jpg', at: 'sub/q"uo\\te.jpg', stem: 'q"uo\\te', ext: 'jpg' });
  } finally {
    await server.close();
  }
});

test('-H Content-Type replaces application/json; the results log says the file\'s bytes', async () => {
  const server = await startServer();
  try {
    const paths = logs('type');
    await push({ inputs: [tree.path('small.jpg')], url: server.url, body: 'json', headers: { 'Content-Type': 'application/vnd.api+json' }, ...paths });
    assert.equal(server.received[0]?.headers['content-type'], 'application/vnd.api+json');
    const [result] = await readJsonl<{ bytes: number; size: number }>(paths.out);
    assert.deepEqual([result?.bytes, result?.size], [10_000, 10_000]);
  } finally {
    await server.close();
  }
});

test('--body json with --resize --format webp: the base64 is the WebP, and {name} its new name', async () => {
  const server = await startServer();
  try {
    const summary = await push({ inputs: [tree.path('photo.jpg')], url: server.url, body: 'json', resize: 100, format: 'webp', ...logs('webp') });
    assert.equal(summary.ok, 1);
    const body = json(server.received[0] as Received);
    assert.equal(body.name, 'photo.webp');
    const meta = await sharp(Buffer.from(body.image as string, 'base64')).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 100, 75]);
  } finally {
    await server.close();
  }
});

test('the failure log records the template, and retry sends the same JSON body', async () => {
  const down = await startServer(() => ({ status: 500, body: 'down' }));
  const paths = logs('retry');
  const template = '{"data": {"image": "data:image/jpeg;base64,{base64}"}}';
  try {
    await push({ inputs: [tree.path('small.jpg')], url: down.url, body: 'json', template, retries: 0, ...paths });
  } finally {
    await down.close();
  }
  const [header] = await readJsonl<FailureLogHeader>(paths.failures);
  assert.deepEqual([header?.settings.body, header?.settings.template], ['json', template]);
  const up = await startServer();
  try {
    const summary = await retry(paths.failures, { url: up.url });
    assert.equal(summary.ok, 1);
    const body = json(up.received[0] as Received) as { data: { image: string } };
    const [prefix, base64] = body.data.image.split(',') as [string, string];
    assert.equal(prefix, 'data:image/jpeg;base64');
    assert.equal(sha256(Buffer.from(base64, 'base64')), tree.hashes.get('small.jpg'));
  } finally {
    await up.close();
  }
});

test('a retry with another --body leaves the recorded template out', async () => {
  const down = await startServer(() => ({ status: 500, body: 'down' }));
  const paths = logs('switch');
  try {
    await push({ inputs: [tree.path('small.jpg')], url: down.url, body: 'json', template: '{"x": "{base64}"}', retries: 0, ...paths });
  } finally {
    await down.close();
  }
  const up = await startServer();
  try {
    const summary = await retry(paths.failures, { url: up.url, body: 'raw' });
    assert.equal(summary.ok, 1);
    assert.equal(up.received[0]?.sha256, tree.hashes.get('small.jpg'));
  } finally {
    await up.close();
  }
});

test('bad templates and flags that do not go with --body json are usage errors naming the flag', async () => {
  const base = { inputs: [tree.path('small.jpg')], url: 'http://127.0.0.1:9/x' };
  const cases: Array<[Parameters<typeof push>[0], RegExp]> = [
    [{ ...base, body: 'json', template: '{"image": "{base64}"' }, /^--template is not valid JSON once its placeholders are filled: /],
    [{ ...base, body: 'json', template: '{"image": "x"}' }, /^--template must hold \{base64\}, where the file's bytes go/],
    [{ ...base, body: 'json', template: '{"a": "{base64}", "b": "{base64}"}' }, /^--template holds \{base64\} 2 times: a body holds the file once/],
    [{ ...base, body: 'json', template: '{"image": {base64}}' }, /^--template has \{base64\} outside a JSON string: placeholders go inside quotes/],
    [{ ...base, body: 'json', template: '{"image": "{base64}", "n": {name}}' }, /^--template has \{name\} outside a JSON string/],
    [{ ...base, body: 'json', template: '{"image": "{base64}", "n": "{size}"}' }, /^--template has an unknown placeholder \{size\}; known ones are \{base64\}, \{name\}, \{path\}, \{stem\}, \{ext\}/],
    [{ ...base, template: '{"image": "{base64}"}' }, /^--template is the body of --body json: add --body json/],
    [{ ...base, body: 'json', form: { k: 'v' } }, /^--form adds multipart fields: with --body json, put them in --template/],
    [{ ...base, body: 'json', filesPerRequest: 4 }, /^--files-per-request needs --body multipart: a json body holds one file/],
  ];
  for (const [options, message] of cases) {
    await assert.rejects(push(options), (error: unknown) => {
      assert.ok(error instanceof UsageError, String(error));
      assert.match(error.message, message);
      return true;
    }, JSON.stringify(options));
  }
});
