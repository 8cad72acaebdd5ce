/**
 * An operator's requests about a user, and a refresh that narrows a grant.
 *
 * `POST /disconnect/<user>`: every open WebSocket of the user is closed with 4009 and the
 * reason, its subscriptions with it, other users untouched; a client that ignores the close
 * frame and goes on sending publishes nothing; a control prefix that overlaps the topic prefix
 * is refused at start; only the publish token may (not a
 * user's JWT, not without a publish token, not on an open gateway, which has no users); a
 * refreshed token keeps its connection filed under its user, and a closed one leaves nothing
 * filed. With NATS the disconnect reaches every gateway sharing it (a control message), is
 * answered once NATS has it, is refused with 503 while NATS is down, and works again once it is
 * back (the control subscription is restored).
 *
 * `POST /unsubscribe/<user>?topics=`: every open WebSocket of the user leaves those topics and
 * hears which (`unsubscribed` with the reason), the user's other topics and other users
 * untouched; it is not a ban (the token still grants a new `sub`); the same refusals as a
 * disconnect, plus topics missing or invalid. With NATS it reaches every gateway on it.
 * A `refresh` whose token no longer grants a topic ends that subscription (`unsubscribed`
 * `refresh`, before the ack); one that grants them all ends none.
 *
 * `POST /subscribe/<user>?topics=`: every open WebSocket of the user is put on those topics its
 * own token grants and it is not on yet, told with their positions (`subscribed`); a connection
 * that would pass its topic limit is left as it was; through NATS on every gateway.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import type { GatewayOptions } from '../../src/apps/gateway/index.js';
import {
  NATS_MISSING, freePort, gatewayClient, promValue, publishHttp, scrape, signToken, startGateway, startNats, stopProcess, withGateway, type GatewayClient,
} from '../helpers/gateway.js';
import { GUARD, HOST, waitFor } from '../helpers/net.js';
import { OP, RawWebSocket, closeOf } from '../helpers/ws-raw.js';
import { REFRESH_REASON, createGateway } from '../../src/apps/gateway/index.js';
import { parseControl } from '../../src/apps/gateway/operator.js';

const SECRET = 'a-test-secret-of-enough-length';
const KEY = new TextEncoder().encode(SECRET);
const PUB = { Authorization: 'Bearer pt' };


async function post(port: number, path: string, headers: Record<string, string> = PUB, method = 'POST'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://${HOST}:${port}${path}`, { method, headers });
  const text = await res.text();
  return { status: res.status, body: /^application\/json/.test(res.headers.get('content-type') ?? '') ? (JSON.parse(text) as Record<string, unknown>) : { text } };
}

const client = async (port: number, sub: string, topics: string): Promise<GatewayClient> => {
  const c = await gatewayClient(port, `?token=${await signToken({ sub, topics: ['>'] }, KEY)}&topics=${topics}`);
  await c.next((m) => m.op === 'ack' && m.id === 0, `${sub}'s ack`);
  return c;
};

describe('gateway: disconnecting and unsubscribing a user', () => {
  test('closes every open WebSocket of the user with 4009 and the reason; the others stay; only the publish token may', GUARD, async () => {
    const server = await startGateway({ jwtSecret: SECRET, publishToken: 'pt' });
    const port = server.address.port;
    const clients: GatewayClient[] = [];
    try {
      const a1 = await client(port, 'alice', 'news,chat');
      const a2 = await client(port, 'alice', 'news');
      const b = await client(port, 'bob', 'news');
      const name = 'user with spaces/ü';
      const c = await client(port, name, 'news');
      clients.push(a1, a2, b, c);
      assert.equal(promValue(await scrape(port), 'c1m_gateway_subscriptions'), 5);
      // A refresh keeps alice's connection filed under alice.
      a2.send({ op: 'refresh', id: 1, token: await signToken({ sub: 'alice', topics: ['>'] }, KEY) });
      await a2.next((m) => m.op === 'ack' && m.id === 1, 'the refresh');

      assert.equal((await post(port, '/disconnect/alice', {})).status, 401, 'no token');
      assert.equal((await post(port, '/disconnect/alice', { Authorization: 'Bearer nope' })).status, 401);
      const aliceJwt = await signToken({ sub: 'alice', topics: ['>'], publish: true }, KEY);
      assert.equal((await post(port, '/disconnect/alice', { Authorization: `Bearer ${aliceJwt}` })).status, 401, 'a user\'s JWT, even one that may publish');
      assert.equal((await post(port, '/disconnect/alice', PUB, 'GET')).status, 405);
      assert.equal((await post(port, '/disconnect/', PUB)).status, 404, 'no user');
      assert.equal((await post(port, `/disconnect/alice?reason=${'r'.repeat(101)}`, PUB)).status, 400, 'reason over 100 bytes');
      assert.equal(a1.closed, undefined, 'refused requests closed nothing');

      assert.deepEqual((await post(port, '/disconnect/alice?reason=banned%20for%20spam')).body, { disconnected: 2 });
      for (const x of [a1, a2]) assert.deepEqual(await x.waitClosed(), { code: 4009, reason: 'banned for spam' });
      assert.deepEqual((await post(port, `/disconnect/${encodeURIComponent(name)}`)).body, { disconnected: 1 });
      assert.deepEqual(await c.waitClosed(), { code: 4009, reason: 'disconnected' }, 'the default reason');
      assert.deepEqual((await post(port, '/disconnect/alice')).body, { disconnected: 0 }, 'nothing left filed under alice');
      assert.deepEqual((await publishHttp(port, 'news', 'still here', PUB)).body.delivered, 1, 'bob only');
      await waitFor(() => b.deliveries('news').length === 1, 'bob\'s delivery');
      const m = await scrape(port);
      assert.equal(promValue(m, 'c1m_gateway_subscriptions'), 1, 'the disconnected users\' subscriptions are gone');
      assert.equal(promValue(m, 'c1m_gateway_disconnects_total'), 3);
      assert.equal(b.closed, undefined);
    } finally {
      for (const x of clients) x.close();
      await server.close(1000);
    }
  });

  test('a disconnected client that ignores the close frame and goes on sending is not served: it cannot publish', GUARD, async () => {
    const server = await startGateway({ jwtSecret: SECRET, publishToken: 'pt', clientPublish: true, clientPublishRate: 0 });
    const port = server.address.port;
    let raw: RawWebSocket | undefined;
    let reader: GatewayClient | undefined;
    try {
      reader = await client(port, 'reader', 'room');
      const token = await signToken({ sub: 'mallory', topics: ['>'], publish: ['room'] }, KEY);
      raw = await RawWebSocket.connect(port, { path: `/ws?token=${token}` });
      const pub = (id: number): Promise<void> => raw!.sendFrames([{ opcode: OP.text, payload: JSON.stringify({ op: 'pub', id, topic: 'room', data: id }) }]);
      await pub(1);
      await waitFor(() => reader!.deliveries('room').length === 1, 'the pub before the disconnect');
      assert.deepEqual((await post(port, '/disconnect/mallory?reason=banned')).body, { disconnected: 1 });
      await raw.waitFor(() => raw!.closeFrame !== undefined, 'the close frame');
      assert.deepEqual(closeOf(raw.closeFrame!), { code: 4009, reason: 'banned' });
      // It does not answer the close frame and goes on publishing.
      for (let id = 2; id <= 6; id++) await pub(id);
      // A publish of the server's own after them reaches the reader behind anything they could have sent.
      await publishHttp(port, 'room', '"marker"', { ...PUB, 'Content-Type': 'application/json' });
      await waitFor(() => reader!.deliveries('room').some((m) => m.data === 'marker'), 'the marker');
      assert.deepEqual(reader.deliveries('room').map((m) => m.data), [1, 'marker'], 'nothing published after the disconnect');
      assert.equal(promValue(await scrape(port), 'c1m_gateway_disconnects_total'), 1);
      assert.deepEqual((await post(port, '/disconnect/mallory')).body, { disconnected: 0 }, 'already closing: not counted again');
    } finally {
      raw?.destroy();
      reader?.close();
      await server.close(1000);
    }
  });

  test('unsubscribe: every open WebSocket of the user leaves the topics and hears which; the rest stays; not a ban; refusals', GUARD, async () => {
    await withGateway({ jwtSecret: SECRET, publishToken: 'pt' }, async (port, track) => {
      const a1 = await client(port, 'alice', 'room.7,news');
      const a2 = await client(port, 'alice', 'news');
      const b = await client(port, 'bob', 'room.7');
      const clients = [a1, a2, b].map(track);
      const aliceJwt = await signToken({ sub: 'alice', topics: ['>'], publish: true }, KEY);
      for (const [path, headers, status, what] of [
        ['/unsubscribe/alice?topics=news', {}, 401, 'no token'],
        ['/unsubscribe/alice?topics=news', { Authorization: `Bearer ${aliceJwt}` }, 401, 'a user\'s JWT'],
        ['/unsubscribe/?topics=news', PUB, 404, 'no user'],
        ['/unsubscribe/alice', PUB, 400, 'no topics'],
        ['/unsubscribe/alice?topics=', PUB, 400, 'empty topics'],
        ['/unsubscribe/alice?topics=news,a..b', PUB, 400, 'an invalid topic'],
        ['/unsubscribe/alice?topics=news,,chat', PUB, 400, 'an empty topic'],
        [`/unsubscribe/alice?topics=${Array.from({ length: 101 }, (_, i) => `t${i}`).join(',')}`, PUB, 400, '101 topics'],
        [`/unsubscribe/alice?topics=news&reason=${'r'.repeat(101)}`, PUB, 400, 'reason over 100 bytes'],
      ] as const) {
        assert.equal((await post(port, path, headers)).status, status, what);
      }
      assert.match(String((await post(port, '/unsubscribe/alice?topics=news,a..b')).body.error), /"a\.\.b"/, 'the error names the bad topic');
      assert.equal((await post(port, '/unsubscribe/alice?topics=news', PUB, 'GET')).status, 405);
      assert.equal(promValue(await scrape(port), 'c1m_gateway_subscriptions'), 4, 'refused requests changed nothing');

      assert.deepEqual((await post(port, '/unsubscribe/alice?topics=room.7,news,other&reason=moved%20out')).body, { unsubscribed: 3 });
      assert.deepEqual(await a1.next((m) => m.op === 'unsubscribed', 'a1 told'), { op: 'unsubscribed', topics: ['room.7', 'news'], reason: 'moved out' });
      assert.deepEqual(await a2.next((m) => m.op === 'unsubscribed', 'a2 told'), { op: 'unsubscribed', topics: ['news'], reason: 'moved out' }, 'only what it was on');
      assert.equal((await publishHttp(port, 'room.7', 'r', PUB)).body.delivered, 1, 'bob only');
      assert.equal((await publishHttp(port, 'news', 'n', PUB)).body.delivered, 0);
      await waitFor(() => b.deliveries('room.7').length === 1, 'bob\'s delivery');
      let m = await scrape(port);
      assert.equal(promValue(m, 'c1m_gateway_subscriptions'), 1);
      assert.equal(promValue(m, 'c1m_gateway_server_unsubscribes_total'), 3);

      // Not a ban: the token still grants news; a second unsubscribe takes it again (default reason).
      a2.send({ op: 'sub', id: 1, topics: ['news'] });
      await a2.next((m) => m.op === 'ack' && m.id === 1, 'the new sub');
      assert.deepEqual((await post(port, '/unsubscribe/alice?topics=news')).body, { unsubscribed: 1 });
      await waitFor(() => a2.msgs.filter((m) => m.op === 'unsubscribed').length === 2, 'a2 told again');
      assert.deepEqual(a2.msgs.filter((m) => m.op === 'unsubscribed')[1], { op: 'unsubscribed', topics: ['news'], reason: 'unsubscribed' });
      a1.send({ op: 'ping', id: 9 });
      await a1.next((m) => m.op === 'pong', 'a1 pong');
      assert.equal(a1.msgs.filter((m) => m.op === 'unsubscribed').length, 1, 'a1, on no topic, was not told again');
      assert.deepEqual((await post(port, '/unsubscribe/nobody?topics=news')).body, { unsubscribed: 0 });
      m = await scrape(port);
      assert.equal(promValue(m, 'c1m_gateway_server_unsubscribes_total'), 4);
      for (const x of clients) assert.equal(x.closed, undefined, 'connections stay open');
    });
  });

  test('subscribe: each open WebSocket of the user is put on the topics its token grants, told with their positions; limits; refusals', GUARD, async () => {
    await withGateway({ jwtSecret: SECRET, publishToken: 'pt', history: 5, pubsub: { maxTopicsPerConnection: 2 } }, async (port, track) => {
      const open = async (sub: string, topics: string[], query = ''): Promise<GatewayClient> => {
        const c = track(await gatewayClient(port, `?token=${await signToken({ sub, topics }, KEY)}${query}`));
        await c.next((m) => m.op === 'welcome', `${sub}'s welcome`);
        if (query !== '') await c.next((m) => m.op === 'ack' && m.id === 0, `${sub}'s ack`);
        return c;
      };
      const a1 = await open('alice', ['room.*', 'news'], '&topics=news');
      const a2 = await open('alice', ['news']);
      const b = await open('bob', ['>']);
      for (let i = 0; i < 2; i++) await publishHttp(port, 'room.7', `before ${i}`, PUB); // room.7's stream is at 2
      assert.equal((await post(port, '/subscribe/alice')).status, 400, 'no topics');
      assert.equal((await post(port, '/subscribe/alice?topics=x', {})).status, 401, 'no token');
      assert.deepEqual((await post(port, '/subscribe/alice?topics=room.7,news,secret&reason=joined')).body, { subscribed: 2 });
      const a1Got = await a1.next((m) => m.op === 'subscribed', 'a1 told');
      assert.equal(a1Got.reason, 'joined');
      assert.deepEqual(Object.keys(a1Got.topics as object), ['room.7'], 'news it was on, secret its token does not grant');
      assert.equal((a1Got.topics as Record<string, { seq: number }>)['room.7']!.seq, 2, 'the position: a later since= recovers from there');
      assert.deepEqual(Object.keys((await a2.next((m) => m.op === 'subscribed', 'a2 told')).topics as object), ['news'], 'what a2\'s token grants');
      assert.equal((await publishHttp(port, 'room.7', 'now', PUB)).body.delivered, 1);
      await waitFor(() => a1.deliveries('room.7').length === 1, 'a1\'s room.7 delivery');
      assert.deepEqual(a1.deliveries('room.7')[0], { op: 'msg', topic: 'room.7', seq: 3, data: 'now' });
      assert.equal((await publishHttp(port, 'news', 'n', PUB)).body.delivered, 2);
      assert.deepEqual((await post(port, '/subscribe/alice?topics=room.7,news')).body, { subscribed: 0 }, 'nothing new');
      // a1 is on 2 topics, its limit: room.8 would pass it, so a1 is left as it was; a2 is not full.
      assert.deepEqual((await post(port, '/subscribe/alice?topics=room.8,news')).body, { subscribed: 0 }, 'a2 has news; a1 is full');
      assert.equal(a1.msgs.filter((m) => m.op === 'subscribed').length, 1);
      assert.equal(b.msgs.some((m) => m.op === 'subscribed'), false, 'bob untouched');
      // All or none: carol, on one topic of two, is asked two new ones: neither stays.
      const carol = await open('carol', ['room.*'], '&topics=room.1');
      assert.deepEqual((await post(port, '/subscribe/carol?topics=room.2,room.3')).body, { subscribed: 0 });
      assert.equal((await publishHttp(port, 'room.2', 'r2', PUB)).body.delivered, 0, 'room.2 was taken back');
      assert.deepEqual((await post(port, '/subscribe/carol?topics=room.2')).body, { subscribed: 1 }, 'one fits');
      assert.equal(carol.msgs.filter((m) => m.op === 'subscribed').length, 1, 'told once: of the one that fit');
      const m = await scrape(port);
      assert.equal(promValue(m, 'c1m_gateway_server_subscribes_total'), 3);
      assert.equal(promValue(m, 'c1m_gateway_subscriptions'), 5, 'a1: news, room.7; a2: news; carol: room.1, room.2');
    });
  });

  test('a refresh whose token no longer grants a topic ends that subscription before its ack; one that grants all ends none', GUARD, async () => {
    await withGateway({ jwtSecret: SECRET, publishToken: 'pt' }, async (port, track) => {
      const c = track(await gatewayClient(port, `?token=${await signToken({ sub: 'carol', topics: ['news.>', 'room.7'] }, KEY)}&topics=news.a,room.7`));
      await c.next((m) => m.op === 'ack' && m.id === 0, 'the connect ack');
      c.send({ op: 'refresh', id: 1, token: await signToken({ sub: 'carol', topics: ['news.>'] }, KEY) });
      await c.next((m) => m.id === 1, 'the refresh ack');
      assert.deepEqual(c.msgs.slice(-2), [{ op: 'unsubscribed', topics: ['room.7'], reason: REFRESH_REASON }, { op: 'ack', id: 1 }]);
      assert.equal((await publishHttp(port, 'room.7', 'r', PUB)).body.delivered, 0);
      assert.equal((await publishHttp(port, 'news.a', 'n', PUB)).body.delivered, 1);
      c.send({ op: 'sub', id: 2, topics: ['room.7'] });
      assert.equal((await c.next((m) => m.id === 2, 'sub after')).code, 'forbidden');
      c.send({ op: 'refresh', id: 3, token: await signToken({ sub: 'carol', topics: ['news.a'] }, KEY) });
      await c.next((m) => m.id === 3, 'the second refresh ack');
      assert.equal(c.msgs.filter((m) => m.op === 'unsubscribed').length, 1, 'news.a is still granted');
      assert.equal(promValue(await scrape(port), 'c1m_gateway_server_unsubscribes_total'), 1);
    });
  });

  test('control messages from NATS: malformed ones are dropped', () => {
    const enc = (v: unknown): Uint8Array => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
    assert.deepEqual(parseControl(enc({ user: 'u', reason: 'r' }), false), { user: 'u', reason: 'r', topics: [] });
    assert.deepEqual(parseControl(enc({ user: 'u', reason: 'r', topics: ['a', 'b.c', 'a'] }), true), { user: 'u', reason: 'r', topics: ['a', 'b.c'] });
    for (const bad of [
      'not json', { reason: 'r', topics: ['a'] }, { user: '', reason: 'r', topics: ['a'] }, { user: 'u', topics: ['a'] },
      { user: 'u', reason: 'r'.repeat(101), topics: ['a'] }, { user: 'u', reason: 'r' }, { user: 'u', reason: 'r', topics: [] },
      { user: 'u', reason: 'r', topics: ['a..b'] }, { user: 'u', reason: 'r', topics: 'a' }, { user: 'u', reason: 'r', topics: Array(101).fill('a') },
    ]) {
      assert.equal(parseControl(enc(bad), true), null, JSON.stringify(bad).slice(0, 60));
    }
  });

  test('a control prefix that overlaps the topic prefix, or is not a plain subject prefix, is refused at start', async () => {
    const nats = 'nats://127.0.0.1:1'; // refused before any connect
    for (const [o, what] of [
      [{ natsPrefix: 'c1m.' }, 'the default control prefix inside a short topic prefix'],
      [{ natsPrefix: '' }, 'an empty topic prefix'],
      [{ natsControlPrefix: 'c1m.topic.ctl.' }, 'a control prefix inside the topic prefix'],
      [{ natsPrefix: 'a.b.', natsControlPrefix: 'a.' }, 'a topic prefix inside the control prefix'],
    ] as const) {
      await assert.rejects(createGateway({ noAuth: true, nats, ...o }), /overlap/, what);
    }
    for (const natsControlPrefix of ['ctl', 'ctl.*.', 'ctl.>.', 'c tl.', '.ctl.']) {
      await assert.rejects(createGateway({ noAuth: true, nats, natsControlPrefix }), /natsControlPrefix must be/, natsControlPrefix);
    }
  });

  test('an open gateway has no users; a gateway without a publish token refuses with the reason', GUARD, async () => {
    const open = await startGateway({ noAuth: true, publishToken: 'pt' });
    const closed = await startGateway({ jwtSecret: SECRET });
    try {
      const r1 = await post(open.address.port, '/disconnect/alice');
      assert.deepEqual(r1, { status: 400, body: { error: 'an open gateway has no users to disconnect' } });
      const r2 = await post(closed.address.port, '/disconnect/alice');
      assert.equal(r2.status, 403);
      assert.match(String(r2.body.error), /--publish-token/);
      const r3 = await post(open.address.port, '/unsubscribe/alice?topics=a');
      assert.deepEqual(r3, { status: 400, body: { error: 'an open gateway has no users to unsubscribe' } });
      assert.equal((await post(open.address.port, '/subscribe/alice?topics=a')).status, 400);
      const r4 = await post(closed.address.port, '/unsubscribe/alice?topics=a');
      assert.equal(r4.status, 403);
      assert.match(String(r4.body.error), /--publish-token/);
    } finally {
      await open.close(1000);
      await closed.close(1000);
    }
  });
});

describe('gateway: disconnecting and unsubscribing a user through NATS', { skip: NATS_MISSING }, () => {
  test('reaches every gateway on the NATS, answered once NATS has it; 503 while NATS is down', GUARD, async () => {
    const natsPort = await freePort();
    let nats: ChildProcess = await startNats(natsPort);
    const o: GatewayOptions = { jwtSecret: SECRET, publishToken: 'pt', nats: `nats://${HOST}:${natsPort}` };
    const a = await startGateway(o);
    const b = await startGateway(o);
    const other = await startGateway({ ...o, natsControlPrefix: 'elsewhere.control.' });
    const clients: GatewayClient[] = [];
    try {
      const onA = await client(a.address.port, 'alice', 't');
      const onB = await client(b.address.port, 'alice', 't');
      const bob = await client(b.address.port, 'bob', 't');
      const onOther = await client(other.address.port, 'alice', 't');
      clients.push(onA, onB, bob, onOther);
      // An unsubscribe first: alice leaves t on a and b (told), not on the other gateway.
      assert.deepEqual((await post(b.address.port, '/unsubscribe/alice?topics=t&reason=later')).body, { unsubscribed: null });
      for (const x of [onA, onB]) assert.deepEqual(await x.next((m) => m.op === 'unsubscribed', 'told'), { op: 'unsubscribed', topics: ['t'], reason: 'later' });
      assert.equal((await publishHttp(a.address.port, 't', 'x', PUB)).status, 200);
      await waitFor(() => bob.deliveries('t').length === 1 && onOther.deliveries('t').length === 1, 'bob\'s first delivery, and the other gateway\'s alice\'s');
      assert.equal(promValue(await scrape(a.address.port), 'c1m_gateway_subscriptions'), 2, 'bob\'s and the other gateway\'s alice\'s are left');
      assert.equal(onA.deliveries('t').length + onB.deliveries('t').length, 0);
      assert.equal(onOther.msgs.some((m) => m.op === 'unsubscribed'), false);
      // And back on t through NATS, told with t's position.
      assert.deepEqual((await post(a.address.port, '/subscribe/alice?topics=t')).body, { subscribed: null });
      for (const x of [onA, onB]) assert.deepEqual(Object.keys((await x.next((m) => m.op === 'subscribed', 'told')).topics as object), ['t']);
      assert.deepEqual((await post(a.address.port, '/disconnect/alice?reason=bye')).body, { disconnected: null });
      for (const x of [onA, onB]) assert.deepEqual(await x.waitClosed(), { code: 4009, reason: 'bye' });
      // Bob, and alice on a gateway with its own control prefix, are untouched: a publish on
      // b after the disconnect reaches bob, and one on the other gateway reaches alice there.
      await publishHttp(b.address.port, 't', 'after', PUB);
      await waitFor(() => bob.deliveries('t').length === 2, 'bob\'s delivery');
      await publishHttp(other.address.port, 't', 'after', PUB);
      await waitFor(() => onOther.deliveries('t').length === 2, 'the other gateway\'s alice');
      assert.equal(onOther.closed, undefined);
      // The three gateways share this process's registry: its /metrics sums them.
      assert.equal(promValue(await scrape(a.address.port), 'c1m_gateway_disconnects_total'), 2, 'one on a, one on b');

      await stopProcess(nats);
      const down = await post(a.address.port, '/disconnect/bob');
      assert.equal(down.status, 503);
      assert.match(String(down.body.error), /not sent/);
      assert.equal((await post(a.address.port, '/unsubscribe/bob?topics=t')).status, 503);
      nats = await startNats(natsPort);
      assert.equal(bob.closed, undefined, 'nothing was sent while NATS was down');
      // Back: every gateway re-subscribed its control subject, so a disconnect works again.
      while (promValue(await scrape(a.address.port), 'c1m_gateway_nats_up') !== 3);
      for (;;) {
        const r = await post(a.address.port, '/disconnect/bob?reason=later');
        if (r.status === 200) break;
        assert.equal(r.status, 503); // the reconnect seen by the metrics before the publish path
      }
      assert.deepEqual(await bob.waitClosed(), { code: 4009, reason: 'later' });
    } finally {
      for (const x of clients) x.close();
      await a.close(1000);
      await b.close(1000);
      await other.close(1000);
      await stopProcess(nats);
    }
  });
});
