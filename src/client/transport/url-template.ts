import { sep } from 'node:path';
import { UsageError } from '../../shared/errors.js';

const PLACEHOLDERS = ['path', 'name', 'stem', 'ext'] as const;
type Placeholder = typeof PLACEHOLDERS[number];

/**
 * A parsed `--url`: a fixed origin, and a path (with query) that may hold
 * `{path}`, `{name}`, `{stem}` and `{ext}`, filled in per file.
 */
export interface UrlTemplate {
  readonly text: string;
  /** scheme://host:port, where the connection pool goes. */
  readonly origin: string;
  /** host:port, for messages. */
  readonly host: string;
  /** Path and query for a file whose path relative to its input root is `rel`. */
  pathFor(rel: string): string;
  /** Whether the path holds placeholders, so that it differs from file to file. */
  readonly perFile: boolean;
}

function encodePath(rel: string): string {
  return rel.split(sep).map(encodeURIComponent).join('/');
}

function baseName(rel: string): string {
  return rel.slice(rel.lastIndexOf(sep) + 1);
}

function stemAndExt(rel: string): [string, string] {
  const name = baseName(rel);
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? [name, ''] : [name.slice(0, dot), name.slice(dot + 1)];
}

const RENDER: Readonly<Record<Placeholder, (rel: string) => string>> = {
  path: encodePath,
  name: (rel) => encodeURIComponent(baseName(rel)),
  stem: (rel) => encodeURIComponent(stemAndExt(rel)[0]),
  ext: (rel) => encodeURIComponent(stemAndExt(rel)[1]),
};

/**
 * Parses and checks `--url` once, so that per file only the placeholders are
 * filled in.
 *
 * @example
 * parseUrlTemplate('http://host/bucket/{path}').pathFor('a/b c.jpg') // '/bucket/a/b%20c.jpg'
 */
export function parseUrlTemplate(text: string): UrlTemplate {
  let url: URL;
  try {
    url = new URL(text.replace(/\{(\w+)\}/g, 'x'));
  } catch {
    throw new UsageError('IMGPUSH_BAD_URL', `--url ${JSON.stringify(text)} is not a valid URL (expected e.g. http://host:8000/predict)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError('IMGPUSH_BAD_URL', `--url must start with http:// or https:// (got ${url.protocol})`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new UsageError('IMGPUSH_BAD_URL', '--url must not hold a user name or password: use --token or --header');
  }
  const schemeEnd = text.indexOf('//') + 2;
  const pathStart = text.slice(schemeEnd).search(/[/?#]/);
  const rest = pathStart === -1 ? '/' : text.slice(schemeEnd + pathStart);
  if (pathStart !== -1 && text.slice(0, schemeEnd + pathStart).includes('{')) {
    throw new UsageError('IMGPUSH_BAD_URL', '--url placeholders may stand in the path and query only, not in the host');
  }
  if (/[\s\x00-\x1f]/.test(rest)) {
    throw new UsageError('IMGPUSH_BAD_URL', '--url must not hold spaces or control characters: encode them (a space is %20)');
  }
  const withoutFragment = rest.split('#')[0] as string;
  const path = withoutFragment.startsWith('/') ? withoutFragment : `/${withoutFragment}`;
  return { text, origin: url.origin, host: url.host, pathFor: compilePath(path), perFile: /\{\w+\}/.test(path) };
}

function compilePath(path: string): (rel: string) => string {
  const literals: string[] = [];
  const fills: Array<(rel: string) => string> = [];
  let last = 0;
  for (const match of path.matchAll(/\{(\w+)\}/g)) {
    const name = match[1] as string;
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      throw new UsageError('IMGPUSH_BAD_URL', `--url has an unknown placeholder {${name}}; known ones are ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`);
    }
    literals.push(path.slice(last, match.index));
    fills.push(RENDER[name as Placeholder]);
    last = match.index + match[0].length;
  }
  if (fills.length === 0) return () => path;
  literals.push(path.slice(last));
  return (rel) => {
    let out = literals[0] as string;
    for (let i = 0; i < fills.length; i++) out += (fills[i] as (r: string) => string)(rel) + (literals[i + 1] as string);
    return out;
  };
}
