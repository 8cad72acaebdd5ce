/**
 * broadcast(ids, bytes): the same bytes to many connections, stale ids skipped, on both backends.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createReactor, type Connection } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, HOST, rawClient, waitFor } from '../helpers/net.js';

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
  });
}
