/**
 * The rate limit of clients' WebSocket publishes (pub-rate.ts), with the clock given: a burst
 * up to the rate, then one publish per refill interval, a bucket per connection that published
 * (and none after it closed), a rate given per call (a token's `publish_rate` claim) and
 * changing between calls, no limit at 0, and refused parameters. A user's bucket: apart from
 * connections' (a number and a string key never share one), kept after its connections close
 * until it has refilled, then dropped by the sweep (at most every 10 s).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PublishRate } from '../../src/apps/gateway/pub-rate.js';

const taken = (r: PublishRate, id: number, now: number, n: number, rate?: number): number => {
  let ok = 0;
  for (let i = 0; i < n; i++) if (r.take(id, now, rate)) ok++;
  return ok;
};

test('a connection may publish a burst of its rate, then at the rate; connections are counted apart', () => {
  const r = new PublishRate(4); // 4 at once, then one per 250 ms
  assert.equal(taken(r, 1, 1000, 6), 4, 'the burst');
  assert.equal(taken(r, 1, 1125, 1), 0, 'half a refill later: none');
  assert.equal(taken(r, 1, 1250, 2), 1, 'one refill later: one');
  assert.equal(taken(r, 1, 2000, 5), 3, '750 ms later: three');
  assert.equal(taken(r, 1, 10_000, 9), 4, 'a long pause refills to the burst only');
  assert.equal(taken(r, 2, 1250, 5), 4, 'another connection has its own bucket');
  assert.equal(r.size, 2);
  r.forget(1);
  r.forget(1);
  assert.equal(r.size, 1, 'a closed connection leaves no bucket');
  assert.equal(taken(r, 1, 10_000, 5), 4, 'a new connection with that id starts full');
});

test('a clock that steps back takes nothing back', () => {
  const r = new PublishRate(1);
  assert.equal(r.take(7, 5000), true);
  assert.equal(r.take(7, 4000), false);
  assert.equal(r.take(7, 6000), true, 'one second after the first');
});

test('a rate under 1 has a burst of 1', () => {
  const r = new PublishRate(0.5);
  assert.equal(r.take(1, 0), true);
  assert.equal(r.take(1, 1000), false, 'half a token');
  assert.equal(r.take(1, 2000), true);
});

test('a rate per call overrides the default; 0 is no limit and keeps no bucket; a lower rate caps what was saved', () => {
  const r = new PublishRate(100);
  assert.equal(taken(r, 1, 0, 3, 2), 2, 'a claim of 2 a second');
  assert.equal(taken(r, 1, 500, 1, 2), 1, 'refilled at 2 a second');
  assert.equal(taken(r, 2, 0, 1000, 0), 1000, 'no limit');
  assert.equal(r.size, 1, 'no bucket for an unlimited connection');
  assert.equal(taken(r, 3, 0, 1, 10), 1, '9 left at 10 a second');
  assert.equal(taken(r, 3, 0, 5, 2), 2, 'the rate fell to 2: at most 2 now');
  const none = new PublishRate(0);
  assert.equal(taken(none, 1, 0, 500), 500, 'a default of 0: no limit');
  assert.equal(taken(none, 1, 0, 5, 1), 1, 'but a claim still limits');
});

test('a negative or non-finite default is refused', () => {
  for (const rate of [-1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => new PublishRate(rate), RangeError, String(rate));
});

test('a user\'s bucket is apart from connections\', outlives them until it has refilled, then the sweep drops it', () => {
  const r = new PublishRate(2); // a burst of 2, then one per 500 ms
  assert.equal(taken(r, 5, 20_000, 1), 1, 'connection 5');
  assert.equal(r.take('alice', 20_000), true);
  assert.equal(r.take('alice', 20_000), true);
  assert.equal(r.take('alice', 20_100), false, 'the user\'s burst is spent');
  assert.equal(r.take('5', 20_100), true, 'the string "5" is a user, not connection 5');
  r.forget(5);
  assert.equal(r.take('alice', 20_100), false, 'forgetting a connection does not refill its user');
  assert.equal(r.size, 2, 'alice and "5"');
  assert.equal(r.take('bob', 31_000), true, 'a user\'s publish 11 s later runs the sweep first');
  assert.equal(r.size, 1, 'alice and "5" had refilled: dropped; bob is new');
  assert.equal(r.take('carol', 31_000, 0.01), true);
  assert.equal(r.take('carol', 42_000, 0.01), false, '11 s refill only 0.11 of a publish');
  assert.equal(r.size, 1, 'the next sweep dropped bob (full) and kept carol (not full)');
  assert.equal(r.take('carol', 42_000, 0.01), false, 'carol is still empty');
  assert.equal(r.take('dave', 42_000), true);
  r.forget(9, 50_000);
  assert.equal(r.size, 2, 'a close before the next sweep is due drops nothing');
  r.forget(9, 53_000);
  assert.equal(r.size, 1, 'a close once it is due sweeps: dave had refilled, carol not');
});

test('shared rates: takeSpent hands over each user\'s publishes once; charge takes another gateway\'s off the bucket', async () => {
  const { parseRateShare } = await import('../../src/apps/gateway/rate-share.js');
  const here = new PublishRate(4);
  assert.equal(here.takeSpent().size, 0, 'nothing counted before shareSpent');
  here.shareSpent();
  for (let i = 0; i < 3; i++) here.take('alice', 1000);
  here.take('bob', 1000, 2);
  here.take(7, 1000); // a connection's bucket (open gateway): not shared
  assert.deepEqual([...here.takeSpent()], [['alice', [3, 4]], ['bob', [1, 2]]], 'each with the rate it was taken at');
  assert.equal(here.takeSpent().size, 0, 'handed over once');
  assert.equal(here.rateOf('bob'), 2);
  assert.equal(here.rateOf('nobody'), undefined);

  const there = new PublishRate(4);
  there.charge('alice', 3, 4, 1000); // a new bucket at the rate it was taken at: 4 - 3
  assert.equal(there.take('alice', 1000), true);
  assert.equal(there.take('alice', 1000), false, 'one left after the charge');
  there.charge('alice', 100, 4, 1000); // more than one share can carry: a burst and 2 s of refill (12)
  assert.equal(there.take('alice', 1000 + 3000), false, '-12 + 3 s x 4 = 0');
  assert.equal(there.take('alice', 1000 + 3250), true, 'one refill more: one');
  there.charge('carol', 1, 0.05, 5000); // a token's slow publish_rate: burst 1, all spent elsewhere
  assert.equal(there.take('carol', 5000, 0.05), false);
  assert.equal(there.take('carol', 5000 + 20_000, 0.05), true, 'one refill (20 s) later');
  there.charge('dave', 1, 0, 5000);
  assert.equal(there.rateOf('dave'), undefined, 'no limit elsewhere: nothing kept');

  const share = (o: unknown): ReturnType<typeof parseRateShare> => parseRateShare(Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)));
  assert.deepEqual(share({ from: 'g1', spent: { alice: [3, 4], bob: [1, 0.5] } }), { from: 'g1', spent: [['alice', 3, 4], ['bob', 1, 0.5]] });
  for (const bad of ['not json', '[]', { spent: {} }, { from: 'g', spent: [] }, { from: 'g', spent: { a: 3 } }, { from: 'g', spent: { a: [0, 4] } },
    { from: 'g', spent: { a: [1.5, 4] } }, { from: 'g', spent: { a: [1, 0] } }, { from: 'g', spent: { a: [1, 'x'] } }, { from: 'g', spent: { '': [1, 1] } },
    { from: 'g', spent: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`u${i}`, [1, 1]])) },
    { from: 'g', spent: { a: [1, 5e-324] } }, { from: 'g', spent: { ['x'.repeat(257)]: [1, 1] } }, { from: 'g', spent: { a: [1, 1] }, pad: 'x'.repeat(600_000) }]) {
    assert.equal(share(bad), null, JSON.stringify(bad).slice(0, 60));
  }
});
