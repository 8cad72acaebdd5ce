/**
 * `c1m doctor`: reads the Linux limits that stop this box from holding N concurrent TCP
 * connections, says which one binds first, and gives the exact command to lift each.
 *
 * Model: the benchmark topology, both ends of every connection on this box over loopback, so
 * N connections are 2N sockets, N in the server process(es) and N in the load generator.
 * Everything is read from files under a filesystem root (default '/'), never from syscalls,
 * so tests point the pure core at fake /proc trees. RLIMIT_NOFILE comes from
 * <root>/proc/self/limits because Node has no getrlimit.
 *
 * Invariant: for every `limit` check, `ok === (binds !== null && binds >= connections)`.
 * `advice` checks shape the ramp-up or the teardown but never cap the count; they warn and
 * do not change the exit code.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkOption } from '../index.js';

/** File descriptors a process keeps for itself: stdio, listeners, epoll, eventfds, Node internals. */
export const FD_RESERVE = 500;
/** c1m bench opens at most this many connections from one source address. */
export const CONNECTIONS_PER_SOURCE_ADDRESS = 10_000;
/** Kernel memory budget per socket (socket, file, small buffers); a loopback pair is twice this. */
export const KERNEL_BYTES_PER_SOCKET = 4096;
/** Backlog worth asking for when N connect at once; larger queues buy nothing. */
export const BACKLOG_TARGET = 65_535;
/** The target when `--connections` is not given. */
export const DEFAULT_CONNECTIONS = 1_000_000;

/** One limit, what N needs from it, and how to lift it. */
export interface DoctorCheck {
  /** The sysctl key (`fs.file-max`), `RLIMIT_NOFILE` or `MemAvailable`. */
  name: string;
  /** `limit` caps concurrent connections; `advice` only shapes ramp-up or teardown. */
  kind: 'limit' | 'advice';
  /** The value in force, in `unit`; null when it could not be read or does not apply. */
  current: number | null;
  /** The value N needs, in `unit`. */
  required: number;
  /** Unit of `current` and `required`: files, ports, entries, pages, kB, sockets. */
  unit: string;
  /** True when this check does not stand between the box and N. */
  ok: boolean;
  /** The most concurrent connections this limit allows; null when it caps nothing (or is unread). */
  binds: number | null;
  /** The exact command that lifts it (run as root); null when ok or when no command can. */
  fix: string | null;
  /** The sysctl write `--apply` performs; null for non-sysctl checks and when ok. */
  sysctl: { key: string; value: string } | null;
  /** What the limit means here, with the figures behind `required`. */
  note: string;
}

/** The result of {@link diagnose}. */
export interface DoctorReport {
  /** The target N. */
  connections: number;
  /** Sockets on this box: 2N, both ends on loopback. */
  sockets: number;
  /** Source addresses c1m bench needs: ceil(N / 10,000). */
  sourceAddresses: number;
  /** Every check, limits first; RLIMIT_NOFILE leads so it is named on a tie with fs.nr_open. */
  checks: DoctorCheck[];
  /** The limit check that allows the fewest connections (first on ties); null if none was readable. */
  bindingLimit: DoctorCheck | null;
  /** What `bindingLimit` allows; null if no limit was readable. */
  maxConnections: number | null;
  /** True when every limit check is ok (advice may still warn). */
  ok: boolean;
}

/** Options for {@link diagnose}. */
export interface DiagnoseOptions {
  /** Target concurrent connections, a positive integer. */
  connections: number;
  /** Filesystem root holding `proc/`. Default '/'. */
  root?: string;
}

/** Options for {@link applyFixes}. */
export interface ApplyOptions {
  /** Filesystem root holding `proc/sys/`. Default '/'. */
  root?: string;
  /** Receives each command before it runs, failures, and the advice that cannot be applied. */
  log: (line: string) => void;
}

/** What {@link applyFixes} did. */
export interface ApplyResult {
  /** Commands whose value the kernel now holds. */
  applied: string[];
  /** Commands that failed, with why (EACCES without root, EINVAL past a kernel maximum). */
  failed: { command: string; error: string }[];
}

/** Options for {@link doctorMain}; tests use them, the CLI needs none. */
export interface DoctorMainOptions {
  /** Filesystem root holding `proc/`. Default '/'. */
  root?: string;
  /** Standard output. Default writes to process.stdout. */
  stdout?: (text: string) => void;
  /** Standard error. Default writes to process.stderr. */
  stderr?: (text: string) => void;
}

function readText(root: string, path: string): string | null {
  try {
    return readFileSync(join(root, path), 'utf8');
  } catch {
    return null;
  }
}

/** Parse a kernel count; values past 2^53 (LONG_MAX file-max, `unlimited`) clamp to MAX_SAFE_INTEGER. */
function parseCount(text: string | undefined): number | null {
  if (text === undefined) return null;
  if (text === 'unlimited') return Number.MAX_SAFE_INTEGER;
  if (!/^\d+$/.test(text)) return null;
  return Math.min(Number(text), Number.MAX_SAFE_INTEGER);
}

function readFields(root: string, path: string): (number | null)[] | null {
  const text = readText(root, path);
  if (text === null) return null;
  const fields = text.trim().split(/\s+/).map(parseCount);
  return fields.length > 0 && fields.every((f) => f !== null) ? fields : null;
}

function readSysctl(root: string, key: string): (number | null)[] | null {
  return readFields(root, sysctlPath(key));
}

function sysctlPath(key: string): string {
  return `/proc/sys/${key.replaceAll('.', '/')}`;
}

function fmt(n: number): string {
  return n >= 1e15 ? 'unlimited' : n.toLocaleString('en-US');
}

function sysctlCommand(key: string, value: string): string {
  return value.includes(' ') ? `sysctl -w ${key}="${value}"` : `sysctl -w ${key}=${value}`;
}

/** 127.0.0.1 .. the Nth address after 127.0.0.0; all of 127/8 routes to lo. */
function loopbackRange(count: number): string {
  const last = 0x7f000000 + count;
  const dotted = [24, 16, 8, 0].map((s) => (last >>> s) & 0xff).join('.');
  return count === 1 ? '127.0.0.1' : `127.0.0.1-${dotted}`;
}

interface CheckSpec {
  name: string;
  kind: 'limit' | 'advice';
  current: number | null;
  required: number;
  unit: string;
  binds: number | null;
  sysctlValue: string | null;
  fix?: string | null;
  note: string;
}

function makeCheck(n: number, s: CheckSpec): DoctorCheck {
  const ok = s.kind === 'limit'
    ? s.binds !== null && s.binds >= n
    : s.current !== null && s.current >= s.required;
  // No fix for what was not read: the value to write would be a guess.
  const fixable = !ok && s.current !== null;
  const sysctl = fixable && s.sysctlValue !== null ? { key: s.name, value: s.sysctlValue } : null;
  const fix = !fixable ? null : s.fix !== undefined ? s.fix : sysctl !== null ? sysctlCommand(sysctl.key, sysctl.value) : null;
  return { name: s.name, kind: s.kind, current: s.current, required: s.required, unit: s.unit, ok, binds: s.binds, fix, sysctl, note: s.note };
}

function unreadNote(path: string): string {
  return `could not read ${path}; not checked.`;
}

function checkNofile(n: number, root: string): DoctorCheck {
  const required = n + FD_RESERVE;
  const text = readText(root, '/proc/self/limits');
  const m = text === null ? null : /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  const soft = m === null ? null : parseCount(m[1]);
  const hard = m === null ? null : parseCount(m[2]);
  if (soft === null || hard === null) {
    return makeCheck(n, { name: 'RLIMIT_NOFILE', kind: 'limit', current: null, required, unit: 'files', binds: null, sysctlValue: null, fix: `ulimit -n ${required}`, note: unreadNote('/proc/self/limits') });
  }
  const usable = Math.max(0, hard - FD_RESERVE);
  const perSide = usable === 0 ? null : Math.ceil(n / usable);
  const processes = perSide === null ? 'no process can hold a connection' : `${fmt(perSide)} process${perSide === 1 ? '' : 'es'} per side`;
  const note = `soft ${fmt(soft)}, hard ${fmt(hard)}; c1m raises its soft limit to the hard limit itself, so only hard counts. ` +
    `A process holding one end of ${fmt(n)} connections needs ${fmt(required)} open files (${fmt(2 * n + FD_RESERVE)} if one process holds both ends); ` +
    `at hard ${fmt(hard)}, ~${fmt(usable)} are usable per process: ${processes}. ` +
    `A process cannot raise its own hard limit: run the fix as root in the shell that starts c1m (fs.nr_open first), ` +
    `or persist it with "* - nofile ${required}" and "root - nofile ${required}" in /etc/security/limits.conf, LimitNOFILE=${required} in a systemd unit, or --ulimit nofile=${required}:${required} for docker.`;
  // Without CAP_SYS_RESOURCE (a container) not even root can raise a hard limit here.
  const stuck = hard < required && !canRaiseLimits(root);
  const fix = stuck && perSide !== null
    ? `use ${fmt(perSide)} processes per side (--processes ${perSide}): this container cannot raise its hard limit (no CAP_SYS_RESOURCE); or start it with --ulimit nofile=${required}:${required}`
    : `ulimit -n ${required}`;
  return makeCheck(n, { name: 'RLIMIT_NOFILE', kind: 'limit', current: hard, required, unit: 'files', binds: usable, sysctlValue: null, fix, note });
}

/** CAP_SYS_RESOURCE: what raising a hard resource limit needs. */
const CAP_SYS_RESOURCE = 24n;

/**
 * Whether any process here (root, say) may raise a hard limit: CAP_SYS_RESOURCE in the bounding
 * set, which a container drops for good (the effective set is empty for any non-root user, who
 * can still ask root). True when it cannot tell.
 */
function canRaiseLimits(root: string): boolean {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readText(root, '/proc/self/status') ?? '');
  return m === null || ((BigInt(`0x${m[1]}`) >> CAP_SYS_RESOURCE) & 1n) === 1n;
}

function checkNrOpen(n: number, root: string): DoctorCheck {
  const required = n + FD_RESERVE;
  const v = readSysctl(root, 'fs.nr_open')?.[0] ?? null;
  const note = v === null ? unreadNote(sysctlPath('fs.nr_open'))
    : `the ceiling on any process's RLIMIT_NOFILE: ulimit -n past it fails with EPERM, even as root. Raise it before the hard limit.`;
  return makeCheck(n, { name: 'fs.nr_open', kind: 'limit', current: v, required, unit: 'files', binds: v === null ? null : Math.max(0, v - FD_RESERVE), sysctlValue: String(required), note });
}

function checkFileMax(n: number, root: string): DoctorCheck {
  const fileNr = readSysctl(root, 'fs.file-nr');
  const inUse = fileNr !== null && fileNr.length >= 2 ? Math.max(0, (fileNr[0] as number) - (fileNr[1] as number)) : 0;
  const required = 2 * n + inUse;
  const v = readSysctl(root, 'fs.file-max')?.[0] ?? null;
  const note = v === null ? unreadNote(sysctlPath('fs.file-max'))
    : `open files for the whole box: 2 x ${fmt(n)} sockets plus the ${fmt(inUse)} already open (fs.file-nr). Past it, socket() and accept() fail with ENFILE.`;
  return makeCheck(n, { name: 'fs.file-max', kind: 'limit', current: v, required, unit: 'files', binds: v === null ? null : Math.max(0, Math.floor((v - inUse) / 2)), sysctlValue: String(required), note });
}

function checkPortRange(n: number, root: string, sources: number): DoctorCheck {
  const range = readSysctl(root, 'net.ipv4.ip_local_port_range');
  const required = Math.ceil(n / sources);
  const name = 'net.ipv4.ip_local_port_range';
  if (range === null || range.length !== 2) {
    return makeCheck(n, { name, kind: 'limit', current: null, required, unit: 'ports', binds: null, sysctlValue: '1024 65535', note: unreadNote(sysctlPath(name)) });
  }
  const [lo, hi] = range as [number, number];
  const ports = Math.max(0, hi - lo + 1);
  const note = `ephemeral ports ${lo}-${hi}: each source address x server address:port pair holds at most ${fmt(ports)} connections. ` +
    `${fmt(n)} connections at <= ${fmt(CONNECTIONS_PER_SOURCE_ADDRESS)} per source address need ${fmt(sources)} source address${sources === 1 ? '' : 'es'} ` +
    `(${loopbackRange(sources)}; all of 127/8 routes to lo with no setup), so ${fmt(required)} ports each. Past it, connect() fails with EADDRNOTAVAIL.`;
  return makeCheck(n, { name, kind: 'limit', current: ports, required, unit: 'ports', binds: sources * ports, sysctlValue: '1024 65535', note });
}

function checkConntrack(n: number, root: string): DoctorCheck {
  const name = 'net.netfilter.nf_conntrack_max';
  const modules = readText(root, '/proc/modules');
  const loaded = modules !== null && /^nf_conntrack\s/m.test(modules);
  const max = readSysctl(root, name)?.[0] ?? readSysctl(root, 'net.nf_conntrack_max')?.[0] ?? null;
  if (max === null && !loaded) {
    const note = 'conntrack is not loaded, so there is no connection table to fill. A firewall rule using state/conntrack, docker or firewalld loads it: run doctor again after.';
    return { name, kind: 'limit', current: null, required: n, unit: 'entries', ok: true, binds: null, fix: null, sysctl: null, note };
  }
  const count = readSysctl(root, 'net.netfilter.nf_conntrack_count')?.[0] ?? 0;
  const required = n + count;
  const note = max === null ? `the nf_conntrack module is loaded but ${sysctlPath(name)} is unreadable; not checked.`
    : `conntrack is active: each loopback connection takes one entry (${fmt(count)} in use now), and once the table is full new connections are silently dropped ` +
      `("nf_conntrack: table full, dropping packet" in dmesg). Or exempt loopback: iptables -t raw -I PREROUTING -i lo -j NOTRACK; iptables -t raw -I OUTPUT -o lo -j NOTRACK.`;
  return makeCheck(n, { name, kind: 'limit', current: max, required, unit: 'entries', binds: max === null ? null : Math.max(0, max - count), sysctlValue: String(required), note });
}

/** The page size tcp_mem counts in, from the first mapping in smaps; 4 KiB when unreadable. */
function readPageSize(root: string): number {
  const smaps = readText(root, '/proc/self/smaps');
  const m = smaps === null ? null : /^KernelPageSize:\s+(\d+) kB/m.exec(smaps);
  return m === null ? 4096 : Number(m[1]) * 1024;
}

function checkTcpMem(n: number, root: string): DoctorCheck {
  const name = 'net.ipv4.tcp_mem';
  const pageSize = readPageSize(root);
  const pairBytes = 2 * KERNEL_BYTES_PER_SOCKET;
  const required = Math.ceil((n * pairBytes) / pageSize);
  const mem = readSysctl(root, name);
  if (mem === null || mem.length !== 3) {
    return makeCheck(n, { name, kind: 'limit', current: null, required, unit: 'pages', binds: null, sysctlValue: null, note: unreadNote(sysctlPath(name)) });
  }
  const [min, pressure, max] = mem as [number, number, number];
  // Keep min, and keep the kernel's default pressure:max ratio of 4:6.
  const value = `${min} ${Math.max(pressure, Math.ceil((required * 2) / 3))} ${required}`;
  const note = `min ${fmt(min)}, pressure ${fmt(pressure)}, max ${fmt(max)} pages of ${pageSize / 1024} KiB for all TCP sockets. ` +
    `~${KERNEL_BYTES_PER_SOCKET / 1024} KiB per socket, ${pairBytes / 1024} KiB per loopback pair: ${fmt(n)} pairs need ${fmt(required)} pages as max. ` +
    `Past max the kernel refuses socket memory ("TCP: out of memory -- consider tuning tcp_mem").`;
  return makeCheck(n, { name, kind: 'limit', current: max, required, unit: 'pages', binds: Math.floor((max * pageSize) / pairBytes), sysctlValue: value, note });
}

function checkMemAvailable(n: number, root: string): DoctorCheck {
  const pairKb = (2 * KERNEL_BYTES_PER_SOCKET) / 1024;
  const required = n * pairKb;
  const meminfo = readText(root, '/proc/meminfo');
  const m = meminfo === null ? null : /^MemAvailable:\s+(\d+) kB/m.exec(meminfo);
  const kb = m === null ? null : Number(m[1]);
  const note = kb === null ? unreadNote('/proc/meminfo (MemAvailable)')
    : `~${pairKb} KiB of kernel memory per loopback connection pair; c1m's own per-connection state comes on top. No command lifts it: stop other work or use a larger box.`;
  return makeCheck(n, { name: 'MemAvailable', kind: 'limit', current: kb, required, unit: 'kB', binds: kb === null ? null : Math.floor(kb / pairKb), sysctlValue: null, note });
}

/** `net.core.netdev_max_backlog` for N connections: N/16 as a power of two, 1,000 to 65,536. */
export function netdevBacklog(n: number): number {
  return Math.min(65_536, Math.max(1000, 2 ** Math.ceil(Math.log2(Math.max(1, n / 16)))));
}

/**
 * For a run with TCP keep-alive: a warning when `net.core.netdev_max_backlog` is below the
 * advice in `r` (probes fire in timer groups; a short backlog drops them and resets live
 * connections), undefined when it is not or cannot be read.
 */
export function keepAliveBacklogWarning(r: DoctorReport): string | undefined {
  const b = r.checks.find((c) => c.name === 'net.core.netdev_max_backlog');
  if (b === undefined || b.ok || b.current === null) return undefined;
  return `warning: net.core.netdev_max_backlog is ${fmt(b.current)}, below the ${fmt(b.required)} c1m doctor advises for ${fmt(r.connections)}: ` +
    `keep-alive probes that fire together will be dropped and live connections reset${b.fix ? ` (fix: ${b.fix})` : ''}`;
}

function checkAdvice(n: number, root: string, name: string, required: number, unit: string, meaning: string): DoctorCheck {
  const v = readSysctl(root, name)?.[0] ?? null;
  return makeCheck(n, { name, kind: 'advice', current: v, required, unit, binds: null, sysctlValue: String(required), note: v === null ? unreadNote(sysctlPath(name)) : meaning });
}

/**
 * The kernel's established-connection hash (`net.ipv4.tcp_ehash_entries`, read-only: sized at
 * boot, `thash_entries=`, or per network namespace created after `tcp_child_ehash_entries` was
 * set). Every TCP segment received finds its socket by walking one of its chains. Advised: a
 * power of two with chains of at most 2 sockets on average. A negative value is a namespace
 * that shares the boot table (its size is the absolute value).
 */
function checkEhash(n: number, root: string): DoctorCheck {
  const name = 'net.ipv4.tcp_ehash_entries';
  const sockets = 2 * n;
  const required = 2 ** Math.ceil(Math.log2(Math.max(1, n))); // sockets / required <= 2
  const text = readText(root, sysctlPath(name))?.trim();
  const current = text !== undefined && /^-?\d+$/.test(text) ? Math.abs(Number(text)) : null;
  const chains = current === null || current === 0 ? null : Math.round((10 * sockets) / current) / 10;
  return makeCheck(n, {
    name, kind: 'advice', current, required, unit: 'buckets', binds: null, sysctlValue: null,
    fix: `boot with thash_entries=${required} (or run in a network namespace created after sysctl -w net.ipv4.tcp_child_ehash_entries=${required})`,
    note: current === null ? unreadNote(sysctlPath(name)) :
      `buckets of the established-connection hash, sized at boot: ${fmt(sockets)} sockets in ${fmt(current)} make chains of ${chains} on average, and each segment received walks one to find its socket. In a one-box million's broadcast (2,000,000 sockets in 262,144 buckets) that lookup was 16-17 % of the box's CPU (perf, BENCHMARKS.md 2026-12-06 fifteenth sitting). Does not cap N.`,
  });
}

/**
 * Read every limit under `root` and work out what N concurrent loopback connections need.
 * Pure apart from reading files; missing files make a check unread, never an exception.
 *
 * **Errors**: throws `ERR_C1M_INVALID_OPTION` unless `connections` is a positive safe integer.
 */
export function diagnose(opts: DiagnoseOptions): DoctorReport {
  const n = opts.connections;
  checkOption(Number.isSafeInteger(n) && n >= 1, 'connections', 'a positive integer', n);
  const root = opts.root ?? '/';
  const sources = Math.ceil(n / CONNECTIONS_PER_SOURCE_ADDRESS);
  const backlog = Math.min(n, BACKLOG_TARGET);
  const checks = [
    checkNofile(n, root),
    checkNrOpen(n, root),
    checkFileMax(n, root),
    checkPortRange(n, root, sources),
    checkConntrack(n, root),
    checkTcpMem(n, root),
    checkMemAvailable(n, root),
    checkAdvice(n, root, 'net.core.somaxconn', backlog, 'connections',
      `caps every listen() backlog (c1m asks for 4,096 by default and gets the smaller). A full accept queue drops SYNs and clients retry after 1 s, 3 s, 7 s: it slows the ramp to N, it does not cap N.`),
    checkAdvice(n, root, 'net.ipv4.tcp_max_syn_backlog', backlog, 'connections',
      `half-open connections per listener. Past it the kernel answers with SYN cookies (net.ipv4.tcp_syncookies=1) or drops SYNs: slows the ramp, does not cap N.`),
    checkAdvice(n, root, 'net.ipv4.tcp_max_orphans', n, 'sockets',
      `closed sockets still finishing their FIN handshake. Closing all ${fmt(n)} at once orphans up to that many; past the limit the kernel resets them ("too many orphaned sockets").`),
    checkAdvice(n, root, 'net.core.netdev_max_backlog', netdevBacklog(n), 'packets',
      `packets one CPU may queue between receiving and processing them (on loopback every segment sent is received through it). Timers send in bursts: the kernel groups TCP keep-alive timers ~2 s apart (HZ 250) and fires each group at once, so the probes of every connection opened in those 2 s of a ramp leave together; past the limit they are dropped, and a connection whose probes are dropped COUNT times in a row is reset (2026-12-05: a 1,000-packet limit reset 13-20 % of 8,000 connections probed together).`),
    checkAdvice(n, root, 'net.ipv4.tcp_max_tw_buckets', n, 'sockets',
      `sockets in TIME_WAIT. Closing all ${fmt(n)} leaves up to that many; past the limit they are dropped early ("time wait bucket table overflow"), which is harmless but noisy. TIME_WAIT ports are reused on loopback (net.ipv4.tcp_tw_reuse=2, the default).`),
    checkEhash(n, root),
  ];
  let bindingLimit: DoctorCheck | null = null;
  for (const c of checks) {
    if (c.kind === 'limit' && c.binds !== null && (bindingLimit === null || c.binds < (bindingLimit.binds as number))) bindingLimit = c;
  }
  return {
    connections: n,
    sockets: 2 * n,
    sourceAddresses: sources,
    checks,
    bindingLimit,
    maxConnections: bindingLimit === null ? null : bindingLimit.binds,
    ok: checks.every((c) => c.kind !== 'limit' || c.ok),
  };
}

function status(c: DoctorCheck): string {
  if (c.ok) return 'ok';
  if (c.current === null) return '??';
  return c.kind === 'limit' ? 'LOW' : 'warn';
}

function pad(cells: string[][]): string[] {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  return cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

/**
 * Human text: one row per check (status, current, needed, connections allowed), the limit
 * that binds first marked, each check's note and fix, then every fix in the order to run it.
 */
export function formatReport(r: DoctorReport): string {
  const out: string[] = [];
  out.push(`c1m doctor: ${fmt(r.connections)} concurrent connections, both ends on this box (${fmt(r.sockets)} sockets, ${fmt(r.sourceAddresses)} source address${r.sourceAddresses === 1 ? '' : 'es'})`);
  out.push('');
  const rows = [['', 'CHECK', 'CURRENT', 'NEEDED', 'ALLOWS', '']];
  for (const c of r.checks) {
    rows.push([
      status(c),
      c.name,
      c.current === null ? '-' : `${fmt(c.current)} ${c.unit}`,
      `${fmt(c.required)} ${c.unit}`,
      c.binds === null ? '-' : fmt(c.binds),
      c === r.bindingLimit ? '<== binds first' : '',
    ]);
  }
  const lines = pad(rows);
  out.push(`  ${lines[0]}`);
  r.checks.forEach((c, i) => {
    out.push(`${c === r.bindingLimit ? '>' : ' '} ${lines[i + 1]}`);
    out.push(`      ${c.note}`);
    if (c.fix !== null) out.push(`      fix: ${c.fix}`);
  });
  out.push('');
  const b = r.bindingLimit;
  if (r.ok && b !== null) {
    out.push(`OK: every limit allows ${fmt(r.connections)} connections; the first to bind is ${b.name} at ${fmt(b.binds as number)}.`);
  } else if (b !== null && (b.binds as number) < r.connections) {
    out.push(`LOW: ${b.name} binds first: it allows ${fmt(b.binds as number)} of ${fmt(r.connections)} connections.`);
  }
  const unread = r.checks.filter((c) => c.kind === 'limit' && !c.ok && c.current === null).map((c) => c.name);
  if (unread.length > 0) out.push(`Not checked (unreadable): ${unread.join(', ')}.`);
  const warn = r.checks.filter((c) => c.kind === 'advice' && !c.ok).map((c) => c.name);
  if (warn.length > 0) out.push(`Advice (does not cap N): ${warn.join(', ')}.`);
  const sysctls = r.checks.filter((c) => c.sysctl !== null);
  const others = r.checks.filter((c) => c.sysctl === null && c.fix !== null);
  if (sysctls.length + others.length > 0) {
    out.push('');
    out.push(sysctls.length > 0 ? 'Fixes, in order (as root; `c1m doctor --apply` runs the sysctl ones):' : 'Fixes, in order:');
    for (const c of [...sysctls, ...others]) out.push(`  ${c.fix}`);
  }
  if (sysctls.length > 0) {
    out.push('To keep the sysctls across reboots, put these lines in /etc/sysctl.d/99-c1m.conf:');
    for (const c of sysctls) out.push(`  ${c.sysctl!.key} = ${c.sysctl!.value}`);
  }
  return `${out.join('\n')}\n`;
}

/**
 * Write every sysctl the report found too low to <root>/proc/sys, logging each command first,
 * then read it back (the kernel may refuse or clamp a value). RLIMIT_NOFILE is only logged as
 * advice: a process cannot raise its own hard limit, and a shell's ulimit cannot be set from here.
 *
 * **Errors**: never throws; failed writes are returned in `failed`.
 */
export function applyFixes(r: DoctorReport, opts: ApplyOptions): ApplyResult {
  const root = opts.root ?? '/';
  const result: ApplyResult = { applied: [], failed: [] };
  for (const c of r.checks) {
    if (c.sysctl === null || c.fix === null) continue;
    const path = join(root, sysctlPath(c.sysctl.key));
    opts.log(c.fix);
    try {
      writeFileSync(path, `${c.sysctl.value}\n`);
      const now = readFileSync(path, 'utf8').trim().split(/\s+/).join(' ');
      if (now !== c.sysctl.value) throw new Error(`the kernel kept "${now}"`);
      result.applied.push(c.fix);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      opts.log(`  failed: ${error}`);
      result.failed.push({ command: c.fix, error });
    }
  }
  for (const c of r.checks) {
    if (c.name === 'RLIMIT_NOFILE' && c.fix !== null) {
      if (!c.fix.startsWith('ulimit')) opts.log(`# RLIMIT_NOFILE: ${c.fix}`);
      else opts.log(`# RLIMIT_NOFILE: a process cannot raise its own hard limit. As root, in the shell that starts c1m: ${c.fix}`);
      opts.log(`#   to persist: "* - nofile ${c.required}" and "root - nofile ${c.required}" in /etc/security/limits.conf, or LimitNOFILE=${c.required} in the systemd unit`);
    }
  }
  if (result.failed.some((f) => /EACCES|EPERM|EROFS/.test(f.error))) opts.log('# some writes were refused: run as root, outside a container that mounts /proc/sys read-only');
  return result;
}

const USAGE = `Usage: c1m doctor [--connections N] [--json] [--apply]

Reads the OS limits that stop this box from holding N concurrent TCP connections
(both ends on this box, over loopback), says which binds first, and how to lift each.

  -n, --connections N  target concurrent connections (default 1,000,000)
      --json           print the report as JSON
      --apply          write the sysctls that are too low (needs root), printing each command
  -h, --help           print this help

Exit status: 0 every limit allows N, 1 some limit binds below N, 2 usage error.
`;

function parseConnections(text: string): number | null {
  const digits = text.replace(/[_,]/g, '');
  if (!/^\d+$/.test(digits)) return null;
  const n = Number(digits);
  return Number.isSafeInteger(n) && n >= 1 ? n : null;
}

/**
 * `c1m doctor`. `argv` is the arguments after `doctor` (e.g. `process.argv.slice(3)`).
 * Returns the exit code: 0 when every limit allows N, 1 when some limit binds below N (or
 * could not be read), 2 on a usage error.
 */
export async function doctorMain(argv: string[], options: DoctorMainOptions = {}): Promise<number> {
  const stdout = options.stdout ?? ((t: string) => void process.stdout.write(t));
  const stderr = options.stderr ?? ((t: string) => void process.stderr.write(t));
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        connections: { type: 'string', short: 'n' },
        json: { type: 'boolean' },
        apply: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    stderr(`c1m doctor: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    stdout(USAGE);
    return 0;
  }
  let connections = DEFAULT_CONNECTIONS;
  if (values.connections !== undefined) {
    const n = parseConnections(values.connections);
    if (n === null) {
      stderr(`c1m doctor: --connections must be a positive integer, got "${values.connections}"\n\n${USAGE}`);
      return 2;
    }
    connections = n;
  }
  const root = options.root ?? '/';
  let report = diagnose({ connections, root });
  let applied: ApplyResult | undefined;
  if (values.apply === true) {
    const log = values.json === true ? (line: string) => stderr(`${line}\n`) : (line: string) => stdout(`${line}\n`);
    applied = applyFixes(report, { root, log });
    if (values.json !== true) stdout('\n');
    report = diagnose({ connections, root });
  }
  if (values.json === true) {
    stdout(`${JSON.stringify(applied === undefined ? report : { ...report, apply: applied }, null, 2)}\n`);
  } else {
    stdout(formatReport(report));
  }
  return report.ok ? 0 : 1;
}
