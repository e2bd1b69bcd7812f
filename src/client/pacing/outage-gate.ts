import { InterruptedError } from '../errors.js';

export interface OutageSettings {
  /** Outage failures in a row (no answer, 502, 503, 504) that close the gate. */
  readonly threshold: number;
  /** Wait before the first probe; doubled after each failed probe up to `maxProbeDelayMs`. */
  readonly firstProbeDelayMs: number;
  readonly maxProbeDelayMs: number;
  /** How long the server may stay down before the run gives up. */
  readonly maxOutageMs: number;
}

/** What the gate tells the run about the server, for the user. */
export interface OutageEvents {
  onDown(failures: number, lastError: string): void;
  onUp(downForMs: number): void;
  onGiveUp(downForMs: number): void;
}

/**
 * When the whole server is down, every file would burn its retries in a few
 * seconds and the whole run would end in the failure log. Instead the run
 * backs off as one: after a few outage failures in a row the gate closes,
 * attempts wait at it, one probe goes through now and then (with a doubling
 * delay), and the first answer opens it for everyone.
 */
export class OutageGate {
  readonly #settings: OutageSettings;
  readonly #events: OutageEvents;
  #inARow = 0;
  #downSince: number | undefined;
  #probeDelayMs: number;
  #probeDue = false;
  #timer: NodeJS.Timeout | undefined;
  #waiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  #closedWith: Error | undefined;

  constructor(settings: OutageSettings, events: OutageEvents) {
    this.#settings = settings;
    this.#events = events;
    this.#probeDelayMs = settings.firstProbeDelayMs;
  }

  /** Whether the server is taken to be down: attempts wait, and their outage failures are not the file's fault. */
  get down(): boolean {
    return this.#downSince !== undefined;
  }

  /**
   * Before an attempt: at once while the server is up; while it is down,
   * when this attempt is the next probe or the server is back. Rejects once
   * the run gave up on the server or was stopped (see close()).
   */
  admit(): Promise<void> | undefined {
    if (this.#closedWith !== undefined) return Promise.reject(this.#closedWith);
    if (this.#downSince === undefined) return undefined;
    if (this.#probeDue) {
      this.#probeDue = false;
      return undefined;
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** The server answered (any status but 502, 503, 504): it is there. */
  answered(): void {
    this.#inARow = 0;
    if (this.#downSince === undefined) return;
    const downFor = performance.now() - this.#downSince;
    this.#downSince = undefined;
    this.#probeDelayMs = this.#settings.firstProbeDelayMs;
    this.#probeDue = false;
    clearTimeout(this.#timer);
    for (const waiter of this.#waiters.splice(0)) waiter.resolve();
    this.#events.onUp(downFor);
  }

  /** An attempt got no answer, or 502/503/504. */
  failedToReach(message: string): void {
    this.#inARow++;
    if (this.#downSince !== undefined) {
      // A probe failed (or an attempt that was already in flight): the next probe waits longer.
      if (this.#timer === undefined && !this.#probeDue) this.#scheduleProbe();
      return;
    }
    if (this.#inARow < this.#settings.threshold) return;
    this.#downSince = performance.now();
    this.#events.onDown(this.#inARow, message);
    this.#scheduleProbe();
  }

  /** Ends every wait with `error` (the run stops); later admits reject at once. */
  close(error: Error = new InterruptedError(false)): void {
    this.#closedWith ??= error;
    clearTimeout(this.#timer);
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#closedWith);
  }

  #scheduleProbe(): void {
    const downFor = performance.now() - (this.#downSince ?? 0);
    if (downFor >= this.#settings.maxOutageMs) {
      this.#events.onGiveUp(downFor);
      return;
    }
    const delay = Math.min(this.#probeDelayMs, this.#settings.maxOutageMs - downFor);
    this.#probeDelayMs = Math.min(this.#probeDelayMs * 2, this.#settings.maxProbeDelayMs);
    this.#timer = setTimeout(this.#probe, delay);
  }

  readonly #probe = (): void => {
    this.#timer = undefined;
    const next = this.#waiters.shift();
    // With nobody waiting (all in their backoff), the next attempt to come is the probe.
    if (next === undefined) this.#probeDue = true;
    else next.resolve();
  };
}
