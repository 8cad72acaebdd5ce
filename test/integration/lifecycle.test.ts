/**
 * Connection lifecycle on every backend: stale ids after fd reuse, handler exceptions, the
 * inbound limit, partial consumption, half-close, peer resets, failed connects, idle timeouts
 * and graceful shutdown. Every wait is for an event (bounded only against hangs).
 */
import assert from 'node:assert/strict';
import { createServer, type Server as NetServer } from 'node:net';
import { describe, test } from 'node:test';
import { createReactor, type CloseReason, type Connection, type Handler } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, HOST, RawClient, echoHandler, firstDiff, payload, rawClient, sleep, startServer, waitFor, within } from '../helpers/net.js';

type Closed = [id: number, reason: CloseReason];

/** A server that records opens (by client port) and closes. */
async function recording(backend: 'native' | 'portable', handler: Handler, options = {}) {
  const byPort = new Map<number, Connection>();
  const closes: Closed[] = [];
  const srv = await startServer(backend, {
    ...handler,
    onOpen(c) {
      byPort.set(c.remotePort!, c);
      handler.onOpen?.(c);
    },
    onClose(c, r) {
      closes.push([c.id, r]);
      handler.onClose?.(c, r);
    },
  }, options);
  const conn = async (client: RawClient): Promise<Connection> => {
    await waitFor(() => byPort.has(client.socket.localPort!), 'server onOpen');
    return byPort.get(client.socket.localPort!)!;
  };
  const closeOf = async (id: number): Promise<CloseReason> => {
    await waitFor(() => closes.some(([i]) => i === id), `close of ${id}`);
    return closes.find(([i]) => i === id)![1];
  };
  return { ...srv, closes, conn, closeOf };
}

async function listenNet(onConn: () => void = () => {}): Promise<{ server: NetServer; port: number }> {
  const server = createServer((s) => {
    onConn();
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, HOST, r));
  return { server, port: (server.address() as { port: number }).port };
}

for (const backend of backends) {
  describe(`lifecycle (${backend})`, () => {
    test('a stale id stays dead after its fd is reused by a new connection', GUARD, async () => {
      const s = await recording(backend, echoHandler);
      try {
        const c1 = await rawClient(s.port);
        const old = await s.conn(c1);
        const oldFd = (old as unknown as { fd?: number }).fd;
        c1.destroy();
        await s.closeOf(old.id);
        // Open connections until one lands on the old fd (the kernel hands out the lowest free fd).
        const clients: RawClient[] = [];
        let fresh: Connection | undefined, client: RawClient | undefined;
        for (let i = 0; i < 20 && !fresh; i++) {
          const c = await rawClient(s.port);
          clients.push(c);
          const conn = await s.conn(c);
          if (backend !== 'native' || (conn as unknown as { fd: number }).fd === oldFd) [fresh, client] = [conn, c];
        }
        assert.ok(fresh && client, `a new connection reused fd ${oldFd}`);
        assert.notEqual(fresh.id, old.id);
        await client.send('ping');
        await client.waitBytes(4);
        for (const h of [old, s.reactor.connection(old.id)]) {
          assert.equal(h.open, false);
          assert.equal(h.write('STALE'), false);
          assert.equal(h.writev(['STALE']), false);
          assert.equal(h.shutdown(), false);
          assert.equal(h.close(), false);
          assert.equal(h.destroy(), false);
          assert.equal(h.bufferedAmount, 0);
        }
        assert.equal(s.reactor.connection(fresh.id).open, true);
        await client.send('pong');
        await client.waitBytes(8);
        assert.equal(client.text(), 'pingpong', 'nothing written through the stale handle arrived');
        assert.equal(fresh.open, true);
        for (const c of clients) c.destroy();
      } finally {
        await s.reactor.close(1000);
      }
    });

    test("a throwing handler closes only its connection ('handler-error', onError)", GUARD, async () => {
      const reported: [Error, number | undefined][] = [];
      const s = await recording(backend, {
        onData(conn, data) {
          if (data.includes('boom')) throw new Error('boom!');
          conn.write(data);
        },
      }, { onError: (e: Error, c?: Connection) => reported.push([e, c?.id]) });
      try {
        const [a, b, c] = await Promise.all([rawClient(s.port), rawClient(s.port), rawClient(s.port)]);
        const victim = await s.conn(b);
        await b.send('boom');
        const reason = await s.closeOf(victim.id);
        assert.equal(reason.kind, 'handler-error');
        assert.equal(reason.error?.message, 'boom!');
        assert.equal(reported.length, 1);
        assert.equal(reported[0]![0].message, 'boom!');
        assert.equal(reported[0]![1], victim.id);
        await b.waitClosed();
        for (const [i, cl] of [a, c].entries()) {
          await cl.send(`still ${i}`);
          await cl.waitBytes(7);
          assert.equal(cl.text(), `still ${i}`);
        }
        assert.equal(s.closes.length, 1);
        a.destroy();
        c.destroy();
      } finally {
        await s.reactor.close(1000);
      }
    });

    test("unconsumed bytes past maxInboundBytes close with 'inbound-limit'", GUARD, async () => {
      const s = await recording(backend, { onData: () => 0 }, { maxInboundBytes: 64 * 1024 });
      try {
        const c = await rawClient(s.port);
        const conn = await s.conn(c);
        c.socket.write(payload(256 * 1024));
        const reason = await s.closeOf(conn.id);
        assert.equal(reason.kind, 'inbound-limit');
        assert.equal(reason.code, 'ERR_C1M_INBOUND_LIMIT');
        await c.waitClosed();
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('partial consumption: length-prefixed frames split across writes are reassembled', GUARD, async () => {
      const sizes = [0, 1, 3, 100, 4095, 70_000, 5, 200_000, 2, 65_536, ...Array.from({ length: 40 }, (_, i) => (i * 7919) % 3000)];
      const frames = sizes.map((n, i) => payload(n, i + 1));
      const stream = Buffer.concat(frames.flatMap((f) => [Buffer.from([f.length >>> 24, (f.length >>> 16) & 255, (f.length >>> 8) & 255, f.length & 255]), f]));
      const got: Buffer[] = [];
      const problems: string[] = [];
      let kept = Buffer.alloc(0), fresh = 0, calls = 0;
      const s = await recording(backend, {
        onData(_conn, data) {
          calls++;
          if (!data.subarray(0, kept.length).equals(kept)) problems.push(`call ${calls}: kept bytes not presented first`);
          if (data.length <= kept.length) problems.push(`call ${calls}: no new bytes`);
          fresh += data.length - kept.length;
          let off = 0;
          while (data.length - off >= 4) {
            const len = data.readUInt32BE(off);
            if (data.length - off - 4 < len) break;
            got.push(Buffer.from(data.subarray(off + 4, off + 4 + len)));
            off += 4 + len;
          }
          kept = Buffer.from(data.subarray(off));
          return off;
        },
      });
      try {
        const c = await rawClient(s.port);
        // Phase 1: small pieces, each delivered before the next is sent (splits headers too).
        let sent = 0;
        for (let i = 0; sent < 90_000; i++) {
          const n = Math.min(1 + ((i * 2654435761) >>> 0) % 2500, stream.length - sent);
          await c.send(stream.subarray(sent, sent + n));
          sent += n;
          await waitFor(() => fresh >= sent, `server saw ${sent} bytes`);
        }
        // Phase 2: the rest at once.
        await c.send(stream.subarray(sent));
        await waitFor(() => got.length === frames.length, `all ${frames.length} frames (have ${got.length})`);
        assert.deepEqual(problems, []);
        assert.equal(fresh, stream.length);
        for (const [i, f] of frames.entries()) assert.equal(firstDiff(got[i]!, f), -1, `frame ${i} (${f.length} B)`);
        assert.equal(kept.length, 0);
        c.destroy();
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('half-close: onEnd replies, then shutdown(); the client gets the reply and an end', GUARD, async () => {
      let got = '';
      const s = await recording(backend, {
        onData(_c, data) {
          got += data.toString();
        },
        onEnd(conn) {
          assert.equal(conn.write(`reply:${got}`), true);
          assert.equal(conn.shutdown(), true);
        },
      });
      try {
        const c = await rawClient(s.port, { allowHalfOpen: true });
        const conn = await s.conn(c);
        await c.send('request');
        c.socket.end();
        await c.waitClosed();
        assert.equal(c.text(), 'reply:request');
        assert.equal(c.ended, true);
        assert.equal((await s.closeOf(conn.id)).kind, 'end');
        // Without onEnd the server closes its side too, after flushing.
        const e = await startServer(backend, echoHandler);
        const c2 = await rawClient(e.port, { allowHalfOpen: true });
        await c2.send('abc');
        c2.socket.end();
        await c2.waitClosed();
        assert.equal(c2.text(), 'abc');
        assert.equal(c2.ended, true);
        await e.reactor.close(1000);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('bytes and the FIN together: every byte, then the end (before the accept, and while paused)', GUARD, async () => {
      const got = new Map<number, Buffer[]>();
      const ended: number[] = [];
      const pauseFirst = new Set<number>();
      const s = await recording(backend, {
        onOpen(conn) {
          got.set(conn.id, []);
          if (pauseFirst.size === 0 && ended.length === 1) {
            pauseFirst.add(conn.id);
            conn.pause();
          }
        },
        onData(conn, data) {
          got.get(conn.id)!.push(Buffer.from(data));
        },
        onEnd(conn) {
          ended.push(conn.id);
          conn.close();
        },
      });
      try {
        // 1: written and ended right after connecting, usually before the server accepts.
        const c1 = await rawClient(s.port, { allowHalfOpen: true });
        c1.socket.end('hello, then FIN');
        const conn1 = await s.conn(c1);
        await waitFor(() => ended.includes(conn1.id), 'end of the first connection');
        assert.equal(Buffer.concat(got.get(conn1.id)!).toString(), 'hello, then FIN');
        // 2: 300 KB and the FIN arrive while the server is paused; resuming reads them all.
        const c2 = await rawClient(s.port, { allowHalfOpen: true });
        const conn2 = await s.conn(c2);
        assert.ok(pauseFirst.has(conn2.id));
        const body = payload(300_000, 9);
        await new Promise<void>((res) => c2.socket.end(body, res));
        // Let the kernel queue them on the paused socket: the bytes that fit, then the FIN.
        await sleep(50);
        assert.equal(got.get(conn2.id)!.length, 0);
        conn2.resume();
        await waitFor(() => ended.includes(conn2.id), 'end of the paused connection');
        assert.equal(firstDiff(Buffer.concat(got.get(conn2.id)!), body), -1);
        c1.destroy();
        c2.destroy();
      } finally {
        await s.reactor.close(1000);
      }
    });

    test("a reset from the peer is one close, kind 'error' ECONNRESET", GUARD, async () => {
      const s = await recording(backend, echoHandler);
      try {
        const c = await rawClient(s.port);
        const conn = await s.conn(c);
        await c.send('hi');
        await c.waitBytes(2);
        c.socket.resetAndDestroy();
        const reason = await s.closeOf(conn.id);
        assert.equal(reason.kind, 'error');
        assert.equal(reason.code, 'ECONNRESET');
        // A later round trip orders events: still one close for that connection.
        const d = await rawClient(s.port);
        await d.send('x');
        await d.waitBytes(1);
        d.destroy();
        await waitFor(() => s.closes.length === 2, 'second close');
        assert.equal(s.closes.filter(([id]) => id === conn.id).length, 1);
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('the context is readable in onClose and gone after it', GUARD, async () => {
      const seen: unknown[] = [];
      let handle: Connection | undefined;
      const s = await recording(backend, {
        ...echoHandler,
        onOpen(c) {
          c.context = { user: 'u1' };
        },
        onClose(c) {
          seen.push(c.context);
          handle = c;
        },
      });
      try {
        const c = await rawClient(s.port);
        const conn = await s.conn(c);
        assert.deepEqual(conn.context, { user: 'u1' });
        c.destroy();
        await s.closeOf(conn.id);
        assert.deepEqual(seen, [{ user: 'u1' }]);
        assert.equal(handle!.context, undefined);
        assert.equal(conn.context, undefined);
        conn.context = 'late';
        assert.equal(conn.context, undefined, 'a closed connection takes no context');
      } finally {
        await s.reactor.close(1000);
      }
    });

    test('tag: a uint32 per connection, 0 at open, readable in onClose, 0 for a stale handle', GUARD, async () => {
      const inData: number[] = [];
      const inClose: number[] = [];
      const s = await recording(backend, {
        onOpen(c) {
          assert.equal(c.tag, 0);
          c.tag = 0x1_0000_0005; // stored as uint32
        },
        onData(c, data) {
          inData.push(c.tag);
          c.tag = (c.tag | 0x8000_0000) >>> 0;
          c.write(data);
        },
        onClose(c) {
          inClose.push(c.tag);
        },
      });
      try {
        const c = await rawClient(s.port);
        const conn = await s.conn(c);
        await c.send('x');
        await c.waitBytes(1);
        assert.deepEqual(inData, [5]);
        assert.equal(conn.tag, 0x8000_0005);
        c.destroy();
        await s.closeOf(conn.id);
        assert.deepEqual(inClose, [0x8000_0005]);
        assert.equal(conn.tag, 0, 'a stale handle reads 0');
        conn.tag = 9;
        assert.equal(conn.tag, 0, 'and ignores writes');
        // The next connection (on the native backend usually the same fd) starts at 0.
        const d = await rawClient(s.port);
        await d.send('y');
        await d.waitBytes(1);
        assert.deepEqual(inData, [5, 5]);
        d.destroy();
      } finally {
        await s.reactor.close(1000);
      }
    });

    test("outbound connect failures: ECONNREFUSED and EADDRNOTAVAIL are 'connect-failed'", GUARD, async () => {
      let opens = 0;
      const closes: [Connection, CloseReason][] = [];
      const cli = createReactor({ onOpen: () => void opens++, onClose: (c, r) => void closes.push([c, r]) }, { backend, onError: (e) => assert.fail(e) });
      const gone = await listenNet();
      await new Promise((r) => gone.server.close(r));
      let accepted = 0;
      const live = await listenNet(() => accepted++);
      try {
        const refused = cli.connect({ host: HOST, port: gone.port });
        await waitFor(() => closes.length === 1, 'refused close');
        assert.equal(closes[0]![0].id, refused.id);
        assert.equal(closes[0]![1].kind, 'connect-failed');
        assert.equal(closes[0]![1].code, 'ECONNREFUSED');
        assert.ok(closes[0]![1].error instanceof Error);
        // The error names the target the connect was given.
        assert.equal(closes[0]![1].error!.message, `connect ECONNREFUSED ${HOST}:${gone.port}`);
        assert.equal(refused.open, false);
        assert.equal(refused.write('x'), false);
        // A source address this host does not have: the bind fails, nothing is sent.
        const unreachable = cli.connect({ host: HOST, port: live.port, localAddress: '192.0.2.1' });
        await waitFor(() => closes.length === 2, 'unreachable close');
        assert.equal(closes[1]![0].id, unreachable.id);
        assert.equal(closes[1]![1].kind, 'connect-failed');
        assert.equal(closes[1]![1].code, 'EADDRNOTAVAIL');
        // The first connection the listener ever sees is this one.
        cli.connect({ host: HOST, port: live.port });
        await waitFor(() => accepted === 1 && opens === 1, 'a good connect');
        await waitFor(() => closes.length === 3, 'its close');
        assert.equal(accepted, 1);
      } finally {
        live.server.close();
        await cli.close(1000);
      }
    });

    test('connect rejects a host or localAddress that is not an IP address, every time', GUARD, async () => {
      const cli = createReactor({}, { backend, onError: (e) => assert.fail(e) });
      try {
        // Twice each: connects remember the family of the address strings they validated.
        for (let i = 0; i < 2; i++) {
          assert.throws(() => cli.connect({ host: 'localhost', port: 9 }), { code: 'ERR_C1M_INVALID_OPTION', message: /host/ });
          assert.throws(() => cli.connect({ host: HOST, port: 9, localAddress: '::1' }), { code: 'ERR_C1M_INVALID_OPTION', message: /localAddress/ });
          assert.throws(() => cli.connect({ host: HOST, port: 9, localAddress: 'nope' }), { code: 'ERR_C1M_INVALID_OPTION', message: /localAddress/ });
          assert.throws(() => cli.connect({ host: HOST, port: 9, localAddress: 7 as unknown as string }), { code: 'ERR_C1M_INVALID_OPTION', message: /localAddress/ });
        }
      } finally {
        await cli.close(1000);
      }
    });

    test('tcpKeepAlive out of range or of the wrong type: a clear error from listen and connect', GUARD, async () => {
      const r = createReactor({}, { backend, onError: (e) => assert.fail(e) });
      try {
        const bad: [unknown, RegExp][] = [
          [0, /tcpKeepAlive\.idle/], [1.5, /tcpKeepAlive\.idle/], [32768, /tcpKeepAlive\.idle/], ['30', /tcpKeepAlive/],
          [{ idle: 30, interval: 0 }, /tcpKeepAlive\.interval/], [{ idle: 30, count: 128 }, /tcpKeepAlive\.count/], [null, /tcpKeepAlive/],
        ];
        for (const [tcpKeepAlive, message] of bad) {
          await assert.rejects(r.listen({ port: 0, host: HOST, tcpKeepAlive } as never), { code: 'ERR_C1M_INVALID_OPTION', message }, JSON.stringify(tcpKeepAlive));
          assert.throws(() => r.connect({ host: HOST, port: 9, tcpKeepAlive } as never), { code: 'ERR_C1M_INVALID_OPTION', message }, JSON.stringify(tcpKeepAlive));
        }
      } finally {
        await r.close(1000);
      }
    });

    test("idle timeout closes with 'timeout'; onTimeout overrides it", GUARD, async () => {
      const s = await recording(backend, echoHandler, { idleTimeout: 200, timerResolution: 20 });
      let timeouts = 0;
      const o = await recording(backend, {
        onOpen: (c) => c.setTimeout(150),
        onTimeout(c) {
          if (++timeouts === 1) {
            c.write('idle;');
            c.setTimeout(150);
          } else {
            c.write('bye');
            c.close();
          }
        },
      }, { timerResolution: 20 });
      try {
        const c = await rawClient(s.port);
        const conn = await s.conn(c);
        const reason = await s.closeOf(conn.id);
        assert.equal(reason.kind, 'timeout');
        assert.equal(reason.code, 'ERR_C1M_IDLE_TIMEOUT');
        await c.waitClosed();
        const d = await rawClient(o.port);
        const dc = await o.conn(d);
        await d.waitClosed();
        assert.equal(d.text(), 'idle;bye');
        assert.equal(timeouts, 2);
        assert.equal((await o.closeOf(dc.id)).kind, 'local');
      } finally {
        await s.reactor.close(1000);
        await o.reactor.close(1000);
      }
    });

    test('graceful shutdown: listener closes, onShutdown runs, writes are flushed before close', GUARD, async () => {
      const open = new Set<number>();
      let shutdowns = 0;
      const big = payload(2 * 1024 * 1024, 11);
      const s = await recording(backend, {
        ...echoHandler,
        onOpen: (c) => void open.add(c.id),
        onShutdown() {
          shutdowns++;
          for (const id of open) {
            const c = s.reactor.connection(id);
            c.write(big);
            c.write('bye');
            c.close();
          }
        },
      });
      const [a, b] = await Promise.all([rawClient(s.port), rawClient(s.port)]);
      await Promise.all([a.send('x'), b.send('y')]);
      await Promise.all([a.waitBytes(1), b.waitBytes(1)]);
      const closing = s.reactor.close(30_000);
      assert.equal(shutdowns, 1);
      const late = new RawClient(s.port);
      await assert.rejects(late.connected, { code: 'ECONNREFUSED' });
      assert.throws(() => s.reactor.connect({ host: HOST, port: s.port }), { code: 'ERR_C1M_REACTOR_CLOSED' });
      await within(closing, 'reactor.close()', 60_000);
      for (const [cl, first] of [[a, 'x'], [b, 'y']] as const) {
        await cl.waitClosed();
        const want = Buffer.concat([Buffer.from(first), big, Buffer.from('bye')]);
        assert.equal(firstDiff(cl.bytes(), want), -1);
      }
      assert.deepEqual(s.closes.map(([, r]) => r.kind), ['local', 'local']);
      assert.equal(s.reactor.stats.connections, 0);
    });

    test("shutdown without onShutdown flushes and closes; kept connections get 'shutdown' at the deadline", GUARD, async () => {
      // No onShutdown: every connection is closed gracefully, its pending bytes flushed first.
      const big = payload(8 * 1024 * 1024, 12);
      const g = await recording(backend, { onOpen: (c) => void c.write(big) });
      const p = await rawClient(g.port, { paused: true });
      await waitFor(() => g.reactor.stats.connections === 1, 'open');
      const closing = g.reactor.close(60_000);
      p.collect();
      await within(closing, 'graceful close', 60_000);
      await p.waitClosed();
      assert.equal(p.length, big.length);
      assert.equal(firstDiff(p.bytes(), big), -1);
      assert.equal(g.closes[0]![1].kind, 'local');
      // A handler that keeps its connections: they are reset at the deadline.
      const k = await recording(backend, { ...echoHandler, onShutdown() {} });
      const [a, b] = await Promise.all([rawClient(k.port), rawClient(k.port)]);
      await waitFor(() => k.reactor.stats.connections === 2, 'two open');
      await within(k.reactor.close(200), 'close after the deadline');
      assert.deepEqual(k.closes.map(([, r]) => [r.kind, r.code]), [['shutdown', 'ERR_C1M_SHUTDOWN'], ['shutdown', 'ERR_C1M_SHUTDOWN']]);
      await Promise.all([a.waitClosed(), b.waitClosed()]);
      assert.equal(k.reactor.stats.connections, 0);
    });
  });
}
