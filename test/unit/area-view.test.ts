/**
 * areaView / areaOf: the Buffers a backend hands to onData are ordinary Buffers over their
 * range, and `areaOf` is `buffer` for them and for any other bytes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { areaOf, areaView } from '../../src/core/area-view.js';

test('an area view is an ordinary Buffer over its range', () => {
  const area = new ArrayBuffer(64);
  new Uint8Array(area).set([1, 2, 3, 4, 5, 6], 8);
  const v = areaView(area, 9, 4);
  assert.equal(Object.getPrototypeOf(v), Buffer.prototype);
  assert.equal(v.buffer, area);
  assert.equal(v.byteOffset, 9);
  assert.deepEqual(v, Buffer.from([2, 3, 4, 5]));
  assert.deepEqual(v, Buffer.from(area).subarray(9, 13));
  v[0] = 9;
  assert.equal(new Uint8Array(area)[9], 9);
});

test('areaOf is the ArrayBuffer under any bytes, the last view or not', () => {
  const a = new ArrayBuffer(16);
  const b = new ArrayBuffer(16);
  const va = areaView(a, 4, 4);
  const vb = areaView(b, 0, 16);
  assert.equal(areaOf(vb), b);
  assert.equal(areaOf(va), a);
  assert.equal(areaOf(vb.subarray(1)), b);
  const buf = Buffer.from([1, 2, 3]);
  assert.equal(areaOf(buf), buf.buffer);
  const u = new Uint8Array(8);
  assert.equal(areaOf(u), u.buffer);
});
