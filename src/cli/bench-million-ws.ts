/**
 * The WebSocket side of `c1m bench million` (`--ws`, `--broadcast`): what differs from the TCP
 * ramp. The server is `c1m serve gateway --processes S --no-auth --nats URL` (with a private
 * `nats-server` on a free loopback port unless `--nats URL` is given); the clients run the
 * `ws-subscribe` scenario (`/ws?topics=<topic>`, connected once the subscription is
 * acknowledged); and at each step, instead of an echo round, ONE message is published once and
 * every subscriber's delivery is timed. With `--tls` the gateway serves the run's throwaway
 * certificate (bench-million-tls.ts): the clients connect over wss:// and the HTTP publish
 * goes over https, both trusting only that certificate.
 *
 * Publishing: by default `POST /publish/<topic>` to the gateway's port (SO_REUSEPORT hands it
 * to one gateway process, which publishes on NATS; NATS brings it to every process with
 * subscribers). `--publish nats` publishes on NATS directly (subject `c1m.topic.<topic>`, an
 * HPUB with `Content-Type: application/json`), which takes the HTTP hop out of the figure. The
 * payload is `{"t":N}`, N = `process.hrtime.bigint()` just before the request leaves: CLOCK_MONOTONIC,
 * the same clock in every process on Linux, so a worker's latency is publish -> delivery.
 *
 * Invariants: every wait is bounded (the publish request 10 s, the deliveries
 * `BROADCAST_WAIT_MS` plus 1 s per 20,000 subscribers); a nats-server started here is in its
 * own process group and is stopped by the caller with the rest (its pid is in the clean-up check).
 */
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { clockTicks, processTree, spawnServer, ticksOf, type SpawnedServer } from './bench-proc.js';
import { formatMicros, mergeHistograms, summarize } from './bench-stats.js';
import type { WorkerPool } from './bench-pool.js';
import type { WorkerResult } from './bench-ipc.js';
import type { MillionBroadcast, PublishVia } from './bench-results.js';
import type { WsStats } from './scenarios/index.js';

/** The gateway's default NATS subject prefix (docs/gateway.md). */
const NATS_PREFIX = 'c1m.topic.';
const PUBLISH_TIMEOUT_MS = 10_000;
/** Longest wait for every delivery of one broadcast, plus 1 s per 20,000 subscribers. */
const BROADCAST_WAIT_MS = 30_000;

/** A loopback TCP port nobody listens on now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => s.once('error', reject).listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Start a private nats-server on a free loopback port; resolves once it listens.
 * Errors: rejects when nats-server is not installed or does not start.
 */
export async function startNats(err: NodeJS.WritableStream): Promise<{ server: SpawnedServer; url: string }> {
  const port = await freePort();
  const server = await spawnServer(`nats-server -a 127.0.0.1 -p ${port}`, err, 'nats-server');
  return { server, url: `nats://127.0.0.1:${port}` };
}

/** The upgrade path of the clients: a subscription to `topic` at connect. */
export const subscribePath = (topic: string): string => `/ws?topics=${encodeURIComponent(topic)}`;

/**
 * `POST /publish/<topic>` to 127.0.0.1:port (over https trusting only `ca` when given: the
 * gateway of `--tls`); resolves with the answer (status 200) or rejects.
 */
function publishHttp(port: number, topic: string, body: string, ca: string | undefined): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const send = ca === undefined ? request : httpsRequest;
    const req = send({
      host: '127.0.0.1', port, method: 'POST', path: `/publish/${encodeURIComponent(topic)}`,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      timeout: PUBLISH_TIMEOUT_MS, agent: false, ...(ca === undefined ? {} : { ca }),
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`POST /publish/${topic}: ${res.statusCode} ${text.slice(0, 200)}`));
        try {
          resolve(JSON.parse(text));
        } catch {
          resolve(text);
        }
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`POST /publish/${topic}: no answer within ${PUBLISH_TIMEOUT_MS / 1000}s`), { late: true })));
    req.on('error', reject);
    req.end(body);
  });
}

/** HPUB `body` on NATS at `url` (nats://host:port) and wait for the server's PONG; rejects on error or timeout. */
function publishNats(url: string, topic: string, body: string): Promise<void> {
  const u = new URL(url);
  const headers = 'NATS/1.0\r\nContent-Type: application/json\r\n\r\n';
  const total = Buffer.byteLength(headers) + Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.hostname, port: Number(u.port || 4222) });
    const timer = setTimeout(() => sock.destroy(new Error(`NATS ${url}: no PONG within ${PUBLISH_TIMEOUT_MS / 1000}s`)), PUBLISH_TIMEOUT_MS);
    let text = '', sent = false;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      text += d;
      if (!sent && text.includes('\r\n')) {
        if (!text.startsWith('INFO ')) return sock.destroy(new Error(`NATS ${url}: not a NATS server`));
        sent = true;
        sock.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"name":"c1m bench million"}\r\n` +
          `HPUB ${NATS_PREFIX}${topic} ${Buffer.byteLength(headers)} ${total}\r\n${headers}${body}\r\nPING\r\n`);
      }
      const e = /-ERR ([^\r\n]*)/.exec(text);
      if (e) sock.destroy(new Error(`NATS ${url}: ${e[1]}`));
      else if (sent && text.includes('PONG\r\n')) {
        sock.end();
        resolve();
      }
    });
    sock.on('error', reject);
    sock.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`NATS ${url}: closed before the PONG`));
    });
  });
}

/** What `broadcastOnce` needs of the run. */
export interface BroadcastTarget {
  via: PublishVia;
  topic: string;
  /** The gateway's port (HTTP publish). */
  port: number;
  /** `--tls`: the gateway's certificate; the HTTP publish then goes over https, trusting it only. */
  ca?: string | undefined;
  natsUrl: string;
  /** Ask every worker for a snapshot and wait for them (bounded). */
  snapshot(): Promise<WorkerResult[]>;
  /** Checked while waiting (memory floor, the server still up). */
  watch(): void;
  /** Roots of the server side whose CPU is counted: the gateway's process group leader, the nats-server if started here. */
  serverRoots: number[];
  natsPid: number | undefined;
}

/** A publish's payload as the `ws-subscribe` clients read it: `{"t":N}`, N its send time (see the file comment). */
export const stampedBody = (): string => `{"t":${process.hrtime.bigint()}}`;

/** Publish `body` once on the run's topic (HTTP or NATS); resolves with the HTTP answer (null for NATS). */
export async function publishTo(t: Pick<BroadcastTarget, 'via' | 'topic' | 'port' | 'ca' | 'natsUrl'>, body: string): Promise<unknown> {
  if (t.via === 'http') return publishHttp(t.port, t.topic, body, t.ca);
  await publishNats(t.natsUrl, t.topic, body);
  return null;
}

/** User and system CPU seconds of `pids` now (processes gone meanwhile count nothing). */
function cpuOf(pids: readonly number[]): { user: number; sys: number } {
  const t = ticksOf(pids);
  return { user: t.user / clockTicks(), sys: t.sys / clockTicks() };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * Publish one message to the `subscribers` connected clients and wait (bounded) until every
 * one counted its delivery; then collect the workers' latency histograms (a snapshot).
 */
export async function broadcastOnce(pool: WorkerPool, t: BroadcastTarget, subscribers: number): Promise<MillionBroadcast> {
  // CPU at the start of the window: the clients' from a snapshot (which also empties their histograms), the servers' from /proc.
  const clients0 = await t.snapshot();
  const gateway = processTree(t.serverRoots);
  const server0 = cpuOf(gateway), nats0 = cpuOf(t.natsPid === undefined ? [] : [t.natsPid]);
  const before = pool.sum((c) => c.msgsTotal);
  const body = stampedBody();
  const t0 = performance.now();
  let answer: unknown = null, error: string | null = null, late = false;
  try {
    answer = await publishTo(t, body);
  } catch (e) {
    error = (e as Error).message;
    late = (e as { late?: boolean }).late === true;
  }
  const publishMs = performance.now() - t0;
  // A publish answered late may still have gone out (NATS had it, the answer did not come in
  // time): wait for the deliveries then too, and report both.
  if (error === null || late) {
    const all = await pool.waitFor(() => pool.sum((c) => c.msgsTotal) - before >= subscribers, BROADCAST_WAIT_MS + subscribers / 20, false, t.watch);
    const missing = all ? null : `${subscribers - (pool.sum((c) => c.msgsTotal) - before)} of ${subscribers} deliveries missing when the wait ended`;
    error = [error, missing].filter((e) => e !== null).join('; ') || null;
  }
  const windowS = (performance.now() - t0) / 1000;
  const snaps = await t.snapshot();
  const server1 = cpuOf(gateway), nats1 = cpuOf(t.natsPid === undefined ? [] : [t.natsPid]);
  const clientCpu = (rs: WorkerResult[], k: 'cpuUserS' | 'cpuSysS'): number => rs.reduce((n, r) => n + r[k], 0);
  const delivered = pool.sum((c) => c.msgsTotal) - before;
  const hist = mergeHistograms(snaps.map((r) => r.hist));
  const latency = summarize(hist);
  hist.destroy();
  return {
    via: t.via, topic: t.topic, subscribers, delivered,
    publish_ms: Math.round(publishMs * 1000) / 1000,
    publish_answer: answer,
    last_ms: latency ? Math.round(latency.max) / 1000 : null,
    latency,
    error,
    cpu: {
      window_s: round2(windowS),
      server_user_s: round2(server1.user - server0.user), server_sys_s: round2(server1.sys - server0.sys),
      nats_s: round2(nats1.user + nats1.sys - nats0.user - nats0.sys),
      client_user_s: round2(clientCpu(snaps, 'cpuUserS') - clientCpu(clients0, 'cpuUserS')),
      client_sys_s: round2(clientCpu(snaps, 'cpuSysS') - clientCpu(clients0, 'cpuSysS')),
    },
  };
}

/** Upgraded connections over the workers' latest snapshots (`ws-subscribe` results). */
export function upgradedOf(snaps: readonly (WorkerResult | undefined)[]): number {
  return snaps.reduce((n, s) => n + ((s?.extra as WsStats | null | undefined)?.upgraded ?? 0), 0);
}

/** The broadcast part of a step's human line. */
export function broadcastLine(b: MillionBroadcast | null | undefined): string {
  if (!b) return 'no broadcast';
  const l = b.latency;
  return `broadcast (${b.via}) ${b.delivered}/${b.subscribers} delivered, last ${b.last_ms ?? '?'} ms` +
    `${l ? ` (p50 ${formatMicros(l.p50)} p99 ${formatMicros(l.p99)} max ${formatMicros(l.max)})` : ''}` +
    `${b.cpu ? `, CPU s in ${b.cpu.window_s}s: server ${b.cpu.server_user_s} user + ${b.cpu.server_sys_s} sys, clients ${b.cpu.client_user_s} + ${b.cpu.client_sys_s}, nats ${b.cpu.nats_s}` : ''}` +
    `${b.error ? ` ERROR: ${b.error}` : ''}`;
}
