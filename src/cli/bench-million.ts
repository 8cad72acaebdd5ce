/**
 * `c1m bench million`: the one-box million, as a ramp. One `c1m serve echo --processes S`
 * (prefork, SO_REUSEPORT) and C client worker processes on the same box over loopback; the
 * clients grow the connection count step by step (100k, 250k, 500k, 1M by default) and, at
 * each step, hold, sample memory, and time one echo round trip on every connection. With
 * `--ws` the server is `c1m serve gateway` (NATS fan-out) and the clients are its WebSocket
 * subscribers; `--broadcast` replaces the echo round with one timed publish
 * (`bench-million-ws.ts`).
 *
 * Model: the client workers are `bench-worker.ts` running the `ping` scenario; each step
 * sends `go` with every worker's new share, waits until every connection settled, holds,
 * samples /proc (MemAvailable, Slab, SUnreclaim, TCP counts as `ss -s` shows them, server
 * RSS per process), sends `traffic` (one round trip per connection), waits for every reply,
 * and collects a `snapshot` (latency histogram of the step). Connections stay open from
 * step to step.
 *
 * Layout: S = ceil(max step / per-process cap) server processes and C = ceil(max step /
 * per-process limit) clients, where the limit is RLIMIT_NOFILE minus 500 (`nofileLimit`) and
 * the server cap keeps ~2.5 % headroom (at most 19,000 at a 20,000 limit) because
 * SO_REUSEPORT spreads connections by hash, not evenly. Source addresses: one per 10,000
 * connections (one port range per source address and server port).
 *
 * Invariants: the ramp stops early and cleanly when MemAvailable falls below the floor, when
 * a step's connect failures pass the threshold, on a signal, or when a process dies; every
 * process started here (workers; the server's process group) is gone when `millionMain`
 * resolves, and the result says so (`cleanup`). Every wait is bounded.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { defaultBackend, nofileLimit } from '../index.js';
import { WorkerPool } from './bench-pool.js';
import { cpuPhase, cpuSample, machineInfo, meminfo, procAlive, processTree, sampleTree, socketCounts, spawnServer, type CpuPhase, type SocketCounts, type SpawnedServer, type TreeSample } from './bench-proc.js';
import { buildReport } from './bench-report.js';
import { addCounts, formatMicros, loadHistograms, mergeHistograms, summarize, type LatencySummary } from './bench-stats.js';
import type { WorkerResult } from './bench-ipc.js';
import type { MillionResult, MillionStep, MillionStop, MillionSummary, PublishVia, Warmup } from './bench-results.js';
import { MILLION_USAGE, parseMillionArgs, type MillionOptions } from './bench-million-options.js';
import { makeBenchCert, type BenchCert } from './bench-million-tls.js';
import { broadcastLine, broadcastOnce, publishTo, stampedBody, startNats, subscribePath, upgradedOf } from './bench-million-ws.js';
import { warmClients, warmPlan, type ClientWarmup } from './bench-million-warm.js';
import { commandLine, fmtInt, int, seconds, sourceAddresses, UsageError, workerConfigs } from './bench-layout.js';
import { CONNECTIONS_PER_SOURCE_ADDRESS, diagnose, keepAliveBacklogWarning } from './doctor.js';

export { MILLION_USAGE, type MillionOptions } from './bench-million-options.js';

/**
 * Sum up the steps of a run. With `ws` (gateway subscribers) `server_bytes_per_conn` is the
 * figure sampled without a forced GC, the GC'd one beside it; the broadcast figures are the last step's.
 */
export function summarizeSteps(steps: readonly MillionStep[], ws = false): MillionSummary {
  const first = steps[0], last = steps[steps.length - 1];
  if (first === undefined || last === undefined) {
    const none = { connected: null, connect_s: null, server_bytes_per_conn: null, server_bytes_per_conn_after_first_step: null, kernel_bytes_per_conn: null };
    return ws ? { ...none, subscribed: null, delivered: null, broadcast_last_ms: null, server_bytes_per_conn_after_gc: null } : none;
  }
  const added = last.connected - first.connected;
  const wsFields = ws ? {
    connected: last.upgraded ?? null,
    subscribed: last.subscribed ?? null,
    delivered: last.broadcast?.delivered ?? null,
    broadcast_last_ms: last.broadcast?.last_ms ?? null,
    server_bytes_per_conn: last.server_bytes_per_conn_no_gc ?? null,
    server_bytes_per_conn_after_gc: last.server_bytes_per_conn,
  } : {};
  return {
    connected: last.connected,
    connect_s: Math.round(steps.reduce((t, s) => t + s.connect_s, 0) * 1000) / 1000,
    server_bytes_per_conn: last.server_bytes_per_conn,
    server_bytes_per_conn_after_first_step: added > 0 ? Math.round(((last.server_anon_growth_kb - first.server_anon_growth_kb) * 1024) / added) : null,
    kernel_bytes_per_conn: last.kernel_bytes_per_conn,
    ...wsFields,
  };
}

/** Checks of c1m doctor that are per process: multiple processes are the answer to them. */
const PER_PROCESS_CHECKS = new Set(['RLIMIT_NOFILE', 'fs.nr_open']);
/** At most this many connections per server process (SO_REUSEPORT hashes; keep headroom). */
const SERVER_CAP = 19_000;
const SERVER_HEADROOM = 0.975;
/** Node flags of the server's processes (see `run`). */
const SERVER_NODE_OPTIONS = '--expose-gc --max-semi-space-size=1';
/** Node flags of the client processes, before `--node-flags` (V8 takes a flag's last value): a
 * young generation held at 1 MiB semi-spaces. Grown to 16 MiB each under the connect ramp, it
 * faults in ~30 MB of fresh pages per client, which the kernel zeroes; at 1M over 52 clients
 * the ramp took 3-5 % longer (BENCHMARKS.md, 2026-12-05 eighth sitting). `--expose-gc`: a
 * worker collects once each connect phase is over (bench-worker.ts), so the marking and
 * sweeping the ramp's garbage calls for happen in the hold, not in the measured broadcast or
 * echo round (they were ~3 % of the box in a million's broadcast; fifteenth sitting). */
const CLIENT_NODE_FLAGS = ['--max-semi-space-size=1', '--expose-gc'];
/** How long the server's processes get for their full GC before RSS is sampled. */
const GC_SETTLE_MS = 1000;
const BASELINE_GC_ROUNDS = 6;
/** Then samples this far apart until three agree within 0.5 %, for at most SETTLE_MAX_MS. */
const SETTLE_EVERY_MS = 500;
const SETTLE_MAX_MS = 10_000;
/** Warm-up connections per server process (SO_REUSEPORT spreads them by hash). */
const WARMUP_PER_SERVER_PROCESS = 300;

/** SIGKILL a process group, if any. */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** `n` split over `k` parts as evenly as possible (the first parts one larger). */
export function split(n: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

/** The layout of a ramp to `max` connections: server and client processes, source addresses. */
export function planMillion(max: number, o: Pick<MillionOptions, 'serverProcesses' | 'clientProcesses' | 'connsPerProcess' | 'sourceIps'>, perProcessLimit: number): { serverProcesses: number; serverCap: number; clients: number[]; sources: string[] } {
  if (!(perProcessLimit >= 1)) throw new UsageError('the open-file limit leaves no room for connections (run c1m doctor)');
  const serverCap = o.connsPerProcess ?? Math.max(1, Math.min(SERVER_CAP, Math.floor(perProcessLimit * SERVER_HEADROOM)));
  const clientCap = o.connsPerProcess ?? perProcessLimit;
  const s = o.serverProcesses === 'auto' ? Math.ceil(max / serverCap) : o.serverProcesses;
  const c = o.clientProcesses === 'auto' ? Math.ceil(max / clientCap) : o.clientProcesses;
  if (c > max) throw new UsageError(`--client-processes ${c} is more than the ${fmtInt(max)} connections`);
  for (const [side, n] of [['server', s], ['client', c]] as const) {
    if (Math.ceil(max / n) > perProcessLimit) {
      throw new UsageError(`${fmtInt(max)} connections over ${n} ${side} process(es) is ${fmtInt(Math.ceil(max / n))} per process; ` +
        `the open-file limit allows ${fmtInt(perProcessLimit)} (raise it: c1m doctor -n ${max})`);
    }
    if (n > 1024) throw new UsageError(`${fmtInt(max)} connections need ${n} ${side} processes; at most 1024 (raise the open-file limit: c1m doctor)`);
  }
  const k = o.sourceIps === 'auto' ? Math.ceil(max / CONNECTIONS_PER_SOURCE_ADDRESS) : o.sourceIps;
  return { serverProcesses: s, serverCap, clients: split(max, c), sources: sourceAddresses(k) };
}

const quote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);
const gib = (kb: number | null): string => (kb === null ? '?' : `${(kb / 1024 / 1024).toFixed(1)} GiB`);
const mib = (kb: number): string => `${(kb / 1024).toFixed(1)} MiB`;

/** Run `c1m bench million`; resolves with the exit code once every process it started is gone. */
export async function millionMain(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  let o: MillionOptions | 'help';
  let layout: ReturnType<typeof planMillion>;
  try {
    o = parseMillionArgs(argv);
    if (o === 'help') {
      out.write(`${MILLION_USAGE}\n`);
      return 0;
    }
    layout = planMillion(o.steps.at(-1)!, o, nofileLimit().connections);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err.write(`c1m bench million: ${e.message}\n${MILLION_USAGE}\n`);
    return 2;
  }
  if (defaultBackend() !== 'native') {
    err.write('c1m bench million: the native backend is unavailable here (Linux epoll addon); it needs it\n');
    return 1;
  }
  try {
    await loadHistograms();
  } catch (e) {
    err.write(`c1m bench million: ${(e as Error).message}\n`);
    return 1;
  }
  return new MillionRun(o, layout, argv, out, err).run();
}

class MillionRun {
  readonly #o: MillionOptions;
  readonly #layout: ReturnType<typeof planMillion>;
  readonly #argv: string[];
  readonly #out: NodeJS.WritableStream;
  readonly #err: NodeJS.WritableStream;
  readonly #pool: WorkerPool;
  /** The client processes' Node flags: ours, then `--node-flags`. */
  readonly #clientFlags: string[];
  #server: SpawnedServer | undefined;
  /** `--ws` without `--nats`: the private nats-server (its own process group). */
  #nats: SpawnedServer | undefined;
  #natsUrl = '';
  /** `--tls`: the run's throwaway certificate. */
  #cert: BenchCert | undefined;
  /** Every server pid seen (the group leader and its prefork workers). */
  readonly #serverPids = new Set<number>();
  /** The warm-up client while it runs (killed with everything else). */
  #warmupPid: number | undefined;
  /** Open connections and server RssAnon growth (kB) at the previous step. */
  #prev = { open: 0, growth: 0 };
  #stopped: MillionStop = false;
  #stopDetail: string | null = null;

  constructor(o: MillionOptions, layout: ReturnType<typeof planMillion>, argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream) {
    this.#o = o;
    this.#layout = layout;
    this.#argv = argv;
    this.#out = out;
    this.#err = err;
    this.#clientFlags = [...CLIENT_NODE_FLAGS, ...o.nodeFlags];
    this.#pool = new WorkerPool(err, this.#clientFlags);
  }

  #log(line: string): void {
    this.#err.write(`[c1m bench million] ${line}\n`);
  }

  #stop(why: MillionStop, detail: string): void {
    if (this.#stopped !== false) return;
    this.#stopped = why;
    this.#stopDetail = detail;
    this.#log(`stopping: ${detail}`);
    // Too many failures still finishes the step (hold, sample, echo); the others cut it short.
    if (why === 'low_memory' || why === 'signal' || why === 'worker_died') this.#pool.abort(why);
    else if (why === 'server_died') this.#pool.abort('worker_died');
  }

  /** Doctor first: what blocks the largest step, and which steps this box cannot hold. */
  #doctor(): { report: MillionResult['doctor']; skipped: number[] } {
    const max = this.#o.steps.at(-1)!;
    const d = diagnose({ connections: max });
    const boxWide = d.checks.filter((c) => c.kind === 'limit' && !PER_PROCESS_CHECKS.has(c.name));
    const blocking = boxWide.filter((c) => !c.ok);
    const allows = boxWide.reduce<number | null>((m, c) => (c.binds === null ? m : m === null ? c.binds : Math.min(m, c.binds)), null);
    const nofile = d.checks.find((c) => c.name === 'RLIMIT_NOFILE');
    this.#log(`c1m doctor -n ${max}: ${blocking.length === 0 ? 'no box-wide limit blocks it' : `blocked by ${blocking.map((c) => `${c.name} (allows ${c.binds === null ? '?' : fmtInt(c.binds)})`).join(', ')}`}; ` +
      `RLIMIT_NOFILE ${nofile?.current ?? '?'} per process, hence ${this.#layout.serverProcesses} server + ${this.#layout.clients.length} client processes`);
    for (const c of blocking) if (c.fix) this.#log(`  fix (as root): ${c.fix}`);
    const warning = this.#o.tcpKeepAlive === undefined ? undefined : keepAliveBacklogWarning(d);
    if (warning !== undefined) this.#log(warning);
    const skipped = this.#o.force || allows === null ? [] : this.#o.steps.filter((s) => s > allows);
    if (skipped.length > 0) this.#log(`skipping steps ${skipped.map(fmtInt).join(', ')}: beyond what c1m doctor says this box holds (run the fixes, or --force)`);
    return {
      report: { max_connections: allows, blocking: blocking.map((c) => ({ name: c.name, current: c.current, required: c.required, allows: c.binds, fix: c.fix })) },
      skipped,
    };
  }

  async run(): Promise<number> {
    const o = this.#o, pool = this.#pool, layout = this.#layout;
    const socketsBefore = socketCounts();
    const doctor = this.#doctor();
    const steps = o.steps.filter((s) => !doctor.skipped.includes(s));
    const runJs = fileURLToPath(new URL('./run.js', import.meta.url));
    // The server's processes run with a fixed 1 MiB young-generation semi-space and --expose-gc:
    // V8 grows the semi-spaces (up to 16 MiB each) under an allocation burst such as a connect
    // ramp and keeps them after a GC, which is per process, not per connection, and would
    // swamp the per-connection figure. Each sample runs a full GC in every server process first.
    const nodeOptions = [process.env.NODE_OPTIONS, SERVER_NODE_OPTIONS].filter(Boolean).join(' ');
    this.#natsUrl = o.nats ?? '';
    const cert = o.tls ? makeBenchCert() : undefined;
    this.#cert = cert;
    const tlsFlags = cert ? ` --tls-cert ${quote(cert.certFile)} --tls-key ${quote(cert.keyFile)}` : '';
    const ping = o.pingInterval === undefined ? '' : ` --ping-interval ${o.pingInterval}`;
    const flags = o.nodeFlags.length === 0 ? '' : ` --node-flags=${quote(o.nodeFlags.join(' '))}`;
    const defer = o.deferAccept === undefined ? '' : ` --defer-accept ${o.deferAccept}`;
    const serverPoll = o.serverPollMs === undefined ? '' : ` --poll-interval ${o.serverPollMs}`;
    const keepAlive = o.tcpKeepAlive === undefined ? '' : ` --tcp-keepalive ${o.tcpKeepAlive}`;
    const sched = o.batchScheduling ? ' --batch-scheduling' : '';
    const app = (): string => `${o.ws ? `gateway --no-auth --nats ${this.#natsUrl}${ping}` : 'echo'}${defer}${keepAlive}${tlsFlags}`;
    const serverCmd = (): string => `env NODE_OPTIONS=${quote(nodeOptions)} ${quote(process.execPath)} ${quote(runJs)} serve ${app()} --port ${o.port} --host 127.0.0.1 --processes ${layout.serverProcesses}${serverPoll}${sched}${flags}`;
    const results: MillionStep[] = [];
    let warmup: Warmup | null = null;
    let clientWarmup: ClientWarmup | null = null;
    let baseline: MillionResult['baseline'] = { mem_available_kb: null, slab_kb: null, sunreclaim_kb: null, server_rss_kb: 0, server_anon_kb: 0, sockets: null, warmup };
    let baseRss = new Map<number, number>();
    let baseAnon = new Map<number, number>();

    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        this.#log(`${sig}: stopping (again to kill at once)`);
        this.#stop('signal', `stopped by ${sig}`);
        return;
      }
      this.#killAll();
      process.exit(130);
    };
    const onExit = (): void => this.#killAll();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('exit', onExit);
    try {
      if (steps.length === 0) {
        this.#stop('blocked', 'no step is within what c1m doctor says this box holds (run its fixes, or --force)');
      } else if (o.ws && o.nats === undefined) {
        try {
          const n = await startNats(this.#err);
          this.#nats = n.server;
          this.#natsUrl = n.url;
          this.#log(`nats-server: ${this.#natsUrl} (pid ${n.server.pid}), stopped at the end`);
        } catch (e) {
          this.#stop('server_died', (e as Error).message);
        }
      }
      if (steps.length > 0 && this.#stopped === false) {
        this.#log(`server: ${serverCmd()}`);
        try {
          this.#server = await spawnServer(serverCmd(), this.#err, 'server');
        } catch (e) {
          this.#stop('server_died', (e as Error).message);
        }
      }
      if (this.#server && this.#stopped === false) {
        warmup = await this.#warmup(runJs, o.warmup === 'auto' ? WARMUP_PER_SERVER_PROCESS * layout.serverProcesses : o.warmup);
        // Several GCs first: V8 ages and drops startup bytecode over a few GCs, a one-time
        // shrink that would otherwise be taken from the connections' figure.
        const s0 = await this.#sampleServer(BASELINE_GC_ROUNDS);
        for (const pid of s0.pids) this.#serverPids.add(pid);
        baseRss = s0.rssByPid;
        baseAnon = s0.anonByPid;
        const configs = workerConfigs({ scenario: o.ws ? 'ws-subscribe' : 'ping', port: o.port, concurrency: o.concurrency, retries: 3, size: o.size, depth: 1, rate: 0, verify: false, path: o.ws ? subscribePath(o.topic) : '/', deflate: false,
          tls: cert ? { resume: false, ca: cert.certPem, servername: undefined, insecure: false } : null, batchScheduling: o.batchScheduling, pollMs: o.clientPollMs, connectPollMs: o.clientConnectPollMs, progressLatency: false },
          '127.0.0.1', { perProcess: layout.clients, sources: layout.sources });
        if (!(await pool.start(configs))) {
          this.#stop('worker_died', 'a client worker did not start');
        } else {
          const mi = meminfo();
          baseline = { mem_available_kb: mi.MemAvailable ?? null, slab_kb: mi.Slab ?? null, sunreclaim_kb: mi.SUnreclaim ?? null, server_rss_kb: s0.rssKb, server_anon_kb: s0.anonKb, sockets: socketCounts(), warmup };
          this.#log(`${layout.serverProcesses} server process(es) (${mib(s0.rssKb)} RSS), ${layout.clients.length} client process(es) (${o.clientPollMs ? `polling every ${o.clientPollMs} ms once connected` : 'waking per event'}), ${layout.sources.length} source address(es); ` +
            `MemAvailable ${gib(baseline.mem_available_kb)}, Slab ${mib(baseline.slab_kb ?? 0)}`);
          pool.send({ type: 'measure' });
          clientWarmup = await this.#warmClients(steps[0]!);
          for (let i = 0; i < steps.length && this.#stopped === false; i++) {
            const step = await this.#step(i, steps, baseline, baseRss, baseAnon);
            if (step) {
              results.push(step);
              this.#log(stepLine(step));
            }
          }
        }
      }
    } finally {
      this.#log('cleaning up: closing every connection, stopping every process');
      await pool.shutdown();
      pool.killAll();
      if (this.#server) for (const pid of processTree([this.#server.pid])) this.#serverPids.add(pid);
      await this.#server?.stop();
      if (this.#nats) this.#serverPids.add(this.#nats.pid);
      await this.#nats?.stop();
      cert?.remove();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('exit', onExit);
    }
    const cleanup = await this.#cleanup(socketsBefore);
    const result: MillionResult = {
      tool: 'c1m bench',
      kind: 'million',
      mode: o.ws ? 'ws' : 'tcp',
      tls: o.tls,
      nats: o.ws ? { url: this.#natsUrl, started_here: this.#nats !== undefined, pid: this.#nats?.pid ?? null } : null,
      command: commandLine(['million', ...this.#argv]),
      date: new Date().toISOString(),
      machine: machineInfo(nofileLimit().soft),
      port: o.port,
      steps_asked: o.steps,
      steps_skipped: doctor.skipped,
      doctor: doctor.report,
      server: { command: serverCmd(), processes: layout.serverProcesses, per_process_cap: layout.serverCap },
      client: { processes: layout.clients.length, source_ips: layout.sources.length, per_process: layout.clients, node_flags: this.#clientFlags, batch_scheduling: o.batchScheduling, poll_ms: o.clientPollMs, connect_poll_ms: o.clientConnectPollMs, warmup: clientWarmup },
      baseline,
      steps: results,
      summary: summarizeSteps(results, o.ws),
      stopped: this.#stopped,
      stop_detail: this.#stopDetail,
      cleanup,
    };
    this.#out.write(o.json ? `${JSON.stringify(result)}\n` : `${humanMillion(result).join('\n')}\n`);
    if (o.report !== undefined) {
      try {
        writeFileSync(o.report, buildReport([result]));
        this.#log(`report written to ${o.report}`);
      } catch (e) {
        this.#err.write(`c1m bench million: --report ${o.report}: ${(e as Error).message}\n`);
      }
    }
    if (this.#stopped === 'signal') return 130;
    const complete = results.length === steps.length && results.every((s) => s.connected === s.target &&
      (o.ws ? !o.broadcast || (s.broadcast?.error === null && s.broadcast.delivered === s.connected) : s.echo.answered === s.connected));
    return this.#stopped === false && complete && cleanup.ok && doctor.skipped.length === 0 ? 0 : 1;
  }

  /** `--client-warmup` (bench-million-warm.ts): null when off or nothing to warm (`--ws` without `--broadcast`). */
  async #warmClients(firstStep: number): Promise<ClientWarmup | null> {
    const o = this.#o, pool = this.#pool;
    const plan = o.ws && !o.broadcast ? null : warmPlan(o.clientWarmup, o.ws, split(firstStep, pool.workers.length));
    if (plan === null || this.#stopped !== false) return null;
    this.#log(`client warm-up: ${plan.conns} connection(s) per client process, ${plan.rounds} ${o.ws ? 'publishes' : 'echo rounds'}`);
    const w = await warmClients(pool, plan, !o.ws, o.ws
      ? () => publishTo(this.#publishRoute(), stampedBody())
      : async () => pool.send({ type: 'traffic' }), () => this.#watch());
    this.#log(`client warm-up: ${fmtInt(w.deliveries)} of ${fmtInt(w.expected)} deliveries in ${w.s.toFixed(1)}s${w.error ? ` (${w.error}; the steps run anyway)` : ''}`);
    return w;
  }

  /** Grow to `steps[i]`, hold, sample, echo once on every connection. Null when it could not run at all. */
  async #step(i: number, steps: number[], baseline: MillionResult['baseline'], baseRss: Map<number, number>, baseAnon: Map<number, number>): Promise<MillionStep | null> {
    const o = this.#o, pool = this.#pool, target = steps[i]!;
    const mi0 = meminfo();
    if (mi0.MemAvailable !== undefined && mi0.MemAvailable < o.minAvailableKb) {
      this.#stop('low_memory', `MemAvailable ${gib(mi0.MemAvailable)} is below --min-available-gib before step ${fmtInt(target)}`);
      return null;
    }
    const failedBefore = pool.sum((c) => c.failed), openBefore = pool.sum((c) => c.open);
    const sockBefore = socketCounts();
    const errorsBefore = this.#errors();
    const shares = split(target, pool.workers.length);
    this.#log(`step ${i + 1}/${steps.length}: growing to ${fmtInt(target)} connections`);
    // CPU of the connect phase, box-wide and by side: CPU-bound or waiting, and whose CPU.
    const serverPids = (): number[] => (this.#server ? processTree([this.#server.pid]) : []);
    const cpu0 = cpuSample(serverPids(), pool.pids());
    const t0 = performance.now();
    pool.workers.forEach((w, k) => pool.sendTo(w, { type: 'go', upTo: shares[k]! }));
    let lastLog = t0;
    const settled = await pool.waitFor(() => pool.workers.every((w) => w.settledAt !== undefined), o.connectTimeoutS * 1000, false, () => {
      this.#watch();
      const now = performance.now();
      if (now - lastLog >= 1000) {
        lastLog = now;
        const c = pool.sum((x) => x.connected);
        this.#err.write(`elapsed=${((now - t0) / 1000).toFixed(0)}s connected=${c} failed=${pool.sum((x) => x.failed)} pending=${pool.sum((x) => x.pending)} ` +
          `open=${pool.sum((x) => x.open)} MemAvailable=${gib(meminfo().MemAvailable ?? null)} step=${i + 1}/${steps.length}\n`);
      }
    });
    const timeoutHit = !settled && pool.aborted === false;
    const connectS = ((settled ? Math.max(...pool.workers.map((w) => w.settledAt!)) : performance.now()) - t0) / 1000;
    const connectCpu = cpuPhase(cpu0, cpuSample(serverPids(), pool.pids()), Math.max(0, pool.sum((c) => c.open) - openBefore));
    pool.send({ type: 'end-connect' });
    // Counters of the step's end: a snapshot from every worker (also counts the abandoned connects).
    const upgraded = upgradedOf(await this.#snapshot());
    const open = pool.sum((c) => c.open);
    const failed = pool.sum((c) => c.failed) - failedBefore;
    const errors = diffCounts(this.#errors(), errorsBefore);
    const added = Math.max(0, open - openBefore);
    if (failed > o.maxFailureRate * Math.max(1, target - openBefore)) {
      this.#stop('too_many_failures', `${fmtInt(failed)} of ${fmtInt(target - openBefore)} new connections failed at step ${fmtInt(target)} ${JSON.stringify(errors)}`);
    }
    // Hold, then sample memory with every connection idle.
    let hold: MillionStep['hold'];
    if (this.#stopped === false || this.#stopped === 'too_many_failures') {
      this.#log(`step ${i + 1}/${steps.length}: ${fmtInt(open)} open after ${connectS.toFixed(1)}s (${fmtInt(failed)} failed); ${cpuLine(connectCpu)}; holding ${o.holdS}s`);
      const h0 = cpuSample(serverPids(), pool.pids()), k0 = socketCounts()?.keepalive_probes ?? null, t0 = performance.now();
      await pool.waitFor(() => false, o.holdS * 1000, false, () => this.#watch());
      const k1 = socketCounts()?.keepalive_probes ?? null;
      hold = { window_s: Math.round(performance.now() - t0) / 1000, cpu: cpuPhase(h0, cpuSample(serverPids(), pool.pids()), 0), keepalive_probes: k0 === null || k1 === null ? null : k1 - k0 };
      this.#log(`step ${i + 1}/${steps.length}: held ${hold.window_s.toFixed(1)}s: ${cpuLine(hold.cpu, 'hold')}${hold.keepalive_probes ? `, ${fmtInt(hold.keepalive_probes)} TCP keep-alive probes` : ''}`);
    }
    const mi = meminfo();
    // Private memory as it is (the `--ws` summary's figure), then after a forced GC.
    const noGc = this.#server ? sampleTree([this.#server.pid]) : null;
    let noGcGrowth = 0;
    for (const [pid, kb] of noGc?.anonByPid ?? []) noGcGrowth += kb - (baseAnon.get(pid) ?? 0);
    const srv = this.#server ? await this.#sampleServer() : null;
    let growth = 0, anonGrowth = 0;
    for (const [pid, kb] of srv?.rssByPid ?? []) {
      this.#serverPids.add(pid);
      growth += kb - (baseRss.get(pid) ?? 0);
    }
    for (const [pid, kb] of srv?.anonByPid ?? []) anonGrowth += kb - (baseAnon.get(pid) ?? 0);
    // One echo round trip on every connection, then the step's latency histogram.
    let answered = 0, echoS = 0;
    let latency: LatencySummary | null = null;
    let broadcast: MillionStep['broadcast'] = null;
    if (o.ws && o.broadcast && (this.#stopped === false || this.#stopped === 'too_many_failures')) {
      this.#log(`step ${i + 1}/${steps.length}: publishing one message to ${fmtInt(open)} subscribers (${o.publish})`);
      broadcast = await broadcastOnce(pool, { ...this.#publishRoute(), snapshot: () => this.#snapshot(), watch: () => this.#watch(),
        serverRoots: this.#server ? [this.#server.pid] : [], natsPid: this.#nats?.pid }, open);
    } else if (!o.ws && (this.#stopped === false || this.#stopped === 'too_many_failures')) {
      const before = pool.sum((c) => c.msgsTotal);
      const t1 = performance.now();
      pool.send({ type: 'traffic' });
      await pool.waitFor(() => pool.sum((c) => c.msgsTotal) - before >= open, 60_000 + open / 10, false, () => this.#watch());
      echoS = (performance.now() - t1) / 1000;
      const snaps = await this.#snapshot();
      answered = pool.sum((c) => c.msgsTotal) - before;
      const hist = mergeHistograms(snaps.map((r) => r.hist));
      latency = summarize(hist);
      hist.destroy();
    }
    const closedEarly = pool.workers.reduce((n, w) => n + Object.values(w.snapshot?.closeErrors ?? {}).reduce((a, b) => a + b, 0), 0);
    const slabDelta = mi.Slab !== undefined && baseline.slab_kb !== null ? mi.Slab - baseline.slab_kb : null;
    const prev = this.#prev;
    const sockets = socketCounts();
    const since = (k: 'listen_overflows' | 'syn_retransmits'): number | null => {
      const a = sockBefore?.[k], b = sockets?.[k];
      return a === null || a === undefined || b === null || b === undefined ? null : b - a;
    };
    this.#prev = { open, growth: anonGrowth };
    return {
      target,
      connected: open,
      added,
      connect_s: Math.round(connectS * 1000) / 1000,
      connect_rate: connectS > 0 ? Math.round(added / connectS) : 0,
      connect_timeout_hit: timeoutHit,
      connect_cpu: connectCpu,
      ...(hold ? { hold } : {}),
      failed,
      errors,
      closed_early: closedEarly,
      mem_available_kb: mi.MemAvailable ?? null,
      slab_kb: mi.Slab ?? null,
      sunreclaim_kb: mi.SUnreclaim ?? null,
      kernel_bytes_per_conn: slabDelta !== null && open > 0 ? Math.round((slabDelta * 1024) / open) : null,
      sockets,
      listen_overflows: since('listen_overflows'),
      syn_retransmits: since('syn_retransmits'),
      server_rss_kb: srv?.rssKb ?? 0,
      server_rss_growth_kb: growth,
      server_anon_kb: srv?.anonKb ?? 0,
      server_anon_growth_kb: anonGrowth,
      server_bytes_per_conn: open > 0 ? Math.round((anonGrowth * 1024) / open) : null,
      server_bytes_per_added_conn: open > prev.open ? Math.round(((anonGrowth - prev.growth) * 1024) / (open - prev.open)) : null,
      server_processes: srv?.pids.length ?? 0,
      client_rss_kb: pool.workers.reduce((n, w) => n + (w.snapshot?.rssKb ?? 0), 0),
      echo: { sent: o.ws ? 0 : open, answered, time_s: Math.round(echoS * 1000) / 1000, latency },
      server_anon_growth_no_gc_kb: noGcGrowth,
      server_bytes_per_conn_no_gc: open > 0 ? Math.round((noGcGrowth * 1024) / open) : null,
      ...(o.ws ? { upgraded, subscribed: open, broadcast: o.broadcast ? broadcast : undefined } : {}),
    };
  }

  /**
   * Warm the server before its baseline: `n` connections echo once and close (one short
   * `c1m bench echo` run; with `--ws`, `c1m bench ws-hold` subscribed to the topic), so the baseline already holds what a process grows once, whatever
   * its connection count (JIT code, touched I/O areas), and the steps measure connections.
   */
  async #warmup(runJs: string, n: number): Promise<Warmup | null> {
    if (n === 0) return null;
    const o = this.#o;
    this.#log(`warm-up: ${fmtInt(n)} connections ${o.ws ? 'subscribe' : 'echo once'} and close`);
    const args = [runJs, 'bench', ...(o.ws ? ['ws-hold', '--path', subscribePath(o.topic)] : ['echo', '--warmup', '0', '--size', String(o.size)]),
      '--port', String(o.port), '-c', String(n), '--source-ips', 'auto', '-d', '1', '--json', ...(this.#cert ? ['--tls', '--tls-ca', this.#cert.certFile] : [])];
    // Its own process group, so that its client workers go with it when killed.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    this.#warmupPid = child.pid;
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const guard = setTimeout(() => killGroup(child.pid), 120_000);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    clearTimeout(guard);
    this.#warmupPid = undefined;
    try {
      const r = JSON.parse(out.trim().split('\n').at(-1) ?? '') as { connected: number; msgs: number };
      return { connections: n, connected: r.connected, echoed: r.msgs };
    } catch {
      this.#log(`warm-up: no result (exit ${code}); the baseline is taken without it`);
      return { connections: n, connected: 0, echoed: 0 };
    }
  }

  /** Server RSS after a full GC in each of its processes (SIGUSR1 under --expose-gc). */
  async #sampleServer(gcRounds = 1): Promise<TreeSample> {
    const root = this.#server!.pid;
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    for (let round = 0; round < gcRounds; round++) {
      for (const pid of processTree([root])) {
        try {
          process.kill(pid, 'SIGUSR1');
        } catch {
          // gone: the sample shows it
        }
      }
      await sleep(GC_SETTLE_MS);
    }
    // Then until the private memory settles: V8 and malloc hand pages back lazily after a GC.
    const samples = [sampleTree([root])];
    for (let waited = 0; waited < SETTLE_MAX_MS; waited += SETTLE_EVERY_MS) {
      const last3 = samples.slice(-3).map((x) => x.anonKb);
      if (last3.length === 3 && Math.max(...last3) - Math.min(...last3) <= 0.005 * Math.max(...last3)) break;
      await sleep(SETTLE_EVERY_MS);
      samples.push(sampleTree([root]));
    }
    return samples[samples.length - 1]!;
  }

  /** Ask every worker for a snapshot and wait for them (bounded). */
  async #snapshot(): Promise<WorkerResult[]> {
    const pool = this.#pool;
    pool.send({ type: 'snapshot' });
    await pool.waitFor(() => pool.workers.every((w) => w.snapshot !== undefined || w.exited), 15_000, true);
    return pool.workers.map((w) => w.snapshot).filter((s) => s !== undefined);
  }

  #errors(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const w of this.#pool.workers) if (w.snapshot) addCounts(out, w.snapshot.errors);
    return out;
  }

  /** Checked while waiting: memory floor, the server still up. */
  /** How this run publishes on its topic (HTTP or NATS): the warm-up's and the broadcast's. */
  #publishRoute(): Parameters<typeof publishTo>[0] {
    const o = this.#o;
    return { via: o.publish, topic: o.topic, port: o.port, ca: this.#cert?.certPem, natsUrl: this.#natsUrl };
  }

  #watch(): void {
    const m = meminfo().MemAvailable;
    if (m !== undefined && m < this.#o.minAvailableKb) this.#stop('low_memory', `MemAvailable ${gib(m)} fell below --min-available-gib`);
    const s = this.#server?.child;
    if (s && (s.exitCode !== null || s.signalCode !== null)) this.#stop('server_died', `the server exited (${s.signalCode ?? `code ${s.exitCode}`})`);
  }

  #killAll(): void {
    this.#cert?.remove();
    killGroup(this.#warmupPid);
    this.#nats?.kill();
    this.#pool.killAll();
    this.#server?.kill();
  }

  /**
   * After teardown: every process gone (SIGKILL stragglers), socket counts back near the start
   * (bounded wait). A process killed while holding ~19,000 sockets takes a while to go on a
   * slow host (2026-12-06: still there when the sockets were already counted closed), so the
   * wait also covers the processes.
   */
  async #cleanup(before: SocketCounts | null): Promise<MillionResult['cleanup']> {
    const pids = [...this.#pool.pids(), ...this.#serverPids];
    let alive = pids.filter(procAlive);
    for (const pid of alive) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    const max = this.#o.steps.at(-1)!;
    const slack = Math.max(100, Math.ceil(max / 1000));
    let after = socketCounts();
    const deadline = performance.now() + 30_000;
    const settling = (): boolean => (before !== null && after !== null && after.tcp_estab > before.tcp_estab + slack) || pids.some(procAlive);
    while (settling() && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      after = socketCounts();
    }
    alive = pids.filter(procAlive);
    const delta = before && after ? after.tcp_estab - before.tcp_estab : null;
    const ok = alive.length === 0 && (delta === null || delta <= slack);
    this.#log(`cleanup: ${alive.length === 0 ? `all ${pids.length} processes gone` : `still alive: ${alive.join(', ')}`}; ` +
      `TCP established ${before?.tcp_estab ?? '?'} before, ${after?.tcp_estab ?? '?'} after; TIME-WAIT ${after?.tcp_timewait ?? '?'}`);
    return { sockets_before: before, sockets_after: after, estab_delta: delta, pids_started: pids.length, pids_alive_after: alive, ok };
  }
}

function diffCounts(now: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(now)) if (n - (before[k] ?? 0) > 0) out[k] = n - (before[k] ?? 0);
  return out;
}

/** A phase's CPU (connect or hold), for the step's progress lines. */
function cpuLine(c: CpuPhase, phase: 'connect' | 'hold' = 'connect'): string {
  return `${phase} CPU: box ${c.box_busy === null ? '?' : `${Math.round(c.box_busy * 100)}%`} busy, server ${c.server_user_s}+${c.server_sys_s}s, ` +
    `clients ${c.client_user_s}+${c.client_sys_s}s (user+sys)${phase === 'connect' ? `, ${c.us_per_conn ?? '?'} us per connection` : ''}`;
}

function stepLine(s: MillionStep): string {
  const l = s.echo.latency;
  return `${fmtInt(s.connected)}/${fmtInt(s.target)} connected (+${fmtInt(s.added)} in ${s.connect_s.toFixed(1)}s, ${fmtInt(s.connect_rate)} conn/s, ` +
    `${fmtInt(s.failed)} failed${Object.keys(s.errors).length ? ` ${JSON.stringify(s.errors)}` : ''})` +
    `${s.subscribed !== undefined ? ` | ${fmtInt(s.upgraded ?? 0)} upgraded, ${fmtInt(s.subscribed)} subscribed` : ''} | server private memory +${mib(s.server_anon_growth_kb)} ` +
    `(${s.server_bytes_per_conn ?? '?'} B/conn after GC, ${s.server_bytes_per_conn_no_gc ?? '?'} B/conn without, ${s.server_bytes_per_added_conn ?? '?'} B per added conn) | kernel slab ${s.kernel_bytes_per_conn ?? '?'} B/conn | ` +
    `${s.subscribed !== undefined ? broadcastLine(s.broadcast) : `echo ${fmtInt(s.echo.answered)}/${fmtInt(s.echo.sent)}${l ? ` p50 ${formatMicros(l.p50)} p99 ${formatMicros(l.p99)} max ${formatMicros(l.max)}` : ''}`}` +
    ` | MemAvailable ${gib(s.mem_available_kb)}` +
    `${s.listen_overflows || s.syn_retransmits ? ` | listen overflows ${fmtInt(s.listen_overflows ?? 0)}, SYN retransmits ${fmtInt(s.syn_retransmits ?? 0)}` : ''}`;
}

/** Human-readable lines for a million result. */
export function humanMillion(r: MillionResult): string[] {
  const what = r.mode === 'ws' ? `gateway WebSocket subscribers (NATS ${r.nats?.url ?? '?'}${r.nats?.started_here ? ', started here' : ''})` : 'TCP echo connections';
  const lines = [`c1m bench million: ${what}; ${r.server.processes} server + ${r.client.processes} client processes, ${r.client.source_ips} source addresses`];
  for (const s of r.steps) lines.push(`  ${stepLine(s)}`);
  if (r.steps_skipped.length) lines.push(`skipped (beyond c1m doctor's limits): ${r.steps_skipped.map(fmtInt).join(', ')}`);
  if (r.stopped) lines.push(`stopped early: ${r.stopped}: ${r.stop_detail}`);
  const m = r.summary;
  if (m.connected !== null) {
    lines.push(`summary: ${fmtInt(m.connected)} connections, connect phases ${m.connect_s}s in all; server private memory ${m.server_bytes_per_conn ?? '?'} B/conn over the baseline, ` +
      `${m.server_bytes_per_conn_after_first_step ?? '?'} B/conn after the first step; kernel slab ${m.kernel_bytes_per_conn ?? '?'} B/conn (both ends)`);
    if (r.mode === 'ws') {
      lines.push(`ws summary: ${fmtInt(m.subscribed ?? 0)} subscribed; server private memory ${m.server_bytes_per_conn ?? '?'} B/conn without a forced GC ` +
        `(${m.server_bytes_per_conn_after_gc ?? '?'} after one); broadcast ${m.delivered === null || m.delivered === undefined ? 'not run' : `${fmtInt(m.delivered)} delivered, the last ${m.broadcast_last_ms ?? '?'} ms after the publish`}`);
    }
  }
  const c = r.cleanup;
  lines.push(`cleanup: ${c.pids_alive_after.length === 0 ? 'every process gone' : `ALIVE: ${c.pids_alive_after.join(', ')}`}; ` +
    `TCP established ${c.sockets_before?.tcp_estab ?? '?'} -> ${c.sockets_after?.tcp_estab ?? '?'}, TIME-WAIT ${c.sockets_before?.tcp_timewait ?? '?'} -> ${c.sockets_after?.tcp_timewait ?? '?'}`);
  return lines;
}
