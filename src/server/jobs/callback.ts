import { createHmac } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { CALLBACK_DELIVERY } from '../defaults.js';
import { ServerError } from '../errors.js';
import type { Job } from './job-store.js';

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|0\.0\.0\.0|\[::\])$/i;

/** The header that carries a callback's signature: `sha256=` and the hex HMAC-SHA256 of the body with --callback-secret. */
export const SIGNATURE_HEADER = 'x-imgpush-signature';

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

/** A finished job as its callback gets it: the JSON body and its headers, signed when there is a secret. */
export function callbackRequest(job: Job, secret: string | undefined): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify(job);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (secret !== undefined) headers[SIGNATURE_HEADER] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  return { body, headers };
}

/** One POST of the finished job; true on a 2xx (a refused or broken connection counts as a failure, like a 5xx). */
async function postJob(url: URL, { body, headers }: { body: string; headers: Record<string, string> }, timeoutMs: number): Promise<boolean> {
  try {
    const answer = await request(url, { method: 'POST', body, headers, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    await answer.body.dump();
    return answer.statusCode < 300;
  } catch {
    return false;
  }
}

/** POSTs a finished job to its callback with a few tries; a callback that never answers is logged, not retried forever. True once delivered. */
export async function deliverCallback(url: URL, job: Job, secret: string | undefined, log: (message: string) => void, signal?: AbortSignal): Promise<boolean> {
  const signed = callbackRequest(job, secret);
  if (await tryWithBackoff(() => postJob(url, signed, CALLBACK_DELIVERY.timeoutMs), CALLBACK_DELIVERY, signal)) return true;
  log(`callback for job ${job.id} to ${url.host} failed ${CALLBACK_DELIVERY.attempts} times; its result stays at /v1/jobs/${job.id}`);
  return false;
}

/** One quick try, for a shutdown telling a callback its job failed. */
export function deliverOnce(url: URL, job: Job, secret: string | undefined): Promise<boolean> {
  return postJob(url, callbackRequest(job, secret), CALLBACK_DELIVERY.lastTryTimeoutMs);
}
