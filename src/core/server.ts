/**
 * Servers: one reactor (`listen`), or several cores (`serve`) in one of two explicit modes:
 *
 * - threads: one process; a main-thread acceptor hands each accepted fd (fds are process-wide)
 *   to a sub-reactor on a worker thread, inside native code, balanced round-robin, by least
 *   connections, or by a hash of the peer address. Native backend only.
 * - processes (prefork): N processes, each a full engine with its own SO_REUSEPORT listener,
 *   under a supervisor that restarts a crashed worker while the others keep their connections.
 *   Each process has its own open-file limit, which is how one box passes ~20,000 per process.
 *
 * In both modes the handler is a module that every reactor loads: it exports
 * `createHandler(options)` or a default Handler object.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { loadBinding } from './binding.js';
import { C1mError, checkOption } from './errors.js';
import { resolveListen, resolveOptions } from './options.js';
import { createReactor } from './reactor.js';
import { NativeReactor, raiseNofile, type Balance } from '../backends/native.js';
import type { EngineOptions, Handler, ListenAddress, Reactor, ReactorStats, ServerOptions } from './types.js';

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
    const address = await reactor.listen({ port: options.port, host: options.host, backlog: options.backlog, reusePort: options.reusePort, ...(options.tls ? { tls: options.tls } : {}) });
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

/** Options for `serve`. */
export interface ServeOptions extends ServerOptions {
  /** Path or file URL of the handler module: `export function createHandler(options)` or `export default handler`. */
  handler: string | URL;
  /** Passed to `createHandler` (structured-cloneable). */
  handlerOptions?: unknown;
  /** Sub-reactors on worker threads behind one acceptor (native backend). */
  threads?: number;
  /** Prefork processes, each with its own SO_REUSEPORT listener (native backend). */
  processes?: number;
  /** Hand-off policy for `threads`. Default 'round-robin'. */
  balance?: Balance;
  /** Restart a crashed process (prefork). Default true. */
  restart?: boolean;
  /** Called when a prefork worker exits unexpectedly (before it is restarted). */
  onWorkerExit?: (info: { pid: number | undefined; code: number | null; signal: NodeJS.Signals | null }) => void;
}

/** A running multi-core server. */
export interface ServeHandle {
  readonly address: ListenAddress;
  readonly mode: 'single' | 'threads' | 'processes';
  /** Worker process ids (prefork), current. */
  pids(): number[];
  /** Counters of the reactor in this thread (single mode), else undefined. */
  stats(): ReactorStats | undefined;
  /** Graceful shutdown of every reactor; resolves when all are closed. */
  close(timeoutMs?: number): Promise<void>;
}

function toModuleUrl(spec: string | URL): string {
  if (spec instanceof URL) return spec.href;
  if (spec.startsWith('file:')) return spec;
  return pathToFileURL(isAbsolute(spec) ? spec : resolve(spec)).href;
}

/** Load a handler module (used by every reactor, in every thread and process). */
export async function loadHandler(spec: string | URL, handlerOptions: unknown): Promise<Handler> {
  const url = toModuleUrl(spec);
  const mod = (await import(url)) as { createHandler?: (o: unknown) => Handler | Promise<Handler>; default?: Handler };
  const h = mod.createHandler ? await mod.createHandler(handlerOptions) : mod.default;
  if (!h || typeof h !== 'object') {
    throw new C1mError('ERR_C1M_INVALID_OPTION', `handler module ${url} must export createHandler(options) or a default handler object`);
  }
  return h;
}

const workerUrl = new URL('./worker.js', import.meta.url);

/** What a worker thread or process is told to run. */
export interface WorkerSpec {
  handler: string;
  handlerOptions: unknown;
  engine: EngineOptions;
  listen?: { port: number; host: string; backlog: number; reusePort: boolean };
}

function engineOptionsOf(o: ServeOptions): EngineOptions {
  const { backend, highWaterMark, maxOutboundBytes, maxInboundBytes, idleTimeout, timerResolution, noDelay } = o;
  return { backend, highWaterMark, maxOutboundBytes, maxInboundBytes, idleTimeout, timerResolution, noDelay };
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
  if (o.tls !== undefined && (o.threads !== undefined || o.processes !== undefined)) {
    throw new C1mError('ERR_C1M_TLS_UNSUPPORTED', 'tls is served by one reactor for now: not with threads or processes');
  }
  const engine = engineOptionsOf(o);
  const resolved = resolveOptions({ ...engine, onError: o.onError });
  const handlerSpec = toModuleUrl(o.handler);
  if (o.threads === undefined && o.processes === undefined) {
    const handler = await loadHandler(handlerSpec, o.handlerOptions);
    const server = await listen(handler, { ...o, ...engine, onError: resolved.onError });
    return { address: server.address, mode: 'single', pids: () => [process.pid], stats: () => server.reactor.stats, close: (t) => server.close(t) };
  }
  if (resolved.backend === 'portable' || !loadBinding()) {
    throw new C1mError('ERR_C1M_NATIVE_UNAVAILABLE', 'threads and processes modes need the native backend (Linux, addon built)');
  }
  const l = resolveListen(o);
  return o.threads !== undefined
    ? serveThreads(o, engine, handlerSpec, l, resolved.onError)
    : servePrefork(o, engine, handlerSpec, l);
}

type Msg = { type: 'ready'; id?: number; port?: number } | { type: 'error'; message: string; code?: string } | { type: 'closed' };

function waitFor(target: Worker | ChildProcess, pred: (m: Msg) => boolean): Promise<Msg> {
  return new Promise((resolveP, reject) => {
    const onMsg = (m: Msg): void => {
      if (m.type === 'error') {
        cleanup();
        const err = new C1mError(m.code ?? 'ERR_C1M_WORKER', m.message);
        reject(err);
      } else if (pred(m)) {
        cleanup();
        resolveP(m);
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new C1mError('ERR_C1M_WORKER', `worker exited (code ${code}) before it was ready`));
    };
    const cleanup = (): void => {
      target.off('message', onMsg);
      target.off('exit', onExit);
    };
    target.on('message', onMsg);
    target.on('exit', onExit);
  });
}

async function serveThreads(o: ServeOptions, engine: EngineOptions, handler: string, l: ReturnType<typeof resolveListen>, onError: (e: Error) => void): Promise<ServeHandle> {
  const workers: Worker[] = [];
  const ids: number[] = [];
  try {
    for (let i = 0; i < o.threads!; i++) {
      const spec: WorkerSpec = { handler, handlerOptions: o.handlerOptions, engine };
      const w = new Worker(workerUrl, { workerData: { mode: 'thread', spec } });
      workers.push(w);
      const m = await waitFor(w, (x) => x.type === 'ready');
      ids.push((m as { id: number }).id);
    }
  } catch (err) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw err;
  }
  // The acceptor: a reactor without connections of its own; accept errors go to onError.
  const acceptor = createReactor({}, { ...engine, onError }) as NativeReactor;
  let address: ListenAddress;
  try {
    address = await acceptor.listen(l, { targets: ids, balance: o.balance ?? 'round-robin' });
  } catch (err) {
    await acceptor.close(0);
    await Promise.all(workers.map((w) => w.terminate()));
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    address,
    mode: 'threads',
    pids: () => [process.pid],
    stats: () => undefined,
    close(timeoutMs = 5000) {
      closing ??= (async () => {
        await acceptor.close(0);
        await Promise.all(workers.map(async (w) => {
          const done = waitFor(w, (m) => m.type === 'closed').catch(() => undefined);
          w.postMessage({ type: 'shutdown', timeoutMs });
          await done;
          await w.terminate();
        }));
      })();
      return closing;
    },
  };
}

async function servePrefork(o: ServeOptions, engine: EngineOptions, handler: string, l: ReturnType<typeof resolveListen>): Promise<ServeHandle> {
  const workerPath = fileURLToPath(workerUrl);
  const children = new Set<ChildProcess>();
  let stopping = false;
  let port = l.port;
  const restarts: number[] = [];

  const start = async (): Promise<ChildProcess> => {
    const spec: WorkerSpec = { handler, handlerOptions: o.handlerOptions, engine, listen: { ...l, port, reusePort: true } };
    const child = fork(workerPath, [], { env: { ...process.env, C1M_WORKER: JSON.stringify({ mode: 'process', spec }) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    children.add(child);
    child.once('exit', (code, signal) => {
      children.delete(child);
      if (stopping) return;
      o.onWorkerExit?.({ pid: child.pid, code, signal });
      if (o.restart === false) return;
      // Restart, but not in a tight loop: at most 10 restarts in 10 s.
      const now = Date.now();
      restarts.push(now);
      while (restarts.length && restarts[0]! < now - 10_000) restarts.shift();
      const delay = restarts.length > 10 ? 1000 : 0;
      setTimeout(() => {
        if (!stopping) start().catch((err: Error) => process.stderr.write(`c1m: restarting a worker failed: ${err.message}\n`));
      }, delay).unref();
    });
    const m = await waitFor(child, (x) => x.type === 'ready');
    return Object.assign(child, { boundPort: (m as { port: number }).port });
  };

  try {
    const first = (await start()) as ChildProcess & { boundPort: number };
    port = first.boundPort;
    await Promise.all(Array.from({ length: o.processes! - 1 }, () => start()));
  } catch (err) {
    stopping = true;
    for (const c of children) c.kill('SIGKILL');
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    address: { host: l.host, port },
    mode: 'processes',
    pids: () => [...children].map((c) => c.pid!).filter(Boolean),
    stats: () => undefined,
    close(timeoutMs = 5000) {
      stopping = true;
      closing ??= Promise.all([...children].map((c) => new Promise<void>((res) => {
        if (c.exitCode !== null || c.signalCode !== null) return res();
        const kill = setTimeout(() => c.kill('SIGKILL'), timeoutMs + 2000);
        c.once('exit', () => {
          clearTimeout(kill);
          res();
        });
        c.send({ type: 'shutdown', timeoutMs }, (err) => {
          if (err) c.kill('SIGTERM');
        });
      }))).then(() => undefined);
      return closing;
    },
  };
}
