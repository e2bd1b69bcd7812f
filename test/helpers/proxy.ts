import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export interface TestProxy {
  /** http://127.0.0.1:port, without credentials. */
  readonly url: string;
  /** What it was asked, in order: `CONNECT 127.0.0.1:8443` for a tunnel, `POST http://127.0.0.1:8080/predict` for a plain request. */
  readonly asked: string[];
  /** Requests turned away with 407 for lack of the right Proxy-Authorization. */
  readonly refused: () => number;
  close(): Promise<void>;
}

/**
 * A forward proxy as corporate networks have them: CONNECT tunnels for
 * https:// origins, absolute-form requests (`POST http://host/path`)
 * relayed for http:// ones. With `credentials` ('user:password') it
 * answers 407 to anything without that Basic Proxy-Authorization.
 */
export async function startProxy({ credentials }: { credentials?: string } = {}): Promise<TestProxy> {
  const asked: string[] = [];
  const open = new Set<Socket | Duplex>();
  let refused = 0;
  const expected = credentials === undefined ? undefined : `Basic ${Buffer.from(credentials).toString('base64')}`;
  const allowed = (req: IncomingMessage): boolean => {
    if (expected === undefined || req.headers['proxy-authorization'] === expected) return true;
    refused++;
    return false;
  };

  const relay = (req: IncomingMessage, res: ServerResponse): void => {
    asked.push(`${req.method} ${req.url}`);
    if (!allowed(req)) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="test"', 'content-length': '0' }).end();
      return;
    }
    const target = new URL(req.url ?? '');
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  };

  const server = createServer(relay);
  server.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    asked.push(`CONNECT ${req.url}`);
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    if (!allowed(req)) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const [host = '', port = ''] = (req.url ?? '').split(/:(?=\d+$)/);
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    open.add(upstream);
    upstream.on('close', () => open.delete(upstream));
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'));
    client.on('close', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    asked,
    refused: () => refused,
    close: () => new Promise<void>((resolve) => {
      for (const socket of open) socket.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
