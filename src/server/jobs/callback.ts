import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { CALLBACK_DELIVERY } from '../defaults.js';
import { ServerError } from '../errors.js';
import type { Job } from './job-store.js';

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** A job's callback_url, checked at submission: http(s), and a loopback host unless --allow-callback-hosts names it. */
export function callbackUrl(text: string | undefined, allowed: readonly string[]): URL | undefined {
  if (text === undefined || text === '') return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ServerError('IMGPUSH_BAD_CALLBACK', `callback_url ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ServerError('IMGPUSH_BAD_CALLBACK', 'callback_url must be http or https');
  if (!LOOPBACK.test(url.hostname) && !allowed.includes(url.hostname)) {
    throw new ServerError('IMGPUSH_CALLBACK_REFUSED', `callback_url host ${url.hostname} is not loopback and not in --allow-callback-hosts`);
  }
  return url;
}

/**
 * The callback's one retry loop: `attempt` up to `attempts` times, waiting
 * `firstDelayMs`, then twice as long, between tries; true once one succeeds,
 * false when all failed or `signal` aborted a wait. Kept apart so that the
 * project's shared pacer can take its place.
 */
export async function tryWithBackoff(attempt: () => Promise<boolean>, { attempts, firstDelayMs }: { attempts: number; firstDelayMs: number }, signal?: AbortSignal): Promise<boolean> {
  for (let tries = 1; tries <= attempts; tries++) {
    if (await attempt()) return true;
    if (tries === attempts) break;
    try {
      await delay(firstDelayMs * 2 ** (tries - 1), undefined, { signal });
    } catch {
      return false;
    }
  }
  return false;
}

/** One POST of the finished job; true on a 2xx (a refused or broken connection counts as a failure, like a 5xx). */
async function postJob(url: URL, body: string, timeoutMs: number): Promise<boolean> {
  try {
    const answer = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json' }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    await answer.body.dump();
    return answer.statusCode < 300;
  } catch {
    return false;
  }
}

/** POSTs a finished job to its callback with a few tries; a callback that never answers is logged, not retried forever. True once delivered. */
export async function deliverCallback(url: URL, job: Job, log: (message: string) => void, signal?: AbortSignal): Promise<boolean> {
  const body = JSON.stringify(job);
  if (await tryWithBackoff(() => postJob(url, body, CALLBACK_DELIVERY.timeoutMs), CALLBACK_DELIVERY, signal)) return true;
  log(`callback for job ${job.id} to ${url.host} failed ${CALLBACK_DELIVERY.attempts} times; its result stays at /v1/jobs/${job.id}`);
  return false;
}

/** One quick try, for a shutdown telling a callback its job failed. */
export function deliverOnce(url: URL, job: Job): Promise<boolean> {
  return postJob(url, JSON.stringify(job), CALLBACK_DELIVERY.lastTryTimeoutMs);
}
