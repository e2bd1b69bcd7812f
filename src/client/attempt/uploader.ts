import { ImgpushError } from '../../shared/errors.js';
import type { DiscoveredFile } from '../discovery/discover.js';
import { JobPending, type Pacer, type Tally } from '../pacing/pacer.js';
import type { FileBody, FileBodyReader } from '../bodies/request-body.js';
import type { Origin } from '../transport/origins.js';
import { failedResult, unsentResult, uploadedResult, type FileResult, type Progress } from '../results.js';
import { isRefusedForContent } from '../pacing/retry-policy.js';
import type { RunControl } from '../run-control.js';
import type { Delivery, Transport } from '../transport/transport.js';

/**
 * The attempt stage: one file, or a request of several, from its first
 * attempt to its result, handed to `finish`. Reading bodies is
 * FileBodyReader's, sending Transport's, every wait and retry the Pacer's.
 */
export class Uploader {
  readonly #bodies: FileBodyReader;
  readonly #transport: Transport;
  readonly #pacer: Pacer;
  readonly #control: RunControl;
  readonly #progress: Progress;
  readonly #async: boolean;
  readonly #finish: (result: FileResult) => void;

  constructor(parts: { bodies: FileBodyReader; transport: Transport; pacer: Pacer; control: RunControl; progress: Progress; async: boolean }, finish: (result: FileResult) => void) {
    this.#bodies = parts.bodies;
    this.#transport = parts.transport;
    this.#pacer = parts.pacer;
    this.#control = parts.control;
    this.#progress = parts.progress;
    this.#async = parts.async;
    this.#finish = finish;
  }

  /** A file the stop kept from being sent. */
  unsent(file: DiscoveredFile): FileResult {
    return unsentResult(file, this.#control.interrupted(), this.#transport.urlFor(file.rel));
  }

  /** One file, from its first attempt to its result. Never rejects. */
  readonly one = async (file: DiscoveredFile): Promise<void> => {
    if (this.#control.stopping) {
      this.#finish(this.unsent(file));
      return;
    }
    this.#progress.inFlight++;
    await this.#pacer.pace(1);
    const tally: Tally = { attempts: 0, ms: 0 };
    // The job whose result is awaited (--async), for the failure log if the run stops first.
    let job = file.job;
    const attempts = (): { attempts: number; ms: number; url: string } => ({ attempts: tally.attempts, ms: tally.ms, url: this.#transport.urlFor(file.rel, tally.origin) });
    try {
      // A job an earlier run left pending is fetched; only a job the server no longer knows means sending the file again.
      let delivery = job === undefined ? undefined : await this.#awaitJob(job, file.size);
      if (delivery === undefined) {
        delivery = await this.#pacer.call(() => this.#bodies.read(file.path, file.rel, file), this.#send(file.rel), tally);
        if (this.#async) {
          job = delivery.job;
          if (job === undefined) throw new ImgpushError('IMGPUSH_NOT_A_JOB', `--async: the server answered ${delivery.status} without a Location header; is --url a jobs endpoint (such as /v1/jobs)?`);
          delivery = await this.#awaitJob(job, delivery.bytes);
          if (delivery === undefined) throw new ImgpushError('IMGPUSH_JOB_GONE', `the server no longer knows job ${job} (expired?)`);
        }
      }
      if (tally.origin !== undefined) tally.origin.ok++;
      this.#finish(uploadedResult(file, delivery, attempts()));
    } catch (error) {
      const failed = failedResult(file, error, attempts());
      this.#finish(job === undefined || error instanceof ImgpushError && error.code === 'IMGPUSH_JOB_FAILED' ? failed : { ...failed, job });
    } finally {
      this.#progress.inFlight--;
    }
  };

  /**
   * Several files in one request, each to its own result. When the server
   * refuses the request for what it holds (400, 413, 415, 422), its files
   * are sent again one by one, so that one bad file does not take the
   * others down with it, now or at every retry. Never rejects.
   */
  readonly group = async (files: DiscoveredFile[]): Promise<void> => {
    const first = files[0] as DiscoveredFile;
    if (this.#control.stopping) {
      for (const file of files) this.#finish(this.unsent(file));
      return;
    }
    const progress = this.#progress;
    progress.inFlight += files.length;
    await this.#pacer.pace(files.length);
    const tally: Tally = { attempts: 0, ms: 0 };
    let delivery;
    try {
      delivery = await this.#pacer.call(() => this.#bodies.readGroup(files), (origin, body) => this.#transport.sendGroup(origin, body, first.rel), tally);
    } catch (error) {
      progress.inFlight -= files.length;
      if (files.length > 1 && isRefusedForContent(error) && !this.#control.stopping) {
        for (const file of files) await this.one(file);
        return;
      }
      const attempts = { attempts: tally.attempts, ms: tally.ms, url: this.#transport.urlFor(first.rel, tally.origin) };
      for (const file of files) this.#finish(failedResult(file, error, attempts));
      return;
    }
    progress.inFlight -= files.length;
    const url = this.#transport.urlFor(first.rel, tally.origin);
    files.forEach((file, index) => {
      const outcome = delivery.files[index];
      if (outcome === undefined || outcome instanceof ImgpushError) {
        this.#finish(failedResult(file, outcome, { attempts: tally.attempts, ms: 0, url }));
        return;
      }
      if (tally.origin !== undefined) tally.origin.ok++;
      this.#finish(uploadedResult(file, { status: delivery.status ?? 0, bytes: outcome.bytes, response: outcome.response }, { attempts: tally.attempts, ms: tally.ms, url }));
    });
  };

  /** Sends a body; a streamed one is checked once answered: a file that changed under it went torn, and goes again. */
  #send(rel: string): (origin: Origin, body: FileBody) => Promise<Delivery> {
    return async (origin, body) => {
      const delivery = await this.#transport.send(origin, body, rel);
      await body.verify?.();
      return body.sha256 === undefined ? delivery : { ...delivery, sha256: body.sha256 };
    };
  }

  /**
   * Polls a job until it ends; undefined when the server no longer knows
   * it. A stop leaves it pending: the caller records where it is.
   */
  #awaitJob(job: string, bytes: number): Promise<Delivery | undefined> {
    return this.#pacer.poll(async (wait) => {
      if (this.#control.signal.aborted) throw this.#stoppedWhilePending();
      const state = await this.#transport.poll(job);
      if (state.status === 'gone') return undefined;
      if (state.status === 'done') return { status: 200, response: state.result, bytes, job };
      if (state.status === 'failed') {
        throw new ImgpushError('IMGPUSH_JOB_FAILED', `the job failed on the server: ${state.error?.code ?? 'error'}: ${state.error?.message ?? 'no reason given'}`);
      }
      throw new JobPending(state.retryAfterMs ?? wait);
    }).catch((error: unknown) => {
      if (error instanceof JobPending) throw this.#stoppedWhilePending();
      throw error;
    });
  }

  #stoppedWhilePending(): ImgpushError {
    return new ImgpushError('IMGPUSH_INTERRUPTED', `${this.#control.reason} while its job was pending on the server: imgpush retry fetches the result`);
  }
}
