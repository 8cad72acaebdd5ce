#!/usr/bin/env node
// Server CPU per WebSocket upgrade in a storm (issue 15): what a gateway restart costs when every
// client reconnects at once, and what each process of the WebSocket million spends on its ramp.
//
// Model: one trial = one fresh server process pinned to CPU 0 (`taskset`), driven by the C
// `loadgen -m ws-hold` pinned to CPU 1, which opens connections and upgrades them as fast as it
// can (at most -c handshakes in flight, -k loopback source addresses). A trial runs a warm-up
// ramp (--warmup connections, not measured: the million's processes take ~300 first), then
// --ramps measured ramps of -n upgrades each: the first on the cold-ish process, the next ones
// after every connection was closed (RST) and the server saw it (a warm process). A ramp's
// figure is the server's CPU (utime+stime of every thread and child, /proc/PID/stat; and the
// nanosecond run time of /proc/PID/task/*/schedstat beside it) from just before loadgen starts
// to --settle ms after loadgen saw its last 101, divided by the upgrades: server CPU-µs per
// upgrade. upgrades/s is loadgen's (upgrades / its connect phase). The server's idle CPU over
// one second before the first ramp is recorded too (it is inside every window).
//
// Targets (--targets, default all; the order alternates from one repetition to the next):
//   refserver    `refserver -m ws-hold`: the C floor
//   c1m-ws       `c1m serve ws-echo` (the WebSocket server on its own port)
//   c1m-gateway  `c1m serve gateway --no-auth` (HTTP server + upgrade hook + topics)
//   uws          uWebSockets.js `App().ws('/*')` echo (bench/servers/uws-ws.mjs)
//   uws-sub      the same with --subscribe: the gateway's work per client in uWS's API (query
//                topics read, subscribed, welcome + ack sent)
//   ws           the `ws` package (bench/servers/ws-echo.mjs)
// With --c1m NAME=DIR (repeatable) the c1m targets run once per build (`c1m-ws@NAME`, ...): DIR
// holds bin/c1m.js (a checkout with its dist/ built), so a before/after is measured in one run.
//
// The request: loadgen's upgrade request line is `GET / HTTP/1.1`, and the gateway upgrades only
// `/ws`. The harness therefore builds a copy of loadgen (bench/.ref-build/upgrade-storm/) whose
// request target is --path (default `/ws?topics=a`, what a gateway client sends): the same
// request goes to every target (the others ignore the path).
//
// usage: npm run build && node bench/upgrade-storm.mjs [-n 19000] [--warmup 300] [--ramps 2]
//          [--reps 2] [--targets LIST] [--c1m NAME=DIR ...] [--path /ws?topics=a] [-k 4]
//          [-c 1000] [--settle 300] [--node-flags "FLAGS"] [--flags-for NAME="FLAGS"] [--perf DIR] [--out FILE]
//   -n          upgrades per measured ramp (default 19000: one process of the million)
//   --warmup    upgrades of the unmeasured first ramp (default 300; 0: none)
//   --ramps     measured ramps per server process (default 2: cold, then warm)
//   --reps      repetitions (default 2); odd ones run the targets in reverse order
//   -k          loopback source addresses (default 4); -c handshakes in flight (default 1000;
//               -c 1 is a trickle: one upgrade at a time, each in polls of its own, closer to what
//               each of the million's 53 processes sees, ~100 upgrades/s, than a storm)
//   --settle    ms after loadgen's last 101 before the window closes (default 300)
//   --node-flags  extra node flags for the Node targets (e.g. "--perf-basic-prof")
//   --flags-for NAME="FLAGS"  extra node flags for one --c1m build's targets (repeatable)
//   --perf DIR  `perf record -g` the server over each c1m target's first measured ramp of the
//               first repetition into DIR/TARGET.data (start node with --perf-basic-prof to see JS)
//   --out FILE  also write the JSON document to FILE
// Output: progress on stderr; one JSON document on stdout: every ramp, and per target the
// medians of cold and warm ramps and their ratio to refserver and uws.
//
// Invariants: every process started is killed by pid at the end of its trial (and when the
// script exits, lib.mjs); a ramp that did not upgrade all -n connections is kept but marked
// `complete: false` and left out of the medians. The box is shared: compare ratios within
// one run, and read `foreign` (CPU used by other processes during the ramp).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH_DIR, REF_BUILD_DIR, REPO_DIR, Server, busyNote, cpuSnapshot, emit, ensureRefTools, establishedCount, foreignCpu, freePort,
  intOption, log, machineInfo, median, processTree, ratio, round, runLoadgen, sleep, treeCpuSeconds, usageError,
} from './lib.mjs';

const PROG = 'upgrade-storm';
const ALL = ['refserver', 'c1m-ws', 'c1m-gateway', 'uws', 'uws-sub', 'ws'];

const { values: v } = parseArgs({
  options: {
    n: { type: 'string', short: 'n', default: '19000' },
    warmup: { type: 'string', default: '300' },
    ramps: { type: 'string', default: '2' },
    reps: { type: 'string', default: '2' },
    targets: { type: 'string', default: ALL.join(',') },
    c1m: { type: 'string', multiple: true },
    path: { type: 'string', default: '/ws?topics=a' },
    k: { type: 'string', short: 'k', default: '4' },
    c: { type: 'string', short: 'c', default: '1000' },
    settle: { type: 'string', default: '300' },
    'node-flags': { type: 'string', default: '' },
    'flags-for': { type: 'string', multiple: true },
    perf: { type: 'string' },
    out: { type: 'string' },
  },
  strict: true,
});
const N = intOption(PROG, 'n', v.n);
const WARMUP = intOption(PROG, 'warmup', v.warmup, 0);
const RAMPS = intOption(PROG, 'ramps', v.ramps);
const REPS = intOption(PROG, 'reps', v.reps);
const K = intOption(PROG, 'k', v.k);
const CONC = intOption(PROG, 'c', v.c);
const SETTLE = intOption(PROG, 'settle', v.settle, 0);
const NODE_FLAGS = v['node-flags'].split(' ').filter(Boolean);
const HOST = '127.0.0.1';
if (N > 19500) usageError(PROG, '-n above 19500 would pass the server\'s open-file limit of 20000');
// The target goes into a C format string: printable ASCII without '"', '\' and '%'.
if (!/^\/[\x21-\x7e]*$/.test(v.path) || /["\\%]/.test(v.path)) usageError(PROG, `--path must start with / and hold printable ASCII without " \\ %, got "${v.path}"`);
const requested = v.targets.split(',').map((t) => t.trim()).filter(Boolean);
for (const t of requested) if (!ALL.includes(t)) usageError(PROG, `unknown target "${t}" (known: ${ALL.join(', ')})`);
const builds = (v.c1m ?? [`c1m=${REPO_DIR}`]).map((s) => {
  const i = s.indexOf('=');
  if (i < 1) usageError(PROG, `--c1m must be NAME=DIR, got "${s}"`);
  const dir = path.resolve(s.slice(i + 1));
  const bin = path.join(dir, 'bin', 'c1m.js');
  if (!fs.existsSync(bin) || !fs.existsSync(path.join(dir, 'dist', 'index.js'))) usageError(PROG, `--c1m ${s}: no bin/c1m.js with a built dist/ in ${dir}`);
  return { name: s.slice(0, i), bin, flags: [] };
});
// --flags-for NAME="FLAGS": node flags for one build's targets only (an A/B of a runtime flag
// on one checkout: --c1m a=. --c1m b=. --flags-for b="--use-largepages=on").
for (const s of v['flags-for'] ?? []) {
  const i = s.indexOf('=');
  const b = i < 1 ? undefined : builds.find((x) => x.name === s.slice(0, i));
  if (!b) usageError(PROG, `--flags-for must be NAME=FLAGS naming a --c1m build, got "${s}"`);
  b.flags = s.slice(i + 1).split(' ').filter(Boolean);
}
const oneBuild = v.c1m === undefined;
if (v.perf) fs.mkdirSync(v.perf, { recursive: true });

// ---------------------------------------------------------------- loadgen with --path

/** loadgen built from the shared source with its request target replaced by `target`. */
function buildPathLoadgen(target) {
  ensureRefTools(); // copies the shared sources into REF_BUILD_DIR (and builds refserver)
  const dir = path.join(REF_BUILD_DIR, 'upgrade-storm');
  fs.mkdirSync(dir, { recursive: true });
  const src = fs.readFileSync(path.join(REF_BUILD_DIR, 'loadgen.c'), 'utf8');
  const needle = '"GET / HTTP/1.1\\r\\n';
  const at = src.indexOf(needle);
  if (at < 0 || src.indexOf(needle, at + 1) >= 0) throw new Error(`loadgen.c: the request line ${needle} is not there exactly once; cannot set --path`);
  const patched = src.replace(needle, `"GET ${target} HTTP/1.1\\r\\n`);
  const file = path.join(dir, 'loadgen.c');
  let same = false;
  try {
    same = fs.readFileSync(file, 'utf8') === patched;
  } catch {
    // first build
  }
  if (!same) fs.writeFileSync(file, patched);
  fs.copyFileSync(path.join(REF_BUILD_DIR, 'common.h'), path.join(dir, 'common.h'));
  const bin = path.join(dir, 'loadgen');
  if (!same || !fs.existsSync(bin)) {
    const r = spawnSync('gcc', ['-O2', '-g', '-Wall', '-Wextra', '-std=gnu11', '-o', bin, file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building loadgen with --path failed:\n${r.stdout}${r.stderr}`);
  }
  return bin;
}

// ---------------------------------------------------------------- targets

/** How to start one target: argv, and the build it belongs to (c1m targets). */
function specOf(name, port, refserver) {
  const p = String(port);
  const at = name.indexOf('@');
  const base = at < 0 ? name : name.slice(0, at);
  const build = at < 0 ? builds[0] : builds.find((b) => b.name === name.slice(at + 1));
  const node = (...rest) => [process.execPath, ...NODE_FLAGS, ...(base.startsWith('c1m-') ? build.flags : []), ...rest];
  switch (base) {
    case 'refserver':
      return { argv: [refserver, '-p', p, '-a', HOST, '-m', 'ws-hold', '-q'], ready: 'connect', node: false };
    case 'c1m-ws':
      return { argv: node(build.bin, 'serve', 'ws-echo', '--port', p, '--host', HOST), ready: 'stdout', node: true };
    case 'c1m-gateway':
      return { argv: node(build.bin, 'serve', 'gateway', '--no-auth', '--port', p, '--host', HOST), ready: 'stdout', node: true };
    case 'uws':
      return { argv: node(path.join(BENCH_DIR, 'servers', 'uws-ws.mjs'), '--port', p, '--host', HOST), ready: 'stdout', node: true };
    case 'uws-sub':
      return { argv: node(path.join(BENCH_DIR, 'servers', 'uws-ws.mjs'), '--port', p, '--host', HOST, '--subscribe'), ready: 'stdout', node: true };
    case 'ws':
      return { argv: node(path.join(BENCH_DIR, 'servers', 'ws-echo.mjs'), '--port', p, '--host', HOST), ready: 'stdout', node: true };
    default:
      throw new Error(`unknown target ${name}`);
  }
}

const targets = [];
for (const t of requested) {
  if (t.startsWith('c1m-') && !oneBuild) for (const b of builds) targets.push(`${t}@${b.name}`);
  else targets.push(t);
}

// ---------------------------------------------------------------- /proc

/** Nanoseconds on CPU of every thread of the tree (schedstat's first field), or null. */
function treeRunNs(pid) {
  let ns = 0;
  for (const p of processTree(pid)) {
    let tasks;
    try {
      tasks = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        ns += Number(fs.readFileSync(`/proc/${p}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // thread gone
      }
    }
  }
  return ns;
}

const cpuOf = (pid) => ({ s: treeCpuSeconds(pid), ns: treeRunNs(pid) });

async function waitClosed(port, timeoutMs = 60_000) {
  const t0 = Date.now();
  for (;;) {
    const n = establishedCount(port);
    if (n === 0) return true;
    if (Date.now() - t0 > timeoutMs) return false;
    await sleep(100);
  }
}

// ---------------------------------------------------------------- one ramp

let srcSlot = 0;
/** A source base of its own per ramp (127.0.x.2+), so no 4-tuple of an earlier ramp is reused. */
function nextSrcBase() {
  srcSlot = (srcSlot % 200) + 1;
  return `127.0.${srcSlot}.2`;
}

async function ramp(server, loadgen, n, perfFile) {
  const snap0 = cpuSnapshot();
  const c0 = cpuOf(server.pid);
  let perf = null;
  if (perfFile) {
    perf = spawn('perf', ['record', '-g', '-F', '1999', '-p', String(server.pid), '-o', perfFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    await sleep(300); // perf attaches
  }
  const t0 = performance.now();
  let connectDone;
  const connected = new Promise((resolve) => (connectDone = resolve));
  const lg = runLoadgen({ loadgen }, ['-n', String(n), '-p', String(server.port), '-m', 'ws-hold', '-k', String(K), '-S', nextSrcBase(),
    '-c', String(CONC), '-d', String(Math.ceil((SETTLE + 700) / 1000)), '-R', '-i', '1', '-M', '1024'], {
    cpu: 1,
    timeoutMs: 180_000,
    onStderr: (l) => {
      if (l.includes('connect phase done')) connectDone(performance.now());
    },
  });
  const tDone = await Promise.race([connected, lg.done.then(() => performance.now())]);
  await sleep(SETTLE);
  const c1 = cpuOf(server.pid);
  const t1 = performance.now();
  const snap1 = cpuSnapshot();
  if (perf !== null) {
    perf.kill('SIGINT');
    await new Promise((resolve) => perf.once('close', resolve));
  }
  const { json, code } = await lg.done;
  const closed = await waitClosed(server.port);
  await sleep(200);
  const upgraded = json?.upgraded ?? 0;
  const cpuS = c1.s - c0.s;
  const runS = (c1.ns - c0.ns) / 1e9;
  const ourCpu = cpuS + (json ? json.cpu_user_s + json.cpu_sys_s : 0);
  return {
    complete: upgraded === n && code === 0,
    upgraded,
    failed: json?.failed ?? null,
    errors: json?.errors ?? null,
    connect_s: json?.connect_s ?? null,
    upgrades_per_s: json?.connect_rate ?? null,
    window_s: round((t1 - t0) / 1000, 3),
    loadgen_done_after_s: round((tDone - t0) / 1000, 3),
    server_cpu_s: round(cpuS, 3),
    server_run_s: round(runS, 4),
    cpu_us_per_upgrade: upgraded > 0 ? round((cpuS * 1e6) / upgraded, 1) : null,
    run_us_per_upgrade: upgraded > 0 ? round((runS * 1e6) / upgraded, 1) : null,
    loadgen_cpu_s: json ? round(json.cpu_user_s + json.cpu_sys_s, 2) : null,
    closed_after: closed,
    foreign: foreignCpu(snap0, snap1, { ourPids: [server.pid, lg.pid], oursCpuS: ourCpu }),
    perf: perfFile ?? undefined,
  };
}

// ---------------------------------------------------------------- one trial

async function trial(target, rep, tools) {
  const port = await freePort(HOST);
  const spec = specOf(target, port, tools.refserver);
  const server = new Server(target, { argv: spec.argv, ready: spec.ready, gc: false, stats: false }, { host: HOST, port, cpu: 0 });
  const out = { target, rep, port, idle_cpu_s_per_s: null, warmup: null, ramps: [], exit: null };
  try {
    await server.waitReady(20_000);
    const i0 = cpuOf(server.pid);
    await sleep(1000);
    const i1 = cpuOf(server.pid);
    out.idle_cpu_s_per_s = round((i1.ns - i0.ns) / 1e9, 4);
    if (WARMUP > 0) {
      const w = await ramp(server, tools.loadgen, WARMUP, null);
      out.warmup = { upgraded: w.upgraded, complete: w.complete, cpu_us_per_upgrade: w.cpu_us_per_upgrade };
    }
    for (let r = 0; r < RAMPS; r++) {
      const perfFile = v.perf && rep === 0 && r === 0 && target.startsWith('c1m-') ? path.join(v.perf, `${target.replace('@', '-')}.data`) : null;
      const res = await ramp(server, tools.loadgen, N, perfFile);
      res.kind = r === 0 ? 'cold' : 'warm';
      out.ramps.push(res);
      log(`[${PROG}] rep ${rep} ${target.padEnd(18)} ${res.kind}: ${res.upgraded}/${N} upgraded in ${res.connect_s}s (${res.upgrades_per_s}/s), ` +
        `server ${res.cpu_us_per_upgrade} CPU-µs/upgrade (run ${res.run_us_per_upgrade})${res.complete ? '' : ' INCOMPLETE'}${busyNote(res.foreign)}`);
    }
  } catch (err) {
    out.error = String(err?.message ?? err);
    log(`[${PROG}] rep ${rep} ${target}: FAILED ${out.error}`);
  } finally {
    out.exit = await server.stop(5000);
  }
  return out;
}

// ---------------------------------------------------------------- main

const tools = { refserver: ensureRefTools().refserver, loadgen: buildPathLoadgen(v.path) };
const uptimeBefore = os.loadavg();
log(`[${PROG}] ${targets.length} targets x ${REPS} reps, ${RAMPS} ramps of ${N} upgrades (warm-up ${WARMUP}), path ${v.path}, load ${uptimeBefore.map((x) => x.toFixed(2)).join(' ')}`);
const trials = [];
for (let rep = 0; rep < REPS; rep++) {
  const order = rep % 2 === 0 ? targets : [...targets].reverse();
  for (const t of order) trials.push(await trial(t, rep, tools));
}

/** Medians per target and ramp kind, over complete ramps. */
const summary = {};
for (const t of targets) {
  const mine = trials.filter((x) => x.target === t);
  const pick = (kind, key) => median(mine.flatMap((x) => x.ramps.filter((r) => r.kind === kind && r.complete).map((r) => r[key])));
  summary[t] = {};
  for (const kind of ['cold', 'warm']) {
    summary[t][kind] = {
      cpu_us_per_upgrade: pick(kind, 'cpu_us_per_upgrade'),
      run_us_per_upgrade: pick(kind, 'run_us_per_upgrade'),
      upgrades_per_s: pick(kind, 'upgrades_per_s'),
    };
  }
}
for (const t of targets) {
  for (const kind of ['cold', 'warm']) {
    const s = summary[t][kind];
    s.vs_refserver = ratio(s.run_us_per_upgrade, summary.refserver?.[kind]?.run_us_per_upgrade);
    s.vs_uws = ratio(s.run_us_per_upgrade, summary.uws?.[kind]?.run_us_per_upgrade);
  }
}
emit({
  benchmark: 'upgrade-storm',
  when: new Date().toISOString(),
  machine: machineInfo(),
  loadavg_before: uptimeBefore.map((x) => round(x, 2)),
  loadavg_after: os.loadavg().map((x) => round(x, 2)),
  options: { n: N, warmup: WARMUP, ramps: RAMPS, reps: REPS, k: K, inflight: CONC, settle_ms: SETTLE, path: v.path, node_flags: NODE_FLAGS, builds },
  summary,
  trials,
}, v.out);
