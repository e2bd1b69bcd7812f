import type { DiscoveredFile } from '../discovery/discover.js';

export interface PackerSettings {
  readonly filesPerRequest: number;
  readonly maxRequestBytes: number;
  /** Files larger than this are streamed, so they go alone. */
  readonly streamThresholdBytes: number;
}

/**
 * A request of several files that is not full goes after this long, as
 * Nagle's algorithm does for small writes: a list read from a pipe may bring
 * its next path late, or never.
 */
const PACKING_WAIT_MS = 10;

/**
 * The schedule stage: hands files on one by one, or packed several to a
 * request (--files-per-request) up to --max-request-bytes. A file too large
 * to be read whole goes alone.
 */
export class Packer {
  readonly #settings: PackerSettings;
  readonly #one: (file: DiscoveredFile) => void;
  readonly #group: (files: DiscoveredFile[]) => void;
  #packing: DiscoveredFile[] = [];
  #packingBytes = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(settings: PackerSettings, send: { one: (file: DiscoveredFile) => void; group: (files: DiscoveredFile[]) => void }) {
    this.#settings = settings;
    this.#one = send.one;
    this.#group = send.group;
  }

  add(file: DiscoveredFile): void {
    const { filesPerRequest, maxRequestBytes, streamThresholdBytes } = this.#settings;
    if (filesPerRequest === 1 || file.size > streamThresholdBytes) {
      this.#one(file);
      return;
    }
    if (this.#packing.length > 0 && this.#packingBytes + file.size > maxRequestBytes) this.flush();
    this.#packing.push(file);
    this.#packingBytes += file.size;
    if (this.#packing.length === filesPerRequest) this.flush();
    else if (this.#packing.length === 1) this.#timer = setTimeout(this.flush, PACKING_WAIT_MS);
  }

  /** Sends the files packed so far, however few: at the end, or when more are long in coming. */
  readonly flush = (): void => {
    clearTimeout(this.#timer);
    if (this.#packing.length === 0) return;
    const files = this.#packing;
    this.#packing = [];
    this.#packingBytes = 0;
    this.#group(files);
  };
}
