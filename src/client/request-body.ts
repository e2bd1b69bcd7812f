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
 * Several files read into one multipart body (--files-per-request): a part
 * per file that could be opened; those that could not are left out, each
 * with its reason.
 */
export interface GroupBody {
  /** Absent when no file could be read: there is nothing to send. */
  readonly data: Buffer | undefined;
  /** Per file, in order: its bytes in the body, or why it was left out. */
  readonly files: ReadonlyArray<number | FileReadError>;
}

/** A file opened for reading, its size taken from the descriptor. */
interface OpenedFile {
  readonly fd: number;
  readonly size: number;
  readonly name: string;
  readonly type: string;
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
    const file = await this.#open(path);
    let streaming = false;
    try {
      const { fd, size, name, type } = file;
      const framing = this.#framing;
      const head = framing === undefined ? undefined : Buffer.from(framing.head(name, type));
      const framingLength = head === undefined || framing === undefined ? 0 : head.length + framing.tail.length;
      if (size > this.#streamThreshold) {
        streaming = true;
        // autoClose: destroying the file stream closes the descriptor, whether or not the body was ever read.
        const stream = createReadStream('', { fd, start: 0, end: size - 1, highWaterMark: 256 * 1024 });
        const data = Readable.from(frame(stream, size, head, framing?.tail), { objectMode: false });
        data.once('close', () => stream.destroy());
        return { data, length: framingLength + size, fileBytes: size, fileType: type };
      }
      const data = Buffer.allocUnsafe(framingLength + size);
      const offset = head === undefined ? 0 : head.copy(data, 0);
      await this.#readInto(file, data, offset);
      framing?.tail.copy(data, offset + size);
      return { data, length: data.length, fileBytes: size, fileType: type };
    } catch (error) {
      throw asReadError(error);
    } finally {
      if (!streaming) await this.#files.close(file.fd);
    }
  }

  /** The files in one multipart body, each read whole: a file too large for that is sent alone (see PushRun). */
  async readGroup(paths: readonly string[]): Promise<GroupBody> {
    const framing = this.#framing as MultipartFraming;
    const opened: Array<OpenedFile | FileReadError> = [];
    try {
      // #open throws only FileReadError: a file that cannot be opened is left out with its reason.
      for (const path of paths) opened.push(await this.#open(path).catch((error: unknown) => error as FileReadError));
      const heads: Buffer[] = [];
      let length = framing.tail.length;
      for (const file of opened) {
        if (file instanceof FileReadError) continue;
        const head = Buffer.from(heads.length === 0 ? framing.head(file.name, file.type) : framing.between(file.name, file.type));
        heads.push(head);
        length += head.length + file.size;
      }
      const files = opened.map((file) => (file instanceof FileReadError ? file : file.size));
      if (heads.length === 0) return { data: undefined, files };
      const data = Buffer.allocUnsafe(length);
      let offset = 0;
      let part = 0;
      for (const file of opened) {
        if (file instanceof FileReadError) continue;
        offset += (heads[part++] as Buffer).copy(data, offset);
        await this.#readInto(file, data, offset);
        offset += file.size;
      }
      framing.tail.copy(data, offset);
      return { data, files };
    } catch (error) {
      throw asReadError(error);
    } finally {
      for (const file of opened) if (!(file instanceof FileReadError)) await this.#files.close(file.fd);
    }
  }

  async #open(path: string): Promise<OpenedFile> {
    const ops = this.#files;
    let fd: number;
    try {
      fd = await ops.open(path);
    } catch (error) {
      throw toFileReadError(error);
    }
    try {
      const stats = await ops.fstat(fd);
      if (!stats.isFile()) throw new FileReadError('IMGPUSH_NOT_A_FILE', 'not a regular file');
      const name = basename(path);
      return { fd, size: stats.size, name, type: contentTypeFor(name) };
    } catch (error) {
      await ops.close(fd);
      throw error instanceof FileReadError ? error : toFileReadError(error);
    }
  }

  /** The whole file into `data` at `offset`; a file that shrank since it was opened fails rather than send fewer bytes. */
  async #readInto({ fd, size }: OpenedFile, data: Buffer, offset: number): Promise<void> {
    for (let done = 0; done < size;) {
      const bytesRead = await this.#files.read(fd, data, offset + done, size - done, done);
      if (bytesRead === 0) throw new FileChangedError(size, done);
      done += bytesRead;
    }
  }
}

function asReadError(error: unknown): FileReadError | FileChangedError {
  return error instanceof FileReadError || error instanceof FileChangedError ? error : toFileReadError(error);
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
