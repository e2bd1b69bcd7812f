import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseArguments } from '../../src/cli/parse.js';
import { runCli } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const VERSION = '0.0.0-test';

function helpOf(argv: string[]): string {
  const parsed = parseArguments(argv, VERSION);
  assert.equal(parsed.command, 'help');
  return (parsed as { text: string }).text;
}

function longFlags(help: string): string[] {
  return [...new Set([...help.matchAll(/(?:^|[\s,])(--[a-z][a-z0-9-]*)/gm)].map(([, flag]) => flag as string))];
}

/** The words of a shell command line, as a POSIX shell splits them (quotes and backslashes; no expansion). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const char = line[i] as string;
    if (char === '\'' || char === '"') {
      const end = line.indexOf(char, i + 1);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (char === '\\') {
      word = (word ?? '') + (line[++i] ?? '');
    } else if (/\s/.test(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + char;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

test('every flag that --help shows, for imgpush, imgpush retry and imgpush serve, is in docs/cli.md', async () => {
  const docs = await readFile(join(ROOT, 'docs/cli.md'), 'utf8');
  const serve = await runCli(['serve', '--help']);
  assert.equal(serve.code, 0, serve.stderr);
  const flags = [...longFlags(helpOf(['--help'])), ...longFlags(helpOf(['retry', '--help'])), ...longFlags(serve.stdout)];
  assert.ok(flags.length > 40, `only ${flags.length} flags found in --help`);
  const missing = flags.filter((flag) => !new RegExp(`${flag}(?![a-z0-9-])`).test(docs));
  assert.deepEqual([...new Set(missing)], []);
});

test('every imgpush command in README and docs/recipes.md parses with the current flags', async () => {
  const serveHelp = (await runCli(['serve', '--help'])).stdout;
  for (const page of ['README.md', 'docs/recipes.md']) {
    const text = await readFile(join(ROOT, page), 'utf8');
    const blocks = [...text.matchAll(/```(?:sh|bash|shell)?\n([\s\S]*?)```/g)].map(([, body]) => body as string);
    for (const line of blocks.flatMap((block) => block.split('\n'))) {
      const command = /(?:^|\|\s*|&&\s*)(?:npx |node bin\/)?imgpush(?:\s+(.*?))?(?:\s+#.*)?$/.exec(line.replace(/\s*\\$/, ''));
      if (command === null) continue;
      const argv = shellWords(command[1] ?? '');
      if (argv[0] === 'serve' || argv[0] === 'demo') {
        for (const flag of argv.filter((word) => word.startsWith('--'))) assert.match(serveHelp, new RegExp(`${flag.split('=')[0]}\\b`), `${page}: ${line}`);
        continue;
      }
      assert.doesNotThrow(() => parseArguments(argv, VERSION), `${page}: ${line}`);
    }
  }
});
