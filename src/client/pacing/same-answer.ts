import { HttpStatusError, reasonPhrase } from '../errors.js';

/**
 * Requests refused for good with one and the same status, with no success
 * before, after which the run stops sending: a wrong --url (404), --token
 * (401, 403) or --body (415) refuses every file alike, and sending the rest
 * would only fill the failure log more slowly.
 */
export const SAME_ANSWER_LIMIT = 12;

/** What to check, by the status every file got. */
const HINTS: Readonly<Record<number, string>> = {
  401: 'check --token',
  403: 'check --token',
  404: 'check --url',
  405: 'check --method and --url',
  400: 'check --body and --field',
  415: 'check --body and --field',
  422: 'check --body and --field',
};

/**
 * Watches the final answers of a run until its first success: when the
 * first SAME_ANSWER_LIMIT requests all ended with the same status, `stop`
 * is told why. One success, or two statuses, and it watches no more: a
 * server that fails some files and accepts others is not stopped.
 */
export class SameAnswerWatch {
  readonly #stop: (why: string) => void;
  #status: number | undefined;
  #count = 0;
  #done = false;

  constructor(stop: (why: string) => void) {
    this.#stop = stop;
  }

  succeeded(): void {
    this.#done = true;
  }

  /** A request to `url` failed for good with `error`. */
  failedForGood(error: unknown, url: string): void {
    if (this.#done || !(error instanceof HttpStatusError)) return;
    if (this.#status !== undefined && error.status !== this.#status) {
      this.#done = true;
      return;
    }
    this.#status = error.status;
    if (++this.#count < SAME_ANSWER_LIMIT) return;
    this.#done = true;
    const answer = `${error.status} ${reasonPhrase(error.status) ?? ''}`.trim();
    this.#stop(`every answer so far is ${answer} from ${url} — ${HINTS[error.status] ?? 'check --url and the options of the request'}`);
  }
}
