/**
 * `Reactor.setPollInterval(ms)` (native backend): with ms > 0 the reactor polls from a timer
 * every ms and the kernel's events wake nobody in between; with 0 it polls on readiness again.
 * What must hold: nothing is delivered between two timer polls (a 60 s interval delivers
 * nothing until it is set back to 0), everything that arrived meanwhile comes in the next poll
 * as one batch, every kind of event (accept, connect, data, drain, close) still flows at a short
 * interval, close() works from a handler running in a timer poll, and the timer keeps the
 * process alive exactly when the readiness watch would.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createReactor, type Connection } from '../../src/index.js';
import { nativeAvailable } from '../helpers/backends.js';
import { GUARD, HOST, sleep, waitFor, within } from '../helpers/net.js';

const indexJs = fileURLToPath(new URL('../../src/index.js', import.meta.url));

async function clients(port: number, n: number): Promise<Socket[]> {
  const socks: Socket[] = [];
  for (let i = 0; i < n; i++) socks.push(connect({ port, host: HOST }));
  await Promise.all(socks.map((s) => new Promise((res, rej) => s.once('connect', res).once('error', rej))));
  return socks;
}

const written = (s: Socket, data: string): Promise<void> => new Promise((res, rej) => s.write(data, (err) => (err ? rej(err) : res())));

describe('setPollInterval (native)', { skip: !nativeAvailable && 'native addon unavailable' }, () => {
  test('a 60 s interval delivers nothing; back to 0, what arrived meanwhile comes in one batch', GUARD, async () => {
    let bytes = 0;
    const reactor = createReactor({ onData: (_c, d) => void (bytes += d.length) }, { backend: 'native', timerResolution: 60_000 });
    const { port } = await reactor.listen({ port: 0, host: HOST });
    const socks = await clients(port, 40);
    try {
      await waitFor(() => reactor.stats.connections === 40, '40 accepted');
      reactor.setPollInterval!(60_000);
      // On loopback a finished write is in the receiver's socket: 40 edges wait in epoll.
      await Promise.all(socks.map((s) => written(s, 'x')));
      const batches = reactor.stats.batches;
      await sleep(300);
      assert.equal(bytes, 0, 'no read between two timer polls');
      assert.equal(reactor.stats.batches, batches, 'no crossing between two timer polls');
      reactor.setPollInterval!(0);
      await waitFor(() => bytes === 40, `40 bytes read (have ${bytes})`);
      assert.equal(reactor.stats.batches, batches + 1, 'the 40 reads came in one crossing');
    } finally {
      for (const s of socks) s.destroy();
      await reactor.close(5000);
    }
  });

  test('a burst larger than one batch is taken in consecutive loop turns, not a batch per tick', GUARD, async () => {
    // 2,500 readable connections need 3 polls (1,024 epoll events each). Only the first may wait
    // for the timer: the rest follow in the next turns of the event loop, counted by a
    // setImmediate spinner (a batch per 200 ms tick would leave thousands of turns between).
    const N = 2500;
    let bytes = 0, turns = 0, spinning = true, lastBatch = -1, lastTurns = 0;
    const gaps: number[] = [];
    const reactor = createReactor({
      onData: (_c, d) => {
        bytes += d.length;
        const b = reactor.stats.batches;
        if (b !== lastBatch) {
          if (lastBatch >= 0) gaps.push(turns - lastTurns);
          lastBatch = b;
          lastTurns = turns;
        }
      },
    }, { backend: 'native' });
    const { port } = await reactor.listen({ port: 0, host: HOST });
    const socks = await clients(port, N);
    const spin = (): void => {
      turns++;
      if (spinning) setImmediate(spin);
    };
    try {
      await waitFor(() => reactor.stats.connections === N, `${N} accepted`);
      reactor.setPollInterval!(60_000);
      await Promise.all(socks.map((s) => written(s, 'x'))); // all N edges wait in epoll
      spin();
      reactor.setPollInterval!(200);
      await waitFor(() => bytes === N, `${N} bytes read (have ${bytes})`);
      assert.ok(gaps.length >= 2, `the burst took ${gaps.length + 1} batches, expected at least 3`);
      assert.ok(gaps.every((g) => g <= 3), `loop turns between the burst's batches: ${gaps.join(', ')}`);
    } finally {
      spinning = false;
      for (const s of socks) s.destroy();
      await reactor.close(5000);
    }
  });

  test('at a short interval accepts, connects, data, drain and closes all flow', GUARD, async () => {
    const N = 50;
    const server = createReactor({ onData: (c, d) => void c.write(d) }, { backend: 'native' });
    const { port } = await server.listen({ port: 0, host: HOST });
    server.setPollInterval!(3);
    let opened = 0, echoed = 0, closed = 0, drains = 0;
    const big = Buffer.alloc(4 << 20, 7); // past the kernel's buffers: the write must wait for drain
    let bigConn: Connection | undefined, bigBack = 0;
    const client = createReactor({
      onOpen: () => void opened++,
      onData: (c, d) => {
        if (c.id === bigConn?.id) bigBack += d.length;
        else echoed += d.length;
      },
      onDrain: () => void drains++,
      onClose: () => void closed++,
    }, { backend: 'native' });
    client.setPollInterval!(3);
    try {
      const conns = Array.from({ length: N }, () => client.connect({ host: HOST, port }));
      await waitFor(() => opened === N, `${N} connected (have ${opened})`);
      await waitFor(() => server.stats.connections === N, `${N} accepted`);
      for (const c of conns) c.write('ping');
      await waitFor(() => echoed === 4 * N, `echoes (have ${echoed} of ${4 * N} bytes)`);
      bigConn = conns[0]!;
      bigConn.write(big);
      await waitFor(() => bigBack === big.length, `4 MiB echoed (have ${bigBack})`);
      assert.ok(drains >= 1, 'the 4 MiB write drained through a timer poll');
      for (const c of conns) c.close();
      await waitFor(() => closed === N && server.stats.connections === 0, `closes (client ${closed}, server open ${server.stats.connections})`);
    } finally {
      await client.close(5000);
      await server.close(5000);
    }
  });

  test('close() from a handler that runs in a timer poll', GUARD, async () => {
    let reactorClosed: Promise<void> | undefined;
    const reactor = createReactor({
      onData: () => {
        reactorClosed ??= reactor.close(5000);
      },
    }, { backend: 'native' });
    const { port } = await reactor.listen({ port: 0, host: HOST });
    const [s] = await clients(port, 1);
    // Listen for the peer's close before anything can close it (it may come before close() resolves).
    const peerClosed = new Promise((res) => s!.once('close', res).resume());
    await waitFor(() => reactor.stats.connections === 1, 'accepted');
    reactor.setPollInterval!(2);
    s!.write('bye');
    await waitFor(() => reactorClosed !== undefined, 'onData ran');
    await within(reactorClosed!, 'close() from a timer poll');
    await within(peerClosed, 'the peer sees the connection closed');
    assert.throws(() => reactor.setPollInterval!(1), { code: 'ERR_C1M_REACTOR_CLOSED' });
  });

  test('bad intervals are refused', GUARD, async () => {
    const reactor = createReactor({}, { backend: 'native' });
    try {
      for (const bad of [-1, 1.5, 60_001, Number.NaN]) {
        assert.throws(() => reactor.setPollInterval!(bad), { code: 'ERR_C1M_INVALID_OPTION' }, String(bad));
      }
    } finally {
      await reactor.close(1000);
    }
  });

  test('the timer keeps the process alive exactly when there is something to serve', GUARD, () => {
    // An idle reactor polling from a timer lets the process exit; one serving a connection
    // keeps it alive until the connection is done, then lets it exit.
    const script = `
      import { createReactor } from ${JSON.stringify(indexJs)};
      import { connect } from 'node:net';
      const idle = createReactor({}, { backend: 'native' });
      idle.setPollInterval(5);
      const server = createReactor({ onData: (c, d) => { c.write(d); c.close(); } }, { backend: 'native' });
      const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
      server.setPollInterval(5);
      const s = connect({ port, host: '127.0.0.1' }, () => s.write('echo'));
      s.setEncoding('utf8');
      s.on('data', (d) => process.stdout.write(d));
      s.on('close', () => { s.unref(); server.close(1000).then(() => process.stdout.write(' closed')); });
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.error, undefined, `the process did not exit by itself: ${r.error?.message}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'echo closed');
  });
});
