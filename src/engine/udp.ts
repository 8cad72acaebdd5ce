/**
 * UDP in the engine layer: the top-level `udp()` helper (a reactor of its own and one socket)
 * and `serve({ udp })`, which gives every reactor (this thread's, each worker thread's, each
 * prefork process's) its own socket on the port, with SO_REUSEPORT when there are several: the
 * kernel hashes each flow to one of them.
 */
import type { Worker } from 'node:worker_threads';
import { loadBinding } from '../core/binding.js';
import { C1mError } from '../core/errors.js';
import { resolveOptions } from '../core/options.js';
import type { EngineOptions, Reactor } from '../core/types.js';
import { resolveUdp } from '../core/udp.js';
import type { UdpHandler, UdpOptions, UdpSocket } from '../core/udp-types.js';
import { GatherRelay, gather, type GatherPeer } from './gather.js';
import { trackReactor, trackUdpSocket, untrackReactor } from './metrics.js';
import { servePrefork } from './prefork.js';
import { createReactor } from './reactor.js';
import type { ModeHandle, ServeOptions } from './serve-types.js';
import { loadHandler, startWorkerThread, stopWorkerThread, waitFor, type WorkerSpec } from './workers.js';

/** A UDP server: a reactor of its own and one socket on it. */
export interface UdpServer {
  readonly reactor: Reactor;
  readonly socket: UdpSocket;
  /** Close the socket and the reactor. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Open a UDP socket on a reactor of its own (for a reactor you already have, `reactor.udp()`).
 *
 * Threading: the reactor runs on the calling thread. Errors: rejects with `ERR_C1M_INVALID_OPTION`
 * or a system error from binding (`EADDRINUSE`, ...).
 */
export async function udp(handler: UdpHandler, options: UdpOptions & EngineOptions = {}): Promise<UdpServer> {
  const reactor = createReactor({}, options);
  try {
    const socket = await reactor.udp(options, handler);
    return { reactor, socket, close: (t?: number) => reactor.close(t) };
  } catch (err) {
    await reactor.close(0);
    throw err;
  }
}

/** `serve({ udp })`: a UDP socket per reactor, several sharing the port by SO_REUSEPORT. */
export async function serveUdp(o: ServeOptions, engine: EngineOptions, handler: string, onError: (e: Error) => void): Promise<ModeHandle> {
  const multi = o.threads !== undefined || o.processes !== undefined;
  const u = resolveUdp({ ...(o.udp === true ? {} : o.udp), port: o.port, host: o.host, reusePort: multi || (o.udp !== true && o.udp?.reusePort === true) });
  if (!multi) {
    const h = (await loadHandler(handler, o.handlerOptions)) as unknown as UdpHandler;
    const reactor = createReactor({}, { ...engine, onError });
    const sock = await reactor.udp(u, h).catch(async (err: unknown) => {
      await reactor.close(0);
      throw err;
    });
    trackReactor(reactor);
    trackUdpSocket(sock);
    const a = sock.address;
    const close = (t?: number): Promise<void> => reactor.close(t).finally(() => untrackReactor(reactor));
    return { address: { host: a.address, port: a.port }, mode: 'single', pids: () => [process.pid], stats: () => reactor.stats, gather: (key) => gather(key), close };
  }
  if (resolveOptions(engine).backend === 'portable' || !loadBinding()) {
    throw new C1mError('ERR_C1M_NATIVE_UNAVAILABLE', 'threads and processes modes need the native backend (Linux, addon built)');
  }
  const spec: WorkerSpec = { handler, handlerOptions: o.handlerOptions, engine, compactMemory: o.compactMemory === true, udp: u };
  if (o.processes !== undefined) {
    return servePrefork({ processes: o.processes, spec, listen: { port: u.port, host: u.host, backlog: 0, reusePort: true, deferAccept: 0 }, restart: o.restart ?? true, onWorkerExit: o.onWorkerExit, execArgv: o.execArgv });
  }
  // Threads: each worker's reactor opens its own socket (no acceptor, no hand-off).
  const workers: Worker[] = [];
  const peers = new Map<Worker, GatherPeer>();
  const relay = new GatherRelay(() => [...peers.values()]);
  let port = u.port;
  try {
    for (let i = 0; i < o.threads!; i++) {
      const w = startWorkerThread({ ...spec, udp: { ...u, port } });
      workers.push(w);
      const peer: GatherPeer = { send: (m) => w.postMessage(m) };
      w.on('message', (m) => relay.handle(peer, m));
      w.once('exit', () => peers.delete(w));
      port = ((await waitFor(w, (x) => x.type === 'ready')) as { port: number }).port;
      peers.set(w, peer);
    }
  } catch (err) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    address: { host: u.host, port },
    mode: 'threads',
    pids: () => [process.pid],
    stats: () => undefined,
    gather: (key) => relay.collect(key),
    close(timeoutMs = 5000) {
      closing ??= Promise.all(workers.map((w) => stopWorkerThread(w, timeoutMs))).then(() => undefined);
      return closing;
    },
  };
}
