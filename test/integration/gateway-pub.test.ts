/**
 * Clients publishing over their WebSocket (`{"op":"pub"}`, `clientPublish`): who may (the
 * token's `publish` claim; any client of an open gateway; nobody when the option is off), what
 * a refused or malformed `pub` gets (an error, nothing delivered, the connection kept, counted
 * as refused), what an accepted one gets (an `ack` like `POST /publish` answers, every
 * subscriber the message once, the publisher too when subscribed, in order), and through NATS:
 * a `pub` on one gateway reaches another's subscribers, and while NATS is down it is refused
 * with `unavailable` (not lost silently) and works again once NATS is back. The rate: per
 * connection on an open gateway; per user with tokens (its connections share it, and a
 * reconnect does not refill it).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import { createGateway, type GatewayOptions } from '../../src/apps/gateway/index.js';
import {
  GatewayClient, NATS_MISSING, broadcastHttp, freePort, gatewayClient, promValue, scrape, signToken, startGateway, startNats, stopProcess, withGateway,
} from '../helpers/gateway.js';
import { GUARD, HOST, waitFor } from '../helpers/net.js';

const SECRET = 'a-test-secret-of-enough-length';
const KEY = new TextEncoder().encode(SECRET);


const acked = (c: GatewayClient, id: number): Promise<Record<string, unknown>> => c.next((m) => m.op === 'ack' && m.id === id, `ack ${id}`);
const errorOf = (c: GatewayClient, id: number): Promise<Record<string, unknown>> => c.next((m) => m.op === 'error' && m.id === id, `error ${id}`);

describe('gateway: clients publish over their WebSocket', () => {
  test('with tokens: the publish claim decides; an accepted pub is acked like POST /publish and delivered once to each subscriber, the publisher included', GUARD, async () => {
    await withGateway({ jwtSecret: SECRET, history: 3, clientPublish: true }, async (port, track) => {
      const reader = track(await gatewayClient(port, `?token=${await signToken({ sub: 'reader', topics: ['room.>'] }, KEY)}&topics=room.1`));
      const writer = track(await gatewayClient(port, `?token=${await signToken({ sub: 'writer', topics: ['room.>'], publish: ['room.*'] }, KEY)}&topics=room.1`));
      await Promise.all([acked(reader, 0), acked(writer, 0)]);

      writer.send({ op: 'pub', id: 5, topic: 'room.1', data: { n: 1 } });
      const ack = await acked(writer, 5);
      assert.equal(ack.delivered, 2, 'the reader and the writer itself');
      assert.equal(ack.seq, 1);
      assert.equal(typeof ack.epoch, 'string');
      // Refused: beyond the claim (one segment per `*`), no claim at all, a bad topic, no data.
      writer.send({ op: 'pub', id: 6, topic: 'room.1.deep', data: 1 });
      assert.deepEqual(await errorOf(writer, 6), { op: 'error', id: 6, code: 'forbidden', message: 'the token does not grant publishing to this topic', topic: 'room.1.deep' });
      reader.send({ op: 'pub', id: 7, topic: 'room.1', data: 'from a reader' });
      assert.equal((await errorOf(reader, 7)).code, 'forbidden');
      writer.send({ op: 'pub', id: 8, topic: 'bad..topic', data: 1 });
      assert.equal((await errorOf(writer, 8)).code, 'invalid_topic');
      writer.send({ op: 'pub', id: 9, topic: 'room.1' });
      assert.equal((await errorOf(writer, 9)).code, 'bad_request');
      // Any JSON value is data, delivered as sent; the connection stayed through the errors.
      writer.send({ op: 'pub', id: 10, topic: 'room.1', data: 'text' });
      writer.send({ op: 'pub', id: 11, topic: 'room.1', data: null });
      assert.equal((await acked(writer, 11)).seq, 3);
      const expected = [
        { op: 'msg', topic: 'room.1', seq: 1, data: { n: 1 } },
        { op: 'msg', topic: 'room.1', seq: 2, data: 'text' },
        { op: 'msg', topic: 'room.1', seq: 3, data: null },
      ];
      await waitFor(() => reader.deliveries().length === 3, 'three deliveries to the reader');
      assert.deepEqual(reader.deliveries(), expected);
      assert.deepEqual(writer.deliveries(), expected, 'a publisher subscribed to its topic gets its own messages, before their ack');
      assert.ok(writer.msgs.indexOf(writer.deliveries()[0]!) < writer.msgs.findIndex((m) => m.op === 'ack' && m.id === 5));
      assert.equal(promValue(await scrape(port), 'c1m_gateway_publish_refused_total'), 2, 'the two forbidden pubs (malformed ones are errors of the protocol, not refusals)');
    });
  });

  test('off by default: a pub is refused with forbidden even when the token grants the topic, and nothing is delivered', GUARD, async () => {
    await withGateway({ jwtSecret: SECRET }, async (port, track) => {
      const c = track(await gatewayClient(port, `?token=${await signToken({ sub: 'w', topics: ['t'], publish: true }, KEY)}&topics=t`));
      await acked(c, 0);
      c.send({ op: 'pub', id: 1, topic: 't', data: 1 });
      assert.deepEqual(await errorOf(c, 1), { op: 'error', id: 1, code: 'forbidden', message: 'publishing over the WebSocket is off on this gateway', topic: 't' });
      c.send({ op: 'ping', id: 2 });
      await c.next((m) => m.op === 'pong', 'pong');
      assert.equal(c.deliveries().length, 0);
    });
  });

  test('an open gateway: any client may publish to any topic with clientPublish, none without', GUARD, async () => {
    await withGateway({ noAuth: true, clientPublish: true }, async (port, track) => {
      const sub = track(await gatewayClient(port, '?topics=open.x'));
      const pub = track(await gatewayClient(port));
      await acked(sub, 0);
      pub.send({ op: 'pub', id: 1, topic: 'open.x', data: [1, 2] });
      const ack = await acked(pub, 1);
      assert.deepEqual({ ...ack, epoch: typeof ack.epoch }, { op: 'ack', id: 1, delivered: 1, seq: 1, epoch: 'string' });
      await waitFor(() => sub.deliveries().length === 1, 'the delivery');
      assert.deepEqual(sub.deliveries()[0]!.data, [1, 2]);
      // Nobody subscribed: published, delivered to none.
      pub.send({ op: 'pub', id: 2, topic: 'open.nobody', data: 1 });
      assert.equal((await acked(pub, 2)).delivered, 0);
      // Standalone, a pub's ack comes before the answers to what was sent after it.
      pub.send({ op: 'pub', id: 3, topic: 'open.x', data: 3 });
      pub.send({ op: 'ping', id: 4 });
      await pub.next((m) => m.id === 4, 'the pong');
      assert.deepEqual(pub.msgs.filter((m) => m.id === 3 || m.id === 4).map((m) => m.op), ['ack', 'pong']);
    });
    await withGateway({ noAuth: true }, async (port, track) => {
      const pub = track(await gatewayClient(port));
      pub.send({ op: 'pub', id: 1, topic: 'open.x', data: 1 });
      assert.equal((await errorOf(pub, 1)).code, 'forbidden');
    });
  });
});

describe('gateway: the publish rate of a connection (an open gateway)', () => {
  test('past clientPublishRate a pub gets limit and is not published; another client has its own rate; a bad rate is refused', GUARD, async () => {
    await withGateway({ noAuth: true, clientPublish: true, clientPublishRate: 2 }, async (port, track) => {
      const sub = track(await gatewayClient(port, '?topics=r'));
      const a = track(await gatewayClient(port));
      const b = track(await gatewayClient(port));
      await acked(sub, 0);
      for (let id = 1; id <= 10; id++) a.send({ op: 'pub', id, topic: 'r', data: id });
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => a.next((m) => m.id === i + 1 && (m.op === 'ack' || m.op === 'error'), `answer ${i + 1}`)));
      const acks = answers.filter((m) => m.op === 'ack').map((m) => m.id);
      const refused = answers.filter((m) => m.op === 'error');
      // The burst (2) at least; a refill may come while ten pubs are read, never all ten.
      assert.ok(acks.length >= 2 && refused.length >= 1, JSON.stringify(answers));
      assert.deepEqual(acks, Array.from({ length: acks.length }, (_, i) => i + 1), 'the first ones pass');
      for (const e of refused) assert.deepEqual({ code: e.code, message: e.message }, { code: 'limit', message: 'over 2 publishes a second' });
      b.send({ op: 'pub', id: 1, topic: 'r', data: 'b' });
      assert.equal((await acked(b, 1)).delivered, 1, 'b is not limited by a');
      await waitFor(() => sub.deliveries().length === acks.length + 1, 'the accepted ones');
      assert.deepEqual(sub.deliveries().map((m) => m.data), [...acks, 'b'], 'only the accepted pubs were delivered');
      assert.equal(promValue(await scrape(port), 'c1m_gateway_publish_refused_total'), refused.length);
    });
    await assert.rejects(createGateway({ noAuth: true, clientPublish: true, clientPublishRate: -1 }), /clientPublishRate must be a number >= 0/);
  });

  test('a token\'s publish_rate claim sets its connections\' rate over clientPublishRate; 0 lifts the limit; a bad claim refuses the token', GUARD, async () => {
    await withGateway({ jwtSecret: SECRET, clientPublish: true, clientPublishRate: 1000 }, async (port, track) => {
      const grant = { topics: ['r'], publish: ['r'] };
      const slow = track(await gatewayClient(port, `?token=${await signToken({ sub: 'slow', ...grant, publish_rate: 2 }, KEY)}`));
      const free = track(await gatewayClient(port, `?token=${await signToken({ sub: 'free', ...grant, publish_rate: 0 }, KEY)}`));
      const plain = track(await gatewayClient(port, `?token=${await signToken({ sub: 'plain', ...grant }, KEY)}`));
      const answers = async (c: GatewayClient, n: number): Promise<Record<string, unknown>[]> => {
        for (let id = 1; id <= n; id++) c.send({ op: 'pub', id, topic: 'r', data: id });
        return Promise.all(Array.from({ length: n }, (_, i) => c.next((m) => m.id === i + 1 && (m.op === 'ack' || m.op === 'error'), `answer ${i + 1}`)));
      };
      const s = await answers(slow, 10);
      const refused = s.filter((m) => m.op === 'error');
      assert.ok(s.filter((m) => m.op === 'ack').length >= 2 && refused.length >= 1, JSON.stringify(s));
      for (const e of refused) assert.deepEqual({ code: e.code, message: e.message }, { code: 'limit', message: 'over 2 publishes a second' });
      // 200 pubs at once: over any default burst but the gateway's 1000, and no limit at all for 0.
      assert.ok((await answers(free, 200)).every((m) => m.op === 'ack'), 'publish_rate 0: no limit');
      assert.ok((await answers(plain, 200)).every((m) => m.op === 'ack'), 'no claim: the gateway\'s 1000');
      const bad = new GatewayClient(`ws://${HOST}:${port}/ws?token=${await signToken({ sub: 'bad', ...grant, publish_rate: -1 }, KEY)}`);
      track(bad);
      assert.deepEqual(await bad.waitClosed(), { code: 4001, reason: 'unauthorized: invalid' });
    });
  });
});

describe('gateway: the publish rate of a user', () => {
  test('a user\'s connections share one rate, which reconnecting does not refill; another user has its own', GUARD, async () => {
    await withGateway({ jwtSecret: SECRET, clientPublish: true }, async (port, track) => {
      // One publish per 100 s (a burst of 1): no refill while the test runs.
      const token = async (sub: string): Promise<string> => signToken({ sub, topics: ['r'], publish: ['r'], publish_rate: 0.01 }, KEY);
      const pub = async (c: GatewayClient, id: number): Promise<Record<string, unknown>> => {
        c.send({ op: 'pub', id, topic: 'r', data: id });
        return c.next((m) => m.id === id && (m.op === 'ack' || m.op === 'error'), `answer ${id}`);
      };
      const a1 = track(await gatewayClient(port, `?token=${await token('alice')}`));
      const a2 = track(await gatewayClient(port, `?token=${await token('alice')}`));
      assert.equal((await pub(a1, 1)).op, 'ack');
      assert.equal((await pub(a2, 2)).code, 'limit', 'alice\'s second connection shares her spent rate');
      a1.close();
      a2.close();
      const a3 = track(await gatewayClient(port, `?token=${await token('alice')}`));
      assert.equal((await pub(a3, 3)).code, 'limit', 'reconnecting does not refill it');
      const b = track(await gatewayClient(port, `?token=${await token('bob')}`));
      assert.equal((await pub(b, 4)).op, 'ack', 'bob has his own');
      assert.equal(promValue(await scrape(port), 'c1m_gateway_publish_refused_total'), 2);
    });
  });
});

describe('gateway: POST /broadcast', () => {
  test('one message to each topic, numbered in each; all granted or none published; malformed bodies refused', GUARD, async () => {
    await withGateway({ jwtSecret: SECRET, publishToken: 'pt', history: 5 }, async (port, track) => {
      const PT = { Authorization: 'Bearer pt' };
      const sub = async (sub: string, topics: string): Promise<GatewayClient> => {
        const c = track(await gatewayClient(port, `?token=${await signToken({ sub, topics: ['>'] }, KEY)}&topics=${topics}`));
        await acked(c, 0);
        return c;
      };
      const u1 = await sub('u1', 'user.1');
      const u2 = await sub('u2', 'user.2,news');
      const r = await broadcastHttp(port, { topics: ['user.1', 'user.2', 'user.3', 'user.1'], data: { note: 'hi' } }, PT);
      assert.deepEqual(r, { status: 200, body: { published: 3, delivered: 2 } }, 'a repeated topic once; user.3 has no subscriber');
      for (const [c, t] of [[u1, 'user.1'], [u2, 'user.2']] as const) {
        await waitFor(() => c.deliveries(t).length === 1, `${t}'s delivery`);
        assert.deepEqual(c.deliveries(t)[0], { op: 'msg', topic: t, seq: 1, data: { note: 'hi' } });
      }
      assert.equal(u2.deliveries('news').length, 0);

      // A JWT publishes only when its claim grants every topic.
      const jwt = { Authorization: `Bearer ${await signToken({ sub: 'svc', publish: ['user.*'] }, KEY)}` };
      const forbidden = await broadcastHttp(port, { topics: ['user.1', 'news'], data: 1 }, jwt);
      assert.deepEqual(forbidden, { status: 403, body: { error: 'the token does not grant publishing to "news"' } });
      assert.deepEqual((await broadcastHttp(port, { topics: ['user.1', 'user.2'], data: 2 }, jwt)).body, { published: 2, delivered: 2 });
      await waitFor(() => u2.deliveries('user.2').length === 2, 'the granted broadcast');
      assert.deepEqual(u1.deliveries('user.1').map((m) => [m.seq, m.data]), [[1, { note: 'hi' }], [2, 2]], 'nothing from the refused one');
      assert.equal(u2.deliveries('news').length, 0, 'the refused broadcast published nothing');

      for (const [body, status, what] of [
        ['not json', 400, 'not JSON'],
        [{ topics: ['a'] }, 400, 'no data'],
        [{ topics: 'a', data: 1 }, 400, 'topics not a list'],
        [{ topics: [], data: 1 }, 400, 'no topics'],
        [{ topics: Array.from({ length: 1001 }, (_, i) => `t${i}`), data: 1 }, 400, '1001 topics'],
        [{ topics: ['a', 'b..c'], data: 1 }, 400, 'a bad topic'],
        [[1, 2], 400, 'an array'],
      ] as const) {
        assert.equal((await broadcastHttp(port, body, PT)).status, status, what);
      }
      assert.match(String((await broadcastHttp(port, { topics: ['a', 'b..c'], data: 1 }, PT)).body.error), /"b\.\.c"/);
      assert.equal((await broadcastHttp(port, { topics: ['a'], data: 1 })).status, 401, 'no token');
      assert.equal((await broadcastHttp(port, { topics: ['a'], data: 1 }, PT, 'GET')).status, 405);
      const big = await broadcastHttp(port, { topics: ['a'], data: 'x'.repeat(70_000) }, PT);
      assert.equal(big.status, 413, 'over --max-message');
      const m = await scrape(port);
      assert.equal(promValue(m, 'c1m_gateway_messages_in_total'), 5);
      assert.equal(promValue(m, 'c1m_gateway_publish_refused_total'), 10, 'the 403, the 401 and eight 400s (405 and 413 are the HTTP server\'s)');
    });
  });
});

describe('gateway: clients publish through NATS', { skip: NATS_MISSING }, () => {
  test('a pub on one gateway reaches the subscribers of another; while NATS is down a pub gets unavailable, and works again after', GUARD, async () => {
    const natsPort = await freePort();
    let nats: ChildProcess = await startNats(natsPort);
    const o: GatewayOptions = { noAuth: true, clientPublish: true, nats: `nats://${HOST}:${natsPort}` };
    const a = await startGateway(o);
    const b = await startGateway(o);
    const clients: GatewayClient[] = [];
    try {
      const sa = await gatewayClient(a.address.port, '?topics=wide');
      const sb = await gatewayClient(b.address.port, '?topics=wide');
      const pub = await gatewayClient(a.address.port);
      clients.push(sa, sb, pub);
      await Promise.all([acked(sa, 0), acked(sb, 0)]);
      // Both gateways' interest is on the NATS server once they say so (the two gateways of
      // this process are summed in its /metrics).
      while (promValue(await scrape(a.address.port), 'c1m_gateway_nats_subscriptions') !== 2);
      pub.send({ op: 'pub', id: 1, topic: 'wide', data: { hello: 'nats' } });
      assert.deepEqual(await acked(pub, 1), { op: 'ack', id: 1, delivered: null, seq: null, epoch: null }, 'answered once NATS has it');
      for (const c of [sa, sb]) {
        await waitFor(() => c.deliveries('wide').length === 1, 'the delivery on each gateway');
        assert.deepEqual(c.deliveries('wide')[0]!.data, { hello: 'nats' });
      }
      // A broadcast through NATS: answered once NATS has every topic's message.
      assert.deepEqual((await broadcastHttp(b.address.port, { topics: ['elsewhere', 'wide'], data: 'b' })).body, { published: 2, delivered: null });
      for (const c of [sa, sb]) await waitFor(() => c.deliveries('wide').length === 2, 'the broadcast on each gateway');

      await stopProcess(nats);
      // Refused once the gateway sees NATS gone ("published": 0), or, if it has not noticed yet,
      // when the flush goes unanswered ("published": null: not known).
      const down = await broadcastHttp(a.address.port, { topics: ['wide'], data: 'down' });
      assert.equal(down.status, 503);
      assert.ok(down.body.published === 0 ? /NATS is not connected/.test(String(down.body.error)) : down.body.published === null && /not confirmed/.test(String(down.body.error)), JSON.stringify(down.body));
      let id = 2;
      for (;; id++) {
        pub.send({ op: 'pub', id, topic: 'wide', data: id });
        const answer = await pub.next((m) => m.id === id && (m.op === 'ack' || m.op === 'error'), `answer ${id}`);
        if (answer.op === 'error') {
          assert.equal(answer.code, 'unavailable');
          assert.match(String(answer.message), /not published/);
          break;
        }
      }
      const acceptedBeforeDown = id - 1;
      nats = await startNats(natsPort);
      while (promValue(await scrape(a.address.port), 'c1m_gateway_nats_up') !== 2);
      pub.send({ op: 'pub', id: 1000, topic: 'wide', data: 'after' });
      assert.equal((await acked(pub, 1000)).op, 'ack');
      for (const c of [sa, sb]) {
        await waitFor(() => c.deliveries('wide').some((m) => m.data === 'after'), 'the publish after the restart');
        // Nothing refused was delivered; what was acked before NATS went away may be lost
        // with it (core NATS is at most once), never duplicated.
        const data = c.deliveries('wide').map((m) => m.data);
        assert.ok(!data.includes(id), 'the refused pub was not delivered');
        assert.equal(new Set(data.map((d) => JSON.stringify(d))).size, data.length, 'no duplicates');
        assert.ok(data.length <= acceptedBeforeDown + 2, 'the pubs acked before, the broadcast, the one after');
      }
    } finally {
      for (const c of clients) c.close();
      await Promise.all([a.close(1000), b.close(1000)]);
      await stopProcess(nats);
    }
  });
});
