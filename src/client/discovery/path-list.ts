import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/**
 * Reads paths from a list, one a line (`\n`, a trailing `\r` dropped) or
 * NUL-separated (`find -print0`), without holding the whole list in memory.
 * Empty entries are ignored. With NUL separation a newline is part of a name.
 */
export async function* readPathList(source: AsyncIterable<Buffer | string>, nul: boolean): AsyncGenerator<string> {
  const separator = nul ? '\0' : '\n';
  // A chunk may end inside a multi-byte character: the decoder holds it back.
  const decoder = new StringDecoder('utf8');
  let carry = '';
  for await (const chunk of source) {
    const text = carry + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
    const parts = text.split(separator);
    carry = parts.pop() as string;
    for (const part of parts) {
      const path = nul ? part : part.replace(/\r$/, '');
      if (path !== '') yield path;
    }
  }
  carry += decoder.end();
  const last = nul ? carry : carry.replace(/\r$/, '');
  if (last !== '') yield last;
}

/** The paths listed in a file (`--files-from`). */
export function readPathListFile(file: string, nul: boolean): AsyncGenerator<string> {
  return readPathList(createReadStream(file), nul);
}
