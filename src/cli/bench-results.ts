/**
 * The JSON results of `c1m bench` (one run, a sweep) and `c1m bench million`, as printed with
 * `--json` and read back by `c1m bench report`: the shapes the commands write and the report
 * reads, in one module that depends on neither (docs/bench.md describes every field).
 */
import type { ClientWarmup } from './bench-million-warm.js';
import type { Aborted } from './bench-pool.js';
import type { CpuPhase, MachineInfo, SocketCounts } from './bench-proc.js';
import type { LatencySummary } from './bench-stats.js';
import type { ScenarioFields } from './scenarios/types.js';

/** Parameters a `--sweep` may vary. */
export const SWEEP_KEYS = ['connections', 'size', 'depth', 'rate'] as const;
/** One of {@link SWEEP_KEYS}. */
export type SweepKey = (typeof SWEEP_KEYS)[number];

/** A server to compare: `--target name=CMD`. */
export interface BenchTarget {
  name: string;
  /** Spawned per run; null: a server already running (`--pid`, or nothing). */
  cmd: string | null;
}

/** The result of one run, printed as JSON with `--json` (every field is described in docs/bench.md). Latencies in µs; null where not measured. */
export interface BenchResult extends ScenarioFields {
  tool: 'c1m bench';
  scenario: string;
  host: string;
  port: number;
  target: number;
  processes: number;
  source_ips: number;
  connect_concurrency: number;
  started: number;
  connected: number;
  failed: number;
  retries: number;
  errors: Record<string, number>;
  /** The first reason given for each code of `errors` (e.g. OpenSSL's for ERR_C1M_TLS), when there was one. */
  error_samples?: Record<string, string>;
  connect_s: number;
  connect_rate: number;
  connect_timeout_hit: boolean;
  closed_early: number;
  close_errors: Record<string, number>;
  open_at_end: number;
  warmup_s: number;
  duration_s: number;
  size: number | null;
  depth: number | null;
  rate: number | null;
  msgs: number;
  msgs_per_s: number;
  payload_bytes_per_s: number;
  latency: LatencySummary | null;
  /** Rate mode: how late messages left after they were due (the generator's own lag). */
  send_lag: LatencySummary | null;
  /** WebSocket scenarios: `--deflate` given (null for other scenarios). */
  deflate: boolean | null;
  /** `--tls`: handshakes completed and how many resumed a session; null without `--tls` (absent in older results). */
  tls?: { resume: boolean; insecure: boolean; handshakes: number; resumed: number } | null;
  verify_errors: number | null;
  unexpected_msgs: number;
  send_skipped: number;
  client: { cpu_user_s: number; cpu_sys_s: number; rss_kb: number };
  server: ServerResult | null;
  aborted: Aborted;
}

/** Server figures: RSS of its process tree at the end of the run, and CPU spent during the bench. */
export interface ServerResult {
  pids: number[];
  rss_kb: number;
  rss_before_kb: number;
  /** (rss after - rss before) / connections open at the end. */
  bytes_per_conn: number | null;
  cpu_s: number;
}

/** One run of a sweep: the result plus the target it ran against. */
export type BenchRow = BenchResult & { target_name: string };

/** The JSON of a run with `--target`s or `--sweep`s: one row per (point, target). */
export interface BenchSweepResult {
  tool: 'c1m bench';
  kind: 'sweep';
  scenario: string;
  command: string;
  date: string;
  machine: MachineInfo;
  targets: BenchTarget[];
  sweep: Partial<Record<SweepKey, number[]>>;
  rows: BenchRow[];
}

/** One step of the ramp. Memory in kB unless named otherwise; kernel figures cover both ends of each connection. */
export interface MillionStep {
  /** Connections asked for in total at this step. */
  target: number;
  /** Connections open after the connect phase (all steps so far). */
  connected: number;
  /** Connections this step added, and how long that took. */
  added: number;
  connect_s: number;
  connect_rate: number;
  connect_timeout_hit: boolean;
  /**
   * CPU during the connect phase: how busy the whole box was (1: CPU-bound; well under 1: the
   * ramp waits on something else) and the server's and clients' CPU, per connection added.
   * Absent in results written before it existed.
   */
  connect_cpu?: CpuPhase;
  /**
   * The hold (`--hold` seconds with every connection idle): what holding them costs, e.g. a
   * heartbeat (`--ping-interval`, `--tcp-keepalive`). `keepalive_probes`: TCP keep-alive probes
   * the box's kernel sent meanwhile (TcpExt TCPKeepAlive; null when unreadable). Absent in
   * results written before it existed, and when the step was cut short.
   */
  hold?: { window_s: number; cpu: CpuPhase; keepalive_probes: number | null };
  /** Connect failures of this step, by code. */
  failed: number;
  errors: Record<string, number>;
  /** Connections that closed while held (all steps so far), by code. */
  closed_early: number;
  mem_available_kb: number | null;
  slab_kb: number | null;
  sunreclaim_kb: number | null;
  /** Slab growth since the baseline, per open connection, bytes. */
  kernel_bytes_per_conn: number | null;
  sockets: SocketCounts | null;
  /** During this step (box-wide): SYNs dropped on a full accept queue, SYNs retransmitted. */
  listen_overflows: number | null;
  syn_retransmits: number | null;
  /** Server VmRSS, summed over its processes. */
  server_rss_kb: number;
  /** Sum over server processes of (RSS now - that process's RSS at the baseline). */
  server_rss_growth_kb: number;
  /** Server RssAnon (private anonymous memory: heaps, malloc, stacks; no code pages), summed. */
  server_anon_kb: number;
  /** Sum over server processes of (RssAnon now - at the baseline). */
  server_anon_growth_kb: number;
  /** Server RssAnon growth per open connection, bytes: what the connections cost in user space. */
  server_bytes_per_conn: number | null;
  /** Server RssAnon growth since the previous step per connection added (the marginal cost), bytes. */
  server_bytes_per_added_conn: number | null;
  server_processes: number;
  /** Client worker VmRSS, summed. */
  client_rss_kb: number;
  /** TCP: one echo round trip on every connection. `--ws`: nothing sent (zeros). */
  echo: { sent: number; answered: number; time_s: number; latency: LatencySummary | null };
  /** `--ws`: connections whose 101 was accepted (all steps so far). */
  upgraded?: number;
  /** `--ws`: of those, the ones whose subscription was acknowledged (= `connected`). */
  subscribed?: number;
  /** Server RssAnon growth from the baseline sampled before the forced GC (kB), and per open connection (bytes). */
  server_anon_growth_no_gc_kb?: number;
  server_bytes_per_conn_no_gc?: number | null;
  /** `--ws --broadcast`: the step's one broadcast; null when it could not run. */
  broadcast?: MillionBroadcast | null;
}

/** How `c1m bench million --ws --broadcast` publishes (`--publish`). */
export type PublishVia = 'http' | 'nats';

/** One broadcast of a step. Times in ms unless named otherwise. */
export interface MillionBroadcast {
  via: PublishVia;
  topic: string;
  /** Subscribed connections when it was published: deliveries expected. */
  subscribers: number;
  /** Deliveries counted by the clients (each subscriber once, if all is well). */
  delivered: number;
  /** The publish request's round trip (HTTP response, or NATS PONG after the HPUB). */
  publish_ms: number;
  /** The gateway's answer to an HTTP publish (`{delivered, seq, epoch}`: its own process's count); null via NATS. */
  publish_answer: unknown;
  /** Publish -> the last delivery (the latency histogram's max). */
  last_ms: number | null;
  /** Publish -> delivery over every delivery, µs. */
  latency: LatencySummary | null;
  /** Why it did not complete (publish refused, deliveries missing at the deadline); null when it did. */
  error: string | null;
  /**
   * Where the time went: CPU seconds from the publish until the deliveries were all counted
   * (`window_s`, which includes up to one 250 ms progress period), summed over the gateway's
   * processes, the nats-server started here, and the client workers.
   */
  cpu?: { window_s: number; server_user_s: number; server_sys_s: number; nats_s: number; client_user_s: number; client_sys_s: number };
}

/** The warm-up before the baseline: connections that connected, echoed once and closed. */
export interface Warmup {
  connections: number;
  connected: number;
  echoed: number;
}

/** The run in a few figures (null without steps). */
export interface MillionSummary {
  /** Connections open at the last step (`--ws`: upgraded, the 101 accepted). */
  connected: number | null;
  /** Connect phases summed over the steps, seconds (holds and echo rounds excluded). */
  connect_s: number | null;
  /** Server RssAnon growth per connection at the last step, from the baseline. */
  server_bytes_per_conn: number | null;
  /** Server RssAnon growth per connection from the first step to the last, bytes. */
  server_bytes_per_conn_after_first_step: number | null;
  kernel_bytes_per_conn: number | null;
  /** `--ws`: subscribed connections at the last step. */
  subscribed?: number | null;
  /** `--ws --broadcast`: deliveries of the last step's broadcast, and publish -> last delivery (ms). */
  delivered?: number | null;
  broadcast_last_ms?: number | null;
  /** `--ws`: the GC'd figure beside `server_bytes_per_conn`, which there is taken without a forced GC. */
  server_bytes_per_conn_after_gc?: number | null;
}

/** Why the ramp stopped before its last step; false when it did not. `blocked`: no step is within c1m doctor's limits. */
export type MillionStop = Aborted | 'server_died' | 'blocked';

/** The JSON result of `c1m bench million`. */
export interface MillionResult {
  tool: 'c1m bench';
  kind: 'million';
  /** What was held: TCP echo connections (absent in older results), or gateway WebSocket subscribers (`--ws`). */
  mode?: 'tcp' | 'ws';
  /** `--tls`: the connections (TCP echo, or with `--ws` the subscribers: wss://) spoke TLS (full handshakes). */
  tls?: boolean;
  /** `--ws`: the NATS server the gateway's processes used, and whether this run started (and stopped) it. */
  nats?: { url: string; started_here: boolean; pid: number | null } | null;
  command: string;
  date: string;
  machine: MachineInfo;
  port: number;
  steps_asked: number[];
  /** Steps not run because c1m doctor says the box cannot hold them (without --force). */
  steps_skipped: number[];
  doctor: { max_connections: number | null; blocking: { name: string; current: number | null; required: number; allows: number | null; fix: string | null }[] };
  server: { command: string; processes: number; per_process_cap: number };
  /** `node_flags`: the Node/V8 flags of every client process: the bench's own (`--max-semi-space-size=1 --expose-gc`), then `--node-flags`.
   * `batch_scheduling`: the clients (and the server, `--batch-scheduling` in its command) ran under SCHED_BATCH.
   * `warmup`: what `--client-warmup` did before the first step (null: none). */
  client: { processes: number; source_ips: number; per_process: number[]; node_flags?: string[]; batch_scheduling?: boolean; poll_ms?: number; connect_poll_ms?: number; warmup?: ClientWarmup | null };
  /** Taken after the warm-up (its connections closed) and a full GC in every server process. */
  baseline: { mem_available_kb: number | null; slab_kb: number | null; sunreclaim_kb: number | null; server_rss_kb: number; server_anon_kb: number; sockets: SocketCounts | null; warmup: Warmup | null };
  steps: MillionStep[];
  summary: MillionSummary;
  stopped: MillionStop;
  stop_detail: string | null;
  cleanup: { sockets_before: SocketCounts | null; sockets_after: SocketCounts | null; estab_delta: number | null; pids_started: number; pids_alive_after: number[]; ok: boolean };
}
