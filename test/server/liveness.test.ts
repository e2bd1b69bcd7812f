import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { test } from 'node:test';
import { request } from 'undici';
import { serve } from '../../src/server/serve.js';

/*
 * Issue 16, item 7: no body up to --max-body-size stops the event loop for
 * long. The server runs in this process, so the loop's own delay, measured
 * while it reads and checks the body, is what a health probe would wait.
 */

test('a 50 MB v2 JSON of 5 M empty strings is refused without stopping the event loop: it is parsed on another thread', { timeout: 30_000 }, async () => {
  const server = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 25 * 1024 ** 2, maxFiles: 64, batching: { maxBatch: 8, delayMs: 2, queueLimit: 64, concurrency: 1 }, cacheSize: 0, logLevel: 'silent' }, () => {});
  try {
    await server.ready;
    const body = Buffer.from(`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":[${'"",       '.repeat(5_000_000 - 1)}""]}]}`);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const answer = await request(`${server.url}/v2/models/builtin:colors/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const json = await answer.body.json() as { code: string };
    loop.disable();
    assert.equal(answer.statusCode, 400);
    assert.equal(json.code, 'IMGPUSH_BAD_V2_BODY');
    const worstMs = loop.max / 1e6;
    // Generous, to prove bounded: the parse on the loop took 1.6 s; off it the loop waits some 60 ms at worst.
    assert.ok(worstMs < 750, `the event loop stalled ${worstMs.toFixed(0)} ms`);
  } finally {
    await server.close();
  }
});
