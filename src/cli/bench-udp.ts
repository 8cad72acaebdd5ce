/**
 * `c1m bench udp`: a UDP load generator on the engine's own UDP API (connected sockets, sends
 * leaving in sendmmsg batches), split over `--processes` worker processes
 * (`bench-udp-worker.ts`).
 *
 * Modes: `echo` is closed loop (each flow keeps `--depth` sequenced datagrams in flight; a
 * datagram unanswered within `--timeout` is lost and its slot sends the next one; round trips
 * go into HDR histograms merged here). `flood` is open loop (`--rate` datagrams/s in total, or
 * as fast as the sockets take them); what the server received comes from its Prometheus
 * metrics (`c1m serve ... --metrics-port M`, counter `c1m_udp_received_datagrams`, read before
 * and after the run) when `--metrics-port` is given, else it is reported unknown.
 *
 * Invariants: every wait is bounded (ready, run, results); every worker is gone when `udpBenchMain`
 * resolves, also after SIGINT. Percentiles come only from the merged histogram.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultBackend } from '../index.js';
import { fmtInt, int, isLoopback, seconds, UsageError } from './bench-layout.js';
import { addCounts, formatMicros, loadHistograms, mergeHistograms, summarize, type LatencySummary } from './bench-stats.js';
import type { UdpParentMessage, UdpWorkerConfig, UdpWorkerMessage, UdpWorkerResult } from './bench-udp-worker.js';

/** `c1m bench udp --help`. */
export const UDP_BENCH_USAGE = `usage: c1m bench udp --port P [options]
  closed-loop echo (sequenced datagrams, loss and round-trip latency) or open-loop flood
options:
  --host H                  server address, an IP (default 127.0.0.1; non-loopback needs --yes-non-loopback)
  --mode echo|flood         (default echo)
  -c, --sockets N           flows: one connected socket each, spread over the processes (default 1)
  --processes N             worker processes (default 1)
  --size B                  datagram size (default 64; echo: at least 8, it carries a sequence and a slot)
  --depth D                 echo: datagrams in flight per flow (default 1)
  --rate R                  flood: datagrams/s in total (default: as fast as the sockets take them)
  --timeout S               echo: a datagram unanswered this long is lost (default 1)
  --metrics-port M          flood: the c1m server's --metrics-port, to read what it received
  -d, --duration S          measured seconds (default 10)
  --warmup S                echo: seconds of traffic before measuring (default 1)
  --json                    print the result as one JSON line (the last line of stdout)
  --yes-non-loopback        allow a target outside 127.0.0.0/8 and ::1`;

/** Validated `c1m bench udp` command line. */
export interface UdpBenchOptions {
  host: string;
  port: number;
  mode: 'echo' | 'flood';
  sockets: number;
  processes: number;
  size: number;
  depth: number;
  /** Flood: datagrams/s in total; 0: as fast as possible. */
  rate: number;
  timeoutS: number;
  metricsPort: number | undefined;
  durationS: number;
  warmupS: number;
  json: boolean;
}

/** The JSON result of `c1m bench udp` (docs/bench.md describes every field). Latencies in µs. */
export interface UdpBenchResult {
  tool: 'c1m bench';
  scenario: 'udp';
  mode: 'echo' | 'flood';
  host: string;
  port: number;
  sockets: number;
  processes: number;
  size: number;
  depth: number | null;
  rate: number | null;
  warmup_s: number;
  duration_s: number;
  sent: number;
  received: number | null;
  lost: number | null;
  stale: number;
  drops: number;
  loss_ratio: number | null;
  sent_per_s: number;
  received_per_s: number | null;
  latency: LatencySummary | null;
  /** Where `received` comes from: the echoes (echo), the server's metrics (flood), or nowhere. */
  received_from: 'echoes' | 'server-metrics' | null;
  note: string | null;
  errors: Record<string, number>;
  client: { cpu_user_s: number; cpu_sys_s: number };
}

const MAX_DATAGRAM = 65_507;

/** Parse and validate `argv` (after `bench udp`). Throws `UsageError` with the exact message. */
export function parseUdpBenchArgs(argv: string[]): UdpBenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', short: 'p' },
        mode: { type: 'string', default: 'echo' },
        sockets: { type: 'string', short: 'c' },
        processes: { type: 'string' },
        size: { type: 'string' },
        depth: { type: 'string' },
        rate: { type: 'string' },
        timeout: { type: 'string' },
        'metrics-port': { type: 'string' },
        duration: { type: 'string', short: 'd' },
        warmup: { type: 'string' },
        json: { type: 'boolean', default: false },
        'yes-non-loopback': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const mode = v.mode;
  if (mode !== 'echo' && mode !== 'flood') throw new UsageError(`--mode must be echo or flood, got "${mode}"`);
  const port = int('port', v.port, 1, 65535);
  if (port === undefined) throw new UsageError('--port is required');
  const host = v.host!;
  if (isIP(host) === 0) throw new UsageError(`--host must be an IP address, got "${host}"`);
  if (!isLoopback(host) && !v['yes-non-loopback']) {
    throw new UsageError(`refusing to load ${host}, which is not a loopback address: add --yes-non-loopback if you own it`);
  }
  const only = (opt: 'depth' | 'timeout' | 'warmup' | 'rate' | 'metrics-port', m: 'echo' | 'flood'): void => {
    if (v[opt] !== undefined && mode !== m) throw new UsageError(`--${opt} applies to --mode ${m} only`);
  };
  only('depth', 'echo');
  only('timeout', 'echo');
  only('warmup', 'echo');
  only('rate', 'flood');
  only('metrics-port', 'flood');
  const size = int('size', v.size, mode === 'echo' ? 8 : 0, MAX_DATAGRAM) ?? 64;
  const sockets = int('sockets', v.sockets, 1, 10_000) ?? 1;
  const processes = int('processes', v.processes, 1, 64) ?? 1;
  if (processes > sockets) throw new UsageError(`--processes ${processes} needs at least as many sockets (-c), got ${sockets}`);
  let rate = 0;
  if (v.rate !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(v.rate) || Number(v.rate) <= 0 || Number(v.rate) > 100_000_000) {
      throw new UsageError(`--rate must be a number of datagrams/s above 0 and at most 100000000, got "${v.rate}"`);
    }
    rate = Number(v.rate);
  }
  return {
    host, port, mode, sockets, processes, size, rate,
    depth: int('depth', v.depth, 1, 4096) ?? 1,
    timeoutS: seconds('timeout', v.timeout, 0.01, 1),
    metricsPort: int('metrics-port', v['metrics-port'], 1, 65535),
    durationS: seconds('duration', v.duration, 0.1, 10),
    warmupS: mode === 'echo' ? seconds('warmup', v.warmup, 0, 1) : 0,
    json: v.json!,
  };
}

/**
 * The server's `c1m_udp_received_datagrams` from its metrics endpoint.
 * Errors: rejects when the endpoint does not answer or has no such counter (not a c1m UDP server).
 */
async function scrapeReceived(host: string, port: number): Promise<number> {
  const h = host.includes(':') ? `[${host}]` : host;
  const res = await fetch(`http://${h}:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`metrics on port ${port}: HTTP ${res.status}`);
  const m = /^c1m_udp_received_datagrams(?:\{[^}]*\})? (\d+(?:\.\d+)?(?:e\+?\d+)?)$/m.exec(await res.text());
  if (!m) throw new Error(`metrics on port ${port} have no c1m_udp_received_datagrams (not a c1m UDP server?)`);
  return Number(m[1]);
}

/**
 * The server's received count once it stops growing: datagrams still in its socket buffers are
 * read within a few polls (two equal readings 200 ms apart, 5 s at most).
 */
async function settledCount(host: string, port: number): Promise<number> {
  let last = await scrapeReceived(host, port);
  for (let i = 0; i < 25; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await scrapeReceived(host, port);
    if (now === last) break;
    last = now;
  }
  return last;
}

/** Split `n` into `k` near-equal parts. */
const split = (n: number, k: number): number[] => Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));

class Pool {
  readonly children: ChildProcess[] = [];
  readonly results = new Map<ChildProcess, UdpWorkerResult>();
  readonly ready = new Set<ChildProcess>();
  fatal: string | undefined;
  #wake: (() => void) | undefined;

  start(configs: UdpWorkerConfig[]): void {
    const script = fileURLToPath(new URL('./bench-udp-worker.js', import.meta.url));
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect'));
    for (const config of configs) {
      const child = fork(script, [], { stdio: ['ignore', 2, 2, 'ipc'], execArgv });
      this.children.push(child);
      child.on('message', (m: UdpWorkerMessage) => {
        if (m.type === 'ready') this.ready.add(child);
        else if (m.type === 'result') this.results.set(child, m.result);
        else this.fatal ??= m.message;
        this.#wake?.();
      });
      child.on('exit', (code, sig) => {
        if (!this.results.has(child)) this.fatal ??= `a worker exited early (${sig ?? `code ${code}`})`;
        this.#wake?.();
      });
      child.on('error', (e) => {
        this.fatal ??= e.message;
        this.#wake?.();
      });
      child.send({ type: 'config', config } satisfies UdpParentMessage);
    }
  }

  /** Resolve true once `done()`, false on a worker failure or after `ms`. */
  async wait(done: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!done()) {
      if (this.fatal !== undefined || Date.now() >= deadline) return false;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, Math.min(250, Math.max(1, deadline - Date.now())));
      });
      this.#wake = undefined;
    }
    return true;
  }

  go(): void {
    for (const c of this.children) c.send({ type: 'go' } satisfies UdpParentMessage);
  }

  /** SIGKILL every worker still running and wait (bounded) for their exits. */
  async stop(): Promise<void> {
    const alive = this.children.filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(alive.map((c) => new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        c.kill('SIGKILL');
        resolve();
      }, 3000);
      c.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      if (c.connected) c.disconnect();
    })));
  }
}

/** Run `c1m bench udp`; resolves with the exit code once every worker is gone. */
export async function udpBenchMain(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  let o: UdpBenchOptions | 'help';
  try {
    o = parseUdpBenchArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err.write(`c1m bench udp: ${e.message}\n${UDP_BENCH_USAGE}\n`);
    return 2;
  }
  if (o === 'help') {
    out.write(`${UDP_BENCH_USAGE}\n`);
    return 0;
  }
  if (defaultBackend() !== 'native') {
    err.write('c1m bench udp: the native backend is unavailable here (Linux epoll addon); c1m bench needs it\n');
    return 1;
  }
  await loadHistograms();
  const opts = o;
  const flows = split(o.sockets, o.processes);
  const configs: UdpWorkerConfig[] = flows.map((n) => ({
    mode: opts.mode, host: opts.host, port: opts.port, flows: n, size: opts.size, depth: opts.depth,
    rate: opts.rate * (n / opts.sockets), warmupS: opts.warmupS, durationS: opts.durationS, timeoutMs: opts.timeoutS * 1000,
  }));
  const pool = new Pool();
  const onSigint = (): void => {
    pool.fatal ??= 'interrupted';
  };
  process.once('SIGINT', onSigint);
  let note: string | null = null;
  let before: number | undefined;
  try {
    pool.start(configs);
    if (!(await pool.wait(() => pool.ready.size === configs.length, 30_000))) {
      err.write(`c1m bench udp: workers did not start: ${pool.fatal ?? 'timeout'}\n`);
      return 1;
    }
    if (o.mode === 'flood' && o.metricsPort !== undefined) {
      before = await scrapeReceived(o.host, o.metricsPort).catch((e: Error) => {
        note = `server received unknown: ${e.message}`;
        return undefined;
      });
    }
    err.write(`[c1m bench udp] ${o.mode} ${o.size} B over ${o.sockets} socket(s) in ${o.processes} process(es) for ${o.warmupS + o.durationS}s\n`);
    pool.go();
    const runMs = (o.warmupS + o.durationS) * 1000 + 15_000;
    if (!(await pool.wait(() => pool.results.size === configs.length, runMs))) {
      err.write(`c1m bench udp: the run failed: ${pool.fatal ?? 'no results in time'}\n`);
      return pool.fatal === 'interrupted' ? 130 : 1;
    }
    let serverReceived: number | null = null;
    if (before !== undefined) {
      serverReceived = await settledCount(o.host, o.metricsPort!).then((after) => after - before!, (e: Error) => {
        note = `server received unknown: ${e.message}`;
        return null;
      });
    } else if (o.mode === 'flood' && note === null) {
      note = 'server received unknown: give --metrics-port of a c1m server (c1m serve udp-echo --metrics-port M) to count it';
    }
    const result = buildResult(o, [...pool.results.values()], serverReceived, note);
    out.write(o.json ? `${JSON.stringify(result)}\n` : `${humanUdpResult(result).join('\n')}\n`);
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await pool.stop();
  }
}

function buildResult(o: UdpBenchOptions, rs: UdpWorkerResult[], serverReceived: number | null, note: string | null): UdpBenchResult {
  const sum = (k: 'sent' | 'received' | 'lost' | 'stale' | 'drops' | 'cpuUserS' | 'cpuSysS'): number => rs.reduce((n, r) => n + r[k], 0);
  const elapsed = Math.max(...rs.map((r) => r.elapsedS));
  const echo = o.mode === 'echo';
  const sent = sum('sent');
  const received = echo ? sum('received') : serverReceived;
  const lost = echo ? sum('lost') : received === null ? null : Math.max(0, sent - received);
  const h = mergeHistograms(rs.map((r) => r.histogram));
  const latency = summarize(h);
  h.destroy();
  const rate = (n: number): number => Math.round(n / elapsed);
  return {
    tool: 'c1m bench', scenario: 'udp', mode: o.mode, host: o.host, port: o.port, sockets: o.sockets, processes: o.processes,
    size: o.size, depth: echo ? o.depth : null, rate: echo ? null : o.rate || null, warmup_s: o.warmupS, duration_s: Math.round(elapsed * 1000) / 1000,
    sent, received, lost, stale: sum('stale'), drops: sum('drops'),
    loss_ratio: lost === null || sent === 0 ? null : Math.round((lost / sent) * 1e6) / 1e6,
    sent_per_s: rate(sent), received_per_s: received === null ? null : rate(received), latency,
    received_from: echo ? 'echoes' : received === null ? null : 'server-metrics', note,
    errors: rs.reduce((acc, r) => addCounts(acc, r.errors), {} as Record<string, number>),
    client: { cpu_user_s: Math.round(sum('cpuUserS') * 1000) / 1000, cpu_sys_s: Math.round(sum('cpuSysS') * 1000) / 1000 },
  };
}

/** Human-readable lines for one result. */
export function humanUdpResult(r: UdpBenchResult): string[] {
  const lines = [`udp ${r.mode} ${r.size} B over ${r.sockets} socket(s), ${r.processes} process(es)${r.depth ? `, depth ${r.depth}` : ''}${r.rate ? `, ${fmtInt(r.rate)}/s` : ''}: ` +
    `sent ${fmtInt(r.sent)} (${fmtInt(r.sent_per_s)}/s), received ${r.received === null ? 'unknown' : `${fmtInt(r.received)} (${fmtInt(r.received_per_s!)}/s)`}, ` +
    `lost ${r.lost === null ? 'unknown' : fmtInt(r.lost)}, stale ${fmtInt(r.stale)}, dropped by the send queue ${fmtInt(r.drops)} over ${r.duration_s}s`];
  const l = r.latency;
  if (l) lines.push(`round trip: p50 ${formatMicros(l.p50)}  p90 ${formatMicros(l.p90)}  p99 ${formatMicros(l.p99)}  p99.9 ${formatMicros(l.p999)}  max ${formatMicros(l.max)}  mean ${formatMicros(l.mean)}`);
  if (Object.keys(r.errors).length) lines.push(`errors: ${JSON.stringify(r.errors)}`);
  if (r.note) lines.push(r.note);
  return lines;
}
