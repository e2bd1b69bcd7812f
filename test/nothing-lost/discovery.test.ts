// Issue 14, cases 1–4: files that are found and then vanish from every record.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, link, symlink, writeFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { startServer } from '../helpers/server.js';
import { canRunAsNobody, failuresIn, isUsageError, makeWork, mkfifo, pushIn, readLog, run, workWithServer } from '../helpers/nothing-lost-kit.js';

const nobody = canRunAsNobody();

// Each test has its own folder and servers: they run side by side.
describe('issue 14, cases 1–4: files found, then in no record', { concurrency: true }, () => {
  test('a folder whose parent can be read but not searched is a failure with its reason, which imgpush retry walks again (exit 1)', {
    skip: nobody,
  }, async (t) => {
    const work = await makeWork();
    const server = await startServer();
    t.after(async () => {
      await chmod(work.path('in/p'), 0o755);
      await server.close();
      await work.remove();
    });
    await work.file('in/a.jpg', 100);
    await work.file('in/p/q/c.jpg', 100);
    await chmod(work.path('in/p'), 0o644); // names readable, nothing under it reachable

    const result = await run([work.path('in'), '--url', server.url, '--retries', '0', '--failures', work.path('failures.jsonl')], { cwd: work.root, asNobody: true });

    const failed = (await readLog(work.path('failures.jsonl'))).records.filter((record) => typeof record.path === 'string');
    assert.ok(failed.some((record) => String(record.path).startsWith(work.path('in/p'))), `no failure for in/p/q; stderr: ${result.stderr}`);
    assert.match(result.stdout, /1 failed/);
    assert.equal(result.code, 1);
  });

  test('a folder whose path is longer than PATH_MAX is a failure with its reason, not dropped with everything under it', async (t) => {
    const work = await makeWork();
    const server = await startServer();
    t.after(async () => {
      await server.close();
      spawnSync('rm', ['-rf', work.root]); // fs.rm cannot reach below PATH_MAX
    });
    await work.file('in/a.jpg', 100);
    // 24 folders of 200 characters: about 4,800 characters, over Linux's 4,096; made with relative steps.
    const name = 'd'.repeat(200);
    const made = spawnSync('bash', ['-c', `cd "$0" && for i in $(seq 24); do mkdir ${name} && cd ${name} || exit 1; done; echo deep > c.jpg`, work.path('in')]);
    if (made.status !== 0) return t.skip(`cannot make a tree deeper than PATH_MAX here: ${made.stderr.toString()}`);

    const { summary } = await pushIn({ inputs: [work.path('in')], url: server.url, failures: work.path('failures.jsonl') });

    assert.equal(summary?.failed, 1, `summary: ${JSON.stringify(summary && { ok: summary.ok, failed: summary.failed })}`);
    const [failure] = await failuresIn(work.root);
    assert.ok(String(failure?.path).startsWith(work.path(`in/${name}`)));
    assert.match(String(failure?.code), /ENAMETOOLONG|IMGPUSH_/);
  });

  test('an unreadable subfolder is a failure with its reason, and imgpush retry walks it again once it can be read', {
    skip: nobody,
  }, async (t) => {
    const work = await makeWork();
    const server = await startServer();
    t.after(async () => {
      await chmod(work.path('in/locked'), 0o755);
      await server.close();
      await work.remove();
    });
    await work.file('in/a.jpg', 100);
    await work.file('in/locked/d.jpg', 100);
    await chmod(work.path('in/locked'), 0o000);

    const first = await run([work.path('in'), '--url', server.url, '--retries', '0', '--failures', work.path('failures.jsonl')], { cwd: work.root, asNobody: true });
    const failed = (await readLog(work.path('failures.jsonl'))).records.filter((record) => typeof record.path === 'string');
    assert.deepEqual(failed.map((record) => record.path), [work.path('in/locked')]);
    assert.equal(first.code, 1);

    await chmod(work.path('in/locked'), 0o755);
    const again = await run(['retry', work.path('failures.jsonl')], { cwd: work.root, asNobody: true });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(server.received.length, 2);
  });

  test('--dry-run counts a folder it cannot reach among what "cannot be sent"', {
    skip: nobody,
  }, async (t) => {
    const work = await makeWork();
    t.after(async () => {
      await chmod(work.path('in/p'), 0o755);
      await work.remove();
    });
    await work.file('in/a.jpg', 100);
    await work.file('in/p/q/c.jpg', 100);
    await chmod(work.path('in/p'), 0o644);

    const result = await run([work.path('in'), '--url', 'http://127.0.0.1:9/', '--dry-run'], { cwd: work.root, asNobody: true });

    assert.match(result.stdout, /would send 1 files .*; 1 cannot be sent/);
  });

  test('a named pipe inside a folder is a failure with its reason, not silence', async (t) => {
    const { work, server } = await workWithServer(t, startServer);
    await work.file('in/a.jpg', 100);
    if (!mkfifo(work.path('in/pipe.jpg'))) return t.skip('mkfifo is not available');

    const { summary, error } = await pushIn({ inputs: [work.path('in')], url: server.url, out: work.path('results.jsonl'), failures: work.path('failures.jsonl') });

    assert.equal(error, undefined);
    const results = (await readLog(work.path('results.jsonl'))).records;
    const pipe = results.find((record) => record.path === work.path('in/pipe.jpg'));
    assert.ok(pipe?.error !== undefined || pipe?.skipped !== undefined, 'the pipe is in no log with a reason');
    assert.equal((summary?.failed ?? 0) + (summary?.skipped ?? 0), 1);
    assert.equal(server.received.length, 1);
  });

  test('a file whose name is not valid UTF-8 is sent, or fails with its true reason, never "file not found"', async (t) => {
    const { work, server } = await workWithServer(t, startServer);
    await work.file('in/a.jpg', 100);
    const contents = Buffer.from('not-utf8 image bytes');
    await writeFile(Buffer.concat([Buffer.from(`${work.path('in')}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.jpg')]), contents);

    const { summary } = await pushIn({ inputs: [work.path('in')], url: server.url, failures: work.path('failures.jsonl') });

    const sent = server.received.some((received) => received.body.includes(contents));
    const failures = await failuresIn(work.root);
    const wrongReason = failures.find((record) => record.code === 'ENOENT' || /not found|does not exist/i.test(String(record.message)));
    assert.equal(wrongReason, undefined, `logged as ${JSON.stringify(wrongReason)}`);
    assert.ok(sent || summary?.failed === 1, 'neither sent nor failed');
  });

  test('{path}: two inputs with the same relative path never both end "uploaded" to one URL', async (t) => {
    const { work, server } = await workWithServer(t, startServer);
    await work.file('d1/x.jpg', 100);
    await work.file('d2/x.jpg', 120);

    const outcome = await pushIn({ inputs: [work.path('d1'), work.path('d2')], url: `${server.url}/up/{path}`, failures: work.path('failures.jsonl') });

    const refusedBeforeSending = isUsageError(outcome) && server.received.length === 0 && /same (target )?URL/i.test(String((outcome.error as Error).message));
    const secondFailed = server.received.length === 1 && (await failuresIn(work.root)).some((record) => /same target URL as/i.test(String(record.message)));
    assert.ok(refusedBeforeSending || secondFailed, `${server.received.length} requests to ${server.received.map((r) => r.url).join(', ')}`);
  });

  test('a file reached under several names (a hard link, a symlink) is sent once, and each other name is logged skipped "same file as …"', async (t) => {
    const { work, server } = await workWithServer(t, startServer);
    const a = await work.file('in/a.jpg', 100);
    await link(a, work.path('in/b.jpg'));
    await symlink(a, work.path('in/c.jpg'));

    await pushIn({ inputs: [work.path('in')], url: server.url, out: work.path('results.jsonl'), failures: work.path('failures.jsonl') });

    assert.equal(server.received.length, 1);
    const results = (await readLog(work.path('results.jsonl'))).records;
    const names = results.map((record) => String(record.path).slice(work.path('in').length + 1)).sort();
    assert.deepEqual(names, ['a.jpg', 'b.jpg', 'c.jpg']);
    for (const record of results.filter((entry) => entry.ok !== true)) {
      assert.match(String((record.skipped as { reason?: string } | undefined)?.reason), /same file as .*\.jpg/);
    }
  });
});
