/**
 * The least a Node client can do, for the benchmark's reference: a loop of
 * N workers, each on one keep-alive `node:net` socket, writing each file as
 * one multipart request in one buffer and taking the answer's end from its
 * blank line and its length or last chunk. No retries, no checks, no parser
 * worth the name: what is left of a Node client's cost per file.
 * Usage: node build/bench/net-loop.js DIR URL WORKERS
 */
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { MultipartBody } from '../src/client/bodies/multipart.js';

const [dir = '.', url = '', workers = '20'] = process.argv.slice(2);
const target = new URL(url);
const framing = new MultipartBody('image', []);
const names = readdirSync(dir).filter((name) => name.endsWith('.jpg'));
const LAST_CHUNK = Buffer.from('\r\n0\r\n\r\n');
let next = 0;

function request(name: string): Buffer {
  const head = Buffer.from(framing.head(name, 'image/jpeg'));
  const file = readFileSync(join(dir, name));
  const length = head.length + file.length + framing.tail.length;
  const start = Buffer.from(`POST ${target.pathname} HTTP/1.1\r\nhost: ${target.host}\r\ncontent-type: ${framing.contentType}\r\ncontent-length: ${length}\r\n\r\n`, 'latin1');
  return Buffer.concat([start, head, file, framing.tail]);
}

/** Where the answer at the start of `bytes` ends, or -1 while it is not whole. */
function answerEnd(bytes: Buffer): number {
  const blank = bytes.indexOf('\r\n\r\n');
  if (blank < 0) return -1;
  const length = /content-length: *(\d+)/i.exec(bytes.toString('latin1', 0, blank))?.[1];
  if (length !== undefined) return bytes.length >= blank + 4 + Number(length) ? blank + 4 + Number(length) : -1;
  const last = bytes.indexOf(LAST_CHUNK, blank);
  return last < 0 ? -1 : last + LAST_CHUNK.length;
}

function worker(): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.hostname, port: Number(target.port), noDelay: true });
    let pending: Buffer = Buffer.alloc(0);
    const sendNext = (): void => {
      if (next >= names.length) {
        socket.end();
        resolve();
        return;
      }
      socket.write(request(names[next++] as string));
    };
    socket.on('connect', sendNext);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const end = answerEnd(pending);
      if (end < 0) return;
      if (!pending.toString('latin1', 0, 12).endsWith(' 200')) reject(new Error(pending.toString('latin1', 0, 80)));
      pending = pending.subarray(end);
      sendNext();
    });
    socket.on('error', reject);
  });
}

await Promise.all(Array.from({ length: Number(workers) }, worker));
