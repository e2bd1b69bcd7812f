import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InterruptedError } from '../../src/client/errors.js';
import { OutageGate, type OutageEvents } from '../../src/client/pacing/outage-gate.js';

function recorder(): OutageEvents & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    onDown: (failures) => log.push(`down after ${failures}`),
    onUp: () => log.push('up'),
    onGiveUp: () => log.push('give up'),
  };
}

const settings = { threshold: 3, firstProbeDelayMs: 1, maxProbeDelayMs: 4, maxOutageMs: 60_000 };

test('the gate stays open through scattered failures and closes after a run of them', () => {
  const events = recorder();
  const gate = new OutageGate(settings, events);
  gate.failedToReach('refused');
  gate.failedToReach('refused');
  gate.answered();
  gate.failedToReach('refused');
  gate.failedToReach('refused');
  assert.equal(gate.down, false);
  assert.equal(gate.admit(), undefined, 'open: an attempt goes at once');
  gate.failedToReach('refused');
  assert.equal(gate.down, true);
  assert.deepEqual(events.log, ['down after 3']);
  gate.close();
});

test('while down, attempts wait; a probe goes through; the first answer lets everyone through', async () => {
  const events = recorder();
  const gate = new OutageGate(settings, events);
  for (let i = 0; i < 3; i++) gate.failedToReach('refused');
  const released: number[] = [];
  const waits = [0, 1, 2].map((i) => (gate.admit() as Promise<void>).then(() => released.push(i)));
  await waits[0]; // the probe, after the first probe delay
  assert.deepEqual(released, [0], 'one probe at a time');
  gate.failedToReach('still refused');
  await waits[1]; // the next probe, after a longer delay
  assert.deepEqual(released, [0, 1]);
  gate.answered();
  await waits[2];
  assert.deepEqual(released, [0, 1, 2]);
  assert.equal(gate.down, false);
  assert.deepEqual(events.log, ['down after 3', 'up']);
});

test('a server down for longer than maxOutage makes the run give up; close() ends every wait', async () => {
  const events = recorder();
  const gate = new OutageGate({ ...settings, maxOutageMs: 0 }, events);
  for (let i = 0; i < 3; i++) gate.failedToReach('refused');
  assert.deepEqual(events.log, ['down after 3', 'give up']);
  const waiting = gate.admit() as Promise<void>;
  gate.close(new InterruptedError(false, 'the server did not answer'));
  await assert.rejects(waiting, /not sent: the server did not answer/);
  await assert.rejects(gate.admit() as Promise<void>, InterruptedError);
});
