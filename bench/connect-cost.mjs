#!/usr/bin/env node
// CPU cost of the connect phase per connection: `c1m bench hold` clients against the C reference
// `loadgen`, both against the same kind of server (`refserver -m hold`), so only the client differs.
//
// Model: one trial = a fresh refserver (-w W, hold) on its own port, then one client run of N
// connections (F processes, K loopback source addresses), sampled from /proc every ~25 ms: the
// client's process tree (utime and stime separately), the server's tree, and /proc/net/sockstat.
// The connect phase of a trial runs from the last sample before a client process holds more than
// START_FDS open files (its own count: other sockets on a shared box do not start it) to the first
// sample where the box holds N more TCP sockets at both ends (sockstat "TCP inuse" rose by 2N);
// its CPU is the tree's CPU between those two samples. Node's start-up (JS load, reactor
// setup) happens before the first socket and is not counted.
//
// Invariants: trials alternate (A B B A ...) so a slow minute hits every client alike; every
// process we start is killed by pid at the end of its trial (and when the script exits);
// nothing is written outside stdout/stderr. Figures are ratios within one run: the box is shared.
//
// usage: node bench/connect-cost.mjs [-n 100000] [-f auto] [-k auto] [-w auto] [--reps 2]
//          [--port 9700] [--target NAME=PATH/TO/bin/c1m.js ...] [--no-loadgen] [--perf DIR]
//   --target   a c1m launcher to measure (repeat; default: c1m=<this repo>/bin/c1m.js); an old
//              build copied aside gives a before/after in one run
//   --node-args NAME=ARGS  node flags for the target NAME (its workers inherit them: a V8 flag's effect)
//   --perf DIR also `perf record -g` each client tree during its first trial into DIR/NAME.data
// Output: progress on stderr, one JSON line on stdout.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const REPO = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const REF_SRC = process.env.C1M_REF_DIR ?? path.join(REPO, '..', 'shared', 'bench');
const REF_BUILD = path.join(os.tmpdir(), `c1m-connect-cost-ref-${process.getuid?.() ?? 0}`);
const TICK = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim()) || 100;

const { values: v } = parseArgs({
  options: {
    n: { type: 'string', short: 'n', default: '100000' },
    f: { type: 'string', short: 'f', default: 'auto' },
    k: { type: 'string', short: 'k', default: 'auto' },
    w: { type: 'string', short: 'w', default: 'auto' },
    reps: { type: 'string', default: '2' },
    port: { type: 'string', default: '9700' },
    target: { type: 'string', multiple: true },
    'node-args': { type: 'string', multiple: true },
    'no-loadgen': { type: 'boolean', default: false },
    perf: { type: 'string' },
  },
});
const intArg = (name, s, dflt) => {
  if (s === 'auto') return dflt;
  if (!/^\d+$/.test(s) || Number(s) < 1) throw new Error(`--${name} must be a positive integer, got "${s}"`);
  return Number(s);
};
const N = intArg('n', v.n);
const F = intArg('f', v.f, Math.ceil(N / 16000));
const K = intArg('k', v.k, Math.ceil(N / 10000));
const W = intArg('w', v.w, Math.ceil(N / 16000));
const REPS = intArg('reps', v.reps);
let port = intArg('port', v.port);

const targets = (v.target ?? [`c1m=${path.join(REPO, 'bin', 'c1m.js')}`]).map((t) => {
  const i = t.indexOf('=');
  if (i < 1) throw new Error(`--target must be NAME=PATH, got "${t}"`);
  const bin = path.resolve(t.slice(i + 1));
  if (!fs.existsSync(bin)) throw new Error(`--target ${t}: no such file`);
  return { name: t.slice(0, i), kind: 'c1m', bin, nodeArgs: [] };
});
for (const o of v['node-args'] ?? []) {
  const i = o.indexOf('=');
  const t = targets.find((x) => x.name === o.slice(0, i));
  if (i < 1 || !t) throw new Error(`--node-args must be NAME=ARGS for a --target NAME, got "${o}"`);
  t.nodeArgs = o.slice(i + 1).split(' ').filter(Boolean);
}
if (!v['no-loadgen']) targets.unshift({ name: 'loadgen', kind: 'loadgen' });

// ---- the reference tools, built aside ----
fs.mkdirSync(REF_BUILD, { recursive: true });
for (const f of ['Makefile', 'common.h', 'loadgen.c', 'refserver.c']) fs.copyFileSync(path.join(REF_SRC, f), path.join(REF_BUILD, f));
const mk = spawnSync('make', ['-C', REF_BUILD, 'loadgen', 'refserver'], { stdio: ['ignore', 'ignore', 'inherit'] });
if (mk.status !== 0) throw new Error(`building the reference tools in ${REF_BUILD} failed`);

// ---- /proc ----
function stat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]) };
  } catch {
    return null;
  }
}
/** utime/stime (s) over the tree under root; exited descendants are not counted (none exit mid-phase). */
function treeCpu(root) {
  const kids = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = stat(Number(name));
    if (!st) continue;
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid).push(Number(name));
  }
  let user = 0, sys = 0;
  const pids = [];
  for (const todo = [root]; todo.length;) {
    const pid = todo.pop();
    const st = stat(pid);
    if (!st) continue;
    pids.push(pid);
    user += st.utime;
    sys += st.stime;
    todo.push(...(kids.get(pid) ?? []));
  }
  return { user: user / TICK, sys: sys / TICK, pids };
}
/** Open files of the process in `pids` that has most: the client's own sockets, whoever else
 *  opens sockets on the box (read only until the connect phase starts: cheap then). */
function maxFds(pids) {
  let m = 0;
  for (const pid of pids) {
    try {
      m = Math.max(m, fs.readdirSync(`/proc/${pid}/fd`).length);
    } catch { /* gone */ }
  }
  return m;
}
/** A client process with more open files than this has started connecting (node starts with ~25). */
const START_FDS = 100;
function sockstat() {
  const m = /TCP: inuse (\d+) orphan \d+ tw (\d+)/.exec(fs.readFileSync('/proc/net/sockstat', 'utf8'));
  return { inuse: Number(m[1]), tw: Number(m[2]) };
}
function procTimes() {
  // /proc/stat cpu line: user nice system idle iowait irq softirq
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: (f[0] + f[1] + f[2] + f[5] + f[6]) / TICK, softirq: f[6] / TICK, idle: (f[3] + f[4]) / TICK };
}

const live = new Set();
process.on('exit', () => {
  for (const c of live) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const start = (cmd, args, opts = {}) => {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts });
  live.add(c);
  c.on('exit', () => live.delete(c));
  c.out = '';
  c.stdout.on('data', (d) => { c.out += d; });
  c.stderr.on('data', (d) => { c.err = (c.err ?? '') + d; });
  return c;
};
async function stop(c, sig = 'SIGTERM') {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise((r) => c.once('exit', r));
  try { process.kill(-c.pid, sig); } catch { return; }
  const t = setTimeout(() => { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } }, 10000);
  await done;
  clearTimeout(t);
}

async function trial(t, perfDir) {
  port++;
  const srv = start(path.join(REF_BUILD, 'refserver'), ['-p', String(port), '-a', '127.0.0.1', '-m', 'hold', '-w', String(W), '-q']);
  await sleep(500);
  const hold = 30; // seconds; the client is stopped as soon as the phase is measured
  const cli = t.kind === 'loadgen'
    ? start(path.join(REF_BUILD, 'loadgen'), ['-n', String(N), '-p', String(port), '-f', String(F), '-k', String(K), '-m', 'hold', '-d', String(hold), '-W', '0', '-q'])
    : start(process.execPath, [...t.nodeArgs, t.bin, 'bench', 'hold', '--port', String(port), '-c', String(N), '--processes', String(F), '--source-ips', String(K), '-d', String(hold), '--json']);
  const base = sockstat();
  let perf;
  let prev = { t: performance.now(), cpu: treeCpu(cli.pid), srv: treeCpu(srv.pid), box: procTimes(), ss: base };
  let first = null, end = null;
  const deadline = performance.now() + 240000;
  while (performance.now() < deadline && cli.exitCode === null) {
    await sleep(25);
    const cur = { t: performance.now(), cpu: treeCpu(cli.pid), srv: treeCpu(srv.pid), box: procTimes(), ss: sockstat() };
    if (!first && maxFds(cur.cpu.pids) > START_FDS) {
      first = prev;
      if (perfDir) perf = start('perf', ['record', '-g', '-o', path.join(perfDir, `${t.name}.data`), '-p', cur.cpu.pids.join(',')]);
    }
    if (first && cur.ss.inuse >= base.inuse + 2 * N) { end = cur; break; }
    prev = cur;
  }
  if (perf) await stop(perf, 'SIGINT');
  await stop(cli, t.kind === 'loadgen' ? 'SIGTERM' : 'SIGINT');
  await stop(srv);
  if (!end) throw new Error(`${t.name}: ${N} connections not established (sockstat ${JSON.stringify(sockstat())}; client stdout: ${cli.out.slice(-300)} stderr: ${(cli.err ?? '').slice(-300)})`);
  const user = end.cpu.user - first.cpu.user, sys = end.cpu.sys - first.cpu.sys;
  const r = {
    name: t.name,
    wall_s: +((end.t - first.t) / 1000).toFixed(3),
    client_user_us: +(user / N * 1e6).toFixed(2),
    client_sys_us: +(sys / N * 1e6).toFixed(2),
    client_us: +((user + sys) / N * 1e6).toFixed(2),
    server_us: +(((end.srv.user + end.srv.sys) - (first.srv.user + first.srv.sys)) / N * 1e6).toFixed(2),
    box_softirq_us: +((end.box.softirq - first.box.softirq) / N * 1e6).toFixed(2),
    box_idle_s: +(end.box.idle - first.box.idle).toFixed(2),
    tw_before: base.tw,
  };
  // wait for the teardown's sockets to go before the next trial
  for (let i = 0; i < 600 && sockstat().inuse > base.inuse + 50; i++) await sleep(100);
  return r;
}

const runs = [];
const order = [];
for (let rep = 0; rep < REPS; rep++) order.push(...(rep % 2 === 0 ? targets : [...targets].reverse()));
const perfDone = new Set();
process.stderr.write(`connect-cost: ${N} connections, ${F} client processes, ${K} source addresses, refserver -w ${W}; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
for (const t of order) {
  let perfDir;
  if (v.perf && !perfDone.has(t.name)) {
    perfDir = v.perf;
    fs.mkdirSync(perfDir, { recursive: true });
    perfDone.add(t.name);
  }
  const r = await trial(t, perfDir);
  runs.push(r);
  process.stderr.write(`${r.name.padEnd(12)} ${r.wall_s.toFixed(2)} s  client ${r.client_user_us} us user + ${r.client_sys_us} us sys = ${r.client_us} us/conn; server ${r.server_us} us; softirq ${r.box_softirq_us} us; idle ${r.box_idle_s} s\n`);
}
const summary = {};
for (const t of targets) {
  const mine = runs.filter((r) => r.name === t.name);
  const mean = (k) => +(mine.reduce((a, r) => a + r[k], 0) / mine.length).toFixed(2);
  // the median as well: one trial that shared the box with a burst of other work skews a mean
  const median = (k) => {
    const xs = mine.map((r) => r[k]).sort((a, b) => a - b);
    return +(xs.length % 2 ? xs[(xs.length - 1) / 2] : (xs[xs.length / 2 - 1] + xs[xs.length / 2]) / 2).toFixed(2);
  };
  summary[t.name] = {
    trials: mine.length,
    client_user_us: mean('client_user_us'), client_sys_us: mean('client_sys_us'), client_us: mean('client_us'), server_us: mean('server_us'), wall_s: mean('wall_s'),
    median: { client_user_us: median('client_user_us'), client_sys_us: median('client_sys_us'), client_us: median('client_us'), server_us: median('server_us'), wall_s: median('wall_s') },
  };
}
if (summary.loadgen) {
  for (const t of targets) {
    summary[t.name].client_vs_loadgen = +(summary[t.name].client_us / summary.loadgen.client_us).toFixed(3);
    summary[t.name].median.client_vs_loadgen = +(summary[t.name].median.client_us / summary.loadgen.median.client_us).toFixed(3);
  }
}
for (const t of targets) {
  const m = summary[t.name].median;
  process.stderr.write(`median ${t.name.padEnd(10)} client ${m.client_user_us} us user + ${m.client_sys_us} us sys = ${m.client_us} us/conn${m.client_vs_loadgen ? ` (${m.client_vs_loadgen}x loadgen)` : ''}; server ${m.server_us} us\n`);
}
process.stdout.write(JSON.stringify({ date: new Date().toISOString(), connections: N, client_processes: F, source_ips: K, server_workers: W, loadavg: os.loadavg(), host: os.hostname(), cpus: os.cpus().length, runs, summary }) + '\n');
