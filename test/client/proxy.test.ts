import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bypassesProxy, parseProxy, proxyFromEnvironment } from '../../src/client/transport/proxy.js';
import { UsageError } from '../../src/shared/errors.js';

test('which hosts a NO_PROXY list lets go straight', () => {
  const cases: Array<[string, string, boolean]> = [
    // NO_PROXY, URL, bypassed
    ['', 'http://example.com', false],
    ['*', 'http://example.com', true],
    ['example.com', 'http://example.com/x', true],
    ['example.com', 'http://api.example.com', true],
    ['.example.com', 'http://api.example.com', true],
    ['*.example.com', 'http://example.com', true],
    ['example.com', 'http://notexample.com', false],
    ['EXAMPLE.com', 'https://Example.COM', true],
    ['localhost, 127.0.0.1', 'http://127.0.0.1:8000', true],
    ['127.0.0.1:8000', 'http://127.0.0.1:8000', true],
    ['127.0.0.1:9000', 'http://127.0.0.1:8000', false],
    ['example.com:443', 'https://example.com', true],
    ['example.com:443', 'http://example.com', false],
    ['::1', 'http://[::1]:8000', true],
    ['[::1]:8000', 'http://[::1]:8000', true],
    ['[::1]:9000', 'http://[::1]:8000', false],
    ['a.com b.com,,c.com', 'http://b.com', true],
  ];
  for (const [noProxy, url, expected] of cases) assert.equal(bypassesProxy(noProxy, new URL(url)), expected, `${noProxy} / ${url}`);
});

test('the environment\'s proxy for a URL: its scheme\'s variable, lower case first, empty as unset', () => {
  const env = { http_proxy: 'http://lower:3128', HTTP_PROXY: 'http://upper:3128', HTTPS_PROXY: 'secure:3128' };
  assert.equal(proxyFromEnvironment(new URL('http://h'), env)?.url, 'http://lower:3128');
  assert.equal(proxyFromEnvironment(new URL('http://h'), { ...env, http_proxy: '' })?.url, 'http://upper:3128');
  assert.equal(proxyFromEnvironment(new URL('https://h'), env)?.url, 'http://secure:3128', 'no scheme: http://, as curl reads it');
  assert.equal(proxyFromEnvironment(new URL('https://h'), { HTTP_PROXY: 'http://p:1' }), undefined, 'HTTP_PROXY is not for https://');
  assert.equal(proxyFromEnvironment(new URL('http://h'), { ...env, NO_PROXY: 'h' }), undefined);
});

test('a proxy URL is checked without ever repeating its password', () => {
  assert.deepEqual(parseProxy('http://user:pa%20ss@proxy:3128', '--proxy'), { url: 'http://user:pa%20ss@proxy:3128', shown: 'http://proxy:3128', credentials: true });
  assert.deepEqual(parseProxy('https://proxy', '--proxy'), { url: 'https://proxy', shown: 'https://proxy', credentials: false });
  for (const [value, message] of [['ftp://user:hunter2@proxy', /^HTTPS_PROXY must be an http:\/\/ or https:\/\/ proxy \(got ftp:\/\/…\)$/], ['http://user:hunter2@', /^HTTPS_PROXY is not a URL/]] as const) {
    assert.throws(() => parseProxy(value, 'HTTPS_PROXY'), (error: unknown) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, message);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  }
});
