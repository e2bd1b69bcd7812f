import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { contentTypeFor } from '../shared/media-types.js';
import { FileChangedError, FileReadError, toFileReadError } from './errors.js';
import type { FileAccess } from './file-access.js';
import type { MultipartFraming } from './multipart.js';

/** A request body made from one file: one Buffer for small files, a stream of exactly `length` bytes for large ones. */
export interface FileBody {
  readonly data: Buffer | Readable;
  readonly length: number;
  /** The file's bytes in it (without the multipart framing). */
  readonly fileBytes: number;
  /** Content type of the file itself (the part's type in multipart). */
  readonly fileType: string;
}

/**
 * Reads each file into a request body, afresh for every attempt, so a retry
 * never sends a stale, truncated or doubled body. Files up to
 * `streamThreshold` bytes are read whole straight into the final buffer
 * between the multipart head and tail (no copy); larger ones are streamed.
 */
export class FileBodyReader {
  readonly #files: FileAccess;
  readonly #framing: MultipartFraming | undefined;
  readonly #streamThreshold: number;

  constructor(files: FileAccess, framing: MultipartFraming | undefined, streamThreshold: number) {
    this.#files = files;
    this.#framing = framing;
    this.#streamThreshold = streamThreshold;
  }

  async read(path: string): Promise<FileBody> {
    const ops = this.#files;
    let fd: number;
    try {
      fd = await ops.open(path);
    } catch (error) {
      throw toFileReadError(error);
    }
    let streaming = false;
    try {
      const stats = await ops.fstat(fd);
      if (!stats.isFile()) throw new FileReadError('IMGPUSH_NOT_A_FILE', 'not a regular file');
      const size = stats.size;
      const name = basename(path);
      const fileType = contentTypeFor(name);
      const framing = this.#framing;
      const head = framing === undefined ? undefined : Buffer.from(framing.head(name, fileType));
      const framingLength = head === undefined || framing === undefined ? 0 : head.length + framing.tail.length;
      if (size > this.#streamThreshold) {
        streaming = true;
        // autoClose: destroying the file stream closes the descriptor, whether or not the body was ever read.
        const file = createReadStream('', { fd, start: 0, end: size - 1, highWaterMark: 256 * 1024 });
        const data = Readable.from(frame(file, size, head, framing?.tail), { objectMode: false });
        data.once('close', () => file.destroy());
        return { data, length: framingLength + size, fileBytes: size, fileType };
      }
      const data = Buffer.allocUnsafe(framingLength + size);
      const offset = head === undefined ? 0 : head.copy(data, 0);
      for (let done = 0; done < size;) {
        const bytesRead = await ops.read(fd, data, offset + done, size - done, done);
        if (bytesRead === 0) throw new FileChangedError(size, done);
        done += bytesRead;
      }
      framing?.tail.copy(data, offset + size);
      return { data, length: data.length, fileBytes: size, fileType };
    } catch (error) {
      throw error instanceof FileReadError || error instanceof FileChangedError ? error : toFileReadError(error);
    } finally {
      if (!streaming) await ops.close(fd);
    }
  }
}

/** The file's first `size` bytes between head and tail; fails rather than send fewer. */
async function* frame(file: AsyncIterable<Buffer>, size: number, head: Buffer | undefined, tail: Buffer | undefined): AsyncGenerator<Buffer> {
  if (head !== undefined) yield head;
  let sent = 0;
  for await (const chunk of file) {
    sent += chunk.length;
    yield chunk;
  }
  if (sent !== size) throw new FileChangedError(size, sent);
  if (tail !== undefined) yield tail;
}
