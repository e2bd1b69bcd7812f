import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open, rm, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { push, retry, type FileResult, type Progress } from '../../src/client/index.js';
import type { FailureRecord } from '../../src/client/logs/failure-log.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { parseMultipart, sha256, startServer, type TestServer } from '../helpers/server.js';

let tree: Tree;
const NAMES = ['a.jpg', 'b.png', 'sub/c.webp', 'sub/deep/d e.jpeg', 'sub/deep/ü.gif'];

before(async () => {
  tree = await makeTree(Object.fromEntries(NAMES.map((name, i) => [name, 1000 + i * 7919])));
});
after(() => tree.remove());

function logsIn(dir: string) {
  return { out: join(dir, `results-${process.hrtime.bigint()}.jsonl`), failures: join(dir, `failures-${process.hrtime.bigint()}.jsonl`) };
}

async function withServer<T>(server: TestServer, body: (server: TestServer) => Promise<T>): Promise<T> {
  try {
    return await body(server);
  } finally {
    await server.close();
  }
}

test('multipart: each file arrives byte for byte in field "image", with its name, type and the extra fields first', async () => {
  await withServer(await startServer(), async (server) => {
    const summary = await push({ inputs: [tree.root], url: `${server.url}/predict`, form: [['model', 'colors'], ['top_k', '3']], ...logsIn(tree.root) });
    assert.equal(summary.ok, NAMES.length);
    assert.equal(server.received.length, NAMES.length);
    const byName = new Map<string, string>();
    for (const request of server.received) {
      assert.equal(request.method, 'POST');
      assert.equal(request.url, '/predict');
      const parts = parseMultipart(request);
      assert.deepEqual(parts.map((p) => p.name), ['model', 'top_k', 'image']);
      assert.equal(parts[0]?.data.toString(), 'colors');
      const file = parts[2]!;
      byName.set(file.filename!, sha256(file.data));
      assert.match(file.contentType ?? '', /^image\/(jpeg|png|webp|gif)$/);
      assert.equal(Number(request.headers['content-length']), request.size);
    }
    for (const name of NAMES) assert.equal(byName.get(basename(name)), tree.hashes.get(name), name);
    assert.equal(summary.bytes, [...NAMES].reduce((sum, _, i) => sum + 1000 + i * 7919, 0));
  });
});

test('raw PUT to {path} recreates the tree, each body the file itself with its content type', async () => {
  await withServer(await startServer((req) => ({ status: 201, body: { stored: req.url } })), async (server) => {
    const summary = await push({ inputs: [tree.root], url: `${server.url}/bucket/{path}`, method: 'PUT', body: 'raw', ...logsIn(tree.root) });
    assert.equal(summary.ok, NAMES.length);
    const stored = new Map(server.received.map((r) => [decodeURIComponent(r.url), r]));
    for (const name of NAMES) {
      const request = stored.get(`/bucket/${name}`);
      assert.ok(request, `${name} was stored`);
      assert.equal(request.method, 'PUT');
      assert.equal(request.sha256, tree.hashes.get(name));
    }
    assert.equal(stored.get('/bucket/a.jpg')?.headers['content-type'], 'image/jpeg');
  });
});

test('the server never sees more than --concurrency requests in flight, nor more connections', async () => {
  const many = await makeTree(Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`f${i}.jpg`, 64])));
  try {
    await withServer(await startServer(() => ({ status: 200, delayMs: 5 })), async (server) => {
      const summary = await push({ inputs: [many.root], url: server.url, concurrency: 3, ...logsIn(many.root) });
      assert.equal(summary.ok, 60);
      assert.ok(server.maxInFlight() <= 3, `max in flight ${server.maxInFlight()}`);
      assert.ok(new Set(server.received.map((r) => r.remotePort)).size <= 3, 'at most 3 sockets');
    });
  } finally {
    await many.remove();
  }
});

test('results and failure logs list every file exactly once; only failures are in the failure log', async () => {
  const respond = (req: { body: Buffer }) => (req.body.includes('filename="b.png"') || req.body.includes('filename="c.webp"')
    ? { status: 400, body: { error: { code: 'bad', message: 'not an image we take' } } }
    : { status: 200, body: { label: 'red' } });
  await withServer(await startServer(respond), async (server) => {
    const logs = logsIn(tree.root);
    const seen: FileResult[] = [];
    const summary = await push({ inputs: [tree.root], url: server.url, ...logs }, { onResult: (r) => seen.push(r) });
    assert.deepEqual([summary.ok, summary.failed, summary.total], [3, 2, 5]);
    const results = await readJsonl<FileResult>(logs.out);
    assert.deepEqual(results.map((r) => r.rel).sort(), [...NAMES].sort());
    assert.deepEqual(results.find((r) => r.rel === 'a.jpg')?.response, { label: 'red' });
    const [header, ...failures] = await readJsonl<FailureRecord & { kind?: string }>(logs.failures);
    assert.equal(header?.kind, 'imgpush-failures');
    assert.deepEqual(failures.map((f) => f.rel).sort(), ['b.png', 'sub/c.webp']);
    for (const failure of failures) {
      assert.equal(failure.status, 400);
      assert.equal(failure.code, 'IMGPUSH_HTTP_STATUS');
      assert.equal(failure.message, 'server answered 400 Bad Request: not an image we take');
      assert.equal(failure.attempts, 1, '4xx is never retried');
    }
    assert.equal(summary.failuresFile, logs.failures);
    assert.equal(seen.length, 5);
  });
});

test('a clean run writes no failure log', async () => {
  await withServer(await startServer(), async (server) => {
    const logs = logsIn(tree.root);
    const summary = await push({ inputs: [tree.path('a.jpg')], url: server.url, failures: logs.failures });
    assert.equal(summary.failuresFile, null);
    assert.equal(existsSync(logs.failures), false);
  });
});

test('503 with Retry-After and a connection cut mid-request are retried until the file is in', async () => {
  const attempts = new Map<string, number>();
  await withServer(await startServer((req, res) => {
    const name = /filename="([^"]+)"/.exec(req.body.toString('latin1'))?.[1] ?? '';
    const n = (attempts.get(name) ?? 0) + 1;
    attempts.set(name, n);
    if (n === 1) return { status: 503, body: 'busy', headers: { 'retry-after': '0' } };
    if (n === 2) {
      res.socket?.destroy();
      return 'handled';
    }
    return { status: 200, body: { ok: true } };
  }), async (server) => {
    const summary = await push({ inputs: [tree.root], url: server.url, retries: 3, retryMinDelayMs: 1, retryMaxDelayMs: 5, ...logsIn(tree.root) });
    assert.equal(summary.ok, NAMES.length);
    assert.equal(summary.retries, NAMES.length * 2);
    assert.ok([...attempts.values()].every((n) => n === 3));
  });
});

test('a file that still fails after its retries is in the failure log with its attempts and last error', async () => {
  await withServer(await startServer(() => ({ status: 502, body: 'upstream down\nmore text' })), async (server) => {
    const logs = logsIn(tree.root);
    const summary = await push({ inputs: [tree.path('a.jpg')], url: server.url, retries: 2, retryMinDelayMs: 1, retryMaxDelayMs: 2, ...logs });
    assert.equal(summary.failed, 1);
    assert.equal(server.received.length, 3);
    const [, failure] = await readJsonl<FailureRecord>(logs.failures);
    assert.equal(failure?.attempts, 3);
    assert.equal(failure?.message, 'server answered 502 Bad Gateway: upstream down');
  });
});

test('connection refused is explained in plain words and names the host', async () => {
  const server = await startServer();
  const url = server.url;
  await server.close();
  const logs = logsIn(tree.root);
  const summary = await push({ inputs: [tree.path('a.jpg')], url, retries: 1, retryMinDelayMs: 1, retryMaxDelayMs: 2, ...logs });
  assert.equal(summary.failed, 1);
  const [, failure] = await readJsonl<FailureRecord>(logs.failures);
  assert.equal(failure?.code, 'ECONNREFUSED');
  assert.equal(failure?.message, `nothing is listening on ${new URL(url).host} (connection refused) — is the server running?`);
  assert.equal(failure?.status, null);
});

test('a file removed after discovery is a failure with the real reason, and the others still go', async () => {
  const local = await makeTree({ '1.jpg': 10, '2.jpg': 10, '3.jpg': 10 });
  try {
    // At concurrency 1, all three are found before the first is sent; the server takes the other two away before answering.
    await withServer(await startServer(async (req, _res, index) => {
      if (index === 0) {
        const sent = /filename="([^"]+)"/.exec(req.body.toString())?.[1];
        await Promise.all(['1.jpg', '2.jpg', '3.jpg'].filter((n) => n !== sent).map((n) => rm(local.path(n))));
      }
      return { status: 200 };
    }), async (server) => {
      const logs = logsIn(local.root);
      const summary = await push({ inputs: [local.root], url: server.url, concurrency: 1, ...logs });
      assert.deepEqual([summary.total, summary.ok, summary.failed], [3, 1, 2]);
      const [, ...failures] = await readJsonl<FailureRecord>(logs.failures);
      assert.equal(failures.length, 2);
      for (const failure of failures) {
        assert.equal(failure.code, 'ENOENT');
        assert.match(failure.message, /file not found/);
      }
    });
  } finally {
    await local.remove();
  }
});

test('a 128 MiB file is streamed: memory grows by less than half its size, and the server gets every byte', async () => {
  const big = await makeTree({});
  const path = big.path('huge.tif');
  const size = 128 * 1024 * 1024;
  await writeFile(path, '');
  await truncate(path, size); // sparse: zeros without the disk
  const expected = createHash('sha256');
  const zeros = Buffer.alloc(8 * 1024 * 1024);
  for (let done = 0; done < size; done += zeros.length) expected.update(zeros);
  try {
    await withServer(await startServer(undefined, { keepBodies: false }), async (server) => {
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 10);
      try {
        const summary = await push({ inputs: [path], url: server.url, body: 'raw', ...logsIn(big.root) });
        assert.equal(summary.ok, 1);
      } finally {
        clearInterval(sampler);
      }
      assert.equal(server.received[0]?.size, size);
      assert.equal(server.received[0]?.sha256, expected.digest('hex'));
      const grown = (peak - baseline) / 1024 / 1024;
      assert.ok(grown < 64, `memory grew ${grown.toFixed(0)} MiB for a 128 MiB file`);
    });
  } finally {
    await big.remove();
  }
});

test('discovery waits for the uploads: files found but not done stay within the queue bound all run long', async () => {
  const many = await makeTree(Object.fromEntries(Array.from({ length: 800 }, (_, i) => [`f${i}.jpg`, 1])));
  let ahead = 0;
  try {
    await withServer(await startServer(() => ({ status: 200, delayMs: 1 })), async (server) => {
      const summary = await push({ inputs: [many.root], url: server.url, concurrency: 8, ...logsIn(many.root) }, {
        onProgress: (p: Readonly<Progress>) => {
          ahead = Math.max(ahead, p.discovered - p.ok - p.failed - p.skipped);
        },
      });
      assert.equal(summary.ok, 800);
      // The bound: uploads in flight, p-limit's queue (concurrency + 256), and one batch from discovery (256).
      assert.ok(ahead <= 8 + 8 + 256 + 256, `up to ${ahead} files were found and not done`);
      assert.ok(ahead > 8, 'discovery ran ahead of the uploads');
    });
  } finally {
    await many.remove();
  }
});

test('after a stop, every file of the tree is in the failure log, not only those discovery had reached', async () => {
  const many = await makeTree(Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`d${i % 5}/f${i}.jpg`, 4])));
  const stop = new AbortController();
  try {
    await withServer(await startServer(() => ({ status: 200, delayMs: 2 })), async (server) => {
      const logs = logsIn(many.root);
      const summary = await push({ inputs: [many.root], url: server.url, concurrency: 2, ...logs }, {
        signal: stop.signal,
        onResult: (r) => {
          if (r.ok && !stop.signal.aborted) stop.abort();
        },
      });
      const [, ...failures] = await readJsonl<FailureRecord>(logs.failures);
      assert.equal(summary.total, 600);
      assert.equal(summary.ok + failures.length, 600);
      assert.ok(failures.length > 500, `${failures.length} not uploaded`);
      assert.ok(failures.every((f) => f.code === 'IMGPUSH_INTERRUPTED'));
    });
  } finally {
    await many.remove();
  }
});

test('a cancel cuts discovery short: the folders it had not finished go to the failure log, and retry sends every file', async () => {
  const many = await makeTree(Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`d${i % 5}/f${i}.jpg`, 4])));
  const stop = new AbortController();
  const cancel = new AbortController();
  try {
    await withServer(await startServer(() => ({ status: 200, delayMs: 2 })), async (server) => {
      const logs = logsIn(many.root);
      const summary = await push({ inputs: [many.root], url: server.url, concurrency: 2, ...logs }, {
        signal: stop.signal,
        cancelSignal: cancel.signal,
        onResult: (r) => {
          if (r.ok && !stop.signal.aborted) {
            stop.abort();
            cancel.abort();
          }
        },
      });
      assert.equal(summary.interrupted, true);
      const [, ...failures] = await readJsonl<FailureRecord>(logs.failures);
      assert.ok(failures.some((f) => f.code === 'IMGPUSH_NOT_LISTED'), 'unfinished folders are recorded');
      const again = await retry(logs.failures, {});
      assert.equal(again.failed, 0);
      const received = new Set(server.received.map((r) => /filename="([^"]+)"/.exec(r.body.toString())?.[1]));
      assert.equal(received.size, 600, 'every file reached the server');
    });
  } finally {
    await many.remove();
  }
});

test('a stop lets uploads in flight finish, and every file not uploaded goes to the failure log', async () => {
  const many = await makeTree(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}.jpg`, 16])));
  const stop = new AbortController();
  try {
    await withServer(await startServer(() => ({ status: 200, delayMs: 20 })), async (server) => {
      const logs = logsIn(many.root);
      const summary = await push({ inputs: [many.root], url: server.url, concurrency: 2, ...logs }, {
        signal: stop.signal,
        onResult: () => {
          if (!stop.signal.aborted) stop.abort();
        },
      });
      assert.equal(summary.interrupted, true);
      const results = await readJsonl<FileResult>(logs.out);
      const [, ...failures] = await readJsonl<FailureRecord>(logs.failures);
      assert.equal(results.length, summary.total);
      assert.equal(summary.ok + failures.length, summary.total);
      assert.ok(summary.ok >= 2, 'the uploads in flight finished');
      assert.ok(failures.every((f) => f.code === 'IMGPUSH_INTERRUPTED'));
      assert.equal(server.received.length, summary.ok, 'nothing was sent after the stop');

      const again = await retry(logs.failures, { out: logs.out });
      assert.equal(again.ok, failures.length);
      assert.equal(existsSync(logs.failures), false, 'a retry that sends everything removes the failure log');
      assert.equal(new Set(server.received.map((r) => /filename="([^"]+)"/.exec(r.body.toString())?.[1])).size, 40);
    });
  } finally {
    await many.remove();
  }
});

test('the token is sent as a bearer header but recorded nowhere; secret-looking headers are redacted', async () => {
  await withServer(await startServer(() => ({ status: 500, body: 'no' })), async (server) => {
    const logs = logsIn(tree.root);
    await push({ inputs: [tree.path('a.jpg')], url: server.url, token: 's3cret-token', headers: { 'X-Api-Key': 'k3y-value', 'X-Trace': 'visible' }, retries: 0, ...logs });
    assert.equal(server.received[0]?.headers.authorization, 'Bearer s3cret-token');
    assert.equal(server.received[0]?.headers['x-api-key'], 'k3y-value');
    for (const file of [logs.out, logs.failures]) {
      const handle = await open(file);
      const text = (await handle.readFile()).toString();
      await handle.close();
      assert.doesNotMatch(text, /s3cret-token|k3y-value/, file);
    }
    const [header] = await readJsonl<{ settings: { headers: unknown; token: boolean } }>(logs.failures);
    assert.deepEqual(header?.settings.headers, [['X-Api-Key', null], ['X-Trace', 'visible']]);
    assert.equal(header?.settings.token, true);
  });
});

test('--skip-done sends only what an earlier run did not upload, and a changed file again', async () => {
  const local = await makeTree(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}.jpg`, 10 + i])));
  let failOdd = true;
  try {
    await withServer(await startServer((req) => {
      const n = Number(/filename="f(\d+)\.jpg"/.exec(req.body.toString())?.[1]);
      return failOdd && n % 2 === 1 ? { status: 503, body: 'busy' } : { status: 200 };
    }), async (server) => {
      const logs = logsIn(local.root);
      const first = await push({ inputs: [local.root], url: server.url, retries: 0, ...logs });
      assert.deepEqual([first.ok, first.failed], [10, 10]);

      failOdd = false;
      await writeFile(local.path('f0.jpg'), 'changed since');
      const before = server.received.length;
      const second = await push({ inputs: [local.root], url: server.url, skipDone: [logs.out], out: logs.out, failures: logs.failures });
      const resent = server.received.slice(before).map((r) => /filename="([^"]+)"/.exec(r.body.toString())?.[1]).sort();
      assert.deepEqual(resent, ['f0.jpg', 'f1.jpg', 'f11.jpg', 'f13.jpg', 'f15.jpg', 'f17.jpg', 'f19.jpg', 'f3.jpg', 'f5.jpg', 'f7.jpg', 'f9.jpg']);
      assert.deepEqual([second.ok, second.skipped, second.failed], [11, 9, 0]);

      const third = await push({ inputs: [local.root], url: server.url, skipDone: [logs.out], out: logs.out, failures: logs.failures });
      assert.deepEqual([third.ok, third.skipped], [0, 20], 'the appended log says every file is done now');
    });
  } finally {
    await local.remove();
  }
});

test('--max-failures stops the run and lists the rest as not attempted', async () => {
  const local = await makeTree(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`f${i}.jpg`, 8])));
  try {
    await withServer(await startServer(() => ({ status: 400, body: 'no' })), async (server) => {
      const logs = logsIn(local.root);
      const summary = await push({ inputs: [local.root], url: server.url, concurrency: 1, maxFailures: 3, ...logs });
      assert.equal(server.received.length, 3);
      assert.equal(summary.failed, 30);
      assert.match(summary.stopReason ?? '', /after 3 files failed \(--max-failures\)/);
      const [, ...failures] = await readJsonl<FailureRecord>(logs.failures);
      assert.equal(failures.filter((f) => f.code === 'IMGPUSH_INTERRUPTED').length, 27);
      assert.match(failures.find((f) => f.code === 'IMGPUSH_INTERRUPTED')?.message ?? '', /^not sent: the run stopped after 3 files failed/);
    });
  } finally {
    await local.remove();
  }
});

test('a dry run finds and counts the files, sends nothing and writes no log', async () => {
  await withServer(await startServer(), async (server) => {
    const logs = logsIn(tree.root);
    const summary = await push({ inputs: [tree.root], listed: (async function* () {
      yield tree.path('nope.jpg');
    })(), url: server.url, dryRun: true, ...logs });
    assert.equal(server.received.length, 0);
    assert.equal(summary.total, NAMES.length + 1);
    assert.equal(summary.failed, 1);
    assert.equal(summary.bytes, NAMES.reduce((sum, _, i) => sum + 1000 + i * 7919, 0));
    assert.equal(summary.sample?.length, NAMES.length);
    assert.equal(existsSync(logs.out) || existsSync(logs.failures), false);
  });
});

test('gates: --max-failure-rate and --fail-if-p95 say why a run fails them, and pass when met', async () => {
  await withServer(await startServer((req) => (req.body.includes('filename="a.jpg"') ? { status: 400 } : { status: 200, delayMs: 30 })), async (server) => {
    const logs = logsIn(tree.root);
    const strict = await push({ inputs: [tree.root], url: server.url, maxFailureRate: 0.1, failIfP95Ms: 5, ...logs });
    assert.equal(strict.failed, 1);
    assert.deepEqual(strict.gateFailures.map((reason) => reason.replace(/[\d.]+ ms,/, 'N ms,')), [
      '20.0 % of the files failed, over --max-failure-rate 10.0 %',
      'upload latency p95 is N ms, over --fail-if-p95 5 ms',
    ]);
    const lenient = await push({ inputs: [tree.root], url: server.url, maxFailureRate: 0.25, failIfP95Ms: 60_000, ...logsIn(tree.root) });
    assert.deepEqual(lenient.gateFailures, []);
  });
});

test('--rate paces the files: 100 files at 200 a second take at least 0.46 s', async () => {
  const many = await makeTree(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${i}.jpg`, 8])));
  try {
    await withServer(await startServer(), async (server) => {
      const started = performance.now();
      const summary = await push({ inputs: [many.root], url: server.url, rate: 200, concurrency: 8, ...logsIn(many.root) });
      const seconds = (performance.now() - started) / 1000;
      assert.equal(summary.ok, 100);
      // (100 − 8 in the first burst) / 200 per second: it cannot be quicker, whatever the machine.
      assert.ok(seconds >= 0.46, `${seconds.toFixed(3)} s`);
    });
  } finally {
    await many.remove();
  }
});

test('--concurrency auto meets far fewer 429s than a fixed 32 under a server that refuses above 6 in flight, and every file gets in', async () => {
  const many = await makeTree(Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`f${i}.jpg`, 8])));
  let inFlight = 0;
  try {
    await withServer(await startServer(async () => {
      inFlight++;
      try {
        if (inFlight > 6) return { status: 429, headers: { 'retry-after': '0' } };
        await new Promise((resolve) => setTimeout(resolve, 2));
        return { status: 200 };
      } finally {
        inFlight--;
      }
    }), async (server) => {
      const patient = { retryMinDelayMs: 1, retryMaxDelayMs: 5, retries: 100 };
      const auto = await push({ inputs: [many.root], url: server.url, concurrency: 'auto', maxConcurrency: 32, ...patient, ...logsIn(many.root) });
      const fixed = await push({ inputs: [many.root], url: server.url, concurrency: 32, ...patient, ...logsIn(many.root) });
      assert.equal(auto.ok, 400);
      assert.equal(auto.concurrency.adaptive, true);
      assert.ok(auto.concurrency.max > 6, `it tried higher: ${JSON.stringify(auto.concurrency)}`);
      assert.ok(auto.retries < fixed.retries / 2, `auto met ${auto.retries} refusals, a fixed 32 ${fixed.retries}`);
    });
  } finally {
    await many.remove();
  }
});

test('the limit is found (auto, from 8) unless a number pins it; --max-concurrency beside a number is said to do nothing, and a retry that pins one drops the recorded bound', async () => {
  let refuse = true;
  await withServer(await startServer(() => (refuse ? { status: 500 } : { status: 200 })), async (server) => {
    const warnings: string[] = [];
    const onWarning = (warning: string) => warnings.push(warning);
    const logs = logsIn(tree.root);
    const byDefault = await push({ inputs: [tree.root], url: server.url, retries: 0, maxConcurrency: 16, ...logs }, { onWarning });
    assert.equal(byDefault.failed, NAMES.length);
    assert.deepEqual(byDefault.concurrency, { final: 8, min: 8, max: 8, adaptive: true });
    assert.deepEqual(warnings, []);

    refuse = false;
    const pinned = await retry(logs.failures, { concurrency: 2 }, { onWarning });
    assert.equal(pinned.ok, NAMES.length);
    assert.deepEqual(pinned.concurrency, { final: 2, min: 2, max: 2, adaptive: false });
    assert.deepEqual(warnings, []);

    const both = await push({ inputs: [tree.root], url: server.url, concurrency: 4, maxConcurrency: 16, ...logsIn(tree.root) }, { onWarning });
    assert.equal(both.ok, NAMES.length);
    assert.deepEqual(warnings, ['--max-concurrency: no effect with a fixed --concurrency 4 (it bounds --concurrency auto)']);
  });
});
