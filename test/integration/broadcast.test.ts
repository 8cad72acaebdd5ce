/**
 * broadcast(ids, bytes): the same bytes to many connections, stale ids skipped, on both backends;
 * consecutive broadcasts (merged into one command on the native backend when they name the same
 * ids) keep every connection's bytes in the order they were sent.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createReactor, type Connection, type Reactor } from '../../src/index.js';
import { backends, type BackendName } from '../helpers/backends.js';
import { GUARD, HOST, rawClient, waitFor, type RawClient } from '../helpers/net.js';

/** A reactor on `backend` with `n` raw clients connected to it, and their connections in open order. */
async function openConnections(backend: BackendName, n: number): Promise<{ reactor: Reactor; conns: Connection[]; clients: RawClient[]; ids: number[] }> {
  const conns: Connection[] = [];
  const reactor = createReactor({ onOpen: (conn: Connection) => void conns.push(conn) }, { backend });
  const { port } = await reactor.listen({ port: 0, host: HOST });
  const clients = await Promise.all(Array.from({ length: n }, () => rawClient(port)));
  await waitFor(() => conns.length === n, `${n} opens`);
  return { reactor, conns, clients, ids: conns.map((c) => c.id) };
}

for (const backend of backends) {
  describe(`broadcast (${backend})`, () => {
    test('reaches every open connection exactly once, skips stale ids, large and small payloads', GUARD, async () => {
      const ids: number[] = [];
      let closedId = -1;
      const reactor = createReactor(
        {
          onOpen(conn: Connection) {
            ids.push(conn.id);
          },
          onClose(conn: Connection) {
            closedId = conn.id;
          },
        },
        { backend },
      );
      const { port } = await reactor.listen({ port: 0, host: HOST });
      const clients = await Promise.all(Array.from({ length: 60 }, () => rawClient(port)));
      await waitFor(() => ids.length === 60, '60 opens');

      // One client leaves: its id becomes stale and must be skipped.
      clients[0]!.destroy();
      await waitFor(() => closedId !== -1, 'close of the first client');
      const staleIndex = ids.indexOf(closedId);
      assert.notEqual(staleIndex, -1);

      const small = Buffer.from('tick\n');
      const big = Buffer.alloc(700 * 1024, 0x5a); // larger than the native send area's half
      assert.equal(reactor.broadcast(ids, small), 59);
      assert.equal(reactor.broadcast(ids, 'tock\n'), 59);
      assert.equal(reactor.broadcast(ids, big), 59);
      assert.equal(reactor.broadcast([], small), 0);

      const live = clients.slice(1);
      const want = small.length + 5 + big.length;
      await Promise.all(live.map((c) => c.waitBytes(want)));
      for (const c of live) {
        const got = c.bytes();
        assert.equal(got.length, want, 'no duplicates');
        assert.equal(got.subarray(0, 10).toString(), 'tick\ntock\n');
        assert.ok(got.subarray(10).every((b) => b === 0x5a));
      }
      for (const c of live) c.destroy();
      await reactor.close(1000);
    });

    test('bufferedAmount counts broadcast bytes the kernel has not taken yet', GUARD, async () => {
      const { reactor, conns, clients, ids } = await openConnections(backend, 3);
      assert.equal(reactor.broadcast(ids, Buffer.alloc(1000, 1)), 3);
      assert.equal(reactor.broadcast(ids, Buffer.alloc(500, 2)), 3); // merged into the first (native)
      assert.equal(reactor.broadcast(ids.slice(1), Buffer.alloc(200, 3)), 2); // a command of its own
      conns[2]!.write(Buffer.alloc(50, 4));
      const want = [1500, 1700, 1750];
      if (backend === 'native') {
        // Staged until the turn ends: all of it is still ours.
        assert.deepEqual(conns.map((c) => c.bufferedAmount), want);
        assert.deepEqual(ids.map((id) => reactor.bufferedAmount(id)), want);
      } else {
        conns.forEach((c, i) => assert.ok(c.bufferedAmount <= want[i]!));
      }
      await Promise.all(clients.map((c, i) => c.waitBytes(want[i]!)));
      assert.deepEqual(conns.map((c) => c.bufferedAmount), [0, 0, 0]);
      assert.deepEqual(clients.map((c) => c.bytes().length), want);
      for (const c of clients) c.destroy();
      await reactor.close(1000);
    });

    test('a burst of broadcasts, with writes and other id lists between, arrives in order', GUARD, async () => {
      const { reactor, conns, clients, ids } = await openConnections(backend, 30);
      const half = ids.slice(0, 15);
      const expected = new Map<number, string>(ids.map((id) => [id, '']));
      const cast = (list: number[], text: string): void => {
        assert.equal(reactor.broadcast(Float64Array.from(list), text), list.length);
        for (const id of list) expected.set(id, expected.get(id) + text);
      };
      // Identical lists back to back (merged), a write between, a different list, a reordered
      // list (not merged: order of ids differs), then a burst large enough to fill the area.
      cast(ids, 'a');
      cast(ids, 'b');
      cast(ids, 'c');
      conns[3]!.write('w');
      expected.set(ids[3]!, expected.get(ids[3]!) + 'w');
      cast(ids, 'd');
      cast(half, 'e');
      cast(ids, 'f');
      cast([...ids].reverse(), 'g');
      cast(ids, 'h');
      for (let i = 0; i < 200; i++) cast(ids, `${'x'.repeat(5000)}${i % 10}`);
      cast(ids, 'z');
      // Accepts need not follow the clients' order: pair them by port.
      const byPort = new Map(clients.map((c) => [c.socket.localPort, c]));
      const clientOf = (i: number) => byPort.get(conns[i]!.remotePort)!;
      await Promise.all(ids.map((id, i) => clientOf(i).waitBytes(expected.get(id)!.length)));
      ids.forEach((id, i) => assert.equal(clientOf(i).text(), expected.get(id), `connection ${i}`));
      for (const c of clients) c.destroy();
      await reactor.close(1000);
    });
  });
}
