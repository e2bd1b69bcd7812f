import type { Hash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { stat as statAsync } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { ImgpushError } from '../../shared/errors.js';
import { contentTypeFor } from '../../shared/media-types.js';
import { FileChangedError, FileReadError, ReencodeError, toFileReadError } from '../errors.js';
import type { FileAccess } from '../discovery/file-access.js';
import type { BodyFile, BodyFormat, Envelope } from './body-format.js';
import type { Reencoded, Reencoder } from './reencode.js';

/** A request body made from one file: one Buffer for small files, a stream of exactly `length` bytes for large ones. */
export interface FileBody {
  readonly data: Buffer | Readable;
  readonly length: number;
  /** The file's bytes in it, as sent (re-encoded, if it was; before base64), without the framing. */
  readonly fileBytes: number;
  /** The request's content type. */
  readonly contentType: string;
  /** Headers the framing adds (the v2 header's length, the Content-Digest of --checksum). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** With --checksum: the SHA-256 of the body, hex, as its Content-Digest says. */
  readonly sha256?: string;
  /**
   * A streamed body: throws FileChangedError when the file changed while it
   * was streamed (its bytes may have gone torn); call it once the answer came.
   */
  readonly verify?: () => Promise<void>;
}

/** The file as discovery found it: a file that differs when it is opened changed since. */
export interface FoundAs {
  readonly size: number;
  readonly mtimeMs: number;
}

/**
 * Several files read into one multipart body (--files-per-request): a part
 * per file that could be opened (and re-encoded); those that could not are
 * left out, each with its reason.
 */
export interface GroupBody {
  /** Absent when no file could be read: there is nothing to send. */
  readonly data: Buffer | undefined;
  readonly contentType: string;
  /** Per file, in order: its bytes in the body, or why it was left out. */
  readonly files: ReadonlyArray<number | FileReadError | ReencodeError>;
  /** Headers the framing adds (the v2 header's length). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** A file opened for reading, its size taken from the descriptor. */
interface OpenedFile {
  readonly fd: number;
  readonly path: string;
  /** As it was when opened: the body is good only if it is still so once read. */
  readonly stats: Stats;
  readonly size: number;
  readonly name: string;
  readonly type: string;
}

/** A file of a group as it will go: re-encoded already, or to be read into place. */
interface Part extends BodyFile {
  readonly file: OpenedFile;
  readonly bytes: Buffer | undefined;
}

const RAW_CHUNK_BYTES = 256 * 1024;
/** A multiple of 3: each chunk of a file read as a rule encodes to base64 on its own, with no padding mid-body. */
const BASE64_CHUNK_BYTES = 3 * 64 * 1024;

/**
 * Reads each file into a request body, afresh for every attempt, so a retry
 * never sends a stale, truncated or doubled body. Files up to
 * `streamThreshold` bytes are read whole straight into the final buffer
 * between the multipart head and tail (no copy); larger ones are streamed.
 * With a re-encoder, each file is read whole and re-encoded first.
 */
export class FileBodyReader {
  readonly #files: FileAccess;
  readonly #format: BodyFormat;
  readonly #streamThreshold: number;
  readonly #reencoder: Reencoder | undefined;
  readonly #checksum: boolean;

  constructor(files: FileAccess, format: BodyFormat, streamThreshold: number, reencoder: Reencoder | undefined, checksum = false) {
    this.#files = files;
    this.#format = format;
    this.#streamThreshold = streamThreshold;
    this.#reencoder = reencoder;
    this.#checksum = checksum;
  }

  /**
   * The body of the file at `path`, found at `rel` under its input root (for
   * the JSON template's `{path}`). A file that is no longer as `found` says,
   * or that changes while it is read, is never sent as if it were.
   */
  async read(path: string, rel: string, found?: FoundAs): Promise<FileBody> {
    const file = await this.#open(path, found);
    let streaming = false;
    try {
      if (this.#reencoder !== undefined) {
        const { data, name, type } = await this.#reencode(file, this.#reencoder);
        return this.#digested(around(this.#format.envelope({ name, type, rel, size: data.length }), data));
      }
      const envelope = this.#format.envelope({ name: file.name, type: file.type, rel, size: file.size });
      if (file.size > this.#streamThreshold) {
        const digest = this.#checksum ? await digestOf(file, envelope) : undefined;
        streaming = true;
        return stream(file, envelope, digest);
      }
      if (envelope.base64) {
        const bytes = Buffer.allocUnsafe(file.size);
        await this.#readInto(file, bytes, 0);
        await this.#assertUnchanged(file);
        return this.#digested(around(envelope, bytes));
      }
      const { head, tail, contentType, headers } = envelope;
      const offset = head?.length ?? 0;
      const data = Buffer.allocUnsafe(offset + file.size + (tail?.length ?? 0));
      head?.copy(data, 0);
      await this.#readInto(file, data, offset);
      await this.#assertUnchanged(file);
      tail?.copy(data, offset + file.size);
      return this.#digested({ data, length: data.length, fileBytes: file.size, contentType, headers });
    } catch (error) {
      throw asReadError(error);
    } finally {
      if (!streaming) await this.#files.close(file.fd);
    }
  }

  /** The files in one multipart or v2 body, each read whole: a file too large for that is sent alone (see PushRun). */
  async readGroup(files: ReadonlyArray<{ readonly path: string; readonly rel: string } & FoundAs>): Promise<GroupBody> {
    const frame = this.#format.frame;
    // Options allow several files a request only with a format that frames them.
    if (frame === undefined) throw new TypeError('this --body holds one file a request');
    const opened: Array<OpenedFile | FileReadError> = [];
    try {
      // #open throws only FileReadError: a file that cannot be opened is left out with its reason.
      for (const file of files) opened.push(await this.#open(file.path, file).catch((error: unknown) => error as FileReadError));
      // Re-encoded sizes are known only once encoded: every file is, before the body is laid out.
      const parts: Array<Part | FileReadError | ReencodeError> = [];
      for (const [i, file] of opened.entries()) parts.push(file instanceof FileReadError ? file : await this.#part(file, (files[i] as { rel: string }).rel));
      const outcomes = parts.map((part) => (part instanceof ImgpushError ? part : part.size));
      const sent = parts.filter((part): part is Part => !(part instanceof ImgpushError));
      if (sent.length === 0) return { data: undefined, contentType: '', files: outcomes };
      const { before, after, headers, contentType } = frame(sent);
      const data = Buffer.allocUnsafe(sent.reduce((length, part, i) => length + (before[i] as Buffer).length + part.size, after.length));
      let offset = 0;
      for (const [i, part] of sent.entries()) {
        offset += (before[i] as Buffer).copy(data, offset);
        if (part.bytes === undefined) await this.#readInto(part.file, data, offset);
        else part.bytes.copy(data, offset);
        offset += part.size;
      }
      after.copy(data, offset);
      return { data, contentType, files: outcomes, headers: this.#checksum ? { ...headers, ...digestHeader(sha256Of(data)) } : headers };
    } catch (error) {
      throw asReadError(error);
    } finally {
      for (const file of opened) if (!(file instanceof FileReadError)) await this.#files.close(file.fd);
    }
  }

  /** A file of a group, re-encoded now when it is to be; one that cannot be is left out with its reason. */
  async #part(file: OpenedFile, rel: string): Promise<Part | ReencodeError> {
    if (this.#reencoder === undefined) return { file, name: file.name, type: file.type, rel, size: file.size, bytes: undefined };
    try {
      const { data, name, type } = await this.#reencode(file, this.#reencoder);
      return { file, name, type, rel, size: data.length, bytes: data };
    } catch (error) {
      if (error instanceof ReencodeError) return error;
      throw error;
    }
  }

  async #reencode(file: OpenedFile, reencoder: Reencoder): Promise<Reencoded> {
    const bytes = Buffer.allocUnsafe(file.size);
    await this.#readInto(file, bytes, 0);
    return reencoder.reencode(bytes, file.name);
  }

  async #open(path: string, found: FoundAs | undefined): Promise<OpenedFile> {
    const ops = this.#files;
    let fd: number;
    try {
      fd = await ops.open(path);
    } catch (error) {
      throw toFileReadError(error);
    }
    try {
      const stats = await ops.fstat(fd);
      if (!stats.isFile()) throw new FileReadError('IMGPUSH_NOT_A_FILE', 'not a regular file (a device, socket or pipe)');
      // Final, not retried: its size and mtime in the results log would be wrong; imgpush retry finds it afresh.
      if (found !== undefined && (stats.size !== found.size || stats.mtimeMs !== found.mtimeMs)) {
        throw new FileReadError('IMGPUSH_FILE_CHANGED', `changed since it was found (${found.size} bytes then, ${stats.size} now, or modified since): imgpush retry sends it as it is now`);
      }
      const name = basename(path);
      return { fd, path, stats, size: stats.size, name, type: contentTypeFor(name) };
    } catch (error) {
      await ops.close(fd);
      throw error instanceof FileReadError ? error : toFileReadError(error);
    }
  }

  /** The whole file into `data` at `offset`; a file that shrank since it was opened fails rather than send fewer bytes. */
  async #readInto({ fd, size }: OpenedFile, data: Buffer, offset: number): Promise<void> {
    for (let done = 0; done < size;) {
      const bytesRead = await this.#files.read(fd, data, offset + done, size - done, done);
      if (bytesRead === 0) throw new FileChangedError(`${size} bytes expected, ${done} read`);
      done += bytesRead;
    }
  }

  /** The file read is still the one opened: same size, modification and change time (a same-size rewrite moves them). */
  async #assertUnchanged(file: OpenedFile): Promise<void> {
    const changed = changes(file.stats, await this.#files.fstat(file.fd));
    if (changed !== undefined) throw new FileChangedError(changed);
  }

  #digested(body: FileBody): FileBody {
    if (!this.#checksum) return body;
    const sha256 = sha256Of(body.data as Buffer);
    return { ...body, headers: { ...body.headers, ...digestHeader(sha256) }, sha256: sha256.toString('hex') };
  }
}

/** What differs between the file as opened and as it is now, in words; undefined when nothing does. */
function changes(then: Stats, now: Stats): string | undefined {
  if (now.dev !== then.dev || now.ino !== then.ino) return 'replaced by another file';
  if (now.size !== then.size) return `${then.size} bytes when opened, ${now.size} now`;
  if (now.mtimeMs !== then.mtimeMs || now.ctimeMs !== then.ctimeMs) return 'written to while it was read';
  return undefined;
}

/** node:crypto is loaded by the runs that use it (--checksum): it costs every start 8 ms. */
function sha256(): Hash {
  return process.getBuiltinModule('node:crypto').createHash('sha256');
}

function sha256Of(data: Buffer): Buffer {
  return sha256().update(data).digest();
}

/** RFC 9530: the digest of the body, which a server checks before it trusts the bytes. */
function digestHeader(sha256: Buffer): Record<string, string> {
  return { 'content-digest': `sha-256=:${sha256.toString('base64')}:` };
}

/** A streamed body's digest: a first pass over the bytes it will send (the header goes before them). */
async function digestOf({ fd, size }: OpenedFile, envelope: Envelope): Promise<Buffer> {
  const hash = sha256();
  const file = createReadStream('', { fd, start: 0, end: size - 1, autoClose: false, highWaterMark: envelope.base64 ? BASE64_CHUNK_BYTES : RAW_CHUNK_BYTES });
  for await (const chunk of frame(file, size, envelope)) hash.update(chunk);
  return hash.digest();
}

function asReadError(error: unknown): ImgpushError {
  return error instanceof ImgpushError ? error : toFileReadError(error);
}

/** How many bytes `size` file bytes take in the body. */
function encodedLength(size: number, base64: boolean): number {
  return base64 ? 4 * Math.ceil(size / 3) : size;
}

/** A body around bytes already in memory (re-encoded, or to go in as base64), in one buffer. */
function around({ head, tail, base64, contentType, headers }: Envelope, bytes: Buffer): FileBody {
  if (head === undefined && tail === undefined && !base64) return { data: bytes, length: bytes.length, fileBytes: bytes.length, contentType };
  const offset = head?.length ?? 0;
  const data = Buffer.allocUnsafe(offset + encodedLength(bytes.length, base64) + (tail?.length ?? 0));
  head?.copy(data, 0);
  const end = offset + (base64 ? data.write(bytes.toString('base64'), offset, 'latin1') : bytes.copy(data, offset));
  tail?.copy(data, end);
  return { data, length: data.length, fileBytes: bytes.length, contentType, headers };
}

/** A large file's body, streamed from disk between its head and tail, with its length known in advance. */
function stream(opened: OpenedFile, envelope: Envelope, digest: Buffer | undefined): FileBody {
  const { fd, size } = opened;
  const { head, tail, base64, contentType } = envelope;
  const headers = digest === undefined ? envelope.headers : { ...envelope.headers, ...digestHeader(digest) };
  // autoClose: destroying the file stream closes the descriptor, whether or not the body was ever read.
  const file = createReadStream('', { fd, start: 0, end: size - 1, highWaterMark: base64 ? BASE64_CHUNK_BYTES : RAW_CHUNK_BYTES });
  const data = Readable.from(frame(file, size, envelope), { objectMode: false });
  data.once('close', () => file.destroy());
  // The descriptor closes with the stream: the file is looked at again by its path (a rename over it shows as another inode).
  const verify = async (): Promise<void> => {
    const changed = changes(opened.stats, await statAsync(opened.path));
    if (changed !== undefined) throw new FileChangedError(changed);
  };
  const length = (head?.length ?? 0) + encodedLength(size, base64) + (tail?.length ?? 0);
  return { data, length, fileBytes: size, contentType, headers, verify, ...(digest === undefined ? {} : { sha256: digest.toString('hex') }) };
}

/** The file's first `size` bytes (as base64 when asked) between head and tail; fails rather than send fewer. */
async function* frame(file: AsyncIterable<Buffer>, size: number, { head, tail, base64 }: Envelope): AsyncGenerator<Buffer> {
  if (head !== undefined) yield head;
  let sent = 0;
  // With base64: the 0–2 bytes of a chunk that do not make a group of 3, encoded with the next chunk.
  let carry: Buffer | undefined;
  for await (const chunk of file) {
    sent += chunk.length;
    if (!base64) {
      yield chunk;
      continue;
    }
    const bytes = carry === undefined ? chunk : Buffer.concat([carry, chunk]);
    const whole = bytes.length - (bytes.length % 3);
    if (whole > 0) yield Buffer.from(bytes.toString('base64', 0, whole), 'latin1');
    carry = whole === bytes.length ? undefined : bytes.subarray(whole);
  }
  if (sent !== size) throw new FileChangedError(`${size} bytes expected, ${sent} read`);
  if (carry !== undefined) yield Buffer.from(carry.toString('base64'), 'latin1');
  if (tail !== undefined) yield tail;
}
