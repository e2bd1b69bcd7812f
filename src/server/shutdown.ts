import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import type { JobRunner } from './jobs/job-runner.js';
import type { AppState } from './state.js';

/** What a shutdown waits for: requests in flight and jobs under way; `log` hears of what it had to give up. */
export class InFlight {
  requests = 0;
  jobs: JobRunner | undefined;
  /** Set when a shutdown begins: answers from then on close their connection. */
  closing = false;
  readonly log: (line: string) => void;

  constructor(log: (line: string) => void = () => {}) {
    this.log = log;
  }

  /** Counts every request from its arrival until its answer ends or its connection goes. */
  track(app: FastifyInstance): void {
    app.addHook('onRequest', async (_request, reply) => {
      this.requests++;
      reply.raw.once('close', () => {
        this.requests--;
      });
    });
    // A keep-alive connection whose request ends after the listener closed would stay open, idle, until its
    // --keep-alive-timeout (65 s), and the server's close waits for it: let the answer close it.
    app.addHook('onSend', async (_request, reply) => {
      if (this.closing) void reply.header('connection', 'close');
    });
  }
}

export interface ShutdownLimits {
  /** Readiness false this long before the listener closes. */
  readonly drainDelayMs: number;
  /** From the start of the shutdown until whatever is left is cut. */
  readonly shutdownTimeoutMs: number;
}

export interface ShutdownReport {
  /** Requests still unanswered at the deadline, their connections cut. */
  readonly requestsCut: number;
  /** Jobs not finished, or whose callback was not delivered, by the deadline; each reported failed to its callback and in a log line. */
  readonly jobsLost: number;
}

function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/**
 * A graceful stop: readiness turns false (503 with Retry-After), a short
 * drain, then the listener closes; requests and jobs in flight get until
 * --shutdown-timeout, counted from the start, then are cut and reported.
 * Node stops enforcing --request-timeout once its server closes; the
 * deadline here takes its place, so that a client dripping its body cannot
 * hold the process.
 */
export async function shutDown(app: FastifyInstance, state: AppState, inFlight: InFlight, limits: ShutdownLimits): Promise<ShutdownReport> {
  state.shuttingDown = true;
  inFlight.closing = true;
  const deadline = AbortSignal.timeout(limits.shutdownTimeoutMs);
  await delay(Math.min(limits.drainDelayMs, limits.shutdownTimeoutMs), undefined, { signal: deadline }).catch(() => {});
  const closed = app.close();
  const [jobsLost, allClosed] = await Promise.all([
    inFlight.jobs?.drain(deadline) ?? 0,
    Promise.race([closed.then(() => true), whenAborted(deadline).then(() => false)]),
  ]);
  // Once the server has closed every connection, nothing is left to cut, whatever the count of answers still says.
  const requestsCut = allClosed ? 0 : inFlight.requests;
  if (requestsCut > 0) inFlight.log(`${requestsCut} request(s) still unanswered at --shutdown-timeout ${limits.shutdownTimeoutMs} ms: their connections are cut`);
  // Idle ones too: nothing may hold the process past the deadline.
  if (!allClosed) app.server.closeAllConnections();
  await closed;
  return { requestsCut, jobsLost };
}
