import { request } from 'undici';
import { callWithRetries, type Decision } from '../../shared/retry-loop.js';
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

/** A callback answered with a status other than 2xx. */
class CallbackRefused extends Error {}

/** One POST of the finished job; throws on anything but a 2xx (a refused or broken connection fails like a 5xx). */
async function postJob(url: URL, body: string, timeoutMs: number): Promise<void> {
  const answer = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json' }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  await answer.body.dump();
  if (answer.statusCode >= 300) throw new CallbackRefused(`answered ${answer.statusCode}`);
}

/** POSTs a finished job to its callback with a few tries; a callback that never answers is logged, not retried forever. True once delivered. */
export async function deliverCallback(url: URL, job: Job, log: (message: string) => void, signal?: AbortSignal): Promise<boolean> {
  const body = JSON.stringify(job);
  const { attempts, firstDelayMs, timeoutMs } = CALLBACK_DELIVERY;
  // Every failure is worth another try, after a doubling wait: the receiver may be restarting.
  const decide = (_error: unknown, attempt: number): Decision => ({ retry: true, waitMs: firstDelayMs * 2 ** (attempt - 1), consumes: true });
  try {
    await callWithRetries(() => postJob(url, body, timeoutMs), { retries: attempts - 1, decide, signal });
    return true;
  } catch {
    log(`callback for job ${job.id} to ${url.host} failed ${attempts} times; its result stays at /v1/jobs/${job.id}`);
    return false;
  }
}

/** One quick try, for a shutdown telling a callback its job failed. */
export function deliverOnce(url: URL, job: Job): Promise<boolean> {
  return postJob(url, JSON.stringify(job), CALLBACK_DELIVERY.lastTryTimeoutMs).then(() => true, () => false);
}
