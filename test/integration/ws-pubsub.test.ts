/**
 * Topics on the WebSocket server, on every backend, with real clients: publish reaches exactly
 * the subscribers (text and binary), unsubscribe, a close frame and a closed connection stop
 * deliveries, onTopicInterest fires on the first and the last subscriber only, a closed fd
 * reused by a new connection never receives the old connection's messages, slow subscribers
 * are closed with 1013 or skipped per policy while the others keep receiving, and
 * `compress` sends one compressed frame to the clients that negotiated permessage-deflate and
 * the plain one to the rest. Plus the TopicTable under a plain TCP handler.
 *
 * "Nothing more arrived" is checked in order, never by waiting: every client is also
 * subscribed to a topic of its own, and a message published there after the others arrives
 * after them on the same connection.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { constants as zc, inflateRawSync } from 'node:zlib';
import WsClient from 'ws';
import {
  TopicTable,
  WebSocketClient,
  createWebSocketHandler,
  type Handler,
  type WebSocket,
  type WebSocketHandler,
  type WebSocketServerOptions,
} from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { parseFrames, type Frame } from '../helpers/ws-frames.js';
import { GUARD, HOST, rawClient, startServer, waitFor, type RawClient, type TestServer } from '../helpers/net.js';

const TWO32 = 2 ** 32;
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

interface Ctx {
  handler: WebSocketHandler;
  srv: TestServer;
  url: string;
  /** Server-side handles by client name (from the client's `hello:<name>`). */
  sockets: Map<string, WebSocket>;
  closes: { name: string; code: number }[];
  interest: string[];
}

async function server(backend: (typeof backends)[number], opts: WebSocketServerOptions<string> = {}): Promise<Ctx> {
  const sockets = new Map<string, WebSocket>();
  const closes: Ctx['closes'] = [];
  const interest: string[] = [];
  const handler = createWebSocketHandler<string>({
    onTopicInterest: (topic, active) => interest.push(`${active ? '+' : '-'}${topic}`),
    ...opts,
    onMessage(ws, data) {
      const text = data.toString();
      if (text.startsWith('hello:')) {
        const name = text.slice(6);
        ws.data = name;
        ws.subscribe(`me:${name}`);
        sockets.set(name, ws);
      }
    },
    onClose(ws, code) {
      closes.push({ name: ws.data, code });
    },
  });
  const srv = await startServer(backend, handler, { timerResolution: 20 });
  return { handler, srv, url: `ws://${HOST}:${srv.port}/`, sockets, closes, interest };
}

interface Client {
  name: string;
  ws: WsClient;
  got: string[];
}

async function client(ctx: Ctx, name: string, options: WsClient.ClientOptions = {}): Promise<Client> {
  const ws = new WsClient(ctx.url, { perMessageDeflate: false, ...options });
  const got: string[] = [];
  ws.on('message', (data, isBinary) => got.push(`${isBinary ? 'b' : 't'}:${data.toString()}`));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send(`hello:${name}`);
  await waitFor(() => ctx.sockets.has(name), `server handle of ${name}`);
  return { name, ws, got };
}

/** Publish a marker on each client's own topic and wait for it: everything before it has arrived. */
async function sync(ctx: Ctx, clients: Client[], mark = 'sync'): Promise<void> {
  for (const c of clients) assert.equal(ctx.handler.publish(`me:${c.name}`, mark), 1, `me:${c.name}`);
  await waitFor(() => clients.every((c) => c.got.at(-1) === `t:${mark}`), `${mark} at every client`);
  for (const c of clients) c.got.pop();
}

type RawWs = RawClient & { frames(): Frame[] };

/** A raw client past the handshake (offering `extensions`), its frames parsed on demand. */
async function rawWs(ctx: Ctx, name: string, extensions?: string): Promise<RawWs> {
  const c = await rawClient(ctx.srv.port);
  await c.send(
    'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
      (extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) + '\r\n',
  );
  await waitFor(() => c.bytes().includes('\r\n\r\n') || c.closed, 'response head');
  assert.match(c.bytes().toString('latin1'), /^HTTP\/1.1 101/);
  // A masked text frame: hello:<name>.
  const payload = Buffer.from(`hello:${name}`);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!));
  await c.send(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
  await waitFor(() => ctx.sockets.has(name), `server handle of ${name}`);
  return Object.assign(c, {
    frames(): Frame[] {
      const b = c.bytes();
      return parseFrames(b.subarray(b.indexOf('\r\n\r\n') + 4));
    },
  });
}

/**
 * Arrange for the next connection this process opens to the server to be accepted on `fd`
 * (free now): client and server share this process's fd table and each new fd is the lowest
 * free one, so fill every free fd below `fd` but one (the client's socket takes that one, the
 * accept takes `fd`). Returns the cleanup, or null when it cannot be arranged.
 */
function arrangeAcceptOn(fd: number): (() => void) | null {
  const held: number[] = [];
  for (;;) {
    const d = openSync('/dev/null', 'r');
    if (d < fd) {
      held.push(d);
      continue;
    }
    closeSync(d);
    if (d !== fd || held.length === 0) {
      for (const h of held) closeSync(h);
      return null;
    }
    closeSync(held.pop()!);
    return () => {
      for (const h of held) closeSync(h);
    };
  }
}

function inflated(data: Buffer): Buffer {
  return inflateRawSync(Buffer.concat([data, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zc.Z_SYNC_FLUSH });
}

for (const backend of backends) {
  describe(`websocket pub/sub (${backend})`, () => {
    const open: Ctx[] = [];
    after(async () => {
      for (const ctx of open) await ctx.srv.reactor.close(1000);
    });
    const start = async (opts: WebSocketServerOptions<string> = {}): Promise<Ctx> => {
      const ctx = await server(backend, opts);
      open.push(ctx);
      return ctx;
    };

    test('publish reaches exactly the subscribers; unsubscribe and close stop deliveries', GUARD, async () => {
      const ctx = await start();
      const cs = [];
      for (const name of ['c0', 'c1', 'c2', 'c3', 'c4']) cs.push(await client(ctx, name));
      const s = (i: number): WebSocket => ctx.sockets.get(`c${i}`)!;
      for (const i of [0, 1, 2]) assert.equal(s(i).subscribe('a'), true);
      assert.equal(s(0).subscribe('a'), false, 'already subscribed');
      for (const i of [2, 3]) s(i).subscribe('b');
      assert.equal(s(2).isSubscribed('b'), true);
      assert.equal(s(4).isSubscribed('a'), false);
      assert.deepEqual(s(2).getTopics().sort(), ['a', 'b', 'me:c2']);
      assert.equal(ctx.handler.subscriberCount('a'), 3);
      assert.equal(ctx.handler.publish('a', 'to a'), 3);
      assert.equal(ctx.handler.publish('b', Buffer.from('to b')), 2);
      assert.equal(ctx.handler.publish('b', 'text as binary', { binary: true }), 2);
      assert.equal(ctx.handler.publish('nobody', 'x'), 0);
      await sync(ctx, cs);
      assert.deepEqual(cs.map((c) => c.got.splice(0)), [['t:to a'], ['t:to a'], ['t:to a', 'b:to b', 'b:text as binary'], ['b:to b', 'b:text as binary'], []]);

      // Unsubscribe: c1 leaves a.
      assert.equal(s(1).unsubscribe('a'), true);
      assert.equal(s(1).unsubscribe('a'), false);
      assert.equal(ctx.handler.publish('a', 'second'), 2);
      // Our close frame: c0 leaves its topics at once, before the close completes.
      s(0).close(1000);
      assert.equal(s(0).isSubscribed('a'), false);
      assert.equal(s(0).subscribe('a'), false, 'not open: nothing to subscribe');
      assert.equal(ctx.handler.publish('a', 'third'), 1);
      // The peer closes: c2's subscriptions go with its close frame or its connection.
      cs[2]!.ws.close(1000);
      await waitFor(() => ctx.closes.some((c) => c.name === 'c2'), 'c2 closed');
      assert.equal(ctx.handler.publish('a', 'fourth'), 0);
      assert.equal(ctx.handler.publish('b', 'fourth'), 1);
      await sync(ctx, [cs[1]!, cs[3]!]);
      assert.deepEqual(cs[0]!.got, ['t:second'], 'c0: nothing after our close frame');
      assert.deepEqual(cs[1]!.got, []);
      assert.deepEqual(cs[2]!.got.slice(-1), ['t:third']);
      assert.deepEqual(cs[3]!.got, ['t:fourth']);
      const stats = ctx.handler.pubsubStats;
      assert.equal(stats.deliveries, 3 + 2 + 2 + 5 + 2 + 1 + 1 + 2);
      assert.equal(stats.drops, 0);
      assert.equal(stats.slowClosed, 0);
      for (const c of cs) c.ws.terminate();
      await waitFor(() => ctx.handler.clients === 0, 'all closed');
      assert.equal(ctx.handler.pubsubStats.subscriptions, 0);
      assert.equal(ctx.handler.pubsubStats.topics, 0);
    });

    test('onTopicInterest fires on the first subscriber and after the last one left', GUARD, async () => {
      const ctx = await start();
      const a = await client(ctx, 'a');
      const b = await client(ctx, 'b');
      ctx.interest.splice(0);
      const sa = ctx.sockets.get('a')!, sb = ctx.sockets.get('b')!;
      sa.subscribe('room');
      assert.deepEqual(ctx.interest, ['+room']);
      sb.subscribe('room');
      sa.subscribe('room');
      assert.deepEqual(ctx.interest, ['+room']);
      sa.unsubscribe('room');
      assert.deepEqual(ctx.interest, ['+room']);
      sb.subscribe('other');
      b.ws.terminate();
      await waitFor(() => ctx.interest.length === 5, 'interest after close');
      assert.deepEqual(ctx.interest.slice(0, 2), ['+room', '+other']);
      assert.deepEqual(ctx.interest.slice(2).sort(), ['-me:b', '-other', '-room']);
      a.ws.terminate();
      await waitFor(() => ctx.interest.includes('-me:a'), 'a left');
      assert.equal(ctx.handler.pubsubStats.topics, 0);
    });

    test('topic errors and limits throw from subscribe', GUARD, async () => {
      const ctx = await start({ pubsub: { maxTopicsPerConnection: 3, maxTopics: 4, maxTopicLength: 10 } });
      const a = await client(ctx, 'a');
      const sa = ctx.sockets.get('a')!;
      assert.throws(() => sa.subscribe('x'.repeat(11)), { code: 'ERR_C1M_PUBSUB_TOPIC' });
      assert.throws(() => sa.subscribe('bad\n'), { code: 'ERR_C1M_PUBSUB_TOPIC' });
      sa.subscribe('t1');
      sa.subscribe('t2');
      assert.throws(() => sa.subscribe('t3'), { code: 'ERR_C1M_PUBSUB_LIMIT' });
      a.ws.terminate();
      assert.throws(() => createWebSocketHandler({ pubsub: { slowSubscriber: 'wait' as 'drop' } }), { code: 'ERR_C1M_INVALID_OPTION', message: /pubsub.slowSubscriber/ });
      assert.throws(() => createWebSocketHandler({ pubsub: { maxTopics: -1 } }), { code: 'ERR_C1M_INVALID_OPTION', message: /pubsub.maxTopics/ });
      assert.throws(() => createWebSocketHandler({ onTopicInterest: 1 as unknown as () => void }), { code: 'ERR_C1M_INVALID_OPTION' });
    });

    test('a closed fd reused by a new connection never gets the old subscription', GUARD, async () => {
      const ctx = await start();
      const old = await client(ctx, 'old');
      const oldId = ctx.sockets.get('old')!.id;
      ctx.sockets.get('old')!.subscribe('t');
      old.ws.terminate();
      await waitFor(() => ctx.closes.some((c) => c.name === 'old'), 'old closed');
      await waitFor(() => old.ws.readyState === WsClient.CLOSED, 'old client closed');
      const release = backend === 'native' ? arrangeAcceptOn(oldId % TWO32) : null;
      const fresh: Client[] = [];
      try {
        fresh.push(await client(ctx, 'new'));
      } finally {
        release?.();
      }
      fresh.push(await client(ctx, 'other'));
      if (release !== null) assert.equal(ctx.sockets.get('new')!.id % TWO32, oldId % TWO32, 'the fd was reused');
      assert.notEqual(ctx.sockets.get('new')!.id, oldId);
      assert.equal(ctx.handler.subscriberCount('t'), 0);
      assert.equal(ctx.handler.publish('t', 'old news'), 0);
      await sync(ctx, fresh);
      for (const c of fresh) assert.deepEqual(c.got, []);
      for (const c of fresh) c.ws.terminate();
    });

    test("slow subscriber: 'close' closes it with 1013, the others keep receiving", GUARD, async () => {
      const ctx = await start({ pubsub: { maxBufferedBytes: 64 * 1024 } });
      const fast = await client(ctx, 'fast');
      const slow = await rawWs(ctx, 'slow');
      slow.socket.pause();
      ctx.sockets.get('fast')!.subscribe('feed');
      ctx.sockets.get('slow')!.subscribe('feed');
      const chunk = 'x'.repeat(32 * 1024);
      let published = 0;
      // Loopback socket buffers take megabytes before the server buffers anything.
      while (ctx.handler.pubsubStats.slowClosed === 0 && published < 2000) {
        ctx.handler.publish('feed', chunk);
        published++;
        await new Promise((r) => setImmediate(r));
      }
      assert.equal(ctx.handler.pubsubStats.slowClosed, 1);
      assert.equal(ctx.sockets.get('slow')!.readyState, 'closing');
      assert.equal(ctx.handler.subscriberCount('feed'), 1);
      assert.equal(ctx.handler.publish('feed', 'after'), 1);
      await waitFor(() => fast.got.length === published + 1, 'fast got everything');
      assert.equal(fast.got.at(-1), 't:after');
      slow.socket.resume();
      await waitFor(() => slow.frames().some((f) => f.opcode === 8), 'close frame');
      const frames = slow.frames();
      const close = frames.find((f) => f.opcode === 8)!;
      assert.equal(close.payload.readUInt16BE(0), 1013);
      const data = frames.filter((f) => f.opcode === 1);
      assert.ok(data.length < published, 'the slow client missed messages');
      assert.ok(data.every((f) => f.payload.length === chunk.length), 'no message after the close frame');
      assert.equal(frames.at(-1)!.opcode, 8);
      slow.destroy();
      fast.ws.terminate();
    });

    test("slow subscriber: 'drop' skips it while past the limit and keeps it", GUARD, async () => {
      const ctx = await start({ pubsub: { maxBufferedBytes: 64 * 1024, slowSubscriber: 'drop' } });
      const slow = await rawWs(ctx, 'slow');
      slow.socket.pause();
      ctx.sockets.get('slow')!.subscribe('feed');
      const chunk = 'y'.repeat(32 * 1024);
      let published = 0;
      while (ctx.handler.pubsubStats.drops < 3 && published < 2000) {
        ctx.handler.publish('feed', chunk);
        published++;
        await new Promise((r) => setImmediate(r));
      }
      const { drops, slowClosed, deliveries } = ctx.handler.pubsubStats;
      assert.equal(drops, 3);
      assert.equal(slowClosed, 0);
      assert.equal(deliveries + drops, published);
      assert.equal(ctx.sockets.get('slow')!.readyState, 'open');
      slow.socket.resume();
      await waitFor(() => slow.frames().length === deliveries, 'the queued messages');
      assert.equal(ctx.handler.publish('feed', 'end'), 1, 'delivered again once drained');
      await waitFor(() => slow.frames().length === deliveries + 1, 'end');
      assert.equal(slow.frames().at(-1)!.payload.toString(), 'end');
      slow.destroy();
    });

    test('slow subscriber: one already behind gains at most one message past the limit in a burst', GUARD, async () => {
      const max = 64 * 1024;
      const ctx = await start({ pubsub: { maxBufferedBytes: max, slowSubscriber: 'drop' } });
      const slow = await rawWs(ctx, 'behind');
      slow.socket.pause();
      const ws = ctx.sockets.get('behind')!;
      ws.subscribe('feed');
      const chunk = 'z'.repeat(32 * 1024);
      const frame = chunk.length + 4; // a 16-bit length header
      // One message a turn until the kernel refuses some: the subscriber is behind, under the limit.
      let published = 0;
      while (ws.bufferedAmount === 0 && published < 2000) {
        ctx.handler.publish('feed', chunk);
        published++;
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(ws.bufferedAmount > 0 && ws.bufferedAmount <= frame, `behind by ${ws.bufferedAmount}`);
      assert.equal(ctx.handler.pubsubStats.drops, 0);
      // Then 8 MiB in one synchronous turn, more than the send area holds (it flushes mid-burst).
      for (let i = 0; i < 256; i++) ctx.handler.publish('feed', chunk);
      published += 256;
      const { drops, deliveries } = ctx.handler.pubsubStats;
      assert.equal(deliveries + drops, published);
      assert.ok(drops > 0, 'the burst went past the limit');
      assert.ok(ws.bufferedAmount <= max + frame, `buffered ${ws.bufferedAmount} in the turn`);
      await new Promise((r) => setImmediate(r));
      assert.ok(ws.bufferedAmount <= max + frame, `buffered ${ws.bufferedAmount} once handed over`);
      slow.socket.resume();
      await waitFor(() => slow.frames().length === deliveries, 'the queued messages');
      assert.ok(slow.frames().every((f) => f.opcode === 1 && f.payload.length === chunk.length));
      slow.destroy();
    });

    test('slow subscriber: one the kernel keeps up with is never slow, however large a burst', GUARD, async () => {
      const max = 16 * 1024;
      const ctx = await start({ pubsub: { maxBufferedBytes: max } });
      const reader = await rawWs(ctx, 'reader');
      ctx.sockets.get('reader')!.subscribe('feed');
      const chunk = 'r'.repeat(200);
      // 200 KB in one turn, 12x the limit: staged, none of it refused by the kernel yet.
      for (let i = 0; i < 1000; i++) assert.equal(ctx.handler.publish('feed', chunk), 1, `publish ${i}`);
      const { drops, slowClosed, deliveries } = ctx.handler.pubsubStats;
      assert.deepEqual({ drops, slowClosed, deliveries }, { drops: 0, slowClosed: 0, deliveries: 1000 });
      await waitFor(() => reader.frames().length === 1000, 'every message');
      assert.ok(reader.frames().every((f) => f.opcode === 1 && f.payload.length === chunk.length));
      assert.equal(ctx.sockets.get('reader')!.readyState, 'open');
      reader.destroy();
    });

    test('compress: one compressed frame for deflate clients, the plain one for the rest', GUARD, async () => {
      const ctx = await start({ perMessageDeflate: true });
      const deflateRaw = await rawWs(ctx, 'rawd', 'permessage-deflate');
      const plainRaw = await rawWs(ctx, 'rawp');
      const wsDeflate = await client(ctx, 'wsd', { perMessageDeflate: true });
      const wsPlain = await client(ctx, 'wsp');
      const c1mGot: string[] = [];
      const c1m = new WebSocketClient(ctx.url, undefined, { perMessageDeflate: true, backend });
      c1m.on('message', (data: Buffer) => c1mGot.push(data.toString()));
      await new Promise<void>((resolve, reject) => {
        c1m.once('open', resolve);
        c1m.once('error', reject);
      });
      c1m.send('hello:c1m');
      await waitFor(() => ctx.sockets.has('c1m'), 'c1m handle');
      assert.match(c1m.extensions, /permessage-deflate/);
      for (const name of ['rawd', 'rawp', 'wsd', 'wsp', 'c1m']) ctx.sockets.get(name)!.subscribe('news');
      const big = 'compressible '.repeat(500);
      assert.equal(ctx.handler.publish('news', big, { compress: true }), 5);
      assert.equal(ctx.handler.publish('news', big), 5);
      assert.equal(ctx.handler.publish('news', Buffer.from('tiny'), { compress: true }), 5);
      const f1 = (await (async () => {
        await waitFor(() => deflateRaw.frames().length >= 3 && plainRaw.frames().length >= 3, 'three frames each');
        return [deflateRaw.frames(), plainRaw.frames()];
      })());
      const [d, p] = f1 as [Frame[], Frame[]];
      assert.deepEqual(d.map((f) => [f.opcode, f.rsv1]), [[1, true], [1, false], [2, false]], 'tiny: not smaller, sent plain');
      assert.ok(d[0]!.payload.length < big.length / 10);
      assert.equal(inflated(d[0]!.payload).toString(), big);
      assert.equal(d[1]!.payload.toString(), big);
      assert.deepEqual(p.map((f) => [f.opcode, f.rsv1]), [[1, false], [1, false], [2, false]]);
      assert.equal(p[0]!.payload.toString(), big);
      await waitFor(() => wsDeflate.got.length === 3 && wsPlain.got.length === 3 && c1mGot.length === 3, 'clients got three');
      for (const got of [wsDeflate.got, wsPlain.got]) assert.deepEqual(got, [`t:${big}`, `t:${big}`, 'b:tiny']);
      assert.deepEqual(c1mGot, [big, big, 'tiny']);
      deflateRaw.destroy();
      plainRaw.destroy();
      wsDeflate.ws.terminate();
      wsPlain.ws.terminate();
      c1m.terminate();
    });
  });

  describe(`TopicTable under a TCP handler (${backend})`, () => {
    test('subscribe by conn.id, publish with reactor.broadcast; a stale id is skipped', GUARD, async () => {
      const table = new TopicTable();
      const handler: Handler = {
        onData(conn, data) {
          for (const line of data.toString().split('\n')) {
            if (line.startsWith('sub ')) {
              table.subscribe(conn.id, line.slice(4));
              conn.write(`ok ${conn.id}\n`);
            }
          }
        },
        // No removeAll in onClose on purpose: the id's generation must keep a reused fd out.
      };
      const srv = await startServer(backend, handler);
      try {
        const a = await rawClient(srv.port);
        await a.send('sub x\n');
        await waitFor(() => a.text().includes('\n'), 'ok');
        const idA = Number(a.text().split(' ')[1]);
        assert.equal(table.publish(srv.reactor, 'x', 'one\n'), 1);
        await waitFor(() => a.text().endsWith('one\n'), 'one');
        a.destroy();
        await waitFor(() => srv.reactor.stats.connections === 0, 'a closed');
        const release = backend === 'native' ? arrangeAcceptOn(idA % TWO32) : null;
        let b: RawClient;
        try {
          b = await rawClient(srv.port);
        } finally {
          release?.();
        }
        await b.send('sub y\n');
        await waitFor(() => b.text().includes('\n'), 'ok');
        const idB = Number(b.text().split(' ')[1]);
        if (release !== null) {
          assert.equal(idB % TWO32, idA % TWO32, 'the fd was reused');
          // The new connection took the key: a's stale subscription is gone.
          assert.equal(table.subscriberCount('x'), 0);
        }
        assert.notEqual(idB, idA);
        assert.equal(table.publish(srv.reactor, 'x', 'stale\n'), 0);
        assert.equal(table.publish(srv.reactor, 'y', 'two\n'), 1);
        await waitFor(() => b.text().endsWith('two\n'), 'two');
        assert.ok(!b.text().includes('stale'));
        b.destroy();
      } finally {
        await srv.reactor.close(1000);
      }
    });

    test('a publish before onClose ran goes to nobody when the fd was reused', GUARD, async () => {
      // The subscription of a closed connection is still in the table (nothing removed it);
      // a publish builds the ids that subscribed, so the engine skips the stale one.
      const table = new TopicTable();
      const srv = await startServer(backend, {
        onData(conn, data) {
          if (data.toString().startsWith('sub')) table.subscribe(conn.id, 'z');
          conn.write('ok\n');
        },
      });
      try {
        const a = await rawClient(srv.port);
        await a.send('sub\n');
        await waitFor(() => a.text() === 'ok\n', 'ok');
        const idA = [...table.subscribers('z')][0]!;
        a.destroy();
        await waitFor(() => srv.reactor.stats.connections === 0, 'a closed');
        const release = backend === 'native' ? arrangeAcceptOn(idA % TWO32) : null;
        let b: RawClient;
        try {
          b = await rawClient(srv.port);
        } finally {
          release?.();
        }
        await b.send('hi\n');
        await waitFor(() => b.text() === 'ok\n', 'ok');
        assert.equal(table.subscriberCount('z'), 1, 'the stale subscription is still listed');
        if (release !== null) assert.equal(srv.reactor.connections()[0]!.id % TWO32, idA % TWO32, 'the fd was reused');
        assert.equal(table.publish(srv.reactor, 'z', 'stale\n'), 0);
        await b.send('hi\n');
        await waitFor(() => b.text() === 'ok\nok\n', 'second ok');
        b.destroy();
      } finally {
        await srv.reactor.close(1000);
      }
    });
  });
}
