/**
 * `c1m serve <app | handler module>`: run a built-in server, or any module `serve()` accepts,
 * until SIGTERM/SIGINT, then shut down gracefully. Argument parsing only: the public API does
 * the rest (the handler module is loaded by every reactor, in every thread or process).
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { serve, defaultBackend, nofileLimit, type ServeHandle, type ServeOptions } from '../index.js';
import { KEEPALIVE_SYNTAX, parseKeepAlive } from './keepalive-flag.js';
import { splitNodeFlags } from './node-flags.js';
import { GATEWAY_FLAGS, GATEWAY_USAGE, gatewayOptions, strayGatewayFlag } from './serve-gateway.js';

const APPS: Record<string, string> = {
  echo: new URL('../apps/echo.js', import.meta.url).href,
  'ws-echo': new URL('../apps/ws-echo.js', import.meta.url).href,
  http: new URL('../apps/http-hello.js', import.meta.url).href,
  broadcast: new URL('../apps/broadcast.js', import.meta.url).href,
  'udp-echo': new URL('../apps/udp-echo.js', import.meta.url).href,
  'udp-sink': new URL('../apps/udp-sink.js', import.meta.url).href,
  gateway: new URL('../apps/gateway/index.js', import.meta.url).href,
};
/** Apps that serve UDP (their module gives a UdpHandler). */
const UDP_APPS = new Set(['udp-echo', 'udp-sink']);
/** Apps whose client speaks first (an HTTP request, a WebSocket upgrade): --defer-accept 5 by default. */
const CLIENT_FIRST_APPS = new Set(['http', 'ws-echo', 'gateway']);
const DEFAULT_DEFER_ACCEPT_S = 5;

export const SERVE_USAGE = `usage: c1m serve <${Object.keys(APPS).join('|')}|./handler.js> --port P [options]

  <app>                       a built-in server: echo, ws-echo, http (hello world), broadcast,
                              udp-echo, udp-sink (UDP; the sink counts what it receives in
                              the metrics, --metrics-port),
                              gateway (WebSocket topics with JWT auth, HTTP publish, NATS)
  ./handler.js                your handler module, as serve() takes it: it exports
                              createHandler(options) or a default Handler object; every reactor
                              (thread or process) loads it. TypeScript: point at the build output.
  --handler-options JSON      passed to createHandler (default: none)
  --deflate                   ws-echo: accept permessage-deflate offers and compress every reply
                              (what c1m bench ws-echo --deflate measures)

  --port P, -p P              port to listen on (0: any free port, printed)
  --host H                    address to bind (default 0.0.0.0)
  --threads N | --processes N worker threads behind one acceptor, or prefork processes
                              (native backend); a worker that dies is replaced
  --balance round-robin|least-connections|hash
                              hand-off policy with --threads (default round-robin)
  --backend auto|native|portable
  --idle-timeout MS           close idle connections (default 0: never)
  --backlog N                 listen(2) backlog (default 4096)
  --defer-accept S            TCP_DEFER_ACCEPT: accept a connection once its first bytes are
                              in, one wake-up for both (client-speaks-first protocols only; a
                              silent client waits ~S s). Default 5 for http, ws-echo and gateway
                              (also over TLS), 0 (off) otherwise
  --tcp-keepalive IDLE[,INTERVAL[,COUNT]]
                              TCP keep-alive on accepted connections: the kernel probes a peer
                              silent for IDLE s every INTERVAL s (default IDLE/3) and resets it
                              after COUNT unanswered probes (default 3). No process wakes for a
                              probe: the heartbeat a million connections can afford. Default off
  --high-water-mark BYTES     write() returns false past this (default 65536)
  --max-inbound BYTES         unconsumed inbound bytes per connection (default 1048576)
  --max-outbound BYTES        buffered outbound bytes per connection (default 16777216)
  --timer-resolution MS       timeout sweep period (default 250)
  --poll-interval MS          poll each reactor every MS from a timer instead of waking per
                              event: what arrives meanwhile is taken in one batch, writes go
                              out at once. For many more processes than cores (a million on
                              one box: fewer, larger wake-ups), at up to MS of latency on what
                              clients send, and an idle worker wakes 1000/MS times a second.
                              Default 0 (wake per event)
  --grace MS                  on SIGTERM/SIGINT, how long connections get to finish; what is
                              open then is reset (default 5000, plus the handler options'
                              shutdownSpread, e.g. the gateway's --shutdown-spread)
  --tls-cert FILE --tls-key FILE
                              serve TLS (PEM; every mode; http offers ALPN http/1.1); SIGHUP
                              reads both files again and reloads them in every worker
  --batch-scheduling          run every thread and worker process under SCHED_BATCH: a woken
                              worker waits for the running thread's time slice instead of
                              preempting it, so a saturated box wakes it less often for more
                              work each time (the TCP million: ~27 % faster), at up to a slice of
                              latency while every CPU is busy. Default off
  --no-compact-memory         keep V8's growing young generation and glibc's default trim policy
                              (compact memory, the default, holds idle RSS down for ~1-2 % CPU)
  --node-flags="FLAGS"        Node/V8 flags for every --processes worker, space-separated, e.g.
                              "--max-old-space-size=512 --max-opt=1"
  --metrics-port P            serve GET /metrics (Prometheus text, every worker summed) on this
                              port too (0: any free port, printed)

${GATEWAY_USAGE}`;

/** What a usage error ends with (the whole usage buries the error: it is ~100 lines). */
const USAGE_HINT = 'c1m serve --help lists every option';

/** `--grace` without a shutdown spread. */
const DEFAULT_GRACE_MS = 5000;
/** Node's longest timer, less the 2 s a prefork supervisor adds before it kills a worker: a longer `--grace` would fire at once. */
const MAX_GRACE_MS = 2 ** 31 - 1 - 2000;

/** A positive reading of a numeric flag; undefined when absent, NaN when not a number. */
const int = (s: string | undefined): number | undefined => (s === undefined ? undefined : /^\d+$/.test(s) ? Number(s) : NaN);

/** Flags that only TCP servers take (refused for the UDP apps). */
const TCP_ONLY = ['tls-cert', 'tls-key', 'idle-timeout', 'defer-accept', 'tcp-keepalive', 'backlog', 'high-water-mark', 'max-inbound', 'max-outbound'] as const;

/** Usage errors in the choice of workers and flags for `what`, or null. */
function checkModes(v: Record<string, string | boolean | undefined>, what: string): string | null {
  for (const k of ['threads', 'processes'] as const) {
    if (v[k] !== undefined && !(Number(v[k]) >= 1)) return `--${k} must be at least 1`;
  }
  if (v.threads !== undefined && v.processes !== undefined) return '--threads and --processes are two modes: choose one';
  const balance = v.balance as string;
  if (!['round-robin', 'least-connections', 'hash'].includes(balance)) return `--balance is round-robin, least-connections or hash, not ${JSON.stringify(balance)}`;
  if (balance !== 'round-robin' && v.threads === undefined) return '--balance applies to --threads (with --processes the kernel spreads connections over the workers)';
  const tcp = UDP_APPS.has(what) ? TCP_ONLY.find((k) => v[k] !== undefined) : undefined;
  if (tcp !== undefined) return `--${tcp} applies to TCP servers; ${what} is UDP`;
  return null;
}

/** The handler module for `what`: a built-in app's URL, or the path of an existing file. */
function handlerOf(what: string): { handler: string } | { error: string } {
  const app = APPS[what];
  if (app) return { handler: app };
  const path = resolve(what);
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    // reported below
  }
  if (!isFile) {
    return { error: `"${what}" is neither a built-in app (${Object.keys(APPS).join(', ')}) nor a handler module file (${path} does not exist)` };
  }
  // Node runs TypeScript itself from 22.18 / 23.6 (type stripping); before, say what to do.
  if (/\.[cm]?ts$/.test(path) && !path.endsWith('.d.ts') && !(process.features as { typescript?: unknown }).typescript) {
    return { error: `${what} is TypeScript, which this Node (${process.version}) does not run: compile it (tsc) and give c1m serve the .js it writes` };
  }
  return { handler: path };
}

/** Run `c1m serve`; resolves with the exit code once the server has shut down. */
export async function serveMain(argv: string[], out = process.stdout, err = process.stderr): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        port: { type: 'string', short: 'p' },
        host: { type: 'string', default: '0.0.0.0' },
        backend: { type: 'string', default: 'auto' },
        threads: { type: 'string' },
        processes: { type: 'string' },
        balance: { type: 'string', default: 'round-robin' },
        'idle-timeout': { type: 'string' },
        backlog: { type: 'string' },
        'defer-accept': { type: 'string' },
        'tcp-keepalive': { type: 'string' },
        'high-water-mark': { type: 'string' },
        'max-inbound': { type: 'string' },
        'max-outbound': { type: 'string' },
        'timer-resolution': { type: 'string' },
        'poll-interval': { type: 'string' },
        'handler-options': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        deflate: { type: 'boolean', default: false },
        'no-compact-memory': { type: 'boolean', default: false },
        'batch-scheduling': { type: 'boolean', default: false },
        'node-flags': { type: 'string' },
        grace: { type: 'string' },
        'metrics-port': { type: 'string' },
        ...GATEWAY_FLAGS,
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    err.write(`c1m serve: ${(e as Error).message}\n${USAGE_HINT}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    out.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  const what = positionals[0];
  if (!what || positionals.length > 1) {
    err.write(`c1m serve: ${what ? `one app or module, got ${positionals.length}` : 'which server? name an app or a handler module'}\n${USAGE_HINT}\n`);
    return 2;
  }
  const port = int(v.port);
  if (port === undefined || Number.isNaN(port)) {
    err.write(`c1m serve: a numeric --port is required\n${USAGE_HINT}\n`);
    return 2;
  }
  const numeric: [string, number | undefined][] = [
    ['threads', int(v.threads)], ['processes', int(v.processes)], ['idle-timeout', int(v['idle-timeout'])],
    ['backlog', int(v.backlog)], ['defer-accept', int(v['defer-accept'])], ['high-water-mark', int(v['high-water-mark'])], ['max-inbound', int(v['max-inbound'])],
    ['max-outbound', int(v['max-outbound'])], ['timer-resolution', int(v['timer-resolution'])], ['grace', int(v.grace)],
    ['poll-interval', int(v['poll-interval'])],
    ['metrics-port', int(v['metrics-port'])],
  ];
  const notNumber = numeric.find(([, n]) => Number.isNaN(n));
  if (notNumber) {
    err.write(`c1m serve: --${notNumber[0]} must be a non-negative integer\n`);
    return 2;
  }
  const keepAlive = v['tcp-keepalive'] === undefined ? undefined : parseKeepAlive(v['tcp-keepalive']);
  if (keepAlive === null) {
    err.write(`c1m serve: ${KEEPALIVE_SYNTAX}\n`);
    return 2;
  }
  const nodeFlags = v['node-flags'] === undefined ? undefined : splitNodeFlags(v['node-flags']);
  const execArgv = nodeFlags?.flags;
  if (nodeFlags !== undefined && (v.processes === undefined || nodeFlags.bad !== undefined)) {
    err.write(`c1m serve: --node-flags takes --flag words and applies to --processes workers\n`);
    return 2;
  }
  const target = handlerOf(what);
  if ('error' in target) {
    err.write(`c1m serve: ${target.error}\n${USAGE_HINT}\n`);
    return 2;
  }
  const usage = checkModes(v, what);
  if (usage !== null) {
    err.write(`c1m serve: ${usage}\n`);
    return 2;
  }
  let handlerOptions: unknown;
  if (v['handler-options'] !== undefined) {
    try {
      handlerOptions = JSON.parse(v['handler-options']);
    } catch (e) {
      err.write(`c1m serve: --handler-options is not JSON: ${(e as Error).message}\n`);
      return 2;
    }
  }
  if (v.deflate) {
    if (what !== 'ws-echo') {
      err.write(`c1m serve: --deflate applies to the ws-echo app only (a handler module sets perMessageDeflate itself)\n`);
      return 2;
    }
    handlerOptions = { ...(handlerOptions as object | undefined), perMessageDeflate: { threshold: 0 } };
  }
  if (what === 'gateway') {
    const g = gatewayOptions(v, int(v.processes) ?? int(v.threads) ?? 1);
    if ('error' in g) {
      err.write(`c1m serve gateway: ${g.error}\n`);
      return 2;
    }
    handlerOptions = { ...g.options, ...(handlerOptions as object | undefined) };
  } else {
    const stray = strayGatewayFlag(v);
    if (stray !== undefined) {
      err.write(`c1m serve: --${stray} applies to the gateway app only\n`);
      return 2;
    }
  }
  // A handler that spreads its shutdown's closes (WebSocket servers, the gateway) needs them done
  // before the engine resets what is left.
  const spread = (handlerOptions as { shutdownSpread?: unknown } | undefined)?.shutdownSpread;
  const spreadMs = typeof spread === 'number' && spread > 0 ? spread : 0;
  const grace = int(v.grace) ?? DEFAULT_GRACE_MS + spreadMs;
  if (grace > MAX_GRACE_MS) {
    err.write(`c1m serve: --grace ${grace} is past the longest timer (${MAX_GRACE_MS} ms)\n`);
    return 2;
  }
  if (spreadMs > 0 && grace <= spreadMs) {
    err.write(`c1m serve: --grace ${grace} must be longer than the shutdown spread (${spreadMs} ms): the connections still waiting for their turn would be reset\n`);
    return 2;
  }
  if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) {
    err.write(`c1m serve: --tls-cert and --tls-key go together\n${USAGE_HINT}\n`);
    return 2;
  }
  let tls: ServeOptions['tls'];
  const readTls = (): ServeOptions['tls'] => v['tls-cert'] === undefined ? undefined : {
    cert: readFileSync(v['tls-cert']), key: readFileSync(v['tls-key']!), ...(what === 'http' ? { alpn: ['http/1.1'] } : {}),
  };
  try {
    tls = readTls();
  } catch (e) {
    err.write(`c1m serve: ${(e as Error).message}\n`);
    return 2;
  }
  const backend = v.backend as 'auto' | 'native' | 'portable';
  const options: ServeOptions = {
    handler: target.handler,
    handlerOptions,
    port,
    host: v.host!,
    backend,
    threads: int(v.threads),
    processes: int(v.processes),
    balance: v.balance as 'round-robin',
    idleTimeout: int(v['idle-timeout']),
    backlog: int(v.backlog),
    deferAccept: int(v['defer-accept']) ?? (CLIENT_FIRST_APPS.has(what) ? DEFAULT_DEFER_ACCEPT_S : 0),
    ...(keepAlive !== undefined ? { tcpKeepAlive: keepAlive } : {}),
    highWaterMark: int(v['high-water-mark']),
    maxInboundBytes: int(v['max-inbound']),
    maxOutboundBytes: int(v['max-outbound']),
    timerResolution: int(v['timer-resolution']),
    pollInterval: int(v['poll-interval']),
    compactMemory: !v['no-compact-memory'],
    ...(v['batch-scheduling'] ? { batchScheduling: true } : {}),
    ...(execArgv !== undefined ? { execArgv } : {}),
    // socket buffers as udpref's (4 MiB, doubled by the kernel): 64 flows x 16 in flight overflow the default
    ...(UDP_APPS.has(what) ? { udp: { recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 } } : {}),
    metricsPort: int(v['metrics-port']),
    ...(tls ? { tls } : {}),
  };
  let handle: ServeHandle;
  try {
    handle = await serve(options);
  } catch (e) {
    err.write(`c1m serve: ${(e as Error).message}\n`);
    return 1;
  }
  const used = backend === 'auto' ? defaultBackend() : backend;
  const limit = nofileLimit();
  const perProcess = Number.isFinite(limit.connections) ? `, up to ~${limit.connections} connections per process (RLIMIT_NOFILE ${limit.soft})` : '';
  out.write(`c1m: ${what} listening on ${tls ? 'TLS ' : ''}${handle.address.host}:${handle.address.port} (backend ${used}, mode ${handle.mode}, pid ${process.pid}${perProcess})\n`);
  if (handle.metricsAddress) out.write(`c1m: metrics on http://${handle.metricsAddress.host}:${handle.metricsAddress.port}/metrics\n`);
  const admin = what === 'gateway' ? (handlerOptions as { adminPort?: number; adminHost?: string }) : undefined;
  if (admin?.adminPort !== undefined) out.write(`c1m: gateway admin (publish, metrics, dashboard) on http://${admin.adminHost ?? '127.0.0.1'}:${admin.adminPort}/\n`);
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      err.write(`c1m: ${sig}: shutting down gracefully\n`);
      handle.close(grace).then(() => resolveExit(0), (e: Error) => {
        err.write(`c1m: shutdown failed: ${e.message}\n`);
        resolveExit(1);
      });
    };
    // For benchmarks: SIGUSR2 prints the reactor's counters as one JSON line; SIGUSR1 runs a
    // full GC first when node was started with --expose-gc (idle-memory measurements).
    process.on('SIGUSR2', () => out.write(`${JSON.stringify(handle.stats() ?? {})}\n`));
    process.on('SIGUSR1', () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      // A full GC: `gc()` without options (on Node 20 `gc({ type: 'major', ... })` only scavenges).
      gc?.(); // (prefork workers also trim malloc here with compactMemory: engine/worker.ts)
      const m = process.memoryUsage();
      out.write(`${JSON.stringify({ gc: gc !== undefined, rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
    });
    // A certificate renewed on disk: new connections on every worker get it, open ones keep theirs.
    if (tls) {
      process.on('SIGHUP', () => {
        if (stopping) return;
        Promise.resolve().then(() => handle.setTls(readTls()!)).then(
          () => out.write('c1m: SIGHUP: TLS certificate reloaded\n'),
          (e: Error) => err.write(`c1m: SIGHUP: TLS reload failed, the old certificate stays: ${e.message}\n`),
        );
      });
    }
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
