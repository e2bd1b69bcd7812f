import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { push, retry, type FileResult } from '../../src/client/index.js';
import { serve, type RunningServer } from '../../src/server/serve.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { runCli } from '../helpers/cli.js';

const COLORS = { red: [255, 0, 0], green: [0, 200, 0], blue: [0, 0, 255] } as const;
const batching = { maxBatch: 16, delayMs: 2, queueLimit: 256, concurrency: 1 };
let server: RunningServer;
let tree: Tree;

/** A file's line in the results log with the v2 outputs it got: its own row of each. */
type Inferred = FileResult & { response: { model_name: string; outputs: Array<{ name: string; shape: number[]; data: unknown[] }> } };

before(async () => {
  server = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 1024 * 1024, maxFiles: 8, batching, cacheSize: 0 }, () => {});
  await server.ready;
  const files: Record<string, Buffer | string> = { 'broken.png': 'not an image' };
  for (const [name, [r, g, b]] of Object.entries(COLORS)) {
    files[`${name}.png`] = await sharp({ create: { width: 32, height: 24, channels: 3, background: { r, g, b } } }).png().toBuffer();
  }
  tree = await makeTree(files);
});
after(async () => {
  await server.close();
  await tree.remove();
});

for (const filesPerRequest of [1, 4]) {
  test(`--body v2, ${filesPerRequest} per request: each image goes to /v2/models/{model}/infer as BYTES and its own labels come back; the one that is no image fails alone`, async () => {
    const logs = { out: join(tree.root, `v2-${filesPerRequest}.jsonl`), failures: join(tree.root, `v2-failures-${filesPerRequest}.jsonl`) };
    const summary = await push({ inputs: [tree.root], url: server.url, body: 'v2', model: 'builtin:colors', filesPerRequest, ...logs }, {});
    assert.equal(summary.ok, 3);
    assert.equal(summary.failed, 1);
    const results = await readJsonl<Inferred>(logs.out);
    for (const result of results.filter((line) => line.ok)) {
      assert.equal(result.url, `${server.url}/v2/models/builtin%3Acolors/infer`);
      assert.equal(result.response.model_name, 'colors');
      const label = result.response.outputs.find((output) => output.name === 'label');
      assert.equal(label?.data[0], result.rel.replace('.png', ''), `${result.rel}: ${JSON.stringify(label)}`);
      assert.equal(label?.shape.length, 1, 'a file\'s row of the [N, k] output');
    }
    const [, failed] = await readJsonl<{ rel: string; status: number; message: string }>(logs.failures);
    assert.equal(failed?.rel, 'broken.png');
    assert.equal(failed?.status, 400);
    assert.match(failed?.message ?? '', /not an image/);
  });
}

test('imgpush retry sends a v2 failure log through v2 again; with --body multipart it leaves the model out', async () => {
  const failures = join(tree.root, 'v2-down.jsonl');
  // Port 9 (discard) is closed here: every file fails at once.
  const down = await push({ inputs: [tree.root], url: 'http://127.0.0.1:9', body: 'v2', model: 'builtin:colors', retries: 0, maxOutageMs: 0, failures }, {});
  assert.equal(down.failed, 4);
  const again = await retry(failures, { url: server.url, failures: `${failures}.v2` });
  assert.deepEqual([again.ok, again.failed], [3, 1]);
  const multipart = await retry(`${failures}.v2`, { url: `${server.url}/v1/predict`, body: 'multipart', failures: `${failures}.multipart` });
  assert.equal(multipart.failed, 1, 'broken.png, sent as multipart now, still fails');
});

test('--body v2 needs --model, and --model needs --body v2', async () => {
  const without = await runCli([tree.root, '--url', server.url, '--body', 'v2']);
  assert.equal(without.code, 2);
  assert.match(without.stderr, /--body v2 needs --model/);
  const alone = await runCli([tree.root, '--url', server.url, '--model', 'builtin:colors']);
  assert.equal(alone.code, 2);
  assert.match(alone.stderr, /add --body v2/);
});
