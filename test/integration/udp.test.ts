/**
 * UDP on every backend, with node:dgram as the peer: echo of many datagrams in one batch, batches
 * larger than the receive area, empty and truncated datagrams, IPv6, connected sockets and ICMP
 * errors, handler errors, SO_REUSEPORT over two reactors, close. The EAGAIN path (bounded send
 * queue, drain, drops) needs a slow link: see udp-backpressure.test.ts.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { createReactor, udp, type Reactor, type UdpAddress, type UdpHandler, type UdpSocket } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, payload, waitFor } from '../helpers/net.js';

/** A node:dgram peer that collects what it receives. */
interface Peer {
  sock: Socket;
  port: number;
  got: { data: Buffer; port: number; address: string }[];
  send(data: Uint8Array, port: number, host?: string): void;
  close(): void;
}

async function peer(type: 'udp4' | 'udp6' = 'udp4', host = type === 'udp4' ? '127.0.0.1' : '::1'): Promise<Peer> {
  const sock = createSocket({ type, recvBufferSize: 4 << 20 });
  const got: Peer['got'] = [];
  sock.on('message', (data, rinfo) => got.push({ data, port: rinfo.port, address: rinfo.address }));
  await new Promise<void>((resolve) => sock.bind(0, host, resolve));
  return {
    sock,
    port: sock.address().port,
    got,
    send: (data, port, to = host) => sock.send(data, port, to),
    close: () => sock.close(),
  };
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(resolve));
  return port;
}

/** Datagram i of a test: its index in the first 4 bytes, then a pattern. */
function datagram(i: number, size: number): Buffer {
  const b = payload(Math.max(size, 4), i + 1);
  b.writeUInt32BE(i, 0);
  return size < 4 ? b.subarray(0, size) : b;
}

for (const backend of backends) {
  describe(`udp (${backend})`, () => {
    let reactor: Reactor;
    const errors: Error[] = [];
    before(() => {
      reactor = createReactor({}, { backend, onError: (err) => void errors.push(err) });
    });
    after(() => reactor?.close(1000));

    test('echoes 64 datagrams sent at once, every byte verified, in one batch', GUARD, async () => {
      const batches: number[] = [];
      const sock = await reactor.udp({ host: '127.0.0.1', recvBufferSize: 4 << 20 }, {
        onMessages(s, batch) {
          batches.push(batch.length);
          for (let i = 0; i < batch.length; i++) s.send(batch.from(i), batch.data(i));
        },
      });
      const p = await peer();
      const sent = Array.from({ length: 64 }, (_, i) => datagram(i, 4 + ((i * 97) % 1400)));
      for (const d of sent) p.send(d, sock.address.port); // one tick: all queued before the reactor polls
      await waitFor(() => p.got.length === 64, '64 echoes');
      const byIndex = new Map(p.got.map((g) => [g.data.readUInt32BE(0), g.data]));
      for (let i = 0; i < 64; i++) assert.deepEqual(byIndex.get(i), sent[i], `datagram ${i}`);
      assert.ok(p.got.every((g) => g.port === sock.address.port), 'echoes come from the bound port');
      if (backend === 'native') assert.deepEqual(batches, [64], 'one recvmmsg batch, one crossing');
      assert.equal(sock.stats.received, 64);
      await waitFor(() => sock.stats.sent === 64, 'sent counter');
      assert.equal(sock.stats.drops, 0);
      sock.close();
      p.close();
    });

    test('onMessage: data and a reusable from; send(from) answers; from.copy() stays valid', GUARD, async () => {
      const froms = new Set<UdpAddress>();
      const kept: UdpAddress[] = [];
      const sock = await reactor.udp({ host: '127.0.0.1' }, {
        onMessage(s, data, from) {
          froms.add(from);
          kept.push(from.copy());
          assert.equal(from.family, 'IPv4');
          assert.equal(from.address, '127.0.0.1');
          s.send(from, Buffer.concat([Buffer.from('re:'), data]));
        },
      });
      const p = await peer();
      for (let i = 0; i < 10; i++) p.send(Buffer.from(`m${i}`), sock.address.port);
      await waitFor(() => p.got.length === 10, '10 answers');
      assert.deepEqual(p.got.map((g) => g.data.toString()).sort(), Array.from({ length: 10 }, (_, i) => `re:m${i}`).sort());
      if (backend === 'native') assert.equal(froms.size, 1, 'one from object for every datagram');
      assert.ok(kept.every((a) => a.port === p.port && a.address === '127.0.0.1'));
      // a kept address and a plain { address, port } are destinations too
      sock.send(kept[0]!, 'kept');
      sock.send({ address: '127.0.0.1', port: p.port }, 'plain');
      await waitFor(() => p.got.length === 12, 'two more');
      assert.deepEqual(p.got.slice(10).map((g) => g.data.toString()).sort(), ['kept', 'plain']);
      sock.close();
      p.close();
    });

    test('a batch larger than the receive area: the rest waits for the next poll, nothing lost', GUARD, async () => {
      const batches: number[] = [];
      const got = new Map<number, Buffer>();
      const sock = await reactor.udp({ host: '127.0.0.1', recvBufferSize: 8 << 20 }, {
        onMessages(_s, batch) {
          batches.push(batch.length);
          for (let i = 0; i < batch.length; i++) {
            const d = batch.data(i);
            got.set(d.readUInt32BE(0), Buffer.from(d));
          }
        },
      });
      const p = await peer();
      // 48 x 60,000 B = 2.9 MB: more than the native receive area (2 MiB) holds
      const sent = Array.from({ length: 48 }, (_, i) => datagram(i, 60_000));
      for (const d of sent) p.send(d, sock.address.port);
      await waitFor(() => got.size === 48, '48 datagrams');
      for (let i = 0; i < 48; i++) assert.ok(got.get(i)?.equals(sent[i]!), `datagram ${i} intact`);
      assert.equal(batches.reduce((a, b) => a + b, 0), 48);
      if (backend === 'native') assert.ok(batches.length >= 2 && batches[0]! < 48, `split over polls: ${batches.join(',')}`);
      sock.close();
      p.close();
    });

    test('runs of equal-size datagrams to one peer: every datagram arrives intact and in order (GSO on native)', GUARD, async () => {
      const p = await peer();
      const sock = await reactor.udp({ host: '127.0.0.1' }, {});
      const plain = await reactor.udp({ host: '127.0.0.1', gso: false }, {});
      // 150 x 1000 B, then a shorter one, then 3 x 700 B, then an empty one, to one destination
      const sizes = [...Array(150).fill(1000), 333, 700, 700, 700, 0];
      const to = { address: '127.0.0.1', port: p.port };
      const sent = sizes.map((n, i) => (n === 0 ? Buffer.alloc(0) : datagram(i, n)));
      for (const d of sent) sock.send(to, d);
      await waitFor(() => p.got.length === sent.length, `${sent.length} datagrams`);
      assert.deepEqual(p.got.map((g) => g.data), sent, 'same datagrams, same order');
      assert.equal(sock.stats.sent, sent.length);
      if (backend === 'native') assert.ok(sock.stats.gsoSent >= 150, `GSO runs used: ${sock.stats.gsoSent}`);
      for (const d of sent.slice(0, 10)) plain.send(to, d);
      await waitFor(() => p.got.length === sent.length + 10, 'ten more without GSO');
      assert.equal(plain.stats.gsoSent, 0);
      sock.close();
      plain.close();
      p.close();
    });

    test('GSO runs into a GRO receiver: one datagram per record, intact and in order', GUARD, async () => {
      const got: Buffer[][] = [[], []];
      const receivers = [
        await reactor.udp({ host: '127.0.0.1', recvBufferSize: 4 << 20 }, { onMessage: (_s, d) => void got[0]!.push(Buffer.from(d)) }),
        await reactor.udp({ host: '127.0.0.1', recvBufferSize: 4 << 20, gro: false }, { onMessages: (_s, b) => { for (let i = 0; i < b.length; i++) got[1]!.push(Buffer.from(b.data(i))); } }),
      ];
      const sender = await reactor.udp({ host: '127.0.0.1' }, {});
      const sizes = [...Array(100).fill(1200), 77, ...Array(40).fill(500), 1];
      const sent = sizes.map((n, i) => datagram(i, Math.max(n, 4)).subarray(0, n));
      for (const r of receivers) for (const d of sent) sender.send({ address: '127.0.0.1', port: r.address.port }, d);
      await waitFor(() => got[0]!.length === sent.length && got[1]!.length === sent.length, 'every datagram at both receivers');
      assert.deepEqual(got[0], sent);
      assert.deepEqual(got[1], sent);
      assert.equal(receivers[0]!.stats.received, sent.length);
      if (backend === 'native') {
        assert.ok(receivers[0]!.stats.groReceived > 0, `GRO used: ${receivers[0]!.stats.groReceived}`);
        assert.equal(receivers[1]!.stats.groReceived, 0);
      }
      for (const s of [...receivers, sender]) s.close();
    });

    test('zero-length datagrams are delivered and echoed', GUARD, async () => {
      const lengths: number[] = [];
      const sock = await reactor.udp({ host: '127.0.0.1' }, {
        onMessage(s, data, from) {
          lengths.push(data.length);
          s.send(from, data);
        },
      });
      const p = await peer();
      for (let i = 0; i < 5; i++) p.send(Buffer.alloc(0), sock.address.port);
      await waitFor(() => p.got.length === 5, '5 empty echoes');
      assert.deepEqual(lengths, [0, 0, 0, 0, 0]);
      assert.ok(p.got.every((g) => g.data.length === 0));
      sock.close();
      p.close();
    });

    test('datagrams longer than maxMessageSize are flagged, never delivered as whole', GUARD, async () => {
      const delivered: number[] = [];
      const errs: (Error & { code?: string; size?: number })[] = [];
      const sock = await reactor.udp({ host: '127.0.0.1', maxMessageSize: 100 }, {
        onMessage: (_s, data) => void delivered.push(data.length),
        onError: (_s, err) => void errs.push(err),
      });
      const flags: [number, number, boolean][] = [];
      const batchSock = await reactor.udp({ host: '127.0.0.1', maxMessageSize: 100 }, {
        onMessages(_s, b) {
          for (let i = 0; i < b.length; i++) flags.push([b.data(i).length, b.size(i), b.truncated(i)]);
        },
      });
      const p = await peer();
      for (const n of [50, 100, 101, 5000]) {
        p.send(Buffer.alloc(n, 7), sock.address.port);
        p.send(Buffer.alloc(n, 7), batchSock.address.port);
      }
      await waitFor(() => delivered.length + errs.length === 4 && flags.length === 4, 'four datagrams each');
      assert.deepEqual(delivered, [50, 100]);
      assert.deepEqual(errs.map((e) => [e.code, e.size]), [['ERR_C1M_UDP_TRUNCATED', 101], ['ERR_C1M_UDP_TRUNCATED', 5000]]);
      assert.equal(sock.stats.truncated, 2);
      assert.deepEqual(flags, [[50, 50, false], [100, 100, false], [100, 101, true], [100, 5000, true]]);
      sock.close();
      batchSock.close();
      p.close();
    });

    test('IPv6 (::1): echo, from is IPv6', GUARD, async () => {
      const families: string[] = [];
      const sock = await reactor.udp({ host: '::1' }, {
        onMessage(s, data, from) {
          families.push(`${from.family} ${from.address}`);
          s.send(from, data);
        },
      });
      assert.equal(sock.address.family, 'IPv6');
      const p = await peer('udp6');
      for (let i = 0; i < 8; i++) p.send(datagram(i, 200), sock.address.port);
      await waitFor(() => p.got.length === 8, '8 echoes over IPv6');
      assert.ok(p.got.every((g) => g.address === '::1' && g.port === sock.address.port));
      assert.deepEqual(new Set(families), new Set(['IPv6 ::1']));
      sock.close();
      p.close();
    });

    test('connected socket: send(data) reaches the peer; ICMP port unreachable is ECONNREFUSED in onError', GUARD, async () => {
      const errs: (Error & { code?: string })[] = [];
      const got: string[] = [];
      const sock = await reactor.udp({ host: '127.0.0.1' }, {
        onMessage: (_s, data) => void got.push(data.toString()),
        onError: (_s, err) => void errs.push(err),
      });
      assert.throws(() => sock.send('x'), { code: 'ERR_C1M_UDP_NOT_CONNECTED' });
      const p = await peer();
      await sock.connect('127.0.0.1', p.port);
      assert.deepEqual(sock.remoteAddress, { address: '127.0.0.1', port: p.port });
      sock.send('hello');
      await waitFor(() => p.got.length === 1, 'datagram to the connected peer');
      assert.equal(p.got[0]!.data.toString(), 'hello');
      p.send(Buffer.from('back'), sock.address.port);
      await waitFor(() => got.length === 1, 'datagram from the peer');
      // now a peer that is gone
      const port = await closedPort();
      await sock.connect('127.0.0.1', port);
      sock.send('anyone?');
      await waitFor(() => errs.length > 0, 'ECONNREFUSED');
      assert.equal(errs[0]!.code, 'ECONNREFUSED');
      assert.ok(sock.open, 'the socket stays open');
      sock.disconnect();
      assert.equal(sock.remoteAddress, undefined);
      sock.close();
      p.close();
    });

    test('a handler exception goes to onError; the rest of the datagrams are delivered', GUARD, async () => {
      const got: string[] = [];
      const errs: Error[] = [];
      const sock = await reactor.udp({ host: '127.0.0.1' }, {
        onMessage(_s, data) {
          if (data.toString() === 'bad') throw new Error('boom');
          got.push(data.toString());
        },
        onError: (_s, err) => void errs.push(err),
      });
      const p = await peer();
      for (const m of ['a', 'bad', 'b']) p.send(Buffer.from(m), sock.address.port);
      await waitFor(() => got.length === 2 && errs.length === 1, 'two datagrams and one error');
      assert.deepEqual(got, ['a', 'b']);
      assert.equal(errs[0]!.message, 'boom');
      assert.ok(sock.open);
      sock.close();
      p.close();
    });

    test('misuse throws at the call: bad options, bad destinations, oversized datagrams', GUARD, async () => {
      await assert.rejects(reactor.udp({ port: 70000 }, {}), { code: 'ERR_C1M_INVALID_OPTION' });
      await assert.rejects(reactor.udp({ host: 'localhost' }, {}), { code: 'ERR_C1M_INVALID_OPTION' });
      await assert.rejects(reactor.udp({ maxMessageSize: 0 }, {}), { code: 'ERR_C1M_INVALID_OPTION' });
      const sock = await reactor.udp({ host: '127.0.0.1' }, {});
      assert.throws(() => sock.send({ address: 'example.com', port: 1 }, 'x'), { code: 'ERR_C1M_INVALID_OPTION' });
      assert.throws(() => sock.send({ address: '127.0.0.1', port: 0 }, 'x'), { code: 'ERR_C1M_INVALID_OPTION' });
      assert.throws(() => sock.send({ address: '127.0.0.1', port: 9 }, Buffer.alloc(65_528)), { code: 'ERR_C1M_UDP_MESSAGE_SIZE' });
      const taken = sock.address.port;
      await assert.rejects(reactor.udp({ host: '127.0.0.1', port: taken }, {}), { code: 'EADDRINUSE' });
      sock.close();
      assert.equal(sock.open, false);
      assert.equal(sock.send({ address: '127.0.0.1', port: 9 }, 'x'), false, 'send on a closed socket');
    });

    test('multicast membership: join and leave a group on the loopback interface', GUARD, async () => {
      const sock = await reactor.udp({ host: '0.0.0.0' }, {});
      sock.addMembership('239.255.0.1', '127.0.0.1');
      sock.dropMembership('239.255.0.1', '127.0.0.1');
      assert.throws(() => sock.dropMembership('239.255.0.1', '127.0.0.1'), (err: Error & { code?: string }) => err.code === 'EADDRNOTAVAIL');
      sock.close();
    });

    test('udp() helper: a reactor of its own; close() closes the socket', GUARD, async () => {
      const srv = await udp({ onMessage: (s, d, f) => void s.send(f, d) }, { backend, host: '127.0.0.1' });
      assert.equal(srv.reactor.backend, backend);
      const p = await peer();
      p.send(Buffer.from('ping'), srv.socket.address.port);
      await waitFor(() => p.got.length === 1, 'echo');
      await srv.close(1000);
      assert.equal(srv.socket.open, false);
      p.close();
    });

    if (backend === 'native') {
      test('SO_REUSEPORT: two reactors, each with a socket on the port, both receive', GUARD, async () => {
        const counts = [0, 0];
        const reactors = [createReactor({}, { backend }), createReactor({}, { backend })];
        const socks: UdpSocket[] = [];
        const handler = (n: number): UdpHandler => ({ onMessage: (s, d, f) => { counts[n]!++; s.send(f, d); } });
        socks.push(await reactors[0]!.udp({ host: '127.0.0.1', reusePort: true }, handler(0)));
        const port = socks[0]!.address.port;
        socks.push(await reactors[1]!.udp({ host: '127.0.0.1', port, reusePort: true }, handler(1)));
        // 64 flows (source ports): the kernel hashes each to one socket
        const peers = await Promise.all(Array.from({ length: 64 }, () => peer()));
        for (const p of peers) p.send(Buffer.from('flow'), port);
        await waitFor(() => peers.every((p) => p.got.length === 1), 'an echo per flow');
        assert.equal(counts[0]! + counts[1]!, 64);
        assert.ok(counts[0]! > 0 && counts[1]! > 0, `both reactors receive: ${counts.join(' / ')}`);
        for (const p of peers) p.close();
        await Promise.all(reactors.map((r) => r.close(1000)));
      });
    }

    test('nothing reported to the reactor onError by the tests above', () => {
      assert.deepEqual(errors.map((e) => e.message), []);
    });
  });
}
