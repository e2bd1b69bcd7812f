import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FailureRecord } from '../../src/client/logs/failure-log.js';
import { makeAuthority, type Issued } from '../helpers/certificates.js';
import { runCli } from '../helpers/cli.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { startProxy } from '../helpers/proxy.js';
import { startServer, type Received } from '../helpers/server.js';

let tree: Tree;
let certs: Tree;
let server: Issued;

before(async () => {
  tree = await makeTree({ 'one.jpg': 300, 'two.png': 400, 'sub/three.webp': 500 });
  const authority = makeAuthority('imgpush test CA');
  server = authority.issue('localhost', { hosts: ['localhost', '127.0.0.1'] });
  const client = authority.issue('uploader', { client: true });
  certs = await makeTree({ 'ca.pem': authority.cert, 'client.pem': client.cert, 'client-key.pem': client.key, 'notes.txt': 'not a certificate' });
});
after(async () => {
  await tree.remove();
  await certs.remove();
});

const fileName = (req: Received) => /filename="([^"]+)"/.exec(req.body.toString('utf8'))?.[1] ?? '';

test('a private CA: without --cacert, exit 1 with the TLS reason per file; imgpush retry --cacert sends them; --insecure sends with a warning', async () => {
  const https = await startServer(undefined, { tls: server });
  const work = await makeTree({});
  try {
    const refused = await runCli([tree.root, '--url', `${https.url}/predict`], { cwd: work.root });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /failed .*(one\.jpg|two\.png|three\.webp): the TLS certificate of 127\.0\.0\.1:\d+ is not signed by an authority this machine trusts: give that authority's certificate with --cacert FILE, or skip the check with --insecure \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)\n/);
    assert.doesNotMatch(refused.stderr, /attempts\)|warning/, 'no retry, no outage');
    const [, ...failures] = await readJsonl<FailureRecord>(join(work.root, 'imgpush-failures.jsonl'));
    assert.deepEqual(failures.map((f) => [f.rel, f.code]).sort(), [['one.jpg', 'IMGPUSH_TLS'], ['sub/three.webp', 'IMGPUSH_TLS'], ['two.png', 'IMGPUSH_TLS']]);
    assert.equal(https.received.length, 0);

    const retried = await runCli(['retry', 'imgpush-failures.jsonl', '--cacert', certs.path('ca.pem')], { cwd: work.root });
    assert.equal(retried.code, 0, retried.stderr);
    assert.deepEqual(https.received.map(fileName).sort(), ['one.jpg', 'three.webp', 'two.png']);
    assert.equal(existsSync(join(work.root, 'imgpush-failures.jsonl')), false);

    const insecure = await runCli([tree.root, '--url', `${https.url}/predict`, '-k'], { cwd: work.root });
    assert.equal(insecure.code, 0, insecure.stderr);
    assert.match(insecure.stderr, /^imgpush: warning: --insecure: the server's certificate is not checked/m);
    assert.match(insecure.stdout, /3 files: 3 uploaded, 0 failed/);
  } finally {
    await https.close();
    await work.remove();
  }
});

test('HTTP_PROXY from the environment carries the uploads, NO_PROXY lets them go straight, --proxy wins over it', async () => {
  const fromEnv = await startProxy();
  const given = await startProxy();
  const plain = await startServer();
  try {
    const args = [tree.root, '--url', `${plain.url}/predict`];
    const viaEnv = await runCli(args, { env: { HTTP_PROXY: fromEnv.url } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.equal(fromEnv.asked.filter((line) => line === `POST ${plain.url}/predict`).length, 3);

    const bypassed = await runCli(args, { env: { HTTP_PROXY: fromEnv.url, NO_PROXY: 'localhost,127.0.0.1' } });
    assert.equal(bypassed.code, 0, bypassed.stderr);
    assert.equal(fromEnv.asked.length, 3, 'NO_PROXY: straight to the server');

    const overridden = await runCli([...args, '--proxy', given.url], { env: { HTTP_PROXY: fromEnv.url } });
    assert.equal(overridden.code, 0, overridden.stderr);
    assert.equal(fromEnv.asked.length, 3);
    assert.equal(given.asked.length, 3);
    assert.equal(plain.received.length, 9);
  } finally {
    await Promise.all([fromEnv.close(), given.close(), plain.close()]);
  }
});

test('imgpush retry takes the recorded proxy but not its password: it says so, and the 407 that follows is not retried', async () => {
  const proxy = await startProxy({ credentials: 'uploader:s3cret' });
  let healthy = false;
  const plain = await startServer((req) => (fileName(req) === 'two.png' && !healthy ? { status: 503 } : { status: 200 }));
  const work = await makeTree({});
  try {
    const withPassword = proxy.url.replace('http://', 'http://uploader:s3cret@');
    const first = await runCli([tree.root, '--url', plain.url, '--proxy', withPassword, '--retries', '0'], { cwd: work.root });
    assert.equal(first.code, 1, first.stderr);
    healthy = true;

    const bare = await runCli(['retry', 'imgpush-failures.jsonl'], { cwd: work.root });
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, new RegExp(`warning: the first run's proxy ${proxy.url} had a user and password, which were not recorded: give --proxy again with them`));
    assert.match(bare.stderr, /failed .*two\.png: the proxy .* answered 407 Proxy Authentication Required: give its user and password in the proxy URL .*\n/);
    assert.doesNotMatch(bare.stderr, /attempts\)/);
    assert.doesNotMatch(bare.stderr + bare.stdout, /s3cret/);

    const again = await runCli(['retry', 'imgpush-failures.jsonl', '--proxy', withPassword], { cwd: work.root });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(plain.received.filter((req) => fileName(req) === 'two.png').length, 2);
  } finally {
    await Promise.all([proxy.close(), plain.close(), work.remove()]);
  }
});
