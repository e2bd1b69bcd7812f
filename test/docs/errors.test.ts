import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLIENT_CODES } from '../../src/client/codes.js';
import { SERVER_CODES, SERVER_START_CODES } from '../../src/server/codes.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Names that look like codes but are environment variables. */
const ENVIRONMENT = new Set(['IMGPUSH_TOKEN', 'IMGPUSH_SERVER_TOKEN', 'IMGPUSH_CALLBACK_SECRET']);
const CODE = /IMGPUSH_[A-Z0-9_]+/g;

async function sources(folder: string): Promise<string[]> {
  const entries = await readdir(join(ROOT, folder), { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile() && entry.name.endsWith('.ts')).map((entry) => join(entry.parentPath, entry.name));
}

async function codesIn(paths: readonly string[]): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const path of paths) {
    for (const [code] of (await readFile(path, 'utf8')).matchAll(/'(IMGPUSH_[A-Z0-9_]+)'/g)) {
      const name = code.slice(1, -1);
      if (!ENVIRONMENT.has(name) && !found.has(name)) found.set(name, path);
    }
  }
  return found;
}

const catalogued = new Set<string>([...Object.keys(CLIENT_CODES), ...Object.keys(SERVER_CODES), ...Object.keys(SERVER_START_CODES)]);

test('every IMGPUSH_ code used in src/ is in a catalog (src/client/codes.ts, src/server/codes.ts)', async () => {
  const used = await codesIn(await sources('src'));
  const missing = [...used].filter(([code]) => !catalogued.has(code)).map(([code, path]) => `${code} (${path})`);
  assert.deepEqual(missing, []);
});

test('every catalogued code is documented in docs/errors.md, and the docs name no code that is not catalogued', async () => {
  const docs = await readFile(join(ROOT, 'docs/errors.md'), 'utf8');
  const documented = new Set([...docs.matchAll(CODE)].map(([code]) => code).filter((code) => !ENVIRONMENT.has(code)));
  assert.deepEqual([...catalogued].filter((code) => !documented.has(code)), [], 'catalogued, not in docs/errors.md');
  assert.deepEqual([...documented].filter((code) => !catalogued.has(code)), [], 'in docs/errors.md, not catalogued');
});

test('every catalogued code is still used somewhere in src/', async () => {
  const used = await codesIn(await sources('src'));
  assert.deepEqual([...catalogued].filter((code) => !used.has(code)), []);
});
