import { decodeAnswer, listedAnswers, wholeAnswer, type BodyFile, type BodyFormat, type Envelope, type GroupFrame } from './body-format.js';

/**
 * 128 random bits. A boundary need only not occur in the files, which exist
 * before the run and cannot see its Math.random; node:crypto would cost
 * every start 8 ms.
 */
function randomBoundary(): string {
  let hex = '';
  for (let i = 0; i < 4; i++) hex += Math.floor(Math.random() * 2 ** 32).toString(16).padStart(8, '0');
  return `imgpush-${hex}`;
}

/** Quoted-string escaping for names in Content-Disposition, as browsers do it (WHATWG). */
function quote(value: string): string {
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/**
 * --body multipart: a multipart/form-data body framed by hand around its
 * files: the text before each file's bytes and the bytes after the last.
 * Everything that does not depend on the file (extra form fields, the
 * boundary) is built once per run.
 */
export class MultipartBody implements BodyFormat {
  readonly contentType: string;
  readonly tail: Buffer;
  readonly #prefix: string;
  /** Ends the part before and opens the next, in the same field: several files in one request. */
  readonly #between: string;

  constructor(field: string, form: ReadonlyArray<readonly [string, string]>, boundary = randomBoundary()) {
    this.contentType = `multipart/form-data; boundary=${boundary}`;
    let prefix = '';
    for (const [name, value] of form) {
      prefix += `--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`;
    }
    const part = `--${boundary}\r\nContent-Disposition: form-data; name="${quote(field)}"; filename="`;
    this.#prefix = prefix + part;
    this.#between = `\r\n${part}`;
    this.tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  }

  /** Everything that goes before the bytes of file `name`, the first or only file of its request. */
  head(name: string, contentType: string): string {
    return `${this.#prefix}${quote(name)}"\r\nContent-Type: ${contentType}\r\n\r\n`;
  }

  envelope({ name, type }: BodyFile): Envelope {
    return { head: Buffer.from(this.head(name, type)), tail: this.tail, base64: false, contentType: this.contentType };
  }

  /** Several files in one request: each one's part in the same field. */
  readonly frame = (files: readonly BodyFile[]): GroupFrame => ({
    before: files.map(({ name, type }, i) => Buffer.from(i === 0 ? this.head(name, type) : `${this.#between}${quote(name)}"\r\nContent-Type: ${type}\r\n\r\n`)),
    after: this.tail,
    contentType: this.contentType,
  });

  readonly decode = decodeAnswer;
  readonly single = wholeAnswer;
  readonly perFile = listedAnswers;
}
