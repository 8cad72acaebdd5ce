/**
 * The command line of `c1m bench million`: its usage text, its options and their validation
 * (exact messages, a `UsageError` for each mistake). Argument parsing only; the run is
 * `bench-million.ts`, its WebSocket side `bench-million-ws.ts`.
 */
import { parseArgs } from 'node:util';
import type { PublishVia } from './bench-results.js';
import { int, seconds, UsageError } from './bench-layout.js';
import { KEEPALIVE_SYNTAX, parseKeepAlive } from './keepalive-flag.js';
import { splitNodeFlags } from './node-flags.js';
import { CONNECTIONS_PER_SOURCE_ADDRESS } from './doctor.js';

/**
 * The clients' poll interval once connected, with `--ws`, for runs whose largest step is below
 * {@link LARGE_RUN}. Measured on the WebSocket million (BENCHMARKS.md, eleventh sitting, three
 * alternating pairs): 50 ms cut the clients' CPU in the broadcast by 10-35 % in each pair, and
 * the last delivery by 17 % in two of them (4 % later in the third), against waking per event;
 * 5 ms was worse than either, since each of 52 Node processes then wakes 200 times a second
 * with little to do. Without `--ws` the default stays 0: two pairs of TCP millions could not
 * separate the echo round's times from the host's drift.
 */
export const DEFAULT_CLIENT_POLL_MS = 50;
/**
 * The same from {@link LARGE_RUN} connections. At a million each of 52 client processes takes
 * only ~30 deliveries per 50 ms tick, and a wake-up of a cold Node process costs about as much as
 * those deliveries: 250 ms took the clients' CPU in the broadcast 31-33 % lower and the last
 * delivery 18-23 % sooner than 50 ms in two alternating pairs (BENCHMARKS.md, fifteenth
 * sitting); 1,000 ms cost the clients no less than 250. Below it the polling delay would be
 * most of a small broadcast's time.
 */
export const DEFAULT_CLIENT_POLL_MS_LARGE = 250;
/** The largest step from which `--ws` runs poll at {@link DEFAULT_CLIENT_POLL_MS_LARGE}. */
export const LARGE_RUN = 100_000;

/** `--client-poll-ms`'s default for a run (see the constants above). */
export function defaultClientPollMs(ws: boolean, steps: readonly number[]): number {
  if (!ws) return 0;
  return Math.max(...steps) >= LARGE_RUN ? DEFAULT_CLIENT_POLL_MS_LARGE : DEFAULT_CLIENT_POLL_MS;
}
/**
 * `--client-warmup`'s default: deliveries per client process before the first step. Measured
 * (BENCHMARKS.md, twelfth sitting): a lone client process's broadcast goes from cold to warm code
 * (19,000 subscribers: 0.12 -> 0.05 user-s); at a million the last delivery came 5-6 % sooner in
 * both WebSocket pairs and the TCP echo round 4 % and 12 % sooner in two pairs: small, within the hour's
 * noise, but the same way each time, for a few seconds of warm-up.
 */
export const DEFAULT_CLIENT_WARMUP = 2000;

/** `c1m bench million --help`. */
export const MILLION_USAGE = `usage: c1m bench million [--steps 100000,250000,500000,1000000] [options]
  Starts c1m serve echo --processes S and C client processes on this box, ramps the connection
  count step by step, and at each step reports connect time and rate, failures by errno,
  kernel memory (Slab, SUnreclaim), server memory growth per connection and one echo round trip
  on every connection. Connections stay open from step to step.
  --steps N1,N2,...          connection counts to reach, increasing (default 100000,250000,500000,1000000)
  --port P                   server port on 127.0.0.1 (default 9600)
  --source-ips auto|K        loopback source addresses (auto: ceil(max step / ${CONNECTIONS_PER_SOURCE_ADDRESS}))
  --min-available-gib G      stop when MemAvailable falls below G GiB (default 4)
  --max-failure-rate F       stop after a step whose connect failures exceed F of its new connections (default 0.01)
  --hold S                   seconds to hold each step before sampling memory (default 2)
  --warmup auto|N            connections that connect, echo once and close before the memory
                             baseline is taken (auto: 300 per server process; 0: none)
  --size B                   echo message size (default 16)
  --server-processes auto|N  server processes (auto: so that each holds at most ~19,000 at a 20,000-file limit)
  --client-processes auto|N  client processes (auto: ceil(max step / (open-file limit - 500)))
  --conns-per-process N      per-process cap used by both autos (forces a split at small scale)
  --connect-concurrency C    connects in flight per client process (default 1000)
  --connect-timeout S        longest connect phase per step (default 300)
  --force                    also run the steps c1m doctor says this box cannot hold
  --json                     print the result as one JSON line (the last line of stdout)
  --report FILE              also write a self-contained HTML report
  --ws                       WebSocket subscribers instead of TCP echo: c1m serve gateway --processes S
                             --no-auth --nats URL; each client connects to /ws?topics=TOPIC and counts
                             as connected once upgraded AND subscribed (no echo round)
  --broadcast                with --ws: at each step, after the hold, publish ONE message once and time
                             its delivery to every subscriber (delivered, p50/p99/max, last)
  --topic T                  with --ws: the topic (default bench)
  --publish http|nats        with --broadcast: POST /publish/T to the gateway (default), or publish
                             on NATS directly (subject c1m.topic.T)
  --nats URL                 with --ws: use this NATS server (default: start a private nats-server
                             on a free loopback port, stopped at the end)
  --ping-interval MS         with --ws: the gateway's WebSocket heartbeat (default: the gateway's 30000;
                             0: none). Every idle subscriber costs a ping and a pong per interval:
                             1M subscribers at 30 s are 33,000 exchanges/s on the box
  --tcp-keepalive IDLE[,INTERVAL[,COUNT]]
                             the server's c1m serve --tcp-keepalive: the kernel's keep-alive probes
                             on every accepted connection (no process wakes for them); each step's
                             \`hold\` reports the hold's CPU and the probes sent
  --server-poll-ms MS        the server's c1m serve --poll-interval: its workers poll every MS from
                             a timer instead of waking per event (default 0: wake per event)
  --defer-accept S           the server's c1m serve --defer-accept (default: its own, 5 s for the
                             gateway, 0 for echo; echo clients send nothing until the echo round)
  --node-flags="FLAGS"       Node/V8 flags for the server's worker processes (c1m serve --node-flags)
                             and the client processes (after the clients' own
                             --max-semi-space-size=1 --expose-gc), e.g. "--max-opt=1" (V8's
                             baseline tier only; docs/bench.md, "Many processes on two cores")
  --no-batch-scheduling      run the server's and the clients' processes under the default SCHED_OTHER
                             instead of SCHED_BATCH (c1m serve --batch-scheduling): with it, a woken
                             process waits for the running one's time slice instead of preempting it,
                             so each wake-up takes more connections (BENCHMARKS.md: the TCP million
                             ~27 % faster; the WebSocket million unchanged)
  --client-poll-ms P         once connected, each client process polls its connections every P ms
                             (Reactor.setPollInterval) instead of waking for each event (default
                             with --ws: 250 when the largest step is 100,000 or more, else 50;
                             without --ws: 0; 0: wake per event). The server's writes then
                             wake no client: closer to what the broadcast and the echo round cost
                             when the subscribers are not on this box's CPUs. Latencies include up
                             to P ms of polling delay; connect phases wake per event (unless
                             --client-connect-poll-ms)
  --client-connect-poll-ms P during each connect phase, each client process polls every P ms instead
                             of waking per event (default 0: wake per event)
  --client-warmup N          before the first step, each client process opens a few connections
                             and takes about N deliveries on them (--ws --broadcast: publishes to
                             20 subscribers each; TCP: echo rounds over 200 connections each), so
                             the measured broadcast or echo round runs the clients' compiled code,
                             not V8's interpreter in 50+ cold processes (default 2000; 0: none).
                             The connections stay open as part of the first step
  --tls                      over TLS: the server (c1m serve echo, or with --ws the gateway) gets
                             --tls-cert/--tls-key with a throwaway P-256 certificate (openssl), the
                             clients verify it; every connect is a full TLS 1.3 handshake (--ws:
                             wss://, and the HTTP publish goes over https)`;

/** Validated `c1m bench million` options. */
export interface MillionOptions {
  steps: number[];
  port: number;
  sourceIps: number | 'auto';
  minAvailableKb: number;
  maxFailureRate: number;
  holdS: number;
  /** Warm-up connections before the baseline ('auto': WARMUP_PER_SERVER_PROCESS per server process). */
  warmup: number | 'auto';
  size: number;
  serverProcesses: number | 'auto';
  clientProcesses: number | 'auto';
  connsPerProcess: number | undefined;
  concurrency: number;
  connectTimeoutS: number;
  force: boolean;
  json: boolean;
  report: string | undefined;
  /** `--ws`: gateway subscribers (see bench-million-ws.ts); `broadcast`, `topic`, `publish`, `nats` go with it. */
  ws: boolean;
  broadcast: boolean;
  topic: string;
  publish: PublishVia;
  nats: string | undefined;
  /** `--ping-interval`: the gateway's WebSocket heartbeat in ms (0: none); undefined keeps the gateway's default (30 s). */
  pingInterval: number | undefined;
  /** `--defer-accept`: the server's `c1m serve --defer-accept` in seconds; undefined keeps its default. */
  deferAccept: number | undefined;
  /** `--server-poll-ms`: the server's `c1m serve --poll-interval` in ms; undefined keeps its default (0). */
  serverPollMs: number | undefined;
  /** `--tcp-keepalive`: passed to the server as given (validated like \`c1m serve\` does). */
  tcpKeepAlive: string | undefined;
  /** `--node-flags`: Node/V8 flags of the server's workers and of the client processes (none: []). */
  nodeFlags: string[];
  /** `--tls`: TCP echo, or with `ws` the gateway's subscribers, over TLS (full, verified handshakes; see bench-million-tls.ts). */
  tls: boolean;
  /** SCHED_BATCH for the server (`c1m serve --batch-scheduling`) and the clients; off with `--no-batch-scheduling`. */
  batchScheduling: boolean;
  /** `--client-poll-ms`: the clients' poll interval after each connect phase (0: wake per event; default: {@link defaultClientPollMs}). */
  clientPollMs: number;
  /** `--client-connect-poll-ms`: the clients' poll interval during connect phases (0: wake per event). */
  clientConnectPollMs: number;
  /** `--client-warmup`: deliveries per client process before the first step (0: none; default {@link DEFAULT_CLIENT_WARMUP}; bench-million-warm.ts). */
  clientWarmup: number;
}

/** Parse `c1m bench million` arguments; 'help' for --help. Errors: throws a `UsageError`. */
export function parseMillionArgs(argv: string[]): MillionOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        steps: { type: 'string' },
        port: { type: 'string', short: 'p' },
        'source-ips': { type: 'string' },
        'min-available-gib': { type: 'string' },
        'max-failure-rate': { type: 'string' },
        hold: { type: 'string' },
        warmup: { type: 'string' },
        size: { type: 'string' },
        'server-processes': { type: 'string' },
        'client-processes': { type: 'string' },
        'conns-per-process': { type: 'string' },
        'connect-concurrency': { type: 'string' },
        'connect-timeout': { type: 'string' },
        force: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        report: { type: 'string' },
        ws: { type: 'boolean', default: false },
        broadcast: { type: 'boolean', default: false },
        topic: { type: 'string' },
        publish: { type: 'string' },
        nats: { type: 'string' },
        'ping-interval': { type: 'string' },
        'defer-accept': { type: 'string' },
        'server-poll-ms': { type: 'string' },
        'tcp-keepalive': { type: 'string' },
        tls: { type: 'boolean', default: false },
        'no-batch-scheduling': { type: 'boolean', default: false },
        'client-poll-ms': { type: 'string' },
        'client-connect-poll-ms': { type: 'string' },
        'client-warmup': { type: 'string' },
        'node-flags': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  for (const k of ['broadcast', 'topic', 'publish', 'nats', 'ping-interval'] as const) if (v[k] !== undefined && v[k] !== false && !v.ws) throw new UsageError(`--${k} applies to --ws only`);
  if (v.publish !== undefined && !v.broadcast) throw new UsageError('--publish applies to --broadcast only');
  if (v.publish !== undefined && v.publish !== 'http' && v.publish !== 'nats') throw new UsageError(`--publish must be http or nats, got "${v.publish}"`);
  const topic = v.topic ?? 'bench';
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(topic) || topic.length > 128) throw new UsageError(`--topic must be [A-Za-z0-9_-] segments separated by dots, got "${topic}"`);
  if (v.nats !== undefined && !/^nats:\/\/[^\s,]+$/.test(v.nats)) throw new UsageError(`--nats must be one nats://host:port URL, got "${v.nats}"`);
  const steps = (v.steps ?? '100000,250000,500000,1000000').split(',').map((s) => int('steps', s.trim(), 1, 100_000_000)!);
  for (let i = 1; i < steps.length; i++) {
    if (steps[i]! <= steps[i - 1]!) throw new UsageError(`--steps must increase, got ${v.steps}`);
  }
  const auto = (name: string, s: string | undefined): number | 'auto' => (s === undefined || s === 'auto' ? 'auto' : int(name, s, 1, 1024)!);
  const gib = v['min-available-gib'] ?? '4';
  if (!/^\d+(\.\d+)?$/.test(gib)) throw new UsageError(`--min-available-gib must be a number of GiB, got "${gib}"`);
  const rate = v['max-failure-rate'] ?? '0.01';
  if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(rate)) throw new UsageError(`--max-failure-rate must be a fraction from 0 to 1, got "${rate}"`);
  return {
    steps,
    port: int('port', v.port, 1, 65535) ?? 9600,
    sourceIps: v['source-ips'] === undefined || v['source-ips'] === 'auto' ? 'auto' : int('source-ips', v['source-ips'], 1, 65_534)!,
    minAvailableKb: Math.round(Number(gib) * 1024 * 1024),
    maxFailureRate: Number(rate),
    holdS: seconds('hold', v.hold, 0, 2),
    warmup: v.warmup === undefined || v.warmup === 'auto' ? 'auto' : int('warmup', v.warmup, 0, 19_000)!,
    size: int('size', v.size, 1, 65_536) ?? 16,
    serverProcesses: auto('server-processes', v['server-processes']),
    clientProcesses: auto('client-processes', v['client-processes']),
    connsPerProcess: int('conns-per-process', v['conns-per-process'], 1, 100_000_000),
    concurrency: int('connect-concurrency', v['connect-concurrency'], 1, 1_000_000) ?? 1000,
    connectTimeoutS: seconds('connect-timeout', v['connect-timeout'], 1, 300),
    force: v.force!,
    json: v.json!,
    report: v.report,
    ws: v.ws!,
    broadcast: v.broadcast!,
    topic,
    publish: (v.publish ?? 'http') as PublishVia,
    nats: v.nats,
    pingInterval: int('ping-interval', v['ping-interval'], 0, 2_147_483_647),
    deferAccept: int('defer-accept', v['defer-accept'], 0, 3600),
    serverPollMs: int('server-poll-ms', v['server-poll-ms'], 0, 60_000),
    tcpKeepAlive: keepAliveOf(v['tcp-keepalive']),
    nodeFlags: nodeFlagsOf(v['node-flags']),
    tls: v.tls!,
    batchScheduling: !v['no-batch-scheduling'],
    clientPollMs: int('client-poll-ms', v['client-poll-ms'], 0, 1000) ?? defaultClientPollMs(v.ws === true, steps),
    clientConnectPollMs: int('client-connect-poll-ms', v['client-connect-poll-ms'], 0, 1000) ?? 0,
    clientWarmup: int('client-warmup', v['client-warmup'], 0, 1_000_000) ?? DEFAULT_CLIENT_WARMUP,
  };
}

/** `--tcp-keepalive`: its syntax (the server checks the ranges). Errors: UsageError. */
function keepAliveOf(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  if (parseKeepAlive(s) === null) throw new UsageError(KEEPALIVE_SYNTAX);
  return s.trim();
}

/** `--node-flags`: space-separated `--flag` words. Errors: UsageError for anything else. */
function nodeFlagsOf(s: string | undefined): string[] {
  const { flags, bad } = splitNodeFlags(s ?? '');
  if (bad !== undefined) throw new UsageError(`--node-flags: not a --flag: ${bad}`);
  return flags;
}
