#!/usr/bin/env node
// UDP echo throughput and server CPU per datagram: `c1m serve udp-echo` (native backend) against
// the C reference `udpref` batched (-b 64) and unbatched (-b 1), and a node:dgram echo server,
// all driven by `udpgen -m echo` (64 flows x depth 16). One JSON document on stdout, progress on
// stderr.
//
//   node bench/udp.mjs [--targets c1m,udpref-b64,udpref-b1,node-dgram] [--sizes 64,1400]
//                      [--reps 1] [--duration 5] [--warmup 1] [--flows 64] [--depth 16] [--out FILE]
//
// Each trial is a fresh server process pinned to CPU 0 (`taskset -c 0`) and udpgen pinned to CPU 1.
// Targets alternate within a repetition (the order rotates every repetition), so drift of this
// shared machine spreads over all of them; quote the ratios within one run, never a lone number.
//
// CPU per datagram: the server's CPU (user + system, /proc/PID/stat over its process tree) from
// just before udpgen starts to just after it exits, divided by the echoes udpgen received in that
// time (warm-up included). A run counts only with lost, stale and errors all 0 (`clean`).
//
// The reference tools come from /work/shared/bench (C1M_REF_SRC): `make -C /work/shared/bench`.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { BENCH_DIR, REPO_DIR, emit, log, machineInfo, median, ratio, round, sleep, treeCpuSeconds } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    targets: { type: 'string', default: 'c1m,udpref-b64,udpref-b1,node-dgram' },
    sizes: { type: 'string', default: '64,1400' },
    reps: { type: 'string', default: '1' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    flows: { type: 'string', default: '64' },
    depth: { type: 'string', default: '16' },
    host: { type: 'string', default: '127.0.0.1' },
    'server-cpu': { type: 'string', default: '0' },
    'client-cpu': { type: 'string', default: '1' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  log('usage: node bench/udp.mjs [--targets c1m,udpref-b64,udpref-b1,node-dgram] [--sizes 64,1400] [--reps N]');
  log('                          [--duration S] [--warmup S] [--flows N] [--depth N] [--out FILE]');
  process.exit(0);
}
const int = (name) => {
  const v = Number(opt[name]);
  if (!Number.isInteger(v) || v < 0) {
    log(`udp.mjs: --${name} must be a non-negative integer, got "${opt[name]}"`);
    process.exit(2);
  }
  return v;
};
const REF = process.env.C1M_REF_SRC ?? '/work/shared/bench';
const UDPREF = path.join(REF, 'udpref');
const UDPGEN = path.join(REF, 'udpgen');
for (const tool of [UDPREF, UDPGEN]) {
  if (!fs.existsSync(tool)) {
    log(`udp.mjs: ${tool} is missing: run "make -C ${REF}"`);
    process.exit(2);
  }
}
const KNOWN = ['c1m', 'udpref-b64', 'udpref-b1', 'node-dgram'];
const targets = opt.targets.split(',').filter(Boolean);
for (const t of targets) if (!KNOWN.includes(t)) (log(`udp.mjs: unknown target "${t}" (${KNOWN.join(', ')})`), process.exit(2));
const sizes = opt.sizes.split(',').map(Number);
const reps = int('reps'), duration = int('duration'), warmup = int('warmup'), flows = int('flows'), depth = int('depth');

/** A free UDP port on host (bound, then released). */
function freeUdpPort() {
  const r = spawnSync(process.execPath, ['-e', `const s=require('dgram').createSocket('udp4');s.bind(0,${JSON.stringify(opt.host)},()=>{console.log(s.address().port);s.close()})`], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

/** Whether something has a UDP socket bound on port (from /proc/net/udp). */
function udpBound(port) {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return fs.readFileSync('/proc/net/udp', 'utf8').split('\n').some((l) => l.trim().split(/\s+/)[1]?.endsWith(hex));
}

function serverArgv(target, port) {
  switch (target) {
    case 'c1m': return [process.execPath, path.join(REPO_DIR, 'bin', 'c1m.js'), 'serve', 'udp-echo', '--port', String(port), '--host', opt.host, '--backend', 'native'];
    case 'udpref-b64': return [UDPREF, '-p', String(port), '-a', opt.host, '-m', 'echo', '-b', '64', '-q'];
    case 'udpref-b1': return [UDPREF, '-p', String(port), '-a', opt.host, '-m', 'echo', '-b', '1', '-q'];
    case 'node-dgram': return [process.execPath, path.join(BENCH_DIR, 'servers', 'dgram-echo.mjs'), '--port', String(port), '--host', opt.host];
  }
  throw new Error(target);
}

async function startServer(target, port) {
  const child = spawn('taskset', ['-c', opt['server-cpu'], ...serverArgv(target, port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  readline.createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  child.stderr.on('data', () => {});
  const t0 = Date.now();
  while (!udpBound(port)) {
    if (child.exitCode !== null) throw new Error(`${target} exited (${child.exitCode}) before binding`);
    if (Date.now() - t0 > 15_000) throw new Error(`${target} did not bind port ${port} within 15 s`);
    await sleep(20);
  }
  return { child, lines, pid: child.pid };
}

async function stopServer(s) {
  if (s.child.exitCode !== null) return;
  const done = new Promise((resolve) => s.child.once('exit', resolve));
  s.child.kill('SIGTERM');
  const t = setTimeout(() => s.child.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(t);
}

function runUdpgen(port, size) {
  return new Promise((resolve, reject) => {
    const args = ['-c', opt['client-cpu'], UDPGEN, '-h', opt.host, '-p', String(port), '-m', 'echo', '-s', String(size),
      '-n', String(flows), '-D', String(depth), '-d', String(duration), '-W', String(warmup), '-q'];
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) => {
      const line = out.trim().split('\n').pop();
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`udpgen exited ${code} without JSON: ${err.trim().slice(-300)}`));
      }
    });
  });
}

/** The server's main process (taskset execs it, so the pid is the server's). */
async function trial(target, size) {
  const port = freeUdpPort();
  const s = await startServer(target, port);
  await sleep(200);
  try {
    const cpu0 = treeCpuSeconds(s.pid);
    const g = await runUdpgen(port, size);
    const cpu1 = treeCpuSeconds(s.pid);
    const cpu = cpu1 - cpu0;
    const clean = g.lost === 0 && g.stale === 0 && g.errors === 0 && !g.aborted;
    return {
      target, size, pps: g.pps, MB_per_s: g.MB_per_s, received: g.received, lost: g.lost, stale: g.stale, errors: g.errors,
      lat_p50_us: g.lat_us?.p50, lat_p99_us: g.lat_us?.p99, server_cpu_s: round(cpu, 2),
      server_cpu_us_per_dgram: g.received ? round((cpu * 1e6) / g.received, 3) : null, clean,
    };
  } finally {
    await stopServer(s);
  }
}

const results = [];
const t0 = Date.now();
for (let rep = 0; rep < reps; rep++) {
  for (const size of sizes) {
    const order = targets.map((_, i) => targets[(i + rep) % targets.length]);
    for (const target of order) {
      log(`[udp] rep ${rep + 1}/${reps} ${size} B ${target} ...`);
      try {
        const r = await trial(target, size);
        results.push({ rep, ...r });
        log(`[udp]   ${r.pps} pps, ${r.server_cpu_us_per_dgram} us CPU/datagram${r.clean ? '' : ' (NOT clean)'}`);
      } catch (err) {
        results.push({ rep, target, size, error: err.message });
        log(`[udp]   failed: ${err.message}`);
      }
    }
  }
}

// Ratios within each repetition (adjacent runs), then their medians.
const summary = {};
for (const size of sizes) {
  const of = (t) => results.filter((r) => r.size === size && r.target === t && r.clean);
  const row = {};
  for (const t of targets) {
    const rs = of(t);
    row[t] = { pps_median: median(rs.map((r) => r.pps)), cpu_us_per_dgram_median: median(rs.map((r) => r.server_cpu_us_per_dgram)), clean_runs: rs.length };
  }
  const paired = (a, b) => {
    const xs = [];
    for (let rep = 0; rep < reps; rep++) {
      const x = of(a).find((r) => r.rep === rep), y = of(b).find((r) => r.rep === rep);
      if (x && y) xs.push(x.pps / y.pps);
    }
    return xs.length ? round(median(xs), 3) : null;
  };
  if (targets.includes('c1m')) {
    for (const base of ['udpref-b64', 'udpref-b1', 'node-dgram']) if (targets.includes(base)) row[`c1m_vs_${base.replace(/-/g, '_')}`] = paired('c1m', base);
  }
  summary[`${size}B`] = row;
}

emit({
  bench: 'udp-echo',
  date: new Date().toISOString(),
  conditions: { flows, depth, duration_s: duration, warmup_s: warmup, reps, server_cpu: opt['server-cpu'], client_cpu: opt['client-cpu'], host: opt.host, wall_s: round((Date.now() - t0) / 1000, 1) },
  machine: machineInfo(),
  summary,
  runs: results,
  ratio_note: ratio.name ? 'ratios are c1m pps / target pps within one repetition (median over repetitions)' : undefined,
}, opt.out);
