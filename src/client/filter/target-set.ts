import type { UrlTemplate } from '../transport/url-template.js';

/**
 * The URLs a per-file `--url` (`{path}`, `{name}`…) gives the files of a run:
 * two files with one URL would overwrite each other on the server, and both
 * be logged uploaded. Kept exact (a path per file, only for a per-file
 * template): a hash could fail a file that was never in the way.
 */
export class TargetSet {
  readonly #template: UrlTemplate;
  readonly #first = new Map<string, string>();

  constructor(template: UrlTemplate) {
    this.#template = template;
  }

  /** Claims the URL of the file found at `rel`: undefined when it is free, else the path of the file that has it. */
  claim(rel: string, path: string): string | undefined {
    const target = this.#template.pathFor(rel);
    const first = this.#first.get(target);
    if (first === undefined) this.#first.set(target, path);
    return first;
  }
}
