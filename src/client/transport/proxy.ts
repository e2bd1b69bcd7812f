import { UsageError } from '../../shared/errors.js';

/** Where a run's requests go first. */
export interface Proxy {
  /** As given, user and password included: for undici only, never for output. */
  readonly url: string;
  /** The URL without user and password: what messages and logs may show. */
  readonly shown: string;
  /** It carries a user or a password, which no log records. */
  readonly credentials: boolean;
}

/** Environment variables, as `process.env` holds them. */
export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Checks a proxy URL, read as curl reads it: `proxy:3128` alone means
 * http://proxy:3128. `source` names where it came from (--proxy,
 * HTTPS_PROXY…); messages never repeat a value, which may hold a password.
 */
export function parseProxy(value: string, source: string): Proxy {
  const text = /^[a-z][a-z\d+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError('IMGPUSH_USAGE', `${source} is not a URL: expected http://host:port, or http://user:password@host:port`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError('IMGPUSH_USAGE', `${source} must be an http:// or https:// proxy (got ${url.protocol}//…)`);
  }
  return { url: text, shown: url.origin, credentials: url.username !== '' || url.password !== '' };
}

/**
 * The proxy the environment sets for `origin`, the way curl and undici read
 * it: https_proxy or HTTPS_PROXY for https://, http_proxy or HTTP_PROXY for
 * http:// (lower case first), unless no_proxy or NO_PROXY covers the host.
 */
export function proxyFromEnvironment(origin: URL, env: Environment): Proxy | undefined {
  const lower = origin.protocol === 'https:' ? 'https_proxy' : 'http_proxy';
  const name = [lower, lower.toUpperCase()].find((key) => (env[key] ?? '') !== '');
  if (name === undefined || bypassesProxy(env.no_proxy ?? env.NO_PROXY ?? '', origin)) return undefined;
  return parseProxy(env[name] as string, name);
}

function hostAndPort(entry: string): [string, number | undefined] {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
  if (bracketed !== null) return [bracketed[1] ?? '', bracketed[2] === undefined ? undefined : Number(bracketed[2])];
  // An IPv6 address without brackets cannot carry a port.
  if (entry.indexOf(':') !== entry.lastIndexOf(':')) return [entry, undefined];
  const [host = '', port] = entry.split(':');
  return [host, port === undefined ? undefined : Number(port)];
}

/**
 * Whether a NO_PROXY list covers `origin`: `*` covers every host; a name
 * covers itself and its subdomains (`example.com`, `.example.com` and
 * `*.example.com` alike); an address covers itself; `:port` narrows either.
 */
export function bypassesProxy(noProxy: string, origin: URL): boolean {
  const host = origin.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = Number(origin.port) || (origin.protocol === 'https:' ? 443 : 80);
  return noProxy.split(/[\s,]+/).some((entry) => {
    if (entry === '*') return true;
    const [name, entryPort] = hostAndPort(entry);
    const domain = name.replace(/^\*?\./, '').toLowerCase();
    if (domain === '' || (entryPort !== undefined && entryPort !== port)) return false;
    return host === domain || host.endsWith(`.${domain}`);
  });
}
