import { NetworkError } from '../errors.js';

/**
 * Failures to reach a server at all: nothing listening, no such host, no
 * route, no connection in time, a TLS handshake or a proxy that failed, or
 * something on the port that does not speak HTTP. A connection cut or an
 * answer too slow says a server is there.
 */
const NOT_REACHED: ReadonlySet<string> = new Set([
  'IMGPUSH_BAD_ANSWER', 'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'IMGPUSH_TLS', 'IMGPUSH_PROXY', 'IMGPUSH_PROXY_AUTH',
]);

/**
 * Whether the server has answered at least once in this run. Until it has,
 * a failure to reach it is a wrong --url or a server not started far more
 * often than a restart: the outage gate, made to ride out a restart, would
 * keep such a run waiting for --max-outage. So until the first answer,
 * outage failures go by the file's own retries (with short backoff), and the
 * first file to fail for good that way ends the run, in one line.
 */
export class FirstContact {
  readonly #giveUp: (why: string) => void;
  #answered = false;
  #gaveUp = false;

  /** `giveUp` is told why, once, when a request failed for good and the server never answered. */
  constructor(giveUp: (why: string) => void) {
    this.#giveUp = giveUp;
  }

  /** Whether any server of the run has answered (any status). */
  get made(): boolean {
    return this.#answered;
  }

  answered(): void {
    this.#answered = true;
  }

  /** A request's last attempt, to `url`, failed with `error`: ends the run when no server has ever answered. */
  failedForGood(error: unknown, url: string): void {
    if (this.#answered || this.#gaveUp || !(error instanceof NetworkError) || !NOT_REACHED.has(error.code)) return;
    this.#gaveUp = true;
    this.#giveUp(`no answer from ${url}: ${error.message}`);
  }
}
