/**
 * The gateway's history in NATS JetStream (`--nats` with `--history N`), with a
 * `nats-server -js` this test starts in a temporary directory: two gateways share one history
 * (a client leaves A and recovers on B exactly what it missed), positions older than the
 * history, of another epoch, or of a new topic, a feed (consumer) only while a process has
 * local subscribers, a NATS restart (a memory stream comes back as a new epoch), and a client's
 * WebSocket `pub` numbered in the shared stream, and binary messages (from HTTP, from NATS
 * itself, a client's binary `pub`) delivered and recovered as binary.
 * Skipped, saying why, when nats-server is not installed.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, headers, type NatsConnection } from 'nats';
import type {} from '../../src/cli/run.js';
import { nativeAvailable } from '../helpers/backends.js';
import {
  NATS_MISSING, broadcastHttp, cli, freePort, gatewayClient, listening, promValue, publishHttp, scrape, signToken, startNats, stopProcess,
  type Cli, type GatewayClient, type ServerMsg,
} from '../helpers/gateway.js';
import { GUARD, HOST, waitFor, within } from '../helpers/net.js';

const PUB = { Authorization: 'Bearer pt' };
type State = { seq: number; epoch: string; recovered?: boolean };

const ackOf = async (c: GatewayClient, id = 0): Promise<Record<string, State>> =>
  (await c.next((m) => m.op === 'ack' || (m.op === 'error' && m.id === id), 'ack')).topics as Record<string, State>;

async function stopCli(c: Cli): Promise<void> {
  c.child.kill('SIGTERM');
  const exit = await within(c.exited, 'the gateway to exit', 60_000);
  assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${c.stderr}`);
}

/**
 * The filter subjects of the history stream's consumers (one per process feed). Debian's
 * nats-server (2.9) lists a consumer caught in the middle of its deletion as `null` (fixed
 * upstream in nats-server#4669): such a listing is asked again rather than read.
 */
async function consumerSubjects(nc: NatsConnection, stream = 'C1M_HISTORY'): Promise<string[]> {
  const jsm = await nc.jetstreamManager();
  for (;;) {
    const infos = await jsm.consumers.list(stream).next();
    if (infos.every((c) => c != null)) return infos.map((c) => c.config.filter_subject ?? '').sort();
    await new Promise((r) => setTimeout(r, 20));
  }
}

const gateway = (url: string, history = 5, extra: string[] = []): Cli =>
  cli(['gateway', '--port', '0', '--host', HOST, '--nats', url, '--no-auth', '--publish-token', 'pt', '--history', String(history), ...extra]);

/**
 * Two gateways on the shared history with `--client-publish`: a watcher on A subscribed to
 * `topic` (its position at the start), a writer on B; `fn` runs, then both gateways stop
 * cleanly and every client `track` was given is closed.
 */
async function watchAndWrite(url: string, topic: string, fn: (x: {
  pa: number; pb: number; watcher: GatewayClient; writer: GatewayClient; start: State; track: (c: GatewayClient) => GatewayClient;
}) => Promise<void>): Promise<void> {
  const a = gateway(url, 5, ['--client-publish']);
  const b = gateway(url, 5, ['--client-publish']);
  const clients: GatewayClient[] = [];
  const track = (c: GatewayClient): GatewayClient => (clients.push(c), c);
  try {
    const [pa, pb] = await Promise.all([listening(a), listening(b)]);
    const watcher = track(await gatewayClient(pa, `?topics=${topic}`));
    const writer = track(await gatewayClient(pb));
    const start = (await ackOf(watcher))[topic]!;
    await fn({ pa, pb, watcher, writer, start, track });
    await Promise.all([stopCli(a), stopCli(b)]);
  } finally {
    for (const c of clients) c.close();
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
  }
}

describe('gateway history in NATS JetStream', { skip: NATS_MISSING }, () => {
  let dir: string;
  let natsPort: number;
  let nats: ChildProcess;
  let url: string;
  let nc: NatsConnection;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'c1m-js-'));
    natsPort = await freePort();
    nats = await startNats(natsPort, ['-js', '-sd', join(dir, 'a')]);
    url = `nats://${HOST}:${natsPort}`;
    nc = await connect({ servers: url });
  });
  after(async () => {
    await nc?.close();
    await stopProcess(nats);
    rmSync(dir, { recursive: true, force: true });
  });

  test('two gateways, one history: a client leaves A and recovers on B exactly what it missed, in order', GUARD, async () => {
    const a = gateway(url);
    const b = gateway(url);
    const clients: GatewayClient[] = [];
    try {
      const [pa, pb] = await Promise.all([listening(a), listening(b)]);
      const c1 = await gatewayClient(pa, '?topics=jt');
      clients.push(c1);
      const { jt: first } = await ackOf(c1);
      assert.match(first!.epoch, /^C1M_HISTORY-\d+$/);
      const r1 = await publishHttp(pa, 'jt', 'm1', PUB);
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      assert.equal(r1.body.delivered, null, 'answered at the stream\'s ack, not after A\'s own delivery');
      assert.equal(r1.body.epoch, first!.epoch);
      assert.ok((r1.body.seq as number) > first!.seq);
      await publishHttp(pb, 'other', 'noise', PUB); // another topic: the stream's seq moves on
      const r2 = await publishHttp(pb, 'jt', 'm2', PUB);
      assert.equal(r2.status, 200, JSON.stringify(r2.body));
      await waitFor(() => c1.deliveries('jt').length === 2, 'm1 and m2 on A');
      const got = c1.deliveries('jt');
      assert.deepEqual(got.map((m) => [m.seq, m.data]), [[r1.body.seq, 'm1'], [r2.body.seq, 'm2']]);
      const position = got[1]!.seq as number;
      c1.close();
      // A has no local subscriber of jt left: no consumer for it anywhere.
      while ((await consumerSubjects(nc)).length !== 0) await new Promise((r) => setTimeout(r, 20)); // A's consumer deleted
      const missed: number[] = [];
      for (const x of ['m3', 'm4']) missed.push((await publishHttp(pa, 'jt', x, PUB)).body.seq as number);
      const h = headers();
      h.set('Content-Type', 'application/json');
      const ack = await (await nc.jetstream()).publish('c1m.topic.jt', new TextEncoder().encode('{"m":5}'), { headers: h });
      missed.push(ack.seq);
      const c2 = await gatewayClient(pb, `?topics=jt&since=jt:${position}:${first!.epoch}`);
      clients.push(c2);
      const { jt: back } = await ackOf(c2);
      assert.deepEqual(back, { seq: missed[2], epoch: first!.epoch, recovered: true });
      await waitFor(() => c2.deliveries().length === 3, 'the three missed messages');
      assert.deepEqual(c2.deliveries().map((m) => [m.seq, m.data]), [[missed[0], 'm3'], [missed[1], 'm4'], [missed[2], { m: 5 }]]);
      // B has a feed now, and only B; live messages follow the recovered ones.
      assert.deepEqual(await consumerSubjects(nc), ['c1m.topic.jt']);
      let m = await scrape(pb);
      assert.equal(promValue(m, 'c1m_gateway_nats_subscriptions'), 1);
      m = await scrape(pa);
      assert.equal(promValue(m, 'c1m_gateway_nats_subscriptions'), 0);
      const live = await publishHttp(pa, 'jt', 'live', PUB);
      await waitFor(() => c2.deliveries().length === 4, 'the live message');
      assert.deepEqual(c2.deliveries()[3], { op: 'msg', topic: 'jt', seq: live.body.seq, data: 'live' });
      // The same position on A (no feed there yet) recovers the same, plus the live one.
      const c3 = await gatewayClient(pa, `?topics=jt&since=jt:${position}:${first!.epoch}`);
      clients.push(c3);
      assert.equal((await ackOf(c3)).jt!.recovered, true);
      await waitFor(() => c3.deliveries().length === 4, 'four on A');
      assert.deepEqual(c3.deliveries().map((x) => x.seq), [...missed, live.body.seq]);
      // A broadcast goes into the stream too: each topic's message once, answered at the acks.
      assert.deepEqual(await broadcastHttp(pb, { topics: ['jt', 'other'], data: 'both' }, PUB), { status: 200, body: { published: 2, delivered: null } });
      for (const c of [c2, c3]) await waitFor(() => c.deliveries().length === 5, 'the broadcast on each gateway');
      assert.ok((c2.deliveries()[4]!.seq as number) > (live.body.seq as number));
      assert.deepEqual(c3.deliveries()[4], c2.deliveries()[4], 'the same stream position on both');
      await Promise.all([stopCli(a), stopCli(b)]);
    } finally {
      for (const c of clients) c.close();
      a.child.kill('SIGKILL');
      b.child.kill('SIGKILL');
    }
  });

  test('a recovery after other topics moved the stream on: recovered, exactly the topic\'s missed messages', GUARD, async () => {
    const a = gateway(url);
    const clients: GatewayClient[] = [];
    try {
      const pa = await listening(a);
      const c1 = await gatewayClient(pa, '?topics=rt');
      clients.push(c1);
      const { rt: first } = await ackOf(c1);
      const r1 = await publishHttp(pa, 'rt', 'm1', PUB);
      const r2 = await publishHttp(pa, 'rt', 'm2', PUB);
      await waitFor(() => c1.deliveries('rt').length === 2, 'm1 and m2');
      c1.close();
      while ((await consumerSubjects(nc)).includes('c1m.topic.rt')) await new Promise((r) => setTimeout(r, 20));
      const r3 = await publishHttp(pa, 'rt', 'm3', PUB);
      // The stream's last message is now another topic's: the topic's own last is behind it.
      await publishHttp(pa, 'rt-other', 'noise', PUB);
      const c2 = await gatewayClient(pa, `?topics=rt&since=rt:${r1.body.seq as number}:${first!.epoch}`);
      clients.push(c2);
      assert.equal((await ackOf(c2)).rt!.recovered, true, 'every message of rt after the position is still in the stream');
      await waitFor(() => c2.deliveries().length === 2, 'the two missed messages');
      assert.deepEqual(c2.deliveries().map((m) => [m.seq, m.data]), [[r2.body.seq, 'm2'], [r3.body.seq, 'm3']]);
      // At the topic's last message: recovered, nothing to replay.
      const c3 = await gatewayClient(pa, `?topics=rt&since=rt:${r3.body.seq as number}:${first!.epoch}`);
      clients.push(c3);
      assert.equal((await ackOf(c3)).rt!.recovered, true);
      const live = await publishHttp(pa, 'rt', 'live', PUB);
      await waitFor(() => c3.deliveries().length === 1, 'the live message');
      assert.deepEqual(c3.deliveries().map((m) => [m.seq, m.data]), [[live.body.seq, 'live']]);
      await stopCli(a);
    } finally {
      for (const c of clients) c.close();
      a.child.kill('SIGKILL');
    }
  });

  test('a client\'s pub goes into the shared history: its ack carries the stream\'s seq and epoch, and a reconnect on another gateway recovers it', GUARD, async () => {
    await watchAndWrite(url, 'jp', async ({ pb, watcher, writer, start, track }) => {
      writer.send({ op: 'pub', id: 1, topic: 'jp', data: { said: 'hello' } });
      const ack = await writer.next((m) => m.id === 1 && (m.op === 'ack' || m.op === 'error'), 'the pub\'s answer');
      assert.equal(ack.op, 'ack', JSON.stringify(ack));
      assert.equal(ack.delivered, null, 'answered at the stream\'s ack');
      assert.equal(ack.epoch, start.epoch);
      assert.ok((ack.seq as number) > start.seq);
      await waitFor(() => watcher.deliveries('jp').length === 1, 'the delivery on the other gateway');
      assert.deepEqual(watcher.deliveries('jp')[0], { op: 'msg', topic: 'jp', seq: ack.seq, data: { said: 'hello' } });
      const late = track(await gatewayClient(pb, `?topics=jp&since=jp:${start.seq}:${start.epoch}`));
      assert.equal((await ackOf(late)).jp!.recovered, true);
      await waitFor(() => late.deliveries('jp').length === 1, 'the recovered pub');
      assert.equal(late.deliveries('jp')[0]!.seq, ack.seq);
    });
  });

  test('binary messages through JetStream: from HTTP, from NATS itself and from a client\'s binary pub, delivered and recovered as binary on the other gateway', GUARD, async () => {
    await watchAndWrite(url, 'jb', async ({ pa, pb, watcher, writer, start, track }) => {
      const one = Buffer.from([0xff, 0x00, 0x10]);
      const two = Buffer.from([0x80, 0x81]);
      const three = Buffer.from('\u00fe raw', 'latin1');
      const http = await publishHttp(pb, 'jb', one, { ...PUB, 'Content-Type': 'application/octet-stream' });
      assert.equal(http.status, 200, JSON.stringify(http.body));
      const h = headers();
      h.set('Content-Type', 'application/octet-stream');
      await nc.jetstream().publish('c1m.topic.jb', two, { headers: h });
      // A sub waits for JetStream, and the ops after it wait behind it: the binary pubs sent
      // meanwhile, in reads of their own, must keep their bytes.
      writer.send({ op: 'sub', id: 3, topics: ['jb-other'] });
      writer.sendBinaryPub(4, 'jb', three);
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setImmediate(r));
        writer.sendBinaryPub(5 + i, 'jb', Buffer.alloc(3, 0x30 + i));
      }
      const ack = await writer.next((m) => m.id === 4 && (m.op === 'ack' || m.op === 'error'), 'the binary pub\'s answer');
      assert.equal(ack.op, 'ack', JSON.stringify(ack));
      await writer.next((m) => m.id === 7 && m.op === 'ack', 'the last pub\'s ack');
      await waitFor(() => watcher.deliveries('jb').length === 6, 'six binary deliveries on the other gateway');
      const got = watcher.deliveries('jb');
      assert.deepEqual(got.map((m) => m.binary), [one, two, three, Buffer.from('000'), Buffer.from('111'), Buffer.from('222')]);
      assert.equal(got[0]!.seq, http.body.seq);
      assert.equal(got[2]!.seq, ack.seq);
      const late = track(await gatewayClient(pa, `?topics=jb&since=jb:${got[1]!.seq}:${start.epoch}`));
      assert.equal((await ackOf(late)).jb!.recovered, true);
      // --history 5 keeps the last five: a position at the second of six is still provable.
      await waitFor(() => late.deliveries('jb').length === 4, 'the recovered binary messages');
      assert.deepEqual(late.deliveries('jb'), got.slice(2));
    });
  });

  test('--processes 2: both workers share the stream (one epoch), and a reconnect recovers on whichever worker it lands', { ...GUARD, skip: !nativeAvailable && 'native backend unavailable' }, async () => {
    const g = cli(['gateway', '--port', '0', '--host', HOST, '--processes', '2', '--nats', url, '--no-auth', '--publish-token', 'pt', '--history', '50']);
    const clients: GatewayClient[] = [];
    try {
      const port = await listening(g);
      const epochs = new Set<string>();
      // Connect until both workers follow the topic (a consumer each; the kernel spreads connections).
      while ((await consumerSubjects(nc)).filter((x) => x === 'c1m.topic.pw').length < 2) {
        assert.ok(clients.length < 64, 'both workers got subscribers');
        const c = await gatewayClient(port, '?topics=pw');
        clients.push(c);
        epochs.add((await ackOf(c)).pw!.epoch);
      }
      assert.equal(epochs.size, 1, 'one epoch on both workers');
      const epoch = [...epochs][0]!;
      const seqs: unknown[] = [];
      for (let i = 1; i <= 3; i++) seqs.push((await publishHttp(port, 'pw', `p${i}`, PUB)).body.seq);
      await Promise.all(clients.map((c) => waitFor(() => c.deliveries().length === 3, 'three each')));
      for (const c of clients) assert.deepEqual(c.deliveries().map((m) => m.seq), seqs);
      for (const c of clients) c.close();
      const missed: unknown[] = [];
      for (let i = 4; i <= 6; i++) missed.push((await publishHttp(port, 'pw', `p${i}`, PUB)).body.seq);
      // Ten reconnects, spread over the workers: every one recovers exactly p4..p6.
      for (let i = 0; i < 10; i++) {
        const c = await gatewayClient(port, `?topics=pw&since=pw:${seqs[2]}:${epoch}`);
        clients.push(c);
        assert.deepEqual((await ackOf(c)).pw, { seq: missed[2], epoch, recovered: true });
        await waitFor(() => c.deliveries().length === 3, 'the three missed');
        assert.deepEqual(c.deliveries().map((m) => [m.seq, m.data]), missed.map((s, k) => [s, `p${k + 4}`]));
        c.close();
      }
      await stopCli(g);
    } finally {
      for (const c of clients) c.close();
      g.child.kill('SIGKILL');
    }
  });

  test('positions older than the history, of another epoch, beyond the stream, and of a new topic', GUARD, async () => {
    const g = gateway(url);
    const clients: GatewayClient[] = [];
    const sub = async (query: string): Promise<State> => {
      const c = await gatewayClient(port, query);
      clients.push(c);
      const topic = /topics=([^&]+)/.exec(query)![1]!;
      return (await ackOf(c))[topic]!;
    };
    let port = 0;
    try {
      port = await listening(g);
      // A new topic: the position is the stream's, and later messages are all recovered
      // (fewer than --history of them: nothing dropped).
      const fresh = await sub('?topics=newt');
      const jsm = await nc.jetstreamManager();
      assert.equal(fresh.seq, (await jsm.streams.info('C1M_HISTORY')).state.last_seq, 'a topic just followed: the stream\'s last seq');
      assert.ok(fresh.seq > 0, 'the stream holds the first test\'s messages');
      const seqs: number[] = [];
      for (let i = 1; i <= 3; i++) seqs.push((await publishHttp(port, 'newt', `n${i}`, PUB)).body.seq as number);
      const c = clients[0]!;
      c.close();
      const again = await gatewayClient(port, `?topics=newt&since=newt:${fresh.seq}:${fresh.epoch}`);
      clients.push(again);
      assert.equal((await ackOf(again)).newt!.recovered, true);
      await waitFor(() => again.deliveries().length === 3, 'three recovered');
      assert.deepEqual(again.deliveries().map((m) => m.seq), seqs);
      // Eight messages into a history of five: the first three are gone. Recovery is complete
      // only from a position whose message is still there (or from the last one).
      const old: number[] = [];
      for (let i = 1; i <= 8; i++) old.push((await publishHttp(port, 'lim', `l${i}`, PUB)).body.seq as number);
      const epoch = fresh.epoch;
      const tooOld = await sub(`?topics=lim&since=lim:${old[2]}:${epoch}`);
      assert.deepEqual(tooOld, { seq: old[7], epoch, recovered: false });
      const kept = await sub(`?topics=lim&since=lim:${old[3]}:${epoch}`);
      assert.deepEqual(kept, { seq: old[7], epoch, recovered: true }, 'message 4 is still there: 5 to 8 follow');
      const last = clients.at(-1)!;
      await waitFor(() => last.deliveries().length === 4, 'four recovered');
      assert.deepEqual(last.deliveries().map((m) => m.data), ['l5', 'l6', 'l7', 'l8']);
      assert.equal(clients.at(-2)!.deliveries().length, 0, 'nothing sent with recovered:false');
      // Another epoch, and a position this stream never reached.
      assert.equal((await sub(`?topics=lim&since=lim:${old[6]}:C1M_HISTORY-123`)).recovered, false);
      assert.equal((await sub(`?topics=lim&since=lim:${old[7]! + 1000}:${epoch}`)).recovered, false);
      // Up to date: recovered, nothing to send.
      assert.equal((await sub(`?topics=lim&since=lim:${old[7]}:${epoch}`)).recovered, true);
      await stopCli(g);
    } finally {
      for (const x of clients) x.close();
      g.child.kill('SIGKILL');
    }
  });

  test('a recovery while messages keep coming: recovered and live frames join with no gap and no duplicate', GUARD, async () => {
    const g = gateway(url, 1000);
    const clients: GatewayClient[] = [];
    try {
      const port = await listening(g);
      // A subscriber keeps this process's feed running, so the join uses its recent frames.
      const keeper = await gatewayClient(port, '?topics=flow');
      clients.push(keeper);
      const { flow: start } = await ackOf(keeper);
      const js = nc.jetstream();
      const seqs: number[] = [];
      // Paced (a timer turn between publishes), so that publishes go on during the whole
      // recovery: its reads, and its checks after them.
      const pub = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) {
          seqs.push((await js.publish('c1m.topic.flow', new TextEncoder().encode(`f${seqs.length}`))).seq);
          await new Promise((r) => setTimeout(r, 1));
        }
      };
      await pub(20);
      const since = seqs[9]!;
      const publishing = pub(400);
      while (seqs.length < 60) await new Promise((r) => setTimeout(r, 1));
      const c = await gatewayClient(port, `?topics=flow&since=flow:${since}:${start!.epoch}`);
      clients.push(c);
      assert.equal((await ackOf(c)).flow!.recovered, true);
      await publishing;
      const expected = seqs.filter((x) => x > since);
      await waitFor(() => c.deliveries().length >= expected.length, 'every message after since');
      await new Promise((r) => setTimeout(r, 100)); // a duplicate would arrive by now
      assert.deepEqual(c.deliveries().map((m) => m.seq), expected);
      await waitFor(() => keeper.deliveries().length === seqs.length, 'the keeper got all');
      assert.deepEqual(keeper.deliveries().map((m) => m.seq), seqs);
      await stopCli(g);
    } finally {
      for (const x of clients) x.close();
      g.child.kill('SIGKILL');
    }
  });

  test('NATS restart: 503 and `unavailable` while down; the memory stream comes back as a new epoch; live delivery resumes', GUARD, async () => {
    const port2 = await freePort();
    const url2 = `nats://${HOST}:${port2}`;
    let server = await startNats(port2, ['-js', '-sd', join(dir, 'b')]);
    const g = gateway(url2);
    const clients: GatewayClient[] = [];
    try {
      const port = await listening(g);
      const c = await gatewayClient(port, '?topics=rs');
      clients.push(c);
      const { rs: before } = await ackOf(c);
      const r = await publishHttp(port, 'rs', 'before', PUB);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await waitFor(() => c.deliveries().length === 1, 'before');
      await stopProcess(server);
      let down = await publishHttp(port, 'rs', 'during', PUB);
      while (down.status === 200) down = await publishHttp(port, 'rs', 'during', PUB);
      assert.equal(down.status, 503);
      const late = await gatewayClient(port, '?topics=rs3');
      clients.push(late);
      late.send({ op: 'sub', id: 7, topics: ['rs2'] });
      late.send({ op: 'ping', id: 8 });
      await late.next((m: ServerMsg) => m.id === 8, 'the pong');
      // Refused as soon as the gateway knows NATS is down (not at JetStream's request timeout), in order.
      const answers = late.msgs.filter((m) => m.id !== undefined);
      assert.deepEqual(answers.map((m) => [m.id, m.code]), [[0, 'unavailable'], [7, 'unavailable'], [8, undefined]], JSON.stringify(answers));
      assert.match(String(answers[1]!.message), /NATS is not connected/);
      server = await startNats(port2, ['-js', '-sd', join(dir, 'b')]);
      let m = await scrape(port);
      while (promValue(m, 'c1m_gateway_nats_up') !== 1) m = await scrape(port);
      let after = await publishHttp(port, 'rs', 'after', PUB);
      // The stream is re-created by the gateway's reconnect handler; until then a publish fails.
      while (after.status !== 200) after = await publishHttp(port, 'rs', 'after', PUB);
      assert.notEqual(after.body.epoch, before!.epoch, 'a new stream, a new epoch');
      // The feed restarts from the new stream's first message, so it delivers this one too.
      await waitFor(() => c.deliveries().some((x) => x.data === 'after' && x.seq === after.body.seq), 'live delivery after the restart');
      const back = await gatewayClient(port, `?topics=rs&since=rs:${r.body.seq}:${before!.epoch}`);
      clients.push(back);
      assert.deepEqual((await ackOf(back)).rs, { seq: after.body.seq, epoch: after.body.epoch, recovered: false });
      await stopCli(g);
    } finally {
      for (const x of clients) x.close();
      g.child.kill('SIGKILL');
      await stopProcess(server);
    }
  });

  test('with tokens: a sub queued behind a narrowing refresh is held to the new token; an unsubscribe and a subscribe reach the client with the stream\'s positions', GUARD, async () => {
    const secret = 'a-test-secret-of-enough-length';
    const key = new TextEncoder().encode(secret);
    const g = cli(['gateway', '--port', '0', '--host', HOST, '--nats', url, '--jwt-secret', secret, '--publish-token', 'pt', '--history', '5']);
    const clients: GatewayClient[] = [];
    const operator = async (port: number, path: string): Promise<unknown> => (await fetch(`http://${HOST}:${port}${path}`, { method: 'POST', headers: PUB })).json();
    try {
      const port = await listening(g);
      const c = await gatewayClient(port, `?token=${await signToken({ sub: 'jo', topics: ['jr.a', 'jr.b'] }, key)}&topics=jr.a`);
      clients.push(c);
      await ackOf(c);
      // Ops wait for each other with the JetStream history: the sub is served after the refresh.
      c.send({ op: 'refresh', id: 1, token: await signToken({ sub: 'jo', topics: ['jr.a'] }, key) });
      c.send({ op: 'sub', id: 2, topics: ['jr.b'] });
      assert.equal((await c.next((m) => m.id === 1, 'the refresh ack')).op, 'ack');
      assert.equal((await c.next((m) => m.id === 2, 'the sub\'s answer')).code, 'forbidden', 'held to the new token');
      assert.deepEqual(await operator(port, '/unsubscribe/jo?topics=jr.a&reason=out'), { unsubscribed: null });
      assert.deepEqual(await c.next((m) => m.op === 'unsubscribed', 'told'), { op: 'unsubscribed', topics: ['jr.a'], reason: 'out' });
      await publishHttp(port, 'jr.a', 'missed', PUB);
      assert.deepEqual(await operator(port, '/subscribe/jo?topics=jr.a,jr.b'), { subscribed: null });
      const on = (await c.next((m) => m.op === 'subscribed', 'told')).topics as Record<string, State>;
      assert.deepEqual(Object.keys(on), ['jr.a'], 'jr.b is no longer granted');
      assert.match(on['jr.a']!.epoch, /^C1M_HISTORY-\d+$/);
      const live = await publishHttp(port, 'jr.a', 'live', PUB);
      assert.ok((on['jr.a']!.seq) < (live.body.seq as number), 'the position is before the next message');
      await waitFor(() => c.deliveries('jr.a').length === 1, 'the live message');
      assert.equal(c.deliveries('jr.a')[0]!.data, 'live', 'nothing of what was published while it was off');
      await stopCli(g);
    } finally {
      for (const x of clients) x.close();
      g.child.kill('SIGKILL');
    }
  });

  test('a NATS server without JetStream: the gateway with --history refuses to start, saying why', GUARD, async () => {
    const port2 = await freePort();
    const server = await startNats(port2);
    const g = gateway(`nats://${HOST}:${port2}`);
    try {
      const exit = await within(g.exited, 'exit', 60_000);
      assert.notEqual(exit.code, 0);
      assert.match(g.stderr, /JetStream/);
    } finally {
      g.child.kill('SIGKILL');
      await stopProcess(server);
    }
  });
});
