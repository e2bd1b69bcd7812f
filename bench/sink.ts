import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The benchmark's sink, run as its own process: reads every byte of every
 * request, answers a small JSON, and tells its counts on GET /stats (which
 * also resets them) and when the last request arrived. Prints its port on
 * stdout once listening.
 */
let requests = 0;
let bytes = 0;
/** When the last upload's request began to arrive (ms since the epoch), for the time to first byte of one-file runs. */
let lastArrivedAt = 0;
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ requests, bytes, lastArrivedAt }));
    requests = 0;
    bytes = 0;
    return;
  }
  lastArrivedAt = performance.timeOrigin + performance.now();
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  req.on('end', () => {
    requests++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
