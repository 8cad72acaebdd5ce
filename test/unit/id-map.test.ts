/**
 * IdMap (src/core/id-map.ts): the same answers as a Map under random operations on native-style
 * ids (gen * 2^32 + fd, many ids sharing an fd, collisions and wrap-around in small tables),
 * and set/delete churn that never grows the table past what the peak entry count needs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IdMap } from '../../src/core/id-map.js';

const TWO32 = 2 ** 32;

/** A small deterministic PRNG (xorshift32), so a failure replays. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

describe('IdMap', () => {
  for (const seed of [1, 7, 42, 1234567]) {
    test(`agrees with a Map over 50,000 random operations (seed ${seed})`, () => {
      const r = rng(seed);
      const m = new IdMap<number>(), ref = new Map<number, number>();
      // Few fds and few generations: many ids collide on their low 32 bits.
      const id = (): number => Math.floor(r() * 8) * TWO32 + Math.floor(r() * 300);
      for (let i = 0; i < 50_000; i++) {
        const k = id(), op = r();
        if (op < 0.45) {
          assert.equal(m.set(k, i), m);
          ref.set(k, i);
        } else if (op < 0.9) {
          assert.equal(m.delete(k), ref.delete(k), `delete ${k} at op ${i}`);
        } else {
          assert.equal(m.has(k), ref.has(k));
        }
        assert.equal(m.get(k), ref.get(k), `get ${k} at op ${i}`);
        assert.equal(m.size, ref.size);
      }
      for (const [k, v] of ref) assert.equal(m.get(k), v);
      const listed = [...m.entries()];
      assert.equal(listed.length, ref.size, 'entries() lists each entry once');
      for (const [k, v] of listed) assert.equal(ref.get(k), v);
      for (const k of [...ref.keys()]) assert.ok(m.delete(k));
      assert.equal(m.size, 0);
      assert.deepEqual([...m.entries()], []);
      for (const k of ref.keys()) assert.equal(m.get(k), undefined);
    });
  }

  test('ids 0 and above 2^32 are keys like any other; a missing id is undefined, and its delete false', () => {
    const m = new IdMap<string>();
    m.set(0, 'zero').set(TWO32, 'gen 1 fd 0').set(2 ** 53 - 1, 'max');
    assert.equal(m.get(0), 'zero');
    assert.equal(m.get(TWO32), 'gen 1 fd 0');
    assert.equal(m.get(2 ** 53 - 1), 'max');
    assert.equal(m.get(2 * TWO32), undefined);
    assert.equal(m.delete(5), false);
    assert.equal(m.size, 3);
  });

  test('set/delete churn (one entry at a time, ever-new ids) keeps the table at its minimum', () => {
    const m = new IdMap<object>();
    const start = m.capacity;
    for (let i = 0; i < 100_000; i++) {
      const k = (i % 7) * TWO32 + (i % 20_000);
      m.set(k, {});
      m.set(k + 1, {});
      assert.ok(m.delete(k));
      assert.ok(m.delete(k + 1));
    }
    assert.equal(m.size, 0);
    assert.equal(m.capacity, start);
  });

  test('the table follows the peak entry count: load at most 1/2', () => {
    const m = new IdMap<number>();
    for (let fd = 0; fd < 1000; fd++) m.set(TWO32 + fd, fd);
    assert.ok(m.capacity >= 2000 && m.capacity <= 4096, `capacity ${m.capacity}`);
    for (let fd = 0; fd < 1000; fd++) assert.equal(m.get(TWO32 + fd), fd);
  });
});
