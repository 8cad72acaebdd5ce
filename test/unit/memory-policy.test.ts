/**
 * BurstTrim (src/engine/memory.ts), the burst detector of compactMemory's malloc_trim: it trims
 * once after a burst has gone quiet, never while the activity keeps moving, and not again
 * until something happens. Driven check by check, without its timer. And the malloc policy of
 * prefork children: one arena unless the user chose, the trim threshold that goes with it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { BurstTrim, compactChildEnv, compactTrimThreshold, fullCollection, ONE_ARENA_TRIM_THRESHOLD } from '../../src/engine/memory.js';

function detector(quietChecks = 2): { b: BurstTrim; step: (n: number) => void; trims: () => number } {
  let activity = 0, trims = 0;
  const b = new BurstTrim(() => activity, () => trims++, quietChecks);
  return { b, step: (n) => (activity += n), trims: () => trims };
}

describe('BurstTrim', () => {
  test('the start of the process counts as a burst: one trim after quietChecks quiet checks', () => {
    const { b, trims } = detector(2);
    assert.equal(b.check(), false);
    assert.equal(trims(), 0);
    assert.equal(b.check(), true);
    assert.equal(trims(), 1);
    for (let i = 0; i < 10; i++) assert.equal(b.check(), false);
    assert.equal(trims(), 1);
  });

  test('under load (the activity moves at every check) it never trims', () => {
    const { b, step, trims } = detector(2);
    b.check();
    b.check(); // the start's trim
    for (let i = 0; i < 1000; i++) {
      step(1 + (i % 7));
      assert.equal(b.check(), false);
    }
    assert.equal(trims(), 1);
  });

  test('a burst then quiet: exactly one trim, quietChecks checks after the last activity', () => {
    const { b, step, trims } = detector(3);
    b.check();
    b.check();
    b.check(); // the start's trim
    assert.equal(trims(), 1);
    for (let i = 0; i < 20; i++) {
      step(100);
      b.check();
    }
    assert.equal(b.check(), false);
    assert.equal(b.check(), false);
    assert.equal(b.check(), true);
    assert.equal(trims(), 2);
    for (let i = 0; i < 10; i++) b.check();
    assert.equal(trims(), 2);
  });

  test('with a trickle: moves up to it are quiet, a larger one is a burst', () => {
    let activity = 0, trims = 0;
    const b = new BurstTrim(() => activity, () => trims++, 2, 10);
    b.check();
    b.check(); // the start's trim
    for (let i = 0; i < 50; i++) {
      activity += 10; // a heartbeat's trickle: never a burst
      b.check();
    }
    assert.equal(trims, 1);
    activity += 11;
    assert.equal(b.check(), false); // a burst
    activity += 3;
    assert.equal(b.check(), false); // quiet 1
    activity += 10;
    assert.equal(b.check(), true); // quiet 2: trim
    assert.equal(trims, 2);
  });

  test("the trim's own activity (its collections) is not a burst: an idle process trims once", () => {
    // The real trim runs two full collections: 10-30 ms of busy loop, above the trickle.
    let activity = 0, trims = 0;
    const b = new BurstTrim(() => activity, () => {
      trims++;
      activity += 25;
    }, 2, 10);
    b.check();
    assert.equal(b.check(), true); // the start's trim
    for (let i = 0; i < 100; i++) assert.equal(b.check(), false);
    assert.equal(trims, 1);
    activity += 50; // a real burst still counts
    b.check();
    b.check();
    assert.equal(b.check(), true);
    assert.equal(trims, 2);
  });

  test('settled after a trim; a check that spans several intervals scales the trickles with them', () => {
    let activity = 0, open = 0, trims = 0;
    const b = new BurstTrim(() => activity, () => trims++, 2, 10, { read: () => open, trickle: 16 });
    assert.equal(b.settled, false, 'the start counts as a burst');
    b.check();
    assert.equal(b.check(), true);
    assert.equal(b.settled, true);
    activity += 90; // a trickle of 9 per interval over a 10-interval look: quiet
    open += 150;
    assert.equal(b.check(10), false);
    assert.equal(b.settled, true);
    activity += 101; // more than 10 per interval: a burst
    assert.equal(b.check(10), false);
    assert.equal(b.settled, false);
    b.check();
    assert.equal(b.check(), true);
    activity += 10;
    open += 161; // the level moved more than 16 per interval
    b.check(10);
    assert.equal(b.settled, false);
    assert.equal(trims, 2);
  });

  test('activity inside the quiet spell starts the count again', () => {
    const { b, step, trims } = detector(2);
    b.check();
    b.check(); // the start's trim
    step(1);
    b.check(); // busy
    b.check(); // quiet 1
    step(1);
    assert.equal(b.check(), false); // busy again
    assert.equal(b.check(), false); // quiet 1
    assert.equal(b.check(), true); // quiet 2: trim
    assert.equal(trims(), 2);
  });
});

describe('BurstTrim with a level (open connections)', () => {
  function leveled(quietChecks = 2, trickle = 16): { b: BurstTrim; conns: (n: number) => void; idle: (ms: number) => void; trims: () => number } {
    let activity = 0, open = 0, trims = 0;
    const b = new BurstTrim(() => activity, () => trims++, quietChecks, 10, { read: () => open, trickle });
    return { b, conns: (n) => (open += n), idle: (ms) => (activity += ms), trims: () => trims };
  }

  test('a ramp that keeps the loop nearly idle is still a burst: no trim until the count holds still', () => {
    const { b, conns, idle, trims } = leveled(3);
    b.check();
    b.check();
    b.check(); // the start's trim
    assert.equal(trims(), 1);
    // 53 processes on 2 cores: each one's loop busy ~1 % (5 ms of a 500 ms check), 270 accepts a check.
    for (let i = 0; i < 100; i++) {
      idle(5);
      conns(270);
      assert.equal(b.check(), false, `check ${i} of the ramp`);
    }
    assert.equal(trims(), 1);
    idle(5);
    assert.equal(b.check(), false); // quiet 1
    idle(5);
    assert.equal(b.check(), false); // quiet 2
    idle(5);
    assert.equal(b.check(), true); // quiet 3: the ramp's one trim
    assert.equal(trims(), 2);
  });

  test('a trickle of reconnects (up to the trickle either way) is quiet; a mass disconnect is a burst', () => {
    const { b, conns, trims } = leveled(2, 16);
    b.check();
    b.check(); // the start's trim
    for (let i = 0; i < 20; i++) {
      conns(i % 2 === 0 ? 16 : -16);
      assert.equal(b.check(), false);
    }
    assert.equal(trims(), 1);
    conns(-17);
    assert.equal(b.check(), false); // a burst (closing)
    assert.equal(b.check(), false); // quiet 1
    assert.equal(b.check(), true); // quiet 2: trim
    assert.equal(trims(), 2);
  });

  test('the busy share still counts on its own: a busy loop with a steady count is no quiet check', () => {
    const { b, idle, trims } = leveled(2);
    b.check();
    b.check(); // the start's trim
    for (let i = 0; i < 10; i++) {
      idle(11);
      assert.equal(b.check(), false);
    }
    assert.equal(trims(), 1);
  });
});

describe('fullCollection', () => {
  test('gives V8\'s full collection without --expose-gc, and leaves no gc in contexts made later', () => {
    assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'the test runs without --expose-gc');
    const gc = fullCollection();
    assert.equal(typeof gc, 'function');
    // It collects: an object only a weak reference holds is gone after it.
    let weak: WeakRef<object>;
    (() => { weak = new WeakRef({ big: new Array(1000).fill(1) }); })();
    // A WeakRef's target survives until the end of the current job: look after a turn.
    return new Promise<void>((resolve) => setImmediate(() => {
      gc!();
      assert.equal(weak.deref(), undefined);
      assert.equal(fullCollection(), gc, 'made once');
      assert.equal(runInNewContext('typeof gc'), 'undefined');
      resolve();
    }));
  });
});

describe('compactChildEnv / compactTrimThreshold', () => {
  test('a child gets one malloc arena added to its GLIBC_TUNABLES, and the 4 MiB threshold with it', () => {
    const env = compactChildEnv({ PATH: '/bin' });
    assert.deepEqual(env, { PATH: '/bin', GLIBC_TUNABLES: 'glibc.malloc.arena_max=1' });
    assert.equal(compactTrimThreshold(env.GLIBC_TUNABLES), ONE_ARENA_TRIM_THRESHOLD);
    assert.equal(ONE_ARENA_TRIM_THRESHOLD, 4 << 20);
  });

  test('the user\'s other tunables are kept; their own arena_max wins, and then the threshold is 0', () => {
    const added = compactChildEnv({ GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' });
    assert.equal(added.GLIBC_TUNABLES, 'glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1');
    assert.equal(compactTrimThreshold(added.GLIBC_TUNABLES), ONE_ARENA_TRIM_THRESHOLD);
    for (const own of ['glibc.malloc.arena_max=4', 'glibc.malloc.tcache_count=0:glibc.malloc.arena_max=2']) {
      const env = { GLIBC_TUNABLES: own };
      assert.equal(compactChildEnv(env), env, own);
      assert.equal(compactTrimThreshold(own), 0, own);
    }
    // Without one arena (single mode, or no tunables) freed heap tops go back at once.
    assert.equal(compactTrimThreshold(''), 0);
    assert.equal(compactTrimThreshold('glibc.malloc.arena_max=10'), 0);
  });
});
