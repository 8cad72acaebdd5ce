/**
 * `serve({ threads: N })`: N worker threads, each running a native reactor that loads the
 * handler module, behind one acceptor reactor on this thread. The acceptor's listener has
 * the workers' registry ids as hand-off targets; native code picks one per accepted fd.
 *
 * Invariant: `slot.id` is defined exactly while that worker's reactor is ready and not exited,
 * so `liveIds()` is the acceptor's target list.
 */
import { Worker } from 'node:worker_threads';
import type { Balance, NativeReactor } from '../backends/native.js';
import { C1mError } from '../core/errors.js';
import type { EngineOptions, ListenAddress } from '../core/types.js';
import { createNativeEngineReactor } from './reactor.js';
import type { ServeHandle, WorkerExitInfo } from './serve-types.js';
import { waitFor, workerUrl, type WorkerJob, type WorkerSpec } from './workers.js';

export interface ThreadsPlan {
  threads: number;
  spec: WorkerSpec;
  engine: EngineOptions;
  listen: { port: number; host: string; backlog: number; reusePort: boolean };
  balance: Balance;
  restart: boolean;
  onWorkerExit?: (info: WorkerExitInfo) => void;
  onError: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  threadId: number;
  /** Registry id of the worker's reactor while it is ready and alive. */
  id: number | undefined;
  exited: boolean;
}

/** Start the workers and the acceptor; resolves once the acceptor listens. */
export async function serveThreads(p: ThreadsPlan): Promise<ServeHandle> {
  const slots: Slot[] = [];
  let acceptor: NativeReactor | undefined;
  let stopping = false;

  const liveIds = (): number[] => slots.flatMap((s) => (s.id === undefined ? [] : [s.id]));
  const onExit = (slot: Slot): void => {
    slot.exited = true;
    slot.id = undefined;
  };

  const start = async (index: number): Promise<void> => {
    const job: WorkerJob = { mode: 'thread', spec: p.spec };
    const worker = new Worker(workerUrl, { workerData: job });
    const slot: Slot = { worker, threadId: worker.threadId, id: undefined, exited: false };
    slots[index] = slot;
    // An exception that escaped the worker's handler guard: the worker is gone (see 'exit').
    worker.on('error', (err) => {
      if (!stopping) p.onError(err);
    });
    worker.once('exit', () => onExit(slot));
    const m = await waitFor(worker, (x) => x.type === 'ready');
    if (!slot.exited) slot.id = (m as { id: number }).id;
  };

  const terminateAll = (): Promise<unknown> => Promise.all(slots.map((s) => s.worker.terminate()));
  try {
    for (let i = 0; i < p.threads; i++) await start(i);
  } catch (err) {
    stopping = true;
    await terminateAll();
    throw err;
  }
  let address: ListenAddress;
  try {
    const targets = liveIds();
    if (targets.length === 0) throw new C1mError('ERR_C1M_WORKER', 'every worker thread exited during start');
    // The acceptor: a reactor without connections of its own; accept errors go to onError.
    acceptor = createNativeEngineReactor({}, { ...p.engine, onError: p.onError });
    address = await acceptor.listen(p.listen, { targets, balance: p.balance });
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
    close(timeoutMs = 5000) {
      closing ??= (async () => {
        stopping = true;
        await acceptor!.close(0);
        await Promise.all(slots.map(async (s) => {
          if (s.exited) return;
          const done = waitFor(s.worker, (m) => m.type === 'closed').catch(() => undefined);
          s.worker.postMessage({ type: 'shutdown', timeoutMs });
          await done;
          await s.worker.terminate();
        }));
      })();
      return closing;
    },
  };
}
