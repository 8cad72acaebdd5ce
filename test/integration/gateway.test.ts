/**
 * The gateway in one process (standalone, no NATS): JWT accept and reject cases (HS256,
 * RS256, ES256; expired, wrong key, forbidden topic, missing token), the client protocol,
 * HTTP publish and its refusals, history and recovery, subscriptions under churn (nothing
 * left behind), and `/metrics` parsed strictly.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exportSPKI, generateKeyPair } from 'jose';
import { listen, type Server } from '../../src/index.js';
import { createGateway, type GatewayOptions } from '../../src/apps/gateway/index.js';
import { GatewayClient, cli, gatewayClient, listening, promValue, publishHttp, scrape, signToken } from '../helpers/gateway.js';
import { GUARD, HOST, waitFor, within } from '../helpers/net.js';
import { RawWebSocket } from '../helpers/ws-raw.js';

/** examples/gateway-banlist.mjs: a handler module on the package's `c1m/gateway` entry (from build-test/test/integration/). */
const banlistModule = fileURLToPath(new URL('../../../examples/gateway-banlist.mjs', import.meta.url));
const SECRET = 'a-test-secret-of-enough-length';
const KEY = new TextEncoder().encode(SECRET);

async function start(o: GatewayOptions): Promise<Server> {
  return listen(await createGateway(o), { port: 0, host: HOST });
}

describe('gateway: auth, protocol, HTTP publish, history', () => {
  let server: Server;
  let port: number;
  const clients: GatewayClient[] = [];
  const track = <T extends GatewayClient>(c: T): T => (clients.push(c), c);

  before(async () => {
    server = await start({ jwtSecret: SECRET, history: 3, publishToken: 'static-publish-token' });
    port = server.address.port;
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close(1000);
  });

  test('a valid token (query or Authorization header): welcome names the user; sub of granted topics acks', GUARD, async () => {
    const token = await signToken({ sub: 'alice', topics: ['news.*', 'user.alice'] }, KEY);
    const a = track(await gatewayClient(port, `?token=${token}&topics=user.alice`));
    assert.deepEqual(a.msgs[0], { op: 'welcome', user: 'alice' });
    const ack0 = await a.next((m) => m.op === 'ack' && m.id === 0, 'the ack of the query topics');
    assert.deepEqual(Object.keys(ack0.topics as object), ['user.alice']);
    a.send({ op: 'sub', id: 7, topics: ['news.sport', 'news.tech'] });
    const ack = await a.next((m) => m.op === 'ack' && m.id === 7, 'ack 7');
    assert.deepEqual(Object.keys(ack.topics as object).sort(), ['news.sport', 'news.tech']);
    const b = track(await gatewayClient(port, '', { Authorization: `Bearer ${token}` }));
    assert.deepEqual(b.msgs[0], { op: 'welcome', user: 'alice' });
    b.send({ op: 'ping', id: 3 });
    assert.deepEqual(await b.next((m) => m.op === 'pong', 'pong'), { op: 'pong', id: 3 });
  });

  test('a forbidden topic: error forbidden, nothing of the op subscribed (the wildcard is one segment)', GUARD, async () => {
    const token = await signToken({ sub: 'bob', topics: ['news.*'] }, KEY);
    const c = track(await gatewayClient(port, `?token=${token}`));
    c.send({ op: 'sub', id: 1, topics: ['news.bob', 'news.bob.live'] });
    const e = await c.next((m) => m.op === 'error', 'the error');
    assert.deepEqual(e, { op: 'error', id: 1, code: 'forbidden', message: 'the token does not grant this topic', topic: 'news.bob.live' });
    const before = (await publishHttp(port, 'news.bob', 'x', { Authorization: 'Bearer static-publish-token' })).body;
    assert.equal(before.delivered, 0, 'bob is not subscribed to news.bob');
    // Forbidden in the URL too: the connection stays, with an error for id 0.
    const d = track(await gatewayClient(port, `?token=${token}&topics=admin`));
    assert.equal((await d.next((m) => m.op === 'error', 'error 0')).code, 'forbidden');
  });

  test('missing token: 401 at the upgrade; expired, wrong key, no sub: closed 4001 with the reason', GUARD, async () => {
    const missing = new GatewayClient(`ws://${HOST}:${port}/ws`);
    await assert.rejects(missing.opened, /401/);
    assert.equal(missing.refused, 401);
    const cases: [string, string][] = [
      [await signToken({ sub: 'c', topics: ['a'] }, KEY, 'HS256', -60), 'unauthorized: expired'],
      [await signToken({ sub: 'c', topics: ['a'] }, new TextEncoder().encode('another-secret-of-enough-length')), 'unauthorized: invalid'],
      [await signToken({ topics: ['a'] }, KEY), 'unauthorized: invalid'],
      ['not.a.jwt', 'unauthorized: invalid'],
    ];
    for (const [token, reason] of cases) {
      const c = track(new GatewayClient(`ws://${HOST}:${port}/ws?token=${encodeURIComponent(token)}&topics=a`));
      // Messages sent before verification are never served to a refused client.
      await within(c.opened, 'the upgrade');
      c.send({ op: 'sub', id: 1, topics: ['a'] });
      assert.deepEqual(await c.waitClosed(), { code: 4001, reason });
      assert.equal(c.msgs.length, 0, `nothing served: ${JSON.stringify(c.msgs)}`);
    }
    const elsewhere = new GatewayClient(`ws://${HOST}:${port}/elsewhere`);
    await assert.rejects(elsewhere.opened, /404/);
  });

  test('an open WebSocket is closed with 4001 "unauthorized: expired" when its token expires; a later token keeps its own', GUARD, async () => {
    const expiries0 = promValue(await scrape(port), 'c1m_gateway_token_expiries_total');
    const short = await signToken({ sub: 'brief', topics: ['x.1'] }, KEY, 'HS256', 2);
    const long = await signToken({ sub: 'lasting', topics: ['x.1'] }, KEY, 'HS256', 3600);
    const s = track(await gatewayClient(port, `?token=${short}&topics=x.1`));
    const l = track(await gatewayClient(port, `?token=${long}&topics=x.1`));
    await s.next((m) => m.op === 'ack', 'the short token\'s ack');
    await l.next((m) => m.op === 'ack', 'the long token\'s ack');
    assert.deepEqual(await s.waitClosed(), { code: 4001, reason: 'unauthorized: expired' });
    // Not before its time: the token was valid until its exp second.
    const exp = (JSON.parse(Buffer.from(short.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
    assert.ok(Date.now() >= exp * 1000, `closed at ${Date.now()}, exp ${exp * 1000}`);
    const { delivered } = (await publishHttp(port, 'x.1', 'after', { Authorization: 'Bearer static-publish-token' })).body;
    assert.equal(delivered, 1, 'the expired subscriber is gone, the other one still gets it');
    assert.equal((await l.next((m) => m.op === 'msg', 'the message')).data, 'after');
    assert.equal(promValue(await scrape(port), 'c1m_gateway_token_expiries_total'), expiries0 + 1);
  });

  test('refresh: a fresh token of the same user keeps the connection past the old exp and grants its topics; a bad or foreign one changes nothing', GUARD, async () => {
    const short = await signToken({ sub: 'renew', topics: ['y.1'] }, KEY, 'HS256', 2);
    const fresh = await signToken({ sub: 'renew', topics: ['y.1', 'y.2'] }, KEY, 'HS256', 3600);
    const r = track(await gatewayClient(port, `?token=${short}&topics=y.1`));
    await r.next((m) => m.op === 'ack' && m.id === 0, 'the connect ack');
    r.send({ op: 'sub', id: 1, topics: ['y.2'] });
    assert.equal((await r.next((m) => m.id === 1, 'reply 1')).code, 'forbidden', 'the first token does not grant y.2');
    r.send({ op: 'refresh', id: 2, token: fresh });
    assert.deepEqual(await r.next((m) => m.id === 2, 'reply 2'), { op: 'ack', id: 2 });
    r.send({ op: 'sub', id: 3, topics: ['y.2'] });
    assert.equal((await r.next((m) => m.id === 3, 'reply 3')).op, 'ack', 'the fresh token grants y.2');
    // Past the first token's exp the connection is still open and gets both topics.
    const exp = (JSON.parse(Buffer.from(short.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 1500));
    assert.equal(r.closed, undefined, 'not closed at the first token\'s exp');
    for (const t of ['y.1', 'y.2']) {
      assert.equal((await publishHttp(port, t, `to ${t}`, { Authorization: 'Bearer static-publish-token' })).body.delivered, 1, t);
      assert.equal((await r.next((m) => m.op === 'msg' && m.topic === t, t)).data, `to ${t}`);
    }

    // Refused refreshes: the grant and its expiry stay as they were.
    const brief = await signToken({ sub: 'renew', topics: ['y.1'] }, KEY, 'HS256', 2);
    const b = track(await gatewayClient(port, `?token=${brief}`));
    b.send({ op: 'refresh', id: 1, token: await signToken({ sub: 'someone-else', topics: ['y.1'] }, KEY) });
    assert.deepEqual(await b.next((m) => m.id === 1, 'reply 1'), { op: 'error', id: 1, code: 'forbidden', message: 'the token names another user' });
    b.send({ op: 'refresh', id: 2, token: await signToken({ sub: 'renew' }, KEY, 'HS256', -10) });
    assert.deepEqual(await b.next((m) => m.id === 2, 'reply 2'), { op: 'error', id: 2, code: 'unauthorized', message: 'the token was refused: expired' });
    b.send({ op: 'refresh', id: 3, token: 'not.a.jwt' });
    assert.equal((await b.next((m) => m.id === 3, 'reply 3')).code, 'unauthorized');
    b.send({ op: 'refresh', id: 4 });
    assert.equal((await b.next((m) => m.id === 4, 'reply 4')).code, 'bad_request');
    assert.deepEqual(await b.waitClosed(), { code: 4001, reason: 'unauthorized: expired' });
  });

  test('ops sent behind a refresh are answered after it, in the order sent', GUARD, async () => {
    const c = track(await gatewayClient(port, `?token=${await signToken({ sub: 'order', topics: ['o.1', 'o.2'] }, KEY)}`));
    const narrower = await signToken({ sub: 'order', topics: ['o.1'] }, KEY);
    c.send({ op: 'refresh', id: 1, token: await signToken({ sub: 'someone-else' }, KEY) });
    c.send({ op: 'refresh', id: 2, token: 'not.a.jwt' });
    c.send({ op: 'ping', id: 3 });
    c.send({ op: 'refresh', id: 4, token: narrower });
    c.send({ op: 'sub', id: 5, topics: ['o.2'] }); // held to the token refresh 4 brings
    c.send({ op: 'ping', id: 6 });
    await c.next((m) => m.id === 6, 'the last answer');
    const answers = c.msgs.filter((m) => m.id !== undefined && m.id > 0);
    assert.deepEqual(answers.map((m) => [m.id, m.op, m.code]), [
      [1, 'error', 'forbidden'], [2, 'error', 'unauthorized'], [3, 'pong', undefined], [4, 'ack', undefined], [5, 'error', 'forbidden'], [6, 'pong', undefined],
    ]);
  });

  test('messages sent before the token is verified are served after it, in order', GUARD, async () => {
    const token = await signToken({ sub: 'early', topics: ['e1', 'e2'] }, KEY);
    const c = track(new GatewayClient(`ws://${HOST}:${port}/ws?token=${token}`));
    await within(c.opened, 'the upgrade');
    c.send({ op: 'sub', id: 1, topics: ['e1'] });
    c.send({ op: 'sub', id: 2, topics: ['e2'] });
    await c.next((m) => m.id === 2, 'ack 2');
    assert.deepEqual(c.msgs.map((m) => `${m.op}${m.id ?? ''}`), ['welcome', 'ack1', 'ack2']);
  });

  test('HTTP publish: 401 without or with a bad token, 403 without the publish claim, 404, 413, 400; 200 delivers once', GUARD, async () => {
    const sub = await signToken({ sub: 'reader', topics: ['room.>'] }, KEY);
    const writer = await signToken({ sub: 'writer', topics: [], publish: ['room.*'] }, KEY);
    const c = track(await gatewayClient(port, `?token=${sub}&topics=room.1`));
    await c.next((m) => m.op === 'ack', 'ack');
    assert.equal((await publishHttp(port, 'room.1', 'x')).status, 401);
    assert.equal((await publishHttp(port, 'room.1', 'x', { Authorization: 'Bearer nope' })).status, 401);
    const expired = await signToken({ sub: 'w', publish: true }, KEY, 'HS256', -10);
    assert.equal((await publishHttp(port, 'room.1', 'x', { Authorization: `Bearer ${expired}` })).status, 401);
    assert.equal((await publishHttp(port, 'room.1', 'x', { Authorization: `Bearer ${sub}` })).status, 403);
    assert.equal((await publishHttp(port, 'room.1.deep', 'x', { Authorization: `Bearer ${writer}` })).status, 403);
    assert.equal((await publishHttp(port, 'bad..topic', 'x', { Authorization: `Bearer ${writer}` })).status, 404);
    assert.equal((await publishHttp(port, 'room.1', 'x'.repeat(70_000), { Authorization: `Bearer ${writer}` })).status, 413);
    assert.equal((await publishHttp(port, 'room.1', '{oops', { Authorization: `Bearer ${writer}`, 'Content-Type': 'application/json' })).status, 400);
    assert.equal(c.deliveries().length, 0, 'no refused publish was delivered');
    const ok = await publishHttp(port, 'room.1', '{"n":1}', { Authorization: `Bearer ${writer}`, 'Content-Type': 'application/json' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.delivered, 1);
    assert.equal(ok.body.seq, 1);
    const text = await publishHttp(port, 'room.1', 'plain "text"', { Authorization: 'Bearer static-publish-token' });
    assert.equal(text.body.seq, 2);
    await waitFor(() => c.deliveries().length === 2, 'two deliveries');
    assert.deepEqual(c.deliveries(), [
      { op: 'msg', topic: 'room.1', seq: 1, data: { n: 1 } },
      { op: 'msg', topic: 'room.1', seq: 2, data: 'plain "text"' },
    ]);
  });

  test('history: a reconnect with since gets what it missed; past the history, recovered:false', GUARD, async () => {
    const token = await signToken({ sub: 'h', topics: ['hist'] }, KEY);
    const pub = { Authorization: 'Bearer static-publish-token' };
    const a = track(await gatewayClient(port, `?token=${token}&topics=hist`));
    const { seq: seq0, epoch } = ((await a.next((m) => m.op === 'ack', 'ack')).topics as Record<string, { seq: number; epoch: string }>).hist!;
    assert.equal(seq0, 0);
    await publishHttp(port, 'hist', 'm1', pub);
    await waitFor(() => a.deliveries().length === 1, 'm1');
    a.close();
    for (const m of ['m2', 'm3', 'm4']) await publishHttp(port, 'hist', m, pub);
    // Missed m2..m4, all still kept (history 3): recovered, in order, then live.
    const b = track(await gatewayClient(port, `?token=${token}&topics=hist&since=hist:1:${epoch}`));
    const ack = await b.next((m) => m.op === 'ack', 'ack');
    assert.deepEqual(ack.topics, { hist: { seq: 4, epoch, recovered: true } });
    await waitFor(() => b.deliveries().length === 3, 'the recovered messages');
    assert.deepEqual(b.deliveries().map((m) => [m.seq, m.data]), [[2, 'm2'], [3, 'm3'], [4, 'm4']]);
    // Two more: m1..m2 are gone from the history (3 kept: m4..m6).
    for (const m of ['m5', 'm6']) await publishHttp(port, 'hist', m, pub);
    const c = track(await gatewayClient(port, `?token=${token}`));
    c.send({ op: 'sub', id: 9, topics: ['hist'], since: { hist: { seq: 2, epoch } } });
    assert.deepEqual((await c.next((m) => m.op === 'ack', 'ack')).topics, { hist: { seq: 6, epoch, recovered: false } });
    c.send({ op: 'unsub', id: 10, topics: ['hist'] });
    c.send({ op: 'sub', id: 11, topics: ['hist'], since: { hist: { seq: 3, epoch } } });
    await c.next((m) => m.id === 11, 'ack 11');
    assert.deepEqual(c.msgs.find((m) => m.id === 11)!.topics, { hist: { seq: 6, epoch, recovered: true } });
    await waitFor(() => c.deliveries().length === 3, 'm4..m6');
    assert.deepEqual(c.deliveries().map((m) => m.seq), [4, 5, 6]);
    // Another epoch (another process, or a stream started again): not recovered.
    c.send({ op: 'unsub', id: 12, topics: ['hist'] });
    c.send({ op: 'sub', id: 13, topics: ['hist'], since: { hist: { seq: 5, epoch: 'ffffffffffff-1' } } });
    assert.equal(((await c.next((m) => m.id === 13, 'ack 13')).topics as Record<string, { recovered: boolean }>).hist!.recovered, false);
  });

  test('bad client messages get errors and the connection stays', GUARD, async () => {
    const token = await signToken({ sub: 'x', topics: ['>'] }, KEY);
    const c = track(await gatewayClient(port, `?token=${token}`));
    const bad: [unknown, string][] = [
      ['{not json', 'bad_request'], [{ op: 'nope', id: 1 }, 'bad_request'], [{ op: 'sub', id: 2, topics: [] }, 'bad_request'],
      [{ op: 'sub', id: 3, topics: ['a b'] }, 'invalid_topic'], [{ op: 'sub', id: 4, topics: ['a.*'] }, 'invalid_topic'],
      [{ op: 'sub', id: 5, topics: ['a'], since: { b: { seq: 1, epoch: 'e' } } }, 'bad_request'],
    ];
    for (const [m, code] of bad) c.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
    await waitFor(() => c.msgs.filter((m) => m.op === 'error').length === bad.length, 'every error');
    assert.deepEqual(c.msgs.filter((m) => m.op === 'error').map((m) => m.code), bad.map(([, code]) => code));
    c.send({ op: 'ping', id: 99 });
    await c.next((m) => m.op === 'pong', 'still served');
  });

  test('subscriptions under churn: none left behind (metrics back to zero)', GUARD, async () => {
    const token = await signToken({ sub: 'churn', topics: ['churn.>'] }, KEY);
    const before = await scrape(port);
    const subs0 = promValue(before, 'c1m_gateway_subscriptions');
    const topics0 = promValue(before, 'c1m_gateway_topics');
    for (let round = 0; round < 5; round++) {
      const cs = await Promise.all(Array.from({ length: 20 }, (_, i) => gatewayClient(port, `?token=${token}&topics=churn.${i % 7},churn.all`)));
      for (const [i, c] of cs.entries()) {
        c.send({ op: 'sub', id: 1, topics: [`churn.x${i % 3}`] });
        if (i % 2 === 0) c.send({ op: 'unsub', id: 2, topics: ['churn.all'] });
      }
      await Promise.all(cs.map((c, i) => c.next((m) => m.id === (i % 2 === 0 ? 2 : 1), 'the last ack')));
      const mid = await scrape(port);
      assert.equal(promValue(mid, 'c1m_gateway_subscriptions') - subs0, 20 + 20 + 10);
      // Half leave cleanly, half vanish.
      for (const [i, c] of cs.entries()) (i % 2 ? c.ws.close() : c.close());
      await Promise.all(cs.map((c) => c.waitClosed()));
    }
    // The server sees the last closes a moment after the clients do.
    let after = await scrape(port);
    while (promValue(after, 'c1m_gateway_subscriptions') !== subs0) after = await scrape(port);
    assert.equal(promValue(after, 'c1m_gateway_subscriptions'), subs0);
    assert.equal(promValue(after, 'c1m_gateway_topics'), topics0);
  });

  test('/metrics: strict text format, engine and gateway families with their types', GUARD, async () => {
    const m = await scrape(port);
    for (const [name, type] of [
      ['c1m_connections', 'gauge'], ['c1m_reactor_batches', 'gauge'], ['c1m_reactor_events', 'gauge'], ['c1m_memory_rss_bytes', 'gauge'],
      ['c1m_memory_compactions', 'gauge'], ['c1m_memory_compaction_pause_max_seconds', 'gauge'],
      ['c1m_event_loop_delay_max_seconds', 'gauge'], ['c1m_gateway_clients', 'gauge'], ['c1m_gateway_subscriptions', 'gauge'],
      ['c1m_gateway_messages_in_total', 'counter'], ['c1m_gateway_deliveries_total', 'counter'], ['c1m_gateway_drops_total', 'counter'],
      ['c1m_gateway_slow_closed_total', 'counter'], ['c1m_gateway_bytes_out_total', 'counter'], ['c1m_gateway_delivery_latency_seconds', 'histogram'],
    ] as const) assert.equal(m.get(name)?.type, type, name);
    assert.ok(promValue(m, 'c1m_gateway_messages_out_total') > 0);
    assert.ok(promValue(m, 'c1m_gateway_deliveries_total') >= promValue(m, 'c1m_gateway_messages_out_total'));
    assert.ok(promValue(m, 'c1m_gateway_auth_failures_total') >= 5);
    // 401 x3, 403 x2, 404, 400 (the 413 is the HTTP parser's, before any route runs).
    assert.ok(promValue(m, 'c1m_gateway_publish_refused_total') >= 7);
    assert.ok(promValue(m, 'c1m_memory_rss_bytes') > 0);
    assert.equal(promValue(m, 'c1m_workers'), 1);
  });
});

describe('gateway: public keys and open gateways', () => {
  for (const alg of ['RS256', 'ES256'] as const) {
    test(`${alg}: a token signed by the key's pair is accepted, another pair's refused`, GUARD, async () => {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
      const other = await generateKeyPair(alg);
      const server = await start({ jwtPublicKey: await exportSPKI(publicKey) });
      const clients: GatewayClient[] = [];
      try {
        const port = server.address.port;
        const good = await gatewayClient(port, `?token=${await signToken({ sub: 'k', topics: ['t'] }, privateKey, alg)}&topics=t`);
        clients.push(good);
        await good.next((m) => m.op === 'ack', 'ack');
        const bad = new GatewayClient(`ws://${HOST}:${port}/ws?token=${await signToken({ sub: 'k' }, other.privateKey, alg)}`);
        clients.push(bad);
        assert.deepEqual(await bad.waitClosed(), { code: 4001, reason: 'unauthorized: invalid' });
        // An HS256 token is refused by a public-key gateway (no algorithm confusion).
        const hs = new GatewayClient(`ws://${HOST}:${port}/ws?token=${await signToken({ sub: 'k' }, KEY)}`);
        clients.push(hs);
        assert.equal((await hs.waitClosed()).code, 4001);
      } finally {
        for (const c of clients) c.close();
        await server.close(1000);
      }
    });
  }

  test('--no-auth: no token needed; publishing needs the publish token when one is set; authorize can refuse (4003)', GUARD, async () => {
    const server = await start({ noAuth: true, publishToken: 'pt', authorize: (_grant, req) => !req.target.includes('deny=1') });
    const clients: GatewayClient[] = [];
    try {
      const port = server.address.port;
      const c = await gatewayClient(port, '?topics=open.a');
      clients.push(c);
      await c.next((m) => m.op === 'ack', 'ack');
      assert.equal((await publishHttp(port, 'open.a', 'x')).status, 401);
      assert.equal((await publishHttp(port, 'open.a', 'x', { Authorization: 'Bearer wrong' })).status, 401);
      assert.equal((await publishHttp(port, 'open.a', 'x', { Authorization: 'Bearer pt' })).body.delivered, 1);
      const denied = new GatewayClient(`ws://${HOST}:${port}/ws?deny=1`);
      clients.push(denied);
      assert.deepEqual(await denied.waitClosed(), { code: 4003, reason: 'forbidden' });
    } finally {
      for (const c of clients) c.close();
      await server.close(1000);
    }
  });

  test('authorizeInterval: authorize runs again on open connections; one it now refuses is closed with 4003, a throwing check keeps it', GUARD, async () => {
    const banned = new Set<string>();
    let failing = false;
    let checks = 0;
    const server = await start({
      jwtSecret: SECRET, authorizeInterval: 50,
      authorize: (grant, req) => {
        checks++;
        if (failing && grant.user === 'carol') throw new Error('the ban list is down');
        return !banned.has(grant.user) && req.target.startsWith('/ws');
      },
    });
    const clients: GatewayClient[] = [];
    try {
      const port = server.address.port;
      const open = async (sub: string): Promise<GatewayClient> => {
        const c = await gatewayClient(port, `?token=${await signToken({ sub, topics: ['a'] }, KEY)}&topics=a`);
        clients.push(c);
        await c.next((m) => m.op === 'ack', `${sub}'s ack`);
        return c;
      };
      const [alice, bob, carol] = [await open('alice'), await open('bob'), await open('carol')];
      const failures0 = promValue(await scrape(port), 'c1m_gateway_auth_failures_total');
      const before = checks;
      await waitFor(() => checks >= before + 6, 'two rounds of checks');
      assert.equal(alice.closed ?? bob.closed ?? carol.closed, undefined, 'all still allowed');
      failing = true;
      banned.add('bob');
      assert.deepEqual(await bob.waitClosed(), { code: 4003, reason: 'forbidden' });
      const after = checks;
      await waitFor(() => checks >= after + 4, 'more rounds, carol\'s check throwing');
      assert.equal(carol.closed, undefined, 'a check that throws keeps the connection');
      assert.equal(alice.closed, undefined);
      assert.equal(promValue(await scrape(port), 'c1m_gateway_auth_failures_total'), failures0 + 1);
    } finally {
      for (const c of clients) c.close();
      await server.close(1000);
    }
    await assert.rejects(createGateway({ jwtSecret: SECRET, authorizeInterval: 1000 }), /authorizeInterval needs an authorize hook/);
    await assert.rejects(createGateway({ jwtSecret: SECRET, authorizeInterval: 0, authorize: () => true }), /authorizeInterval must be a number of ms > 0/);
  });

  test('examples/gateway-banlist.mjs, a handler module on the package\'s c1m/gateway entry, runs under c1m serve: a banned user is refused at connect and once open', GUARD, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'c1m-banlist-'));
    const list = join(dir, 'banned');
    writeFileSync(list, 'mallory\n');
    process.env.BANLIST = list;
    process.env.BANLIST_MS = '100';
    const c = cli([banlistModule, '--port', '0', '--host', HOST, '--handler-options', JSON.stringify({ jwtSecret: SECRET })]);
    const clients: GatewayClient[] = [];
    try {
      const port = await listening(c);
      const token = (sub: string): Promise<string> => signToken({ sub, topics: ['a'] }, KEY);
      const mallory = new GatewayClient(`ws://${HOST}:${port}/ws?token=${await token('mallory')}`);
      const trent = await gatewayClient(port, `?token=${await token('trent')}&topics=a`);
      clients.push(mallory, trent);
      assert.deepEqual(await mallory.waitClosed(), { code: 4003, reason: 'forbidden' }, 'refused at connect');
      await trent.next((m) => m.op === 'ack', 'trent\'s ack');
      writeFileSync(list, 'mallory\ntrent\n');
      assert.deepEqual(await trent.waitClosed(), { code: 4003, reason: 'forbidden' }, 'refused once open, by the next round');
    } finally {
      for (const x of clients) x.close();
      c.child.kill('SIGKILL');
      delete process.env.BANLIST;
      delete process.env.BANLIST_MS;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('--no-auth without authorize: each connect acks its topics at their position, the query decoded as URLSearchParams does', GUARD, async () => {
    const server = await start({ noAuth: true, publishToken: 'pt' });
    const clients: GatewayClient[] = [];
    const connect = async (query: string): Promise<GatewayClient> => {
      const c = await gatewayClient(server.address.port, query);
      clients.push(c);
      return c;
    };
    const ackOf = async (c: GatewayClient, id = 0): Promise<Record<string, { seq: number; epoch: string }>> =>
      (await c.next((m) => m.op === 'ack' && m.id === id, `ack ${id}`)).topics as Record<string, { seq: number; epoch: string }>;
    try {
      const port = server.address.port;
      const a = await connect('?topics=st.a');
      assert.deepEqual(a.msgs[0], { op: 'welcome', user: '' });
      const first = (await ackOf(a))['st.a']!;
      assert.equal(first.seq, 0);
      assert.equal((await publishHttp(port, 'st.a', '1', { Authorization: 'Bearer pt' })).body.delivered, 1);
      // The same topic after a publish: the new position (not the last connect's ack again).
      const b = await connect('?topics=st.a');
      assert.deepEqual((await ackOf(b))['st.a'], { seq: 1, epoch: first.epoch });
      b.send({ op: 'sub', id: 4, topics: ['st.a'] });
      assert.deepEqual(await ackOf(b, 4), { 'st.a': { seq: 1, epoch: first.epoch } });
      // Escapes and `+` are decoded; a second `?` before the query is dropped, as URLSearchParams drops it.
      const c = await connect('?topics=st.b%2Cst%2Ec&x=a+b');
      assert.deepEqual(Object.keys(await ackOf(c)).sort(), ['st.b', 'st.c']);
      const d = await connect('??topics=st.d');
      assert.deepEqual(Object.keys(await ackOf(d)), ['st.d']);
      const bad = new GatewayClient(`ws://${HOST}:${port}/ws?topics=st.*`);
      clients.push(bad);
      await assert.rejects(bad.opened, /400/);
      assert.equal((await publishHttp(port, 'st.a', '2', { Authorization: 'Bearer pt' })).body.delivered, 2);
    } finally {
      for (const c of clients) c.close();
      await server.close(1000);
    }
  });

  test('inconsistent auth options are refused', async () => {
    await assert.rejects(createGateway({}), /exactly one of jwtSecret, jwtPublicKey, noAuth/);
    await assert.rejects(createGateway({ noAuth: true, jwtSecret: SECRET }), /exactly one/);
    await assert.rejects(createGateway({ jwtSecret: 'short' }), /at least 16/);
  });
});

describe('gateway: slow subscribers', () => {
  for (const policy of ['close', 'drop'] as const) {
    test(`slowSubscriber '${policy}': a subscriber that stops reading is ${policy === 'close' ? 'closed' : 'skipped'}; the others get everything`, GUARD, async () => {
      const server = await start({ noAuth: true, publishToken: 'pt', pubsub: { slowSubscriber: policy, maxBufferedBytes: 256 * 1024 } });
      const port = server.address.port;
      const healthy = await gatewayClient(port, '?topics=slow');
      const stuck = await RawWebSocket.connect(port, { path: '/ws?topics=slow' });
      try {
        await healthy.next((m) => m.op === 'ack', 'ack');
        stuck.socket.pause(); // reads nothing more: the kernel's buffers fill, then the server's
        const body = 'x'.repeat(60_000);
        let published = 0;
        const stat = async (name: string): Promise<number> => promValue(await scrape(port), name);
        const metric = policy === 'close' ? 'c1m_gateway_slow_closed_total' : 'c1m_gateway_drops_total';
        while ((await stat(metric)) === 0) {
          assert.equal((await publishHttp(port, 'slow', body, { Authorization: 'Bearer pt' })).status, 200);
          published++;
        }
        await publishHttp(port, 'slow', 'last', { Authorization: 'Bearer pt' });
        published++;
        await waitFor(() => healthy.deliveries().length === published, 'every message to the healthy subscriber');
        assert.deepEqual(healthy.deliveries().map((m) => m.seq), Array.from({ length: published }, (_, i) => i + 1));
        const m = await scrape(port);
        if (policy === 'close') {
          stuck.socket.resume(); // to see the reset
          await waitFor(() => stuck.closed, 'the slow subscriber to be closed');
          assert.equal(promValue(m, 'c1m_gateway_slow_closed_total'), 1);
          let after = await scrape(port);
          while (promValue(after, 'c1m_gateway_subscriptions') !== 1) after = await scrape(port);
        } else {
          assert.equal(stuck.closed, false);
          assert.ok(promValue(m, 'c1m_gateway_drops_total') >= 1);
          assert.equal(promValue(m, 'c1m_gateway_slow_closed_total'), 0);
        }
      } finally {
        healthy.close();
        stuck.destroy();
        await server.close(1000);
      }
    });
  }
});
