/**
 * A bare Node client, for the benchmark's reference: a loop
 * of N workers over one undici Pool, each file read whole and framed with
 * imgpush's multipart framing, with none of imgpush's engine around it
 * (no discovery, retries, logs or progress).
 * Usage: node build/bench/undici-loop.js DIR URL WORKERS
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { MultipartBody } from '../src/client/bodies/multipart.js';

const [dir = '.', url = '', workers = '20'] = process.argv.slice(2);
const target = new URL(url);
const pool = new Pool(target.origin, { connections: Number(workers) });
const framing = new MultipartBody('image', []);
const headers = { 'content-type': framing.contentType };
const names = readdirSync(dir).filter((name) => name.endsWith('.jpg'));
let next = 0;

async function worker(): Promise<void> {
  while (next < names.length) {
    const name = names[next++] as string;
    const body = Buffer.concat([Buffer.from(framing.head(name, 'image/jpeg')), readFileSync(join(dir, name)), framing.tail]);
    const answer = await pool.request({ path: target.pathname, method: 'POST', headers, body });
    await answer.body.dump();
    if (answer.statusCode !== 200) throw new Error(`${name}: ${answer.statusCode}`);
  }
}

await Promise.all(Array.from({ length: Number(workers) }, worker));
await pool.close();
