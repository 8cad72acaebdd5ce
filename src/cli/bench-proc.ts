/**
 * What `c1m bench` and the macro benchmarks (`bench/*.mjs`, through `dist/cli/bench-proc.js`)
 * read from the system and the processes they start: /proc sampling of a server's process tree
 * (RSS and its parts, CPU), kernel memory and socket counts, the machine description for
 * results, and starting a server command in its own process group. This is the one
 * implementation of each: the benchmark scripts import it rather than keep their own.
 *
 * Invariant: a spawned server is a process group of its own (`detached`), so stopping it
 * signals the whole group (prefork workers included) and the terminal's Ctrl-C does not
 * reach it behind `c1m bench`'s back. This module imports only Node built-ins, so the scripts
 * under bench/ can load it from dist/ without the rest of the CLI.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';

const EXIT_TIMEOUT_MS = 10_000;
/**
 * How long a spawned server may take to print its "listening" line. A hang guard, not a
 * measure: `c1m serve --processes 53` starts 53 Node processes, and on a slow 2-vCPU host whose
 * kernel is still freeing the previous run's million sockets that took more than 15 s
 * (2026-12-06, twice).
 */
const SERVER_LISTEN_TIMEOUT_MS = 120_000;
/** USER_HZ when `getconf CLK_TCK` cannot tell: the value every Linux architecture exports. */
const CLK_TCK_FALLBACK = 100;

let clkTck: number | undefined;

/**
 * The unit of the CPU times in /proc/<pid>/stat and /proc/stat, in ticks per second (USER_HZ):
 * `getconf CLK_TCK`, read once; 100 when getconf is missing or prints no positive integer.
 * The kernel fixes USER_HZ at 100 in its ABI on every architecture Linux ships today, so the
 * fallback is exact there; reading it keeps a figure honest on a kernel that would differ.
 */
export function clockTicks(): number {
  if (clkTck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = r.status === 0 ? Number(r.stdout.trim()) : NaN;
    clkTck = Number.isInteger(n) && n > 0 ? n : CLK_TCK_FALLBACK;
  }
  return clkTck;
}

/** The fields of /proc/<pid>/stat the samplers use; CPU times in clock ticks ({@link clockTicks}). */
export interface ProcStat {
  /** The executable name (may hold spaces and parentheses). */
  comm: string;
  /** One letter: R, S, D, Z (zombie), ... */
  state: string;
  ppid: number;
  utime: number;
  stime: number;
  /** CPU of children this process has waited for. */
  cutime: number;
  cstime: number;
}

/** /proc/<pid>/stat, or null when the process is gone. */
export function procStat(pid: number): ProcStat | null {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may contain spaces and parentheses: the other fields follow the last ')'.
  const close = s.lastIndexOf(')');
  const f = s.slice(close + 2).split(' ');
  return {
    comm: s.slice(s.indexOf('(') + 1, close),
    state: f[0]!,
    ppid: Number(f[1]),
    utime: Number(f[11]),
    stime: Number(f[12]),
    cutime: Number(f[13]),
    cstime: Number(f[14]),
  };
}

/** True while /proc/<pid> exists and is not a zombie. */
export function procAlive(pid: number): boolean {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z';
}

/** The kB fields of /proc/<pid>/status (VmRSS, RssAnon, RssFile, RssShmem, ...); empty when it is gone. */
export function procStatusKb(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const m of readFileSync(`/proc/${pid}/status`, 'utf8').matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[m[1]!] = Number(m[2]);
  } catch {
    // gone
  }
  return out;
}

/**
 * The live processes rooted at `roots`: themselves and every descendant (scans /proc;
 * CONFIG_PROC_CHILDREN is not assumed). Zombies and gone roots are left out.
 */
export function processTree(roots: readonly number[]): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (!st) continue;
    const list = children.get(st.ppid);
    if (list) list.push(Number(name));
    else children.set(st.ppid, [Number(name)]);
  }
  const out = new Set<number>();
  const todo = [...roots];
  for (let pid = todo.pop(); pid !== undefined; pid = todo.pop()) {
    if (out.has(pid) || !procAlive(pid)) continue;
    out.add(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return [...out];
}

/** Memory and CPU of a process tree, summed over its processes. Memory in kB. */
export interface TreeSample {
  pids: number[];
  /** VmRSS summed. */
  rssKb: number;
  /** VmRSS per pid. */
  rssByPid: Map<number, number>;
  /** RssAnon summed: private anonymous memory (heap, malloc, stacks), without file-backed pages such as code. */
  anonKb: number;
  anonByPid: Map<number, number>;
  /** RssFile summed: file-backed pages (code of the executable and its libraries). */
  fileKb: number;
  /** RssShmem summed: shared memory. */
  shmemKb: number;
  /**
   * CPU seconds (user + system, all threads) consumed so far by the tree, plus the children the
   * roots have already reaped (their cutime + cstime), so a worker that exits between two
   * samples does not take its CPU with it. Resolution: one clock tick (10 ms at USER_HZ 100).
   */
  cpuS: number;
}

/** Sample the process tree under `roots` (see {@link TreeSample}). */
export function sampleTree(roots: readonly number[]): TreeSample {
  const pids = processTree(roots);
  let rssKb = 0, anonKb = 0, fileKb = 0, shmemKb = 0, ticks = 0;
  const rssByPid = new Map<number, number>(), anonByPid = new Map<number, number>();
  for (const pid of pids) {
    const m = procStatusKb(pid);
    const kb = m.VmRSS ?? 0, anon = m.RssAnon ?? 0;
    rssByPid.set(pid, kb);
    anonByPid.set(pid, anon);
    rssKb += kb;
    anonKb += anon;
    fileKb += m.RssFile ?? 0;
    shmemKb += m.RssShmem ?? 0;
    const st = procStat(pid);
    if (st) ticks += st.utime + st.stime + (roots.includes(pid) ? st.cutime + st.cstime : 0);
  }
  return { pids, rssKb, rssByPid, anonKb, anonByPid, fileKb, shmemKb, cpuS: ticks / clockTicks() };
}

/** Fields of /proc/meminfo in kB (MemAvailable, Slab, SUnreclaim, ...); empty when unreadable. */
export function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
      const m = /^(\w+(?:\(\w+\))?):\s+(\d+)/.exec(line);
      if (m) out[m[1]!] = Number(m[2]);
    }
  } catch {
    // not Linux: no figures
  }
  return out;
}

/** One sample of where CPU went: the box (/proc/stat) and two groups of processes, in clock ticks. */
export interface CpuSample {
  /** All CPU time of the box and its idle part (idle + iowait); null when /proc/stat is unreadable. */
  box: { total: number; idle: number } | null;
  server: { user: number; sys: number };
  clients: { user: number; sys: number };
}

/** The box's CPU ticks now (first line of /proc/stat), or null when unreadable. */
function boxTicks(): CpuSample['box'] {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user and nice)
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return Number.isFinite(total) && f.length >= 5 ? { total, idle: f[3]! + f[4]! } : null;
  } catch {
    return null;
  }
}

/** User and system CPU clock ticks of `pids` now (processes gone meanwhile count nothing). */
export const ticksOf = (pids: readonly number[]): { user: number; sys: number } => {
  let user = 0, sys = 0;
  for (const pid of pids) {
    const st = procStat(pid);
    if (st) {
      user += st.utime;
      sys += st.stime;
    }
  }
  return { user, sys };
};

/** Sample the box and the `server` and `clients` processes (gone ones count nothing). */
export function cpuSample(server: readonly number[], clients: readonly number[]): CpuSample {
  return { box: boxTicks(), server: ticksOf(server), clients: ticksOf(clients) };
}

/** What the CPU did between two samples, per connection added: is a phase CPU-bound, and whose CPU. */
export interface CpuPhase {
  /** Fraction of the box's CPU time not idle (0..1); null without /proc/stat. */
  box_busy: number | null;
  /** The box's CPU seconds (all cores). */
  box_cpu_s: number | null;
  server_user_s: number;
  server_sys_s: number;
  client_user_s: number;
  client_sys_s: number;
  /** (server + client CPU) / connections, microseconds; null for no connection. */
  us_per_conn: number | null;
}

/** The CPU of the phase between samples `a` and `b` in which `conns` connections were made. */
export function cpuPhase(a: CpuSample, b: CpuSample, conns: number, ticks = clockTicks()): CpuPhase {
  const s = (x: number): number => Math.round((x / ticks) * 100) / 100;
  const total = a.box && b.box ? b.box.total - a.box.total : 0;
  const server = { user: b.server.user - a.server.user, sys: b.server.sys - a.server.sys };
  const clients = { user: b.clients.user - a.clients.user, sys: b.clients.sys - a.clients.sys };
  const ours = server.user + server.sys + clients.user + clients.sys;
  return {
    box_busy: total > 0 ? Math.round((1 - (b.box!.idle - a.box!.idle) / total) * 1000) / 1000 : null,
    box_cpu_s: total > 0 ? s(total) : null,
    server_user_s: s(server.user), server_sys_s: s(server.sys),
    client_user_s: s(clients.user), client_sys_s: s(clients.sys),
    us_per_conn: conns > 0 ? Math.round(((ours / ticks) * 1e6 / conns) * 10) / 10 : null,
  };
}

/** The socket counts `ss -s` prints: TCP established (CurrEstab), in use, orphaned, TIME-WAIT, and TCP buffer pages. */
export interface SocketCounts {
  tcp_estab: number;
  tcp_inuse: number;
  tcp_orphan: number;
  tcp_timewait: number;
  /** Pages of TCP buffer memory (net.ipv4.tcp_mem units). */
  tcp_mem_pages: number;
  /**
   * Since boot (TcpExt): SYNs dropped because a listener's accept queue was full, and SYNs
   * retransmitted (each costs its connect at least a second); null when unreadable.
   */
  listen_overflows: number | null;
  syn_retransmits: number | null;
  /** Since boot (TcpExt TCPKeepAlive): TCP keep-alive probes sent; null when unreadable. */
  keepalive_probes: number | null;
}

/** TcpExt counters of /proc/net/netstat by name; empty when unreadable. */
function tcpExt(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    const rows = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const names = rows[0]!.split(/\s+/), values = rows[1]!.split(/\s+/);
    names.forEach((n, i) => out.set(n, Number(values[i])));
  } catch {
    // not Linux
  }
  return out;
}

/** Read /proc/net/snmp and /proc/net/sockstat (the sources of `ss -s`); null off Linux. */
export function socketCounts(): SocketCounts | null {
  try {
    const snmp = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Tcp:'));
    const names = snmp[0]!.split(/\s+/), values = snmp[1]!.split(/\s+/);
    const estab = Number(values[names.indexOf('CurrEstab')]);
    const sockstat = readFileSync('/proc/net/sockstat', 'utf8');
    const tcp = /^TCP: inuse (\d+) orphan (\d+) tw (\d+) alloc \d+ mem (\d+)/m.exec(sockstat);
    if (!tcp) return null;
    const ext = tcpExt();
    return {
      tcp_estab: estab, tcp_inuse: Number(tcp[1]), tcp_orphan: Number(tcp[2]), tcp_timewait: Number(tcp[3]), tcp_mem_pages: Number(tcp[4]),
      listen_overflows: ext.get('ListenOverflows') ?? null, syn_retransmits: ext.get('TCPSynRetrans') ?? null,
      keepalive_probes: ext.get('TCPKeepAlive') ?? null,
    };
  } catch {
    return null;
  }
}

/** The machine a result was taken on. */
export interface MachineInfo {
  cpus: number;
  cpu_model: string;
  mem_total_kb: number;
  kernel: string;
  node: string;
  /** RLIMIT_NOFILE soft limit of the process that ran the bench (after raising it to hard). */
  nofile: number | null;
}

/** Describe this machine; `nofile`: the open-file limit to record (null: not known). */
export function machineInfo(nofile: number | null = null): MachineInfo {
  const c = cpus();
  return {
    cpus: c.length,
    cpu_model: c[0]?.model.trim() || 'unknown',
    mem_total_kb: Math.round(totalmem() / 1024),
    kernel: release(),
    node: process.version,
    nofile: nofile !== null && Number.isFinite(nofile) ? nofile : null,
  };
}

/** A server started by `spawnServer`. */
export interface SpawnedServer {
  child: ChildProcess;
  pid: number;
  /** SIGTERM the process group, SIGKILL after 10 s; resolves once the leader exited. */
  stop(): Promise<void>;
  /** Synchronous last resort (process exit): SIGKILL the process group. */
  kill(): void;
}

/**
 * Start `cmd` (`sh -c 'exec CMD'`) in its own process group; resolve once a line of its output
 * says "listening". Later output goes to `err` prefixed with `server: `.
 * Errors: rejects (after stopping it) when it exits first or prints no such line within 15 s.
 */
export async function spawnServer(cmd: string, err: NodeJS.WritableStream, label = '--spawn'): Promise<SpawnedServer> {
  const child = spawn('/bin/sh', ['-c', `exec ${cmd}`], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid!, sig);
    } catch {
      // already gone
    }
  };
  const server: SpawnedServer = {
    child,
    pid: pid ?? -1,
    kill: () => signal('SIGKILL'),
    stop: async () => {
      if (alive()) {
        signal('SIGTERM');
        let t: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise<void>((r) => (t = setTimeout(r, EXIT_TIMEOUT_MS)))]);
        clearTimeout(t);
        if (alive()) {
          err.write(`c1m bench: server did not stop within ${EXIT_TIMEOUT_MS / 1000}s of SIGTERM; SIGKILL\n`);
          signal('SIGKILL');
          await exited;
        }
      }
      // The leader is gone; members of its group that outlived it (prefork workers) are not.
      signal('SIGKILL');
    },
  };
  if (pid === undefined) throw new Error(`${label}: could not start "${cmd}"`);
  const seen: string[] = [];
  let ready: (() => void) | undefined;
  const listening = new Promise<void>((r) => (ready = r));
  const onLine = (line: string): void => {
    if (ready) {
      seen.push(line);
      if (/listening/i.test(line)) {
        ready();
        ready = undefined;
      }
    } else {
      err.write(`server: ${line}\n`);
    }
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    listening.then(() => 'ok' as const),
    exited.then(() => 'exited' as const),
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), SERVER_LISTEN_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (outcome !== 'ok') {
    await server.stop();
    const tail = seen.slice(-10).map((l) => `  ${l}\n`).join('');
    throw new Error(`${label}: the server ${outcome === 'exited' ? `exited (code ${child.exitCode}, signal ${child.signalCode})` : `printed no "listening" line within ${SERVER_LISTEN_TIMEOUT_MS / 1000}s`} ` +
      `before it was ready${tail ? `; its output:\n${tail}` : ''}`);
  }
  return server;
}
