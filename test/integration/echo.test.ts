/**
 * Echo over loopback on every backend: payloads from 1 B to 4 MiB verified byte for byte,
 * many connections at once, writev and string writes, addresses, the context slot.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createReactor, type CloseReason, type Connection, type Handler } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, HOST, deferred, echoHandler, firstDiff, payload, rawClient, startServer, waitFor, within, type TestServer } from '../helpers/net.js';

const SIZES = [1, 7, 1000, 65_535, 65_536, 65_537, 200_000, 1024 * 1024 + 3, 4 * 1024 * 1024];

for (const backend of backends) {
  describe(`echo (${backend})`, () => {
    let srv: TestServer;
    const closes: CloseReason[] = [];
    const handler: Handler = { ...echoHandler, onClose: (_c, r) => void closes.push(r) };

    before(async () => {
      srv = await startServer(backend, handler);
      assert.equal(srv.reactor.backend, backend);
    });
    after(() => srv?.reactor.close(1000));

    for (const size of SIZES) {
      test(`echoes ${size} random bytes, every byte verified`, GUARD, async () => {
        const data = payload(size, size ^ 0x5eed);
        const c = await rawClient(srv.port);
        // Write in uneven pieces to mix the reads on the server side.
        for (let off = 0; off < size; ) {
          const n = Math.min(size - off, 1 + ((off * 7919) % 300_000));
          void c.send(data.subarray(off, off + n));
          off += n;
        }
        await c.waitBytes(size, 60_000);
        const got = c.bytes();
        assert.equal(got.length, size);
        assert.equal(firstDiff(got, data), -1, 'echoed bytes differ');
        c.socket.end();
        await c.waitClosed();
      });
    }

    test('200 connections in parallel, each echoing its own 48 KiB', GUARD, async () => {
      const N = 200, SIZE = 48 * 1024;
      const before = closes.length;
      await Promise.all(Array.from({ length: N }, async (_, i) => {
        const data = payload(SIZE, 1000 + i);
        const c = await rawClient(srv.port);
        await c.send(data);
        await c.waitBytes(SIZE, 60_000);
        assert.equal(firstDiff(c.bytes(), data), -1, `connection ${i} got wrong bytes`);
        c.socket.end();
        await c.waitClosed();
      }));
      await waitFor(() => closes.length - before === N, 'every server-side close');
      assert.ok(closes.slice(before).every((r) => r.kind === 'end'), 'every close is a clean end');
      await waitFor(() => srv.reactor.stats.connections === 0, 'no open connections');
      assert.deepEqual(srv.errors, []);
    });

    test('writev and string writes (multi-byte UTF-8) arrive in order', GUARD, async () => {
      const s = await startServer(backend, {
        onData(conn, data) {
          const n = data.readUInt8(0);
          assert.equal(conn.writev([Buffer.from('A'), 'ß€', new Uint8Array([0x42, 0x43]), '', 'x'.repeat(n)]), true);
          assert.equal(conn.write('😀'), true);
          assert.equal(conn.write(''), true);
          conn.write(Buffer.from([0x2e]));
        },
      });
      try {
        const c = await rawClient(s.port);
        await c.send(Buffer.from([5]));
        const want = Buffer.concat([Buffer.from('Aß€BCxxxxx😀.', 'utf8')]);
        await c.waitBytes(want.length);
        assert.deepEqual(c.bytes(), want);
        // A big string (direct-write path on native) and a big writev.
        await c.send(Buffer.from([200]));
        await c.waitBytes(want.length * 2 + 195);
        assert.equal(c.text(), want.toString() + want.toString().replace('xxxxx', 'x'.repeat(200)));
        c.destroy();
        assert.deepEqual(s.errors, []);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('writeWithHeader: 1 to 4 header bytes, big-endian, merged with the writes around it; bad sizes throw', GUARD, async () => {
      const big = payload(300_000, 3); // past the native direct-write threshold
      const s = await startServer(backend, {
        onData(conn) {
          conn.write('<');
          assert.equal(conn.writeWithHeader(0x41, 1, Buffer.from('a')), true);
          assert.equal(conn.writeWithHeader(0x4243, 2, new Uint8Array([0x62])), true);
          assert.equal(conn.writeWithHeader(0x444546, 3, Buffer.alloc(0)), true);
          assert.equal(conn.writeWithHeader(0xf0f1f2f3, 4, Buffer.from('d')), true);
          // Only the low bytes count: 0x1_0000_7a7a as a 2-byte header is "zz".
          conn.writeWithHeader(0x100007a7a, 2, Buffer.from('!'));
          for (const bad of [0, 5, 1.5, -1, NaN]) {
            assert.throws(() => conn.writeWithHeader(1, bad, Buffer.from('x')), { code: 'ERR_C1M_INVALID_ARGUMENT' });
          }
          conn.writeWithHeader(0x7e7e, 2, big);
          conn.write('>');
        },
      });
      try {
        const c = await rawClient(s.port);
        await c.send(Buffer.from([1]));
        const want = Buffer.concat([
          Buffer.from('<AaBCbDEF'), Buffer.from([0xf0, 0xf1, 0xf2, 0xf3]), Buffer.from('dzz!~~'), big, Buffer.from('>'),
        ]);
        await c.waitBytes(want.length);
        assert.equal(firstDiff(c.bytes(), want), -1);
        c.destroy();
        assert.deepEqual(s.errors, []);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('writeWithHeader on a stale handle returns false and sends nothing', GUARD, async () => {
      let stale: Connection | undefined;
      const s = await startServer(backend, {
        onOpen(conn) {
          stale = conn;
          conn.close();
        },
      });
      try {
        const c = await rawClient(s.port);
        await c.waitClosed();
        assert.equal(stale!.writeWithHeader(0x4142, 2, Buffer.from('x')), false);
        assert.equal(c.bytes().length, 0);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('large string and writev payloads (> 128 KiB)', GUARD, async () => {
      const big = 'é'.repeat(100_000); // 200,000 bytes of UTF-8
      const parts = [payload(70_000, 1), 'z'.repeat(70_000), payload(3, 2)];
      const s = await startServer(backend, {
        onOpen(conn) {
          conn.write(big);
          conn.writev(parts);
          conn.close();
        },
      });
      try {
        const c = await rawClient(s.port);
        await c.waitClosed();
        const want = Buffer.concat([Buffer.from(big), ...parts.map((p) => Buffer.from(p as string))]);
        assert.equal(firstDiff(c.bytes(), want), -1);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('remoteAddress, remotePort, localAddress, localPort', GUARD, async () => {
      const seen = deferred<{ ra?: string; rp?: number; la?: string; lp?: number; id: number }>();
      const s = await startServer(backend, {
        onOpen(conn) {
          seen.resolve({ ra: conn.remoteAddress, rp: conn.remotePort, la: conn.localAddress, lp: conn.localPort, id: conn.id });
        },
      });
      try {
        const c = await rawClient(s.port);
        const a = await within(seen.promise, 'onOpen');
        assert.equal(a.ra, HOST);
        assert.equal(a.rp, c.socket.localPort);
        assert.equal(a.la, HOST);
        assert.equal(a.lp, s.port);
        assert.equal(a.lp, c.socket.remotePort);
        c.destroy();
        await waitFor(() => !s.reactor.connection(a.id).open, 'server close');
        const stale = s.reactor.connection(a.id);
        assert.equal(stale.remoteAddress, undefined);
        assert.equal(stale.remotePort, undefined);
        assert.equal(stale.localPort, undefined);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('context slot: per connection, kept across callbacks, cleared at close', GUARD, async () => {
      const ctxAtClose: unknown[] = [];
      const ids: number[] = [];
      const s = await startServer(backend, {
        onOpen(conn) {
          assert.equal(conn.context, undefined);
          conn.context = { n: 0, id: conn.id };
          ids.push(conn.id);
        },
        onData(conn, data) {
          const ctx = conn.context as { n: number; id: number };
          assert.equal(ctx.id, conn.id);
          ctx.n += data.length;
          // A fresh handle for the same id sees the same value.
          assert.equal(s.reactor.connection(conn.id).context, ctx);
          conn.write(`${ctx.n};`);
        },
        onClose(conn) {
          ctxAtClose.push(conn.context);
        },
      });
      try {
        const a = await rawClient(s.port), b = await rawClient(s.port);
        await a.send('xx');
        await a.waitBytes(2);
        await b.send('yyy');
        await b.waitBytes(2);
        await a.send('z');
        await a.waitBytes(4);
        assert.equal(a.text(), '2;3;');
        assert.equal(b.text(), '3;');
        a.destroy();
        b.destroy();
        await waitFor(() => ctxAtClose.length === 2, 'both closes');
        for (const id of ids) {
          const h = s.reactor.connection(id);
          assert.equal(h.context, undefined, 'context is cleared once closed');
          h.context = 42; // harmless on a stale handle
          assert.equal(h.context, undefined);
        }
        assert.deepEqual(s.errors, []);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('client side on the same backend: reactor.connect() echoes 1 MiB', GUARD, async () => {
      const data = payload(1024 * 1024, 77);
      const got: Buffer[] = [];
      let n = 0;
      const done = deferred<CloseReason>();
      let opened: Connection | undefined;
      const cli = createReactor({
        onOpen(conn) {
          opened = conn;
          conn.write(data);
        },
        onData(conn, chunk) {
          got.push(Buffer.from(chunk));
          n += chunk.length;
          if (n >= data.length) conn.close();
        },
        onClose: (_c, r) => done.resolve(r),
      }, { backend, onError: (e) => assert.fail(e) });
      const conn = cli.connect({ port: srv.port, host: HOST });
      const reason = await within(done.promise, 'client close', 60_000);
      assert.equal(reason.kind, 'local');
      assert.equal(opened?.id, conn.id);
      assert.equal(firstDiff(Buffer.concat(got), data), -1);
      await cli.close(1000);
    });
  });
}
