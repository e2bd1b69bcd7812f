import { randomBytes } from 'node:crypto';

/** Quoted-string escaping for names in Content-Disposition, as browsers do it (WHATWG). */
function quote(value: string): string {
  return value.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

/**
 * Frames a multipart/form-data body by hand around one file: the text before
 * the file's bytes and the bytes after it. Everything that does not depend on
 * the file (extra form fields, the boundary) is built once per run.
 */
export class MultipartFraming {
  readonly contentType: string;
  readonly tail: Buffer;
  readonly #prefix: string;

  constructor(field: string, form: ReadonlyArray<readonly [string, string]>, boundary = `imgpush-${randomBytes(16).toString('hex')}`) {
    this.contentType = `multipart/form-data; boundary=${boundary}`;
    let prefix = '';
    for (const [name, value] of form) {
      prefix += `--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`;
    }
    this.#prefix = `${prefix}--${boundary}\r\nContent-Disposition: form-data; name="${quote(field)}"; filename="`;
    this.tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  }

  /** Everything that goes before the bytes of file `name`. */
  head(name: string, contentType: string): string {
    return `${this.#prefix}${quote(name)}"\r\nContent-Type: ${contentType}\r\n\r\n`;
  }
}
