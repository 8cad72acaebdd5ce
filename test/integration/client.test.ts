/**
 * Outbound connections: the handle connect() returns is usable at once, on both backends.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { createReactor, type CloseReason } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, HOST, deferred, within } from '../helpers/net.js';

for (const backend of backends) {
  describe(`client (${backend})`, () => {
    test('a connecting handle is open, queues writes and keeps its context', GUARD, async () => {
      const got = deferred<string>();
      const srv = createServer((s: Socket) => {
        let text = '';
        s.on('data', (d) => {
          text += d.toString();
          if (text.length >= 3) {
            got.resolve(text);
            s.end();
          }
        });
      });
      await new Promise<void>((r) => srv.listen(0, HOST, r));
      const port = (srv.address() as { port: number }).port;
      const seen = { openContext: undefined as unknown, reason: undefined as CloseReason | undefined };
      const closed = deferred();
      const reactor = createReactor(
        {
          onOpen(c) {
            seen.openContext = c.context;
          },
          onClose(_c, reason) {
            seen.reason = reason;
            closed.resolve();
          },
        },
        { backend },
      );
      const conn = reactor.connect({ host: HOST, port });
      assert.equal(conn.open, true);
      assert.equal(conn.write('a'), true);
      assert.equal(conn.writev(['b', Buffer.from('c')]), true);
      assert.equal(reactor.stats.connections, 0, 'a connecting socket is not counted as established');
      conn.context = { tag: 1 };
      assert.equal(await within(got.promise, 'server receives the early writes'), 'abc');
      await within(closed.promise, 'close');
      assert.deepEqual(seen.openContext, { tag: 1 });
      assert.equal(seen.reason?.kind, 'end');
      assert.equal(conn.open, false);
      assert.equal(conn.write('x'), false, 'stale handle');
      srv.close();
      await reactor.close(0);
    });
  });
}
