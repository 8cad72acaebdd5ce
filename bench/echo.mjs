#!/usr/bin/env node
// Echo throughput, latency and server CPU per message for every target, on the standard
// workloads of /work/shared/bench/README.md. One JSON document on stdout, progress on stderr.
//
//   node bench/echo.mjs [--mode tcp|ws] [--targets refserver,c1m-native,c1m-portable,node-net]
//                       [--reps 2] [--duration 10] [--warmup 1] [--workloads 1000x64B-d1,...]
//                       [--verify] [--retries 0] [--out FILE] [--verbose]
//
// --mode ws (what bench/ws-echo.mjs runs) measures the same over WebSocket: loadgen -m ws-echo
// sends masked binary frames after an upgrade, the targets are refserver -m ws-echo, c1m
// `serve ws-echo` and the `ws` package, and the baseline of the ratios is `ws` instead of node:net.
//
// Each trial is a fresh server process pinned to CPU 0 and a loadgen pinned to CPU 1. Targets
// alternate within each repetition (the order rotates every repetition) so slow drift of the
// machine spreads over all targets instead of favouring one.
//
// CPU per message: server CPU (user+system, whole process tree) from the end of loadgen's
// connect phase to its exit, divided by the messages echoed in that window (warmup + measured,
// loadgen's msgs_all_phases). Connection setup is thus excluded; teardown of the connections
// (RST at loadgen exit) may add a few milliseconds.
import { parseArgs } from 'node:util';
import {
  FOREIGN_WARN,
  TARGETS,
  baselineOf,
  busyNote,
  emit,
  ensureRefTools,
  log,
  machineInfo,
  median,
  intOption,
  ratio,
  resolveTargets,
  round,
  cpuSnapshot,
  foreignCpu,
  processTree,
  startServer,
  runLoadgen,
  statsDelta,
  treeCpuSeconds,
  treeMemKb,
  usageError,
  watchAcceptQueue,
} from './lib.mjs';

const WORKLOADS = [
  { name: '1000x64B-d1', conns: 1000, size: 64, depth: 1 },
  { name: '1000x64B-d16', conns: 1000, size: 64, depth: 16 },
  { name: '100x4096B-d1', conns: 100, size: 4096, depth: 1 },
];

// `node bench/ws-echo.mjs` is this script with --mode ws; it names itself in errors.
const PROG = process.argv[1]?.endsWith('ws-echo.mjs') ? 'ws-echo.mjs' : 'echo.mjs';
const fatal = (msg) => usageError(PROG, msg);

const { values: opt } = parseArgs({
  options: {
    mode: { type: 'string', default: 'tcp' },
    targets: { type: 'string' },
    reps: { type: 'string', default: '2' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    workloads: { type: 'string', default: WORKLOADS.map((w) => w.name).join(',') },
    host: { type: 'string', default: '127.0.0.1' },
    'server-cpu': { type: 'string', default: '0' },
    'client-cpu': { type: 'string', default: '1' },
    verify: { type: 'boolean', default: false },
    retries: { type: 'string', default: '0' },
    out: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  log('usage: node bench/echo.mjs [--mode tcp|ws] [--targets a,b] [--reps N] [--duration S] [--warmup S]');
  log('                           [--workloads names] [--verify] [--retries N] [--out FILE] [--verbose]');
  log(`workloads: ${WORKLOADS.map((w) => w.name).join(', ')}   (see bench/README.md)`);
  process.exit(0);
}
if (opt.mode !== 'tcp' && opt.mode !== 'ws') fatal(`--mode must be tcp or ws, got "${opt.mode}"`);
const ws = opt.mode === 'ws';
// The server and loadgen mode (also the tool name and progress tag), the baseline of the ratios.
const serverMode = ws ? 'ws-echo' : 'echo';
const baseline = baselineOf(opt.mode);

const reps = intOption(PROG, 'reps', opt.reps);
const duration = intOption(PROG, 'duration', opt.duration);
const warmup = intOption(PROG, 'warmup', opt.warmup, 0);
const retries = intOption(PROG, 'retries', opt.retries, 0);
const workloads = opt.workloads.split(',').map((name) => {
  const w = WORKLOADS.find((x) => x.name === name.trim());
  if (!w) fatal(`unknown workload "${name}" (known: ${WORKLOADS.map((x) => x.name).join(', ')})`);
  return w;
});
const warnings = [];
let targets;
try {
  targets = resolveTargets(opt.targets ?? TARGETS[opt.mode].join(','), warnings, opt.mode);
} catch (err) {
  fatal(err.message);
}
if (targets.length === 0) fatal('no target left to run');

const tools = ensureRefTools();
const host = opt.host;
const started = new Date().toISOString();
const runs = [];

for (let rep = 0; rep < reps; rep++) {
  const order = targets.map((_, i) => targets[(i + rep) % targets.length]);
  for (const wl of workloads) {
    for (const target of order) {
      // On a shared box, a trial disturbed by other processes may be repeated (--retries);
      // every attempt stays in `runs`, the replaced ones marked superseded.
      for (let attempt = 1; ; attempt++) {
        const run = { ...(await echoRun(target, wl, rep)), attempt };
        runs.push(run);
        log(describe(run));
        if (!(run.foreign_cpu?.util > FOREIGN_WARN) || attempt > retries) break;
        run.superseded = true;
      }
    }
  }
}

const disturbed = runs.filter((r) => !r.superseded && r.foreign_cpu?.util > FOREIGN_WARN).length;
if (disturbed) {
  warnings.push(`${disturbed} of ${runs.filter((r) => !r.superseded).length} runs shared the CPUs with other processes (foreign_cpu.util > ${FOREIGN_WARN}); rerun on a quiet box before quoting`);
}
const lagged = runs.filter((r) => !r.superseded && r.accept?.lagged_into_measure).map((r) => `${r.target}/${r.workload}`);
if (lagged.length) {
  warnings.push(`accept queue not drained when measuring began in: ${[...new Set(lagged)].join(', ')} (see accept in each run)`);
}

const doc = {
  tool: `c1m-bench-${serverMode}`,
  version: 1,
  started,
  finished: new Date().toISOString(),
  machine: machineInfo(),
  config: {
    targets,
    reps,
    duration_s: duration,
    warmup_s: warmup,
    workloads,
    host,
    server_cpu: Number(opt['server-cpu']),
    client_cpu: Number(opt['client-cpu']),
    verify: opt.verify,
    retries,
  },
  warnings,
  summary: summarize(runs),
  runs,
};
emit(doc, opt.out);
process.exit(runs.every((r) => r.ok || r.superseded) ? 0 : 2);

// ---------------------------------------------------------------- one trial

async function echoRun(target, wl, rep) {
  const base = { rep: rep + 1, workload: wl.name, target };
  let server;
  try {
    server = await startServer(target, serverMode, { host, tools, cpu: opt['server-cpu'] });
  } catch (err) {
    return { ...base, ok: false, error: err.message };
  }
  const mem0 = treeMemKb(server.pid);
  let cpu0 = null;
  let t0 = 0;
  let stats0 = Promise.resolve(null);
  let acceptWatch = Promise.resolve(null);
  let finished = false;
  let snap0 = null;
  let ours = [];
  let lgCpu0 = 0;
  const args = ['-n', wl.conns, '-h', host, '-p', server.port, '-m', serverMode, '-s', wl.size, '-D', wl.depth];
  args.push('-d', duration, '-W', warmup, '-T', 30, '-R');
  if (opt.verify) args.push('-V');
  const lg = runLoadgen(tools, args.map(String), {
    cpu: opt['client-cpu'],
    timeoutMs: (duration + warmup + 60) * 1000,
    onStderr: (line) => {
      if (opt.verbose) log(`    ${line}`);
      if (cpu0 === null && line.includes('connect phase done')) {
        cpu0 = treeCpuSeconds(server.pid);
        t0 = performance.now();
        stats0 = server.requestStats();
        acceptWatch = watchAcceptQueue(server.port, t0, () => finished, warmup);
        ours = [...processTree(server.pid), ...processTree(lg.pid)];
        lgCpu0 = treeCpuSeconds(lg.pid);
        snap0 = cpuSnapshot();
      }
    },
  });
  const res = await lg.done;
  finished = true;
  const cpu1 = treeCpuSeconds(server.pid);
  const t1 = performance.now();
  const snap1 = cpuSnapshot();
  const mem1 = treeMemKb(server.pid);
  const s0 = await stats0;
  const s1 = await server.requestStats();
  const accept = await acceptWatch;
  const diedDuringRun = server.exited;
  const exit = await server.stop();

  const j = res.json;
  const problems = [];
  if (!j) problems.push(`loadgen printed no JSON (code=${res.code} signal=${res.signal}): ${res.stderrTail.slice(-3).join(' | ')}`);
  else {
    // Over WebSocket a connection counts once upgraded (loadgen checks the 101 and the accept key).
    if (ws ? j.upgraded < wl.conns : j.connected < wl.conns) {
      problems.push(`${ws ? 'upgraded' : 'connected'} ${ws ? j.upgraded : j.connected}/${wl.conns}`);
    }
    if (j.failed > 0) problems.push(`${j.failed} connections failed ${JSON.stringify(j.errors)}`);
    if (j.closed_by_peer > 0) problems.push(`${j.closed_by_peer} connections closed by the server`);
    if (j.aborted !== false) problems.push(`loadgen aborted: ${j.aborted}`);
    if (j.verify_errors) problems.push(`${j.verify_errors} echoed bytes differed`);
    if (!(j.msgs > 0)) problems.push('no message echoed');
  }
  if (diedDuringRun) problems.push(`server exited during the run (code=${diedDuringRun.code} signal=${diedDuringRun.signal})`);
  if (cpu0 === null) problems.push('never saw the end of the connect phase');
  if (!exit.graceful) problems.push(`server did not exit cleanly on SIGTERM (code=${exit.code} signal=${exit.signal})`);

  const windowS = cpu0 === null ? null : (t1 - t0) / 1000;
  const cpuS = cpu0 === null ? null : cpu1 - cpu0;
  // loadgen reports its workers' total CPU; what they had used by the window's start is lgCpu0.
  const lgCpuS = j ? Math.max(0, j.cpu_user_s + j.cpu_sys_s - lgCpu0) : 0;
  const foreign = snap0 ? foreignCpu(snap0, snap1, { ourPids: ours, oursCpuS: cpuS + lgCpuS }) : null;
  const windowMsgs = j?.msgs_all_phases ?? null;
  const stats = statsDelta(s0, s1);
  return {
    ...base,
    // A failed trial stays in `runs` for diagnosis but is left out of the summary medians.
    ok: problems.length === 0 && !!j,
    problems,
    port: server.port,
    msgs_per_s: j?.msgs_per_s ?? null,
    lat_us: j?.lat_us ?? null,
    server_cpu_s: round(cpuS, 3),
    server_cpu_window_s: round(windowS, 3),
    server_cpu_util: cpuS !== null && windowS ? round(cpuS / windowS, 3) : null,
    window_msgs: windowMsgs,
    cpu_us_per_msg: cpuS !== null && windowMsgs ? round((cpuS * 1e6) / windowMsgs, 3) : null,
    client_cpu_s: j ? round(j.cpu_user_s + j.cpu_sys_s, 2) : null,
    accept,
    // CPU burnt by other processes on the box during the window, in cores: above FOREIGN_WARN
    // the trial is marked disturbed (see bench/README.md).
    foreign_cpu: foreign,
    server_rss_kb: { before: mem0.rss_kb, after: mem1.rss_kb },
    stats,
    server_exit: exit,
    loadgen: j,
  };
}

function describe(r) {
  const again = r.attempt > 1 ? ` (attempt ${r.attempt})` : '';
  const head = `[${serverMode}] rep ${r.rep} ${r.workload.padEnd(13)} ${r.target.padEnd(12)}${again}`;
  if (!r.ok && r.msgs_per_s == null) return `${head} FAILED: ${r.error ?? r.problems.join('; ')}`;
  const acc = r.accept?.lagged_into_measure
    ? `  [accept queue still ${r.accept.queue_at_measure_start} when measuring began; drained after ${r.accept.drained_after_s ?? 'never'} s]`
    : '';
  const noisy = busyNote(r.foreign_cpu);
  const st = r.stats ? ` ev/crossing ${r.stats.events_per_crossing} crossings/s ${r.stats.crossings_per_s}` : '';
  const bad = r.ok ? '' : `  FAILED: ${r.problems.join('; ')}`;
  return (
    `${head} ${String(r.msgs_per_s).padStart(9)} msgs/s  p50 ${r.lat_us.p50} p99 ${r.lat_us.p99} p999 ${r.lat_us.p999} us` +
    `  cpu ${r.cpu_us_per_msg} us/msg (util ${r.server_cpu_util})${st}${acc}${noisy}${bad}`
  );
}

// ---------------------------------------------------------------- summary

function summarize(all) {
  const out = {};
  for (const wl of workloads) {
    const per = {};
    for (const t of targets) {
      const kept = all.filter((r) => r.workload === wl.name && r.target === t && !r.superseded);
      const rs = kept.filter((r) => r.ok);
      const pick = (f) => median(rs.map(f));
      per[t] = {
        runs: kept.length,
        ok_runs: rs.length,
        msgs_per_s: pick((r) => r.msgs_per_s),
        p50_us: pick((r) => r.lat_us.p50),
        p90_us: pick((r) => r.lat_us.p90),
        p99_us: pick((r) => r.lat_us.p99),
        p999_us: pick((r) => r.lat_us.p999),
        cpu_us_per_msg: pick((r) => r.cpu_us_per_msg),
        server_cpu_util: pick((r) => r.server_cpu_util),
        events_per_crossing: pick((r) => r.stats?.events_per_crossing),
        crossings_per_s: pick((r) => r.stats?.crossings_per_s),
        runs_disturbed: rs.filter((r) => r.foreign_cpu?.util > FOREIGN_WARN).length,
        runs_with_accept_lag: rs.filter((r) => r.accept?.lagged_into_measure).length,
      };
    }
    for (const t of targets) {
      const s = per[t];
      // Throughput ratios > 1 mean faster than the reference; CPU ratios > 1 mean more CPU per message.
      // The baseline is node:net (`_vs_node_net`) for tcp, the ws package (`_vs_ws`) for ws.
      const base = per[baseline.name];
      s.msgs_per_s_vs_refserver = ratio(s.msgs_per_s, per.refserver?.msgs_per_s);
      s[`msgs_per_s_vs_${baseline.key}`] = ratio(s.msgs_per_s, base?.msgs_per_s);
      s.cpu_us_per_msg_vs_refserver = ratio(s.cpu_us_per_msg, per.refserver?.cpu_us_per_msg);
      s[`cpu_us_per_msg_vs_${baseline.key}`] = ratio(s.cpu_us_per_msg, base?.cpu_us_per_msg);
    }
    out[wl.name] = per;
  }
  return out;
}
