/**
 * Prometheus metrics of a server, summed over its workers: each process (or worker thread)
 * has one prom-client registry holding the engine's gauges (connections, batches, events,
 * accept pauses of its reactors; memory; event-loop delay), to which applications add their
 * own (`metricsRegistry()`). `gatherMetrics()` asks every worker for its registry as JSON
 * (gather.ts) and merges them with prom-client's `AggregatorRegistry`: counters and gauges
 * are summed, except those declared with another `aggregator` (event-loop delay: max).
 *
 * prom-client is loaded on first use, so a server that never asks for metrics never loads it.
 * `serve({ metricsPort })` answers `GET /metrics` on its own port from the supervisor
 * (node:http: an operations endpoint, not a hot path).
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MetricObjectWithValues, MetricValue, Registry } from 'prom-client';
import type { ListenAddress, Reactor } from '../core/types.js';
import type { UdpSocket } from '../core/udp-types.js';
import { gather, provide } from './gather.js';
import { compactions } from './memory.js';

/** The gather key under which every worker provides its registry as JSON. */
export const METRICS_KEY = 'c1m.metrics';

/**
 * How often the event-loop delay is sampled (ms). The monitor is a repeating libuv timer, so
 * an idle worker wakes this often: at 10 ms (prom-client's default) an idle gateway worker woke
 * ~100 times a second, and 53 of them holding a million connections spent a quarter of a core
 * on it. At 100 ms a stall of 100 ms or more is always seen (the next sample is that late), a
 * shorter one with a probability of its length / 100 ms, and the max and mean are still the
 * loop's own lateness in ns. The monitor starts at the worker's first scrape: a server nobody
 * scrapes is not woken for it at all (10 of an idle gateway worker's 11 wake-ups a second).
 */
export const LOOP_DELAY_RESOLUTION_MS = 100;

const reactors = new Set<Reactor>();
const udpSockets = new Set<UdpSocket>();
let registryP: Promise<Registry> | null = null;

/** This thread's answer to a gather of METRICS_KEY (the registry is made on first ask). */
const provideMetrics = (): void => provide(METRICS_KEY, async () => (await metricsRegistry()).getMetricsAsJSON());

/** Count `reactor` in this process's engine metrics (every reactor serve starts is). */
export function trackReactor(reactor: Reactor): void {
  reactors.add(reactor);
  provideMetrics();
}

/** Stop counting `reactor` (it closed). */
export function untrackReactor(reactor: Reactor): void {
  reactors.delete(reactor);
}

/**
 * Count `sock` in this process's UDP metrics (every socket `serve({ udp })` opens is): its
 * counters are read at each scrape while it is open (a server's sockets live as long as it).
 */
export function trackUdpSocket(sock: UdpSocket): void {
  udpSockets.add(sock);
  provideMetrics();
}

const sumUdp = (k: 'received' | 'sent' | 'drops'): number => {
  let n = 0;
  for (const s of udpSockets) {
    if (!s.open) {
      udpSockets.delete(s);
      continue;
    }
    n += s.stats[k];
  }
  return n;
};

const sumStats = (k: 'connections' | 'batches' | 'events' | 'acceptPauses'): number => {
  let n = 0;
  for (const r of reactors) n += r.stats[k];
  return n;
};

/**
 * This thread's registry, with the engine's metrics (made on first call). Applications
 * register their metrics in it (`registers: [registry]`), and they are gathered with the
 * engine's. Metric names must be the same in every worker (they are summed by name).
 */
export function metricsRegistry(): Promise<Registry> {
  provideMetrics();
  registryP ??= (async () => {
    const client = await import('prom-client');
    const registry = new client.Registry();
    const gauge = (name: string, help: string, read: () => number, aggregator: 'sum' | 'max' = 'sum'): void => {
      new client.Gauge({ name, help, registers: [registry], aggregator, collect() { this.set(read()); } });
    };
    gauge('c1m_connections', 'Open connections (all reactors, all workers).', () => sumStats('connections'));
    gauge('c1m_reactor_batches', 'Native-to-JS crossings that delivered events, since start (a counter).', () => sumStats('batches'));
    gauge('c1m_reactor_events', 'Events delivered to JS, since start (a counter).', () => sumStats('events'));
    gauge('c1m_accept_pauses', 'Accept pauses for lack of file descriptors or memory, since start.', () => sumStats('acceptPauses'));
    gauge('c1m_udp_received_datagrams', 'Datagrams received by the UDP sockets of serve({ udp }), since start (a counter).', () => sumUdp('received'));
    gauge('c1m_udp_sent_datagrams', 'Datagrams the kernel took from those sockets, since start (a counter).', () => sumUdp('sent'));
    gauge('c1m_udp_dropped_datagrams', 'Datagrams those sockets dropped for a full send queue, since start (a counter).', () => sumUdp('drops'));
    gauge('c1m_workers', 'Worker processes or threads reporting.', () => 1);
    gauge('c1m_memory_rss_bytes', 'Resident set size (summed over worker processes).', () => process.memoryUsage.rss());
    gauge('c1m_memory_heap_used_bytes', 'V8 heap in use.', () => process.memoryUsage().heapUsed);
    gauge('c1m_memory_external_bytes', 'Memory of C++ objects bound to JS (buffers, the engine).', () => process.memoryUsage().external);
    gauge('c1m_memory_compactions', 'compactMemory: after-burst collections and malloc trims, since start (a counter).', () => compactions().gcs);
    gauge('c1m_memory_compaction_pause_max_seconds', 'compactMemory: the longest pause of one after-burst collection (max over workers).', () => compactions().gcMsMax / 1000, 'max');
    const delay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
    // Started by the first scrape (its figures are then empty), so that only a server whose
    // metrics are read pays its wake-ups. The delay since the last scrape: reset after each reading.
    const delayMax = (): number => {
      delay.enable(); // no-op once enabled
      const v = Number.isFinite(delay.max) && delay.count > 0 ? delay.max / 1e9 : 0;
      return v;
    };
    gauge('c1m_event_loop_delay_max_seconds', 'Longest event-loop delay since the previous scrape (max over workers).', delayMax, 'max');
    gauge('c1m_event_loop_delay_mean_seconds', 'Mean event-loop delay since the previous scrape (max over workers).', () => {
      const v = delay.count > 0 ? delay.mean / 1e9 : 0;
      return v;
    }, 'max');
    new client.Gauge({
      name: 'c1m_event_loop_delay_samples', help: 'Event-loop delay samples since the previous scrape.', registers: [registry],
      collect() {
        this.set(delay.count);
        delay.reset();
      },
    });
    return registry;
  })();
  return registryP;
}

/** Every worker's registry, merged. */
async function aggregate(values: unknown[]): Promise<Registry> {
  const client = await import('prom-client');
  const list = values.filter((v): v is MetricObjectWithValues<MetricValue<string>>[] => Array.isArray(v));
  return client.AggregatorRegistry.aggregate(list);
}

/** The Prometheus text of every worker of this server, summed. */
export async function gatherMetrics(): Promise<{ text: string; contentType: string }> {
  const r = await aggregate(await gather(METRICS_KEY));
  return { text: await r.metrics(), contentType: r.contentType };
}

/** The same, as prom-client's JSON (for dashboards). */
export async function gatherMetricsJson(): Promise<unknown[]> {
  return (await aggregate(await gather(METRICS_KEY))).getMetricsAsJSON();
}

/** `GET /metrics` on its own port, from `collect` (every worker's registry JSON). */
export async function startMetricsServer(port: number, host: string, collect: () => Promise<unknown[]>): Promise<{ address: ListenAddress; close(): Promise<void> }> {
  const server: HttpServer = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found');
      return;
    }
    collect().then(aggregate).then(async (r) => {
      res.writeHead(200, { 'Content-Type': r.contentType }).end(await r.metrics());
    }).catch((err: Error) => {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(err.message);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address();
  const address = { host, port: typeof a === 'object' && a !== null ? a.port : port };
  return { address, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
