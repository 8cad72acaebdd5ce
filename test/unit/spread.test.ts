/**
 * `spreadOver` (src/core/spread.ts), which paces a graceful shutdown's closes: every step runs
 * once and in order, the share due by each tick runs at that tick (a late tick catches up), all
 * have run once the span has passed, and a step that throws stops neither the others nor the
 * settling. Timers are node:test's mock timers and the clock a variable: nothing here waits.
 */
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { spreadOver, SPREAD_TICK_MS } from '../../src/core/spread.js';

/** Run `fn` with mocked intervals and a clock that moves only with `advance`. */
async function withClock(fn: (advance: (ms: number) => void, now: () => number) => Promise<void>): Promise<void> {
  mock.timers.enable({ apis: ['setInterval'] });
  let t = 1000;
  try {
    await fn((ms) => {
      t += ms;
      mock.timers.tick(ms);
    }, () => t);
  } finally {
    mock.timers.reset();
  }
}

test('spreadOver runs each step once, in order, the share of the elapsed time at each tick', async () => {
  await withClock(async (advance, now) => {
    const ran: number[] = [];
    const done = spreadOver(100, 1000, (i) => ran.push(i), undefined, now);
    assert.equal(ran.length, 0, 'nothing before the first tick');
    advance(SPREAD_TICK_MS);
    assert.equal(ran.length, 5, '50 of 1000 ms: 5 of 100');
    advance(SPREAD_TICK_MS);
    assert.equal(ran.length, 10);
    advance(400); // one late tick: catches up to 500 ms in one go
    assert.equal(ran.length, 50);
    advance(500);
    assert.equal(ran.length, 100, 'all once the span has passed');
    await done;
    assert.deepEqual(ran, Array.from({ length: 100 }, (_, i) => i));
  });
});

test('spreadOver rounds the share up (a few items over a long span start at the first tick)', async () => {
  await withClock(async (advance, now) => {
    const ran: number[] = [];
    const done = spreadOver(3, 3000, (i) => ran.push(i), undefined, now);
    advance(SPREAD_TICK_MS);
    assert.deepEqual(ran, [0]);
    advance(1000 - SPREAD_TICK_MS);
    assert.deepEqual(ran, [0]);
    advance(SPREAD_TICK_MS);
    assert.deepEqual(ran, [0, 1]);
    advance(2000);
    assert.deepEqual(ran, [0, 1, 2]);
    await done;
  });
});

test('spreadOver with no span or nothing to do runs everything at once', async () => {
  const ran: number[] = [];
  const p = spreadOver(4, 0, (i) => ran.push(i));
  assert.deepEqual(ran, [0, 1, 2, 3], 'synchronously');
  await p;
  let called = false;
  await spreadOver(0, 5000, () => (called = true));
  assert.equal(called, false);
});

test('a step that throws: the others still run, then the promise rejects with the first error', async () => {
  await withClock(async (advance, now) => {
    const ran: number[] = [];
    const done = spreadOver(6, 100, (i) => {
      ran.push(i);
      if (i === 1 || i === 4) throw new Error(`step ${i}`);
    }, undefined, now);
    const settled = done.then(() => 'resolved', (e: Error) => e.message);
    advance(SPREAD_TICK_MS);
    advance(SPREAD_TICK_MS);
    assert.deepEqual(ran, [0, 1, 2, 3, 4, 5]);
    assert.equal(await settled, 'step 1');
  });
  await assert.rejects(spreadOver(2, 0, () => {
    throw new Error('at once');
  }), /at once/);
});

test('spreadOver stops early once there is nothing left to do', async () => {
  await withClock(async (advance, now) => {
    const ran: number[] = [];
    let left = true;
    const done = spreadOver(10, 1000, (i) => ran.push(i), () => !left, now);
    advance(SPREAD_TICK_MS);
    assert.deepEqual(ran, [0]);
    left = false;
    advance(SPREAD_TICK_MS);
    await done; // resolved at that tick, not after the whole span
    assert.deepEqual(ran, [0], 'the steps still due are skipped');
  });
});
