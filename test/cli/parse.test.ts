import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { push, retry, UsageError } from '../../src/client/index.js';
import { resolveOptions } from '../../src/client/options/resolve.js';
import { parseArguments, type ParsedArguments, type PushArguments } from '../../src/cli/parse.js';
import { makeAuthority } from '../helpers/certificates.js';
import { makeTree, type Tree } from '../helpers/files.js';

/*
 * The command line, parsed in-process as main.ts parses it: each case is
 * what a user types and the message imgpush prints after "imgpush: " (with
 * exit 2, which test/cli/cli.test.ts checks once, end to end).
 */

const VERSION = '1.2.3';
let tree: Tree;
let certs: Tree;

before(async () => {
  tree = await makeTree({ 'one.jpg': 300, 'two.png': 400, 'notes.txt': 3 });
  const authority = makeAuthority('imgpush test CA');
  const client = authority.issue('uploader', { client: true });
  certs = await makeTree({ 'ca.pem': authority.cert, 'client.pem': client.cert, 'client-key.pem': client.key, 'notes.txt': 'not a certificate' });
});
after(async () => {
  await tree.remove();
  await certs.remove();
});

function parsePush(argv: string[]): PushArguments {
  const parsed = parseArguments(argv, VERSION);
  if (parsed.command !== 'push') return assert.fail(`${argv.join(' ')}: parsed as ${parsed.command}`);
  return parsed;
}

/** The message of the usage error parsing, then the library's checks (as push() makes them), throw for argv. */
function usageError(argv: string[], env: Record<string, string> = {}): string {
  try {
    const parsed = parseArguments(argv, VERSION);
    if (parsed.command !== 'push') return assert.fail(`${argv.join(' ')}: parsed as ${parsed.command}`);
    resolveOptions({ ...parsed.options, proxyEnv: env });
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  return assert.fail(`${argv.join(' ')}: no usage error`);
}

/** The message of the usage error the run itself throws, before it sends anything (files and folders that are not there). */
async function runUsageError(parsed: ParsedArguments): Promise<string> {
  const run = parsed.command === 'push' ? push(parsed.options) : parsed.command === 'retry' ? retry(parsed.failureLog, parsed.overrides) : undefined;
  if (run === undefined) return assert.fail(`parsed as ${parsed.command}`);
  const error: unknown = await run.then(() => undefined, (reason: unknown) => reason);
  if (error instanceof UsageError) return error.message;
  return assert.fail(`no usage error, but ${String(error)}`);
}

test('a push: inputs, - for stdin, and each flag under the library\'s key, durations and sizes as users write them', () => {
  const { options, fromStdin, filesFrom, nul, output } = parsePush([
    './frames', '-', 'b/*.jpg', '--url', 'http://127.0.0.1:8000/v1/predict', '-c', '8', '--timeout', '2m', '--connect-timeout', '1.5s',
    '--retry-min-delay', '100ms', '--max-request-bytes', '2MB', '--max-outage', '1h', '-X', 'put', '-H', 'X-A: 1', '-H', 'X-B: 2',
    '-F', 'k=v', '--ext', 'jpg,PNG', '--exclude', '*.tmp', '--hidden', '--shard', '2/4', '--max-failure-rate', '1%', '-k', '-0', '--json',
  ]);
  assert.deepEqual(options, {
    inputs: ['./frames', 'b/*.jpg'],
    url: 'http://127.0.0.1:8000/v1/predict',
    concurrency: 8,
    timeoutMs: 120_000,
    connectTimeoutMs: 1500,
    retryMinDelayMs: 100,
    maxRequestBytes: 2 * 1024 * 1024,
    maxOutageMs: 3_600_000,
    method: 'PUT',
    headers: [['X-A', '1'], ['X-B', '2']],
    form: [['k', 'v']],
    extensions: ['jpg', 'PNG'],
    exclude: ['*.tmp'],
    hidden: true,
    shard: { index: 2, count: 4 },
    maxFailureRate: 0.01,
    insecure: true,
  });
  assert.equal(fromStdin, true);
  assert.equal(filesFrom, undefined);
  assert.equal(nul, true);
  assert.deepEqual(output, { json: true, quiet: false, verbose: false });
});

test('flags not given are left out, for the library\'s defaults; --url twice is a list; --ext * is every file; -c auto', () => {
  assert.deepEqual(parsePush(['a', '--url', 'http://h/x']).options, { inputs: ['a'], url: 'http://h/x' });
  assert.deepEqual(parsePush(['a', '-u', 'http://h/x', '-u', 'http://g/x', '--ext', '*', '-c', 'auto']).options,
    { inputs: ['a'], url: ['http://h/x', 'http://g/x'], extensions: 'all', concurrency: 'auto' });
});

test('imgpush retry: the failure log and only the flags given, which override what it recorded', () => {
  const parsed = parseArguments(['retry', 'imgpush-failures.jsonl', '--concurrency', '4', '--token', 'abc', '-q'], VERSION);
  assert.deepEqual(parsed, {
    command: 'retry', failureLog: 'imgpush-failures.jsonl', overrides: { concurrency: 4, token: 'abc' }, output: { json: false, quiet: true, verbose: false },
  });
  assert.deepEqual(parseArguments(['serve', '--port', '0'], VERSION), { command: 'serve' });
  assert.deepEqual(parseArguments(['demo'], VERSION), { command: 'demo' });
});

test('bad flag values are usage errors that name the flag', () => {
  const send = [tree.root, '--url', 'http://127.0.0.1:9/x'];
  const cases: Array<[string[], RegExp]> = [
    [[...send, '--bogus'], /^unknown option '--bogus'$/],
    [[tree.root], /^--url is required/],
    [[...send, '--concurrency', 'many'], /--concurrency.*whole number/],
    [[...send, '--concurrency', '0'], /^--concurrency must be a whole number from 1 to 1024 \(got 0\)$/],
    [[...send, '--timeout', 'soon'], /--timeout.*expected a duration such as 30s/],
    [[...send, '--method', 'DELETE'], /^--method must be one of POST, PUT \(got "DELETE"\)$/],
    [[...send, '--resize', '0'], /^--resize must be a whole number 1 or more \(got 0\)$/],
    [[...send, '--resize', 'half'], /--resize.*expected a whole number/],
    [[...send, '--format', 'png'], /--format.*Allowed choices are jpeg, webp/],
    [[...send, '--format', 'jpeg', '--quality', '0'], /^--quality must be a whole number from 1 to 100 \(got 0\)$/],
    [[...send, '--format', 'webp', '--quality', '101'], /^--quality must be a whole number from 1 to 100 \(got 101\)$/],
    [[...send, '--body', 'xml'], /--body.*Allowed choices are multipart, raw, json/],
    [[...send, '--exclude', ''], /^--exclude needs a pattern, e.g. --exclude '\*.tmp' \(got an empty one\)$/],
    [[...send, '--ext', '*,jpg'], /^--ext: \* stands alone for every file/],
    [[...send, '--ext', ','], /^--ext needs a comma-separated list of extensions/],
    [[...send, '--shard', '5/4'], /^--shard must be K\/N with K from 1 to N \(got 5\/4\)$/],
    [[...send, '--max-failure-rate', '2'], /^--max-failure-rate must be a fraction from 0 to 1/],
    [[...send, '--max-request-bytes', 'lots'], /--max-request-bytes.*expected a size such as 25MB/],
    [[...send, '--token', 'two words'], /^--token must be one word/],
    [[...send, '--header', 'no colon'], /--header.*expected 'Name: value'/],
  ];
  for (const [argv, message] of cases) assert.match(usageError(argv), message, argv.join(' '));
});

test('options that contradict each other, or a URL without its scheme, are usage errors of the library\'s checks', () => {
  const send = [tree.root, '--url', 'http://127.0.0.1:9/x'];
  const cases: Array<[string[], RegExp]> = [
    [[tree.root, '--url', 'localhost:8000/v1/predict'], /^--url must start with http:\/\/ or https:\/\/ \(got "localhost:8000\/v1\/predict"\): add http:\/\/, e.g. http:\/\/localhost:8000\/v1\/predict$/],
    [['--url', 'http://h/x'], /^nothing to upload: name files, folders or glob patterns/],
    [[...send, '--header', 'Content-Length: 3'], /^--header Content-Length cannot be set/],
    [[...send, '--resize', '512', '--quality', '70'], /^--quality needs --format jpeg or --format webp/],
    [[...send, '--body', 'json', '--template', '{"image": {base64}}'], /^--template has \{base64\} outside a JSON string/],
    [[...send, '--body', 'json', '--template', '{"image": "{base64}",}'], /^--template is not valid JSON once its placeholders are filled/],
    [[...send, '--body', 'json', '--template', '{"image": "{name}"}'], /^--template must hold \{base64\}/],
    [[...send, '--template', '{"image": "{base64}"}'], /^--template is the body of --body json: add --body json$/],
    [[...send, '--body', 'json', '--files-per-request', '8'], /^--files-per-request needs --body multipart: a json body holds one file$/],
    [[...send, '--body', 'v2'], /^--body v2 needs --model/],
    [[...send, '--retry-min-delay', '2s', '--retry-max-delay', '1s'], /^--retry-max-delay must not be shorter than --retry-min-delay$/],
    [[tree.root, '--url', 'https://127.0.0.1:9/x', '--cert', certs.path('client.pem')], /^--cert and --key go together/],
    [[tree.root, '--url', 'https://127.0.0.1:9/x', '--proxy', 'ftp://uploader:hunter2@proxy.example'], /^--proxy must be an http:\/\/ or https:\/\/ proxy/],
  ];
  for (const [argv, message] of cases) {
    const shown = usageError(argv);
    assert.match(shown, message, argv.join(' '));
    assert.doesNotMatch(shown, /hunter2/, 'never a proxy password');
  }
  const fromEnvironment = usageError([tree.root, '--url', 'https://127.0.0.1:9/x'], { HTTPS_PROXY: 'socks://uploader:hunter2@proxy.example' });
  assert.match(fromEnvironment, /^HTTPS_PROXY must be an http:\/\/ or https:\/\/ proxy/);
  assert.doesNotMatch(fromEnvironment, /hunter2/);
});

test('inputs, logs and TLS files that are not what they should be are usage errors before anything is sent', async () => {
  const empty = await makeTree({ 'notes.txt': 3 });
  const https = 'https://127.0.0.1:9/predict';
  try {
    const cases: Array<[string[], RegExp]> = [
      [[tree.path('no-such-folder'), '--url', 'http://h/x'], /^input ".*no-such-folder" does not exist/],
      [[empty.root, '--url', 'http://127.0.0.1:9/x'], /^nothing to upload: no files with extensions jpg, .* found in/],
      [[tree.root, '--url', 'http://h/x', '-o', tree.path('no/such/dir/r.jsonl')], /^--out .*r\.jsonl: its folder does not exist/],
      [[tree.root, '--url', 'http://h/x', '-o', tree.path('same.jsonl'), '--failures', tree.path('same.jsonl')], /^--out .*same\.jsonl and --failures .*same\.jsonl are one file/],
      [['retry', tree.path('one.jpg')], /is not an imgpush failure log/],
      [['retry', tree.path('missing.jsonl')], /^cannot read failure log .*missing\.jsonl: it does not exist/],
      [[tree.root, '--url', https, '--cacert', certs.path('nope.pem')], /^--cacert .*nope\.pem does not exist$/],
      [[tree.root, '--url', https, '--cacert', certs.path('notes.txt')], /^--cacert .*notes\.txt holds no PEM certificate/],
      [[tree.root, '--url', https, '--cert', certs.path('ca.pem'), '--key', certs.path('client-key.pem')], /^--key .*client-key\.pem is not the private key of --cert .*ca\.pem$/],
    ];
    for (const [argv, message] of cases) assert.match(await runUsageError(parseArguments(argv, VERSION)), message, argv.join(' '));
  } finally {
    await empty.remove();
  }
});

test('--help groups the flags under their headings, shows defaults as users write them, and ends with examples', () => {
  const help = parseArguments(['--help'], VERSION);
  assert.equal(help.command, 'help');
  const text = help.command === 'help' ? help.text : '';
  const headings = [...text.matchAll(/^(\S[^:\n]*):$/gm)].map(([, heading]) => heading);
  assert.deepEqual(headings, ['Arguments', 'Inputs', 'Target and body', 'Logs and resume', 'Retries and timeouts', 'Speed', 'Transport', 'Output', 'Commands', 'Examples']);
  assert.match(text, /--timeout <duration> +longest the server may stay silent per request\s+\(default: 1m\)/);
  assert.match(text, /--retry-min-delay <duration>[^]*?\(default: 250ms\)/);
  assert.match(text, /--max-request-bytes <size>[^]*?\(default: 8MB\)/);
  assert.match(text, /--quality <q>[^]*?\(default:\s+85 for jpeg, 80 for webp\)/);
  assert.match(text, /--ext <list>[^]*?or \* for every file/);
  assert.match(text, /Examples:\n {2}imgpush \.\/frames --url http:\/\/127\.0\.0\.1:8000\/v1\/predict\n/);
  assert.equal([...text.matchAll(/^ {2}(?:imgpush|find) /gm)].length, 5);
});

test('imgpush retry --help: the run\'s flags default to what the failure log recorded', () => {
  const help = parseArguments(['retry', '--help'], VERSION);
  const text = help.command === 'help' ? help.text.replace(/\s+/g, ' ') : '';
  assert.match(text, /--timeout <duration> longest the server may stay silent per request \(default: as recorded in the log\)/);
  assert.match(text, /--url <url> .*?\(default: as recorded in the log\)/);
  assert.match(text, /--failures <file> failure log, written only if a file fails \(default: the failure log given, replaced once the retry ends\)/);
  assert.match(text, /--out <file> results log: one JSON line per file; - for stdout \(the summary then goes to stderr\) \(default: the results log of the run that failed, appended to\)/);
  assert.doesNotMatch(text, /--files-from/, 'a retry sends the files of its log');
});

test('--version prints the version it is given', () => {
  const parsed = parseArguments(['--version'], VERSION);
  assert.equal(parsed.command, 'version');
  assert.equal(parsed.command === 'version' ? parsed.text : '', `${VERSION}\n`);
});
