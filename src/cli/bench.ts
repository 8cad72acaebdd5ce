/**
 * `c1m bench <scenario>`: the load generator, on the c1m engine in client mode.
 *
 * Model: this process only orchestrates. It splits N connections over worker processes (each
 * must stay under its open-file limit) and over loopback source addresses (each gives one port
 * range per server address:port), forks the workers (`bench-worker.ts`), walks them through
 * the phases (connect -> warmup -> measured run -> stop), prints progress once a second on
 * stderr, merges their counters and HDR histograms, and prints the result (one JSON line last
 * on stdout with `--json`). With `--spawn`/`--pid` it samples the server's RSS and CPU time
 * from /proc before the connect phase and at the end of the run.
 *
 * Invariants: every wait is bounded (ready, connect timeout, warmup, duration, results, exits);
 * every child (workers, spawned server) is gone when `benchMain` resolves, also after SIGINT.
 * Percentiles come only from merged histograms.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultBackend, nofileLimit } from '../index.js';
import { addCounts, formatMicros, latencyHistogram, mergeHistograms, summarize, type LatencySummary } from './bench-stats.js';
import type { ParentMessage, WorkerConfig, WorkerCounters, WorkerMessage, WorkerResult, WorkerScenario } from './bench-worker.js';
import { CONNECTIONS_PER_SOURCE_ADDRESS } from './doctor.js';

/** Scenarios that run today. */
export const SCENARIOS: readonly WorkerScenario[] = ['hold', 'echo'];
/** Scenarios the CLI knows by name but cannot run yet: rejected with a clear message. */
export const PLANNED_SCENARIOS: readonly string[] = ['ws-hold', 'ws-echo', 'broadcast', 'http'];

/** `c1m bench --help`. */
export const BENCH_USAGE = `usage: c1m bench <${SCENARIOS.join('|')}> --port P -c N [options]
  --host H                  server address (default 127.0.0.1; non-loopback needs --yes-non-loopback)
  -c, --connections N       connections to open and hold
  --processes auto|N        worker processes (auto: ceil(N / (open-file limit - 500)))
  --source-ips auto|K       loopback source addresses 127.0.0.2... (auto: ceil(N / ${CONNECTIONS_PER_SOURCE_ADDRESS}))
  -d, --duration S          measured seconds after the connect phase (default 10)
  --warmup S                echo: seconds of traffic before measuring (default 1)
  --size B                  echo: message size in bytes (default 64)
  --depth D | --rate R      echo: D messages in flight per connection (default 1), or R msgs/s each
  --verify                  echo: compare every echoed byte
  --connect-concurrency C   connects in flight per process (default 1000)
  --connect-timeout S       end of the connect phase at the latest (default 60)
  --retries N               retries of a transient connect failure (default 3)
  --spawn "CMD"             start the server (sh -c 'exec CMD'), wait for "listening", SIGTERM it at the end
  --pid PID                 measure an existing server (repeat for several processes)
  --json                    print the result as one JSON line (the last line of stdout)
  --yes-non-loopback        allow a target outside 127.0.0.0/8 and ::1
scenarios planned, not available yet: ${PLANNED_SCENARIOS.join(', ')}`;

/** Validated command line. */
export interface BenchOptions {
  scenario: WorkerScenario;
  host: string;
  port: number;
  connections: number;
  processes: number | 'auto';
  sourceIps: number | 'auto';
  durationS: number;
  warmupS: number;
  size: number;
  depth: number;
  rate: number;
  verify: boolean;
  concurrency: number;
  connectTimeoutS: number;
  retries: number;
  spawn: string | undefined;
  pids: number[];
  json: boolean;
  nonLoopback: boolean;
}

/** How connections are laid out. */
export interface BenchPlan {
  /** Connections per worker process. */
  perProcess: number[];
  /** Source addresses (empty: the kernel picks). */
  sources: string[];
}

/** The result, printed as JSON with `--json` (every field is described in docs/bench.md). Latencies in µs; null where not measured. */
export interface BenchResult {
  tool: 'c1m bench';
  scenario: WorkerScenario;
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
  verify_errors: number | null;
  unexpected_msgs: number;
  send_skipped: number;
  client: { cpu_user_s: number; cpu_sys_s: number; rss_kb: number };
  server: ServerResult | null;
  aborted: false | 'signal' | 'worker_died' | 'no_results';
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

class UsageError extends Error {}

const USER_HZ = 100; // /proc/<pid>/stat clock ticks: fixed by the Linux ABI
const READY_TIMEOUT_MS = 30_000;
const RESULT_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 10_000;
const SERVER_LISTEN_TIMEOUT_MS = 15_000;

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function int(name: string, s: string | undefined, min: number, max: number): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${s}"`);
  }
  return Number(s);
}

function seconds(name: string, s: string | undefined, min: number, fallback: number): number {
  if (s === undefined) return fallback;
  if (!/^\d+(\.\d+)?$/.test(s) || Number(s) < min || Number(s) > 86_400) {
    throw new UsageError(`--${name} must be a number of seconds from ${min} to 86400, got "${s}"`);
  }
  return Number(s);
}

function autoOrInt(name: string, s: string | undefined, max: number): number | 'auto' {
  return s === undefined || s === 'auto' ? 'auto' : int(name, s, 1, max)!;
}

/** Parse and validate `argv` (after `bench`). Throws a usage error with the exact message. */
export function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', short: 'p' },
        connections: { type: 'string', short: 'c' },
        processes: { type: 'string' },
        'source-ips': { type: 'string' },
        duration: { type: 'string', short: 'd' },
        warmup: { type: 'string' },
        size: { type: 'string' },
        depth: { type: 'string' },
        rate: { type: 'string' },
        verify: { type: 'boolean', default: false },
        'connect-concurrency': { type: 'string' },
        'connect-timeout': { type: 'string' },
        retries: { type: 'string' },
        spawn: { type: 'string' },
        pid: { type: 'string', multiple: true },
        json: { type: 'boolean', default: false },
        'yes-non-loopback': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) return 'help';
  const name = positionals[0];
  if (name === undefined) throw new UsageError(`a scenario is required: ${SCENARIOS.join(', ')}`);
  if (PLANNED_SCENARIOS.includes(name)) {
    throw new UsageError(`scenario "${name}" is not available yet; available: ${SCENARIOS.join(', ')}`);
  }
  if (!(SCENARIOS as readonly string[]).includes(name)) {
    throw new UsageError(`unknown scenario "${name}"; available: ${SCENARIOS.join(', ')}`);
  }
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const scenario = name as WorkerScenario;
  const port = int('port', v.port, 1, 65535);
  if (port === undefined) throw new UsageError('--port is required');
  const connections = int('connections', v.connections, 1, 100_000_000);
  if (connections === undefined) throw new UsageError('-c/--connections is required');
  if (scenario !== 'echo') {
    for (const opt of ['size', 'depth', 'rate', 'warmup'] as const) {
      if (v[opt] !== undefined) throw new UsageError(`--${opt} applies to the echo scenario only`);
    }
    if (v.verify) throw new UsageError('--verify applies to the echo scenario only');
  }
  if (v.depth !== undefined && v.rate !== undefined) throw new UsageError('--depth and --rate exclude each other');
  const size = int('size', v.size, 1, 1 << 20) ?? 64;
  const depth = int('depth', v.depth, 1, 4096) ?? 1;
  const rate = v.rate === undefined ? 0 : seconds('rate', v.rate, 0.001, 0);
  if (v.rate !== undefined && rate <= 0) throw new UsageError('--rate must be above 0');
  if (size * depth > 8 << 20) throw new UsageError(`--size x --depth must be at most 8 MiB in flight per connection, got ${size * depth} bytes`);
  if (v.spawn !== undefined && v.pid !== undefined) throw new UsageError('--spawn and --pid exclude each other');
  if (v.spawn !== undefined && v.spawn.trim() === '') throw new UsageError('--spawn needs a command');
  const pids = (v.pid ?? []).flatMap((p) => p.split(',')).map((p) => int('pid', p.trim(), 1, 2 ** 22)!);
  for (const pid of pids) {
    if (!procAlive(pid)) throw new UsageError(`--pid ${pid}: no such process`);
  }
  return {
    scenario,
    host: v.host!,
    port,
    connections,
    processes: autoOrInt('processes', v.processes, 1024),
    sourceIps: autoOrInt('source-ips', v['source-ips'], 65_534),
    durationS: seconds('duration', v.duration, 0.1, 10),
    warmupS: scenario === 'echo' ? seconds('warmup', v.warmup, 0, 1) : 0,
    size, depth, rate,
    verify: v.verify!,
    concurrency: int('connect-concurrency', v['connect-concurrency'], 1, 1_000_000) ?? 1000,
    connectTimeoutS: seconds('connect-timeout', v['connect-timeout'], 0.1, 60),
    retries: int('retries', v.retries, 0, 20) ?? 3,
    spawn: v.spawn,
    pids,
    json: v.json!,
    nonLoopback: v['yes-non-loopback']!,
  };
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopback(ip: string): boolean {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return ip === '::1' || ip === '0:0:0:0:0:0:0:1';
}

/** The K loopback source addresses 127.0.0.2, 127.0.0.3, ... (past .255 the count carries on into 127.0.1.x). */
export function sourceAddresses(k: number): string[] {
  const base = (127 << 24) + 2;
  return Array.from({ length: k }, (_, j) => {
    const a = base + j;
    return `${127}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
  });
}

/**
 * Lay out N connections: processes (auto: as few as the per-process connection limit allows),
 * split as evenly as possible, and source addresses (auto: one per 10,000 connections).
 * `perProcessLimit` is `nofileLimit().connections`; `ipv4Loopback` false disables source
 * addresses (non-loopback or IPv6 targets: the kernel picks).
 */
export function planRun(connections: number, processes: number | 'auto', sourceIps: number | 'auto', perProcessLimit: number, ipv4Loopback: boolean): BenchPlan {
  if (!(perProcessLimit >= 1)) throw new UsageError(`the open-file limit leaves no room for connections (run c1m doctor)`);
  const p = processes === 'auto' ? Math.ceil(connections / perProcessLimit) : processes;
  if (p > connections) throw new UsageError(`--processes ${p} is more than the ${connections} connections`);
  if (Math.ceil(connections / p) > perProcessLimit) {
    throw new UsageError(`${connections} connections over ${p} process(es) is ${Math.ceil(connections / p)} per process; ` +
      `the open-file limit allows ${perProcessLimit} (use --processes auto, or raise it: c1m doctor -c ${connections})`);
  }
  if (p > 1024) throw new UsageError(`${connections} connections need ${p} processes at ${perProcessLimit} per process; at most 1024 (raise the open-file limit: c1m doctor)`);
  const perProcess = Array.from({ length: p }, (_, i) => Math.floor(connections / p) + (i < connections % p ? 1 : 0));
  let sources: string[] = [];
  if (ipv4Loopback) {
    sources = sourceAddresses(sourceIps === 'auto' ? Math.ceil(connections / CONNECTIONS_PER_SOURCE_ADDRESS) : sourceIps);
  } else if (sourceIps !== 'auto') {
    throw new UsageError('--source-ips applies to IPv4 loopback targets only');
  }
  return { perProcess, sources };
}

// ---- the server under test: /proc sampling ----

function procAlive(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

/** `[ppid, utime + stime ticks]` from /proc/<pid>/stat, or null when the process is gone. */
function procStat(pid: number): [number, number] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return [Number(f[1]), Number(f[11]) + Number(f[12])];
  } catch {
    return null;
  }
}

function procRssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The processes rooted at `roots`: themselves and every descendant. */
function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (!st) continue;
    const list = children.get(st[0]);
    if (list) list.push(Number(name));
    else children.set(st[0], [Number(name)]);
  }
  const out = new Set<number>();
  const todo = [...roots];
  for (let pid = todo.pop(); pid !== undefined; pid = todo.pop()) {
    if (out.has(pid) || !procAlive(pid)) continue;
    out.add(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return [...out];
}

interface ServerSample {
  pids: number[];
  rssKb: number;
  cpuS: number;
}

function sampleServer(roots: readonly number[]): ServerSample {
  const pids = processTree(roots);
  let rssKb = 0, ticks = 0;
  for (const pid of pids) {
    rssKb += procRssKb(pid);
    ticks += procStat(pid)?.[1] ?? 0;
  }
  return { pids, rssKb, cpuS: ticks / USER_HZ };
}

interface SpawnedServer {
  child: ChildProcess;
  pid: number;
  stop(): Promise<void>;
  /** Synchronous last resort (process exit). */
  kill(): void;
}

/** Start `cmd` in its own process group; resolve once a line of its output says "listening". */
async function spawnServer(cmd: string, err: NodeJS.WritableStream): Promise<SpawnedServer> {
  const child = spawn('/bin/sh', ['-c', `exec ${cmd}`], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid!, sig);
    } catch {
      // already gone
    }
  };
  const server: SpawnedServer = {
    child,
    pid: pid ?? -1,
    kill: () => {
      if (alive()) signal('SIGKILL');
    },
    stop: async () => {
      if (!alive()) return;
      signal('SIGTERM');
      let t: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise<void>((r) => (t = setTimeout(r, EXIT_TIMEOUT_MS)))]);
      clearTimeout(t);
      if (alive()) {
        err.write(`c1m bench: server did not stop within ${EXIT_TIMEOUT_MS / 1000}s of SIGTERM; SIGKILL\n`);
        signal('SIGKILL');
        await exited;
      }
    },
  };
  if (pid === undefined) throw new Error(`--spawn: could not start "${cmd}"`);
  const seen: string[] = [];
  let ready: (() => void) | undefined;
  const listening = new Promise<void>((r) => (ready = r));
  const onLine = (line: string): void => {
    if (ready) {
      seen.push(line);
      if (/listening/i.test(line)) {
        ready();
        ready = undefined;
      }
    } else {
      err.write(`server: ${line}\n`);
    }
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    listening.then(() => 'ok' as const),
    exited.then(() => 'exited' as const),
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), SERVER_LISTEN_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (outcome !== 'ok') {
    await server.stop();
    const tail = seen.slice(-10).map((l) => `  ${l}\n`).join('');
    throw new Error(`--spawn: the server ${outcome === 'exited' ? `exited (code ${child.exitCode}, signal ${child.signalCode})` : `printed no "listening" line within ${SERVER_LISTEN_TIMEOUT_MS / 1000}s`} ` +
      `before it was ready${tail ? `; its output:\n${tail}` : ''}`);
  }
  return server;
}

// ---- workers ----

interface WorkerHandle {
  child: ChildProcess;
  config: WorkerConfig;
  ready: boolean;
  counters: WorkerCounters;
  /** ms since start when every connection of this worker had settled. */
  settledAt: number | undefined;
  result: WorkerResult | undefined;
  exited: boolean;
  fatal: string | undefined;
}

const ZERO: WorkerCounters = { started: 0, connected: 0, failed: 0, pending: 0, open: 0, retries: 0, msgsTotal: 0 };

function sum(ws: readonly WorkerHandle[], pick: (c: WorkerCounters) => number): number {
  let n = 0;
  for (const w of ws) n += pick(w.result ?? w.counters);
  return n;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Run `c1m bench`; resolves with the exit code once every child process is gone. */
export async function benchMain(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr): Promise<number> {
  let o: BenchOptions | 'help';
  let plan: BenchPlan;
  let host: string;
  try {
    o = parseBenchArgs(argv);
    if (o === 'help') {
      out.write(`${BENCH_USAGE}\n`);
      return 0;
    }
    host = o.host;
    if (isIP(host) === 0) {
      try {
        host = (await lookup(host, { family: 4 })).address;
      } catch {
        throw new UsageError(`--host ${o.host}: cannot resolve it`);
      }
    }
    const loopback = isLoopback(host);
    if (!loopback && !o.nonLoopback) {
      throw new UsageError(`refusing to load ${host}, which is not a loopback address: a load generator aimed at another machine ` +
        `is a denial of service unless you own it; add --yes-non-loopback if you do`);
    }
    if (defaultBackend() !== 'native') {
      err.write('c1m bench: the native backend is unavailable here (Linux epoll addon); c1m bench needs it\n');
      return 1;
    }
    plan = planRun(o.connections, o.processes, o.sourceIps, nofileLimit().connections, loopback && isIP(host) === 4);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err.write(`c1m bench: ${e.message}\n${BENCH_USAGE}\n`);
    return 2;
  }
  warnPortRange(o, plan, err);
  return new BenchRun(o, host, plan, out, err).run();
}

/** Warn when one source address would need more ports than the ephemeral range has. */
function warnPortRange(o: BenchOptions, plan: BenchPlan, err: NodeJS.WritableStream): void {
  let range: number;
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    range = hi! - lo! + 1;
  } catch {
    return;
  }
  const per = Math.ceil(o.connections / Math.max(1, plan.sources.length));
  if (per > range) {
    err.write(`c1m bench: warning: ${fmtInt(per)} connections per source address but only ${fmtInt(range)} ephemeral ports ` +
      `(net.ipv4.ip_local_port_range): expect EADDRNOTAVAIL; use --source-ips ${Math.ceil(o.connections / range)} or more\n`);
  }
}

class BenchRun {
  readonly #o: BenchOptions;
  readonly #host: string;
  readonly #plan: BenchPlan;
  readonly #out: NodeJS.WritableStream;
  readonly #err: NodeJS.WritableStream & { isTTY?: boolean };
  #workers: WorkerHandle[] = [];
  #server: SpawnedServer | undefined;
  #aborted: BenchResult['aborted'] = false;
  /** Wakes every bounded wait early (signal, worker death). */
  #wake: (() => void) | undefined;
  #phase = 'start';
  #t0 = 0;
  #measureAt = 0;
  /** Latency of the messages reported since the last progress line. */
  #interval = latencyHistogram();
  #lastProgress = { t: 0, connected: 0, msgs: 0 };
  #progressTimer: NodeJS.Timeout | undefined;
  #barShown = false;

  constructor(o: BenchOptions, host: string, plan: BenchPlan, out: NodeJS.WritableStream, err: NodeJS.WritableStream & { isTTY?: boolean }) {
    this.#o = o;
    this.#host = host;
    this.#plan = plan;
    this.#out = out;
    this.#err = err;
  }

  async run(): Promise<number> {
    const o = this.#o;
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        this.#err.write(`\nc1m bench: ${sig}: stopping (again to kill at once)\n`);
        this.#aborted = 'signal';
        this.#wake?.();
        return;
      }
      this.#killAll();
      process.exit(130);
    };
    const onExit = (): void => this.#killAll();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('exit', onExit);
    let before: ServerSample | null = null, after: ServerSample | null = null;
    let connectS = 0, timeoutHit = false;
    try {
      if (o.spawn !== undefined) {
        try {
          this.#server = await spawnServer(o.spawn, this.#err);
        } catch (e) {
          this.#err.write(`c1m bench: ${(e as Error).message}\n`);
          return 1;
        }
      }
      const roots = this.#server ? [this.#server.pid] : o.pids;
      if (roots.length > 0) before = sampleServer(roots);
      this.#log(`c1m bench ${o.scenario}: ${fmtInt(o.connections)} connections to ${this.#host}:${o.port} over ` +
        `${this.#plan.perProcess.length} process(es) and ${this.#plan.sources.length || 'kernel-chosen'} source address(es)` +
        (o.scenario === 'echo' ? `, ${o.size} B messages, ${o.rate > 0 ? `${o.rate} msgs/s per connection` : `depth ${o.depth}`}` : ''));
      if (!(await this.#startWorkers())) return 1;

      // Connect phase.
      this.#phase = 'connect';
      this.#t0 = performance.now();
      this.#broadcast({ type: 'go' });
      this.#progressTimer = setInterval(() => this.#progress(), 1000);
      const settled = await this.#waitFor(() => this.#workers.every((w) => w.settledAt !== undefined), o.connectTimeoutS * 1000);
      timeoutHit = !settled && this.#aborted === false;
      connectS = (settled ? Math.max(...this.#workers.map((w) => w.settledAt!)) : performance.now() - this.#t0) / 1000;
      this.#broadcast({ type: 'end-connect' });
      this.#log(`connect phase done in ${connectS.toFixed(3)}s: ${fmtInt(sum(this.#workers, (c) => c.connected))} connected, ` +
        `${fmtInt(sum(this.#workers, (c) => c.failed))} failed${timeoutHit ? `, ${fmtInt(sum(this.#workers, (c) => c.pending))} still pending (connect timeout hit)` : ''}`);

      // Warmup, then the measured run.
      if (o.scenario === 'echo' && this.#aborted === false) {
        this.#phase = 'warmup';
        this.#broadcast({ type: 'traffic' });
        await this.#waitFor(() => false, o.warmupS * 1000);
      }
      if (this.#aborted === false) {
        this.#phase = 'run';
        this.#measureAt = performance.now();
        this.#broadcast({ type: 'measure' });
        await this.#waitFor(() => false, o.durationS * 1000);
      }
      if (roots.length > 0) after = sampleServer(roots);

      // Stop: results first, then every worker closes its connections and exits.
      this.#phase = 'stop';
      this.#broadcast({ type: 'stop' });
      const gotAll = await this.#waitFor(() => this.#workers.every((w) => w.result !== undefined || w.exited), RESULT_TIMEOUT_MS, true);
      if (!gotAll && this.#aborted === false) this.#aborted = 'no_results';
      await this.#waitFor(() => this.#workers.every((w) => w.exited), EXIT_TIMEOUT_MS, true);
    } finally {
      clearInterval(this.#progressTimer);
      this.#endBar();
      for (const w of this.#workers) if (!w.exited) w.child.kill('SIGKILL');
      await this.#waitFor(() => this.#workers.every((w) => w.exited), EXIT_TIMEOUT_MS, true);
      await this.#server?.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('exit', onExit);
    }
    for (const w of this.#workers) if (w.fatal) this.#err.write(`c1m bench: worker ${w.config.worker}: ${w.fatal}\n`);
    const r = this.#result(connectS, timeoutHit, before, after);
    this.#report(r);
    if (this.#aborted === 'signal') return 130;
    if (this.#aborted !== false || r.connected === 0 || (r.verify_errors ?? 0) > 0) return 1;
    return 0;
  }

  /** Fork every worker and wait for `ready`. False (after reporting) when one cannot start. */
  async #startWorkers(): Promise<boolean> {
    const o = this.#o;
    const script = fileURLToPath(new URL('./bench-worker.js', import.meta.url));
    let first = 0;
    this.#workers = this.#plan.perProcess.map((count, worker) => {
      const config: WorkerConfig = {
        scenario: o.scenario, worker, host: this.#host, port: o.port, first, count,
        sources: this.#plan.sources, concurrency: o.concurrency, retries: o.retries,
        size: o.size, depth: o.depth, rate: o.rate, verify: o.verify,
      };
      first += count;
      // Worker output goes to our stderr: stdout carries only the result.
      const execArgv = process.execArgv.filter((arg) => !arg.startsWith('--inspect'));
      const child = fork(script, [], { stdio: ['ignore', 2, 2, 'ipc'], execArgv });
      const w: WorkerHandle = { child, config, ready: false, counters: { ...ZERO }, settledAt: undefined, result: undefined, exited: false, fatal: undefined };
      child.on('message', (m: WorkerMessage) => this.#onMessage(w, m));
      child.on('exit', (code, sig) => {
        w.exited = true;
        if (w.result === undefined && this.#phase !== 'stop' && this.#aborted === false) {
          w.fatal ??= `exited early (${sig ?? `code ${code}`})`;
          this.#aborted = 'worker_died';
        }
        this.#wake?.();
      });
      child.on('error', (e) => {
        w.fatal ??= e.message;
        if (child.pid === undefined) w.exited = true; // never started: no 'exit' will come
        this.#wake?.();
      });
      child.send({ type: 'config', config } satisfies ParentMessage);
      return w;
    });
    const ok = await this.#waitFor(() => this.#workers.every((w) => w.ready) || this.#workers.some((w) => w.fatal !== undefined), READY_TIMEOUT_MS);
    if (ok && this.#workers.every((w) => w.ready)) return true;
    for (const w of this.#workers) {
      if (w.fatal) this.#err.write(`c1m bench: worker ${w.config.worker}: ${w.fatal}\n`);
      else if (!w.ready) this.#err.write(`c1m bench: worker ${w.config.worker}: not ready within ${READY_TIMEOUT_MS / 1000}s\n`);
    }
    this.#phase = 'stop';
    return false;
  }

  #onMessage(w: WorkerHandle, m: WorkerMessage): void {
    switch (m.type) {
      case 'ready':
        w.ready = true;
        break;
      case 'progress':
        w.counters = m.counters;
        if (m.hist) mergeHistograms([m.hist], this.#interval);
        break;
      case 'connected':
        w.counters = m.counters;
        w.settledAt = performance.now() - this.#t0;
        break;
      case 'result':
        w.result = m.result;
        break;
      case 'fatal':
        w.fatal = m.message;
        this.#aborted = 'worker_died';
        break;
    }
    this.#wake?.();
  }

  #broadcast(m: ParentMessage): void {
    for (const w of this.#workers) if (!w.exited && w.child.connected) w.child.send(m);
  }

  /**
   * Wait until `pred` holds (true), `ms` pass, or the run is aborted (false). With `evenIfAborted`
   * an abort does not cut the wait short (used for the final exits).
   */
  async #waitFor(pred: () => boolean, ms: number, evenIfAborted = false): Promise<boolean> {
    const end = performance.now() + ms;
    while (!pred()) {
      if (!evenIfAborted && this.#aborted !== false) return false;
      const left = end - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    return true;
  }

  #progress(): void {
    const now = performance.now();
    const connected = sum(this.#workers, (c) => c.connected), msgs = sum(this.#workers, (c) => c.msgsTotal);
    const dt = (now - (this.#lastProgress.t || this.#t0)) / 1000;
    const p99 = this.#interval.totalCount > 0 ? formatMicros(this.#interval.getValueAtPercentile(99) / 1000) : '-';
    this.#interval.reset();
    let line = `elapsed=${((now - this.#t0) / 1000).toFixed(0)}s connected=${connected} failed=${sum(this.#workers, (c) => c.failed)}` +
      ` pending=${sum(this.#workers, (c) => c.pending)} open=${sum(this.#workers, (c) => c.open)}` +
      ` conn/s=${Math.round((connected - this.#lastProgress.connected) / dt)}`;
    if (this.#o.scenario === 'echo') line += ` msgs/s=${Math.round((msgs - this.#lastProgress.msgs) / dt)} p99=${p99}`;
    line += ` phase=${this.#phase}`;
    this.#lastProgress = { t: now, connected, msgs };
    if (this.#err.isTTY) {
      const frac = this.#phase === 'connect' ? connected / this.#o.connections
        : this.#phase === 'run' ? Math.min(1, (now - this.#measureAt) / 1000 / this.#o.durationS) : 0;
      const width = 20, fill = Math.round(frac * width);
      this.#err.write(`\r\x1b[K[${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${line}`);
      this.#barShown = true;
    } else {
      this.#err.write(`${line}\n`);
    }
  }

  #endBar(): void {
    if (this.#barShown) this.#err.write('\n');
    this.#barShown = false;
  }

  #log(line: string): void {
    this.#endBar();
    this.#err.write(`[c1m bench] ${line}\n`);
  }

  #killAll(): void {
    for (const w of this.#workers) {
      if (!w.exited) w.child.kill('SIGKILL');
    }
    this.#server?.kill();
  }

  #result(connectS: number, timeoutHit: boolean, before: ServerSample | null, after: ServerSample | null): BenchResult {
    const o = this.#o;
    const rs = this.#workers.map((w) => w.result).filter((r): r is WorkerResult => r !== undefined);
    const total = (pick: (r: WorkerResult) => number): number => rs.reduce((n, r) => n + pick(r), 0);
    const errors: Record<string, number> = {}, closeErrors: Record<string, number> = {};
    for (const r of rs) {
      addCounts(errors, r.errors);
      addCounts(closeErrors, r.closeErrors);
    }
    // Throughput: the sum of each worker's rate over its own measured window.
    const msgsPerS = rs.reduce((n, r) => n + (r.windowS > 0 ? r.msgs / r.windowS : 0), 0);
    const windows = rs.map((r) => r.windowS).filter((s) => s > 0);
    const durationS = windows.length > 0 ? windows.reduce((a, b) => a + b, 0) / windows.length : 0;
    const hist = mergeHistograms(rs.map((r) => r.hist));
    const connected = total((r) => r.connected);
    const open = total((r) => r.open);
    const echo = o.scenario === 'echo';
    let server: ServerResult | null = null;
    if (before && after) {
      server = {
        pids: after.pids,
        rss_kb: after.rssKb,
        rss_before_kb: before.rssKb,
        bytes_per_conn: open > 0 ? Math.round(((after.rssKb - before.rssKb) * 1024) / open) : null,
        cpu_s: Math.round((after.cpuS - before.cpuS) * 100) / 100,
      };
    }
    const round3 = (n: number): number => Math.round(n * 1000) / 1000;
    return {
      tool: 'c1m bench',
      scenario: o.scenario,
      host: this.#host,
      port: o.port,
      target: o.connections,
      processes: this.#workers.length,
      source_ips: this.#plan.sources.length,
      connect_concurrency: o.concurrency,
      started: total((r) => r.started),
      connected,
      failed: total((r) => r.failed),
      retries: total((r) => r.retries),
      errors,
      connect_s: round3(connectS),
      connect_rate: connectS > 0 ? Math.round(connected / connectS) : 0,
      connect_timeout_hit: timeoutHit,
      closed_early: Object.values(closeErrors).reduce((a, b) => a + b, 0),
      close_errors: closeErrors,
      open_at_end: open,
      warmup_s: o.warmupS,
      duration_s: round3(durationS),
      size: echo ? o.size : null,
      depth: echo && o.rate === 0 ? o.depth : null,
      rate: echo && o.rate > 0 ? o.rate : null,
      msgs: total((r) => r.msgs),
      msgs_per_s: Math.round(msgsPerS),
      payload_bytes_per_s: Math.round(msgsPerS * o.size * (echo ? 1 : 0)),
      latency: summarize(hist),
      send_lag: summarize(mergeHistograms(rs.map((r) => r.lagHist))),
      verify_errors: echo && o.verify ? total((r) => r.verifyErrors ?? 0) : null,
      unexpected_msgs: total((r) => r.unexpectedMsgs),
      send_skipped: total((r) => r.sendSkipped),
      client: {
        cpu_user_s: Math.round(total((r) => r.cpuUserS) * 100) / 100,
        cpu_sys_s: Math.round(total((r) => r.cpuSysS) * 100) / 100,
        rss_kb: total((r) => r.rssKb),
      },
      server,
      aborted: this.#aborted,
    };
  }

  #report(r: BenchResult): void {
    if (this.#o.json) {
      this.#out.write(`${JSON.stringify(r)}\n`);
      return;
    }
    const lines = [
      `${r.scenario}: ${fmtInt(r.connected)}/${fmtInt(r.target)} connected in ${r.connect_s.toFixed(3)}s (${fmtInt(r.connect_rate)} conn/s), ` +
        `${fmtInt(r.failed)} failed${Object.keys(r.errors).length ? ` ${JSON.stringify(r.errors)}` : ''}, ` +
        `${fmtInt(r.open_at_end)} open at the end over ${r.processes} process(es), ${r.source_ips} source address(es)`,
    ];
    if (r.closed_early > 0) lines.push(`closed before the end: ${fmtInt(r.closed_early)} ${JSON.stringify(r.close_errors)}`);
    if (r.scenario === 'echo') {
      const l = r.latency;
      lines.push(`echo ${r.size} B ${r.rate ? `at ${r.rate} msgs/s per connection` : `x depth ${r.depth}`}: ${fmtInt(r.msgs_per_s)} msgs/s over ${r.duration_s}s`);
      if (l) lines.push(`latency: p50 ${formatMicros(l.p50)}  p90 ${formatMicros(l.p90)}  p99 ${formatMicros(l.p99)}  p99.9 ${formatMicros(l.p999)}  max ${formatMicros(l.max)}  mean ${formatMicros(l.mean)}`);
      const g = r.send_lag;
      if (g) lines.push(`send lag behind schedule: p50 ${formatMicros(g.p50)}  p99 ${formatMicros(g.p99)}  max ${formatMicros(g.max)}`);
      if (r.verify_errors !== null) lines.push(`verify errors: ${r.verify_errors}`);
    }
    if (r.server) {
      lines.push(`server: rss ${fmtInt(r.server.rss_kb)} kB (before ${fmtInt(r.server.rss_before_kb)} kB` +
        `${r.server.bytes_per_conn !== null ? `, ${fmtInt(r.server.bytes_per_conn)} B per connection` : ''}), cpu ${r.server.cpu_s}s`);
    }
    if (r.aborted) lines.push(`aborted: ${r.aborted}`);
    this.#out.write(`${lines.join('\n')}\n`);
  }
}
