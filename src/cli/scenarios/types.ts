/**
 * What a `c1m bench` scenario is: a small module that says which options it takes and what it
 * counts (parent side), and what it does on each connection of a worker (worker side). The
 * worker (`bench-worker.ts`) owns connecting, retries, phases, counters and histograms; a
 * scenario only reacts to its connections and records through the {@link Meter}.
 *
 * Adding a scenario is one module in this folder plus one line in `index.ts`. A scenario that
 * needs a handshake before a connection counts as connected (WebSocket upgrade) returns false
 * from `open` and calls `ctx.established(peer)` or `ctx.fail(peer, code)` later; until then the
 * connection holds its connect slot and falls under the connect timeout. A scenario whose
 * connections belong to a protocol client (the WebSocket client) names it in `client`: the
 * worker then opens connections through it and hands it the engine's events.
 */
import type { Connection, Handler, Reactor, TlsConnectOptions } from '../../index.js';
import type { LatencySummary } from '../bench-stats.js';
import type { WorkerConfig } from '../bench-ipc.js';

/** Options a scenario may accept beyond the common ones (connections, duration, layout). */
export type ScenarioOption = 'size' | 'depth' | 'rate' | 'verify' | 'warmup' | 'path' | 'deflate' | 'tls';

/** One connection as the worker tracks it; `state` belongs to the scenario. */
export interface Peer<S> {
  readonly conn: Connection;
  /** Global connection index: [0, N) over all workers. */
  readonly index: number;
  /** False once the connection closed. */
  open: boolean;
  /** True once the connection counts as connected (at once unless `open` returned false). */
  established: boolean;
  state: S;
}

/** Measurement shared by the worker and its scenario. */
export interface Meter {
  /** Record `count` messages that took `ns` nanoseconds each (round trip, or delivery). */
  record(ns: number, count: number): void;
  /**
   * Record a delivery that its sender marked as measured (broadcast: the publisher's window
   * decides, not this process's): counted whether or not this worker's own window is open yet,
   * so a delivery that arrives before this worker's `measure` message is not lost.
   */
  recordMeasured(ns: number, count: number): void;
  /** Open loop: record how late a send left after it was due, in ns. */
  recordLag(ns: number): void;
  /** Messages completed, every phase (progress). The scenario adds to it. */
  msgsTotal: number;
  /** Messages completed inside the measured window. The scenario adds to it while `measuring`. */
  msgs: number;
  /** True inside the measured window. Set by the worker. */
  measuring: boolean;
  verifyErrors: number;
  unexpectedMsgs: number;
  sendSkipped: number;
}

/** What the worker offers a scenario. */
export interface ScenarioContext {
  readonly cfg: WorkerConfig;
  readonly meter: Meter;
  /** The handshake of `p` is done: it counts as connected from now on. */
  established(p: Peer<unknown>): void;
  /**
   * The handshake of `p` failed: it counts as a failed connect with `code`, and is destroyed.
   * Returns false when the failure does not count under `code`: `p` is not connecting any more,
   * or the connect phase is over (pending connects then count as `CONNECT_PHASE_TIMEOUT`).
   */
  fail(p: Peer<unknown>, code: string): boolean;
  /** The peer of connection `id` while it is open (handshaking included); else undefined. */
  peer(id: number): Peer<unknown> | undefined;
  /** Where connection `index` (global) goes: host, port, source address, `tls` (for scenarios that connect on their own). */
  target(index: number): ConnectTarget;
}

/** Where a connection goes: what `reactor.connect` takes. */
export interface ConnectTarget {
  host: string;
  port: number;
  localAddress?: string;
  /** `--tls`: one options object per worker (its TLS context and kept sessions are shared). */
  tls?: TlsConnectOptions;
}

/**
 * A protocol client that owns a scenario's connections (the WebSocket client). The worker opens
 * each connection with `connect` instead of `reactor.connect` and hands the engine's events to
 * `handler`: `onData` by way of `Scenario.data` (the scenario passes the bytes on, knowing
 * whose they are); `onClose` for every connection, opened or not, before its own bookkeeping
 * (so a failure reported there can still give its code to `ctx.fail`); `onDrain`, `onEnd`,
 * `onTimeout`, `onShutdown` (its graceful close at the stop) and `onReactor` as they come.
 */
export interface ScenarioClient {
  /**
   * Open connection `index` (global) to `target`, queueing what the protocol sends first;
   * returns the connection id. Errors: throws as `reactor.connect` does.
   */
  connect(reactor: Reactor, target: ConnectTarget, index: number): number;
  readonly handler: Handler;
}

/** The worker side of a scenario: one per worker process. `S` is the per-connection state. */
export interface Scenario<S> {
  /** State of a connection that just opened. */
  init(index: number): S;
  /**
   * The TCP connection opened; `trafficOn` says whether traffic has started. Return false when
   * a handshake must finish first (then call `ctx.established` or `ctx.fail`).
   */
  open(p: Peer<S>, trafficOn: boolean): boolean | void;
  /** Bytes arrived: return how many were consumed (undefined = all), as a Handler does. */
  data(p: Peer<S>, data: Buffer): number | void;
  /** The connection closed (`p.open` is already false). */
  close?(p: Peer<S>): void;
  /** Start (or, for one-shot scenarios, repeat) traffic on the connections given. */
  startTraffic(peers: Iterable<Peer<S>>): void;
  /** Stop sending. Called once or more; idempotent. */
  stopTraffic(): void;
  /** Scenario-specific figures for the parent (structured-cloneable), merged by `summarize`. */
  result?(): unknown;
  /** The protocol client the worker runs this scenario's connections through; none: plain TCP. */
  readonly client?: ScenarioClient;
}

/** HTTP figures of a run (`http` scenario). */
export interface HttpStats {
  /** Responses by status code, every phase. */
  status: Record<string, number>;
  /** Responses outside 200-299, every phase. */
  non_2xx: number;
  /** Connections dropped because a response could not be parsed. */
  parse_errors: number;
}

/** Broadcast figures of a run (`broadcast` scenario). */
export interface BroadcastStats {
  /** Connections that receive every publish (every open connection, the publisher included). */
  receivers: number;
  /** Publishes per second asked for. */
  rate: number;
  /** Publishes sent in the measured window. */
  published: number;
  /** Of those, the ones every receiver got. */
  complete: number;
  /** Deliveries of the measured publishes, summed over receivers. */
  deliveries: number;
  /** deliveries / the publisher's measured window. */
  deliveries_per_s: number;
  /** Per complete publish: time until the last receiver had it (µs). */
  last_receiver: LatencySummary | null;
}

/** WebSocket figures of a run (`ws-hold`, `ws-echo`). Tallies are over every phase. */
export interface WsStats {
  /** Connections whose 101 was accepted. */
  upgraded: number;
  /** Upgraded connections on which permessage-deflate was agreed (`--deflate`). */
  deflated: number;
  /** Failed opening handshakes by the client's code (`ERR_C1M_WS_HANDSHAKE_STATUS`, ...); also in `errors`. */
  handshake_failures: Record<string, number>;
  /** Upgraded connections the server broke RFC 6455 on, by code (`ERR_C1M_WS_INVALID_UTF8`, ...). */
  protocol_errors: Record<string, number>;
  /** Upgraded connections closed before the stop, by close code (1006: no close handshake). */
  close_codes: Record<string, number>;
}

/** Scenario fields of the result; null for the scenarios they do not belong to. */
export interface ScenarioFields {
  http: HttpStats | null;
  broadcast: BroadcastStats | null;
  /** Always set by this version; absent in results saved before the WebSocket scenarios existed. */
  ws?: WsStats | null;
  /** `connect` scenario: `{failures: {code: n}, resumed}` of its loops; absent in results saved before it existed. */
  connect?: { failures: Record<string, number>; resumed: number } | null;
}

/** What the parent needs to merge scenario results. */
export interface SummaryInput {
  /** Each worker's `result()`, in worker order (missing workers skipped). */
  extras: unknown[];
  /** Connections open at the end, over every worker. */
  openAtEnd: number;
  /** `--rate` as run (0 when not applicable). */
  rate: number;
}

/** A scenario module: its command-line face and its worker side. */
export interface ScenarioSpec {
  /** Name on the command line. */
  readonly name: string;
  /** One line for `--help`. */
  readonly summary: string;
  /** Options it accepts; the others are refused with a usage error. */
  readonly options: readonly ScenarioOption[];
  /** What one counted message is (`msgs`, `requests`, `deliveries`); null when nothing is sent. */
  readonly unit: string | null;
  /** Defaults that differ from the common ones (`--size` 64, `--depth` 1). */
  readonly defaults?: { size?: number; rate?: number };
  /**
   * After the measured window, stop sending and wait (bounded) for what is in flight before
   * the results: for scenarios whose figures are per message across workers (broadcast).
   */
  readonly drain?: boolean;
  /** Worker side. */
  create(ctx: ScenarioContext): Scenario<unknown>;
  /** Parent side: the scenario's own result fields. */
  summarize?(input: SummaryInput): Partial<ScenarioFields>;
}
