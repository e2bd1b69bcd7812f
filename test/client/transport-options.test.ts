import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { push, retry, UsageError, type PushOptions } from '../../src/client/index.js';
import type { FailureLogHeader, FailureRecord } from '../../src/client/logs/failure-log.js';
import { makeAuthority, type Issued } from '../helpers/certificates.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { startProxy } from '../helpers/proxy.js';
import { parseMultipart, sha256, startHttp2Server, startServer, type Received } from '../helpers/server.js';

// One file over the stream threshold: streamed bodies go over TLS, HTTP/2 and tunnels too.
const FILES = { 'a.jpg': 3000, 'b.png': 5000, 'sub/c.webp': 1_200_000 };
const NAMES = Object.keys(FILES);

let tree: Tree;
let certs: Tree;
let server: Issued;
/** Certificates a run is given, by file: the private CA, and a client certificate it signed. */
let tlsFiles: { cacert: string; cert: string; key: string };
/** Signed by the CA, but for another host name; and one that has expired. */
let wrongHost: Issued;
let expired: Issued;
let ca: Issued;

before(async () => {
  tree = await makeTree(FILES);
  const authority = makeAuthority('imgpush test CA');
  ca = authority;
  server = authority.issue('localhost', { hosts: ['localhost', '127.0.0.1'] });
  const client = authority.issue('uploader', { client: true });
  wrongHost = authority.issue('elsewhere', { hosts: ['elsewhere.example'] });
  expired = authority.issue('localhost', { hosts: ['127.0.0.1'], validDays: [-3, -1] });
  certs = await makeTree({ 'ca.pem': authority.cert, 'client.pem': client.cert, 'client-key.pem': client.key, 'not-pem.txt': 'hello' });
  tlsFiles = { cacert: certs.path('ca.pem'), cert: certs.path('client.pem'), key: certs.path('client-key.pem') };
});
after(async () => {
  await tree.remove();
  await certs.remove();
});

function logsIn(dir: string) {
  const id = process.hrtime.bigint();
  return { out: join(dir, `results-${id}.jsonl`), failures: join(dir, `failures-${id}.jsonl`) };
}

/** Each file of the tree arrived once, byte for byte, in the requests' multipart bodies. */
function assertEveryFileArrived(requests: ReadonlyArray<Pick<Received, 'headers' | 'body'>>): void {
  const arrived = requests.map((request) => parseMultipart(request).find((part) => part.name === 'image'));
  assert.deepEqual(arrived.map((part) => part?.filename).sort(), NAMES.map((name) => basename(name)).sort());
  for (const name of NAMES) {
    const part = arrived.find((candidate) => candidate?.filename === basename(name));
    assert.equal(part === undefined ? '' : sha256(part.data), tree.hashes.get(name), name);
  }
}

async function failuresOf(path: string): Promise<FailureRecord[]> {
  const [, ...records] = await readJsonl<FailureRecord>(path);
  return records;
}

function run(options: Omit<PushOptions, 'inputs'>, warnings: string[] = []) {
  return push({ inputs: [tree.root], retryMinDelayMs: 1, retryMaxDelayMs: 5, ...options }, { onWarning: (message) => warnings.push(message) });
}

test('a private CA not given: every file fails at its first attempt, in the failure log with the TLS reason, the host and what to do', async () => {
  const https = await startServer(undefined, { tls: server });
  try {
    const logs = logsIn(tree.root);
    const warnings: string[] = [];
    const summary = await run({ url: https.url, retries: 3, ...logs }, warnings);
    assert.equal(summary.failed, NAMES.length);
    assert.equal(summary.retries, 0, 'a certificate does not fix itself: no retry');
    assert.deepEqual(warnings, [], 'nor is it taken for an outage');
    assert.equal(https.received.length, 0);
    const failures = await failuresOf(logs.failures);
    assert.deepEqual(failures.map((f) => f.rel).sort(), [...NAMES].sort());
    for (const failure of failures) {
      assert.equal(failure.code, 'IMGPUSH_TLS');
      assert.equal(failure.attempts, 1);
      assert.equal(failure.message, `the TLS certificate of ${new URL(https.url).host} is not signed by an authority this machine trusts: `
        + 'give that authority\'s certificate with --cacert FILE, or skip the check with --insecure (UNABLE_TO_VERIFY_LEAF_SIGNATURE)');
    }
  } finally {
    await https.close();
  }
});

test('--cacert trusts the private CA for the run: every file arrives byte for byte', async () => {
  const https = await startServer(undefined, { tls: server });
  try {
    const summary = await run({ url: `${https.url}/predict`, cacert: tlsFiles.cacert, ...logsIn(tree.root) });
    assert.equal(summary.ok, NAMES.length);
    assertEveryFileArrived(https.received);
  } finally {
    await https.close();
  }
});

test('--insecure sends without checking the certificate, and says so in a warning', async () => {
  const https = await startServer(undefined, { tls: server });
  try {
    const warnings: string[] = [];
    const summary = await run({ url: https.url, insecure: true, ...logsIn(tree.root) }, warnings);
    assert.equal(summary.ok, NAMES.length);
    assert.deepEqual(warnings, ['--insecure: the server\'s certificate is not checked, so anyone on the way can read or change the uploads']);
  } finally {
    await https.close();
  }
});

test('a certificate for another host name, or expired, is named as such, trusted CA or not, and not retried', async () => {
  const cases: Array<[Issued, RegExp]> = [
    [wrongHost, /^the TLS certificate of 127\.0\.0\.1:\d+ is for other host names: use one it names in --url, or skip the check with --insecure \(ERR_TLS_CERT_ALTNAME_INVALID\)$/],
    [expired, /^the TLS certificate of 127\.0\.0\.1:\d+ has expired: it must be renewed on the server, or skip the check with --insecure \(CERT_HAS_EXPIRED\)$/],
  ];
  for (const [certificate, message] of cases) {
    const https = await startServer(undefined, { tls: certificate });
    try {
      const logs = logsIn(tree.root);
      const summary = await run({ url: https.url, cacert: tlsFiles.cacert, ...logs });
      assert.equal(summary.failed, NAMES.length);
      // Files not yet sent when the first refusal stopped the run are in the log as not sent, not as tried.
      const failures = await failuresOf(logs.failures);
      const tried = failures.filter((failure) => failure.code !== 'IMGPUSH_INTERRUPTED');
      const notSent = failures.filter((failure) => failure.code === 'IMGPUSH_INTERRUPTED');
      assert.ok(tried.length >= 1);
      for (const failure of tried) {
        assert.equal(failure.code, 'IMGPUSH_TLS');
        assert.equal(failure.attempts, 1);
        assert.match(failure.message, message);
      }
      for (const failure of notSent) assert.equal(failure.attempts, 0);
    } finally {
      await https.close();
    }
  }
});

test('mutual TLS: a server that requires a client certificate turns the files away without --cert/--key, and takes every one with them', async () => {
  const https = await startServer(undefined, { tls: { ...server, ca: ca.cert, requestCert: true, rejectUnauthorized: true } });
  try {
    const logs = logsIn(tree.root);
    const refused = await run({ url: https.url, cacert: tlsFiles.cacert, retries: 0, ...logs });
    assert.equal(refused.failed, NAMES.length);
    assert.equal(https.received.length, 0);
    const failures = await failuresOf(logs.failures);
    assert.deepEqual(failures.map((f) => f.rel).sort(), [...NAMES].sort());
    for (const failure of failures) assert.match(failure.message, /client certificate.*--cert and --key/);

    const accepted = await run({ url: https.url, ...tlsFiles, ...logsIn(tree.root) });
    assert.equal(accepted.ok, NAMES.length);
    assertEveryFileArrived(https.received);
  } finally {
    await https.close();
  }
});

test('TLS files are read before anything is sent: a missing, non-PEM or mismatched file is a usage error naming the flag and the file', async () => {
  const https = await startServer(undefined, { tls: server });
  try {
    const cases: Array<[Partial<PushOptions>, RegExp]> = [
      [{ cacert: certs.path('nope.pem') }, /^--cacert .*nope\.pem does not exist$/],
      [{ cacert: certs.path('not-pem.txt') }, /^--cacert .*not-pem\.txt holds no PEM certificate/],
      [{ cert: tlsFiles.cert }, /^--cert and --key go together/],
      [{ key: tlsFiles.key }, /^--cert and --key go together/],
      [{ cert: tlsFiles.cert, key: tlsFiles.cacert }, /^--key .*ca\.pem is not a PEM private key$/],
      [{ cert: tlsFiles.cacert, key: tlsFiles.key }, /^--key .*client-key\.pem is not the private key of --cert .*ca\.pem$/],
    ];
    for (const [options, message] of cases) {
      await assert.rejects(run({ url: https.url, ...options, ...logsIn(tree.root) }), (error: unknown) => {
        assert.ok(error instanceof UsageError, String(error));
        assert.match(error.message, message);
        return true;
      });
    }
    assert.equal(https.received.length, 0);
  } finally {
    await https.close();
  }
});

test('--http2: a server that speaks HTTP/2 alone gets every file over HTTP/2, on no more connections than --concurrency', async () => {
  const h2 = await startHttp2Server(server);
  try {
    const summary = await run({ url: `${h2.url}/predict`, http2: true, cacert: tlsFiles.cacert, concurrency: 2, ...logsIn(tree.root) });
    assert.equal(summary.ok, NAMES.length);
    assert.deepEqual(h2.received.map((request) => request.httpVersion), NAMES.map(() => '2.0'));
    assertEveryFileArrived(h2.received);
    assert.ok(h2.sessions() <= 2, `${h2.sessions()} connections`);
  } finally {
    await h2.close();
  }
});

test('--http2 on an http:// URL says it has no effect, and the run goes on over HTTP/1.1', async () => {
  const plain = await startServer();
  try {
    const warnings: string[] = [];
    const summary = await run({ url: plain.url, http2: true, insecure: true, ...logsIn(tree.root) }, warnings);
    assert.equal(summary.ok, NAMES.length);
    assert.deepEqual(warnings, [
      '--http2: no effect on an http:// URL (HTTP/2 is offered in the TLS handshake, so to https:// only)',
      '--insecure: no effect on an http:// URL, which has no TLS',
    ]);
  } finally {
    await plain.close();
  }
});

test('--proxy: an https:// server is reached through a CONNECT tunnel, an http:// one by absolute-form requests', async () => {
  const proxy = await startProxy();
  const https = await startServer(undefined, { tls: server });
  const plain = await startServer();
  try {
    const secure = await run({ url: `${https.url}/predict`, proxy: proxy.url, cacert: tlsFiles.cacert, concurrency: 2, ...logsIn(tree.root) });
    assert.equal(secure.ok, NAMES.length);
    assertEveryFileArrived(https.received);
    const tunnels = proxy.asked.filter((line) => line === `CONNECT ${new URL(https.url).host}`);
    assert.ok(tunnels.length >= 1 && tunnels.length <= 2, proxy.asked.join('\n'));

    const relayed = await run({ url: `${plain.url}/predict`, proxy: proxy.url, ...logsIn(tree.root) });
    assert.equal(relayed.ok, NAMES.length);
    assertEveryFileArrived(plain.received);
    assert.equal(proxy.asked.filter((line) => line === `POST ${plain.url}/predict`).length, NAMES.length);
  } finally {
    await Promise.all([proxy.close(), https.close(), plain.close()]);
  }
});

test('--http2 through a proxy: the tunnel carries HTTP/2', async () => {
  const proxy = await startProxy();
  const h2 = await startHttp2Server(server);
  try {
    const summary = await run({ url: h2.url, http2: true, proxy: proxy.url, cacert: tlsFiles.cacert, ...logsIn(tree.root) });
    assert.equal(summary.ok, NAMES.length);
    assert.deepEqual(h2.received.map((request) => request.httpVersion), NAMES.map(() => '2.0'));
    assert.ok(proxy.asked.includes(`CONNECT ${new URL(h2.url).host}`));
  } finally {
    await Promise.all([proxy.close(), h2.close()]);
  }
});

test('a proxy\'s user and password go to the proxy and into no log; without them its 407 fails every file at once', async () => {
  const proxy = await startProxy({ credentials: 'uploader:pr0xy-s3cret' });
  const plain = await startServer((req) => (req.body.includes('filename="b.png"') ? { status: 500 } : { status: 200 }));
  const https = await startServer(undefined, { tls: server });
  try {
    const logs = logsIn(tree.root);
    const withCredentials = proxy.url.replace('http://', 'http://uploader:pr0xy-s3cret@');
    const summary = await run({ url: plain.url, proxy: withCredentials, retries: 0, ...logs });
    assert.deepEqual([summary.ok, summary.failed], [NAMES.length - 1, 1]);
    for (const file of [logs.out, logs.failures]) assert.doesNotMatch(await readFile(file, 'utf8'), /pr0xy-s3cret/, file);
    const [header] = await readJsonl<FailureLogHeader>(logs.failures);
    assert.equal(header?.settings.proxy, proxy.url);
    assert.equal(header?.settings.proxyCredentials, true);

    for (const url of [plain.url, https.url]) {
      const refused = logsIn(tree.root);
      const denied = await run({ url, proxy: proxy.url, cacert: tlsFiles.cacert, ...refused });
      assert.equal(denied.failed, NAMES.length, url);
      for (const failure of await failuresOf(refused.failures)) {
        assert.equal(failure.code, 'IMGPUSH_PROXY_AUTH', url);
        assert.equal(failure.attempts, 1, url);
        assert.equal(failure.message, `the proxy ${proxy.url} answered 407 Proxy Authentication Required: give its user and password in the proxy URL (http://user:password@host:port)`);
      }
    }
  } finally {
    await Promise.all([proxy.close(), plain.close(), https.close()]);
  }
});

test('the environment\'s proxy: HTTP_PROXY or https_proxy carries the requests, NO_PROXY lets them go straight, --proxy wins over both', async () => {
  const fromEnv = await startProxy();
  const given = await startProxy();
  const plain = await startServer();
  const https = await startServer(undefined, { tls: server });
  try {
    const host = new URL(plain.url).host;
    const cases: Array<[string, Partial<PushOptions>, number, number]> = [
      // name, options, requests through fromEnv, through given
      ['HTTP_PROXY', { proxyEnv: { HTTP_PROXY: fromEnv.url } }, NAMES.length, 0],
      ['http_proxy, an https_proxy that is not for http://', { proxyEnv: { http_proxy: fromEnv.url, HTTPS_PROXY: given.url } }, NAMES.length, 0],
      ['NO_PROXY lists the address', { proxyEnv: { HTTP_PROXY: fromEnv.url, NO_PROXY: 'example.com, 127.0.0.1' } }, 0, 0],
      ['no_proxy lists the address and port', { proxyEnv: { HTTP_PROXY: fromEnv.url, no_proxy: host } }, 0, 0],
      ['NO_PROXY lists another host', { proxyEnv: { HTTP_PROXY: fromEnv.url, NO_PROXY: 'localhost' } }, NAMES.length, 0],
      ['--proxy over HTTP_PROXY', { proxyEnv: { HTTP_PROXY: fromEnv.url }, proxy: given.url }, 0, NAMES.length],
      ['--proxy over NO_PROXY', { proxyEnv: { NO_PROXY: '*' }, proxy: given.url }, 0, NAMES.length],
    ];
    for (const [name, options, viaEnv, viaGiven] of cases) {
      const [envCount, givenCount, receivedCount] = [fromEnv.asked.length, given.asked.length, plain.received.length];
      const summary = await run({ url: `${plain.url}/predict`, ...options, ...logsIn(tree.root) });
      assert.equal(summary.ok, NAMES.length, name);
      assert.equal(plain.received.length - receivedCount, NAMES.length, name);
      assert.equal(fromEnv.asked.length - envCount, viaEnv, name);
      assert.equal(given.asked.length - givenCount, viaGiven, name);
    }
    const secure = await run({ url: https.url, cacert: tlsFiles.cacert, proxyEnv: { https_proxy: fromEnv.url, HTTP_PROXY: given.url }, ...logsIn(tree.root) });
    assert.equal(secure.ok, NAMES.length);
    assert.equal(fromEnv.asked.at(-1), `CONNECT ${new URL(https.url).host}`);
  } finally {
    await Promise.all([fromEnv.close(), given.close(), plain.close(), https.close()]);
  }
});

test('retry sends again as the first run did: the recorded CA, client certificate and proxy', async () => {
  const proxy = await startProxy();
  let refused: number | undefined;
  const https = await startServer((req, _res, index) => {
    if (refused === undefined && req.body.includes('filename="b.png"')) {
      refused = index;
      return { status: 503 };
    }
    return { status: 200 };
  }, { tls: { ...server, ca: ca.cert, requestCert: true, rejectUnauthorized: true } });
  try {
    const logs = logsIn(tree.root);
    const summary = await run({ url: https.url, ...tlsFiles, proxy: proxy.url, http2: true, retries: 0, ...logs });
    assert.deepEqual([summary.ok, summary.failed], [NAMES.length - 1, 1]);
    const [header] = await readJsonl<FailureLogHeader>(logs.failures);
    assert.deepEqual(
      [header?.settings.cacert, header?.settings.cert, header?.settings.key, header?.settings.proxy, header?.settings.http2, header?.settings.insecure],
      [tlsFiles.cacert, tlsFiles.cert, tlsFiles.key, proxy.url, true, false],
    );
    const tunnels = proxy.asked.length;
    const again = await retry(logs.failures, { out: logs.out });
    assert.equal(again.ok, 1);
    assert.equal(again.failuresFile, null);
    assert.ok(proxy.asked.length > tunnels, 'through the proxy again');
    assertEveryFileArrived(https.received.filter((_req, index) => index !== refused));
  } finally {
    await Promise.all([proxy.close(), https.close()]);
  }
});
