#!/usr/bin/env node
// Two UDP figures beside the C reference `udpref`, driven by the C generator `udpgen`:
//
//  sink:   flood receive into a sink on one core. `c1m serve udp-sink` (one reactor) against
//          `udpref -m sink -b 64`, server pinned to CPU 0 (`taskset`), `udpgen -m flood` pinned to
//          CPU 1. Received = what the server counted over the whole run (c1m: the
//          `c1m_udp_received_datagrams` metric before/after; udpref: its `rx`); the kernel's drops at
//          the server's socket(s) from /proc/net/udp. received_pps = udpgen's send rate x the share
//          received, so both servers are read the same way.
//  echo2:  echo across both cores: `c1m serve udp-echo --processes 2` against `udpref -m echo -w 2
//          -b 64`, `udpgen -m echo -f 2` (64 flows x depth 16), nothing pinned (server and generator
//          share the two cores). Packets/s from udpgen; server CPU per echoed datagram from
//          /proc over the server's process tree.
//  gen:    the generators themselves: `c1m bench udp` (echo, 64 flows x depth 16, one process)
//          against `udpgen -m echo`, both pinned to CPU 1, into `udpref -m echo -b 64` on CPU 0.
//
//   node bench/udp-flood.mjs [--figures sink,echo2,gen] [--quick] [--reps 1] [--duration 5] [--warmup 1]
//                            [--size 64] [--flows 64] [--depth 16] [--out FILE]
//
// `--quick`: 2 s runs, one repetition. Targets alternate within a repetition (the order rotates
// every repetition); quote the ratios within one run, never a lone number. The load of the
// machine (`uptime`) is recorded before and after. Every process it starts is killed when it
// exits (also on SIGINT / SIGTERM). The reference tools come from /work/shared/bench
// (C1M_REF_SRC): `make -C /work/shared/bench`.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_DIR, emit, log, machineInfo, median, round, sleep, treeCpuSeconds } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    figures: { type: 'string', default: 'sink,echo2,gen' },
    quick: { type: 'boolean', default: false },
    reps: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string', default: '1' },
    size: { type: 'string', default: '64' },
    flows: { type: 'string', default: '64' },
    depth: { type: 'string', default: '16' },
    host: { type: 'string', default: '127.0.0.1' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  log('usage: node bench/udp-flood.mjs [--figures sink,echo2,gen] [--quick] [--reps N] [--duration S] [--warmup S]');
  log('                                [--size B] [--flows N] [--depth N] [--out FILE]');
  process.exit(0);
}
const int = (name, v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    log(`udp-flood.mjs: --${name} must be a non-negative integer, got "${v}"`);
    process.exit(2);
  }
  return n;
};
const reps = int('reps', opt.reps ?? '1');
const duration = int('duration', opt.duration ?? (opt.quick ? '2' : '5'));
const warmup = int('warmup', opt.warmup);
const size = int('size', opt.size), flows = int('flows', opt.flows), depth = int('depth', opt.depth);
const figures = opt.figures.split(',').filter(Boolean);
for (const f of figures) if (!['sink', 'echo2', 'gen'].includes(f)) (log(`udp-flood.mjs: unknown figure "${f}" (sink, echo2, gen)`), process.exit(2));

const REF = process.env.C1M_REF_SRC ?? '/work/shared/bench';
const UDPREF = path.join(REF, 'udpref');
const UDPGEN = path.join(REF, 'udpgen');
for (const tool of [UDPREF, UDPGEN]) {
  if (!fs.existsSync(tool)) (log(`udp-flood.mjs: ${tool} is missing: run "make -C ${REF}"`), process.exit(2));
}
const CLI = path.join(REPO_DIR, 'bin', 'c1m.js');
if (!fs.existsSync(path.join(REPO_DIR, 'dist', 'cli', 'main.js'))) (log('udp-flood.mjs: run "npm run build" first'), process.exit(2));

// ---------------------------------------------------------------- processes we start

const children = new Set();
function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
function killAll() {
  for (const c of children) {
    try {
      process.kill(-c.pid, 'SIGKILL'); // its own process group: prefork workers too
    } catch {
      c.kill('SIGKILL');
    }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => (log(`[udp-flood] ${sig}: stopping`), killAll(), process.exit(130)));

const uptime = () => os.loadavg().map((x) => round(x, 2));

/** A free port on host for UDP and TCP (the metrics port), bound then released. */
function freePort(proto) {
  const code = proto === 'udp'
    ? `const s=require('dgram').createSocket('udp4');s.bind(0,${JSON.stringify(opt.host)},()=>{console.log(s.address().port);s.close()})`
    : `const s=require('net').createServer();s.listen(0,${JSON.stringify(opt.host)},()=>{console.log(s.address().port);s.close()})`;
  return Number(spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' }).stdout.trim());
}

/** Sockets bound on `port` in /proc/net/udp: how many, and their kernel drop counters summed. */
function udpSockets(port) {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const rows = fs.readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f[1]?.endsWith(hex));
  return { count: rows.length, drops: rows.reduce((n, f) => n + Number(f[12] ?? 0), 0) };
}

function serverArgv(target, port, metricsPort) {
  const c1m = (app, extra) => [process.execPath, CLI, 'serve', app, '--port', String(port), '--host', opt.host, '--backend', 'native', '--metrics-port', String(metricsPort), ...extra];
  switch (target) {
    case 'c1m-sink': return c1m('udp-sink', []);
    case 'udpref-sink': return [UDPREF, '-p', String(port), '-a', opt.host, '-m', 'sink', '-b', '64', '-q'];
    case 'c1m-echo-p2': return c1m('udp-echo', ['--processes', '2']);
    case 'udpref-echo': return [UDPREF, '-p', String(port), '-a', opt.host, '-m', 'echo', '-b', '64', '-q'];
    case 'udpref-echo-w2': return [UDPREF, '-p', String(port), '-a', opt.host, '-m', 'echo', '-w', '2', '-b', '64', '-q'];
  }
  throw new Error(target);
}

async function startServer(target, cpu) {
  const port = freePort('udp'), metricsPort = freePort('tcp');
  const argv = serverArgv(target, port, metricsPort);
  const cmd = cpu === null ? argv : ['taskset', '-c', String(cpu), ...argv];
  const child = track(spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.on('data', () => {});
  const sockets = target.endsWith('p2') || target.endsWith('w2') ? 2 : 1;
  const t0 = Date.now();
  // c1m prints its metrics line once every worker is up; udpref binds one socket per worker.
  while (target.startsWith('c1m') ? !/metrics on/.test(out) || udpSockets(port).count < sockets : udpSockets(port).count < sockets) {
    if (child.exitCode !== null) throw new Error(`${target} exited (${child.exitCode}) before binding: ${out.slice(-300)}`);
    if (Date.now() - t0 > 20_000) throw new Error(`${target} did not bind port ${port} within 20 s`);
    await sleep(20);
  }
  await sleep(200);
  return { target, child, pid: child.pid, port, metricsPort, out: () => out };
}

async function stopServer(s) {
  if (s.child.exitCode !== null) return;
  const done = new Promise((resolve) => s.child.once('exit', resolve));
  s.child.kill('SIGTERM');
  const t = setTimeout(() => killAll(), 8000);
  await done;
  clearTimeout(t);
}

/** The c1m server's received counter, once it has stopped growing (5 s at most). */
async function c1mReceived(s) {
  const read = async () => {
    const text = await (await fetch(`http://${opt.host}:${s.metricsPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const m = /^c1m_udp_received_datagrams (\S+)$/m.exec(text);
    if (!m) throw new Error('no c1m_udp_received_datagrams in the metrics');
    return Number(m[1]);
  };
  let last = await read();
  for (let i = 0; i < 25; i++) {
    await sleep(200);
    const now = await read();
    if (now === last) break;
    last = now;
  }
  return last;
}

function runUdpgen(args, cpu) {
  return runJson([UDPGEN, '-h', opt.host, ...args, '-q'], cpu);
}

/** Run argv (pinned to cpu unless null) and resolve with the JSON of its last stdout line. */
function runJson(argv, cpu) {
  const cmd = cpu === null ? argv : ['taskset', '-c', String(cpu), ...argv];
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const guard = setTimeout(() => child.kill('SIGKILL'), (warmup + duration + 30) * 1000);
    child.once('exit', (code) => {
      clearTimeout(guard);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`${path.basename(argv[argv[0] === process.execPath ? 1 : 0])} exited ${code} without JSON: ${err.trim().slice(-300)}`));
      }
    });
  });
}

// ---------------------------------------------------------------- the two figures

async function sinkTrial(target) {
  const s = await startServer(target, 0);
  try {
    const before = target === 'c1m-sink' ? await c1mReceived(s) : 0;
    const drops0 = udpSockets(s.port).drops;
    const cpu0 = treeCpuSeconds(s.pid);
    const g = await runUdpgen(['-p', String(s.port), '-m', 'flood', '-s', String(size), '-n', String(flows), '-d', String(duration), '-W', String(warmup)], 1);
    let received;
    if (target === 'c1m-sink') received = (await c1mReceived(s)) - before;
    const cpu = treeCpuSeconds(s.pid) - cpu0;
    const kernelDrops = udpSockets(s.port).drops - drops0;
    if (target === 'udpref-sink') {
      await sleep(300);
      const lines = [];
      const exited = new Promise((resolve) => s.child.once('exit', resolve));
      s.child.kill('SIGTERM');
      await exited;
      for (const l of s.out().trim().split('\n')) {
        try {
          lines.push(JSON.parse(l));
        } catch {
          // progress text
        }
      }
      received = lines.at(-1)?.rx;
      if (received === undefined) throw new Error('udpref printed no JSON');
    }
    const share = g.sent > 0 ? received / g.sent : 0;
    return {
      target, sent: g.sent, received, kernel_drops: kernelDrops, received_share: round(share, 4),
      generator_pps: g.pps, received_pps: Math.round(g.pps * share), server_cpu_s: round(cpu, 2),
      server_cpu_us_per_dgram: received ? round((cpu * 1e6) / received, 3) : null, send_errors: g.send_errors,
    };
  } finally {
    await stopServer(s);
  }
}

async function echo2Trial(target) {
  const s = await startServer(target, null);
  try {
    const cpu0 = treeCpuSeconds(s.pid);
    const g = await runUdpgen(['-p', String(s.port), '-m', 'echo', '-s', String(size), '-n', String(flows), '-D', String(depth), '-f', '2',
      '-d', String(duration), '-W', String(warmup)], null);
    const cpu = treeCpuSeconds(s.pid) - cpu0;
    const clean = g.lost === 0 && g.stale === 0 && g.errors === 0 && !g.aborted;
    return {
      target, pps: g.pps, received: g.received, lost: g.lost, stale: g.stale, errors: g.errors, lat_p50_us: g.lat_us?.p50, lat_p99_us: g.lat_us?.p99,
      server_cpu_s: round(cpu, 2), server_cpu_us_per_dgram: g.received ? round((cpu * 1e6) / g.received, 3) : null,
      generator_cpu_s: round((g.cpu_user_s ?? 0) + (g.cpu_sys_s ?? 0), 2), clean,
    };
  } finally {
    await stopServer(s);
  }
}

async function genTrial(target) {
  const s = await startServer('udpref-echo', 0);
  try {
    const cpu0 = treeCpuSeconds(s.pid);
    let r;
    if (target === 'udpgen') {
      const g = await runUdpgen(['-p', String(s.port), '-m', 'echo', '-s', String(size), '-n', String(flows), '-D', String(depth), '-d', String(duration), '-W', String(warmup)], 1);
      r = { pps: g.pps, received: g.received, lost: g.lost, stale: g.stale, lat_p50_us: g.lat_us?.p50, lat_p99_us: g.lat_us?.p99,
        generator_cpu_s: round((g.cpu_user_s ?? 0) + (g.cpu_sys_s ?? 0), 2), clean: g.lost === 0 && g.stale === 0 && g.errors === 0 && !g.aborted };
    } else {
      const j = await runJson([process.execPath, CLI, 'bench', 'udp', '--host', opt.host, '--port', String(s.port), '--size', String(size), '-c', String(flows),
        '--depth', String(depth), '-d', String(duration), '--warmup', String(warmup), '--json'], 1);
      r = { pps: j.received_per_s, received: j.received, lost: j.lost, stale: j.stale, lat_p50_us: j.latency?.p50, lat_p99_us: j.latency?.p99,
        generator_cpu_s: round(j.client.cpu_user_s + j.client.cpu_sys_s, 2), clean: j.lost === 0 && j.stale === 0 };
    }
    const cpu = treeCpuSeconds(s.pid) - cpu0;
    // (no server CPU per datagram here: the two generators count `received` over different spans)
    return { target, ...r, server_cpu_s: round(cpu, 2), server_cpu_us_per_dgram: null };
  } finally {
    await stopServer(s);
  }
}

const PLAN = {
  gen: { targets: ['c1m-bench', 'udpgen'], trial: genTrial, key: 'pps' }, sink: { targets: ['c1m-sink', 'udpref-sink'], trial: sinkTrial, key: 'received_pps' }, echo2: { targets: ['c1m-echo-p2', 'udpref-echo-w2'], trial: echo2Trial, key: 'pps' } };
const load = { before: uptime() };
const t0 = Date.now();
const runs = [];
for (let rep = 0; rep < reps; rep++) {
  for (const fig of figures) {
    const { targets, trial, key } = PLAN[fig];
    const order = targets.map((_, i) => targets[(i + rep) % targets.length]);
    for (const target of order) {
      log(`[udp-flood] rep ${rep + 1}/${reps} ${fig} ${target} (load ${uptime().join(' ')}) ...`);
      try {
        const r = await trial(target);
        runs.push({ rep, figure: fig, load: uptime(), ...r });
        log(`[udp-flood]   ${r[key]} ${key}, ${r.server_cpu_us_per_dgram} us server CPU/datagram`);
      } catch (err) {
        runs.push({ rep, figure: fig, target, error: err.message });
        log(`[udp-flood]   failed: ${err.message}`);
      }
    }
  }
}
load.after = uptime();

const summary = {};
for (const fig of figures) {
  const { targets, key } = PLAN[fig];
  const ok = (t) => runs.filter((r) => r.figure === fig && r.target === t && !r.error && (r.clean ?? true));
  const row = {};
  for (const t of targets) row[t] = { [`${key}_median`]: median(ok(t).map((r) => r[key])), cpu_us_per_dgram_median: median(ok(t).map((r) => r.server_cpu_us_per_dgram)), runs: ok(t).length };
  const xs = [];
  for (let rep = 0; rep < reps; rep++) {
    const a = ok(targets[0]).find((r) => r.rep === rep), b = ok(targets[1]).find((r) => r.rep === rep);
    if (a && b && b[key] > 0) xs.push(a[key] / b[key]);
  }
  row[`${targets[0]}_vs_${targets[1]}`] = xs.length ? round(median(xs), 3) : null;
  summary[fig] = row;
}

emit({
  bench: 'udp-flood',
  date: new Date().toISOString(),
  conditions: { figures, size, flows, depth, duration_s: duration, warmup_s: warmup, reps, quick: opt.quick, host: opt.host, wall_s: round((Date.now() - t0) / 1000, 1) },
  load_avg: load,
  machine: machineInfo(),
  summary,
  runs,
  notes: [
    'sink: server on CPU 0, udpgen flood on CPU 1; received counted by the server over the whole run; received_pps = udpgen pps x received share',
    'echo2: no pinning, server (2 processes) and udpgen (2 processes) share the 2 cores; a run counts only with lost, stale and errors all 0',
    'gen: the generators, both on CPU 1, into udpref -m echo -b 64 on CPU 0; generator_cpu_s over the measured window (c1m bench) or the whole run (udpgen)',
    'ratios: first target / second target within one repetition, median over repetitions',
  ],
}, opt.out);
