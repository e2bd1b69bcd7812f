import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { seededRandom } from '../../src/models/random.js';

export type Fate = 'ok' | 'slow' | '503' | '429' | 'cut';

export interface ChaosServer {
  readonly url: string;
  /** Requests that began with each file's name (cut ones included). */
  readonly receptions: Map<string, number>;
  /** sha256 of the file part of each file the server answered 200. */
  readonly accepted: Map<string, string>;
  /** From now on every request gets a plain 200. */
  heal(): void;
  close(): Promise<void>;
}

/**
 * A server that misbehaves on a seeded schedule: each request, in the order
 * they come, draws a fate: 200, a slow 200, 503 or 429 with Retry-After: 0,
 * or its connection cut in the middle of the body. It reads multipart
 * bodies of one file and keeps what it received per file.
 */
export async function startChaosServer(seed: number, weights: Record<Fate, number>): Promise<ChaosServer> {
  const random = seededRandom(seed);
  const fates = Object.entries(weights) as Array<[Fate, number]>;
  const total = fates.reduce((sum, [, weight]) => sum + weight, 0);
  const draw = (): Fate => {
    let at = random() * total;
    for (const [fate, weight] of fates) {
      if ((at -= weight) < 0) return fate;
    }
    return 'ok';
  };
  let healed = false;
  const receptions = new Map<string, number>();
  const accepted = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    const fate = healed ? 'ok' : draw();
    const chunks: Buffer[] = [];
    let size = 0;
    let name: string | undefined;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (name === undefined) {
        name = /filename="([^"]+)"/.exec(Buffer.concat(chunks).toString('latin1'))?.[1];
        if (name !== undefined) receptions.set(name, (receptions.get(name) ?? 0) + 1);
      }
      if (fate === 'cut' && size > Number(req.headers['content-length']) / 2) req.socket.destroy();
    });
    req.on('end', () => {
      // A small body can arrive whole in one chunk: the cut then happens here, before any answer.
      if (fate === 'cut') {
        req.socket.destroy();
        return;
      }
      if (fate === '503' || fate === '429') {
        res.writeHead(Number(fate), { 'retry-after': '0', 'content-type': 'text/plain' });
        res.end(fate === '503' ? 'overloaded' : 'slow down');
        return;
      }
      const body = Buffer.concat(chunks);
      const boundary = /boundary=(.+)$/.exec(String(req.headers['content-type']))?.[1] ?? '';
      const start = body.indexOf('\r\n\r\n') + 4;
      const end = body.lastIndexOf(`\r\n--${boundary}--`);
      const answer = (): void => {
        if (name !== undefined) accepted.set(name, createHash('sha256').update(body.subarray(start, end)).digest('hex'));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ name }));
      };
      if (fate === 'slow') setTimeout(answer, 30);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    receptions,
    accepted,
    heal: () => {
      healed = true;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
