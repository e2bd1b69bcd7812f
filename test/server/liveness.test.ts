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

/** A v2 JSON body whose one input's data is `count` empty lists: 3 bytes each, and costly to parse (4.6 s for 8 M here). */
function emptyLists(count: number): Buffer {
  return Buffer.from(`{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":[${'[],'.repeat(count - 1)}[]]}]}`);
}

test('a 6 MB v2 JSON of 2 M empty lists is refused without stopping the event loop: it is parsed on another thread', { timeout: 30_000 }, async () => {
  const server = await serve({ model: 'builtin:colors', device: 'cpu', host: '127.0.0.1', port: 0, maxFileSize: 25 * 1024 ** 2, maxFiles: 64, batching: { maxBatch: 8, delayMs: 2, queueLimit: 64, concurrency: 1 }, cacheSize: 0, logLevel: 'silent' }, () => {});
  try {
    await server.ready;
    const body = emptyLists(2_000_000);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const answer = await request(`${server.url}/v2/models/builtin:colors/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    const json = await answer.body.json() as { code: string };
    loop.disable();
    assert.equal(answer.statusCode, 400);
    assert.equal(json.code, 'IMGPUSH_BAD_V2_BODY');
    const worstMs = loop.max / 1e6;
    // Generous, to prove bounded: parsed on the loop, this body stalls it about a second.
    assert.ok(worstMs < 500, `the event loop stalled ${worstMs.toFixed(0)} ms`);
  } finally {
    await server.close();
  }
});
