/**
 * The gateway's index of open WebSockets by user (users.ts): one connection, then several, of
 * a user; filing again, or another handle of the same connection (same id), changes nothing; unfiling the last leaves no entry; unfiling what was
 * never filed, or under another user, is a no-op; `of` is a copy.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Users } from '../../src/apps/gateway/users.js';

test('a user\'s connections are filed and unfiled, one or many', () => {
  const u = new Users<{ id: number }>();
  const [a, b, c, d] = [{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }];
  assert.deepEqual(u.of('alice'), []);
  u.add('alice', a);
  u.add('alice', a);
  u.add('alice', { id: 1 }); // another handle of a's connection
  assert.deepEqual(u.of('alice'), [a], 'filed once');
  u.add('alice', b);
  u.add('alice', c);
  u.add('bob', d);
  assert.deepEqual(new Set(u.of('alice')), new Set([a, b, c]));
  assert.equal(u.size, 2);
  const copy = u.of('alice');
  u.add('alice', { id: 2 }); // b again, through another handle
  assert.equal(u.of('alice').length, 3);
  u.remove('alice', { id: 2 }); // unfiled through another handle
  assert.equal(copy.length, 3, 'of() is a copy');
  assert.deepEqual(new Set(u.of('alice')), new Set([a, c]));
  u.remove('alice', d); // not alice's
  u.remove('carol', a); // no such user
  assert.deepEqual(new Set(u.of('alice')), new Set([a, c]));
  u.remove('alice', a);
  assert.deepEqual(u.of('alice'), [c], 'back to one');
  u.add('alice', b);
  assert.deepEqual(new Set(u.of('alice')), new Set([b, c]));
  u.remove('alice', b);
  u.remove('alice', c);
  assert.deepEqual(u.of('alice'), []);
  assert.equal(u.size, 1, 'no entry left for alice');
  u.remove('bob', d);
  assert.equal(u.size, 0);
  u.remove('bob', d);
  assert.equal(u.size, 0);
});
