import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/shared/errors.js';
import { parseUrlTemplate } from '../../src/client/transport/url-template.js';

test('placeholders are filled per file, each path segment URL-encoded', () => {
  const cases: Array<[string, string, string]> = [
    ['http://h/predict', 'a/b.jpg', '/predict'],
    ['http://h:8000', 'x.jpg', '/'],
    ['http://h/bucket/{path}', 'a/b c/ü#1.jpg', '/bucket/a/b%20c/%C3%BC%231.jpg'],
    ['http://h/{name}?stem={stem}&ext={ext}', 'd/photo.final.JPG', '/photo.final.JPG?stem=photo.final&ext=JPG'],
    ['http://h/x/{stem}', 'noext', '/x/noext'],
    ['http://h/p?q=1', 'a.jpg', '/p?q=1'],
  ];
  for (const [template, rel, expected] of cases) {
    assert.equal(parseUrlTemplate(template).pathFor(rel), expected, `${template} with ${rel}`);
  }
});

test('the origin and host are taken from the URL once', () => {
  const url = parseUrlTemplate('https://example.test:8443/v1/{path}');
  assert.equal(url.origin, 'https://example.test:8443');
  assert.equal(url.host, 'example.test:8443');
});

test('a bad --url is a usage error that says what is wrong', () => {
  const cases: Array<[string, RegExp]> = [
    ['not a url', /not a valid URL/],
    ['ftp://h/x', /http:\/\/ or https:\/\//],
    ['http://user:pw@h/x', /user name or password/],
    ['http://{name}.h/x', /path and query only/],
    ['http://h/{nope}', /unknown placeholder \{nope\}/],
    ['http://h/a b', /spaces/],
  ];
  for (const [template, message] of cases) {
    assert.throws(() => parseUrlTemplate(template), (error: unknown) => error instanceof UsageError && message.test(error.message), template);
  }
});
