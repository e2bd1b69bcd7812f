import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readPathList } from '../../src/client/discovery/path-list.js';

async function collect(chunks: Array<string | Buffer>, nul: boolean): Promise<string[]> {
  async function* source() {
    yield* chunks;
  }
  const paths: string[] = [];
  for await (const path of readPathList(source(), nul)) paths.push(path);
  return paths;
}

test('newline lists: CRLF, empty lines and a missing final newline', async () => {
  assert.deepEqual(await collect(['a.jpg\r\nb c.jpg\n\n', 'd', '.jpg'], false), ['a.jpg', 'b c.jpg', 'd.jpg']);
});

test('NUL lists keep newlines and spaces in names', async () => {
  assert.deepEqual(await collect(['one\nline.jpg\0two ', 'words.jpg\0'], true), ['one\nline.jpg', 'two words.jpg']);
});

test('a multi-byte character split across chunks survives', async () => {
  const bytes = Buffer.from('café.jpg\n日本.png\n');
  const cut = bytes.indexOf(Buffer.from('本')) + 1;
  assert.deepEqual(await collect([bytes.subarray(0, 4), bytes.subarray(4, cut), bytes.subarray(cut)], false), ['café.jpg', '日本.png']);
});
