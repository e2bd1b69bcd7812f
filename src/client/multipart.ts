import { randomBytes } from 'node:crypto';

/** Quoted-string escaping for names in Content-Disposition, as browsers do it (WHATWG). */
function quote(value: string): string {
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/**
 * Frames a multipart/form-data body by hand around its files: the text before
 * each file's bytes and the bytes after the last. Everything that does not
 * depend on the file (extra form fields, the boundary) is built once per run.
 */
export class MultipartFraming {
  readonly contentType: string;
  readonly tail: Buffer;
  readonly #prefix: string;
  /** Ends the part before and opens the next, in the same field: several files in one request. */
  readonly #between: string;

  constructor(field: string, form: ReadonlyArray<readonly [string, string]>, boundary = `imgpush-${randomBytes(16).toString('hex')}`) {
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

  /** What goes before each file's bytes in a request of several, and after the last. */
  frame(parts: ReadonlyArray<{ readonly name: string; readonly type: string }>): { before: Buffer[]; after: Buffer } {
    return { before: parts.map(({ name, type }, i) => Buffer.from(i === 0 ? this.head(name, type) : this.between(name, type))), after: this.tail };
  }

  /** What goes between the bytes of one file and those of the next file `name` in the same request. */
  between(name: string, contentType: string): string {
    return `${this.#between}${quote(name)}"\r\nContent-Type: ${contentType}\r\n\r\n`;
  }
}
