import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AnswerParser, type AnswerHeaders } from '../../src/client/transport/answer-parser.js';

interface Read {
  status: number | undefined;
  headers: AnswerHeaders;
  body: string;
  ended: number;
  used: number;
  parser: AnswerParser;
}

/** Feeds `bytes` to a parser in pieces of `piece` bytes (all at once by default) and says what it read. */
function read(bytes: string | Buffer, piece = Infinity): Read {
  const result: Read = { status: undefined, headers: {}, body: '', ended: 0, used: 0, parser: undefined as unknown as AnswerParser };
  const chunks: Buffer[] = [];
  const parser = new AnswerParser({
    onHead(status, headers) {
      result.status = status;
      result.headers = headers;
    },
    onBody: (chunk) => chunks.push(Buffer.from(chunk)),
    onEnd: () => result.ended++,
  });
  result.parser = parser;
  const all = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1');
  for (let at = 0; at < all.length && !parser.done; at += Math.min(piece, all.length)) {
    result.used = at + parser.feed(all.subarray(at, Math.min(all.length, at + piece)));
  }
  result.body = Buffer.concat(chunks).toString('latin1');
  return result;
}

const CHUNKED = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n'
  + '5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: yes\r\n\r\n';

test('a chunked answer with extensions and trailers reads the same fed whole or one byte at a time', () => {
  for (const piece of [Infinity, 1, 2, 3, 7]) {
    const answer = read(CHUNKED, piece);
    assert.equal(answer.status, 200, `pieces of ${piece}`);
    assert.equal(answer.body, 'hello world', `pieces of ${piece}`);
    assert.equal(answer.ended, 1);
    assert.deepEqual(answer.headers['x-a'], ['1', '2']);
    assert.equal(answer.used, CHUNKED.length);
  }
});

test('a Content-Length body ends at its length: the bytes after it are not the answer\'s', () => {
  const answer = read('HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nbodyEXTRA');
  assert.equal(answer.status, 201);
  assert.equal(answer.body, 'body');
  assert.equal(answer.used, 'HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nbody'.length);
  assert.equal(answer.parser.keepAlive, true);
});

test('1xx answers before the real one are skipped; 204 has no body even with bytes after it', () => {
  const answer = read('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', 5);
  assert.equal(answer.status, 200);
  assert.equal(answer.body, 'ok');
  const empty = read('HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n');
  assert.equal(empty.status, 204);
  assert.equal(empty.ended, 1);
  assert.equal(empty.used, 'HTTP/1.1 204 No Content\r\n\r\n'.length);
});

test('an answer with no length is framed by the connection\'s end, and the connection is not used again', () => {
  const answer = read('HTTP/1.0 200 OK\r\n\r\nuntil the end');
  assert.equal(answer.body, 'until the end');
  assert.equal(answer.ended, 0);
  assert.equal(answer.parser.keepAlive, false);
  assert.equal(answer.parser.finish(), true);
  assert.equal(answer.ended, 1);
});

test('an answer cut before its length or its last chunk is not whole when the connection ends', () => {
  assert.equal(read('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort').parser.finish(), false);
  assert.equal(read('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel').parser.finish(), false);
  assert.equal(read('HTTP/1.1 200 O').parser.finish(), false);
});

test('keep-alive follows the version and Connection, and Keep-Alive: timeout is read', () => {
  assert.equal(read('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').parser.keepAlive, false);
  assert.equal(read('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').parser.keepAlive, false);
  const kept = read('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n').parser;
  assert.equal(kept.keepAlive, true);
  assert.equal(kept.keepAliveMs, 5000);
});

test('what could be read two ways is an IMGPUSH_BAD_ANSWER: conflicting lengths, folded or malformed headers, bad chunks, not HTTP', () => {
  const bad = [
    'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    'HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd',
    'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n',
    'HTTP/1.1 101 Switching Protocols\r\n\r\n',
    'SSH-2.0-OpenSSH_9.2\r\n\r\n',
    'HTTP/2 200\r\n\r\n',
  ];
  for (const answer of bad) {
    assert.throws(() => read(answer), { code: 'IMGPUSH_BAD_ANSWER' }, JSON.stringify(answer));
  }
});

test('headers over 16 KB are refused before the parser holds more of them', () => {
  const huge = `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(17 * 1024)}`;
  assert.throws(() => read(huge, 1024), { code: 'IMGPUSH_BAD_ANSWER', message: /over 16 KB/ });
  assert.throws(() => read(`${huge}\r\n\r\n`), { code: 'IMGPUSH_BAD_ANSWER', message: /over 16 KB/ });
});
