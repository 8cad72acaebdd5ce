/**
 * Servers: one reactor (`listen`), or several cores (`serve`) in one of two explicit modes:
 *
 * - threads (threads.ts): one process; a main-thread acceptor hands each accepted fd (fds are
 *   process-wide) to a sub-reactor on a worker thread, inside native code, balanced
 *   round-robin, by least connections, or by a hash of the peer address. Native backend only.
 * - processes (prefork.ts): N processes, each a full engine with its own SO_REUSEPORT
 *   listener, under a supervisor that restarts a crashed worker while the others keep their
 *   connections. Each process has its own open-file limit, which is how one box passes
 *   ~20,000 per process.
 *
 * In both modes the handler is a module that every reactor loads: it exports
 * `createHandler(options)` or a default Handler object.
 *
 * TLS works in every mode (threads: one context shared through the hand-off; processes: one
 * context per worker from the same options), with one set of session ticket keys per server,
 * and `ServeHandle.setTls` reloads the certificate in every reactor.
 */
import { loadBinding, raiseNofile } from '../core/binding.js';
import { C1mError, checkOption, systemError } from '../core/errors.js';
import { resolveListen, resolveOptions, resolveTlsServer, TICKET_KEYS_BYTES } from '../core/options.js';
import { randomBytes } from 'node:crypto';
import type { EngineOptions, Handler, ListenAddress, Reactor, ServerOptions, TlsServerOptions } from '../core/types.js';
import { applyCompactMemory, trimServerProcess } from './memory.js';
import { gather } from './gather.js';
import { METRICS_KEY, metricsRegistry, startMetricsServer, trackReactor, untrackReactor } from './metrics.js';
import { servePrefork } from './prefork.js';
import { serveUdp } from './udp.js';
import { createReactor } from './reactor.js';
import type { ModeHandle, ServeHandle, ServeOptions } from './serve-types.js';
import { serveThreads } from './threads.js';
import { loadHandler, toModuleUrl } from './workers.js';

export type { ServeHandle, ServeOptions, WorkerExitInfo } from './serve-types.js';

/** A single-reactor server. */
export interface Server {
  readonly reactor: Reactor;
  readonly address: ListenAddress;
  /** Graceful shutdown; see `Reactor.close`. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Listen on one reactor in this thread.
 * Errors: rejects with a system error (`EADDRINUSE`, ...) when the socket cannot be bound.
 */
export async function listen(handler: Handler, options: ServerOptions): Promise<Server> {
  const reactor = createReactor(handler, options);
  try {
    const address = await reactor.listen({ port: options.port, host: options.host, backlog: options.backlog, reusePort: options.reusePort, deferAccept: options.deferAccept, tcpKeepAlive: options.tcpKeepAlive, ...(options.tls ? { tls: options.tls } : {}) });
    return { reactor, address, close: (t?: number) => reactor.close(t) };
  } catch (err) {
    await reactor.close(0);
    throw err;
  }
}

/**
 * The process's open-file limit after raising soft to hard (c1m does this at start), and how
 * many connections that allows in one process (a few fds stay reserved for the runtime).
 */
export function nofileLimit(): { soft: number; hard: number; connections: number } {
  const b = loadBinding();
  let soft = Infinity, hard = Infinity;
  if (b) [soft, hard] = raiseNofile(b);
  return { soft, hard, connections: Number.isFinite(soft) ? Math.max(0, soft - 500) : Infinity };
}

/**
 * Run every thread of this process under Linux's `SCHED_BATCH` policy (`on`), or back under the
 * default `SCHED_OTHER`; nice values are kept, no privilege is needed. A batch thread that wakes
 * does not preempt the thread running on its CPU: it waits for that thread's time slice to end
 * (a few ms). When the box is saturated, a server under `SCHED_BATCH` is woken less often and
 * takes more connections per wake-up, so its per-wake-up cost (Node's event loop, the JS
 * crossing, cold caches) is paid fewer times: the TCP million's ramp in BENCHMARKS.md runs
 * about a quarter faster with it. The price is latency while every CPU is busy: a woken
 * thread waits up to a slice. On a box with idle CPUs it changes nothing.
 *
 * Process-wide and for the process's life: threads and processes started afterwards (worker
 * threads, prefork workers, `child_process`) inherit the policy. `serve({ batchScheduling:
 * true })` calls it before starting any worker. Returns the number of threads switched.
 * Errors: `ERR_C1M_INVALID_OPTION` unless a boolean; `ERR_C1M_NATIVE_UNAVAILABLE` without the
 * native addon (not Linux); a system error (`EPERM`) when a seccomp or security policy
 * forbids the change.
 */
export function setBatchScheduling(on: boolean): number {
  checkOption(typeof on === 'boolean', 'on', 'a boolean', on);
  const b = loadBinding();
  if (!b) throw new C1mError('ERR_C1M_NATIVE_UNAVAILABLE', 'setBatchScheduling needs the native addon (Linux)');
  const n = b.schedBatch(on);
  if (n < 0) throw systemError(n, 'sched_setscheduler');
  return n;
}

function engineOptionsOf(o: ServeOptions): EngineOptions {
  const { backend, highWaterMark, maxOutboundBytes, maxInboundBytes, idleTimeout, timerResolution, pollInterval, noDelay } = o;
  return { backend, highWaterMark, maxOutboundBytes, maxInboundBytes, idleTimeout, timerResolution, pollInterval, noDelay };
}

/**
 * Serve on several cores. With neither `threads` nor `processes`, one reactor in this thread.
 * Errors: `ERR_C1M_INVALID_OPTION`; `ERR_C1M_NATIVE_UNAVAILABLE` for threads/processes without
 * the native backend; system errors from binding the port.
 */
export async function serve(o: ServeOptions): Promise<ServeHandle> {
  checkOption(o.threads === undefined || o.processes === undefined, 'threads', 'not combined with processes', o.threads);
  checkOption(o.threads === undefined || (Number.isInteger(o.threads) && o.threads >= 1 && o.threads <= 64), 'threads', 'an integer from 1 to 64', o.threads);
  checkOption(o.processes === undefined || (Number.isInteger(o.processes) && o.processes >= 1 && o.processes <= 1024), 'processes', 'an integer from 1 to 1024', o.processes);
  checkOption(o.balance === undefined || o.balance === 'round-robin' || o.balance === 'least-connections' || o.balance === 'hash', 'balance', "'round-robin', 'least-connections' or 'hash'", o.balance);
  checkOption(o.restart === undefined || typeof o.restart === 'boolean', 'restart', 'a boolean', o.restart);
  checkOption(o.compactMemory === undefined || typeof o.compactMemory === 'boolean', 'compactMemory', 'a boolean', o.compactMemory);
  checkOption(o.execArgv === undefined || (Array.isArray(o.execArgv) && o.execArgv.every((a) => typeof a === 'string' && a.startsWith('--'))), 'execArgv', 'an array of --flag strings', o.execArgv);
  checkOption(o.execArgv === undefined || o.processes !== undefined, 'execArgv', 'given with processes (threads share this process\'s flags)', o.execArgv);
  checkOption(o.tls === undefined || o.udp === undefined, 'tls', 'not combined with udp', typeof o.tls);
  checkOption(o.tls === undefined || (typeof o.tls === 'object' && o.tls !== null), 'tls', 'an object', o.tls);
  if (o.tls !== undefined) resolveTlsServer(o.tls); // bad options throw before any worker starts
  checkOption(o.batchScheduling === undefined || typeof o.batchScheduling === 'boolean', 'batchScheduling', 'a boolean', o.batchScheduling);
  if (o.compactMemory) applyCompactMemory();
  if (o.batchScheduling) setBatchScheduling(true); // before any worker: they inherit it
  checkOption(o.metricsPort === undefined || (Number.isInteger(o.metricsPort) && o.metricsPort >= 0 && o.metricsPort <= 65535), 'metricsPort', 'a port number (0-65535)', o.metricsPort);
  // One set of session ticket keys for the whole server (every reactor, thread and process,
  // and every later setTls), so that a client resumes wherever its next connection lands.
  let ticketKeys = o.tls === undefined ? undefined : (o.tls.ticketKeys ?? randomBytes(TICKET_KEYS_BYTES));
  const mode = await serveOn(o.tls === undefined ? o : { ...o, tls: { ...o.tls, ticketKeys } });
  const handle: ServeHandle = {
    ...mode,
    async setTls(tls: TlsServerOptions) {
      checkOption(typeof tls === 'object' && tls !== null, 'tls', 'an object', tls);
      if (ticketKeys === undefined || mode.setTls === undefined) throw new C1mError('ERR_C1M_INVALID_OPTION', 'setTls: this server was started without tls');
      const next = { ...tls, ticketKeys: tls.ticketKeys ?? ticketKeys };
      await mode.setTls(next);
      ticketKeys = next.ticketKeys;
    },
  };
  if (o.metricsPort === undefined) return handle;
  // The supervisor's own registry is not summed in: it serves no connections.
  let metrics;
  try {
    if (handle.mode === 'single') await metricsRegistry(); // this process's registry (its delay monitor starts at the first scrape)
    metrics = await startMetricsServer(o.metricsPort, o.host ?? '0.0.0.0', () => handle.gather(METRICS_KEY));
  } catch (err) {
    await handle.close(0);
    throw err;
  }
  const m = metrics;
  return { ...handle, metricsAddress: m.address, close: (t) => Promise.all([handle.close(t), m.close()]).then(() => undefined) };
}

async function serveOn(o: ServeOptions): Promise<ModeHandle> {
  const engine = engineOptionsOf(o);
  const resolved = resolveOptions({ ...engine, onError: o.onError });
  const handler = toModuleUrl(o.handler);
  if (o.udp) return serveUdp(o, engine, handler, resolved.onError);
  if (o.threads === undefined && o.processes === undefined) {
    const h = await loadHandler(handler, o.handlerOptions);
    const server = await listen(h, { ...o, ...engine, onError: resolved.onError });
    trackReactor(server.reactor);
    const stopTrim = o.compactMemory ? trimServerProcess(server.reactor) : undefined;
    const close = (t?: number): Promise<void> => server.close(t).finally(() => {
      untrackReactor(server.reactor);
      stopTrim?.();
    });
    const setTls = async (tls: TlsServerOptions): Promise<void> => {
      if (o.tls === undefined) throw new C1mError('ERR_C1M_INVALID_OPTION', 'setTls: this server was started without tls');
      server.reactor.setTlsContext!(server.address, tls);
    };
    return { address: server.address, mode: 'single', pids: () => [process.pid], stats: () => server.reactor.stats, gather: (key) => gather(key), setTls, close };
  }
  if (resolved.backend === 'portable' || !loadBinding()) {
    throw new C1mError('ERR_C1M_NATIVE_UNAVAILABLE', 'threads and processes modes need the native backend (Linux, addon built)');
  }
  const listenOn = resolveListen(o);
  const spec = { handler, handlerOptions: o.handlerOptions, engine, compactMemory: o.compactMemory === true };
  const restart = o.restart ?? true;
  const tls = o.tls === undefined ? {} : { tls: o.tls };
  return o.threads !== undefined
    ? serveThreads({ threads: o.threads, spec, engine, listen: listenOn, balance: o.balance ?? 'round-robin', restart, onWorkerExit: o.onWorkerExit, onError: resolved.onError, ...tls })
    : servePrefork({ processes: o.processes!, spec, listen: listenOn, restart, onWorkerExit: o.onWorkerExit, execArgv: o.execArgv, ...tls });
}
