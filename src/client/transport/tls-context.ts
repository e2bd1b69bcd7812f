import { readFile } from 'node:fs/promises';
import type { SecureContext, SecureContextOptions } from 'node:tls';
import { UsageError } from '../../shared/errors.js';

/** What the TLS options of a run come to, for every connection to the server. */
export interface TlsContext {
  /** Built once for the run: trusted authorities and the client certificate. Undefined: Node's defaults. */
  readonly secureContext: SecureContext | undefined;
  readonly rejectUnauthorized: boolean;
}

/** The TLS files and switches of a run, as resolveOptions checked them. */
export interface TlsFiles {
  readonly cacert: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly insecure: boolean;
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

async function readText(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    throw new UsageError('IMGPUSH_BAD_TLS_FILE', `${flag} ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`);
  }
}

/** The PEM certificates of a file, each checked: a file that holds none would otherwise be ignored without a word. */
async function readCertificates(flag: string, path: string): Promise<string[]> {
  const pems = (await readText(flag, path)).match(CERTIFICATE) ?? [];
  if (pems.length === 0) throw new UsageError('IMGPUSH_BAD_TLS_FILE', `${flag} ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  for (const pem of pems) {
    try {
      // node:crypto, as node:tls, is loaded by the runs that need it.
      new (process.getBuiltinModule('node:crypto').X509Certificate)(pem);
    } catch {
      throw new UsageError('IMGPUSH_BAD_TLS_FILE', `${flag} ${path} holds a certificate that cannot be read`);
    }
  }
  return pems;
}

async function readKey(path: string): Promise<string> {
  const pem = await readText('--key', path);
  if (/ENCRYPTED/.test(pem)) throw new UsageError('IMGPUSH_BAD_TLS_FILE', `--key ${path} is encrypted: imgpush needs the key without a passphrase`);
  try {
    process.getBuiltinModule('node:crypto').createPrivateKey(pem);
  } catch {
    throw new UsageError('IMGPUSH_BAD_TLS_FILE', `--key ${path} is not a PEM private key`);
  }
  return pem;
}

/**
 * The authorities Node trusts by default. Node 22.15 and later tell them
 * with NODE_EXTRA_CA_CERTS and the system's store when enabled; older ones
 * give the bundled list alone.
 */
function defaultAuthorities(tls: typeof import('node:tls')): readonly string[] {
  const { getCACertificates } = tls as { getCACertificates?: (type: 'default') => string[] };
  return getCACertificates?.('default') ?? tls.rootCertificates;
}

/**
 * Reads the run's TLS files once, before anything is sent: a file that is
 * missing or not PEM, or a key that is not the certificate's, is a usage
 * error naming the flag and the file. --cacert adds to the authorities
 * trusted by default, it does not replace them. Undefined when no TLS
 * option was given.
 */
export async function loadTlsContext({ cacert, cert, key, insecure }: TlsFiles): Promise<TlsContext | undefined> {
  if (cacert === undefined && cert === undefined && !insecure) return undefined;
  // Loaded here, not at start: runs without TLS options never need it.
  const tls = process.getBuiltinModule('node:tls');
  const options: SecureContextOptions = {};
  if (cacert !== undefined) options.ca = [...defaultAuthorities(tls), ...await readCertificates('--cacert', cacert)];
  if (cert !== undefined && key !== undefined) {
    options.cert = (await readCertificates('--cert', cert)).join('\n');
    options.key = await readKey(key);
  }
  let secureContext: SecureContext | undefined;
  if (cacert !== undefined || cert !== undefined) {
    try {
      secureContext = tls.createSecureContext(options);
    } catch (error) {
      // Each file was read on its own above: what is left to fail is a key and certificate that do not pair.
      if (cert === undefined) throw error;
      throw new UsageError('IMGPUSH_BAD_TLS_FILE', `--key ${key} is not the private key of --cert ${cert}`);
    }
  }
  return { secureContext, rejectUnauthorized: !insecure };
}
