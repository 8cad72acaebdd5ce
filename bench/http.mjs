#!/usr/bin/env node
// HTTP/1.1 hello world: requests per second, latency percentiles and server CPU per request, with
// wrk as the load generator. One JSON document on stdout, progress on stderr.
//
//   node bench/http.mjs [--targets c1m-native,c1m-portable,node-http] [--reps 2] [--duration 10]
//                       [--warmup 1] [--workloads 100c,1000c,100c-p16] [--retries 0] [--out FILE]
//
// Each trial is a fresh server pinned to CPU 0 (`c1m serve http`, or bench/servers/http-hello.mjs
// for node:http: the same 115-byte response) and `wrk -t1 -c N` pinned to CPU 1. Keep-alive: every
// wrk connection carries requests for the whole run. Targets alternate within each repetition
// (the order rotating every repetition), as in echo.mjs.
//
// A trial is two wrk runs on the same server: a warm-up of --warmup seconds (JIT, first-use
// allocations; its connections are closed at its end), then the measured run. wrk has no separate
// connect phase: its N connections are opened at the start of the measured run, and their setup
// counts in the window (N handshakes against hundreds of thousands of requests).
//
// CPU per request: server CPU (user+system, whole process tree) over the measured wrk run,
// divided by the requests wrk completed in it. Latency is wrk's: per request at depth 1; with
// pipelining (-p16: 16 requests per write, the next write after all 16 responses) wrk times
// whole batches and its percentiles are broken (wg/wrk#236: its coordinated-omission correction
// adds samples below the recorded minimum), so they are left null there.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  BENCH_DIR,
  CLK_TCK,
  FOREIGN_WARN,
  TARGETS,
  acceptQueue,
  baselineOf,
  busyNote,
  cpuSnapshot,
  emit,
  foreignCpu,
  intOption,
  log,
  machineInfo,
  median,
  processTree,
  ratio,
  resolveTargets,
  round,
  runClient,
  sleep,
  startServer,
  statsDelta,
  treeCpuSeconds,
  treeMemKb,
  usageError,
} from './lib.mjs';

const PROG = 'http.mjs';
const fatal = (msg) => usageError(PROG, msg);
const WRK_SCRIPT = path.join(BENCH_DIR, 'wrk-report.lua');

const WORKLOADS = [
  { name: '100c', conns: 100, pipeline: 1 },
  { name: '1000c', conns: 1000, pipeline: 1 },
  { name: '100c-p16', conns: 100, pipeline: 16 },
];

const { values: opt } = parseArgs({
  options: {
    targets: { type: 'string', default: TARGETS.http.join(',') },
    reps: { type: 'string', default: '2' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    workloads: { type: 'string', default: WORKLOADS.map((w) => w.name).join(',') },
    threads: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '2' },
    wrk: { type: 'string', default: process.env.WRK ?? 'wrk' },
    host: { type: 'string', default: '127.0.0.1' },
    'server-cpu': { type: 'string', default: '0' },
    'client-cpu': { type: 'string', default: '1' },
    retries: { type: 'string', default: '0' },
    out: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (opt.help) {
  log('usage: node bench/http.mjs [--targets a,b] [--reps N] [--duration S] [--warmup S] [--workloads names]');
  log('                           [--threads T] [--timeout S] [--wrk PATH] [--retries N] [--out FILE] [--verbose]');
  log(`workloads: ${WORKLOADS.map((w) => w.name).join(', ')}   (see bench/README.md)`);
  process.exit(0);
}

const reps = intOption(PROG, 'reps', opt.reps);
const duration = intOption(PROG, 'duration', opt.duration);
const warmup = intOption(PROG, 'warmup', opt.warmup, 0);
const threads = intOption(PROG, 'threads', opt.threads);
const timeout = intOption(PROG, 'timeout', opt.timeout);
const retries = intOption(PROG, 'retries', opt.retries, 0);
const workloads = opt.workloads.split(',').map((name) => {
  const w = WORKLOADS.find((x) => x.name === name.trim());
  if (!w) fatal(`unknown workload "${name}" (known: ${WORKLOADS.map((x) => x.name).join(', ')})`);
  return w;
});
const wrk = findWrk(opt.wrk);
const baseline = baselineOf('http');
const warnings = [];
let targets;
try {
  targets = resolveTargets(opt.targets, warnings, 'http');
} catch (err) {
  fatal(err.message);
}
if (targets.length === 0) fatal('no target left to run');

const host = opt.host;
const started = new Date().toISOString();
const runs = [];

for (let rep = 0; rep < reps; rep++) {
  const order = targets.map((_, i) => targets[(i + rep) % targets.length]);
  for (const wl of workloads) {
    for (const target of order) {
      // As in echo.mjs: a trial disturbed by other processes may be repeated (--retries); every
      // attempt stays in `runs`, the replaced ones marked superseded.
      for (let attempt = 1; ; attempt++) {
        const run = { ...(await httpRun(target, wl, rep)), attempt };
        runs.push(run);
        log(describe(run));
        if (!(run.foreign_cpu?.util > FOREIGN_WARN) || attempt > retries) break;
        run.superseded = true;
      }
    }
  }
}

const kept = runs.filter((r) => !r.superseded);
const disturbed = kept.filter((r) => r.foreign_cpu?.util > FOREIGN_WARN).length;
if (disturbed) {
  warnings.push(`${disturbed} of ${kept.length} runs shared the CPUs with other processes (foreign_cpu.util > ${FOREIGN_WARN}); rerun on a quiet box before quoting`);
}
const sizes = new Set(kept.filter((r) => r.ok).map((r) => r.bytes_per_response));
if (sizes.size > 1) {
  warnings.push(`targets sent responses of different sizes (${[...sizes].join(', ')} bytes): see bytes_per_response`);
}

emit(
  {
    tool: 'c1m-bench-http',
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
      wrk: { path: wrk.path, version: wrk.version, threads, timeout_s: timeout },
      host,
      server_cpu: Number(opt['server-cpu']),
      client_cpu: Number(opt['client-cpu']),
      retries,
    },
    warnings,
    summary: summarize(runs),
    runs,
  },
  opt.out,
);
process.exit(runs.every((r) => r.ok || r.superseded) ? 0 : 2);

// ---------------------------------------------------------------- one trial

async function httpRun(target, wl, rep) {
  const base = { rep: rep + 1, workload: wl.name, target };
  let server;
  try {
    server = await startServer(target, 'http', { host, tools: null, cpu: opt['server-cpu'] });
  } catch (err) {
    return { ...base, ok: false, problems: [err.message] };
  }
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${server.port}/`;
  const problems = [];
  if (warmup > 0) {
    const w = await wrkRun(url, wl, warmup).done;
    if (!w.report) problems.push(`warm-up: wrk printed no report (code=${w.code} signal=${w.signal}): ${w.stderrTail.slice(-3).join(' | ')}`);
  }
  const mem0 = treeMemKb(server.pid);
  const stats0 = await server.requestStats();
  const cpu0 = treeCpuSeconds(server.pid);
  const snap0 = cpuSnapshot();
  const t0 = performance.now();
  let finished = false;
  const measured = wrkRun(url, wl, duration);
  const ours = [...processTree(server.pid), measured.pid];
  const accept = watchAccept(server.port, t0, () => finished);
  const res = await measured.done;
  finished = true;
  const cpu1 = treeCpuSeconds(server.pid);
  const t1 = performance.now();
  const snap1 = cpuSnapshot();
  const mem1 = treeMemKb(server.pid);
  const stats1 = await server.requestStats();
  const acc = await accept;
  const diedDuringRun = server.exited;
  const exit = await server.stop();

  const j = res.report;
  if (!j) problems.push(`wrk printed no report (code=${res.code} signal=${res.signal}): ${res.stderrTail.slice(-3).join(' | ')}`);
  else {
    const e = j.errors;
    if (!(j.requests > 0)) problems.push('no request completed');
    if (e.connect > 0) problems.push(`${e.connect} connect errors`);
    // read: the server closed a keep-alive connection (or reset it); write: likewise.
    if (e.read > 0 || e.write > 0) problems.push(`socket errors: read ${e.read}, write ${e.write}`);
    if (e.status > 0) problems.push(`${e.status} responses with a status >= 400`);
  }
  if (diedDuringRun) problems.push(`server exited during the run (code=${diedDuringRun.code} signal=${diedDuringRun.signal})`);
  if (!exit.graceful) problems.push(`server did not exit cleanly on SIGTERM (code=${exit.code} signal=${exit.signal})`);

  const windowS = (t1 - t0) / 1000;
  const cpuS = cpu1 - cpu0;
  const wrkCpuS = j && j.cpu_ticks >= 0 ? j.cpu_ticks / CLK_TCK /* wrk-report.lua reads them from /proc/self/stat */ : 0;
  const foreign = foreignCpu(snap0, snap1, { ourPids: ours, oursCpuS: cpuS + wrkCpuS });
  const durationS = j ? j.duration_us / 1e6 : null;
  return {
    ...base,
    // A failed trial stays in `runs` for diagnosis but is left out of the summary medians.
    ok: problems.length === 0 && !!j,
    problems,
    port: server.port,
    requests: j?.requests ?? null,
    duration_s: round(durationS, 3),
    requests_per_s: j && durationS ? round(j.requests / durationS, 0) : null,
    // wrk's latency in µs; null percentiles when pipelining (see the header of this file).
    lat_us: j ? latencyOf(j, wl) : null,
    bytes_per_response: j?.requests ? round(j.bytes / j.requests, 1) : null,
    timeouts: j?.errors.timeout ?? null,
    server_cpu_s: round(cpuS, 3),
    server_cpu_window_s: round(windowS, 3),
    server_cpu_util: windowS ? round(cpuS / windowS, 3) : null,
    cpu_us_per_req: j?.requests ? round((cpuS * 1e6) / j.requests, 3) : null,
    client_cpu_s: j ? round(wrkCpuS, 2) : null,
    accept: acc,
    // CPU burnt by other processes on the box during the window, in cores: above FOREIGN_WARN
    // the trial is marked disturbed (see bench/README.md).
    foreign_cpu: foreign,
    server_rss_kb: { before: mem0.rss_kb, after: mem1.rss_kb },
    stats: statsDelta(stats0, stats1),
    server_exit: exit,
    wrk: j,
  };
}

/**
 * One wrk run pinned to the client CPU. Resolves with { report, code, signal, stderrTail,
 * text }: `report` is the JSON line of wrk-report.lua (null if missing), `text` wrk's own output.
 */
function wrkRun(url, wl, seconds) {
  const argv = [wrk.path, '-t', threads, '-c', wl.conns, '-d', `${seconds}s`, '--timeout', `${timeout}s`, '--latency'];
  argv.push('-s', WRK_SCRIPT, url, '--', wl.pipeline);
  const run = runClient(argv.map(String), {
    cpu: opt['client-cpu'],
    timeoutMs: (seconds + timeout + 30) * 1000,
    onStdout: opt.verbose ? (line) => log(`    ${line}`) : undefined,
    onStderr: opt.verbose ? (line) => log(`    ${line}`) : undefined,
  });
  return {
    pid: run.pid,
    done: run.done.then(({ stdout, code, signal, stderrTail }) => {
      const line = stdout.find((l) => l.startsWith('c1m-wrk '));
      let report = null;
      try {
        report = line ? JSON.parse(line.slice('c1m-wrk '.length)) : null;
      } catch {
        report = null;
      }
      return { report, code, signal, stderrTail, text: stdout.filter((l) => !l.startsWith('c1m-wrk ')) };
    }),
  };
}

function latencyOf(j, wl) {
  const l = j.lat_us;
  if (wl.pipeline > 1) return { per: 'batch', mean: null, p50: null, p75: null, p90: null, p99: null, p999: null, max: l.max };
  return { per: 'request', mean: l.mean, stdev: l.stdev, p50: l.p50, p75: l.p75, p90: l.p90, p99: l.p99, p999: l.p999, max: l.max };
}

/**
 * The listener's accept queue, sampled every 200 ms over the run: wrk opens its N connections
 * at the start of the measured run, and a server that accepts slowly while busy serves some of
 * them late. Recorded, not corrected.
 */
async function watchAccept(port, t0, isFinished) {
  let max = 0;
  let lastNonEmpty = null;
  while (!isFinished()) {
    const q = acceptQueue(port) ?? 0;
    if (q > 0) {
      max = Math.max(max, q);
      lastNonEmpty = round((performance.now() - t0) / 1000, 1);
    }
    await sleep(200);
  }
  return { max_queue: max, last_nonempty_s: lastNonEmpty };
}

function describe(r) {
  const again = r.attempt > 1 ? ` (attempt ${r.attempt})` : '';
  const head = `[http] rep ${r.rep} ${r.workload.padEnd(9)} ${r.target.padEnd(12)}${again}`;
  if (r.requests_per_s == null) return `${head} FAILED: ${r.problems.join('; ')}`;
  const lat = r.lat_us.p50 == null ? `max ${r.lat_us.max}` : `p50 ${r.lat_us.p50} p99 ${r.lat_us.p99} p999 ${r.lat_us.p999}`;
  const st = r.stats ? ` ev/crossing ${r.stats.events_per_crossing} crossings/s ${r.stats.crossings_per_s}` : '';
  const acc = r.accept?.max_queue > 0 ? `  [accept queue up to ${r.accept.max_queue}, last seen at ${r.accept.last_nonempty_s} s]` : '';
  const to = r.timeouts ? `  [${r.timeouts} wrk timeouts]` : '';
  const bad = r.ok ? '' : `  FAILED: ${r.problems.join('; ')}`;
  return (
    `${head} ${String(r.requests_per_s).padStart(8)} req/s  ${lat} us  ${r.bytes_per_response} B/resp` +
    `  cpu ${r.cpu_us_per_req} us/req (util ${r.server_cpu_util})${st}${acc}${to}${busyNote(r.foreign_cpu)}${bad}`
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
        requests_per_s: pick((r) => r.requests_per_s),
        p50_us: pick((r) => r.lat_us.p50),
        p90_us: pick((r) => r.lat_us.p90),
        p99_us: pick((r) => r.lat_us.p99),
        p999_us: pick((r) => r.lat_us.p999),
        cpu_us_per_req: pick((r) => r.cpu_us_per_req),
        server_cpu_util: pick((r) => r.server_cpu_util),
        bytes_per_response: pick((r) => r.bytes_per_response),
        events_per_crossing: pick((r) => r.stats?.events_per_crossing),
        crossings_per_s: pick((r) => r.stats?.crossings_per_s),
        timeouts: pick((r) => r.timeouts),
        runs_disturbed: rs.filter((r) => r.foreign_cpu?.util > FOREIGN_WARN).length,
      };
    }
    for (const t of targets) {
      // Throughput ratio > 1: faster than node:http; CPU ratio > 1: more CPU per request.
      const s = per[t];
      const b = per[baseline.name];
      s[`requests_per_s_vs_${baseline.key}`] = ratio(s.requests_per_s, b?.requests_per_s);
      s[`cpu_us_per_req_vs_${baseline.key}`] = ratio(s.cpu_us_per_req, b?.cpu_us_per_req);
    }
    out[wl.name] = per;
  }
  return out;
}

// ---------------------------------------------------------------- wrk

/** The wrk binary (PATH lookup unless a path is given) and its version line, or a usage error. */
function findWrk(name) {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '').split(':').map((d) => path.join(d, name));
  const found = candidates.find((f) => {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found) fatal(`wrk not found (${name}); install it (apt-get install wrk) or pass --wrk PATH`);
  if (!fs.existsSync(WRK_SCRIPT)) fatal(`missing ${WRK_SCRIPT}`);
  return { path: found, version: wrkVersion(found) };
}

function wrkVersion(file) {
  // `wrk -v` prints its version line (then its usage) and exits 1.
  const r = spawnSync(file, ['-v'], { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0].trim() || null;
}
