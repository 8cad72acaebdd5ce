#!/usr/bin/env node
// Idle memory per connection: server VmRSS before and after N idle `hold` connections, divided
// by N, once the count has settled and (for Node servers) after a full GC. One JSON document on
// stdout, progress on stderr.
//
//   node bench/idle-memory.mjs [--mode tcp|ws] [--targets refserver,c1m-native,c1m-portable,node-net]
//                              [--connections 19000] [--reps 1] [--srcips 4] [--no-gc] [--out FILE]
//
// --no-gc: no GC is forced anywhere (Node servers are still started with --expose-gc, unused):
// the baseline and the reading with the connections held are each the settled RSS, what a user
// of `c1m serve` sees. Without it, each reading follows three memory-reducing full GCs.
//
// --mode ws measures idle WebSocket connections: loadgen -m ws-hold upgrades every connection
// and then stays silent; the targets are refserver -m ws-hold, c1m `serve ws-echo` and the `ws`
// package (bench/servers/ws-echo.mjs), and the baseline of the ratios is `ws` instead of node:net.
//
// Settled means: the listener's accept queue is empty, `ss` shows at least as many established
// server-side connections as loadgen opened, and VmRSS has not moved by more than 0.5 % over the
// last three samples (500 ms apart). A trial that does not settle within --settle-timeout is
// still measured and reported with settled=false.
import { parseArgs } from 'node:util';
import {
  TARGETS,
  acceptQueue,
  baselineOf,
  emit,
  ensureRefTools,
  establishedCount,
  intOption,
  log,
  machineInfo,
  median,
  memAvailableKb,
  ratio,
  resolveTargets,
  round,
  runLoadgen,
  sleep,
  startServer,
  treeFdCount,
  treeMemKb,
  usageError,
} from './lib.mjs';

const fatal = (msg) => usageError('idle-memory.mjs', msg);
/** Full GCs before each memory reading of a Node server (see gcSettled). */
const GC_ROUNDS = 3;

const { values: opt } = parseArgs({
  options: {
    mode: { type: 'string', default: 'tcp' },
    targets: { type: 'string' },
    connections: { type: 'string', default: '19000' },
    reps: { type: 'string', default: '1' },
    srcips: { type: 'string', default: '4' },
    procs: { type: 'string' },
    'node-flags': { type: 'string', default: '' },
    'settle-timeout': { type: 'string', default: '60' },
    host: { type: 'string', default: '127.0.0.1' },
    'server-cpu': { type: 'string', default: '0' },
    'client-cpu': { type: 'string', default: '1' },
    out: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    'no-gc': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  log('usage: node bench/idle-memory.mjs [--mode tcp|ws] [--targets a,b] [--connections N] [--reps N] [--srcips K]');
  log('                                  [--procs F] [--node-flags "..."] [--settle-timeout S] [--out FILE] [--verbose]');
  log('                                  (see bench/README.md)');
  process.exit(0);
}
if (opt.mode !== 'tcp' && opt.mode !== 'ws') fatal(`--mode must be tcp or ws, got "${opt.mode}"`);
const ws = opt.mode === 'ws';
// The server and loadgen mode, and the baseline of the ratios.
const holdMode = ws ? 'ws-hold' : 'hold';
const baseline = baselineOf(opt.mode);

const conns = intOption('idle-memory.mjs', 'connections', opt.connections);
const reps = intOption('idle-memory.mjs', 'reps', opt.reps);
const srcips = intOption('idle-memory.mjs', 'srcips', opt.srcips);
// Each loadgen process must stay under the 20,000 open-file limit.
const procs = opt.procs ? intOption('idle-memory.mjs', 'procs', opt.procs) : Math.ceil(conns / 10000);
const settleTimeout = intOption('idle-memory.mjs', 'settle-timeout', opt['settle-timeout']);
// Extra node options for every Node target alike (c1m, ws, node:net), e.g. the fixed small
// young generation that `c1m bench million` gives its servers: --max-semi-space-size=1.
const nodeFlags = opt['node-flags'].split(/\s+/).filter(Boolean);
if (nodeFlags.some((f) => !f.startsWith('--'))) fatal(`--node-flags takes node options (--...), got "${opt['node-flags']}"`);
if (conns / procs > 19500) fatal(`--connections ${conns} over ${procs} loadgen process(es) exceeds the 20,000 fd limit each`);
if (conns > 19900) log(`[idle] WARNING ${conns} connections may exceed the server's own 20,000 fd limit`);
const host = opt.host;

const warnings = [];
let targets;
try {
  targets = resolveTargets(opt.targets ?? TARGETS[opt.mode].join(','), warnings, opt.mode);
} catch (err) {
  fatal(err.message);
}
if (targets.length === 0) fatal('no target left to run');

const tools = ensureRefTools();
const started = new Date().toISOString();
const runs = [];
for (let rep = 0; rep < reps; rep++) {
  const order = targets.map((_, i) => targets[(i + rep) % targets.length]);
  for (const target of order) {
    const run = await idleRun(target, rep);
    runs.push(run);
    log(describe(run));
  }
}
for (const r of runs) {
  if (r.inspector_started) {
    warnings.push(`${r.target}: SIGUSR1 opened the Node inspector (no SIGUSR1 handler); its memory figure includes the inspector`);
  }
}

emit(
  {
    tool: ws ? 'c1m-bench-ws-idle-memory' : 'c1m-bench-idle-memory',
    version: 1,
    started,
    finished: new Date().toISOString(),
    machine: machineInfo(),
    config: { targets, connections: conns, reps, loadgen_procs: procs, srcips, settle_timeout_s: settleTimeout, host, node_flags: nodeFlags },
    warnings,
    summary: summarize(runs),
    runs,
  },
  opt.out,
);
process.exit(runs.every((r) => r.ok) ? 0 : 2);

// ---------------------------------------------------------------- one trial

async function idleRun(target, rep) {
  const base = { rep: rep + 1, target, connections_target: conns };
  let server;
  try {
    server = await startServer(target, holdMode, { host, tools, cpu: opt['server-cpu'], nodeFlags });
  } catch (err) {
    return { ...base, ok: false, problems: [err.message] };
  }
  await sleep(500); // let a Node server finish its startup allocations before the baseline
  // Warm-up: open and close a few thousand connections once, so that code paged in by the
  // first accept bursts counts in the baseline, not per connection. Kept well below N so that
  // per-connection tables (touched only where fds are used) still count.
  const warm = runLoadgen(tools, ['-n', Math.min(conns, 2000), '-h', host, '-p', server.port, '-m', holdMode, '-f', procs, '-k', srcips, '-d', 3, '-T', 60, '-q'].map(String), { cpu: opt['client-cpu'], timeoutMs: 90_000 });
  await warm.done;
  for (let i = 0; i < 100 && establishedCount(server.port) > 0; i++) await sleep(100);
  await sleep(500);
  const before = await gcSettled(server);
  const gcBefore = before.gc;
  const mem0 = before.mem;
  const avail0 = memAvailableKb();

  let connectLine = null;
  let onConnectDone;
  const connectDone = new Promise((resolve) => {
    onConnectDone = resolve;
  });
  const hold = settleTimeout + 150; // loadgen is stopped by SIGTERM as soon as we have measured
  const args = ['-n', conns, '-h', host, '-p', server.port, '-m', holdMode, '-f', procs, '-k', srcips];
  args.push('-d', hold, '-T', 120, '-R');
  const lg = runLoadgen(tools, args.map(String), {
    cpu: opt['client-cpu'],
    timeoutMs: (hold + 150) * 1000,
    onStderr: (line) => {
      if (opt.verbose) log(`    ${line}`);
      const m = line.match(/connect phase done in ([\d.]+)s: (\d+) connections/);
      if (m) {
        connectLine = { connect_s: Number(m[1]), connected: Number(m[2]) };
        onConnectDone();
      }
    },
  });
  await Promise.race([connectDone, lg.done]);

  const problems = [];
  let settle = null;
  let mem1 = null;
  let memSettled = null;
  let gcAfter = null;
  let established = null;
  let avail1 = null;
  if (!connectLine) {
    problems.push('loadgen ended before its connect phase did');
  } else {
    settle = await waitSettled(server, connectLine.connected);
    memSettled = settle.mem;
    const after = await gcSettled(server);
    gcAfter = after.gc;
    mem1 = after.mem;
    established = establishedCount(server.port);
    avail1 = memAvailableKb();
    if (!settle.settled) problems.push(`did not settle within ${settleTimeout} s (last sample ${JSON.stringify(settle.last)})`);
    if (connectLine.connected < conns) problems.push(`loadgen connected ${connectLine.connected}/${conns}`);
  }
  lg.stop();
  const res = await lg.done;
  const diedDuringRun = server.exited;
  const inspector = server.inspectorStarted;
  const exit = await server.stop();
  const j = res.json;
  if (!j) problems.push(`loadgen printed no JSON (code=${res.code} signal=${res.signal})`);
  else if (j.closed_by_peer > 0) problems.push(`${j.closed_by_peer} connections closed by the server`);
  if (diedDuringRun) problems.push(`server exited during the run (code=${diedDuringRun.code} signal=${diedDuringRun.signal})`);
  if (!exit.graceful) problems.push(`server did not exit cleanly on SIGTERM (code=${exit.code} signal=${exit.signal})`);

  const n = established || null;
  const perConn = (before, after) => (n && after != null ? round(((after - before) * 1024) / n, 1) : null);
  return {
    ...base,
    ok: problems.length === 0,
    problems,
    port: server.port,
    connected: connectLine?.connected ?? null,
    connect_s: connectLine?.connect_s ?? null,
    established,
    settled: settle?.settled ?? false,
    settle_s: settle?.seconds ?? null,
    // VmRSS = RssAnon + RssFile + RssShmem; each before the connections, settled, after GC.
    mem_kb: { before: mem0, settled: memSettled, after_gc: mem1 },
    // The figures to quote: server RSS growth per established connection, after GC.
    bytes_per_conn: perConn(mem0.rss_kb, mem1?.rss_kb),
    anon_bytes_per_conn: perConn(mem0.anon_kb, mem1?.anon_kb),
    file_bytes_per_conn: perConn(mem0.file_kb, mem1?.file_kb),
    shmem_bytes_per_conn: perConn(mem0.shmem_kb, mem1?.shmem_kb),
    bytes_per_conn_before_gc: perConn(mem0.rss_kb, memSettled?.rss_kb),
    // Whole box (kernel socket buffers of both ends, loadgen, anything else running): context only.
    system_bytes_per_conn: avail1 != null ? perConn(avail1, avail0) : null,
    gc: { before: gcBefore, after: gcAfter },
    // --no-gc: every reading (baseline too) is the settled RSS a user sees, no GC forced.
    forced_gc: !opt['no-gc'],
    inspector_started: inspector,
    server_exit: exit,
    loadgen: j,
  };
}

/**
 * VmRSS after GC, once V8 has handed the freed pages back: GC_ROUNDS full GCs (SIGUSR1, for
 * Node servers started with --expose-gc) a second apart, then samples every 500 ms until three
 * in a row agree within 0.2 % (at most 10 s). V8 returns pages over the following second or
 * so, and young-generation resizing follows allocation: one GC and one sample read either
 * side of that, which alone moved a 19,000-connection figure by +-200 B/conn.
 */
async function gcSettled(server) {
  let gc = null;
  for (let i = 0; i < GC_ROUNDS && server.spec.gc && !opt['no-gc']; i++) {
    gc = await server.requestGc();
    await sleep(1000);
  }
  const t0 = performance.now();
  const rss = [];
  for (;;) {
    const mem = treeMemKb(server.pid);
    rss.push(mem.rss_kb);
    const stable = lastThreeAgree(rss, 0.002);
    if (stable || performance.now() - t0 > 10_000 || server.exited) return { gc, mem, settled: stable };
    await sleep(500);
  }
}

/** Do the last three samples lie within `fraction` of the largest? */
function lastThreeAgree(samples, fraction) {
  const recent = samples.slice(-3);
  return recent.length === 3 && Math.max(...recent) - Math.min(...recent) <= Math.max(...recent) * fraction;
}

async function waitSettled(server, expected) {
  const t0 = performance.now();
  const deadline = t0 + settleTimeout * 1000;
  const rss = [];
  let last = null;
  for (;;) {
    const mem = treeMemKb(server.pid);
    last = {
      accept_queue: acceptQueue(server.port),
      established: establishedCount(server.port),
      fds: treeFdCount(server.pid),
      rss_kb: mem.rss_kb,
    };
    rss.push(mem.rss_kb);
    if (opt.verbose) log(`    [settle] ${JSON.stringify(last)}`);
    const stable = lastThreeAgree(rss, 0.005);
    const seconds = round((performance.now() - t0) / 1000, 1);
    if (last.accept_queue === 0 && last.established >= expected && stable) return { settled: true, seconds, mem, last };
    if (performance.now() >= deadline || server.exited) return { settled: false, seconds, mem, last };
    await sleep(500);
  }
}

function describe(r) {
  const head = `[${ws ? 'ws-idle' : 'idle'}] rep ${r.rep} ${r.target.padEnd(12)}`;
  if (r.bytes_per_conn == null) return `${head} FAILED: ${r.problems.join('; ')}`;
  const bad = r.ok ? '' : `  PROBLEMS: ${r.problems.join('; ')}`;
  return (
    `${head} ${r.established} conns  rss ${r.mem_kb.before.rss_kb} -> ${r.mem_kb.settled.rss_kb} -> ${r.mem_kb.after_gc.rss_kb} KiB (${opt['no-gc'] ? 'settled, no forced GC' : 'after GC'})` +
    `  ${r.bytes_per_conn} B/conn (anon ${r.anon_bytes_per_conn} file ${r.file_bytes_per_conn} shmem ${r.shmem_bytes_per_conn};` +
    ` before GC ${r.bytes_per_conn_before_gc})` +
    `  settled in ${r.settle_s} s${bad}`
  );
}

// ---------------------------------------------------------------- summary

function summarize(all) {
  const per = {};
  for (const t of targets) {
    const rs = all.filter((r) => r.target === t && r.ok);
    per[t] = {
      runs: all.filter((r) => r.target === t).length,
      ok_runs: rs.length,
      bytes_per_conn: median(rs.map((r) => r.bytes_per_conn)),
      anon_bytes_per_conn: median(rs.map((r) => r.anon_bytes_per_conn)),
      file_bytes_per_conn: median(rs.map((r) => r.file_bytes_per_conn)),
      shmem_bytes_per_conn: median(rs.map((r) => r.shmem_bytes_per_conn)),
      bytes_per_conn_before_gc: median(rs.map((r) => r.bytes_per_conn_before_gc)),
      system_bytes_per_conn: median(rs.map((r) => r.system_bytes_per_conn)),
    };
  }
  for (const t of targets) {
    // Multiples of the reference: > 1 means more memory per connection than it.
    // refserver keeps no user-space state for an idle connection (its slot is untouched), so its
    // figure is ~0 and the ratio is often null: the difference in bytes is the useful number.
    per[t].vs_refserver = ratio(per[t].bytes_per_conn, per.refserver?.bytes_per_conn);
    per[t].minus_refserver =
      per.refserver?.bytes_per_conn != null && per[t].bytes_per_conn != null
        ? round(per[t].bytes_per_conn - per.refserver.bytes_per_conn, 1)
        : null;
    // The baseline is node:net (`vs_node_net`) for tcp, the ws package (`vs_ws`) for ws.
    per[t][`vs_${baseline.key}`] = ratio(per[t].bytes_per_conn, per[baseline.name]?.bytes_per_conn);
  }
  return per;
}
