import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';
import { createSecureServer, type ServerHttp2Session } from 'node:http2';
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

export interface ServerOptions {
  /** Keep each request's body in `received` (its size and hash are kept either way). */
  readonly keepBodies?: boolean;
  /** Serve https:// with these options (cert, key, and for mutual TLS requestCert and ca). */
  readonly tls?: HttpsOptions;
}

/**
 * A real HTTP server on a free port of 127.0.0.1 that reads every byte of
 * every request, keeps it, and answers as `respond` says (200 by default).
 */
export async function startServer(respond: Responder = ok, { keepBodies = true, tls }: ServerOptions = {}): Promise<TestServer> {
  const received: Received[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const listener: RequestListener = (req, res) => {
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
  };
  const server: Server = tls === undefined ? createServer(listener) : createHttpsServer(tls, listener);
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
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

export interface Http2TestServer {
  readonly url: string;
  /** Each request with the HTTP version it came in. */
  readonly received: Array<Pick<Received, 'headers' | 'body'> & { readonly httpVersion: string }>;
  /** HTTP/2 sessions opened to it: one per connection. */
  readonly sessions: () => number;
  close(): Promise<void>;
}

/** An https:// server that speaks HTTP/2 alone (allowHTTP1: false) and answers every request 200. */
export async function startHttp2Server(tls: { readonly cert: string; readonly key: string }): Promise<Http2TestServer> {
  const received: Http2TestServer['received'] = [];
  const open = new Set<ServerHttp2Session>();
  let sessions = 0;
  const server = createSecureServer({ ...tls, allowHTTP1: false }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks), httpVersion: req.httpVersion });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  server.on('session', (session: ServerHttp2Session) => {
    sessions++;
    open.add(session);
    session.on('close', () => open.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    sessions: () => sessions,
    close: () => new Promise<void>((resolve) => {
      for (const session of open) session.destroy();
      server.close(() => resolve());
    }),
  };
}

export interface Part {
  readonly name: string;
  readonly filename: string | undefined;
  readonly contentType: string | undefined;
  readonly data: Buffer;
}

/** Splits a multipart/form-data body into its parts, byte for byte (a test's own reading, independent of imgpush's framing). */
export function parseMultipart(req: Pick<Received, 'headers' | 'body'>): Part[] {
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
