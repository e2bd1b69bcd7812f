import { randomUUID } from 'node:crypto';
import { ServerError } from '../errors.js';

type JobStatus = 'queued' | 'running' | 'done' | 'failed';

/** One asynchronous prediction, as GET /v1/jobs/{id} shows it. */
export interface Job {
  readonly id: string;
  status: JobStatus;
  readonly created: string;
  finished?: string;
  result?: unknown;
  error?: { readonly code: string; readonly message: string };
}

interface Entry {
  readonly job: Job;
  /** When it may be forgotten: job TTL after it finished; never while it is pending. */
  expiresAt: number;
}

/**
 * Jobs kept for `ttlMs` after they end, at most `capacity` of them: a full
 * store forgets the oldest finished job first, and refuses a new one (429)
 * only when every job in it is still pending.
 */
export class JobStore {
  readonly #entries = new Map<string, Entry>();
  /** Ids forgotten for room, not for their TTL, the latest `capacity` of them: a GET can say so. */
  readonly #evicted = new Set<string>();
  readonly #ttlMs: number;
  readonly #capacity: number;
  #sweptAt = 0;

  constructor(ttlMs: number, capacity: number) {
    this.#ttlMs = ttlMs;
    this.#capacity = capacity;
  }

  create(now = Date.now()): Job {
    this.#expire(now);
    if (this.#entries.size >= this.#capacity && !this.#forgetOldestFinished()) {
      throw new ServerError('IMGPUSH_TOO_MANY_JOBS', `${this.#capacity} jobs are pending: try again shortly`, 1);
    }
    const job: Job = { id: randomUUID(), status: 'queued', created: new Date(now).toISOString() };
    this.#entries.set(job.id, { job, expiresAt: Number.POSITIVE_INFINITY });
    return job;
  }

  get(id: string, now = Date.now()): Job | undefined {
    this.#expire(now);
    const entry = this.#entries.get(id);
    return entry === undefined || entry.expiresAt <= now ? undefined : entry.job;
  }

  /** Marks a job ended (done or failed); its TTL starts now. */
  finish(job: Job, outcome: { result: unknown } | { error: { code: string; message: string } }, now = Date.now()): void {
    Object.assign(job, 'result' in outcome ? { status: 'done', result: outcome.result } : { status: 'failed', error: outcome.error });
    job.finished = new Date(now).toISOString();
    const entry = this.#entries.get(job.id);
    if (entry !== undefined) entry.expiresAt = now + this.#ttlMs;
  }

  /** Forgets expired jobs; a whole sweep at most once a second, not on every request. */
  #expire(now: number): void {
    if (now - this.#sweptAt < 1000) return;
    this.#sweptAt = now;
    for (const [id, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(id);
  }

  /** Whether `id` was forgotten to make room for newer jobs (--max-jobs). */
  wasEvicted(id: string): boolean {
    return this.#evicted.has(id);
  }

  #forgetOldestFinished(): boolean {
    for (const [id, entry] of this.#entries) {
      if (Number.isFinite(entry.expiresAt)) {
        this.#entries.delete(id);
        this.#evicted.add(id);
        if (this.#evicted.size > this.#capacity) this.#evicted.delete(this.#evicted.values().next().value as string);
        return true;
      }
    }
    return false;
  }
}
