/**
 * `c1m bench million --client-warmup N`: the plan of connections and rounds per client process
 * (the run itself is checked end to end in test/integration/bench-million*.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { warmPlan } from '../../src/cli/bench-million-warm.js';

test('WebSocket: 20 subscribers per client process, one publish per 20 deliveries', () => {
  assert.deepEqual(warmPlan(2000, true, [19_231, 19_230]), { conns: 20, rounds: 100 });
  assert.deepEqual(warmPlan(2001, true, [500]), { conns: 20, rounds: 101 }, 'rounds up: at least N deliveries');
});

test('TCP: 200 connections per client process, echo rounds', () => {
  assert.deepEqual(warmPlan(2000, false, [19_231]), { conns: 200, rounds: 10 });
});

test('never more connections than the smallest share of the first step', () => {
  assert.deepEqual(warmPlan(2000, false, [150, 151]), { conns: 150, rounds: 14 });
  assert.deepEqual(warmPlan(100, true, [7, 8]), { conns: 7, rounds: 15 });
});

test('off: 0 deliveries, or a client process with no share of the first step', () => {
  assert.equal(warmPlan(0, true, [500]), null);
  assert.equal(warmPlan(2000, false, [300, 0]), null);
});
