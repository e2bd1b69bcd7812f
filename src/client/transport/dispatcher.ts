// undici's index loads fetch, WebSocket, caches, cookies and mocks as well: a hundred modules and
// about 100 ms at every start, for a run that needs its Pool alone (its ProxyAgent with a proxy).
// The package has no export map: these paths are part of what it publishes.
import Pool from 'undici/lib/dispatcher/pool.js';
import type { Dispatcher, ProxyAgent } from 'undici';
import type { TlsContext } from './tls-context.js';

/**
 * undici's ProxyAgent, loaded only by runs that go through a proxy. It opens
 * its tunnels with the `connect()` that undici's index gives every dispatcher,
 * so that one method is given here, as the index does.
 */
export async function loadProxyAgent(): Promise<typeof ProxyAgent> {
  const [agent, dispatcher, connect] = await Promise.all([
    import('undici/lib/dispatcher/proxy-agent.js'), import('undici/lib/dispatcher/dispatcher.js'), import('undici/lib/api/api-connect.js'),
  ]);
  dispatcher.default.prototype.connect ??= connect.default;
  return agent.default;
}

export interface ConnectionSettings {
  /** Where every request goes: scheme, host and port. */
  readonly origin: string;
  /** Sockets to the server: uploads in flight at once. */
  readonly connections: number;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Offer HTTP/2 in the TLS handshake (ALPN); the server picks. */
  readonly http2: boolean;
  readonly tls: TlsContext | undefined;
  /** The proxy's URL, user and password included, and undici's ProxyAgent (see loadProxyAgent). */
  readonly proxy: { readonly url: string; readonly agent: typeof ProxyAgent } | undefined;
}

/**
 * The undici dispatcher every request of a run goes through: a keep-alive
 * Pool of exactly `connections` sockets to the origin (undici's default is
 * one per concurrent request, unbounded), reached directly or through a
 * ProxyAgent. Requests must name their `origin`, which the ProxyAgent needs.
 */
export function createDispatcher(settings: ConnectionSettings): Dispatcher {
  const { origin, connections, timeoutMs, connectTimeoutMs, http2, tls, proxy } = settings;
  // HTTP/2 too gets one upload per connection: undici opens a second stream on a session only for
  // a request it could send again (GET, HEAD or marked idempotent) without a stream body, so POSTs,
  // PUTs and files streamed from disk would queue on one session while the pool sat idle. A socket
  // per upload in flight keeps --concurrency meaning what it means over HTTP/1.1.
  const pool = { connections, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs };
  const secure = tls === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized, secureContext: tls.secureContext };
  if (proxy === undefined) {
    return new Pool(origin, { ...pool, allowH2: http2, connect: { timeout: connectTimeoutMs, ...secure } });
  }
  return new proxy.agent({
    uri: proxy.url,
    // http:// origins go as absolute-form requests (POST http://host/path), as curl sends them:
    // many proxies allow CONNECT to port 443 alone. https:// origins go through a CONNECT tunnel.
    proxyTunnel: false,
    // Its pool to the origin (through tunnels) and its pool to the proxy (relayed requests) alike.
    factory: (target, options) => new Pool(target, { ...options, ...pool }),
    requestTls: { timeout: connectTimeoutMs, allowH2: http2, ...secure },
    proxyTls: { timeout: connectTimeoutMs },
  });
}
