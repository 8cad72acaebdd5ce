/**
 * The gateway's Prometheus metrics, in the process registry of the engine
 * (`metricsRegistry()`), so `/metrics` on the gateway's port and `serve`'s `--metrics-port`
 * give the same text: the engine's metrics and these, summed over every worker.
 *
 * Registered once per process (prom-client names are per registry); values are read at
 * collection time from every live gateway handler of the process (usually one per worker).
 */
import type { Histogram } from 'prom-client';
import { gatherMetricsJson, metricsRegistry } from '../../engine/index.js';

/** What one gateway handler counts (monotonic, except the levels marked so). */
export interface GatewayCounters {
  /** Level: open WebSockets. */
  clients: number;
  /** Level: subscriptions (connection x topic). */
  subscriptions: number;
  /** Level: topics with local subscribers. */
  topics: number;
  /** Level: NATS subscriptions held. */
  brokerSubscriptions: number;
  /** Level: 1 when connected to NATS (or standalone). */
  brokerUp: number;
  /** Topic messages received (HTTP publishes, and NATS messages in NATS mode). */
  messagesIn: number;
  /** Topic messages delivered to at least one local subscriber. */
  messagesOut: number;
  /** Frames queued to subscribers. */
  deliveries: number;
  /** Deliveries skipped for slow subscribers. */
  drops: number;
  /** Subscribers closed for being slow. */
  slowClosed: number;
  bytesIn: number;
  bytesOut: number;
  /** Connections refused a token (missing, expired, invalid, or by `authorize`). */
  authFailures: number;
  /** Open WebSockets closed because their token expired (4001). */
  tokenExpiries: number;
  /** Publishes refused: HTTP (401, 403, 413, 503, ...) and WebSocket `pub` (forbidden, limit, unavailable). */
  publishRefused: number;
  /** Open WebSockets closed by a disconnect of their user (4009). */
  disconnects: number;
  /** Subscriptions the server ended: an unsubscribe of their user, or a `refresh` whose token no longer grants them. */
  serverUnsubscribes: number;
  /** Subscriptions the server made: a subscribe of their user (POST /subscribe). */
  serverSubscribes: number;
  /** `authorizeInterval` checks that threw, rejected or timed out (their connections kept). */
  authorizeErrors: number;
  /** Client publishes of users taken on other gateways, charged to their buckets here (rate-share.ts). */
  rateCharged: number;
}

/** A gateway's counters at its start. */
export function newCounters(): GatewayCounters {
  return {
    clients: 0, subscriptions: 0, topics: 0, brokerSubscriptions: 0, brokerUp: 1, messagesIn: 0, messagesOut: 0,
    deliveries: 0, drops: 0, slowClosed: 0, bytesIn: 0, bytesOut: 0, authFailures: 0, tokenExpiries: 0, publishRefused: 0, disconnects: 0,
    serverUnsubscribes: 0, serverSubscribes: 0, authorizeErrors: 0, rateCharged: 0,
  };
}

type Snapshot = () => GatewayCounters;
const live = new Set<Snapshot>();
let latency: Histogram | undefined;
let registered: Promise<void> | undefined;

const sum = (k: keyof GatewayCounters): number => {
  let n = 0;
  for (const s of live) n += s()[k];
  return n;
};

const GAUGES: [keyof GatewayCounters, string, string, boolean][] = [
  ['clients', 'c1m_gateway_clients', 'Open WebSockets.', false],
  ['subscriptions', 'c1m_gateway_subscriptions', 'Subscriptions (connection x topic).', false],
  ['topics', 'c1m_gateway_topics', 'Topics with local subscribers (summed over workers: a topic counts once per worker).', false],
  ['brokerSubscriptions', 'c1m_gateway_nats_subscriptions', 'NATS subscriptions held (one per interested topic per worker; with the JetStream history, its consumers).', false],
  ['brokerUp', 'c1m_gateway_nats_up', 'Workers connected to NATS (or standalone).', false],
  ['messagesIn', 'c1m_gateway_messages_in_total', 'Topic messages received (HTTP and WebSocket publishes; NATS messages with --nats).', true],
  ['messagesOut', 'c1m_gateway_messages_out_total', 'Topic messages delivered to at least one local subscriber.', true],
  ['deliveries', 'c1m_gateway_deliveries_total', 'Frames queued to subscribers.', true],
  ['drops', 'c1m_gateway_drops_total', 'Deliveries skipped for slow subscribers.', true],
  ['slowClosed', 'c1m_gateway_slow_closed_total', 'Subscribers closed for being slow.', true],
  ['bytesIn', 'c1m_gateway_bytes_in_total', 'Bytes of published data received.', true],
  ['bytesOut', 'c1m_gateway_bytes_out_total', 'Bytes of delivery frames queued (payload, before WebSocket framing).', true],
  ['authFailures', 'c1m_gateway_auth_failures_total', 'Connections refused for their token.', true],
  ['tokenExpiries', 'c1m_gateway_token_expiries_total', 'Open WebSockets closed because their token expired.', true],
  ['publishRefused', 'c1m_gateway_publish_refused_total', 'Publishes refused (POST /publish and WebSocket pub).', true],
  ['disconnects', 'c1m_gateway_disconnects_total', 'Open WebSockets closed by a disconnect of their user (POST /disconnect).', true],
  ['serverUnsubscribes', 'c1m_gateway_server_unsubscribes_total', 'Subscriptions ended by the server (POST /unsubscribe, or a refresh whose token no longer grants them).', true],
  ['serverSubscribes', 'c1m_gateway_server_subscribes_total', 'Subscriptions made by the server (POST /subscribe).', true],
  ['authorizeErrors', 'c1m_gateway_authorize_errors_total', 'authorizeInterval checks that threw, rejected or timed out (their connections were kept).', true],
  ['rateCharged', 'c1m_gateway_publish_rate_charged_total', 'Client publishes of users taken on other gateways, charged to their publish rate here.', true],
];

/** Count a gateway handler in this process's metrics; returns the function that stops it. */
export async function trackGateway(snapshot: Snapshot): Promise<() => void> {
  registered ??= (async () => {
    const client = await import('prom-client');
    const registry = await metricsRegistry();
    for (const [key, name, help, counter] of GAUGES) {
      if (counter) new client.Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(sum(key)); } });
      else new client.Gauge({ name, help, registers: [registry], collect() { this.set(sum(key)); } });
    }
    latency = new client.Histogram({
      name: 'c1m_gateway_delivery_latency_seconds',
      help: 'From the publish accepted (HTTP, or the publishing gateway via NATS) to its frames queued here.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    });
  })();
  await registered;
  live.add(snapshot);
  return () => live.delete(snapshot);
}

/** One delivery's latency in seconds. */
export function observeLatency(seconds: number): void {
  latency?.observe(Math.max(0, seconds));
}

/**
 * The dashboard's numbers: every unlabelled metric summed over workers, by name, plus the
 * latency histogram's sum and count.
 */
export async function dashboardStats(): Promise<Record<string, number>> {
  const out: Record<string, number> = { time: Date.now() };
  for (const m of (await gatherMetricsJson()) as { name: string; values: { value: number; metricName?: string; labels: Record<string, unknown> }[] }[]) {
    for (const v of m.values) {
      const name = v.metricName ?? m.name;
      if (name.endsWith('_bucket')) continue;
      out[name] = (out[name] ?? 0) + v.value;
    }
  }
  return out;
}
