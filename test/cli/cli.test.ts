import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FailureRecord } from '../../src/client/logs/failure-log.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { runCli, startCli } from '../helpers/cli.js';
import { startServer, type Received } from '../helpers/server.js';

let tree: Tree;
const NAMES = ['one.jpg', 'two.png', 'bad-three.jpg', 'sub/four.webp', 'sub/bad-five.gif', 'sub/with space.jpg'];

before(async () => {
  tree = await makeTree(Object.fromEntries(NAMES.map((name, i) => [name, 200 + i])));
});
after(() => tree.remove());

const fileName = (req: Received) => /filename="([^"]+)"/.exec(req.body.toString('utf8'))?.[1] ?? '';

test('imgpush ./frames --url … --concurrency 20 uploads the folder and exits 0 with a summary', async () => {
  const server = await startServer();
  try {
    const result = await runCli(['.', '--url', `${server.url}/predict`, '--concurrency', '20'], { cwd: tree.root });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /6 files: 6 uploaded, 0 failed, 0 skipped/);
    assert.match(result.stdout, /latency p50 [\d.]+ ms, p95/);
    assert.deepEqual(server.received.map(fileName).sort(), NAMES.map((n) => n.split('/').pop()).sort());
    assert.equal(existsSync(join(tree.root, 'imgpush-failures.jsonl')), false);
  } finally {
    await server.close();
  }
});

test('a usage error, from the flags, the library or a file named, exits 2 with one line naming the cause and no stack trace', async () => {
  // Which message each flag gets is test/cli/parse.test.ts's business; this is the process around it.
  const cases: Array<[string[], string]> = [
    [[tree.root, '--url', 'http://127.0.0.1:9/x', '--bogus'], "imgpush: unknown option '--bogus'\n"],
    [[tree.root, '--url', 'localhost:8000'], 'imgpush: --url must start with http:// or https:// (got "localhost:8000"): add http://, e.g. http://localhost:8000\n'],
    [['--files-from', tree.path('nope.txt'), '--url', 'http://h/x'], `imgpush: --files-from ${tree.path('nope.txt')} does not exist\n`],
    [['retry', tree.root], `imgpush: ${tree.root} is a folder: imgpush retry takes a failure log file, such as imgpush-failures.jsonl\n`],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(args);
    assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.equal(result.stderr, message, args.join(' '));
    assert.equal(result.stdout, '');
  }
});

test('failed files: exit 1, a line per reason on stderr, a failure log, and imgpush retry sends only those', async () => {
  let healthy = false;
  const server = await startServer((req) => (fileName(req).startsWith('bad-') && !healthy
    ? { status: 422, body: { detail: 'cannot decode image' } }
    : { status: 200, body: { ok: true } }));
  const work = await makeTree({});
  try {
    const first = await runCli([tree.root, '--url', server.url, '--form', 'k=v', '-o', 'results.jsonl'], { cwd: work.root });
    assert.equal(first.code, 1, first.stderr);
    // Both bad files fail for one reason: the first of them to fail is named, the summary counts both.
    assert.match(first.stderr, /failed .*bad-(three\.jpg|five\.gif): server answered 422 Unprocessable Entity: cannot decode image\n/);
    assert.equal(first.stderr.match(/cannot decode image/g)?.length, 1, first.stderr);
    assert.match(first.stdout, /failures: imgpush-failures\.jsonl \(send them again: imgpush retry imgpush-failures\.jsonl\)/);
    const [, ...failed] = await readJsonl<FailureRecord>(join(work.root, 'imgpush-failures.jsonl'));
    assert.deepEqual(failed.map((f) => f.rel).sort(), ['bad-three.jpg', 'sub/bad-five.gif']);
    assert.equal((await readJsonl(join(work.root, 'results.jsonl'))).length, 6);

    healthy = true;
    const before = server.received.length;
    const second = await runCli(['retry', 'imgpush-failures.jsonl'], { cwd: work.root });
    assert.equal(second.code, 0, second.stderr);
    const resent = server.received.slice(before);
    assert.deepEqual(resent.map(fileName).sort(), ['bad-five.gif', 'bad-three.jpg']);
    assert.ok(resent.every((r) => r.body.includes('name="k"\r\n\r\nv')), 'the recorded --form fields are sent again');
    assert.equal(existsSync(join(work.root, 'imgpush-failures.jsonl')), false, 'nothing failed: no failure log left');
  } finally {
    await server.close();
    await work.remove();
  }
});

test('paths from stdin, newline- or NUL-separated, and from --files-from', async () => {
  const odd = await makeTree({ 'line\nbreak.jpg': 10, 'two words.jpg': 11, 'plain.jpg': 12 });
  const server = await startServer();
  try {
    const nul = await runCli(['-', '-0', '--url', server.url], { input: `${odd.path('line\nbreak.jpg')}\0${odd.path('two words.jpg')}\0` });
    assert.equal(nul.code, 0, nul.stderr);
    assert.deepEqual(server.received.map(fileName).sort(), ['line%0Abreak.jpg', 'two words.jpg']);

    const lines = await runCli(['-', '--url', server.url], { input: `${odd.path('plain.jpg')}\n` });
    assert.equal(lines.code, 0, lines.stderr);
    assert.equal(fileName(server.received[2]!), 'plain.jpg');

    await writeFile(odd.path('list.txt'), `${odd.path('plain.jpg')}\n${odd.path('two words.jpg')}\n`);
    const fromFile = await runCli(['--files-from', odd.path('list.txt'), '--url', server.url, '--json']);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(JSON.parse(fromFile.stdout).ok, 2);
  } finally {
    await server.close();
    await odd.remove();
  }
});

test('--json prints one JSON object with the documented keys', async () => {
  const server = await startServer();
  try {
    const result = await runCli([tree.path('one.jpg'), '--url', server.url, '--json']);
    assert.equal(result.code, 0);
    const summary = JSON.parse(result.stdout) as Record<string, unknown>;
    for (const key of ['total', 'ok', 'failed', 'skipped', 'bytes', 'seconds', 'filesPerSecond', 'bytesPerSecond', 'latencyMs', 'retries', 'failuresFile']) {
      assert.ok(key in summary, key);
    }
    assert.deepEqual(Object.keys(summary.latencyMs as object), ['p50', 'p95', 'p99', 'max']);
    assert.equal(summary.failuresFile, null);
  } finally {
    await server.close();
  }
});

test('a failed gate exits 1 with the reason in the summary and in --json', async () => {
  const server = await startServer(() => ({ status: 200, delayMs: 20 }));
  try {
    const text = await runCli([tree.root, '--url', server.url, '--fail-if-p95', '1']);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /gate failed: upload latency p95 is [\d.]+ ms, over --fail-if-p95 1 ms/);
    const json = await runCli([tree.root, '--url', server.url, '--fail-if-p95', '1', '--max-failure-rate', '5%', '--json']);
    assert.equal(json.code, 1);
    assert.equal((JSON.parse(json.stdout) as { gateFailures: string[] }).gateFailures.length, 1);
    const passed = await runCli([tree.root, '--url', server.url, '--fail-if-p95', '60000', '--json']);
    assert.equal(passed.code, 0);
  } finally {
    await server.close();
  }
});

test('--quiet prints only errors', async () => {
  const server = await startServer((req) => (fileName(req) === 'two.png' ? { status: 404 } : { status: 200 }));
  const work = await makeTree({});
  try {
    const result = await runCli([tree.root, '--url', server.url, '--quiet'], { cwd: work.root });
    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /failed .*two\.png: server answered 404 Not Found\n/);
  } finally {
    await server.close();
    await work.remove();
  }
});

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  test(`${signal} stops a run of 150 files with exit ${code}, every file in a log, and imgpush retry completes it`, async () => {
    const many = await makeTree(Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`d${i % 5}/f${i}.jpg`, 32])));
    const server = await startServer(() => ({ status: 200, delayMs: 10 }));
    const work = await makeTree({});
    try {
      const run = startCli([many.root, '--url', server.url, '--concurrency', '2', '-o', 'results.jsonl'], { cwd: work.root });
      while (server.received.length < 10) await new Promise((resolve) => setImmediate(resolve));
      run.child.kill(signal);
      const stopped = await run.done;
      assert.equal(stopped.code, code, stopped.stderr);
      assert.match(stopped.stderr, /stopping/);
      assert.match(stopped.stdout, /150 files: \d+ uploaded, \d+ failed, 0 skipped \(stopped early: the run was stopped\)/);
      const results = await readJsonl<{ ok: boolean; rel: string }>(join(work.root, 'results.jsonl'));
      const [, ...failures] = await readJsonl<FailureRecord>(join(work.root, 'imgpush-failures.jsonl'));
      assert.equal(results.length, 150, 'every file of the tree has its line');
      assert.equal(results.filter((r) => r.ok).length + failures.length, 150, 'each file uploaded or in the failure log');

      const finished = await runCli(['retry', 'imgpush-failures.jsonl'], { cwd: work.root });
      assert.equal(finished.code, 0, finished.stderr);
      assert.equal(new Set(server.received.map(fileName)).size, 150, 'every file is now on the server');
    } finally {
      await server.close();
      await many.remove();
      await work.remove();
    }
  });
}

test('an interrupted run resumed with --skip-done sends only what was not uploaded', async () => {
  const many = await makeTree(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`f${i}.jpg`, 16])));
  const server = await startServer(() => ({ status: 200, delayMs: 5 }));
  const work = await makeTree({});
  try {
    const run = startCli([many.root, '--url', server.url, '--concurrency', '2', '-o', 'results.jsonl'], { cwd: work.root });
    while (server.received.length < 20) await new Promise((resolve) => setImmediate(resolve));
    run.child.kill('SIGINT');
    assert.equal((await run.done).code, 130);
    const uploaded = (await readJsonl<{ ok: boolean }>(join(work.root, 'results.jsonl'))).filter((r) => r.ok).length;
    const before = server.received.length;

    const resumed = await runCli([many.root, '--url', server.url, '--skip-done', 'results.jsonl', '-o', 'results.jsonl', '--json'], { cwd: work.root });
    assert.equal(resumed.code, 0, resumed.stderr);
    const summary = JSON.parse(resumed.stdout) as { ok: number; skipped: number };
    assert.equal(summary.skipped, uploaded);
    assert.equal(summary.ok, 200 - uploaded);
    assert.equal(server.received.length - before, 200 - uploaded, 'only the rest was sent');
    assert.equal(new Set(server.received.map(fileName)).size, 200);
  } finally {
    await server.close();
    await many.remove();
    await work.remove();
  }
});

test('SIGKILL in the middle of a run leaves logs that are valid JSONL to their last line', async () => {
  const many = await makeTree(Object.fromEntries(Array.from({ length: 800 }, (_, i) => [`f${i}.jpg`, 16])));
  // Every third file fails, so the failure log is being written too when the kill comes.
  const server = await startServer((req) => (Number(/f(\d+)\.jpg/.exec(fileName(req))?.[1]) % 3 === 0 ? { status: 400 } : { status: 200 }));
  const work = await makeTree({});
  try {
    const run = startCli([many.root, '--url', server.url, '--concurrency', '4', '-o', 'results.jsonl'], { cwd: work.root });
    while (server.received.length < 300) await new Promise((resolve) => setImmediate(resolve));
    run.child.kill('SIGKILL');
    const killed = await run.done;
    assert.equal(killed.signal, 'SIGKILL');
    for (const log of ['results.jsonl', 'imgpush-failures.jsonl']) {
      const text = await readFile(join(work.root, log), 'utf8');
      assert.ok(text.endsWith('\n'), `${log} ends with a whole line`);
      const lines = text.split('\n').filter((line) => line !== '');
      assert.ok(lines.length > 0, `${log} has lines`);
      for (const line of lines) JSON.parse(line);
    }
  } finally {
    await server.close();
    await many.remove();
    await work.remove();
  }
});

test('--dry-run lists what would be sent and sends nothing', async () => {
  const server = await startServer();
  const work = await makeTree({});
  try {
    const result = await runCli([tree.root, '--url', server.url, '--dry-run'], { cwd: work.root });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /dry run: would send 6 files \(1\.2 KB\); 0 cannot be sent, 0 skipped/);
    assert.match(result.stdout, /one\.jpg/);
    assert.equal(server.received.length, 0);
    assert.equal(existsSync(join(work.root, 'imgpush-failures.jsonl')), false);
  } finally {
    await server.close();
    await work.remove();
  }
});

test('--help and --version answer without a server', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--concurrency <n>/);
  assert.match(help.stdout, /retry \[options\] <failure-log>/);
  const version = await runCli(['--version']);
  assert.equal(version.code, 0);
  const { version: expected } = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(version.stdout.trim(), expected);
});
