import { createHash, timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ServerError } from './errors.js';

/** The sha-256 member of a Content-Digest field (RFC 9530): `sha-256=:<base64>:`, among others or alone. */
const SHA256 = /(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/]*={0,2}):/i;

/**
 * The SHA-256 a request's Content-Digest says its body has (imgpush
 * --checksum sends one); undefined without a sha-256 member, since other
 * algorithms are not checked.
 */
export function claimedSha256(field: string | string[] | undefined): Buffer | undefined {
  const text = Array.isArray(field) ? field.join(',') : field;
  if (text === undefined) return undefined;
  const match = SHA256.exec(text);
  if (match === null) return undefined;
  const digest = Buffer.from(match[1] as string, 'base64');
  if (digest.length !== 32) throw new ServerError('IMGPUSH_DIGEST_MISMATCH', 'Content-Digest: sha-256 must be 32 bytes in base64 between colons');
  return digest;
}

/** A body that does not hash to what its Content-Digest claimed was changed on the way (or read while it changed): 400. */
export function assertDigest(claimed: Buffer, actual: Buffer): void {
  if (!timingSafeEqual(claimed, actual)) {
    throw new ServerError('IMGPUSH_DIGEST_MISMATCH', 'the body does not match its Content-Digest: it changed on the way, or was read while it changed');
  }
}

export function sha256(body: Buffer): Buffer {
  return createHash('sha256').update(body).digest();
}

/**
 * Hashes a stream's bytes as another reader takes them. Attach it in the
 * same tick as that reader's pipe: a 'data' listener starts the flow on
 * the next tick, so both see every chunk.
 */
export function tapSha256(stream: Readable): () => Buffer {
  const hash = createHash('sha256');
  const onData = (chunk: Buffer): void => {
    hash.update(chunk);
  };
  stream.on('data', onData);
  return () => {
    stream.off('data', onData);
    return hash.digest();
  };
}
