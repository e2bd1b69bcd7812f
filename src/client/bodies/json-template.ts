import { sep } from 'node:path';
import { UsageError } from '../../shared/errors.js';
import { decodeAnswer, listedAnswers, wholeAnswer, type BodyFile, type BodyFormat, type Envelope } from './body-format.js';

const NAMES = ['name', 'path', 'stem', 'ext'] as const;
type NamePlaceholder = typeof NAMES[number];
const PLACEHOLDER = /\{(\w+)\}/g;
const KNOWN = `{base64}, ${NAMES.map((name) => `{${name}}`).join(', ')}`;

/** The body of --body json without --template: the file and its name, as most JSON image APIs take them. */
export const DEFAULT_TEMPLATE = '{"image":"{base64}","name":"{name}"}';

/** What the placeholders are filled with to check that the template is JSON. */
const SAMPLES: Readonly<Record<string, string>> = { base64: 'AAAA', name: 'a.jpg', path: 'd/a.jpg', stem: 'a', ext: 'jpg' };

function bad(why: string): UsageError {
  return new UsageError('IMGPUSH_BAD_TEMPLATE', `--template ${why}`);
}

/** A value as it goes inside a JSON string: quotes, backslashes and control characters escaped. */
function escapeJson(value: string): string {
  return JSON.stringify(value).slice(1, -1);
}

/**
 * A checked --template: the text before the file's base64 and the text
 * after, each with the name placeholders to fill per file. A body is then
 * head + base64 + tail, so that a large file's base64 can be streamed
 * between them with a length known in advance.
 */
export class JsonTemplate {
  readonly text: string;
  readonly #head: Compiled;
  readonly #tail: Compiled;
  /** Head and tail when the template names no file: built once. */
  readonly #fixed: readonly [Buffer, Buffer] | undefined;

  constructor(text: string) {
    this.text = text;
    const at = checkTemplate(text);
    this.#head = compile(text.slice(0, at));
    this.#tail = compile(text.slice(at + '{base64}'.length));
    this.#fixed = this.#head.fills.length + this.#tail.fills.length === 0
      ? [Buffer.from(this.#head.literals[0] as string), Buffer.from(this.#tail.literals[0] as string)]
      : undefined;
  }

  /**
   * The body's bytes before and after the base64 of the file found at `rel`
   * and sent as `name` (its name changes with --format): `{name}`, `{stem}`,
   * `{ext}` are the sent name's, `{path}` is `rel` with that name, `/` between folders.
   */
  around(rel: string, name: string): readonly [Buffer, Buffer] {
    if (this.#fixed !== undefined) return this.#fixed;
    const dot = name.lastIndexOf('.');
    const folder = rel.lastIndexOf(sep);
    const values: Record<NamePlaceholder, string> = {
      name: escapeJson(name),
      stem: escapeJson(dot <= 0 ? name : name.slice(0, dot)),
      ext: escapeJson(dot <= 0 ? '' : name.slice(dot + 1)),
      path: escapeJson((folder === -1 ? name : `${rel.slice(0, folder)}${sep}${name}`).split(sep).join('/')),
    };
    return [Buffer.from(render(this.#head, values)), Buffer.from(render(this.#tail, values))];
  }
}

/** Literal text around the placeholders: `literals` has one more entry than `fills`. */
interface Compiled {
  readonly literals: readonly string[];
  readonly fills: readonly NamePlaceholder[];
}

function compile(text: string): Compiled {
  const literals: string[] = [];
  const fills: NamePlaceholder[] = [];
  let last = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    literals.push(text.slice(last, match.index));
    fills.push(match[1] as NamePlaceholder);
    last = match.index + match[0].length;
  }
  literals.push(text.slice(last));
  return { literals, fills };
}

function render({ literals, fills }: Compiled, values: Readonly<Record<NamePlaceholder, string>>): string {
  let out = literals[0] as string;
  for (let i = 0; i < fills.length; i++) out += values[fills[i] as NamePlaceholder] + (literals[i + 1] as string);
  return out;
}

/**
 * Checks a template once, at the edge: known placeholders only, each inside
 * a JSON string (where its value is escaped), `{base64}` exactly once, and
 * valid JSON once filled. Returns where `{base64}` stands.
 */
function checkTemplate(text: string): number {
  const matches = [...text.matchAll(PLACEHOLDER)];
  for (const match of matches) {
    if (match[1] !== 'base64' && !(NAMES as readonly string[]).includes(match[1] as string)) {
      throw bad(`has an unknown placeholder ${match[0]}; known ones are ${KNOWN}`);
    }
  }
  const base64 = matches.filter((match) => match[1] === 'base64');
  if (base64.length === 0) throw bad('must hold {base64}, where the file\'s bytes go, e.g. \'{"image": "{base64}"}\'');
  if (base64.length > 1) throw bad(`holds {base64} ${base64.length} times: a body holds the file once`);
  const outside = outsideStrings(text, matches.map((match) => match.index));
  if (outside !== undefined) {
    throw bad(`has ${(text.slice(outside).match(/^\{\w+\}/) as RegExpMatchArray)[0]} outside a JSON string: placeholders go inside quotes, e.g. "{base64}"`);
  }
  try {
    JSON.parse(text.replace(PLACEHOLDER, (_, name: string) => SAMPLES[name] as string));
  } catch (error) {
    throw bad(`is not valid JSON once its placeholders are filled: ${(error as Error).message}`);
  }
  return (base64[0] as RegExpExecArray).index;
}

/** The first of `positions` (in order) that lies outside every JSON string of `text`; undefined when none does. */
function outsideStrings(text: string, positions: readonly number[]): number | undefined {
  let inString = false;
  let next = 0;
  for (let i = 0; i < text.length && next < positions.length; i++) {
    for (; next < positions.length && (positions[next] as number) <= i; next++) {
      if (!inString) return positions[next];
    }
    const char = text[i];
    if (inString && char === '\\') i++;
    else if (char === '"') inString = !inString;
  }
  return undefined;
}

/** --body json: the file as base64 inside a checked template. */
export class JsonBody implements BodyFormat {
  readonly #template: JsonTemplate;

  constructor(template: JsonTemplate) {
    this.#template = template;
  }

  envelope({ rel, name }: BodyFile): Envelope {
    const [head, tail] = this.#template.around(rel, name);
    return { head, tail, base64: true, contentType: 'application/json' };
  }

  readonly decode = decodeAnswer;
  readonly single = wholeAnswer;
  readonly perFile = listedAnswers;
}
