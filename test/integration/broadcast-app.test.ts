/**
 * The broadcast app (`c1m serve broadcast`, src/apps/broadcast.ts) on each backend: every
 * `PUB <payload>\n` line reaches every connection, the publisher included, in order; lines
 * split across writes are reassembled; other lines are ignored; connections that leave stop
 * receiving while the others go on. Also the `onReactor` hook it relies on.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createHandler } from '../../src/apps/broadcast.js';
import { createReactor, serve, type Reactor } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, HOST, rawClient, sleep, startServer, waitFor } from '../helpers/net.js';

for (const backend of backends) {
  describe(`broadcast app (${backend})`, () => {
    test('onReactor: called once, with the reactor, before any other callback', GUARD, async () => {
      const calls: string[] = [];
      let seen: Reactor | undefined;
      const reactor = createReactor({
        onReactor(r) {
          calls.push('reactor');
          seen = r;
        },
        onOpen() {
          calls.push('open');
        },
      }, { backend });
      try {
        assert.equal(seen, reactor);
        const { port } = await reactor.listen({ port: 0, host: HOST });
        const c = await rawClient(port);
        await waitFor(() => calls.length === 2, 'onOpen');
        assert.deepEqual(calls, ['reactor', 'open']);
        c.destroy();
      } finally {
        await reactor.close(1000);
      }
    });

    test('PUB lines reach every connection; partial lines wait; other lines are ignored; leavers are dropped', GUARD, async () => {
      const srv = await startServer(backend, createHandler());
      try {
        const [a, b, c] = [await rawClient(srv.port), await rawClient(srv.port), await rawClient(srv.port)];
        await waitFor(() => srv.reactor.stats.connections === 3, '3 connections');
        await a.send('PUB hel');
        await sleep(50);
        assert.equal(b.length, 0, 'nothing before the newline');
        await a.send('lo\nNOPE x\nPUB second\nPU');
        await a.send('B third\n');
        const want = 'hello\nsecond\nthird\n';
        for (const x of [a, b, c]) await x.waitBytes(want.length);
        for (const x of [a, b, c]) assert.equal(x.text(), want);
        // The first connection leaves: the array of ids is compacted, the others still get it.
        a.destroy();
        await waitFor(() => srv.reactor.stats.connections === 2, 'a gone');
        await c.send('PUB after\n');
        for (const x of [b, c]) await x.waitBytes(want.length + 'after\n'.length);
        assert.equal(b.text(), `${want}after\n`);
        assert.equal(c.text(), `${want}after\n`);
        b.destroy();
        c.destroy();
        assert.deepEqual(srv.errors, []);
      } finally {
        await srv.reactor.close(1000);
      }
    });
  });
}

describe('broadcast app under serve()', () => {
  test('loaded as a handler module, it reaches its reactor through onReactor', GUARD, async () => {
    const handle = await serve({ handler: new URL('../../src/apps/broadcast.js', import.meta.url), port: 0, host: HOST });
    try {
      const a = await rawClient(handle.address.port), b = await rawClient(handle.address.port);
      await waitFor(() => (handle.stats()?.connections ?? 0) === 2, '2 connections');
      await b.send('PUB x\n');
      await a.waitBytes(2);
      await b.waitBytes(2);
      assert.equal(a.text(), 'x\n');
      a.destroy();
      b.destroy();
    } finally {
      await handle.close(1000);
    }
  });
});
