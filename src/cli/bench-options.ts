/**
 * `c1m bench <scenario>`'s options: the usage text and one parser that checks every flag once
 * (ranges, which scenario takes which option, targets and sweeps) and returns `BenchOptions`,
 * or throws `UsageError` with the message to print. No I/O beyond checking `--pid`s exist and
 * reading the `--tls-ca` file.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { int, seconds, UsageError } from './bench-layout.js';
import { procAlive } from './bench-proc.js';
import { CONNECTIONS_PER_SOURCE_ADDRESS } from './doctor.js';
import { SWEEP_KEYS, type BenchTarget, type SweepKey } from './bench-results.js';
import type { BenchTls } from './bench-ipc.js';
import { SCENARIOS, scenario as scenarioByName, type ScenarioOption } from './scenarios/index.js';

const NAMES = SCENARIOS.map((s) => s.name);

/** `c1m bench --help`. */
export const BENCH_USAGE = `usage: c1m bench <${NAMES.join('|')}> --port P -c N [options]
       c1m bench report RESULTS.json... -o REPORT.html
       c1m bench million [--steps 100000,250000,500000,1000000] [options]   (c1m bench million --help)
       c1m bench udp --port P [--mode echo|flood] [options]                (c1m bench udp --help)
${SCENARIOS.map((s) => `  ${s.name.padEnd(10)} ${s.summary}`).join('\n')}
options:
  --host H                  server address (default 127.0.0.1; non-loopback needs --yes-non-loopback)
  -c, --connections N       connections to open and hold
  --processes auto|N        worker processes (auto: ceil(N / (open-file limit - 500)))
  --source-ips auto|K       loopback source addresses 127.0.0.2... (auto: ceil(N / ${CONNECTIONS_PER_SOURCE_ADDRESS}))
  -d, --duration S          measured seconds after the connect phase (default 10)
  --warmup S                echo, http, broadcast, ws-echo, connect: seconds of traffic before measuring (default 1)
  --size B                  echo, ws-echo: message size (default 64); broadcast: delivered line size (default 64)
  --depth D                 echo, http, ws-echo: messages (requests) in flight per connection (default 1)
  --rate R                  echo, ws-echo: R msgs/s per connection instead of --depth; broadcast: publishes/s (default 10)
  --path P                  http: request target; ws-hold, ws-echo: path of the upgrade request (default /)
  --deflate                 ws-hold, ws-echo: offer permessage-deflate (no context takeover, every
                            message compressed); the server must enable it too
                            (c1m serve ws-echo --deflate)
  --verify                  echo, ws-echo: compare every echoed byte
  --tls                     hold, echo, http, ws-hold, ws-echo, connect: over TLS (wss: for
                            WebSocket); every connect is a full handshake unless --tls-resume
  --tls-resume              offer the TLS session of an earlier connection (resumed handshakes)
  --tls-ca FILE             trusted CA certificates (PEM) instead of the system's store
  --tls-servername NAME     SNI name and the name checked in the certificate (default: --host)
  --insecure                do not verify the server's certificate (self-signed benches)
  --connect-concurrency C   connects in flight per process (default 1000)
  --connect-timeout S       end of the connect phase at the latest (default 60)
  --retries N               retries of a transient connect failure (default 3)
  --spawn "CMD"             start the server (sh -c 'exec CMD'), wait for "listening", SIGTERM it at the end
  --pid PID                 measure an existing server (repeat for several processes)
  --target NAME=CMD         a server to compare (repeat): each run spawns it as --spawn does
  --sweep KEY=V1,V2,...     one run per value (repeat for a grid): ${SWEEP_KEYS.join(', ')}
  --report FILE             also write a self-contained HTML report of the result(s)
  --json                    print the result as one JSON line (the last line of stdout)
  --yes-non-loopback        allow a target outside 127.0.0.0/8 and ::1`;

/** Validated command line. */
export interface BenchOptions {
  scenario: string;
  host: string;
  port: number;
  connections: number;
  processes: number | 'auto';
  sourceIps: number | 'auto';
  durationS: number;
  warmupS: number;
  size: number;
  depth: number;
  rate: number;
  path: string;
  /** WebSocket scenarios: offer permessage-deflate. */
  deflate: boolean;
  /** `--tls` and its companions; null: plain TCP. */
  tls: BenchTls | null;
  verify: boolean;
  concurrency: number;
  connectTimeoutS: number;
  retries: number;
  spawn: string | undefined;
  pids: number[];
  /** `--target`s in order; empty for a plain run. */
  targets: BenchTarget[];
  /** `--sweep`s in order (a grid when several). */
  sweeps: { key: SweepKey; values: number[] }[];
  report: string | undefined;
  json: boolean;
  nonLoopback: boolean;
}

/** Longest wait for messages in flight after the measured window (`drain` scenarios). */

function autoOrInt(name: string, s: string | undefined, max: number): number | 'auto' {
  return s === undefined || s === 'auto' ? 'auto' : int(name, s, 1, max)!;
}

/** Ranges of the numeric options (also applied to sweep values). */
const LIMITS: Record<SweepKey, [min: number, max: number]> = {
  connections: [1, 100_000_000],
  size: [1, 1 << 20],
  depth: [1, 4096],
  rate: [1, 1_000_000],
};

function rate(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(s) || Number(s) <= 0 || Number(s) > LIMITS.rate[1]) {
    throw new UsageError(`--rate must be a number above 0 and at most ${LIMITS.rate[1]}, got "${s}"`);
  }
  return Number(s);
}

function parseTarget(s: string): BenchTarget {
  const eq = s.indexOf('=');
  const name = s.slice(0, eq).trim(), cmd = s.slice(eq + 1).trim();
  if (eq <= 0 || !/^[\w.-]{1,40}$/.test(name) || cmd === '') {
    throw new UsageError(`--target must be NAME=CMD (NAME: letters, digits, . _ -), got "${s}"`);
  }
  return { name, cmd };
}

function parseSweep(s: string): { key: SweepKey; values: number[] } {
  const eq = s.indexOf('=');
  const key = s.slice(0, eq) as SweepKey;
  if (eq <= 0 || !SWEEP_KEYS.includes(key)) throw new UsageError(`--sweep must be KEY=V1,V2,... with KEY one of ${SWEEP_KEYS.join(', ')}, got "${s}"`);
  const values = s.slice(eq + 1).split(',').map((v) => (key === 'rate' ? rate(v.trim())! : int(`sweep ${key}`, v.trim(), ...LIMITS[key])!));
  if (values.length === 0 || new Set(values).size !== values.length) throw new UsageError(`--sweep ${key}: give distinct values, got "${s}"`);
  return { key, values };
}

/** `--tls` and its companions; null without `--tls`. Reads the `--tls-ca` file. */
function parseTls(v: { tls?: boolean; 'tls-resume'?: boolean; 'tls-ca'?: string; 'tls-servername'?: string; insecure?: boolean }, takes: boolean, users: string): BenchTls | null {
  if (!v.tls) {
    const stray = v['tls-resume'] ? '--tls-resume' : v['tls-ca'] !== undefined ? '--tls-ca' : v['tls-servername'] !== undefined ? '--tls-servername' : v.insecure ? '--insecure' : undefined;
    if (stray) throw new UsageError(`${stray} needs --tls`);
    return null;
  }
  if (!takes) throw new UsageError(`--tls applies to ${users}`);
  let ca: string | undefined;
  if (v['tls-ca'] !== undefined) {
    try {
      ca = readFileSync(v['tls-ca'], 'utf8');
    } catch (e) {
      throw new UsageError(`--tls-ca ${v['tls-ca']}: ${(e as Error).message}`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--tls-ca ${v['tls-ca']}: no PEM certificate in the file`);
  }
  const servername = v['tls-servername'];
  if (servername !== undefined && !/^[A-Za-z0-9.:*_-]{1,253}$/.test(servername)) throw new UsageError(`--tls-servername must be a host name, got "${servername}"`);
  return { resume: v['tls-resume']!, ca, servername, insecure: v.insecure! };
}

/** Parse and validate `argv` (after `bench`). Throws a usage error with the exact message. */
export function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', short: 'p' },
        connections: { type: 'string', short: 'c' },
        processes: { type: 'string' },
        'source-ips': { type: 'string' },
        duration: { type: 'string', short: 'd' },
        warmup: { type: 'string' },
        size: { type: 'string' },
        depth: { type: 'string' },
        rate: { type: 'string' },
        path: { type: 'string' },
        verify: { type: 'boolean', default: false },
        deflate: { type: 'boolean', default: false },
        tls: { type: 'boolean', default: false },
        'tls-resume': { type: 'boolean', default: false },
        'tls-ca': { type: 'string' },
        'tls-servername': { type: 'string' },
        insecure: { type: 'boolean', default: false },
        'connect-concurrency': { type: 'string' },
        'connect-timeout': { type: 'string' },
        retries: { type: 'string' },
        spawn: { type: 'string' },
        pid: { type: 'string', multiple: true },
        target: { type: 'string', multiple: true },
        sweep: { type: 'string', multiple: true },
        report: { type: 'string' },
        json: { type: 'boolean', default: false },
        'yes-non-loopback': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) return 'help';
  const name = positionals[0];
  if (name === undefined) throw new UsageError(`a scenario is required: ${NAMES.join(', ')}`);
  const spec = NAMES.includes(name) ? scenarioByName(name)! : undefined;
  if (!spec) throw new UsageError(`unknown scenario "${name}"; available: ${NAMES.join(', ')}`);
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const takes = (opt: ScenarioOption): boolean => spec.options.includes(opt);
  const users = (opt: ScenarioOption): string => {
    const names = SCENARIOS.filter((s) => s.options.includes(opt)).map((s) => s.name);
    return names.length === 1 ? `the ${names[0]} scenario only` : `the ${names.join(', ')} scenarios only`;
  };
  for (const opt of ['size', 'depth', 'rate', 'warmup', 'path'] as const) {
    if (v[opt] !== undefined && !takes(opt)) throw new UsageError(`--${opt} applies to ${users(opt)}`);
  }
  if (v.verify && !takes('verify')) throw new UsageError(`--verify applies to ${users('verify')}`);
  if (v.deflate && !takes('deflate')) throw new UsageError(`--deflate applies to ${users('deflate')}`);
  const tls = parseTls(v, takes('tls'), users('tls'));
  const sweeps = (v.sweep ?? []).map(parseSweep);
  for (const s of sweeps) {
    if (s.key !== 'connections' && !takes(s.key)) throw new UsageError(`--sweep ${s.key}: --${s.key} applies to ${users(s.key)}`);
    if (sweeps.filter((t) => t.key === s.key).length > 1) throw new UsageError(`--sweep ${s.key} given twice`);
  }
  const swept = (k: SweepKey): boolean => sweeps.some((s) => s.key === k);
  const port = int('port', v.port, 1, 65535);
  if (port === undefined) throw new UsageError('--port is required');
  const connections = int('connections', v.connections, ...LIMITS.connections) ?? (swept('connections') ? sweeps.find((s) => s.key === 'connections')!.values[0]! : undefined);
  if (connections === undefined) throw new UsageError('-c/--connections is required');
  const echoLike = takes('depth') && takes('rate');
  if (echoLike && (v.depth !== undefined || swept('depth')) && (v.rate !== undefined || swept('rate'))) throw new UsageError('--depth and --rate exclude each other');
  const size = int('size', v.size, ...LIMITS.size) ?? spec.defaults?.size ?? 64;
  const depth = int('depth', v.depth, ...LIMITS.depth) ?? 1;
  const r = rate(v.rate) ?? spec.defaults?.rate ?? 0;
  const maxSize = Math.max(size, ...(sweeps.find((s) => s.key === 'size')?.values ?? []));
  const maxDepth = Math.max(depth, ...(sweeps.find((s) => s.key === 'depth')?.values ?? []));
  if (takes('size') && takes('depth') && maxSize * maxDepth > 8 << 20) {
    throw new UsageError(`--size x --depth must be at most 8 MiB in flight per connection, got ${maxSize * maxDepth} bytes`);
  }
  const path = v.path ?? '/';
  if (!/^[\x21-\x7e]+$/.test(path) || !(path.startsWith('/') || path === '*')) throw new UsageError(`--path must be an origin-form request target (/...), got "${path}"`);
  if (spec.name.startsWith('ws-') && (path === '*' || path.includes('#'))) throw new UsageError(`--path of a WebSocket scenario must be /path[?query] (no fragment), got "${path}"`);
  const targets = (v.target ?? []).map(parseTarget);
  if (new Set(targets.map((t) => t.name)).size !== targets.length) throw new UsageError('--target names must differ');
  if (targets.length > 0 && (v.spawn !== undefined || v.pid !== undefined)) throw new UsageError('--target excludes --spawn and --pid');
  if (v.spawn !== undefined && v.pid !== undefined) throw new UsageError('--spawn and --pid exclude each other');
  if (v.spawn !== undefined && v.spawn.trim() === '') throw new UsageError('--spawn needs a command');
  const pids = (v.pid ?? []).flatMap((p) => p.split(',')).map((p) => int('pid', p.trim(), 1, 2 ** 22)!);
  for (const pid of pids) {
    if (!procAlive(pid)) throw new UsageError(`--pid ${pid}: no such process`);
  }
  if (v.report !== undefined && v.report.trim() === '') throw new UsageError('--report needs a file name');
  return {
    scenario: spec.name,
    host: v.host!,
    port,
    connections,
    processes: autoOrInt('processes', v.processes, 1024),
    sourceIps: autoOrInt('source-ips', v['source-ips'], 65_534),
    durationS: seconds('duration', v.duration, 0.1, 10),
    warmupS: takes('warmup') ? seconds('warmup', v.warmup, 0, 1) : 0,
    size, depth, rate: r, path,
    deflate: v.deflate!,
    tls,
    verify: v.verify!,
    concurrency: int('connect-concurrency', v['connect-concurrency'], 1, 1_000_000) ?? 1000,
    connectTimeoutS: seconds('connect-timeout', v['connect-timeout'], 0.1, 60),
    retries: int('retries', v.retries, 0, 20) ?? 3,
    spawn: v.spawn,
    pids,
    targets,
    sweeps,
    report: v.report,
    json: v.json!,
    nonLoopback: v['yes-non-loopback']!,
  };
}

/** Run `c1m bench`; resolves with the exit code once every child process is gone. */
