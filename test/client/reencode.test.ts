import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { push, retry, type FileResult } from '../../src/client/index.js';
import type { FailureLogHeader, FailureRecord } from '../../src/client/logs/failure-log.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { parseMultipart, startServer, type Part, type Received, type Responder } from '../helpers/server.js';

let tree: Tree;
let sizes: Map<string, number>;

/** A noisy image, so that it does not compress to nothing. */
function noise(width: number, height: number) {
  return sharp({ create: { width, height, channels: 3, background: 'black', noise: { type: 'gaussian', mean: 128, sigma: 40 } } });
}

before(async () => {
  const files = {
    'landscape.jpg': await noise(1200, 800).jpeg({ quality: 90 }).toBuffer(),
    // Stored 1200x800, shown 800x1200: EXIF orientation 6 turns it a quarter.
    'sub/portrait.jpg': await noise(1200, 800).withMetadata({ orientation: 6 }).jpeg({ quality: 90 }).toBuffer(),
    'small.png': await noise(100, 80).png().toBuffer(),
    'broken.jpg': 'this is not an image',
  };
  tree = await makeTree(files);
  sizes = new Map(Object.entries(files).map(([rel, data]) => [rel, Buffer.byteLength(data)]));
});
after(() => tree.remove());

function logs(name: string) {
  const stamp = process.hrtime.bigint();
  return { out: join(tree.root, `${name}-results-${stamp}.jsonl`), failures: join(tree.root, `${name}-failures-${stamp}.jsonl`) };
}

function images(request: Received): Part[] {
  return parseMultipart(request).filter((part) => part.name === 'image');
}

const perFile: Responder = (req) => ({ status: 200, body: { results: images(req).map((part) => ({ name: part.filename, bytes: part.data.length })) } });

test('--resize 256 --format webp: each image arrives as WebP within 256x256, upright, smaller, named .webp; the logs keep the original path', async () => {
  const server = await startServer(perFile);
  try {
    const paths = logs('webp');
    const summary = await push({ inputs: [tree.root], url: `${server.url}/predict`, resize: 256, format: 'webp', quality: 80, ...paths });
    assert.deepEqual([summary.ok, summary.failed], [3, 1]);
    const parts = new Map(server.received.flatMap(images).map((part) => [part.filename, part]));
    assert.deepEqual([...parts.keys()].sort(), ['landscape.webp', 'portrait.webp', 'small.webp']);
    const sent = new Map<string, number>();
    for (const [rel, name] of [['landscape.jpg', 'landscape.webp'], ['sub/portrait.jpg', 'portrait.webp'], ['small.png', 'small.webp']] as const) {
      const part = parts.get(name) as Part;
      assert.equal(part.contentType, 'image/webp', name);
      const meta = await sharp(part.data).metadata();
      assert.equal(meta.format, 'webp', name);
      assert.ok(meta.width <= 256 && meta.height <= 256, `${name} is ${meta.width}x${meta.height}`);
      assert.ok(part.data.length < (sizes.get(rel) as number), `${name}: ${part.data.length} bytes sent of ${sizes.get(rel)}`);
      sent.set(rel, part.data.length);
    }
    const portrait = await sharp(parts.get('portrait.webp')?.data).metadata();
    assert.deepEqual([portrait.width, portrait.height], [171, 256], 'turned upright by its EXIF orientation');
    const small = await sharp(parts.get('small.webp')?.data).metadata();
    assert.deepEqual([small.width, small.height], [100, 80], 'never enlarged');

    const results = await readJsonl<FileResult>(paths.out);
    assert.equal(results.length, 4);
    for (const result of results.filter((r) => r.ok)) {
      assert.equal(result.path, tree.path(result.rel), 'the original path is the file\'s identity');
      assert.equal(result.size, sizes.get(result.rel), 'size: the file on disk');
      assert.equal(result.bytes, sent.get(result.rel), 'bytes: what was sent');
    }
    assert.equal(summary.bytes, [...sent.values()].reduce((sum, bytes) => sum + bytes, 0));
  } finally {
    await server.close();
  }
});

test('a file sharp cannot decode fails alone, at once, with IMGPUSH_REENCODE_FAILED and the cause', async () => {
  const server = await startServer();
  try {
    const paths = logs('broken');
    const summary = await push({ inputs: [tree.root], url: server.url, resize: 256, retries: 3, ...paths });
    assert.deepEqual([summary.ok, summary.failed], [3, 1]);
    assert.equal(server.received.length, 3, 'the undecodable file is never sent');
    const [, ...failed] = await readJsonl<FailureRecord>(paths.failures);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.rel, 'broken.jpg');
    assert.equal(failed[0]?.code, 'IMGPUSH_REENCODE_FAILED');
    assert.equal(failed[0]?.attempts, 1, 'not retried: the same bytes fail the same way');
    assert.equal(failed[0]?.message, 'could not be re-encoded (--resize, --format): Input buffer contains unsupported image format');
  } finally {
    await server.close();
  }
});

test('--resize alone keeps each format and name; with --body raw the content type is the format\'s', async () => {
  const server = await startServer();
  try {
    const summary = await push({ inputs: [tree.path('landscape.jpg'), tree.path('small.png')], url: `${server.url}/{name}`, body: 'raw', resize: 300, ...logs('raw') });
    assert.equal(summary.ok, 2);
    const byUrl = new Map(server.received.map((request) => [request.url, request]));
    const jpeg = byUrl.get('/landscape.jpg') as Received;
    assert.equal(jpeg.headers['content-type'], 'image/jpeg');
    const jpegMeta = await sharp(jpeg.body).metadata();
    assert.deepEqual([jpegMeta.format, jpegMeta.width, jpegMeta.height], ['jpeg', 300, 200]);
    const png = byUrl.get('/small.png') as Received;
    assert.equal(png.headers['content-type'], 'image/png');
    const pngMeta = await sharp(png.body).metadata();
    assert.deepEqual([pngMeta.format, pngMeta.width, pngMeta.height], ['png', 100, 80]);
  } finally {
    await server.close();
  }
});

test('--files-per-request with --resize: files are encoded, then framed; the undecodable one is left out with its reason', async () => {
  const server = await startServer(perFile);
  try {
    const paths = logs('group');
    const summary = await push({ inputs: [tree.root], url: server.url, filesPerRequest: 10, concurrency: 1, resize: 128, format: 'jpeg', ...paths });
    assert.deepEqual([summary.ok, summary.failed], [3, 1]);
    assert.equal(server.received.length, 1);
    const parts = images(server.received[0] as Received);
    assert.deepEqual(parts.map((part) => part.filename).sort(), ['landscape.jpg', 'portrait.jpg', 'small.jpg']);
    for (const part of parts) {
      assert.equal(part.contentType, 'image/jpeg');
      const meta = await sharp(part.data).metadata();
      assert.equal(meta.format, 'jpeg');
      assert.ok(Math.max(meta.width, meta.height) <= 128, `${part.filename} is ${meta.width}x${meta.height}`);
    }
    const results = await readJsonl<FileResult & { response: { name: string; bytes: number } }>(paths.out);
    for (const result of results.filter((r) => r.ok)) assert.equal(result.bytes, result.response.bytes, `${result.rel}: the bytes of its part`);
    const [, failed] = await readJsonl<FailureRecord>(paths.failures);
    assert.deepEqual([failed?.rel, failed?.code], ['broken.jpg', 'IMGPUSH_REENCODE_FAILED']);
  } finally {
    await server.close();
  }
});

test('the failure log records --resize, --format and --quality, and retry re-encodes the same way', async () => {
  const down = await startServer(() => ({ status: 500, body: 'model crashed' }));
  const paths = logs('retry');
  try {
    await push({ inputs: [tree.path('landscape.jpg')], url: down.url, resize: 64, format: 'webp', quality: 50, retries: 0, ...paths });
  } finally {
    await down.close();
  }
  const [header] = await readJsonl<FailureLogHeader>(paths.failures);
  assert.deepEqual([header?.settings.resize, header?.settings.format, header?.settings.quality], [64, 'webp', 50]);
  const up = await startServer();
  try {
    const summary = await retry(paths.failures, { url: up.url });
    assert.equal(summary.ok, 1);
    const [part] = images(up.received[0] as Received);
    const meta = await sharp(part?.data).metadata();
    assert.deepEqual([part?.filename, meta.format, meta.width], ['landscape.webp', 'webp', 64]);
  } finally {
    await up.close();
  }
});
