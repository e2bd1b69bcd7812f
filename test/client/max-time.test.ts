import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseArguments } from '../../src/cli/parse.js';
import { push } from '../../src/client/index.js';
import type { FailureRecord } from '../../src/client/logs/failure-log.js';
import { makeTree, readJsonl, type Tree } from '../helpers/files.js';
import { startServer } from '../helpers/server.js';

let tree: Tree;

before(async () => {
  tree = await makeTree({ 'a.jpg': 100 });
});
after(() => tree.remove());

// --timeout alone (60 s of silence) never ends this answer: a byte comes every 20 ms, forever.
test('--max-time ends a request whose answer is trickled a byte at a time, with IMGPUSH_MAX_TIME', { timeout: 10_000 }, async () => {
  const timers = new Set<NodeJS.Timeout>();
  const server = await startServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write('.'), 20);
    timers.add(timer);
    res.on('close', () => clearInterval(timer));
    return 'handled';
  });
  try {
    const failures = join(tree.root, 'failures.jsonl');
    const summary = await push({ inputs: [tree.root], url: server.url, maxTimeMs: 300, retries: 1, retryMinDelayMs: 1, out: join(tree.root, 'results.jsonl'), failures });
    assert.equal(summary.failed, 1);
    assert.equal(server.received.length, 2, 'retried once');
    const [header, failure] = await readJsonl<FailureRecord & { settings: { maxTimeMs?: number } }>(failures);
    assert.equal(failure?.code, 'IMGPUSH_MAX_TIME');
    assert.equal(failure?.message, `${new URL(server.url).host} did not finish answering within 0.3 s (--max-time)`);
    assert.equal(header?.settings.maxTimeMs, 300, 'recorded for imgpush retry');
  } finally {
    for (const timer of timers) clearInterval(timer);
    await server.close();
  }
});

test('--max-time takes a duration, as --timeout does', () => {
  const parsed = parseArguments(['./frames', '--url', 'http://localhost:8000/predict', '--max-time', '2m'], '0.0.0');
  assert.equal(parsed.command, 'push');
  assert.equal(parsed.command === 'push' ? parsed.options.maxTimeMs : undefined, 120_000);
  assert.throws(() => parseArguments(['./frames', '--url', 'http://x/', '--max-time', 'soon'], '0.0.0'), /--max-time/);
});
