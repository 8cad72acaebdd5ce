/**
 * The portable (node:net) backend against the Handler contract, over loopback.
 * No timing thresholds: every wait is for an event.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { createPortableReactor } from '../../src/backends/portable.js';
import { resolveOptions } from '../../src/core/options.js';
import type { CloseReason, Connection, EngineOptions, Handler, Reactor } from '../../src/core/types.js';

const HOST = '127.0.0.1';
/** A guard against hangs only (a failed assertion inside a callback becomes a handler error). */
const GUARD = { timeout: 60_000 };

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Handler errors no test expected (checked by the last test). */
const stray: Error[] = [];

/** A reactor whose `onError` collects instead of printing. */
function reactor(handler: Handler, options: EngineOptions = {}, errors: Error[] = stray): Reactor {
  return createPortableReactor(handler, resolveOptions({ onError: (err) => errors.push(err), ...options }));
}

async function serve(handler: Handler, options: EngineOptions = {}, errors: Error[] = stray): Promise<{ server: Reactor; port: number }> {
  const server = reactor(handler, options, errors);
  const { port } = await server.listen({ port: 0, host: HOST });
  return { server, port };
}

/** A plain node:net client, connected. */
async function client(port: number, allowHalfOpen = false): Promise<Socket> {
  const socket = netConnect({ port, host: HOST, allowHalfOpen });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** Every byte a socket receives until it ends or closes. */
function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
}

const echo: Handler = {
  onData(conn, data) {
    conn.write(data);
  },
};

test('echo: random payloads up to 4 MiB come back byte for byte, client on the portable connect()', GUARD, async () => {
  const { server, port } = await serve(echo);
  const sizes = [1, 1000, 65_537, 4 * 1024 * 1024];
  const done = new Map<number, Deferred<Buffer>>();
  const payloads = new Map<number, Buffer>();
  const received = new Map<number, Buffer[]>();
  const kinds: string[] = [];
  const cli = reactor({
    onOpen(conn) {
      const payload = payloads.get(conn.id) as Buffer;
      // Write in pieces to exercise queueing and writev.
      conn.writev([payload.subarray(0, payload.length >>> 1), payload.subarray(payload.length >>> 1)]);
    },
    onData(conn, data) {
      const chunks = received.get(conn.id) as Buffer[];
      chunks.push(Buffer.from(data));
      const total = chunks.reduce((n, c) => n + c.length, 0);
      if (total >= (payloads.get(conn.id) as Buffer).length) conn.close();
    },
    onClose(conn, reason) {
      kinds.push(reason.kind);
      done.get(conn.id)?.resolve(Buffer.concat(received.get(conn.id) as Buffer[]));
    },
  });
  for (const size of sizes) {
    const conn = cli.connect({ port, host: HOST });
    payloads.set(conn.id, randomBytes(size));
    received.set(conn.id, []);
    done.set(conn.id, deferred());
  }
  for (const [id, d] of done) assert.ok((await d.promise).equals(payloads.get(id) as Buffer), `payload of connection ${id}`);
  assert.equal(new Set(done.keys()).size, sizes.length, 'ids are distinct');
  assert.deepEqual(kinds, sizes.map(() => 'local'));
  await cli.close();
  await server.close();
});

test('partial consumption: a length-prefixed framer sees pending bytes again, followed by new ones', GUARD, async () => {
  const frames: Buffer[] = [];
  let partialCalls = 0;
  const allFrames = deferred<void>();
  const sent = [randomBytes(3), randomBytes(512 * 1024), Buffer.alloc(0), randomBytes(70_000), randomBytes(1)];
  const { server, port } = await serve({
    onData(_conn, data) {
      let offset = 0;
      while (data.length - offset >= 4) {
        const size = data.readUInt32BE(offset);
        if (data.length - offset - 4 < size) break;
        frames.push(Buffer.from(data.subarray(offset + 4, offset + 4 + size)));
        offset += 4 + size;
      }
      if (offset === 0) partialCalls++;
      if (frames.length === sent.length) allFrames.resolve();
      return offset;
    },
  });
  const socket = await client(port);
  const wire = Buffer.concat(sent.flatMap((f) => [Buffer.from([0, 0, 0, 0].map((_, i) => (f.length >>> (24 - 8 * i)) & 0xff)), f]));
  // Split the stream at awkward places, including inside a length prefix.
  for (const cut of [[0, 2], [2, 9], [9, 100_000], [100_000, wire.length]] as const) socket.write(wire.subarray(cut[0], cut[1]));
  await allFrames.promise;
  assert.equal(frames.length, sent.length);
  for (let i = 0; i < sent.length; i++) assert.ok(frames[i]?.equals(sent[i] as Buffer), `frame ${i}`);
  assert.ok(partialCalls > 0, 'some onData calls returned 0 (a frame spans reads)');
  socket.destroy();
  await server.close();
});

test('inbound limit: unconsumed bytes past maxInboundBytes close with inbound-limit', GUARD, async () => {
  const closed = deferred<CloseReason>();
  const { server, port } = await serve({ onData: () => 0, onClose: (_c, reason) => closed.resolve(reason) }, { maxInboundBytes: 1024 });
  const socket = await client(port);
  const ended = readAll(socket);
  socket.write(randomBytes(4096));
  const reason = await closed.promise;
  assert.equal(reason.kind, 'inbound-limit');
  assert.equal(reason.code, 'ERR_C1M_INBOUND_LIMIT');
  await ended;
  await server.close();
});

test('handler errors close only their connection and reach onError', GUARD, async () => {
  const errors: Error[] = [];
  const reasons = new Map<number, CloseReason>();
  const closed = deferred<void>();
  const boom = new Error('boom');
  const { server, port } = await serve(
    {
      onData(conn, data) {
        if (data.toString() === 'boom') throw boom;
        if (data.toString() === 'bad') return 7_000; // more than was presented
        conn.write(data);
      },
      onClose(conn, reason) {
        reasons.set(conn.id, reason);
        if (reasons.size === 2) closed.resolve();
      },
    },
    {},
    errors,
  );
  const [a, b, c] = await Promise.all([client(port), client(port), client(port)]);
  const aDone = readAll(a as Socket);
  const bDone = readAll(b as Socket);
  a?.write('boom');
  b?.write('bad');
  await Promise.all([aDone, bDone, closed.promise]);
  const kinds = [...reasons.values()];
  assert.deepEqual(kinds.map((r) => [r.kind, r.code]), [['handler-error', 'ERR_C1M_HANDLER'], ['handler-error', 'ERR_C1M_HANDLER']]);
  assert.ok(kinds.some((r) => r.error === boom));
  assert.equal(errors.length, 2);
  assert.ok(errors.includes(boom));
  // The third connection still works.
  const reply = new Promise<string>((resolve) => c?.once('data', (d: Buffer) => resolve(d.toString())));
  c?.write('ping');
  assert.equal(await reply, 'ping');
  c?.destroy();
  await server.close();
});

test('stale handles: after onClose, every operation is a harmless no-op', GUARD, async () => {
  const closed = deferred<Connection>();
  const seen: unknown[] = [];
  let opened: Connection | undefined;
  const { server, port } = await serve({
    onOpen(conn) {
      opened = conn;
      conn.context = { user: 1 };
      seen.push(conn.open, typeof conn.remotePort, conn.localAddress);
    },
    onClose(conn, reason) {
      seen.push(reason.kind, conn.open, conn.context);
      closed.resolve(conn);
    },
  });
  const socket = await client(port);
  socket.end();
  const conn = await closed.promise;
  assert.equal(conn, opened);
  // The handle is stale inside onClose, but its context is still readable there.
  assert.deepEqual(seen, [true, 'number', HOST, 'end', false, { user: 1 }]);
  for (const handle of [conn, server.connection(conn.id)]) {
    assert.equal(handle.open, false);
    assert.equal(handle.write('x'), false);
    assert.equal(handle.writev(['x', new Uint8Array(1)]), false);
    assert.equal(handle.close(), false);
    assert.equal(handle.destroy(), false);
    assert.equal(handle.shutdown(), false);
    assert.equal(handle.context, undefined);
    assert.equal(handle.remoteAddress, undefined);
    handle.pause();
    handle.resume();
    handle.setTimeout(10);
    handle.cork(() => handle.write('y'));
  }
  assert.equal(server.broadcast([conn.id, conn.id + 1000], 'x'), 0);
  assert.equal(server.stats.connections, 0);
  await server.close();
});

test('backpressure: write returns false while the peer does not read, onDrain once it does', GUARD, async () => {
  const chunk = randomBytes(64 * 1024);
  let written = 0;
  const drained = deferred<Connection>();
  const full = deferred<number>();
  const { server, port } = await serve({
    onOpen(conn) {
      // The peer is paused: eventually the kernel buffers fill and bytes queue in user space.
      while (conn.write(chunk)) written += chunk.length;
      written += chunk.length;
      full.resolve(conn.bufferedAmount);
    },
    onDrain(conn) {
      drained.resolve(conn);
    },
  });
  const socket = netConnect({ port, host: HOST });
  socket.pause();
  const all = readAll(socket);
  socket.pause();
  assert.ok((await full.promise) > 64 * 1024, 'write returned false past highWaterMark');
  socket.resume();
  const conn = await drained.promise;
  assert.equal(conn.bufferedAmount, 0);
  assert.equal(conn.close(), true);
  assert.equal((await all).length, written);
  await server.close();
});

test('half-close: onEnd keeps the connection writable, shutdown() sends FIN, close reason is end', GUARD, async () => {
  const closed = deferred<CloseReason>();
  const results: boolean[] = [];
  let received = 0;
  const { server, port } = await serve({
    onData(_conn, data) {
      received += data.length;
    },
    onEnd(conn) {
      results.push(conn.write(`got ${received}`), conn.shutdown(), conn.write('late'), conn.open);
    },
    onClose: (_c, reason) => closed.resolve(reason),
  });
  const socket = await client(port, true);
  const reply = readAll(socket);
  socket.end('hello');
  assert.equal((await reply).toString(), 'got 5');
  assert.equal((await closed.promise).kind, 'end');
  assert.deepEqual(results, [true, true, false, true], 'writes after shutdown are dropped; the connection stays open');
  await server.close();
});

test('without onEnd, a peer FIN closes our side too', GUARD, async () => {
  const closed = deferred<CloseReason>();
  const { server, port } = await serve({ onClose: (_c, reason) => closed.resolve(reason) });
  const socket = await client(port, true);
  const all = readAll(socket);
  socket.end();
  await all;
  assert.equal((await closed.promise).kind, 'end');
  await server.close();
});

test('idle timeout: default closes with timeout; onTimeout can re-arm', GUARD, async () => {
  const reasons: CloseReason[] = [];
  const closedDefault = deferred<void>();
  const { server, port } = await serve({ onClose: (_c, r) => (reasons.push(r), closedDefault.resolve()) }, { idleTimeout: 20, timerResolution: 10 });
  const socket = await client(port);
  await readAll(socket);
  await closedDefault.promise;
  assert.deepEqual(reasons.map((r) => [r.kind, r.code]), [['timeout', 'ERR_C1M_IDLE_TIMEOUT']]);
  await server.close();

  let timeouts = 0;
  const closed = deferred<CloseReason>();
  const second = await serve(
    {
      onOpen: (conn) => conn.setTimeout(20),
      onTimeout(conn) {
        timeouts++;
        if (timeouts === 1) conn.setTimeout(20);
        else conn.close();
      },
      onClose: (_c, r) => closed.resolve(r),
    },
    { timerResolution: 10 },
  );
  const socket2 = await client(second.port);
  await readAll(socket2);
  assert.equal((await closed.promise).kind, 'local');
  assert.equal(timeouts, 2);
  await second.server.close();
});

test('connect refused: onClose with connect-failed and ECONNREFUSED, no onOpen', GUARD, async () => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, HOST, resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const closed = deferred<CloseReason>();
  let opens = 0;
  const cli = reactor({ onOpen: () => opens++, onClose: (_c, r) => closed.resolve(r) });
  const conn = cli.connect({ port, host: HOST });
  assert.equal(typeof conn.id, 'number');
  const reason = await closed.promise;
  assert.equal(reason.kind, 'connect-failed');
  assert.equal(reason.code, 'ECONNREFUSED');
  assert.ok(typeof reason.errno === 'number' && reason.errno < 0);
  assert.ok(reason.error instanceof Error);
  assert.equal(opens, 0);
  assert.equal(conn.open, false);
  await cli.close();
});

test('graceful close: queued bytes are flushed before FIN; reactor close() calls onShutdown and ends the rest', GUARD, async () => {
  const payload = randomBytes(1024 * 1024);
  const reasons: CloseReason[] = [];
  let shutdowns = 0;
  let opens = 0;
  const openedTwice = deferred<void>();
  const results: boolean[] = [];
  const { server, port } = await serve({
    onOpen(conn) {
      if (++opens === 2) openedTwice.resolve();
      if (opens === 1) {
        conn.write(payload); // true or false depending on how much the kernel takes at once
        results.push(conn.close(), conn.open, conn.write('late'), conn.close());
      }
    },
    onShutdown: () => shutdowns++,
    onClose: (_c, r) => reasons.push(r),
  });
  const first = await client(port);
  assert.ok((await readAll(first)).equals(payload));
  const second = await client(port);
  const secondDone = readAll(second);
  await openedTwice.promise;
  assert.equal(server.stats.connections, 1);
  await server.close(0);
  await secondDone;
  assert.deepEqual(results, [true, false, false, false]);
  assert.equal(shutdowns, 1);
  assert.deepEqual(reasons.map((r) => r.kind), ['local', 'shutdown']);
  assert.equal(server.stats.connections, 0);
  assert.ok(server.stats.events >= 4);
  assert.throws(() => server.connect({ port, host: HOST }), { code: 'ERR_C1M_REACTOR_CLOSED' });
});

test('no handler reported an unexpected error', () => {
  assert.deepEqual(stray, []);
});
