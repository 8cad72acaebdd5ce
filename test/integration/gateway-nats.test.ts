/**
 * The gateway across processes and machines through NATS, with a `nats-server` this test
 * starts on a free port: `c1m serve gateway --processes 2 --nats` (fan-out between the two
 * prefork workers, each subscriber gets each message once, interest follows subscribers),
 * two separate gateways sharing one server (and a backend publishing on NATS directly), and a
 * NATS restart (publishes refused with 503 while it is down, no subscription lost after).
 * Skipped, saying why, when nats-server is not installed.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, headers } from 'nats';
import type {} from '../../src/cli/run.js';
import { Broker, type BrokerMessage } from '../../src/apps/gateway/broker.js';
import { nativeAvailable } from '../helpers/backends.js';
import {
  NATS_MISSING, cli, freePort, gatewayClient, listening, promValue, publishHttp, scrape, signToken, startGateway, startNats, stopProcess,
  type Cli, type GatewayClient,
} from '../helpers/gateway.js';
import { GUARD, HOST, waitFor, within } from '../helpers/net.js';

const PUB = { Authorization: 'Bearer pt' };

/** The process part of a stream epoch (`<process>-<counter>`). */
const processOf = (c: GatewayClient, topic: string): string => {
  const ack = c.msgs.find((m) => m.op === 'ack' && (m.topics as Record<string, unknown> | undefined)?.[topic] !== undefined);
  assert.ok(ack, `an ack for ${topic}`);
  return ((ack.topics as Record<string, { epoch: string }>)[topic]!.epoch).split('-')[0]!;
};

async function stopCli(c: Cli): Promise<void> {
  c.child.kill('SIGTERM');
  const exit = await within(c.exited, 'the gateway to exit', 60_000);
  assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${c.stderr}`);
}

describe('gateway over NATS', { skip: NATS_MISSING }, () => {
  let natsPort: number;
  let nats: ChildProcess;
  let url: string;
  before(async () => {
    natsPort = await freePort();
    nats = await startNats(natsPort);
    url = `nats://${HOST}:${natsPort}`;
  });
  after(async () => {
    await stopProcess(nats);
  });

  test('--processes 2: a publish reaches the subscribers of both workers, each exactly once; interest follows subscribers', { ...GUARD, skip: !nativeAvailable && 'native backend unavailable' }, async () => {
    const g = cli(['gateway', '--port', '0', '--host', HOST, '--processes', '2', '--nats', url, '--no-auth', '--publish-token', 'pt']);
    const clients: GatewayClient[] = [];
    try {
      const port = await listening(g);
      // Connect until both workers have subscribers (the kernel spreads connections).
      const workers = new Set<string>();
      while (workers.size < 2 || clients.length < 8) {
        const c = await gatewayClient(port, '?topics=fan,fan.other');
        clients.push(c);
        await c.next((m) => m.op === 'ack', 'ack');
        workers.add(processOf(c, 'fan'));
      }
      // Two NATS subscriptions per worker (fan, fan.other), summed over both workers.
      let m = await scrape(port);
      while (promValue(m, 'c1m_gateway_nats_subscriptions') !== 4) m = await scrape(port);
      assert.equal(promValue(m, 'c1m_workers'), 2);
      assert.equal(promValue(m, 'c1m_gateway_clients'), clients.length);
      for (let i = 1; i <= 3; i++) {
        const r = await publishHttp(port, 'fan', `m${i}`, PUB);
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
      await Promise.all(clients.map((c) => waitFor(() => c.deliveries('fan').length >= 3, 'three deliveries')));
      // One more message as a fence: anything duplicated would have arrived before it.
      await publishHttp(port, 'fan', 'fence', PUB);
      await Promise.all(clients.map((c) => waitFor(() => c.deliveries('fan').some((x) => x.data === 'fence'), 'the fence')));
      for (const c of clients) assert.deepEqual(c.deliveries('fan').map((x) => x.data), ['m1', 'm2', 'm3', 'fence']);
      // Everyone leaves fan.other: no worker keeps its NATS subscription (no history kept).
      for (const c of clients) c.send({ op: 'unsub', id: 5, topics: ['fan.other'] });
      await Promise.all(clients.map((c) => c.next((x) => x.id === 5, 'unsub ack')));
      m = await scrape(port);
      while (promValue(m, 'c1m_gateway_nats_subscriptions') !== 2) m = await scrape(port);
      for (const c of clients) c.close();
      m = await scrape(port);
      while (promValue(m, 'c1m_gateway_nats_subscriptions') !== 0) m = await scrape(port);
      assert.equal(promValue(m, 'c1m_gateway_subscriptions'), 0);
      // Nobody subscribed: accepted by NATS (answered once NATS has it: no local count, no position).
      assert.deepEqual((await publishHttp(port, 'fan', 'late', PUB)).body, { delivered: null, seq: null, epoch: null });
      await stopCli(g);
    } finally {
      for (const c of clients) c.close();
      g.child.kill('SIGKILL');
    }
  });

  test('two gateways sharing one NATS server: a publish on either, or on NATS itself, reaches both', GUARD, async () => {
    const a = cli(['gateway', '--port', '0', '--host', HOST, '--nats', url, '--no-auth', '--publish-token', 'pt']);
    const b = cli(['gateway', '--port', '0', '--host', HOST, '--nats', url, '--no-auth', '--publish-token', 'pt']);
    const clients: GatewayClient[] = [];
    const nc = await connect({ servers: url });
    try {
      const [pa, pb] = await Promise.all([listening(a), listening(b)]);
      const ca = await gatewayClient(pa, '?topics=shared');
      const cb = await gatewayClient(pb, '?topics=shared');
      clients.push(ca, cb);
      await Promise.all([ca.next((m) => m.op === 'ack', 'ack a'), cb.next((m) => m.op === 'ack', 'ack b')]);
      // Each gateway's interest has reached the NATS server once its own round trip is done.
      await nc.flush();
      let ma = await scrape(pa);
      while (promValue(ma, 'c1m_gateway_nats_subscriptions') !== 1) ma = await scrape(pa);
      let mb = await scrape(pb);
      while (promValue(mb, 'c1m_gateway_nats_subscriptions') !== 1) mb = await scrape(pb);
      const fromA = await publishHttp(pa, 'shared', 'from a', PUB);
      assert.deepEqual(fromA.body, { delivered: null, seq: null, epoch: null }, 'answered once NATS has it, before local delivery');
      await publishHttp(pb, 'shared', 'from b', PUB);
      const h = headers();
      h.set('Content-Type', 'application/json');
      nc.publish('c1m.topic.shared', new TextEncoder().encode('{"from":"nats"}'), { headers: h });
      nc.publish('c1m.topic.shared', new TextEncoder().encode('raw text'));
      await nc.flush();
      for (const c of [ca, cb]) {
        await waitFor(() => c.deliveries('shared').length === 4, 'four deliveries');
        assert.deepEqual(c.deliveries('shared').map((x) => [x.seq, x.data]), [[1, 'from a'], [2, 'from b'], [3, { from: 'nats' }], [4, 'raw text']]);
      }
      await Promise.all([stopCli(a), stopCli(b)]);
    } finally {
      for (const c of clients) c.close();
      await nc.close();
      a.child.kill('SIGKILL');
      b.child.kill('SIGKILL');
    }
  });

  test('NATS restart: publishes refused with 503 while it is down, local subscribers kept, every subscription back after', GUARD, async () => {
    const port2 = await freePort();
    let server = await startNats(port2);
    const g = cli(['gateway', '--port', '0', '--host', HOST, '--nats', `nats://${HOST}:${port2}`, '--no-auth', '--publish-token', 'pt']);
    const clients: GatewayClient[] = [];
    try {
      const port = await listening(g);
      for (let i = 0; i < 6; i++) {
        const c = await gatewayClient(port, `?topics=r${i % 3},rall`);
        clients.push(c);
        await c.next((m) => m.op === 'ack', 'ack');
      }
      assert.equal((await publishHttp(port, 'rall', 'before', PUB)).status, 200);
      await Promise.all(clients.map((c) => waitFor(() => c.deliveries('rall').length === 1, 'before')));
      await stopProcess(server);
      let down = await publishHttp(port, 'rall', 'during', PUB);
      while (down.status === 200) down = await publishHttp(port, 'rall', 'during', PUB); // until the client notices
      assert.equal(down.status, 503);
      assert.match(String(down.body.error), /not published/);
      // A subscription made while NATS is down is kept too.
      const late = await gatewayClient(port, '?topics=r9');
      clients.push(late);
      await late.next((m) => m.op === 'ack', 'ack');
      let m = await scrape(port);
      assert.equal(promValue(m, 'c1m_gateway_nats_up'), 0);
      server = await startNats(port2);
      m = await scrape(port);
      while (promValue(m, 'c1m_gateway_nats_up') !== 1) m = await scrape(port);
      assert.equal(promValue(m, 'c1m_gateway_nats_subscriptions'), 5, 'r0 r1 r2 rall r9');
      for (const topic of ['rall', 'r0', 'r1', 'r2', 'r9']) {
        const r = await publishHttp(port, topic, `after ${topic}`, PUB);
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
      for (const [i, c] of clients.slice(0, 6).entries()) {
        await waitFor(() => c.deliveries().length === 3, 'before, after rall, after r<i>');
        assert.deepEqual(c.deliveries().map((x) => x.data), ['before', 'after rall', `after r${i % 3}`]);
      }
      await waitFor(() => late.deliveries().length === 1, 'the late subscriber');
      await stopCli(g);
    } finally {
      for (const c of clients) c.close();
      g.child.kill('SIGKILL');
      await stopProcess(server);
    }
  });

  test('with --history the history is in JetStream: the interest ends with the last subscriber, and a reconnect still recovers what it missed', GUARD, async () => {
    // (test/integration/gateway-jetstream.test.ts covers the shared history in depth.)
    const jsPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'c1m-nats-'));
    const jsServer = await startNats(jsPort, ['-js', '-sd', dir]);
    const g = cli(['gateway', '--port', '0', '--host', HOST, '--nats', `nats://${HOST}:${jsPort}`, '--no-auth', '--publish-token', 'pt', '--history', '10']);
    const clients: GatewayClient[] = [];
    try {
      const port = await listening(g);
      const a = await gatewayClient(port, '?topics=kept');
      clients.push(a);
      const { epoch, seq } = ((await a.next((m) => m.op === 'ack', 'ack')).topics as Record<string, { epoch: string; seq: number }>).kept!;
      a.close();
      let m = await scrape(port);
      while (promValue(m, 'c1m_gateway_nats_subscriptions') !== 0) m = await scrape(port);
      const seqs: unknown[] = [];
      for (const x of ['k1', 'k2']) {
        const r = await publishHttp(port, 'kept', x, PUB);
        assert.equal(r.body.delivered, null);
        seqs.push(r.body.seq);
      }
      const b = await gatewayClient(port, `?topics=kept&since=kept:${seq}:${epoch}`);
      clients.push(b);
      assert.deepEqual((await b.next((x) => x.op === 'ack', 'ack')).topics, { kept: { seq: seqs[1], epoch, recovered: true } });
      await waitFor(() => b.deliveries().length === 2, 'the recovered messages');
      assert.deepEqual(b.deliveries().map((x) => x.data), ['k1', 'k2']);
      await stopCli(g);
    } finally {
      for (const c of clients) c.close();
      g.child.kill('SIGKILL');
      await stopProcess(jsServer);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a publish resolves once NATS has it, before this process delivers its own copy (which follows, in order)', GUARD, async () => {
    // What an HTTP publish waits for: the flush's PONG, which NATS sends after our own copy of
    // the message. Counted at that moment, local delivery must not have run yet (it is queued
    // behind the answer); then it runs. Delivering inside the NATS callback fails the first check.
    const seen: string[] = [];
    const b = await Broker.connect({ servers: url }, (m: BrokerMessage) => void seen.push(new TextDecoder().decode(m.data)));
    try {
      b.interest('order', true);
      await b.connection.flush(); // the subscription is on the server
      for (let i = 0; i < 10; i++) {
        await b.publish(['order'], new TextEncoder().encode(`m${i}`), undefined);
        assert.equal(seen.length, i, `publish m${i} resolved after its local delivery`);
        await waitFor(() => seen.length === i + 1, `m${i} delivered after the answer`);
      }
      assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => `m${i}`));
    } finally {
      await b.close();
    }
  });

  test('a user\'s publish rate holds over gateways: what it spent on one is charged on the other', GUARD, async () => {
    const SECRET = 'a-test-secret-of-enough-length';
    const KEY = new TextEncoder().encode(SECRET);
    const o = { jwtSecret: SECRET, clientPublish: true, nats: url, pingInterval: 0 };
    const [a, b] = [await startGateway(o), await startGateway(o)];
    const clients: GatewayClient[] = [];
    const reply = async (c: GatewayClient, id: number): Promise<string> => {
      c.send({ op: 'pub', id, topic: 'rate.t', data: id });
      const m = await c.next((x) => x.id === id, `the answer to pub ${id}`);
      return m.op === 'ack' ? 'ack' : String(m.code);
    };
    try {
      // One publish per 20 s (a burst of 1): a refill never comes within the test.
      const token = async (sub: string): Promise<string> => signToken({ sub, topics: ['rate.>'], publish: ['rate.*'], publish_rate: 0.05 }, KEY);
      const ua = await gatewayClient(a.address.port, `?token=${await token('u')}`);
      const ub = await gatewayClient(b.address.port, `?token=${await token('u')}`);
      const vb = await gatewayClient(b.address.port, `?token=${await token('v')}`);
      clients.push(ua, ub, vb);
      assert.equal(await reply(ua, 1), 'ack');
      assert.equal(await reply(ua, 2), 'limit', 'the burst is spent on A');
      // B hears it within about a second, and charges u's bucket there.
      while (promValue(await scrape(b.address.port), 'c1m_gateway_publish_rate_charged_total') < 1) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await reply(ub, 3), 'limit', 'u spent its burst on A: none left on B');
      assert.equal(await reply(vb, 4), 'ack', 'another user keeps its own');
    } finally {
      for (const c of clients) c.close();
      await Promise.all([a.close(1000), b.close(1000)]);
    }
  });

  test('--processes 2 without --nats: refused with the reason, exit 2', GUARD, async () => {
    const g = cli(['gateway', '--port', '0', '--processes', '2', '--no-auth']);
    assert.deepEqual(await within(g.exited, 'exit'), { code: 2, signal: null });
    assert.match(g.stderr, /2 workers need --nats URL/);
  });
});
