import type { Pool, ProxyAgent } from 'undici';
import type { Sender } from './exchange.js';
import { H1Pool } from './h1-pool.js';
import type { TlsContext } from './tls-context.js';

/** undici's parts a run needs: its Pool for https:// (and HTTP/2), its ProxyAgent for a proxy. */
export interface Undici {
  readonly Pool: typeof Pool;
  readonly ProxyAgent: typeof ProxyAgent | undefined;
}

/**
 * Loads undici's Pool, and its ProxyAgent when `proxy`; a run to plain
 * http:// servers needs neither (see H1Pool). Its index would load fetch,
 * WebSocket, caches, cookies and mocks as well: a hundred modules and about
 * 100 ms at every start. The package has no export map: these paths are part
 * of what it publishes. ProxyAgent opens its tunnels with the `connect()`
 * that undici's index gives every dispatcher, so that one method is given
 * here, as the index does.
 */
export async function loadUndici(proxy: boolean): Promise<Undici> {
  // V8 recompiles undici's HTTP parser (WebAssembly) with its optimizing compiler after a few answers:
  // 400 ms of CPU on another thread that the process also waits for before it exits (170 ms after a
  // one-file run), for a parser whose share of a run is small. Liftoff's code serves it; a run long
  // enough to spend this budget still gets the optimized parser. The flag holds for what compiles after it.
  process.getBuiltinModule('node:v8').setFlagsFromString('--wasm-tiering-budget=100000000');
  const pool = await import('undici/lib/dispatcher/pool.js');
  if (!proxy) return { Pool: pool.default, ProxyAgent: undefined };
  const [agent, dispatcher, connect] = await Promise.all([
    import('undici/lib/dispatcher/proxy-agent.js'), import('undici/lib/dispatcher/dispatcher.js'), import('undici/lib/api/api-connect.js'),
  ]);
  dispatcher.default.prototype.connect ??= connect.default;
  return { Pool: pool.default, ProxyAgent: agent.default };
}

/** Whether a server is reached through undici (see createDispatcher), which must then be loaded first. */
export function needsUndici(origin: string, proxy: boolean): boolean {
  return proxy || !origin.startsWith('http:');
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
  /** The proxy's URL, user and password included. */
  readonly proxy: string | undefined;
  /** undici, when needsUndici() says so (see loadUndici). */
  readonly undici: Undici | undefined;
}

/**
 * What every request of a run to one server goes through: exactly
 * `connections` keep-alive sockets (undici's default is one per concurrent
 * request, unbounded). A plain http:// server is reached by H1Pool; an
 * https:// one by undici's Pool, and any through a proxy by undici's
 * ProxyAgent. Requests must name their `origin`, which the ProxyAgent needs.
 */
export function createDispatcher(settings: ConnectionSettings): Sender {
  const { origin, connections, timeoutMs, connectTimeoutMs, http2, tls, proxy, undici } = settings;
  if (!needsUndici(origin, proxy !== undefined)) return new H1Pool({ origin, connections, timeoutMs, connectTimeoutMs });
  if (undici === undefined || (proxy !== undefined && undici.ProxyAgent === undefined)) throw new Error(`reaching ${origin} loads undici first (loadUndici)`);
  // HTTP/2 too gets one upload per connection: undici opens a second stream on a session only for
  // a request it could send again (GET, HEAD or marked idempotent) without a stream body, so POSTs,
  // PUTs and files streamed from disk would queue on one session while the pool sat idle. A socket
  // per upload in flight keeps --concurrency meaning what it means over HTTP/1.1.
  const pool = { connections, pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs };
  const secure = tls === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized, secureContext: tls.secureContext };
  const { Pool: UndiciPool, ProxyAgent: UndiciProxyAgent } = undici;
  if (proxy === undefined || UndiciProxyAgent === undefined) {
    return new UndiciPool(origin, { ...pool, allowH2: http2, connect: { timeout: connectTimeoutMs, ...secure } });
  }
  return new UndiciProxyAgent({
    uri: proxy,
    // http:// origins go as absolute-form requests (POST http://host/path), as curl sends them:
    // many proxies allow CONNECT to port 443 alone. https:// origins go through a CONNECT tunnel.
    proxyTunnel: false,
    // Its pool to the origin (through tunnels) and its pool to the proxy (relayed requests) alike.
    factory: (target, options) => new UndiciPool(target, { ...options, ...pool }),
    requestTls: { timeout: connectTimeoutMs, allowH2: http2, ...secure },
    proxyTls: { timeout: connectTimeoutMs },
  });
}
