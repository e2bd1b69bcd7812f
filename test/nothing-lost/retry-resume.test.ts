// Issue 14, cases 10–13: retry and resume must keep every file in a record, and the log must not lie.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { push, retry } from '../../src/client/index.js';
import { startServer } from '../helpers/server.js';
import { failuresIn, isUsageError, makeWork, pushIn, readLog, run, start, startHoldingServer, workWithServer } from '../helpers/nothing-lost-kit.js';

/**
 * A work folder with in/a.jpg (100 bytes) and in/b.jpg (2000), and a server
 * that refuses requests over 1000 bytes (400) until `accept()`: a first run
 * uploads a.jpg and fails b.jpg.
 */
async function halfRefused(t: { after: (fn: () => Promise<void>) => void }) {
  const state = { refusing: true };
  const { work, server } = await workWithServer(t, () => startServer((req) => (state.refusing && req.size > 1000 ? { status: 400, body: { error: 'not now' } } : { status: 200, body: { ok: true } })));
  await work.file('in/a.jpg', 100);
  await work.file('in/b.jpg', 2000);
  return { work, server, accept: () => { state.refusing = false; } };
}

// Each test has its own folder and servers: they run side by side.
describe('issue 14, cases 10–13: retry and resume', { concurrency: true }, () => {
  test('imgpush retry keeps a failure-log line it cannot parse (counted, exit non-zero), never drops the file it names', async (t) => {
    const work = await makeWork();
    const refusing = await startServer(() => ({ status: 400, body: { error: 'no' } }));
    const ok = await startServer();
    t.after(async () => {
      await refusing.close();
      await ok.close();
      await work.remove();
    });
    await work.file('in/a.jpg', 100);
    await work.file('in/b.jpg', 100);
    await run([work.path('in'), '--url', refusing.url, '--retries', '0', '--concurrency', '1'], { cwd: work.root });
    const lines = (await readFile(work.path('imgpush-failures.jsonl'), 'utf8')).split('\n').filter((line) => line !== '');
    assert.equal(lines.length, 3);
    const cut = (lines[2] as string).slice(0, 40); // a line cut short by a killed process
    await writeFile(work.path('imgpush-failures.jsonl'), `${lines[0]}\n${lines[1]}\n${cut}`);

    const result = await run(['retry', 'imgpush-failures.jsonl', '--url', ok.url], { cwd: work.root });

    assert.equal(ok.received.length, 1);
    assert.notEqual(result.code, 0);
    const kept = [];
    for (const name of await readdir(work.root)) {
      if (name.includes('failures')) kept.push(await readFile(work.path(name), 'utf8'));
    }
    assert.ok(kept.some((text) => text.includes(cut)), 'the line it could not read is in no failure log');
  });

  test('imgpush retry (as in the quick start) appends the retried files to the results log of the first run, so --skip-done sees them done', async (t) => {
    const { work, server, accept } = await halfRefused(t);
    await run([work.path('in'), '--url', server.url, '--retries', '0', '-o', 'results.jsonl'], { cwd: work.root });
    accept();

    const again = await run(['retry', 'imgpush-failures.jsonl'], { cwd: work.root });
    const resume = await run([work.path('in'), '--url', server.url, '--skip-done', 'results.jsonl', '--dry-run'], { cwd: work.root });

    assert.equal(again.code, 0, again.stderr);
    const uploaded = (await readLog(work.path('results.jsonl'))).records.filter((record) => record.ok === true).map((record) => String(record.path)).sort();
    assert.deepEqual(uploaded, [work.path('in/a.jpg'), work.path('in/b.jpg')]);
    assert.match(resume.stdout, /would send 0 files/);
  });

  test('imgpush retry -o results.jsonl appends to the first run\'s results log instead of truncating it', async (t) => {
    const { work, server, accept } = await halfRefused(t);
    await run([work.path('in'), '--url', server.url, '--retries', '0', '-o', 'results.jsonl'], { cwd: work.root });
    accept();

    await run(['retry', 'imgpush-failures.jsonl', '-o', 'results.jsonl'], { cwd: work.root });

    const paths = (await readLog(work.path('results.jsonl'))).records.filter((record) => record.ok === true).map((record) => String(record.path)).sort();
    assert.deepEqual(paths, [work.path('in/a.jpg'), work.path('in/b.jpg')]);
  });

  test('the library\'s retry() appends the retried files to the results log the first push() wrote', async (t) => {
    const { work, server, accept } = await halfRefused(t);
    const out = work.path('results.jsonl');
    const first = await push({ inputs: [work.path('in')], url: server.url, retries: 0, out, failures: work.path('failures.jsonl') });
    assert.equal(first.failed, 1);
    accept();

    const again = await retry(work.path('failures.jsonl'));

    assert.equal(again.ok, 1);
    const paths = (await readLog(out)).records.filter((record) => record.ok === true).map((record) => String(record.path)).sort();
    assert.deepEqual(paths, [work.path('in/a.jpg'), work.path('in/b.jpg')]);
  });

  test('--skip-done X -o X on a first run, X not there yet: nothing is done, every file is sent', async (t) => {
    const { work, server } = await workWithServer(t, startServer);
    await work.file('in/a.jpg', 100);
    const log = work.path('results.jsonl');

    const { summary, error } = await pushIn({ inputs: [work.path('in')], url: server.url, skipDone: [log], out: log, failures: work.path('failures.jsonl') });

    assert.equal(error, undefined);
    assert.equal(summary?.ok, 1);
    assert.equal((await readLog(log)).records.length, 1);
  });

  test('--skip-done given a file that is not a results log is a usage error before anything is sent', async (t) => {
    const { work, server } = await workWithServer(t, startServer);
    await work.file('in/a.jpg', 100);
    await writeFile(work.path('paths.txt'), `${work.path('in/a.jpg')}\n`);

    const outcome = await pushIn({ inputs: [work.path('in')], url: server.url, skipDone: [work.path('paths.txt')], failures: work.path('failures.jsonl') });

    assert.ok(isUsageError(outcome), 'a list of paths was taken for a results log');
    assert.equal(server.received.length, 0);
  });

  test('a resume into its own results log adds no "skipped" line per file already done', async (t) => {
    const { work, server } = await workWithServer(t, startServer);
    await work.file('in/a.jpg', 100);
    await work.file('in/b.jpg', 100);
    const log = work.path('results.jsonl');
    await pushIn({ inputs: [work.path('in')], url: server.url, out: log, failures: work.path('failures.jsonl') });

    const resume = await pushIn({ inputs: [work.path('in')], url: server.url, skipDone: [log], out: log, failures: work.path('failures.jsonl') });

    assert.equal(resume.summary?.skipped, 2);
    assert.equal(server.received.length, 2);
    assert.equal((await readLog(log)).records.length, 2);
  });

  /** The failure record says the request reached the server: `"sent": true`, or the code IMGPUSH_ANSWER_LOST (assumed names). */
  function saysSent(record: Record<string, unknown> | undefined): boolean {
    return record?.sent === true || record?.code === 'IMGPUSH_ANSWER_LOST';
  }

  test('a file whose 200 came but whose answer was cut by a stop is logged "sent, answer lost" with status 200, not "not sent"', async (t) => {
    const { work, server } = await workWithServer(t, startHoldingServer);
    await work.file('in/a.jpg', 100);

    const imgpush = start([work.path('in'), '--url', server.url, '-o', 'results.jsonl'], { cwd: work.root, input: '' });
    const held = await server.next();
    held.res.writeHead(200, { 'content-type': 'application/json' });
    held.res.write('{"label":'); // the status and part of the answer, then silence
    imgpush.child.kill('SIGINT');
    await imgpush.waitFor(/stopping/);
    imgpush.child.kill('SIGINT');
    await imgpush.done;

    const [record] = await failuresIn(work.root);
    assert.ok(saysSent(record), `logged as ${JSON.stringify(record)}`);
    assert.equal(record?.status, 200);
    assert.doesNotMatch(String(record?.message), /not sent|not known to have reached/);
  });

  test('a request sent whole whose connection then dropped is logged "sent, answer lost", apart from one never sent', async (t) => {
    const work = await makeWork();
    const server = await startServer((_req, res) => {
      res.socket?.destroy(); // the whole body was read: only the answer is lost
      return 'handled';
    });
    t.after(async () => {
      await server.close();
      await work.remove();
    });
    await work.file('in/a.jpg', 100);

    await pushIn({ inputs: [work.path('in')], url: server.url, retries: 0, failures: work.path('failures.jsonl') });

    assert.equal(server.received.length, 1);
    const [record] = await failuresIn(work.root);
    assert.ok(saysSent(record), `logged as ${JSON.stringify(record)}`);
  });
});
