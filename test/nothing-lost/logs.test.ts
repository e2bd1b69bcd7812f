// Issue 14, cases 5–9: the logs themselves must never lose a file.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { link, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { startServer } from '../helpers/server.js';
import { failuresIn, filesNamedIn, isUsageError, makeWork, mountTmpfs, namesReceived, pushIn, readLog, run, start, startHoldingServer, textOf, workWithServer } from '../helpers/nothing-lost-kit.js';

/** Exit code of a run whose log could not be written (assumed: 4, to be documented in README). */
const EXIT_LOG_FAILED = 4;
/** SIGHUP handled like SIGTERM: 128 + 1 (assumed, as 130 and 143 are for SIGINT and SIGTERM). */
const EXIT_SIGHUP = 129;

const refuseAll = () => ({ status: 400, body: { error: 'no' } });

// Each test has its own folder and servers: they run side by side.
describe('issue 14, cases 5–9: the logs', { concurrency: true }, () => {
  test('a second run in the same folder never destroys the failure log of the first (day1, day2: both lists kept)', async (t) => {
    const { work, server } = await workWithServer(t, () => startServer(refuseAll));
    await work.file('day1/a.jpg', 100);
    await work.file('day1/b.jpg', 100);
    await work.file('day2/c.jpg', 100);

    await run([work.path('day1'), '--url', server.url, '--retries', '0'], { cwd: work.root });
    const second = await run([work.path('day2'), '--url', server.url, '--retries', '0'], { cwd: work.root });

    const refused = second.code === 2 && server.received.length === 2;
    const listed = (await failuresIn(work.root)).map((record) => String(record.path)).sort();
    const kept = ['day1/a.jpg', 'day1/b.jpg', 'day2/c.jpg'].every((rel) => listed.includes(work.path(rel)));
    assert.ok(refused || kept, `failure logs list only ${listed.join(', ')}`);
  });

  test('two runs at once in one folder each keep their own failures (no shared default log clobbered)', async (t) => {
    const { work, server } = await workWithServer(t, startHoldingServer);
    await work.file('one/a.jpg', 100);
    await work.file('two/b.jpg', 100);

    const first = start([work.path('one'), '--url', server.url, '--retries', '0'], { cwd: work.root, input: '' });
    const second = start([work.path('two'), '--url', server.url, '--retries', '0'], { cwd: work.root, input: '' });
    // Both runs are at the same step: each has one request waiting for its answer.
    const held = [await server.next(), await server.next()];
    for (const request of held) request.answer(refuseAll());
    await Promise.all([first.done, second.done]);

    const listed = (await failuresIn(work.root)).map((record) => String(record.path)).sort();
    assert.deepEqual(listed, [work.path('one/a.jpg'), work.path('two/b.jpg')]);
  });

  test('-o or --failures naming a folder is a usage error before anything is sent', async (t) => {
    const { work, server } = await workWithServer(t, () => startServer(refuseAll));
    await work.file('in/a.jpg', 100);
    await work.file('in/b.jpg', 100);
    await mkdir(work.path('a-folder'));

    const out = await pushIn({ inputs: [work.path('in')], url: server.url, retries: 0, concurrency: 1, out: work.path('a-folder'), failures: work.path('failures.jsonl') });
    const failures = await pushIn({ inputs: [work.path('in')], url: server.url, retries: 0, concurrency: 1, failures: work.path('a-folder') });

    assert.equal(server.received.length, 0, 'files were sent by runs whose logs cannot be written');
    assert.ok(isUsageError(out), `-o a folder: ${String(out.error)}`);
    assert.ok(isUsageError(failures), `--failures a folder: ${String(failures.error)}`);
  });

  test('a results log that fills the disk mid-run: whole lines only, every uploaded file still accounted for, and --json still prints the summary (exit 4)', async (t) => {
    const work = await makeWork();
    const disk = await mountTmpfs('64k');
    if (typeof disk === 'string') return t.skip(disk);
    const padding = 'x'.repeat(3000);
    const server = await startServer(() => ({ status: 200, body: { label: padding } }));
    t.after(async () => {
      await server.close();
      await disk.unmount();
      await work.remove();
    });
    const count = 40;
    for (let i = 0; i < count; i++) await work.file(`in/f${String(i).padStart(2, '0')}.jpg`, 64);
    const resultsPath = join(disk.dir, 'results.jsonl');

    const result = await run([work.path('in'), '--url', server.url, '--concurrency', '2', '-o', resultsPath, '--json'], { cwd: work.root });

    const results = await readLog(resultsPath);
    assert.deepEqual(results.broken, [], 'a line of the results log was left half-written');
    const inResults = new Set(results.records.map((record) => String(record.path)));
    const failures = new Set((await failuresIn(work.root)).map((record) => String(record.path)));
    // Stderr, and any file the run names (a fallback log), count too.
    const output = `${result.stdout}\n${result.stderr}`;
    const elsewhere = [result.stderr, ...filesNamedIn(output, work.root).filter((path) => path !== resultsPath).map(textOf)].join('\n');
    const lost = namesReceived(server).filter((name) => {
      const path = work.path(`in/${name}`);
      return !inResults.has(path) && !failures.has(path) && !elsewhere.includes(path);
    });
    assert.deepEqual(lost, [], 'files the server received that no log and no output account for');
    let summary: { total?: number } | undefined;
    try {
      summary = JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as { total?: number };
    } catch {
      summary = undefined;
    }
    assert.equal(summary?.total, count, `--json printed: ${JSON.stringify(result.stdout)}`);
    assert.equal(result.code, EXIT_LOG_FAILED);
  });

  test('--failures that is a symlink or a hard link to the -o file is a usage error before anything is sent', async (t) => {
    const { work, server } = await workWithServer(t, () => startServer((req) => (req.size > 1000 ? refuseAll() : { status: 200 })));
    await work.file('in/a.jpg', 100);
    await work.file('in/b.jpg', 2000);
    await writeFile(work.path('out.jsonl'), '');
    await symlink(work.path('out.jsonl'), work.path('soft.jsonl'));
    await link(work.path('out.jsonl'), work.path('hard.jsonl'));

    const soft = await pushIn({ inputs: [work.path('in')], url: server.url, retries: 0, out: work.path('out.jsonl'), failures: work.path('soft.jsonl') });
    const hard = await pushIn({ inputs: [work.path('in')], url: server.url, retries: 0, out: work.path('out.jsonl'), failures: work.path('hard.jsonl') });

    assert.equal(server.received.length, 0);
    assert.ok(isUsageError(soft), 'a symlink to -o was taken for another file');
    assert.ok(isUsageError(hard), 'a hard link to -o was taken for another file');
  });

  test('-o naming one of the input images is a usage error, and the image is left as it was', async (t) => {
    const { work, server } = await workWithServer(t, startServer);
    await work.file('in/a.jpg', 100);
    await work.file('in/b.jpg', 100);
    const before = await readFile(work.path('in/b.jpg'));

    const outcome = await pushIn({ inputs: [work.path('in')], url: server.url, out: work.path('in/b.jpg'), failures: work.path('failures.jsonl') });

    assert.deepEqual(await readFile(work.path('in/b.jpg')), before, 'the input image was overwritten');
    assert.ok(isUsageError(outcome));
    assert.equal(server.received.length, 0);
  });

  test('-o /dev/null, or --failures /dev/null: the run ends with its summary and no fsync error', async (t) => {
    const { work, server } = await workWithServer(t, () => startServer((req) => (req.size > 1000 ? refuseAll() : { status: 200 })));
    await work.file('in/a.jpg', 100);
    await work.file('in/b.jpg', 2000);

    const out = await pushIn({ inputs: [work.path('in')], url: server.url, retries: 0, out: '/dev/null', failures: work.path('failures.jsonl') });
    const failures = await pushIn({ inputs: [work.path('in')], url: server.url, retries: 0, out: work.path('results.jsonl'), failures: '/dev/null' });

    for (const [flag, { summary, error }] of [['-o', out], ['--failures', failures]] as const) {
      assert.equal(error, undefined, `${flag} /dev/null`);
      assert.deepEqual([summary?.ok, summary?.failed], [1, 1]);
    }
  });

  test('-o /dev/stdout into a pipe writes the results there and exits 0', async (t) => {
    const { work, server } = await workWithServer(t, startServer);
    await work.file('in/a.jpg', 100);

    const result = await run([work.path('in'), '--url', server.url, '-o', '/dev/stdout', '--quiet'], { cwd: work.root, stdoutThroughPipe: true });

    assert.doesNotMatch(result.stderr, /EINVAL|fsync/);
    assert.match(result.stdout, /"ok":true/);
    assert.equal(result.code, 0);
  });

  test('-o - writes one JSON result line per file to stdout, and the summary to stderr', async (t) => {
    const { work, server } = await workWithServer(t, startServer);
    await work.file('in/a.jpg', 100);
    await work.file('in/b.jpg', 100);

    const result = await run([work.path('in'), '--url', server.url, '-o', '-'], { cwd: work.root });

    assert.equal(existsSync(work.path('-')), false, 'a file named "-" was written');
    const lines = result.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { path: string; ok: boolean });
    assert.deepEqual(lines.map((line) => line.path).sort(), [work.path('in/a.jpg'), work.path('in/b.jpg')]);
    assert.match(result.stderr, /2 files: 2 uploaded/);
    assert.equal(result.code, 0);
  });

  test('output closed mid-run (imgpush … 2>&1 | head -1): the run goes on, and the logs account for every file', async (t) => {
    const { work, server } = await workWithServer(t, startHoldingServer);
    for (const name of ['a', 'b', 'c', 'd']) await work.file(`in/${name}.jpg`, 100);

    const imgpush = start([work.path('in'), '--url', server.url, '--concurrency', '1', '--retries', '0', '-o', 'results.jsonl'], { cwd: work.root, input: '' });
    (await server.next()).answer(refuseAll());
    await imgpush.waitFor(/failed/);
    // What `head -1` does once it has its line: the reading end goes away.
    imgpush.child.stdout?.destroy();
    imgpush.child.stderr?.destroy();
    let after = 0;
    server.answerAll(() => (after++ === 0 ? refuseAll() : { status: 200 }));
    const result = await imgpush.done;

    const results = (await readLog(work.path('results.jsonl'))).records.map((record) => String(record.path)).sort();
    assert.deepEqual(results, ['a', 'b', 'c', 'd'].map((name) => work.path(`in/${name}.jpg`)));
    assert.equal((await failuresIn(work.root)).length, 2);
    assert.equal(result.code, 1);
  });

  test('a closed stdout ends the run with its exit code, not an EPIPE stack trace', async (t) => {
    const { work, server } = await workWithServer(t, startServer);
    await work.file('in/a.jpg', 100);

    const imgpush = start([work.path('in'), '--url', server.url], { cwd: work.root, input: '' });
    imgpush.child.stdout?.destroy();
    const result = await imgpush.done;

    assert.doesNotMatch(result.stderr, /EPIPE|\n\s+at /);
    assert.equal(result.code, 0);
    assert.equal(server.received.length, 1);
  });

  test('SIGHUP is handled like SIGTERM: exit 129, and every file not uploaded is in the failure log', async (t) => {
    const { work, server } = await workWithServer(t, startHoldingServer);
    for (const name of ['a', 'b', 'c']) await work.file(`in/${name}.jpg`, 100);

    const imgpush = start([work.path('in'), '--url', server.url, '--concurrency', '1', '-o', 'results.jsonl'], { cwd: work.root, input: '' });
    const first = await server.next();
    imgpush.child.kill('SIGHUP');
    // Today the process dies at once: no line ever comes.
    await Promise.race([imgpush.waitFor(/stopping/), imgpush.done]);
    first.answer({ status: 200 });
    server.answerAll({ status: 200 });
    const result = await imgpush.done;

    assert.equal(result.signal, null, 'killed by the signal');
    assert.equal(result.code, EXIT_SIGHUP);
    const failed = (await failuresIn(work.root)).map((record) => String(record.path)).sort();
    const uploaded = (await readLog(work.path('results.jsonl'))).records.filter((record) => record.ok === true).map((record) => String(record.path));
    assert.deepEqual([...uploaded, ...failed].sort(), ['a', 'b', 'c'].map((name) => work.path(`in/${name}.jpg`)));
  });
});
