import type { Readable } from 'node:stream';
import { ServerError } from './errors.js';

/**
 * A request body read whole, up to `limit` bytes (413 beyond). With a
 * Content-Length, into one buffer of that size as the chunks come: no
 * concatenation of tens of megabytes at the end, which would stop the
 * event loop for as long (50 ms for 50 MB). The buffer owns its memory, so
 * it can be transferred to another thread rather than copied.
 */
export async function readBody(payload: Readable, contentLength: number | undefined, limit: number): Promise<Buffer> {
  if (contentLength !== undefined && contentLength > limit) throw tooLarge(limit);
  if (contentLength === undefined) return readUnsized(payload, limit);
  const body = Buffer.allocUnsafeSlow(contentLength);
  let at = 0;
  for await (const chunk of payload as AsyncIterable<Buffer>) {
    if (at + chunk.length > contentLength) throw new ServerError('IMGPUSH_BAD_HTTP', `the body is longer than its Content-Length ${contentLength}`);
    chunk.copy(body, at);
    at += chunk.length;
  }
  if (at < contentLength) throw new ServerError('IMGPUSH_BAD_HTTP', `the body ended after ${at} of its Content-Length ${contentLength} bytes`);
  return body;
}

async function readUnsized(payload: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of payload as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  const body = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const chunk of chunks) at += chunk.copy(body, at);
  return body;
}

function tooLarge(limit: number): ServerError {
  return new ServerError('IMGPUSH_BODY_TOO_LARGE', `the body is over ${limit} bytes`);
}
