import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIPv4 } from 'node:net';

// X.509 certificates written as DER by hand: Node can make keys and sign, but not certificates,
// and the tests must not depend on an openssl binary being installed.

const DAY_MS = 24 * 60 * 60 * 1000;
/** From yesterday (clocks a little apart) to a month ahead. */
const VALID_NOW: readonly [number, number] = [-1, 30];

function length(size: number): Buffer {
  if (size < 0x80) return Buffer.from([size]);
  const bytes: number[] = [];
  for (let rest = size; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
const octets = (data: Buffer): Buffer => tlv(0x04, data);
const bits = (data: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.from([unused]), data);
const utf8 = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));
const TRUE = tlv(0x01, Buffer.from([0xff]));

function integer(data: Buffer): Buffer {
  // DER integers are minimal (OpenSSL refuses a leading zero byte before one under 0x80: one random serial in 512) and signed (a leading bit set would read as negative).
  let start = 0;
  while (start < data.length - 1 && data[start] === 0 && ((data[start + 1] ?? 0) & 0x80) === 0) start++;
  const minimal = data.subarray(start);
  return tlv(0x02, (minimal[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), minimal]) : minimal);
}

function oid(text: string): Buffer {
  const [first = 0, second = 0, ...rest] = text.split('.').map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let value = arc >>> 7; value > 0; value >>>= 7) base128.unshift(0x80 | (value & 0x7f));
    bytes.push(...base128);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function time(date: Date): Buffer {
  const text = date.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, 'Z');
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(text.slice(2))) : tlv(0x18, Buffer.from(text));
}

const name = (commonName: string): Buffer => sequence(set(sequence(oid('2.5.4.3'), utf8(commonName))));
const ECDSA_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));

function extension(id: string, value: Buffer, critical = false): Buffer {
  return critical ? sequence(oid(id), TRUE, octets(value)) : sequence(oid(id), octets(value));
}

function keyId(key: KeyObject): Buffer {
  return createHash('sha1').update(key.export({ type: 'spki', format: 'der' })).digest();
}

function toPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

export interface Issued {
  /** PEM. */
  readonly cert: string;
  /** PEM (PKCS#8). */
  readonly key: string;
}

export interface IssueOptions {
  /** DNS names and IP addresses the certificate is for. */
  readonly hosts?: readonly string[];
  /** For a client (mutual TLS) rather than a server. */
  readonly client?: boolean;
  /** Days from now: [-2, -1] makes a certificate that has expired. */
  readonly validDays?: readonly [number, number];
}

export interface Authority extends Issued {
  issue(commonName: string, options?: IssueOptions): Issued;
}

interface Body {
  readonly subject: string;
  readonly publicKey: KeyObject;
  readonly validDays: readonly [number, number];
  readonly extensions: Buffer[];
}

function certificate(issuer: string, issuerKey: KeyObject, body: Body): Buffer {
  const now = Date.now();
  const tbs = sequence(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(randomBytes(16)),
    ECDSA_SHA256,
    name(issuer),
    sequence(time(new Date(now + body.validDays[0] * DAY_MS)), time(new Date(now + body.validDays[1] * DAY_MS))),
    name(body.subject),
    body.publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, sequence(...body.extensions)),
  );
  return sequence(tbs, ECDSA_SHA256, bits(sign('sha256', tbs, issuerKey)));
}

function generalName(host: string): Buffer {
  return isIPv4(host) ? tlv(0x87, Buffer.from(host.split('.').map(Number))) : tlv(0x82, Buffer.from(host, 'ascii'));
}

/**
 * A certificate authority of its own, as a company's private CA: nothing
 * trusts it until it is given (--cacert). ECDSA P-256, SHA-256.
 *
 * @example
 * const ca = makeAuthority('imgpush test CA');
 * const server = ca.issue('localhost', { hosts: ['localhost', '127.0.0.1'] });
 */
export function makeAuthority(commonName: string): Authority {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caKeyId = keyId(publicKey);
  const der = certificate(commonName, privateKey, {
    subject: commonName,
    publicKey,
    validDays: VALID_NOW,
    extensions: [
      extension('2.5.29.19', sequence(TRUE), true),
      // keyCertSign and cRLSign.
      extension('2.5.29.15', bits(Buffer.from([0x06]), 1), true),
      extension('2.5.29.14', octets(caKeyId)),
    ],
  });
  return {
    cert: toPem(der),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    issue(subject, { hosts = [], client = false, validDays = VALID_NOW } = {}) {
      const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const extensions = [
        extension('2.5.29.19', sequence(), true),
        // digitalSignature.
        extension('2.5.29.15', bits(Buffer.from([0x80]), 7), true),
        extension('2.5.29.37', sequence(oid(client ? '1.3.6.1.5.5.7.3.2' : '1.3.6.1.5.5.7.3.1'))),
        extension('2.5.29.35', sequence(tlv(0x80, caKeyId))),
      ];
      if (hosts.length > 0) extensions.push(extension('2.5.29.17', sequence(...hosts.map(generalName))));
      const leaf = certificate(commonName, privateKey, { subject, publicKey: pair.publicKey, validDays, extensions });
      return { cert: toPem(leaf), key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
    },
  };
}
