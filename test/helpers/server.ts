import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the test server saw it, body and all. */
export interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  /** Empty when the server was started with keepBodies: false. */
  readonly body: Buffer;
  readonly size: number;
  readonly sha256: string;
  /** The client's port: requests on one connection share it. */
  readonly remotePort: number;
}

/** What the server sends back: a status, a body (JSON unless a string), headers, after an optional delay. */
export interface Answer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly delayMs?: number;
}

/**
 * Decides the answer to a request; it may also write to `res` itself (or
 * destroy its socket) and return 'handled'.
 */
export type Responder = (req: Received, res: ServerResponse, index: number) => Answer | 'handled' | Promise<Answer | 'handled'>;

export interface TestServer {
  readonly url: string;
  readonly port: number;
  readonly received: Received[];
  /** The most requests it was ever working on at once. */
  readonly maxInFlight: () => number;
  close(): Promise<void>;
  /** Listens again on the same port after close(): a server that went away and came back. */
  restart(): Promise<void>;
}

const ok: Responder = (req) => ({ status: 200, body: { ok: true, bytes: req.size } });

/**
 * A real HTTP server on a free port of 127.0.0.1 that reads every byte of
 * every request, keeps it, and answers as `respond` says (200 by default).
 */
export async function startServer(respond: Responder = ok, { keepBodies = true } = {}): Promise<TestServer> {
  const received: Received[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server: Server = createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const chunks: Buffer[] = [];
    const hash = createHash('sha256');
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
      if (keepBodies) chunks.push(chunk);
    });
    req.on('error', () => {
      inFlight--;
    });
    req.on('end', () => {
      const entry: Received = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
        size,
        sha256: hash.digest('hex'),
        remotePort: req.socket.remotePort ?? 0,
      };
      received.push(entry);
      void Promise.resolve(respond(entry, res, received.length - 1)).then(async (answer) => {
        if (answer !== 'handled') {
          if (answer.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
          const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? {});
          const type = typeof answer.body === 'string' ? 'text/plain' : 'application/json';
          res.writeHead(answer.status, { 'content-type': type, ...answer.headers });
          res.end(text);
        }
        inFlight--;
      });
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    maxInFlight: () => maxInFlight,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
    restart: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
  };
}

export interface Part {
  readonly name: string;
  readonly filename: string | undefined;
  readonly contentType: string | undefined;
  readonly data: Buffer;
}

/** Splits a multipart/form-data body into its parts, byte for byte (a test's own reading, independent of imgpush's framing). */
export function parseMultipart(req: Received): Part[] {
  const type = String(req.headers['content-type'] ?? '');
  const boundary = /boundary=(.+)$/.exec(type)?.[1];
  if (boundary === undefined) throw new Error(`not multipart: ${type}`);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let at = req.body.indexOf(delimiter);
  while (at !== -1) {
    const start = at + delimiter.length;
    if (req.body.subarray(start, start + 2).toString() === '--') break;
    const next = req.body.indexOf(delimiter, start);
    const part = req.body.subarray(start + 2, next - 2); // after CRLF, before CRLF
    const headerEnd = part.indexOf('\r\n\r\n');
    const headers = part.subarray(0, headerEnd).toString('utf8');
    parts.push({
      name: /name="([^"]*)"/.exec(headers)?.[1] ?? '',
      filename: /filename="([^"]*)"/.exec(headers)?.[1],
      contentType: /Content-Type: (.+)/i.exec(headers)?.[1]?.trim(),
      data: part.subarray(headerEnd + 4),
    });
    at = next;
  }
  return parts;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
