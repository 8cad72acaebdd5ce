/**
 * Shared pieces of `c1m bench` and `c1m bench million`: usage errors and number parsing, the
 * layout of N connections over worker processes and loopback source addresses, and the worker
 * configs of a layout.
 */
import { isIP } from 'node:net';
import type { WorkerConfig } from './bench-ipc.js';
import { CONNECTIONS_PER_SOURCE_ADDRESS } from './doctor.js';

/** A command-line mistake: reported with the usage, exit 2. */
export class UsageError extends Error {}

/** `--name` as an integer in [min, max]; undefined when absent. */
export function int(name: string, s: string | undefined, min: number, max: number): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${s}"`);
  }
  return Number(s);
}

/** `--name` as seconds in [min, 86400]; `fallback` when absent. */
export function seconds(name: string, s: string | undefined, min: number, fallback: number): number {
  if (s === undefined) return fallback;
  if (!/^\d+(\.\d+)?$/.test(s) || Number(s) < min || Number(s) > 86_400) {
    throw new UsageError(`--${name} must be a number of seconds from ${min} to 86400, got "${s}"`);
  }
  return Number(s);
}

/** How connections are laid out. */
export interface BenchPlan {
  /** Connections per worker process. */
  perProcess: number[];
  /** Source addresses (empty: the kernel picks). */
  sources: string[];
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopback(ip: string): boolean {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return ip === '::1' || ip === '0:0:0:0:0:0:0:1';
}

/** The K loopback source addresses 127.0.0.2, 127.0.0.3, ... (past .255 the count carries on into 127.0.1.x). */
export function sourceAddresses(k: number): string[] {
  const base = (127 << 24) + 2;
  return Array.from({ length: k }, (_, j) => {
    const a = base + j;
    return `${127}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
  });
}

/**
 * Lay out N connections: processes (auto: as few as the per-process connection limit allows),
 * split as evenly as possible, and source addresses (auto: one per 10,000 connections).
 * `perProcessLimit` is `nofileLimit().connections`; `ipv4Loopback` false disables source
 * addresses (non-loopback or IPv6 targets: the kernel picks).
 */
export function planRun(connections: number, processes: number | 'auto', sourceIps: number | 'auto', perProcessLimit: number, ipv4Loopback: boolean): BenchPlan {
  if (!(perProcessLimit >= 1)) throw new UsageError(`the open-file limit leaves no room for connections (run c1m doctor)`);
  const p = processes === 'auto' ? Math.ceil(connections / perProcessLimit) : processes;
  if (p > connections) throw new UsageError(`--processes ${p} is more than the ${connections} connections`);
  if (Math.ceil(connections / p) > perProcessLimit) {
    throw new UsageError(`${connections} connections over ${p} process(es) is ${Math.ceil(connections / p)} per process; ` +
      `the open-file limit allows ${perProcessLimit} (use --processes auto, or raise it: c1m doctor -c ${connections})`);
  }
  if (p > 1024) throw new UsageError(`${connections} connections need ${p} processes at ${perProcessLimit} per process; at most 1024 (raise the open-file limit: c1m doctor)`);
  const perProcess = Array.from({ length: p }, (_, i) => Math.floor(connections / p) + (i < connections % p ? 1 : 0));
  let sources: string[] = [];
  if (ipv4Loopback) {
    sources = sourceAddresses(sourceIps === 'auto' ? Math.ceil(connections / CONNECTIONS_PER_SOURCE_ADDRESS) : sourceIps);
  } else if (sourceIps !== 'auto') {
    throw new UsageError('--source-ips applies to IPv4 loopback targets only');
  }
  return { perProcess, sources };
}

/** Worker configs for a plan: worker i holds the global indexes [first, first + count). */
export function workerConfigs(o: Pick<WorkerConfig, 'scenario' | 'port' | 'concurrency' | 'retries' | 'size' | 'depth' | 'rate' | 'verify' | 'path' | 'deflate' | 'tls' | 'batchScheduling' | 'pollMs' | 'connectPollMs' | 'progressLatency'>, host: string, plan: BenchPlan): WorkerConfig[] {
  let first = 0;
  return plan.perProcess.map((count, worker) => {
    const config: WorkerConfig = {
      scenario: o.scenario, worker, host, port: o.port, first, count,
      sources: plan.sources, concurrency: o.concurrency, retries: o.retries,
      size: o.size, depth: o.depth, rate: o.rate, verify: o.verify, path: o.path, deflate: o.deflate, tls: o.tls ?? null,
      ...(o.batchScheduling ? { batchScheduling: true } : {}),
      ...(o.pollMs ? { pollMs: o.pollMs } : {}),
      ...(o.connectPollMs ? { connectPollMs: o.connectPollMs } : {}),
      ...(o.progressLatency === false ? { progressLatency: false } : {}),
    };
    first += count;
    return config;
  });
}

/** An integer with thousands separators: `1,000,000`. */
export const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** `c1m bench ...` as typed, quoted for a shell where needed. */
export function commandLine(argv: readonly string[]): string {
  return ['c1m', 'bench', ...argv].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}
