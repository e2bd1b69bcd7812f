import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlWriter } from './jsonl-writer.js';

function toStderr(lines: readonly string[]): void {
  process.stderr.write(`${lines.join('\n')}\n`);
}

/**
 * Where the lines go that a log could not take (a full disk, a log removed):
 * `imgpush-unlogged-<time>-<pid>.jsonl` in the working folder, else in the
 * temp folder, else stderr. Nothing is opened until a line comes.
 */
export class Unlogged {
  /** null: no folder would take the file, so stderr. */
  #writer: JsonlWriter | null | undefined;

  /** The file holding the lines, once there is one. */
  get path(): string | null {
    return this.#writer?.path ?? null;
  }

  readonly add = (lines: readonly string[]): void => {
    const writer = this.#writer === undefined ? (this.#writer = this.#open()) : this.#writer;
    if (writer === null) toStderr(lines);
    else for (const line of lines) writer.writeLine(line);
  };

  close(): void {
    this.#writer?.close();
  }

  #open(): JsonlWriter | null {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    for (const folder of [process.cwd(), tmpdir()]) {
      const writer = new JsonlWriter(join(folder, `imgpush-unlogged-${stamp}-${process.pid}.jsonl`), { mode: 'exclusive', onError: () => {}, spill: toStderr });
      try {
        writer.open();
        return writer;
      } catch {
        // The next folder, then stderr.
      }
    }
    return null;
  }
}
