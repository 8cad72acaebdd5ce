/**
 * `POST /disconnect/<user>`: every open WebSocket of the user is closed with 4009 and the
 * reason, its subscriptions with it, other users untouched; a client that ignores the close
 * frame and goes on sending publishes nothing; a control prefix that overlaps the topic prefix
 * is refused at start; only the publish token may (not a
 * user's JWT, not without a publish token, not on an open gateway, which has no users); a
 * refreshed token keeps its connection filed under its user, and a closed one leaves nothing
 * filed. With NATS the disconnect reaches every gateway sharing it (a control message), is
 * answered once NATS has it, is refused with 503 while NATS is down, and works again once it is
 * back (the control subscription is restored).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, test } from 'node:test';
import type { GatewayOptions } from '../../src/apps/gateway/index.js';
import {
  NATS_MISSING, freePort, gatewayClient, promValue, publishHttp, scrape, signToken, startGateway, startNats, stopProcess, type GatewayClient,
} from '../helpers/gateway.js';
import { GUARD, HOST, waitFor } from '../helpers/net.js';
import { OP, RawWebSocket, closeOf } from '../helpers/ws-raw.js';
import { createGateway } from '../../src/apps/gateway/index.js';

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

describe('gateway: disconnecting a user', () => {
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
    } finally {
      await open.close(1000);
      await closed.close(1000);
    }
  });
});

describe('gateway: disconnecting a user through NATS', { skip: NATS_MISSING }, () => {
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
      assert.deepEqual((await post(a.address.port, '/disconnect/alice?reason=bye')).body, { disconnected: null });
      for (const x of [onA, onB]) assert.deepEqual(await x.waitClosed(), { code: 4009, reason: 'bye' });
      // Bob, and alice on a gateway with its own control prefix, are untouched: a publish on
      // b after the disconnect reaches bob, and one on the other gateway reaches alice there.
      await publishHttp(b.address.port, 't', 'after', PUB);
      await waitFor(() => bob.deliveries('t').length === 1, 'bob\'s delivery');
      await publishHttp(other.address.port, 't', 'after', PUB);
      await waitFor(() => onOther.deliveries('t').length === 1, 'the other gateway\'s alice');
      assert.equal(onOther.closed, undefined);
      // The three gateways share this process's registry: its /metrics sums them.
      assert.equal(promValue(await scrape(a.address.port), 'c1m_gateway_disconnects_total'), 2, 'one on a, one on b');

      await stopProcess(nats);
      const down = await post(a.address.port, '/disconnect/bob');
      assert.equal(down.status, 503);
      assert.match(String(down.body.error), /not sent/);
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
