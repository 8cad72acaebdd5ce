/**
 * The per-connection rate limit of clients' WebSocket publishes (pub-rate.ts), with the clock
 * given: a burst up to its size, then one publish per refill interval, a bucket per connection
 * that published (and none after it closed), and refused parameters.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PublishRate } from '../../src/apps/gateway/pub-rate.js';

test('a connection may publish a burst, then at the rate; connections are counted apart', () => {
  const r = new PublishRate(10, 3); // 3 at once, then one per 100 ms
  const taken = (id: number, now: number, n: number): number => {
    let ok = 0;
    for (let i = 0; i < n; i++) if (r.take(id, now)) ok++;
    return ok;
  };
  assert.equal(taken(1, 1000, 5), 3, 'the burst');
  assert.equal(taken(1, 1050, 1), 0, 'half a refill later: none');
  assert.equal(taken(1, 1100, 2), 1, 'one refill later: one');
  assert.equal(taken(1, 1400, 5), 3, '300 ms later: three, never more than the burst');
  assert.equal(taken(1, 10_000, 5), 3, 'a long pause refills to the burst only');
  assert.equal(taken(2, 1100, 4), 3, 'another connection has its own bucket');
  assert.equal(r.size, 2);
  r.forget(1);
  r.forget(1);
  assert.equal(r.size, 1, 'a closed connection leaves no bucket');
  assert.equal(taken(1, 10_000, 4), 3, 'a new connection with that id starts full');
});

test('a clock that steps back takes nothing back', () => {
  const r = new PublishRate(1, 1);
  assert.equal(r.take(7, 5000), true);
  assert.equal(r.take(7, 4000), false);
  assert.equal(r.take(7, 6000), true, 'one second after the first');
});

test('burst defaults to the rate (at least 1); non-positive parameters are refused', () => {
  const r = new PublishRate(0.5);
  assert.equal(r.take(1, 0), true);
  assert.equal(r.take(1, 1000), false, 'half a token');
  assert.equal(r.take(1, 2000), true);
  for (const [rate, burst] of [[0, 1], [-1, 1], [Number.NaN, 1], [5, 0.5]] as const) {
    assert.throws(() => new PublishRate(rate, burst), RangeError);
  }
});
