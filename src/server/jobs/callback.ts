import { createHmac } from 'node:crypto';
import { request } from 'undici';
import { callWithRetries, type Decision } from '../../shared/retry-loop.js';
import { CALLBACK_DELIVERY } from '../defaults.js';
import { ServerError } from '../errors.js';
import type { Job } from './job-store.js';

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|0\.0\.0\.0|\[::\])$/i;

/** The header that carries a callback's signature: `sha256=` and the hex HMAC-SHA256 of the body with --callback-secret. */
const SIGNATURE_HEADER = 'x-imgpush-signature';

/** Where the server itself listens, as a request saw it: a callback may never name it. */
export interface SelfAddress {
  readonly address: string | undefined;
  readonly port: number | undefined;
}

function portOf(url: URL): number {
  return url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
}

function isSelf(url: URL, self: SelfAddress): boolean {
  if (portOf(url) !== self.port) return false;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return LOOPBACK.test(url.hostname) || host === self.address || host === self.address?.replace(/^::ffff:/, '');
}

/**
 * A job's callback_url, checked at submission: http(s), a host that
 * --allow-callback-hosts names (as `host` or `host:port`; loopback hosts
 * too, only when named), and never the server itself.
 */
export function callbackUrl(text: string | undefined, allowed: readonly string[], self: SelfAddress): URL | undefined {
  if (text === undefined || text === '') return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ServerError('IMGPUSH_BAD_CALLBACK', `callback_url ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ServerError('IMGPUSH_BAD_CALLBACK', 'callback_url must be http or https');
  if (!allowed.includes(url.hostname) && !allowed.includes(url.host)) {
    throw new ServerError('IMGPUSH_CALLBACK_REFUSED', `callback_url host ${url.host} is not in --allow-callback-hosts (loopback hosts too must be named)`);
  }
  if (isSelf(url, self)) throw new ServerError('IMGPUSH_CALLBACK_REFUSED', `callback_url ${url.host} is this server itself`);
  return url;
}

/** A callback answered with a status other than 2xx. */
class CallbackRefused extends Error {}

/** A finished job as its callback gets it: the JSON body and its headers, signed when there is a secret. */
function callbackRequest(job: Job, secret: string | undefined): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify(job);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (secret !== undefined) headers[SIGNATURE_HEADER] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  return { body, headers };
}

/** One POST of the finished job; throws on anything but a 2xx (a refused or broken connection fails like a 5xx). */
async function postJob(url: URL, { body, headers }: { body: string; headers: Record<string, string> }, timeoutMs: number): Promise<void> {
  const answer = await request(url, { method: 'POST', body, headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  await answer.body.dump();
  if (answer.statusCode >= 300) throw new CallbackRefused(`answered ${answer.statusCode}`);
}

/** POSTs a finished job to its callback with a few tries; a callback that never answers is logged, not retried forever. True once delivered. */
export async function deliverCallback(url: URL, job: Job, secret: string | undefined, log: (message: string) => void, signal?: AbortSignal): Promise<boolean> {
  const signed = callbackRequest(job, secret);
  const { attempts, firstDelayMs, timeoutMs } = CALLBACK_DELIVERY;
  // Every failure is worth another try, after a doubling wait: the receiver may be restarting.
  const decide = (_error: unknown, attempt: number): Decision => ({ retry: true, waitMs: firstDelayMs * 2 ** (attempt - 1), consumes: true });
  try {
    await callWithRetries(() => postJob(url, signed, timeoutMs), { retries: attempts - 1, decide, signal });
    return true;
  } catch {
    log(`callback for job ${job.id} to ${url.host} failed ${attempts} times; its result stays at /v1/jobs/${job.id}`);
    return false;
  }
}

/** One quick try, for a shutdown telling a callback its job failed. */
export function deliverOnce(url: URL, job: Job, secret: string | undefined): Promise<boolean> {
  return postJob(url, callbackRequest(job, secret), CALLBACK_DELIVERY.lastTryTimeoutMs).then(() => true, () => false);
}
