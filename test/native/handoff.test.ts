/**
 * The fd hand-off between reactors (native/src/handoff.c), driven through the addon: an
 * acceptor's listener gives each connection to one of its target reactors; a target whose
 * reactor is gone is skipped; retarget() replaces the targets.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { GUARD, HOST, waitFor } from '../helpers/net.js';
import { nativeAvailable } from '../helpers/backends.js';
import { RawReactor } from './raw-reactor.js';

/** Open n client sockets to port; resolves once each is connected. */
async function connectMany(port: number, n: number): Promise<net.Socket[]> {
  return Promise.all(Array.from({ length: n }, () => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(port, HOST, () => resolve(s));
    s.on('error', reject);
  })));
}

describe('native hand-off', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  test('connections go to live targets only: a target whose reactor is gone is skipped', GUARD, async () => {
    const acceptor = new RawReactor(), t1 = new RawReactor(), t2 = new RawReactor();
    const k = acceptor.b.constants;
    const sockets: net.Socket[] = [];
    try {
      const { port } = acceptor.listen([t1.id, t2.id], k.LB_ROUND_ROBIN);
      sockets.push(...await connectMany(port, 2));
      await waitFor(() => t1.of(k.EV_OPEN).length + t2.of(k.EV_OPEN).length === 2, 'two hand-offs');
      assert.equal(t1.of(k.EV_OPEN).length, 1, 'round-robin: one each');
      assert.ok(t1.of(k.EV_OPEN).every((r) => r.a === -2), 'OPEN from a hand-off');
      t2.close(); // its worker is gone: round-robin would pick it for every other connection
      sockets.push(...await connectMany(port, 4));
      await waitFor(() => t1.of(k.EV_OPEN).length === 5, 'four more on the live target');
      assert.equal(acceptor.of(k.EV_ACCEPT_ERROR).length, 0, 'none refused while a target lives');
      assert.equal(acceptor.of(k.EV_OPEN).length, 0, 'the acceptor keeps none');

      t1.close(); // no live target left: the connection is refused and reported
      const last = net.connect(port, HOST);
      const closed = new Promise<void>((resolve) => last.on('close', () => resolve()));
      last.on('error', () => {});
      await waitFor(() => acceptor.of(k.EV_ACCEPT_ERROR).length === 1, 'an accept error');
      const [err] = acceptor.of(k.EV_ACCEPT_ERROR);
      assert.equal(acceptor.b.errname(err!.a), 'ENOENT');
      assert.equal(err!.b, 0, 'accepting is not paused');
      await closed;
    } finally {
      for (const s of sockets) s.destroy();
      acceptor.close();
      t1.close();
      t2.close();
    }
  });

  test('retarget() replaces a listener\'s targets; bad calls report -errno', GUARD, async () => {
    const acceptor = new RawReactor(), before = new RawReactor(), after = new RawReactor(), own = new RawReactor();
    const k = acceptor.b.constants, b = acceptor.b;
    const sockets: net.Socket[] = [];
    try {
      const { fd, port } = acceptor.listen([before.id]);
      sockets.push(...await connectMany(port, 2));
      await waitFor(() => before.of(k.EV_OPEN).length === 2, 'hand-offs to the first target');
      assert.equal(b.retarget(acceptor.h, fd, [after.id]), 0);
      sockets.push(...await connectMany(port, 3));
      await waitFor(() => after.of(k.EV_OPEN).length === 3, 'hand-offs to the new target');
      assert.equal(before.of(k.EV_OPEN).length, 2, 'the old target gets no more');

      assert.equal(b.errname(b.retarget(acceptor.h, fd, [])), 'EINVAL', 'no targets');
      assert.equal(b.errname(b.retarget(acceptor.h, fd + 1000, [after.id])), 'ENOENT', 'not a listener');
      const plain = own.listen();
      assert.equal(b.errname(b.retarget(own.h, plain.fd, [after.id])), 'EINVAL', 'a listener that serves its own reactor');
    } finally {
      for (const s of sockets) s.destroy();
      for (const r of [acceptor, before, after, own]) r.close();
    }
  });
});
