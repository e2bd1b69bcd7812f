import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A server with a hard limit, for `npm run bench:auto`: above LIMIT
 * requests in flight it answers 429 (Retry-After: 0) at once; under it,
 * it reads the body and answers after a millisecond of "work". Prints its
 * port once listening.
 */
const LIMIT = Number(process.env.LIMIT ?? 8);
let inFlight = 0;
const server = createServer((req, res) => {
  inFlight++;
  const refuse = inFlight > LIMIT;
  req.resume();
  req.on('end', () => {
    const answer = (): void => {
      inFlight--;
      res.writeHead(refuse ? 429 : 200, refuse ? { 'retry-after': '0' } : { 'content-type': 'application/json' });
      res.end(refuse ? '' : '{"ok":true}');
    };
    if (refuse) answer();
    else setTimeout(answer, 1);
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
