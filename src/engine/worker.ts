/**
 * Entry point of a serve() worker: a thread (sub-reactor fed by the acceptor's hand-off) or a
 * prefork process (its own SO_REUSEPORT listener). It loads the handler module, starts one
 * native reactor, reports `ready`, and closes gracefully on `shutdown` (protocol: workers.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { UdpHandler } from '../core/udp-types.js';
import { adoptCompactMemory, applyCompactMemory, benchCollect, trimServerProcess } from './memory.js';
import { attachGatherTransport, type GatherMessage } from './gather.js';
import { trackReactor, trackUdpSocket } from './metrics.js';
import { createNativeEngineReactor } from './reactor.js';
import { loadHandler, tlsFromWire, type WireTls, type WorkerJob, type WorkerMessage } from './workers.js';

/** How long a prefork worker sent SIGTERM waits for its supervisor's `shutdown` before its own (ms). */
const SUPERVISOR_WAIT_MS = 1000;

const send = (m: WorkerMessage): void => {
  if (parentPort) parentPort.postMessage(m);
  else process.send?.(m);
};
interface SupervisorMessage {
  type: string;
  timeoutMs?: number;
  /** setTls */
  seq?: number;
  tls?: WireTls;
}
/** A thread's job is its workerData; a process asks its supervisor for it (workers.ts). */
function readJob(): Promise<WorkerJob> {
  if (parentPort) return Promise.resolve(workerData as WorkerJob);
  return new Promise((resolve, reject) => {
    const onJob = (m: { type?: string; job?: WorkerJob }): void => {
      if (m?.type !== 'job' || m.job === undefined) return;
      process.off('message', onJob);
      process.off('disconnect', onGone);
      resolve(m.job);
    };
    const onGone = (): void => reject(new Error('the supervisor left before sending the job'));
    process.on('message', onJob);
    process.once('disconnect', onGone);
    send({ type: 'job?' });
  });
}
const onMessage = (fn: (m: SupervisorMessage) => void): void => {
  if (parentPort) parentPort.on('message', fn);
  else process.on('message', fn as (m: unknown) => void);
};

// App-level gathering (metrics summed over workers) rides the same channel: gather.ts.
attachGatherTransport({
  send: (m: GatherMessage) => (parentPort ? parentPort.postMessage(m) : process.send?.(m)),
  onMessage: (fn) => (parentPort ? parentPort.on('message', fn) : process.on('message', fn)),
});

async function main(): Promise<void> {
  const job = await readJob();
  // A prefork child has its own malloc (and got its V8 flag on the command line); a thread's
  // process applied the policy before starting it.
  if (job.spec.compactMemory) {
    if (job.mode === 'process') applyCompactMemory();
    else adoptCompactMemory();
  }
  const handler = await loadHandler(job.spec.handler, job.spec.handlerOptions);
  const udp = job.spec.udp;
  const reactor = createNativeEngineReactor(udp ? {} : handler, job.spec.engine);
  trackReactor(reactor);
  // Each isolate collects its own young generation after its bursts (threads too).
  if (job.spec.compactMemory) trimServerProcess(reactor);
  let port: number | undefined;
  const tls = job.spec.tls === undefined ? undefined : tlsFromWire(job.spec.tls);
  const address = job.spec.listen ? await reactor.listen({ ...job.spec.listen, ...(tls ? { tls } : {}) }) : undefined;
  if (address) port = address.port;
  if (udp) {
    const sock = await reactor.udp(udp, handler as unknown as UdpHandler);
    trackUdpSocket(sock);
    port = sock.address.port;
  }
  send({ type: 'ready', id: reactor.nativeId, port });
  let closing = false;
  const shutdown = async (timeoutMs: number): Promise<void> => {
    if (closing) return;
    closing = true;
    await reactor.close(timeoutMs);
    send({ type: 'closed' });
    if (!parentPort) process.disconnect?.();
  };
  onMessage((m) => {
    if (m.type === 'shutdown') void shutdown(m.timeoutMs ?? 5000);
    if (m.type === 'setTls' && m.tls !== undefined && m.seq !== undefined) {
      // A certificate reload (prefork): this process's listener gets a context of its own.
      try {
        if (!address || closing) throw new Error('this worker has no TLS listener');
        reactor.setTlsContext(address, tlsFromWire(m.tls));
        send({ type: 'tlsSet', seq: m.seq });
      } catch (err) {
        const e = err as Error & { code?: string };
        send({ type: 'tlsSet', seq: m.seq, error: { message: e.message, code: e.code } });
      }
    }
  });
  if (!parentPort) {
    // A prefork worker whose supervisor died must not linger holding the port.
    process.on('disconnect', () => void shutdown(1000).then(() => process.exit(0)));
    // SIGTERM to the whole process group (systemd's default) or a terminal's ^C (SIGINT) reaches
    // the supervisor too, which sends `shutdown` with its grace (`c1m serve --grace`, which a
    // handler's spread shutdown needs): wait a moment for it before closing on our own.
    const onSignal = (): void => {
      setTimeout(() => {
        if (!closing) void shutdown(5000).then(() => process.exit(0));
      }, SUPERVISOR_WAIT_MS);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // For memory benchmarks only: with node's --expose-gc (e.g. in NODE_OPTIONS), SIGUSR1 runs
    // a full GC before the supervisor samples RSS. Without it SIGUSR1 keeps node's meaning.
    // `gc()` without options: on Node 20 `gc({ type: 'major', ... })` runs a scavenge only.
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc !== undefined) process.on('SIGUSR1', () => benchCollect(gc));
  }
}

main().catch((err: Error & { code?: string }) => {
  send({ type: 'error', message: err.message, code: err.code });
  if (!parentPort) setTimeout(() => process.exit(1), 10);
});
