/**
 * `c1m bench <scenario>`: the load generator, on the c1m engine in client mode.
 *
 * Model: this process only orchestrates. It splits N connections over worker processes (each
 * must stay under its open-file limit) and over loopback source addresses (each gives one port
 * range per server address:port), forks the workers (`bench-worker.ts`, through
 * `WorkerPool`), walks them through the phases (connect -> warmup -> measured run -> [drain]
 * -> stop), prints progress once a second on stderr, merges their counters and HDR
 * histograms, and prints the result (one JSON line last on stdout with `--json`). With
 * `--spawn`/`--pid` it samples the server's RSS and CPU time from /proc before the connect
 * phase and at the end of the run. What happens on each connection is the scenario's
 * business (`scenarios/`).
 *
 * Several targets (`--target name=CMD`) and sweeps (`--sweep connections=...`) make one run
 * per (point, target), each against a freshly spawned server, and one JSON document with a
 * row per run; `--report FILE` draws it as a self-contained HTML page (`bench-report.ts`).
 * `c1m bench report` builds that page from saved results; `c1m bench million` is the
 * one-box-million ramp (`bench-million.ts`).
 *
 * Invariants: every wait is bounded (ready, connect timeout, warmup, duration, drain, results,
 * exits); every child (workers, spawned server) is gone when `benchMain` resolves, also after
 * SIGINT. Percentiles come only from merged histograms.
 */
import { lookup } from 'node:dns/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { defaultBackend, nofileLimit } from '../index.js';
import { commandLine, fmtInt, isLoopback, planRun, UsageError, workerConfigs, type BenchPlan } from './bench-layout.js';
import { millionMain } from './bench-million.js';
import { udpBenchMain } from './bench-udp.js';
import { WorkerPool } from './bench-pool.js';
import { machineInfo, sampleTree, spawnServer, type TreeSample, type SpawnedServer } from './bench-proc.js';
import { buildReport, reportMain } from './bench-report.js';
import { addCounts, formatMicros, loadHistograms, mergeHistograms, summarize, type LatencySummary } from './bench-stats.js';
import type { WorkerResult } from './bench-ipc.js';
import { type BenchResult, type BenchRow, type BenchSweepResult, type BenchTarget, type ServerResult, type SweepKey } from './bench-results.js';
import { scenario as scenarioByName, type ScenarioFields, type ScenarioOption, type ScenarioSpec } from './scenarios/index.js';

import { BENCH_USAGE, parseBenchArgs, type BenchOptions } from './bench-options.js';

/** The layout helpers and the option parser, for callers that know `c1m bench` by this module. */
export { BENCH_USAGE, parseBenchArgs, type BenchOptions } from './bench-options.js';
export { isLoopback, planRun, sourceAddresses, type BenchPlan } from './bench-layout.js';

const DRAIN_TIMEOUT_MS = 5_000;

export async function benchMain(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr): Promise<number> {
  if (argv[0] === 'report') return reportMain(argv.slice(1), out, err);
  if (argv[0] === 'million') return millionMain(argv.slice(1), out, err);
  if (argv[0] === 'udp') return udpBenchMain(argv.slice(1), out, err);
  let o: BenchOptions | 'help';
  let plans: BenchPlan[];
  let host: string;
  let points: Partial<Record<SweepKey, number>>[];
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
    points = grid(o.sweeps);
    const limit = nofileLimit().connections;
    const opts = o;
    // Every layout is checked before anything starts.
    plans = points.map((p) => planRun(p.connections ?? opts.connections, opts.processes, opts.sourceIps, limit, loopback && isIP(host) === 4));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err.write(`c1m bench: ${e.message}\n${BENCH_USAGE}\n`);
    return 2;
  }
  try {
    await loadHistograms();
  } catch (e) {
    err.write(`c1m bench: ${(e as Error).message}\n`);
    return 1;
  }
  const single = o.targets.length === 0 && o.sweeps.length === 0;
  if (single) {
    warnPortRange(o, plans[0]!, err);
    const { code, result } = await new BenchRun(o, host, plans[0]!, err).run();
    if (result) {
      out.write(o.json ? `${JSON.stringify(result)}\n` : `${humanResult(result).join('\n')}\n`);
      if (o.report !== undefined) writeReport(o.report, [sweepDocument(o, argv, [{ ...result, target_name: targetsOf(o)[0]!.name }])], err);
    }
    return code;
  }
  return runSweep(o, argv, host, points, plans, out, err);
}

/** Every combination of the sweeps' values, the first sweep varying slowest; [{}] without sweeps. */
function grid(sweeps: BenchOptions['sweeps']): Partial<Record<SweepKey, number>>[] {
  let points: Partial<Record<SweepKey, number>>[] = [{}];
  for (const s of sweeps) points = points.flatMap((p) => s.values.map((v) => ({ ...p, [s.key]: v })));
  return points;
}

function targetsOf(o: BenchOptions): BenchTarget[] {
  if (o.targets.length > 0) return o.targets;
  return [{ name: o.spawn !== undefined || o.pids.length > 0 ? 'server' : `${o.host}:${o.port}`, cmd: o.spawn ?? null }];
}

function sweepDocument(o: BenchOptions, argv: string[], rows: BenchRow[]): BenchSweepResult {
  return {
    tool: 'c1m bench',
    kind: 'sweep',
    scenario: o.scenario,
    command: commandLine(argv),
    date: new Date().toISOString(),
    machine: machineInfo(nofileLimit().soft),
    targets: targetsOf(o),
    sweep: Object.fromEntries(o.sweeps.map((s) => [s.key, s.values])),
    rows,
  };
}

function writeReport(file: string, docs: unknown[], err: NodeJS.WritableStream): void {
  try {
    writeFileSync(file, buildReport(docs));
    err.write(`[c1m bench] report written to ${file}\n`);
  } catch (e) {
    err.write(`c1m bench: --report ${file}: ${(e as Error).message}\n`);
  }
}

/** One run per (point, target): targets alternate within each point. */
async function runSweep(o: BenchOptions, argv: string[], host: string, points: Partial<Record<SweepKey, number>>[], plans: BenchPlan[], out: NodeJS.WritableStream, err: NodeJS.WritableStream & { isTTY?: boolean }): Promise<number> {
  const rows: BenchRow[] = [];
  const targets = targetsOf(o);
  let code = 0;
  outer: for (let i = 0; i < points.length; i++) {
    for (const t of targets) {
      const point = points[i]!;
      const run: BenchOptions = { ...o, ...point, spawn: t.cmd ?? undefined };
      const label = Object.entries(point).map(([k, v]) => `${k}=${v}`).join(' ');
      err.write(`[c1m bench] === ${t.name}${label ? ` ${label}` : ''} ===\n`);
      warnPortRange(run, plans[i]!, err);
      const r = await new BenchRun(run, host, plans[i]!, err).run();
      if (r.result) {
        rows.push({ ...r.result, target_name: t.name });
        if (!o.json) out.write(`== ${t.name}${label ? ` ${label}` : ''}\n${humanResult(r.result).join('\n')}\n`);
      }
      if (r.code !== 0 && code === 0) code = r.code;
      if (r.code === 130) break outer;
    }
  }
  const doc = sweepDocument(o, argv, rows);
  if (o.json) out.write(`${JSON.stringify(doc)}\n`);
  if (o.report !== undefined) writeReport(o.report, [doc], err);
  return code;
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

/** Human-readable lines for one result. */
export function humanResult(r: BenchResult): string[] {
  const unit = scenarioByName(r.scenario)?.unit ?? 'msgs';
  const lines = [
    `${r.scenario}: ${fmtInt(r.connected)}/${fmtInt(r.target)} connected in ${r.connect_s.toFixed(3)}s (${fmtInt(r.connect_rate)} conn/s), ` +
      `${fmtInt(r.failed)} failed${Object.keys(r.errors).length ? ` ${JSON.stringify(r.errors)}` : ''}, ` +
      `${fmtInt(r.open_at_end)} open at the end over ${r.processes} process(es), ${r.source_ips} source address(es)`,
  ];
  for (const [code, why] of Object.entries(r.error_samples ?? {})) {
    const hint = code.startsWith('ERR_C1M_TLS') && /certificate/i.test(why) ? ' (--tls-ca FILE trusts the server\'s CA; --insecure skips the check)' : '';
    lines.push(`  ${code}: ${why}${hint}`);
  }
  if (r.closed_early > 0) lines.push(`closed before the end: ${fmtInt(r.closed_early)} ${JSON.stringify(r.close_errors)}`);
  const l = r.latency;
  const pct = (x: LatencySummary): string => `p50 ${formatMicros(x.p50)}  p90 ${formatMicros(x.p90)}  p99 ${formatMicros(x.p99)}  p99.9 ${formatMicros(x.p999)}  max ${formatMicros(x.max)}  mean ${formatMicros(x.mean)}`;
  if (r.scenario === 'echo' || r.scenario === 'ws-echo') {
    lines.push(`${r.scenario} ${r.size} B ${r.rate ? `at ${r.rate} msgs/s per connection` : `x depth ${r.depth}`}: ${fmtInt(r.msgs_per_s)} msgs/s over ${r.duration_s}s`);
  } else if (r.scenario === 'http' && r.http) {
    lines.push(`http GET x depth ${r.depth}: ${fmtInt(r.msgs_per_s)} requests/s over ${r.duration_s}s; status ${JSON.stringify(r.http.status)}, ` +
      `non-2xx ${fmtInt(r.http.non_2xx)}, parse errors ${fmtInt(r.http.parse_errors)}`);
  } else if (r.scenario === 'connect') {
    const failures = r.connect && Object.keys(r.connect.failures).length ? `; failed ${JSON.stringify(r.connect.failures)}` : '';
    const resumed = r.tls && r.connect ? ` (${fmtInt(r.connect.resumed)} resumed)` : '';
    lines.push(`connect${r.tls ? ' + TLS handshake' : ''}, open, close: ${fmtInt(r.msgs_per_s)} connects/s over ${r.duration_s}s${resumed}${failures}`);
  } else if (r.scenario === 'broadcast' && r.broadcast) {
    const b = r.broadcast;
    lines.push(`broadcast ${r.size} B at ${b.rate}/s to ${fmtInt(b.receivers)} receivers: ${fmtInt(b.published)} published in the window, ` +
      `${fmtInt(b.complete)} reached every receiver; ${fmtInt(b.deliveries_per_s)} deliveries/s`);
    if (b.last_receiver) lines.push(`last receiver: ${pct(b.last_receiver)}`);
  }
  if (r.ws) {
    const w = r.ws, tallies = (label: string, t: Record<string, number>): string => (Object.keys(t).length ? `, ${label} ${JSON.stringify(t)}` : '');
    lines.push(`websocket: ${fmtInt(w.upgraded)} upgraded${r.deflate ? ` (${fmtInt(w.deflated)} with permessage-deflate)` : ''}${tallies('handshake failures', w.handshake_failures)}` +
      `${tallies('protocol errors', w.protocol_errors)}${tallies('closed early by code', w.close_codes)}`);
  }
  if (r.tls) lines.push(`tls: ${fmtInt(r.tls.handshakes)} handshakes, ${fmtInt(r.tls.resumed)} resumed${r.tls.resume ? '' : ' (--tls-resume not given)'}${r.tls.insecure ? ', not verified (--insecure)' : ''}`);
  if (unit !== null && l) lines.push(`${r.scenario === 'broadcast' ? 'delivery ' : ''}latency: ${pct(l)}`);
  const g = r.send_lag;
  if (g) lines.push(`send lag behind schedule: p50 ${formatMicros(g.p50)}  p99 ${formatMicros(g.p99)}  max ${formatMicros(g.max)}`);
  if (r.verify_errors !== null) lines.push(`verify errors: ${r.verify_errors}`);
  if (r.server) {
    lines.push(`server: rss ${fmtInt(r.server.rss_kb)} kB (before ${fmtInt(r.server.rss_before_kb)} kB` +
      `${r.server.bytes_per_conn !== null ? `, ${fmtInt(r.server.bytes_per_conn)} B per connection` : ''}), cpu ${r.server.cpu_s}s`);
  }
  if (r.aborted) lines.push(`aborted: ${r.aborted}`);
  return lines;
}

/** One run against one server: phases, progress, and the merged result. */
class BenchRun {
  readonly #o: BenchOptions;
  readonly #spec: ScenarioSpec;
  readonly #host: string;
  readonly #plan: BenchPlan;
  readonly #err: NodeJS.WritableStream & { isTTY?: boolean };
  readonly #pool: WorkerPool;
  #server: SpawnedServer | undefined;
  #phase = 'start';
  #t0 = 0;
  #measureAt = 0;
  #lastProgress = { t: 0, connected: 0, msgs: 0 };
  #progressTimer: NodeJS.Timeout | undefined;
  #barShown = false;

  constructor(o: BenchOptions, host: string, plan: BenchPlan, err: NodeJS.WritableStream & { isTTY?: boolean }) {
    this.#o = o;
    this.#spec = scenarioByName(o.scenario)!;
    this.#host = host;
    this.#plan = plan;
    this.#err = err;
    this.#pool = new WorkerPool(err);
  }

  /** Run; resolves with the exit code and the result (null when the run could not start). */
  async run(): Promise<{ code: number; result: BenchResult | null }> {
    const o = this.#o, pool = this.#pool;
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        this.#err.write(`\nc1m bench: ${sig}: stopping (again to kill at once)\n`);
        pool.abort('signal');
        return;
      }
      this.#killAll();
      process.exit(130);
    };
    const onExit = (): void => this.#killAll();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('exit', onExit);
    let before: TreeSample | null = null, after: TreeSample | null = null;
    let connectS = 0, timeoutHit = false;
    try {
      if (o.spawn !== undefined) {
        try {
          this.#server = await spawnServer(o.spawn, this.#err);
        } catch (e) {
          this.#err.write(`c1m bench: ${(e as Error).message}\n`);
          return { code: 1, result: null };
        }
      }
      const roots = this.#server ? [this.#server.pid] : o.pids;
      if (roots.length > 0) before = sampleTree(roots);
      const traffic = this.#spec.unit !== null;
      this.#log(`c1m bench ${o.scenario}: ${fmtInt(o.connections)} connections to ${this.#host}:${o.port} over ` +
        `${this.#plan.perProcess.length} process(es) and ${this.#plan.sources.length || 'kernel-chosen'} source address(es)` + this.#describe() +
        (this.#o.tls ? `, over TLS (${this.#o.tls.resume ? 'sessions resumed' : 'full handshakes'}${this.#o.tls.insecure ? ', not verified' : ''})` : ''));
      if (!(await pool.start(workerConfigs(o, this.#host, this.#plan)))) return { code: 1, result: null };

      // Connect phase.
      this.#phase = 'connect';
      this.#t0 = performance.now();
      pool.send({ type: 'go' });
      this.#progressTimer = setInterval(() => this.#progress(), 1000);
      const settled = await pool.waitFor(() => pool.workers.every((w) => w.settledAt !== undefined), o.connectTimeoutS * 1000);
      timeoutHit = !settled && pool.aborted === false;
      connectS = ((settled ? Math.max(...pool.workers.map((w) => w.settledAt!)) : performance.now()) - this.#t0) / 1000;
      pool.send({ type: 'end-connect' });
      this.#log(`connect phase done in ${connectS.toFixed(3)}s: ${fmtInt(pool.sum((c) => c.connected))} connected, ` +
        `${fmtInt(pool.sum((c) => c.failed))} failed${timeoutHit ? `, ${fmtInt(pool.sum((c) => c.pending))} still pending (connect timeout hit)` : ''}`);

      // Warmup, then the measured run (nothing to measure when no connection opened).
      const none = pool.sum((c) => c.connected) === 0;
      if (none) this.#log('no connection opened: the run is skipped');
      if (traffic && pool.aborted === false && !none) {
        this.#phase = 'warmup';
        pool.send({ type: 'traffic' });
        await pool.waitFor(() => false, o.warmupS * 1000);
      }
      if (pool.aborted === false && !none) {
        this.#phase = 'run';
        this.#measureAt = performance.now();
        pool.send({ type: 'measure' });
        await pool.waitFor(() => false, o.durationS * 1000);
      }
      if (this.#spec.drain && pool.aborted === false) {
        this.#phase = 'drain';
        pool.send({ type: 'quiesce' });
        await this.#drain();
      }
      if (roots.length > 0) after = sampleTree(roots);

      // Stop: results first, then every worker closes its connections and exits.
      this.#phase = 'stop';
      await pool.shutdown();
    } finally {
      clearInterval(this.#progressTimer);
      this.#endBar();
      pool.killAll();
      await pool.waitFor(() => pool.workers.every((w) => w.exited), 10_000, true);
      await this.#server?.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('exit', onExit);
    }
    pool.reportFatal();
    const r = this.#result(connectS, timeoutHit, before, after);
    if (pool.aborted === 'signal') return { code: 130, result: r };
    if (pool.aborted !== false || r.connected === 0 || (r.verify_errors ?? 0) > 0) return { code: 1, result: r };
    return { code: 0, result: r };
  }

  #describe(): string {
    const o = this.#o;
    switch (o.scenario) {
      case 'echo': return `, ${o.size} B messages, ${o.rate > 0 ? `${o.rate} msgs/s per connection` : `depth ${o.depth}`}`;
      case 'http': return `, GET ${o.path} x depth ${o.depth}`;
      case 'broadcast': return `, ${o.size} B publishes at ${o.rate}/s`;
      case 'ws-hold': return `, upgrade GET ${o.path}`;
      case 'ws-echo': return `, upgrade GET ${o.path}${o.deflate ? ' (deflate offered)' : ''}, ${o.size} B binary messages, ${o.rate > 0 ? `${o.rate} msgs/s per connection` : `depth ${o.depth}`}`;
      default: return '';
    }
  }

  /** Wait (bounded) until the completed-message count stops moving: what was in flight has arrived. */
  async #drain(): Promise<void> {
    let last = -1, since = performance.now();
    await this.#pool.waitFor(() => {
      const now = performance.now(), n = this.#pool.sum((c) => c.msgsTotal);
      if (n !== last) {
        last = n;
        since = now;
      }
      return now - since >= 600;
    }, DRAIN_TIMEOUT_MS);
  }

  #progress(): void {
    const pool = this.#pool;
    const now = performance.now();
    const connected = pool.sum((c) => c.connected), msgs = pool.sum((c) => c.msgsTotal);
    const dt = (now - (this.#lastProgress.t || this.#t0)) / 1000;
    const p99 = pool.interval.totalCount > 0 ? formatMicros(pool.interval.getValueAtPercentile(99) / 1000) : '-';
    pool.interval.reset();
    let line = `elapsed=${((now - this.#t0) / 1000).toFixed(0)}s connected=${connected} failed=${pool.sum((c) => c.failed)}` +
      ` pending=${pool.sum((c) => c.pending)} open=${pool.sum((c) => c.open)}` +
      ` conn/s=${Math.round((connected - this.#lastProgress.connected) / dt)}`;
    if (this.#spec.unit !== null) line += ` ${this.#spec.unit}/s=${Math.round((msgs - this.#lastProgress.msgs) / dt)} p99=${p99}`;
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
    this.#pool.killAll();
    this.#server?.kill();
  }

  #result(connectS: number, timeoutHit: boolean, before: TreeSample | null, after: TreeSample | null): BenchResult {
    const o = this.#o, spec = this.#spec;
    const rs = this.#pool.workers.map((w) => w.result).filter((r): r is WorkerResult => r !== undefined);
    const total = (pick: (r: WorkerResult) => number): number => rs.reduce((n, r) => n + pick(r), 0);
    const errors: Record<string, number> = {}, closeErrors: Record<string, number> = {}, samples: Record<string, string> = {};
    for (const r of rs) {
      for (const [code, why] of Object.entries(r.errorSamples)) samples[code] ??= why;
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
    const takes = (opt: ScenarioOption): boolean => spec.options.includes(opt);
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
    const fields: ScenarioFields = {
      http: null,
      broadcast: null,
      ws: null,
      connect: null,
      ...spec.summarize?.({ extras: rs.map((r) => r.extra), openAtEnd: open, rate: o.rate }),
    };
    const round3 = (n: number): number => Math.round(n * 1000) / 1000;
    const closedLoop = takes('depth') && !(takes('rate') && o.rate > 0);
    return {
      tool: 'c1m bench',
      scenario: o.scenario,
      host: this.#host,
      port: o.port,
      target: o.connections,
      processes: this.#pool.workers.length,
      source_ips: this.#plan.sources.length,
      connect_concurrency: o.concurrency,
      started: total((r) => r.started),
      connected,
      failed: total((r) => r.failed),
      retries: total((r) => r.retries),
      errors,
      error_samples: samples,
      connect_s: round3(connectS),
      connect_rate: connectS > 0 ? Math.round(connected / connectS) : 0,
      connect_timeout_hit: timeoutHit,
      closed_early: Object.values(closeErrors).reduce((a, b) => a + b, 0),
      close_errors: closeErrors,
      open_at_end: open,
      warmup_s: o.warmupS,
      duration_s: round3(durationS),
      size: takes('size') ? o.size : null,
      depth: closedLoop ? o.depth : null,
      rate: takes('rate') && o.rate > 0 ? o.rate : null,
      msgs: total((r) => r.msgs),
      msgs_per_s: Math.round(msgsPerS),
      payload_bytes_per_s: takes('size') ? Math.round(msgsPerS * o.size) : 0,
      latency: summarize(hist),
      send_lag: summarize(mergeHistograms(rs.map((r) => r.lagHist))),
      deflate: takes('deflate') ? o.deflate : null,
      tls: o.tls ? { resume: o.tls.resume, insecure: o.tls.insecure, handshakes: total((r) => r.tlsHandshakes ?? 0), resumed: total((r) => r.tlsResumed ?? 0) } : null,
      verify_errors: takes('verify') && o.verify ? total((r) => r.verifyErrors ?? 0) : null,
      unexpected_msgs: total((r) => r.unexpectedMsgs),
      send_skipped: total((r) => r.sendSkipped),
      client: {
        cpu_user_s: Math.round(total((r) => r.cpuUserS) * 100) / 100,
        cpu_sys_s: Math.round(total((r) => r.cpuSysS) * 100) / 100,
        rss_kb: total((r) => r.rssKb),
      },
      server,
      ...fields,
      aborted: this.#pool.aborted,
    };
  }
}
