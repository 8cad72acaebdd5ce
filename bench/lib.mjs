// Shared machinery for the macro benchmarks (echo.mjs, ws-echo.mjs, idle-memory.mjs, http.mjs).
//
// Model: every trial starts a fresh server process pinned to one CPU and drives it with the
// reference load generator pinned to another; all figures about the server come from /proc
// (VmRSS, utime+stime) over the server's whole process tree, so a target that forks workers
// (refserver does) is measured the same way as one that does not.
//
// Invariants:
// - every child we start is recorded in `children` and killed by pid if the harness dies;
// - nothing here writes outside bench/ (the reference tools are built in bench/.ref-build/);
// - every wait has a timeout, so a wedged server fails one trial instead of hanging the run.
//
// The process-tree sampler, the machine description and the CPU tick rate are the CLI's
// (src/cli/bench-proc.ts, loaded from dist/): one implementation for `c1m bench` and these
// scripts. Run `npm run build` first.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = path.dirname(BENCH_DIR);
export const REF_BUILD_DIR = path.join(BENCH_DIR, '.ref-build');
const REF_SOURCES = ['Makefile', 'common.h', 'loadgen.c', 'refserver.c'];
const NET_ECHO = path.join(BENCH_DIR, 'servers', 'net-echo.mjs');
const WS_ECHO = path.join(BENCH_DIR, 'servers', 'ws-echo.mjs');
const HTTP_HELLO = path.join(BENCH_DIR, 'servers', 'http-hello.mjs');
// C1M_BIN points the c1m targets at another launcher (an installed build, or a stub when testing
// the harness); the dist/ check then does not apply.
const C1M_BIN = process.env.C1M_BIN ? path.resolve(process.env.C1M_BIN) : path.join(REPO_DIR, 'bin', 'c1m.js');
const C1M_DIST = path.join(REPO_DIR, 'dist', 'index.js');
const PROC_MODULE = path.join(REPO_DIR, 'dist', 'cli', 'bench-proc.js');

/** dist/cli/bench-proc.js: /proc sampling, machine description, clock ticks (see the file comment). */
const proc = await import(pathToFileURL(PROC_MODULE).href).catch((err) => {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  process.stderr.write(`[bench] ${path.relative(process.cwd(), PROC_MODULE)} is missing: run \`npm run build\` first\n`);
  process.exit(1);
});

/**
 * The targets of each protocol family, in their default order. The last one is the plain-Node
 * baseline every c1m figure is quoted against (besides refserver where it speaks the protocol).
 */
export const TARGETS = {
  tcp: ['refserver', 'c1m-native', 'c1m-portable', 'node-net'],
  ws: ['refserver', 'c1m-native', 'c1m-portable', 'ws'],
  http: ['c1m-native', 'c1m-portable', 'node-http'],
};
/** The baseline target of a family and the suffix of its ratio keys (`_vs_node_net`, `_vs_ws`). */
export function baselineOf(family) {
  const name = TARGETS[family].at(-1);
  return { name, key: name.replace(/-/g, '_') };
}
/** Server modes (refserver's and loadgen's `-m`, plus `http`) and the family each belongs to. */
const MODE_FAMILY = { echo: 'tcp', hold: 'tcp', 'ws-echo': 'ws', 'ws-hold': 'ws', http: 'http' };
// The c1m CLI app serving each mode: a hold client never sends, so the echo apps serve hold too.
const C1M_APP = { echo: 'echo', hold: 'echo', 'ws-echo': 'ws-echo', 'ws-hold': 'ws-echo', http: 'http' };
// Above this many cores used by other processes during a trial, the trial is marked disturbed.
export const FOREIGN_WARN = 0.1;
/** Ticks per second of the CPU times in /proc (`getconf CLK_TCK`, 100 when unknown). */
export const CLK_TCK = proc.clockTicks();

/** Progress goes to stderr so that stdout carries exactly one JSON document. */
export function log(...parts) {
  process.stderr.write(`${parts.join(' ')}\n`);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/**
 * IPC request/response with a forked child: each message `{ id, ... }` is answered by one with
 * the same id. Returns `ask(msg) -> Promise<reply>`.
 */
export function rpc(child) {
  let next = 0;
  const waiting = new Map();
  child.on('message', (m) => {
    const w = waiting.get(m.id);
    if (w) {
      waiting.delete(m.id);
      w(m);
    }
  });
  return (msg) => new Promise((resolve) => {
    const id = ++next;
    waiting.set(id, resolve);
    child.send({ ...msg, id });
  });
}

export function round(x, digits = 2) {
  if (typeof x !== 'number' || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** a / b, or null when either side is missing; used for every cross-target ratio. */
export function ratio(a, b, digits = 3) {
  return typeof a === 'number' && typeof b === 'number' && b !== 0 ? round(a / b, digits) : null;
}

// ---------------------------------------------------------------- children and cleanup

const children = new Set();

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function signalChildren(sig) {
  for (const child of children) {
    try {
      process.kill(child.pid, sig);
    } catch {
      // already gone
    }
  }
}
// Last resort when the harness exits with children still running.
process.once('exit', () => signalChildren('SIGKILL'));
// Interrupted: SIGTERM first so that loadgen and refserver stop and reap their own workers,
// SIGKILL whatever is left after two seconds.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`[bench] ${sig}: stopping ${children.size} child process(es)`);
    signalChildren('SIGTERM');
    const t0 = Date.now();
    const poll = setInterval(() => {
      if (children.size === 0 || Date.now() - t0 > 2000) {
        clearInterval(poll);
        process.exit(130);
      }
    }, 50);
  });
}

// ---------------------------------------------------------------- reference tools

/**
 * Copies refserver/loadgen sources from the shared (read-only) directory into
 * bench/.ref-build/ and builds refserver and loadgen there with their own Makefile (its `all` also
 * wants the UDP and io_uring tools, which are not copied); make rebuilds only when a source changed.
 * Errors: throws with make's output when the build fails.
 */
export function ensureRefTools(srcDir = process.env.C1M_REF_SRC ?? '/work/shared/bench') {
  fs.mkdirSync(REF_BUILD_DIR, { recursive: true });
  for (const name of REF_SOURCES) {
    const from = path.join(srcDir, name);
    const to = path.join(REF_BUILD_DIR, name);
    const st = fs.statSync(from);
    let same = false;
    try {
      same = fs.readFileSync(to).equals(fs.readFileSync(from));
    } catch {
      // not copied yet
    }
    if (!same) {
      fs.rmSync(to, { force: true }); // the shared copies are read-only; so are our copies of them
      fs.copyFileSync(from, to);
      fs.chmodSync(to, 0o644);
      fs.utimesSync(to, st.atime, st.mtime);
    }
  }
  const r = spawnSync('make', ['-s', '-C', REF_BUILD_DIR, 'refserver', 'loadgen'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building reference tools failed:\n${r.stdout}${r.stderr}`);
  return { refserver: path.join(REF_BUILD_DIR, 'refserver'), loadgen: path.join(REF_BUILD_DIR, 'loadgen') };
}

/** Whether the c1m CLI can run yet (the engine is being written in parallel). */
export function c1mAvailable() {
  const needed = process.env.C1M_BIN ? [C1M_BIN] : [C1M_BIN, C1M_DIST];
  const missing = needed.filter((f) => !fs.existsSync(f));
  return missing.length === 0
    ? { ok: true }
    : { ok: false, reason: `missing ${missing.map((f) => path.relative(REPO_DIR, f)).join(', ')}` };
}

/** Whether the `ws` package (a devDependency, for the `ws` target) can be loaded. */
function wsAvailable() {
  try {
    createRequire(import.meta.url).resolve('ws');
    return { ok: true };
  } catch {
    return { ok: false, reason: 'the ws package is not installed (npm install)' };
  }
}

/**
 * Rejects names unknown to `family` (tcp, ws or http), and drops (with a warning) the targets
 * that cannot run yet: c1m ones while the CLI is not built, `ws` without its package.
 */
export function resolveTargets(list, warnings, family = 'tcp') {
  const known = TARGETS[family];
  const targets = list
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of targets) {
    if (!known.includes(t)) throw new Error(`unknown ${family} target "${t}" (known: ${known.join(', ')})`);
  }
  const c1m = c1mAvailable();
  const ws = wsAvailable();
  return targets.filter((t) => {
    const check = t.startsWith('c1m-') ? c1m : t === 'ws' ? ws : { ok: true };
    if (check.ok) return true;
    const w = `skipping ${t}: ${check.reason}${t === 'ws' ? '' : ' (build the CLI first)'}`;
    warnings.push(w);
    log(`[bench] WARNING ${w}`);
    return false;
  });
}

/** Prints `prog: msg` on stderr and exits 1: a bad option, nothing was measured. */
export function usageError(prog, msg) {
  log(`${prog}: ${msg}`);
  process.exit(1);
}

/** An integer option of at least `min`, or a usage error. */
export function intOption(prog, name, v, min = 1) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) usageError(prog, `--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

// ---------------------------------------------------------------- /proc readers

/** The pid and all its live descendants. */
export function processTree(root) {
  return proc.processTree([root]);
}

/** VmRSS and its parts (RssAnon, RssFile, RssShmem) in KiB, summed over the server's process tree. */
export function treeMemKb(pid) {
  const t = proc.sampleTree([pid]);
  return { rss_kb: t.rssKb, anon_kb: t.anonKb, file_kb: t.fileKb, shmem_kb: t.shmemKb };
}

/**
 * CPU seconds (user+system, all threads) consumed so far by the tree, including children it
 * has already reaped. Resolution is one clock tick (10 ms).
 */
export function treeCpuSeconds(pid) {
  return proc.sampleTree([pid]).cpuS;
}

/** Open file descriptors over the tree: at least one per accepted connection. */
export function treeFdCount(pid) {
  let n = 0;
  for (const p of processTree(pid)) {
    try {
      n += fs.readdirSync(`/proc/${p}/fd`).length;
    } catch {
      // process gone or not ours
    }
  }
  return n;
}

/** Whether the process has installed a handler for the signal (SigCgt), i.e. will not die of it. */
export function catchesSignal(pid, signal) {
  const num = os.constants.signals[signal];
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^SigCgt:\s+([0-9a-f]+)/m);
    return m ? ((BigInt(`0x${m[1]}`) >> BigInt(num - 1)) & 1n) === 1n : false;
  } catch {
    return false;
  }
}

/** Established TCP connections whose local port is `port` (server side only). */
export function establishedCount(port) {
  const r = spawnSync('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) return null;
  return r.stdout.split('\n').filter((l) => l.trim()).length;
}

/**
 * Connections completed by the kernel but not yet accepted by the server: the Recv-Q of its
 * listening socket(s), summed (a server may listen with SO_REUSEPORT more than once).
 */
export function acceptQueue(port) {
  const r = spawnSync('ss', ['-Hltn', `( sport = :${port} )`], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  let n = 0;
  for (const line of r.stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 2) continue;
    n += Number(Number.isNaN(Number(f[0])) ? f[1] : f[0]);
  }
  return n;
}

export function memAvailableKb() {
  return proc.meminfo().MemAvailable ?? null;
}

// ---------------------------------------------------------------- interference

/**
 * CPU used by everything else on the box. The machine may be shared (builds, tests), and a
 * benchmark on two pinned cores is only as good as those cores were free. A snapshot holds the
 * box's busy ticks (/proc/stat: everything but idle and iowait) and every process's own ticks.
 */
export function cpuSnapshot() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  const procs = new Map();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = proc.procStat(Number(e)); // null: exited while scanning
    if (st) procs.set(Number(e), { comm: st.comm, ticks: st.utime + st.stime });
  }
  return { t_ms: performance.now(), busy_ticks: user + nice + system + irq + softirq + steal, procs };
}

/**
 * Foreign CPU between two snapshots, in cores: the box's busy time minus `oursCpuS` (CPU seconds
 * of the server and loadgen over the same window). Under tick accounting, softirq work is
 * charged to the task it interrupts, so loopback traffic lands in our own figures. `top` names
 * the busiest other processes alive at both ends (short-lived ones, e.g. a compiler run, are in
 * the total but not in `top`).
 */
export function foreignCpu(a, b, { ourPids, oursCpuS }) {
  const window = (b.t_ms - a.t_ms) / 1000;
  const busy = (b.busy_ticks - a.busy_ticks) / CLK_TCK;
  const skip = new Set([process.pid, ...ourPids]);
  const top = [];
  for (const [pid, pb] of b.procs) {
    const pa = a.procs.get(pid);
    if (!pa || skip.has(pid) || pa.comm !== pb.comm) continue;
    const cpu = (pb.ticks - pa.ticks) / CLK_TCK;
    if (cpu >= 0.01) top.push({ pid, comm: pb.comm, cpu_s: round(cpu, 2) });
  }
  top.sort((x, y) => y.cpu_s - x.cpu_s);
  return {
    box_busy_cores: round(busy / window, 3),
    ours_cores: round(oursCpuS / window, 3),
    util: round(Math.max(0, busy - oursCpuS) / window, 3),
    top: top.slice(0, 3),
  };
}

// ---------------------------------------------------------------- nats-server

/**
 * Start a private `nats-server` on `host:port` (with `extra` arguments, e.g. `-js -sd DIR`) and
 * resolve once it is ready. Errors: rejects with its log when it exits first.
 */
export async function startNatsServer(host, port, extra = []) {
  const nats = spawn('nats-server', ['-a', host, '-p', String(port), ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let natsLog = '';
  nats.stderr.on('data', (d) => (natsLog += d));
  while (!/Server is ready/.test(natsLog)) {
    if (nats.exitCode !== null) throw new Error(`nats-server exited: ${natsLog}`);
    await sleep(50);
  }
  return nats;
}

// ---------------------------------------------------------------- the gateway

/**
 * Start `c1m serve gateway` (this checkout's dist) on `host:port` with `args` and resolve with
 * the child once it prints its listening line. Errors: rejects when it exits first.
 */
export async function startGatewayCli(host, port, args = []) {
  const argv = [path.join(REPO_DIR, 'dist', 'cli', 'run.js'), 'serve', 'gateway', '--host', host, '--port', String(port), ...args];
  const gw = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  gw.stdout.on('data', (d) => (out += d));
  while (!/listening/.test(out)) {
    if (gw.exitCode !== null) throw new Error(`the gateway exited (${gw.exitCode})`);
    await sleep(50);
  }
  return gw;
}

/** A WebSocket upgrade request for `target` (e.g. `/ws?topics=t`), as a raw client sends it. */
export function wsUpgradeRequest(host, target) {
  return `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
}

// ---------------------------------------------------------------- ports

/** A port the kernel just handed out as free on `host`. */
export function freePort(host) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function tryConnect(host, port, timeoutMs) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

// ---------------------------------------------------------------- servers

/**
 * How to start `target` in `mode` (echo, hold, ws-echo, ws-hold, http). `ready` says how
 * readiness is detected: a stdout line containing "listening" (Node servers) or a successful
 * connect (refserver announces itself on stderr). `gc`: the target runs a full GC on SIGUSR1.
 * `nodeFlags`: extra node options for Node targets (e.g. --max-semi-space-size=1).
 * `stats`: the target may print a JSON line {"batches":N,"events":N} on SIGUSR2 (sent only if
 * the process catches SIGUSR2).
 * Errors: throws when the target does not speak the mode's protocol.
 */
export function serverSpec(target, mode, { host, port, tools, nodeFlags = [] }) {
  const family = MODE_FAMILY[mode];
  if (!family || !TARGETS[family].includes(target)) throw new Error(`target ${target} does not serve mode ${mode}`);
  const p = String(port);
  const node = (script, ...extra) => ({
    argv: [process.execPath, '--expose-gc', ...nodeFlags, script, '--port', p, '--host', host, ...extra],
    ready: 'stdout',
    gc: true,
    stats: false,
  });
  switch (target) {
    case 'refserver':
      return { argv: [tools.refserver, '-p', p, '-a', host, '-m', mode, '-q'], ready: 'connect', gc: false, stats: false };
    case 'node-net':
      return node(NET_ECHO, '--mode', mode);
    case 'ws':
      return node(WS_ECHO);
    case 'node-http':
      return node(HTTP_HELLO);
    case 'c1m-native':
    case 'c1m-portable':
      return {
        argv: [
          process.execPath,
          '--expose-gc',
          ...nodeFlags,
          C1M_BIN,
          'serve',
          C1M_APP[mode],
          '--port',
          p,
          '--host',
          host,
          '--backend',
          target.slice('c1m-'.length),
        ],
        ready: 'stdout',
        gc: true,
        stats: target === 'c1m-native',
      };
    default:
      throw new Error(`unknown target ${target}`);
  }
}

/**
 * A running server: `pid` is the server itself (taskset execs it), stdout is read line by line
 * so that replies to SIGUSR1/SIGUSR2 can be awaited, stderr keeps a tail for diagnostics.
 */
export class Server {
  #child;
  #waiters = new Set();
  #exit = null;
  #exited;
  stdoutTail = [];
  stderrTail = [];

  constructor(target, spec, { host, port, cpu }) {
    this.target = target;
    this.spec = spec;
    this.host = host;
    this.port = port;
    this.#child = track(spawn('taskset', ['-c', String(cpu), ...spec.argv], { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.pid = this.#child.pid;
    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        for (const w of this.#waiters) w(null);
        this.#waiters.clear();
        resolve(this.#exit);
      });
    });
    readline.createInterface({ input: this.#child.stdout }).on('line', (line) => {
      keepTail(this.stdoutTail, line);
      for (const w of this.#waiters) w(line);
    });
    readline.createInterface({ input: this.#child.stderr }).on('line', (line) => keepTail(this.stderrTail, line));
  }

  get exited() {
    return this.#exit;
  }

  /** Resolves with the next stdout line satisfying `pred`, or null on timeout / exit. */
  waitLine(pred, timeoutMs) {
    if (this.#exit) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter = (line) => {
        if (line !== null && !pred(line)) return;
        clearTimeout(t);
        this.#waiters.delete(waiter);
        resolve(line);
      };
      const t = setTimeout(() => waiter(null), timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Errors: throws with the server's output tail if it exits or is not ready in time. */
  async waitReady(timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    if (this.spec.ready === 'stdout') {
      const line = await this.waitLine((l) => /\blistening\b/i.test(l), timeoutMs);
      if (line === null) throw this.#failure('did not print "listening"');
      return;
    }
    while (Date.now() < deadline) {
      if (this.#exit) break;
      if (await tryConnect(this.host, this.port, 500)) return;
      await sleep(50);
    }
    throw this.#failure('did not accept connections');
  }

  /**
   * SIGUSR2 → one JSON line with counters. Sent only if the process catches SIGUSR2 (its default
   * action would kill it). Resolves with the parsed object plus the local time, or null.
   */
  async requestStats(timeoutMs = 1000) {
    if (!this.spec.stats || this.#exit || !catchesSignal(this.pid, 'SIGUSR2')) return null;
    const reply = this.waitLine((l) => /^\s*\{.*"batches"/.test(l), timeoutMs);
    process.kill(this.pid, 'SIGUSR2');
    const line = await reply;
    if (line === null) return null;
    try {
      return { ...JSON.parse(line), t_ms: performance.now() };
    } catch {
      return null;
    }
  }

  /**
   * SIGUSR1 → full GC in Node targets; waits for a {"gc":...} acknowledgement line, or a fixed
   * pause if the server does not acknowledge. Returns the acknowledgement (null if none).
   */
  async requestGc(timeoutMs = 2000) {
    if (!this.spec.gc || this.#exit) return null;
    const reply = this.waitLine((l) => /^\s*\{.*"gc"/.test(l), timeoutMs);
    process.kill(this.pid, 'SIGUSR1');
    const line = await reply;
    await sleep(line === null ? 0 : 200); // let the allocator hand pages back after the GC
    if (line === null) return null;
    try {
      return JSON.parse(line);
    } catch {
      return { raw: line };
    }
  }

  /** Did Node open its inspector (SIGUSR1 without a handler)? That would skew memory figures. */
  get inspectorStarted() {
    return this.stderrTail.some((l) => l.includes('Debugger listening'));
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Graceful means exit code 0 (the CLI contract). */
  async stop(graceMs = 5000) {
    if (!this.#exit) {
      try {
        process.kill(this.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const t = setTimeout(() => {
        try {
          process.kill(this.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, graceMs);
      await this.#exited;
      clearTimeout(t);
    }
    const { code, signal } = this.#exit;
    return { code, signal, graceful: code === 0 };
  }

  #failure(what) {
    const how = this.#exit ? ` (exited code=${this.#exit.code} signal=${this.#exit.signal})` : '';
    const tail = [...this.stdoutTail, ...this.stderrTail].slice(-10).join('\n  ');
    return new Error(`${this.target} ${what}${how}${tail ? `\n  ${tail}` : ''}`);
  }
}

function keepTail(arr, line, n = 40) {
  arr.push(line);
  if (arr.length > n) arr.shift();
}

/**
 * Starts `target` on a fresh port, pinned to `cpu`, and waits until it is ready. `nodeFlags`
 * go to node before the script (Node targets only).
 */
export async function startServer(target, mode, { host, tools, cpu = 0, readyTimeoutMs = 15000, nodeFlags = [] }) {
  const port = await freePort(host);
  const spec = serverSpec(target, mode, { host, port, tools, nodeFlags });
  const server = new Server(target, spec, { host, port, cpu });
  try {
    await server.waitReady(readyTimeoutMs);
  } catch (err) {
    await server.stop(1000);
    throw err;
  }
  return server;
}

// ---------------------------------------------------------------- load generators

/**
 * Runs a load generator (`argv[0]` is the program) pinned to `cpu`. `onStderr(line)` and
 * `onStdout(line)` see its lines as they come. Resolves with { stdout, code, signal, stderrTail }
 * (`stdout`: every line). The run is sent SIGTERM after `timeoutMs`, SIGKILL 5 s later.
 * `stop()` sends SIGTERM.
 */
export function runClient(argv, { cpu = 1, timeoutMs, onStderr, onStdout } = {}) {
  const name = path.basename(argv[0]);
  const child = track(spawn('taskset', ['-c', String(cpu), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const stdout = [];
  const stderrTail = [];
  readline.createInterface({ input: child.stdout }).on('line', (l) => {
    stdout.push(l);
    onStdout?.(l);
  });
  readline.createInterface({ input: child.stderr }).on('line', (l) => {
    keepTail(stderrTail, l);
    onStderr?.(l);
  });
  let killer = null;
  if (timeoutMs) {
    killer = setTimeout(() => {
      log(`[bench] ${name} exceeded ${Math.round(timeoutMs / 1000)} s, stopping it`);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, timeoutMs);
  }
  const done = new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ stdout, code, signal, stderrTail });
    });
  });
  return {
    pid: child.pid,
    done,
    stop: () => child.kill('SIGTERM'),
  };
}

/**
 * Runs loadgen pinned to `cpu` (see runClient). `onStderr(line)` sees its progress lines (the
 * "connect phase done" line marks the start of traffic). Resolves with
 * { json, code, signal, stderrTail }; json is the parsed final line or null.
 * `stop()` sends SIGTERM (loadgen then prints its JSON).
 */
export function runLoadgen(tools, args, { cpu = 1, timeoutMs, onStderr } = {}) {
  const run = runClient([tools.loadgen, ...args], { cpu, timeoutMs, onStderr });
  return {
    pid: run.pid,
    done: run.done.then(({ stdout, code, signal, stderrTail }) => {
      const last = [...stdout].reverse().find((l) => l.trim().startsWith('{'));
      let json = null;
      try {
        json = last ? JSON.parse(last) : null;
      } catch {
        json = null;
      }
      return { json, code, signal, stderrTail };
    }),
    stop: run.stop,
  };
}

// ---------------------------------------------------------------- per-trial observations

/**
 * Samples the listener's accept queue from `t0` (performance.now(), when all connections are
 * open on the client side) until it is empty. Load generators count a connection as soon as the
 * kernel completes it, so a server that accepts slowly while busy (node:net accepts one
 * connection per event-loop turn) starts measuring with connections it has never served.
 * `measureAfterS`: seconds from t0 to the start of the measured window (the warm-up).
 * Recorded, not corrected.
 */
export async function watchAcceptQueue(port, t0, isFinished, measureAfterS) {
  const initial = acceptQueue(port);
  let atMeasureStart = initial;
  let drained = initial === 0 ? 0 : null;
  while (drained === null && !isFinished()) {
    await sleep(200);
    const elapsed = (performance.now() - t0) / 1000;
    const q = acceptQueue(port);
    if (elapsed <= measureAfterS) atMeasureStart = q;
    if (q === 0) drained = round(elapsed, 1);
  }
  return {
    queue_at_connect_done: initial,
    queue_at_measure_start: drained !== null && drained <= measureAfterS ? 0 : atMeasureStart,
    drained_after_s: drained,
    lagged_into_measure: drained === null || drained > measureAfterS,
  };
}

/** The progress-line note for a trial disturbed by other processes ('' when it was not). */
export function busyNote(foreign) {
  return foreign?.util > FOREIGN_WARN
    ? `  [busy box: ${foreign.util} cores used by others; top: ${foreign.top.map((p) => `${p.comm} ${p.cpu_s}s`).join(', ')}]`
    : '';
}

/** Deltas of the c1m-native counters (SIGUSR2 replies) over a window, or null. */
export function statsDelta(s0, s1) {
  if (!s0 || !s1) return null;
  const batches = s1.batches - s0.batches;
  const events = s1.events - s0.events;
  return {
    batches,
    events,
    events_per_crossing: ratio(events, batches),
    crossings_per_s: round(batches / ((s1.t_ms - s0.t_ms) / 1000), 0),
    before: s0,
    after: s1,
  };
}

// ---------------------------------------------------------------- context

/** The machine (bench-proc's description) plus this host's name and the commit measured. */
export function machineInfo() {
  const m = proc.machineInfo();
  const git = spawnSync('git', ['-C', REPO_DIR, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return {
    hostname: os.hostname(),
    kernel: m.kernel,
    cpus: m.cpus,
    cpu_model: m.cpu_model,
    mem_total_mb: Math.round(m.mem_total_kb / 1024),
    node: m.node,
    git_commit: git.status === 0 ? git.stdout.trim() : null,
  };
}

/** Writes the JSON document to stdout and, with --out, to a file. */
export function emit(doc, outFile) {
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  process.stdout.write(text);
  if (outFile) {
    fs.mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
    fs.writeFileSync(outFile, text);
    log(`[bench] wrote ${outFile}`);
  }
}
