#!/usr/bin/env node
// The C floor of a one-box broadcast (issue 15): N loopback TCP connections held by `bcastref`
// (C, SO_REUSEPORT worker processes), one small message written once to every server-side
// connection, and the time until the last client-side connection (`bcastgen`) has read it.
// This is what c1m's WebSocket million broadcast (`c1m bench million --ws --broadcast`) is
// measured against: the same shape with no protocol, no JS and no broker.
//
//   make -C bench/bcastref && npm run build
//   node bench/bcast-floor.mjs [--conns 1000000] [--size 32] [--repeat 1] [--gap 3] [--hold 2]
//        [--timeout 60] [--connect-timeout 900] [--server-procs auto] [--client-procs auto]
//        [--source-ips auto] [--inflight 1000] [--poll-ms 0] [--port 0] [--out FILE]
//
// This script builds nothing: it runs bench/bcastref/{bcastref,bcastgen} (see its README).
//
// Model: layout as `c1m bench million` (planMillion from dist/cli/bench-million.js): server
// processes = ceil(N / 19,000) at a 20,000 open-file limit, client processes = ceil(N / (limit -
// 500)), one source address per 10,000 connections. bcastref starts in its own process group;
// bcastgen connects everything and prints "connected"; the script then polls bcastref's report
// (SIGUSR2) until its workers hold as many connections as bcastgen opened (the accept queues have
// drained), holds --hold seconds, and for each of --repeat broadcasts: reads the box's CPU
// (/proc/stat and every process), reads CLOCK_MONOTONIC (process.hrtime), sends SIGUSR1 to the
// server's process group, waits for bcastgen's line for that broadcast (every connection has its
// message, or --timeout), reads the CPU again, then waits --gap seconds.
//
// Figures per broadcast: last_from_signal_ms (signal sent -> last message read: the figure to hold
// against c1m's "last delivery"), bcastgen's last_ms (earliest worker stamp -> last read), p50 /
// p99 / max latency (each message against its worker's stamp), the server's send-loop time and
// CPU (getrusage around the loop in each worker; kernel_us_per_send = system time / writes), the
// clients' CPU, and the whole box's CPU over the window (softirq is accounted apart from the
// processes on this kernel: the receive side of a loopback write runs there) with the CPU other
// processes used meanwhile (`foreign`: a shared box). Tick accounting (no IRQ_TIME_ACCOUNTING
// here): a tick that lands in softirq counts as softirq in /proc/stat and as system time of the
// task it interrupted, so the loopback receive work done inline after a write is in the
// writer's system time; softirq deferred to ksoftirqd shows as that thread (foreign_top).
//
// --poll-ms P: once connected, each bcastgen process looks every P ms (epoll_wait with timeout 0,
// then a sleep when nothing was ready) instead of sleeping in epoll_wait, so a server's write
// finds no waiter to wake. It takes the readers' wake-ups off the write path: what a one-box
// broadcast costs when the subscribers' side is not on the box's CPUs.
//
// Invariants: every process started here is in one of two process groups (bcastref's, bcastgen's)
// and is gone when the script ends (checked: "cleanup"); bcastgen closes with RST so no TIME_WAIT
// is left; every wait is bounded. Output: progress on stderr, one JSON document on stdout.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { BENCH_DIR, REPO_DIR, cpuSnapshot, emit, foreignCpu, freePort, log, machineInfo, median, round, sleep, CLK_TCK } from './lib.mjs';

const PROG = 'bcast-floor';
const BIN_DIR = path.join(BENCH_DIR, 'bcastref');
const HOST = '127.0.0.1';

const { values: v } = parseArgs({
  options: {
    conns: { type: 'string', default: '1000000' },
    size: { type: 'string', default: '32' },
    repeat: { type: 'string', default: '1' },
    gap: { type: 'string', default: '3' },
    hold: { type: 'string', default: '2' },
    timeout: { type: 'string', default: '60' },
    'connect-timeout': { type: 'string', default: '900' },
    'server-procs': { type: 'string', default: 'auto' },
    'client-procs': { type: 'string', default: 'auto' },
    'source-ips': { type: 'string', default: 'auto' },
    inflight: { type: 'string', default: '1000' },
    'poll-ms': { type: 'string', default: '0' },
    port: { type: 'string', default: '0' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

function fail(msg, code = 2) {
  log(`${PROG}: ${msg}`);
  process.exit(code);
}
if (v.help) {
  log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}
/** `--name` as an integer in [min, max], or 'auto' when allowed. */
function intOpt(name, min, max, auto = false) {
  const s = v[name];
  if (auto && s === 'auto') return 'auto';
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) fail(`--${name} must be an integer from ${min} to ${max}${auto ? " or 'auto'" : ''}, got "${s}"`);
  return Number(s);
}
function secOpt(name, min, max) {
  const s = v[name];
  if (!/^\d+(\.\d+)?$/.test(s) || Number(s) < min || Number(s) > max) fail(`--${name} must be seconds from ${min} to ${max}, got "${s}"`);
  return Number(s);
}
const N = intOpt('conns', 1, 10_000_000);
const SIZE = intOpt('size', 16, 4096);
const REPEAT = intOpt('repeat', 1, 64);
const GAP = secOpt('gap', 0, 600);
const HOLD = secOpt('hold', 0, 600);
const TIMEOUT = intOpt('timeout', 1, 3600);
const CONNECT_TIMEOUT = intOpt('connect-timeout', 1, 86_400);
const INFLIGHT = intOpt('inflight', 1, 100_000);
const POLL_MS = intOpt('poll-ms', 0, 1000);

const BCASTREF = path.join(BIN_DIR, 'bcastref');
const BCASTGEN = path.join(BIN_DIR, 'bcastgen');
for (const bin of [BCASTREF, BCASTGEN]) {
  if (!fs.existsSync(bin)) fail(`${path.relative(process.cwd(), bin)} is missing: build it with \`make -C bench/bcastref\``, 1);
}

// The layout of `c1m bench million`: one implementation of the open-file arithmetic.
const { planMillion } = await import(pathToFileURL(path.join(REPO_DIR, 'dist', 'cli', 'bench-million.js')).href);
const { nofileLimit } = await import(pathToFileURL(path.join(REPO_DIR, 'dist', 'index.js')).href);
let layout;
try {
  layout = planMillion(N, { serverProcesses: intOpt('server-procs', 1, 1024, true), clientProcesses: intOpt('client-procs', 1, 1024, true), connsPerProcess: undefined, sourceIps: intOpt('source-ips', 1, 65_000, true) }, nofileLimit().connections);
} catch (e) {
  fail(e.message);
}
const SERVERS = layout.serverProcesses, CLIENTS = layout.clients.length, SOURCES = layout.sources.length;

// ---------------------------------------------------------------- processes

/** A C tool in its own process group: JSON lines of stdout are queued for `next(event)`. */
function startTool(label, argv) {
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const tool = { label, child, pid: child.pid, lines: [], waiters: [], exited: null, stderrTail: [] };
  tool.exit = new Promise((resolve) => child.once('exit', (code, signal) => { tool.exited = { code, signal }; resolve(tool.exited); wake(tool); }));
  child.once('error', (err) => { tool.exited = { code: null, signal: null, error: err.message }; wake(tool); });
  readline.createInterface({ input: child.stdout }).on('line', (l) => {
    try {
      tool.lines.push(JSON.parse(l));
    } catch {
      log(`[${label}] ${l}`);
      return;
    }
    wake(tool);
  });
  readline.createInterface({ input: child.stderr }).on('line', (l) => {
    tool.stderrTail.push(l);
    if (tool.stderrTail.length > 40) tool.stderrTail.shift();
    log(l.startsWith(`[${label}]`) ? l : `[${label}] ${l}`);
  });
  tools.push(tool);
  return tool;
}
const tools = [];
function wake(tool) {
  for (const w of tool.waiters.splice(0)) w();
}
/** The next JSON line of `tool` with `event` (earlier lines of other events are dropped), or null after `ms` or at exit. */
async function next(tool, event, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const i = tool.lines.findIndex((l) => l.event === event);
    if (i >= 0) return tool.lines.splice(0, i + 1).at(-1);
    if (tool.exited || Date.now() >= deadline) return null;
    await new Promise((resolve) => {
      tool.waiters.push(resolve);
      setTimeout(resolve, Math.min(1000, Math.max(1, deadline - Date.now()))).unref();
    });
  }
}
const groupAlive = (pgid) => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
};
function signalGroup(pgid, sig) {
  try {
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
}
/** SIGTERM each group, wait up to `ms`, SIGKILL what is left; true when nothing is left. */
async function stopAll(ms = 60_000) {
  for (const t of tools) if (!t.exited) signalGroup(t.pid, 'SIGTERM');
  const deadline = Date.now() + ms;
  while (tools.some((t) => groupAlive(t.pid)) && Date.now() < deadline) await sleep(100);
  for (const t of tools) if (groupAlive(t.pid)) signalGroup(t.pid, 'SIGKILL');
  await sleep(200);
  return !tools.some((t) => groupAlive(t.pid));
}
process.once('exit', () => {
  for (const t of tools) signalGroup(t.pid, 'SIGTERM');
});

/** Our processes (both groups) for the foreign-CPU reading. */
function ourPids() {
  const out = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const pgid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[2]);
      if (tools.some((t) => t.pid === pgid)) out.push(Number(e));
    } catch {
      // exited
    }
  }
  return out;
}
function boxCpu(a, b) {
  const f = (s) => s.split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [ua, na, sa, ia, wa, qa, sqa, sta] = f(a), [ub, nb, sb, ib, wb, qb, sqb, stb] = f(b);
  const s = (x) => round(x / CLK_TCK, 3);
  return { user_s: s(ub + nb - ua - na), system_s: s(sb - sa), softirq_s: s(sqb - sqa), irq_s: s(qb - qa), steal_s: s(stb - sta), idle_s: s(ib + wb - ia - wa) };
}
function oursCpuS(a, b, pids) {
  let ticks = 0;
  for (const pid of pids) {
    const pa = a.procs.get(pid), pb = b.procs.get(pid);
    if (pa && pb) ticks += pb.ticks - pa.ticks;
  }
  return ticks / CLK_TCK;
}

const uptime = () => spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------- the run

const started = new Date().toISOString();
const loadBefore = uptime();
if (os.loadavg()[0] > 3) log(`[${PROG}] the box is busy (${loadBefore}): figures will be noisy`);
const port = Number(v.port) || await freePort(HOST);
log(`[${PROG}] ${N.toLocaleString('en-US')} connections: ${SERVERS} bcastref workers, ${CLIENTS} bcastgen processes, ${SOURCES} source addresses, port ${port}, ${SIZE} B x ${REPEAT}`);

const doc = {
  benchmark: 'bcast-floor',
  command: `node bench/bcast-floor.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  date: started,
  machine: { ...machineInfo(), uptime_before: loadBefore, loadavg_before: os.loadavg().map((x) => round(x, 2)) },
  layout: { conns: N, size: SIZE, server_procs: SERVERS, client_procs: CLIENTS, source_ips: SOURCES, port, client_poll_ms: POLL_MS, epoll: 'listener level-triggered, connections edge-triggered (EPOLLIN only; no EPOLLOUT: one write per connection)' },
  connect: null,
  server_connections: null,
  broadcasts: [],
  summary: null,
  errors: [],
  cleanup: null,
};
let exitCode = 0;
try {
  const server = startTool('bcastref', [BCASTREF, '-p', String(port), '-w', String(SERVERS), '-s', String(SIZE), '-a', HOST]);
  const listening = await next(server, 'listening', 30_000);
  if (!listening) throw new Error(`bcastref did not listen: ${server.stderrTail.slice(-3).join(' | ')}`);
  const client = startTool('bcastgen', [BCASTGEN, '-n', String(N), '-p', String(port), '-f', String(CLIENTS), '-k', String(SOURCES),
    '-s', String(SIZE), '-T', String(TIMEOUT), '-r', String(REPEAT), '-c', String(INFLIGHT), '-C', String(CONNECT_TIMEOUT), '-a', HOST, '-P', String(POLL_MS)]);
  const connected = await next(client, 'connected', (CONNECT_TIMEOUT + 60) * 1000);
  if (!connected) throw new Error(`bcastgen did not finish connecting: ${client.stderrTail.slice(-3).join(' | ')}`);
  doc.connect = connected;
  log(`[${PROG}] connected ${connected.connected} in ${connected.connect_s} s (failed ${connected.failed})`);

  // The kernel completes connections before the server accepts them: wait for the accept queues.
  let held = 0, report = null;
  const acceptDeadline = Date.now() + 120_000;
  while (Date.now() < acceptDeadline) {
    process.kill(server.pid, 'SIGUSR2');
    report = await next(server, 'report', 10_000);
    held = report ? sum(report.workers.map((w) => w.connections)) : 0;
    if (held >= connected.connected - connected.closed) break;
    await sleep(500);
  }
  const perWorker = report ? report.workers.map((w) => w.connections) : [];
  doc.server_connections = { held, min_per_worker: Math.min(...perWorker), max_per_worker: Math.max(...perWorker), accept_errors: report ? sum(report.workers.map((w) => w.accept_errors)) : null };
  if (held < connected.connected - connected.closed) doc.errors.push(`the server holds ${held} of ${connected.connected} connections after 120 s`);
  log(`[${PROG}] bcastref holds ${held} (${doc.server_connections.min_per_worker}..${doc.server_connections.max_per_worker} per worker); holding ${HOLD} s`);
  await sleep(HOLD * 1000);

  const signals = [];
  for (let r = 1; r <= REPEAT; r++) {
    const stat0 = fs.readFileSync('/proc/stat', 'utf8');
    const snap0 = cpuSnapshot();
    const pids = ourPids();
    const tSignal = process.hrtime.bigint(); // CLOCK_MONOTONIC, the clock of the message stamps
    process.kill(-server.pid, 'SIGUSR1');
    const line = await next(client, 'round', (TIMEOUT + 60) * 1000);
    const snap1 = cpuSnapshot();
    const stat1 = fs.readFileSync('/proc/stat', 'utf8');
    signals.push(tSignal);
    if (!line) {
      doc.errors.push(`broadcast ${r}: no result from bcastgen`);
      break;
    }
    const ours = oursCpuS(snap0, snap1, pids);
    const foreign = foreignCpu(snap0, snap1, { ourPids: pids, oursCpuS: ours });
    const box = boxCpu(stat0, stat1);
    doc.broadcasts.push({
      seq: r,
      signal_ns: Number(tSignal),
      delivered: line.delivered,
      open: line.open,
      complete: line.complete,
      last_from_signal_ms: round(Number(BigInt(line.last_ns) - tSignal) / 1e6, 3),
      client: line,
      box_cpu: { window_ms: round(snap1.t_ms - snap0.t_ms, 1), ...box, ours_s: round(ours, 3), foreign_cores: foreign.util, foreign_top: foreign.top },
      server: null,
    });
    log(`[${PROG}] broadcast ${r}: ${line.delivered}/${line.open} delivered, last ${doc.broadcasts.at(-1).last_from_signal_ms} ms after the signal (p50 ${line.p50_ms} ms, p99 ${line.p99_ms} ms)`);
    if (r < REPEAT) await sleep(GAP * 1000);
  }

  // bcastgen exits after its last broadcast (RST on every socket); then the server's final report.
  const clientExit = await Promise.race([client.exit, sleep(120_000).then(() => null)]);
  if (!clientExit) doc.errors.push('bcastgen did not exit within 120 s of its last broadcast');
  else if (clientExit.code !== 0) doc.errors.push(`bcastgen exited with ${clientExit.code ?? clientExit.signal}`);
  signalGroup(server.pid, 'SIGTERM');
  const final = await next(server, 'exit', 60_000);
  if (!final) throw new Error('bcastref printed no final report');
  for (const b of doc.broadcasts) {
    const recs = final.workers.map((w) => w.broadcasts.find((x) => x.seq === b.seq)).filter(Boolean);
    const tSignal = BigInt(b.signal_ns);
    const sent = sum(recs.map((x) => x.sent));
    const sysUs = sum(recs.map((x) => x.cpu_after.sys_us - x.cpu_before.sys_us));
    const userUs = sum(recs.map((x) => x.cpu_after.user_us - x.cpu_before.user_us));
    const loops = recs.map((x) => x.loop_us / 1000);
    b.server = {
      workers_reporting: recs.length,
      connections: sum(recs.map((x) => x.connections)),
      sent,
      errors: sum(recs.map((x) => x.errors)),
      eagain: sum(recs.map((x) => x.eagain)),
      short: sum(recs.map((x) => x.short)),
      other_errors: sum(recs.map((x) => x.other_errors)),
      first_error: recs.find((x) => x.first_error)?.first_error ?? null,
      sys_s: round(sysUs / 1e6, 3),
      user_s: round(userUs / 1e6, 3),
      kernel_us_per_send: sent ? round(sysUs / sent, 3) : null,
      cpu_us_per_send: sent ? round((sysUs + userUs) / sent, 3) : null,
      loop_ms_max: round(Math.max(...loops), 1),
      loop_ms_sum: round(sum(loops), 1),
      signal_spread_ms: round(Number(BigInt(Math.max(...recs.map((x) => x.signal_ns))) - BigInt(Math.min(...recs.map((x) => x.signal_ns)))) / 1e6, 3),
      first_worker_signal_ms: round(Number(BigInt(Math.min(...recs.map((x) => x.signal_ns))) - tSignal) / 1e6, 3),
      last_send_done_ms: round(Number(BigInt(Math.max(...recs.map((x) => x.end_ns))) - tSignal) / 1e6, 3),
    };
    const busy = b.box_cpu.user_s + b.box_cpu.system_s + b.box_cpu.softirq_s + b.box_cpu.irq_s;
    b.box_cpu.busy_us_per_delivery = b.delivered ? round((busy * 1e6) / b.delivered, 3) : null;
  }
  const pick = (f) => round(median(doc.broadcasts.map(f)), 3);
  doc.summary = {
    conns: N,
    connected: connected.connected,
    delivered_all: doc.broadcasts.length === REPEAT && doc.broadcasts.every((b) => b.complete && b.server?.errors === 0),
    last_from_signal_ms: pick((b) => b.last_from_signal_ms),
    last_ms: pick((b) => b.client.last_ms),
    p50_ms: pick((b) => b.client.p50_ms),
    p99_ms: pick((b) => b.client.p99_ms),
    server_loop_ms_max: pick((b) => b.server?.loop_ms_max),
    kernel_us_per_send: pick((b) => b.server?.kernel_us_per_send),
    cpu_us_per_send: pick((b) => b.server?.cpu_us_per_send),
    client_cpu_s: pick((b) => b.client.client_cpu.user_s + b.client.client_cpu.sys_s),
    box_busy_us_per_delivery: pick((b) => b.box_cpu.busy_us_per_delivery),
    foreign_cores: pick((b) => b.box_cpu.foreign_cores),
    broadcasts: doc.broadcasts.length,
  };
} catch (e) {
  doc.errors.push(e.message);
  exitCode = 1;
}
doc.cleanup = await stopAll();
doc.machine.uptime_after = uptime();
if (!doc.cleanup) doc.errors.push('some bcastref/bcastgen processes survived SIGKILL');
if (doc.errors.length) exitCode = 1;
emit(doc, v.out);
process.exit(exitCode);
