import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { Progress } from '../../src/client/index.js';
import { createProgressView, fitBarLine, RateMeter } from '../../src/cli/progress.js';
import { doneOfTotal } from '../../src/cli/report.js';

function progressOf(changes: Partial<Progress> = {}): Progress {
  return {
    discovered: 0, bytesDiscovered: 0, discoveryDone: false, expected: 0, expectedKnown: false, ok: 0, failed: 0, skipped: 0,
    bytesSent: 0, inFlight: 0, retries: 0, throttled: 0, serverDown: false, concurrency: 8, otherShards: 0, ...changes,
  };
}

/** A terminal `columns` wide that keeps what is written to it. */
function terminal(columns: number): { stream: NodeJS.WriteStream; text: () => string } {
  const written: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      written.push(chunk.toString());
      callback();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: true, columns });
  return { stream, text: () => written.join('') };
}

/** What the terminal shows as separate runs of text: split at cursor moves, clears and line ends. */
function fragments(output: string): string[] {
  return output.split(/\x1b\[[0-9;?]*[A-Za-z]|\r|\n/).filter((part) => part !== '');
}

const HINT = 'imgpush: failed photos/2024/IMG_0001.jpg: nothing is listening on 127.0.0.1:8001 (connection refused) — is the server running? (4 attempts)';

for (const columns of [60, 80, 120]) {
  test(`at ${columns} columns, a line above the bar is written whole (line wrap stays on) and the bar's line fits, "server not answering: paused" in full`, async () => {
    const screen = terminal(columns);
    const view = await createProgressView('bar', screen.stream);
    view.watch(progressOf({ discovered: 812, expected: 8000, expectedKnown: true, ok: 400, failed: 12, inFlight: 8, throttled: 31, serverDown: true }));
    view.note(HINT);
    view.stop();
    const output = screen.text();
    assert.doesNotMatch(output, /\x1b\[\?7l/, 'line wrap is never turned off');
    assert.ok(fragments(output).includes(HINT), 'the hint is written whole, for the terminal to wrap');
    const barLines = fragments(output).filter((part) => part.includes('/8000'));
    assert.ok(barLines.length > 0);
    for (const line of barLines) {
      assert.ok(line.length < columns, `${line.length} columns: ${line}`);
      assert.match(line, /412\/8000 \| server not answering: paused \| ETA /);
    }
  });
}

test('fitting the bar\'s line drops whole parts, least needed first, and never cuts a word', () => {
  const parts = [{ text: '10/100', rank: 0 }, { text: 'ETA 5s', rank: 2 }, { text: '9 ok 1 failed', rank: 3 }, { text: '8/8 in flight', rank: 6 }];
  assert.equal(fitBarLine(0.5, parts, 120), `${'\u2588'.repeat(15)}${'\u2591'.repeat(15)} 10/100 | ETA 5s | 9 ok 1 failed | 8/8 in flight`);
  assert.equal(fitBarLine(0.5, parts, 46), `${'\u2588'.repeat(7)}${'\u2591'.repeat(6)} 10/100 | ETA 5s | 9 ok 1 failed`);
  assert.equal(fitBarLine(0, parts, 30), `${'\u2591'.repeat(13)} 10/100 | ETA 5s`);
  assert.equal(fitBarLine(0, parts, 20), '10/100 | ETA 5s', 'no room for a bar: the words stay');
});

test('before anything is found the bar is drawn empty, not full', async () => {
  const screen = terminal(80);
  const view = await createProgressView('bar', screen.stream);
  view.watch(progressOf());
  view.stop();
  assert.doesNotMatch(screen.text(), /\u2588/);
  assert.match(screen.text(), /0\/0\+/);
});

test('once the count ahead is complete the total has no + while discovery still walks', () => {
  assert.equal(doneOfTotal(progressOf({ discovered: 300, expected: 8000, ok: 20 })), '20/8000+');
  assert.equal(doneOfTotal(progressOf({ discovered: 300, expected: 8000, expectedKnown: true, ok: 20 })), '20/8000');
  assert.equal(doneOfTotal(progressOf({ discovered: 7990, discoveryDone: true, expected: 8000, expectedKnown: true, ok: 20 })), '20/7990');
});

test('files/s and MB/s are a moving average of uploads over the last seconds: a stall shows, skipped files do not count, the ETA is finite', () => {
  const meter = new RateMeter(5_000);
  const progress = progressOf({ discovered: 500, expected: 8000, expectedKnown: true });
  meter.sample(progress, 0);
  Object.assign(progress, { ok: 100, bytesSent: 100e6, skipped: 900 });
  const moving = meter.sample(progress, 1_000);
  assert.equal(moving.filesPerSecond, 100);
  assert.equal(moving.megabytesPerSecond, 100);
  assert.equal(moving.etaSeconds, (8000 - 1000) / 100);
  const stalled = meter.sample(progress, 7_000);
  assert.equal(stalled.filesPerSecond, 0);
  assert.equal(stalled.etaSeconds, Number.POSITIVE_INFINITY);
});

test('without a terminal, progress is a plain line on its interval with no escape codes', async () => {
  const { stream, text } = terminal(80);
  Object.assign(stream, { isTTY: false });
  const view = await createProgressView('lines', stream, 10);
  view.watch(progressOf({ discovered: 12, bytesDiscovered: 96, discoveryDone: true, ok: 3, bytesSent: 24, inFlight: 1, concurrency: 1 }));
  while (text() === '') await new Promise((resolve) => setTimeout(resolve, 5));
  view.stop();
  assert.match(text(), /^imgpush: 3\/12 files \(3 ok, 0 failed, 0 skipped\), [\d.]+ files\/s, [\d.]+ MB\/s, 1\/1 in flight/);
  assert.doesNotMatch(text(), /\x1b/);
});
