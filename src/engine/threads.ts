/**
 * `serve({ threads: N })`: N worker threads, each running a native reactor that loads the
 * handler module, behind one acceptor reactor on this thread. The acceptor's listener has
 * the workers' registry ids as hand-off targets; native code picks one per accepted fd.
 *
 * Supervision: a worker thread that exits while the server runs (`process.exit` in a handler,
 * an exception outside the per-callback guard, an unhandled rejection) takes its reactor and
 * its connections with it; the others keep theirs. On its `exit` the acceptor is retargeted to
 * the live workers at once (native code would skip the dead reactor anyway, but a stale target
 * costs a failed hand-off per accept), `onWorkerExit` is told, and a replacement starts under
 * the same restart budget as prefork; once ready it is added back with another retarget.
 *
 * TLS: the acceptor's listener holds the one context (a shared SSL_CTX); each accepted fd
 * carries a reference on it to its worker reactor, which creates the session and runs the
 * handshake on its own thread (native/src/handoff.c). So the workers need no TLS options,
 * one set of ticket keys serves them all, and `setTls` is the acceptor's `setTlsContext`.
 *
 * Invariant: `slot.id` is defined exactly while that worker's reactor is ready and not exited,
 * so `liveIds()` is the acceptor's correct target list; a replacement takes its slot's index,
 * which keeps the target order stable for round-robin.
 */
import type { Worker } from 'node:worker_threads';
import type { Balance, NativeReactor } from '../backends/native.js';
import { C1mError } from '../core/errors.js';
import type { EngineOptions, ListenAddress, TlsServerOptions } from '../core/types.js';
import type { ListenPlan } from '../core/options.js';
import { GatherRelay, type GatherPeer } from './gather.js';
import { createNativeEngineReactor } from './reactor.js';
import type { ServeHandle, WorkerExitInfo } from './serve-types.js';
import { RestartBudget, startWorkerThread, stopWorkerThread, waitFor, type WorkerSpec } from './workers.js';

export interface ThreadsPlan {
  threads: number;
  spec: WorkerSpec;
  engine: EngineOptions;
  listen: ListenPlan;
  balance: Balance;
  restart: boolean;
  onWorkerExit?: (info: WorkerExitInfo) => void;
  onError: (err: Error) => void;
  /** TLS for the acceptor's listener (sessions are created in the workers). */
  tls?: TlsServerOptions;
}

interface Slot {
  worker: Worker;
  threadId: number;
  /** Registry id of the worker's reactor while it is ready and alive. */
  id: number | undefined;
  exited: boolean;
  /** The worker as gather.ts sees it. */
  peer: GatherPeer;
}

/** Start the workers and the acceptor; resolves once the acceptor listens. */
export async function serveThreads(p: ThreadsPlan): Promise<ServeHandle> {
  const slots: Slot[] = [];
  const budget = new RestartBudget();
  let acceptor: NativeReactor | undefined;
  let running = false;
  let stopping = false;

  const relay = new GatherRelay(() => slots.filter((s) => s.id !== undefined).map((s) => s.peer));
  const liveIds = (): number[] => slots.flatMap((s) => (s.id === undefined ? [] : [s.id]));
  const retarget = (): void => {
    const ids = liveIds();
    // With no live worker the targets are left as they are: native code finds them all gone
    // and refuses the connection until a replacement is added back.
    if (!acceptor || ids.length === 0) return;
    try {
      acceptor.retarget(ids);
    } catch (err) {
      p.onError(err as Error); // a bug, not a runtime condition: report it, keep serving
    }
  };

  const onExit = (slot: Slot, index: number, code: number): void => {
    slot.exited = true;
    slot.id = undefined;
    if (stopping || !running) return;
    retarget();
    p.onWorkerExit?.({ pid: process.pid, threadId: slot.threadId, code, signal: null });
    if (!p.restart) return;
    setTimeout(() => {
      if (stopping || slots[index] !== slot) return;
      start(index).then(retarget, (err: Error) => {
        if (!stopping) process.stderr.write(`c1m: replacing a worker thread failed: ${err.message}\n`);
      });
    }, budget.next()).unref();
  };

  const start = async (index: number): Promise<void> => {
    const worker = startWorkerThread(p.spec);
    const slot: Slot = { worker, threadId: worker.threadId, id: undefined, exited: false, peer: { send: (m) => worker.postMessage(m) } };
    slots[index] = slot;
    worker.on('message', (m) => relay.handle(slot.peer, m));
    // An exception that escaped the worker's handler guard: the worker is gone (see 'exit').
    worker.on('error', (err) => {
      if (!stopping) p.onError(err);
    });
    worker.once('exit', (code) => onExit(slot, index, code));
    const m = await waitFor(worker, (x) => x.type === 'ready');
    if (!slot.exited) slot.id = (m as { id: number }).id;
  };

  const terminateAll = (): Promise<unknown> => Promise.all(slots.map((s) => s.worker.terminate()));
  try {
    for (let i = 0; i < p.threads; i++) await start(i);
    if (slots.some((s) => s.exited)) throw new C1mError('ERR_C1M_WORKER', 'a worker thread exited during start');
  } catch (err) {
    stopping = true;
    await terminateAll();
    throw err;
  }
  // From here a worker that exits is replaced. No event runs before the acceptor's listener
  // exists (listen binds synchronously), so it starts with every worker as a target.
  running = true;
  let address: ListenAddress;
  try {
    // The acceptor: a reactor without connections of its own; accept errors go to onError.
    acceptor = createNativeEngineReactor({}, { ...p.engine, onError: p.onError });
    address = await acceptor.listen({ ...p.listen, ...(p.tls ? { tls: p.tls } : {}) }, { targets: liveIds(), balance: p.balance });
  } catch (err) {
    stopping = true;
    await acceptor?.close(0);
    await terminateAll();
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    address,
    mode: 'threads',
    pids: () => [process.pid],
    stats: () => undefined,
    gather: (key) => relay.collect(key),
    async setTls(tls) {
      if (!p.tls) throw new C1mError('ERR_C1M_INVALID_OPTION', 'setTls: this server was started without tls');
      acceptor!.setTlsContext(address, tls);
    },
    close(timeoutMs = 5000) {
      closing ??= (async () => {
        stopping = true;
        await acceptor!.close(0);
        await Promise.all(slots.map(async (s) => {
          if (!s.exited) await stopWorkerThread(s.worker, timeoutMs);
        }));
      })();
      return closing;
    },
  };
}
