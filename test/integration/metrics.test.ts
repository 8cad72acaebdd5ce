/**
 * `serve({ metricsPort })` / `c1m serve --metrics-port`: Prometheus text summed over every
 * worker (single, threads, processes), parsed strictly; and the gather relay the supervisors
 * use, on made-up peers.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { serve } from '../../src/index.js';
import { GatherRelay, type GatherMessage, type GatherPeer } from '../../src/engine/gather.js';
import { nativeAvailable } from '../helpers/backends.js';
import { cli, listening, parsePrometheus, promValue } from '../helpers/gateway.js';
import { GUARD, HOST, RawClient, rawClient, waitFor, within } from '../helpers/net.js';

const echo = new URL('../../src/apps/echo.js', import.meta.url);
const udpEcho = new URL('../../src/apps/udp-echo.js', import.meta.url);

async function scrapeAt(port: number): Promise<ReturnType<typeof parsePrometheus>> {
  const res = await fetch(`http://${HOST}:${port}/metrics`);
  assert.equal(res.status, 200);
  return parsePrometheus(await res.text());
}

describe('metrics port', () => {
  const modes = [
    { mode: 'single', opts: {}, workers: 1, native: false },
    { mode: 'threads', opts: { threads: 2 }, workers: 2, native: true },
    { mode: 'processes', opts: { processes: 2 }, workers: 2, native: true },
  ];
  for (const m of modes) {
    test(`${m.mode}: /metrics sums the workers' engine metrics`, { ...GUARD, skip: m.native && !nativeAvailable && 'native backend unavailable' }, async () => {
      const handle = await serve({ handler: echo, port: 0, host: HOST, metricsPort: 0, ...m.opts });
      const clients: RawClient[] = [];
      try {
        assert.ok(handle.metricsAddress);
        for (let i = 0; i < 6; i++) clients.push(await rawClient(handle.address.port));
        await Promise.all(clients.map(async (c, i) => {
          await c.send(Buffer.from(`ping ${i}`));
          await c.waitBytes(`ping ${i}`.length);
        }));
        let metrics = await scrapeAt(handle.metricsAddress.port);
        // The workers count a connection once they have seen it: scrape until they all have.
        while (promValue(metrics, 'c1m_connections') !== 6) metrics = await scrapeAt(handle.metricsAddress.port);
        assert.equal(promValue(metrics, 'c1m_workers'), m.workers);
        assert.ok(promValue(metrics, 'c1m_reactor_events') >= 6);
        assert.ok(promValue(metrics, 'c1m_memory_rss_bytes') > 0);
        assert.equal(metrics.get('c1m_event_loop_delay_max_seconds')?.type, 'gauge');
        const res = await fetch(`http://${HOST}:${handle.metricsAddress.port}/other`);
        assert.equal(res.status, 404);
      } finally {
        for (const c of clients) c.destroy();
        await handle.close(1000);
      }
    });
  }

  test('an idle worker with metrics on does not wake for the event-loop delay monitor 100 times a second', { ...GUARD, skip: !nativeAvailable && 'native backend unavailable' }, async () => {
    const handle = await serve({ handler: echo, port: 0, host: HOST, metricsPort: 0, processes: 1 });
    try {
      await scrapeAt(handle.metricsAddress!.port); // the worker's registry (and its monitor) exist
      const worker = readdirSync('/proc').find((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid &&
            readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker.js');
        } catch {
          return false;
        }
      });
      assert.ok(worker, 'the worker process');
      // Sleeps of the worker's main thread: one per timer expiry when nothing else happens.
      const wakeups = (): number => Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${worker}/task/${worker}/status`, 'utf8'))![1]);
      const before = wakeups();
      await new Promise((r) => setTimeout(r, 2000));
      const woke = wakeups() - before;
      // The monitor alone woke it ~200 times in 2 s at a 10 ms resolution; now it is ~20 (the
      // timer sweep's tick stops while no connection has a timeout).
      assert.ok(woke < 100, `${woke} wake-ups in 2 s`);
    } finally {
      await handle.close(1000);
    }
  });

  test('the event-loop delay monitor starts at the first scrape: a gateway nobody scrapes is not woken for it', { ...GUARD, skip: !nativeAvailable && 'native backend unavailable' }, async () => {
    // The gateway makes its registry at start (for its own metrics).
    const c = cli(['gateway', '--no-auth', '--port', '0', '--host', HOST, '--processes', '1']);
    try {
      const port = await listening(c);
      await new Promise((r) => setTimeout(r, 600)); // six sampling periods, were it running
      const first = await scrapeAt(port);
      assert.equal(promValue(first, 'c1m_workers'), 1);
      assert.equal(promValue(first, 'c1m_event_loop_delay_samples'), 0, 'no samples before the first scrape');
      let later = first;
      for (const start = Date.now(); promValue(later, 'c1m_event_loop_delay_samples') === 0; ) {
        if (Date.now() - start > 20_000) assert.fail('no event-loop delay samples after the first scrape');
        await new Promise((r) => setTimeout(r, 250));
        later = await scrapeAt(port);
      }
    } finally {
      c.child.kill('SIGTERM');
      await c.exited;
    }
  });

  for (const m of modes) {
    test(`${m.mode}: /metrics sums the UDP counters of every worker's socket`, { ...GUARD, skip: m.native && !nativeAvailable && 'native backend unavailable' }, async () => {
      const handle = await serve({ handler: udpEcho, port: 0, host: HOST, udp: true, metricsPort: 0, ...m.opts });
      const socks = Array.from({ length: 16 }, () => createSocket('udp4'));
      try {
        let echoed = 0;
        await Promise.all(socks.map((s) => new Promise<void>((r) => s.bind(0, HOST, r))));
        for (const s of socks) {
          s.on('message', () => void echoed++);
          for (let i = 0; i < 3; i++) s.send(`d${i}`, handle.address.port, HOST);
        }
        await waitFor(() => echoed === 48, '48 echoes');
        const metrics = await scrapeAt(handle.metricsAddress!.port);
        // 16 flows hash over the workers' sockets: every worker's count is in the sum.
        assert.equal(promValue(metrics, 'c1m_udp_received_datagrams'), 48);
        assert.equal(promValue(metrics, 'c1m_udp_sent_datagrams'), 48);
        assert.equal(promValue(metrics, 'c1m_udp_dropped_datagrams'), 0);
      } finally {
        for (const s of socks) s.close();
        await handle.close(1000);
      }
    });
  }

  test('c1m serve echo --metrics-port 0 prints where the metrics are', GUARD, async () => {
    const c = cli(['echo', '--port', '0', '--host', HOST, '--metrics-port', '0']);
    try {
      await listening(c);
      await waitFor(() => /metrics on/.test(c.stdout), 'the metrics line');
      const port = Number(/metrics on http:\/\/[\d.]+:(\d+)\/metrics/.exec(c.stdout)![1]);
      assert.equal(promValue(await scrapeAt(port), 'c1m_workers'), 1);
      c.child.kill('SIGTERM');
      assert.deepEqual(await within(c.exited, 'exit'), { code: 0, signal: null });
    } finally {
      c.child.kill('SIGKILL');
    }
  });

  test('a gateway flag on another app is refused', GUARD, async () => {
    const c = cli(['echo', '--port', '0', '--nats', 'nats://127.0.0.1:4222']);
    assert.deepEqual(await within(c.exited, 'exit'), { code: 2, signal: null });
    assert.match(c.stderr, /--nats applies to the gateway app only/);
  });
});

describe('gather relay', () => {
  /** A peer that answers asks with `value` (or never, when undefined) through the relay. */
  function peer(relay: () => GatherRelay, value: unknown, sent: GatherMessage[] = []): GatherPeer & { sent: GatherMessage[] } {
    const p = {
      sent,
      send(m: GatherMessage) {
        sent.push(m);
        if (m.type === 'c1m-gather-ask' && value !== undefined) queueMicrotask(() => relay().handle(p, { type: 'c1m-gather-reply', id: m.id, value }));
      },
    };
    return p;
  }

  test('collects one value per live peer; a peer that does not answer is left out at the timeout', async () => {
    let relay!: GatherRelay;
    const peers = [peer(() => relay, 1), peer(() => relay, 2), peer(() => relay, undefined)];
    relay = new GatherRelay(() => peers, 50);
    assert.deepEqual((await relay.collect('k')).sort(), [1, 2]);
    peers.pop();
    assert.deepEqual((await relay.collect('k')).sort(), [1, 2]);
    assert.deepEqual(await new GatherRelay(() => [], 50).collect('k'), []);
  });

  test("a worker's gather is relayed to every peer and answered to the asker only", async () => {
    let relay!: GatherRelay;
    const a = peer(() => relay, 'a');
    const b = peer(() => relay, 'b');
    relay = new GatherRelay(() => [a, b], 1000);
    assert.equal(relay.handle(a, { type: 'c1m-gather', id: 7, key: 'k' }), true);
    assert.equal(relay.handle(a, { type: 'ready' }), false);
    await waitFor(() => a.sent.some((m) => m.type === 'c1m-gather-result'), 'the result');
    const result = a.sent.find((m) => m.type === 'c1m-gather-result') as Extract<GatherMessage, { type: 'c1m-gather-result' }>;
    assert.equal(result.id, 7);
    assert.deepEqual(result.values.sort(), ['a', 'b']);
    assert.ok(!b.sent.some((m) => m.type === 'c1m-gather-result'));
  });
});
