/**
 * The protocol between `c1m bench` (the parent, through `WorkerPool`) and its worker processes
 * (`bench-worker.ts`): the worker's config, the messages each way, and what a worker reports.
 * Types only: the parent and the scenarios (whose context carries the config) import them from
 * here, never from the worker, which imports the scenarios; dependencies flow one way.
 */

/** What the parent tells a worker to do. Global connection indexes pick source address and payload. */
export interface WorkerConfig {
  /** Scenario name (see `scenarios/index.ts`). */
  scenario: string;
  /** Worker number, 0-based. */
  worker: number;
  host: string;
  port: number;
  /** This worker's connections are the global indexes [first, first + count). */
  first: number;
  count: number;
  /** Source addresses: `sources[index % sources.length]`; empty = let the kernel choose. */
  sources: string[];
  /** Connects in flight at most. */
  concurrency: number;
  /** Retries of a transient connect failure (EADDRNOTAVAIL, EAGAIN, ETIMEDOUT, ECONNREFUSED). */
  retries: number;
  /** Message size in bytes (echo, broadcast, ping). */
  size: number;
  /** Messages (requests) in flight per connection, when `rate` is 0 (echo, http). */
  depth: number;
  /** Echo: messages per second per connection (0 = closed loop at `depth`); broadcast: publishes per second. */
  rate: number;
  /** Echo: compare every echoed byte with what was sent. */
  verify: boolean;
  /** HTTP: the request target; WebSocket: the path (and query) of the upgrade request. */
  path: string;
  /** WebSocket: offer permessage-deflate (no context takeover, every message compressed). */
  deflate: boolean;
  /** `--tls`: connect over TLS (wss: for WebSocket scenarios); absent or null: plain TCP. */
  tls?: BenchTls | null;
  /** Run the worker's threads under SCHED_BATCH (`setBatchScheduling`; `c1m bench million`'s default). */
  batchScheduling?: boolean;
  /** After each connect phase, poll the reactor every this many ms (`Reactor.setPollInterval`); absent or 0: wake per event. */
  pollMs?: number;
  /** During each connect phase, poll the reactor every this many ms; absent or 0: wake per event. */
  connectPollMs?: number;
  /**
   * False: progress reports carry no latency histogram (`hist: null`), for a parent that reads
   * none (`c1m bench million`: its latencies come from each step's snapshot). Absent: sent.
   */
  progressLatency?: boolean;
}

/** `c1m bench --tls` and its companions. */
export interface BenchTls {
  /** `--tls-resume`: offer the sessions of earlier connections (each worker keeps its own). */
  resume: boolean;
  /** `--tls-ca FILE`: trusted certificates (PEM text); undefined: the system's store. */
  ca: string | undefined;
  /** `--tls-servername NAME`: SNI and the name checked; undefined: the host connected to. */
  servername: string | undefined;
  /** `--insecure`: no certificate verification. */
  insecure: boolean;
}

/** Parent -> worker. */
export type ParentMessage =
  | { type: 'config'; config: WorkerConfig }
  | { type: 'go'; upTo?: number }
  | { type: 'end-connect' }
  | { type: 'traffic' }
  | { type: 'measure' }
  | { type: 'quiesce' }
  | { type: 'snapshot' }
  | { type: 'stop' };

/** Cumulative counters of one worker. */
export interface WorkerCounters {
  /** Distinct connections attempted (retries not counted). */
  started: number;
  connected: number;
  /** Connections that never opened (after retries). */
  failed: number;
  /** Connects started or waiting for a retry. */
  pending: number;
  /** Connections open now. */
  open: number;
  /** Connect attempts repeated after a transient failure. */
  retries: number;
  /** Messages completed, every phase. */
  msgsTotal: number;
}

/** Worker -> parent. */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'progress'; counters: WorkerCounters; hist: string | null }
  | { type: 'connected'; counters: WorkerCounters }
  | { type: 'snapshot'; result: WorkerResult }
  | { type: 'result'; result: WorkerResult }
  | { type: 'fatal'; message: string };

/** A worker's report (final, or a `snapshot`). */
export interface WorkerResult extends WorkerCounters {
  /** Final connect failures by code (`ECONNREFUSED`, `CONNECT_PHASE_TIMEOUT`, ...). */
  errors: Record<string, number>;
  /** The first reason given for each code of `errors` (OpenSSL's, for a TLS failure), when there was one. */
  errorSamples: Record<string, string>;
  /** Established connections that closed before the end, by code or kind (`end`, `ECONNRESET`). */
  closeErrors: Record<string, number>;
  /** Messages completed inside the measured window. */
  msgs: number;
  /** Length of this worker's measured window, seconds. */
  windowS: number;
  /** `--tls`: TLS handshakes completed (connections opened), and how many resumed a session. */
  tlsHandshakes: number;
  tlsResumed: number;
  /** Received chunks that differed from what was sent (null without `verify`). */
  verifyErrors: number | null;
  /** Whole messages received with no send outstanding (the server sent more than it got). */
  unexpectedMsgs: number;
  /** Rate mode: messages not sent because a connection had too many outstanding. */
  sendSkipped: number;
  /** Latency histogram of the measured window (ns, encoded), null when empty. */
  hist: string | null;
  /** Rate mode: how late sends left after they were due (ns, encoded), null when empty. */
  lagHist: string | null;
  /** The scenario's own figures (`Scenario.result`), null when it has none. */
  extra: unknown;
  cpuUserS: number;
  cpuSysS: number;
  rssKb: number;
}
