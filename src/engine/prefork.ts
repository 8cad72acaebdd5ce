/**
 * `serve({ processes: N })`: prefork. N processes, each a full engine with its own
 * SO_REUSEPORT listener (the kernel spreads connections), under a supervisor that replaces a
 * worker that exits while the others keep their connections. The first worker binds the port
 * (possibly 0); the others bind the port it got.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { COMPACT_EXEC_ARGV } from './memory.js';
import { GatherRelay } from './gather.js';
import type { ServeHandle, WorkerExitInfo } from './serve-types.js';
import { RestartBudget, waitFor, workerUrl, type WorkerJob, type WorkerSpec } from './workers.js';

export interface PreforkPlan {
  processes: number;
  spec: WorkerSpec;
  listen: { port: number; host: string; backlog: number; reusePort: boolean };
  restart: boolean;
  onWorkerExit?: (info: WorkerExitInfo) => void;
}

/** Fork the workers; resolves once every one listens. */
export async function servePrefork(p: PreforkPlan): Promise<ServeHandle> {
  const workerPath = fileURLToPath(workerUrl);
  const children = new Set<ChildProcess>();
  const budget = new RestartBudget();
  let stopping = false;
  let port = p.listen.port;
  const relay = new GatherRelay(() => [...children].filter((c) => c.connected));

  const start = async (): Promise<number> => {
    // A UDP worker opens its own socket on the port; a TCP one its own SO_REUSEPORT listener.
    const spec = p.spec.udp ? { ...p.spec, udp: { ...p.spec.udp, port } } : { ...p.spec, listen: { ...p.listen, port, reusePort: true } };
    const job: WorkerJob = { mode: 'process', spec };
    const child = fork(workerPath, [], { env: { ...process.env, C1M_WORKER: JSON.stringify(job) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: p.spec.compactMemory ? [...COMPACT_EXEC_ARGV] : [] });
    children.add(child);
    child.on('message', (m) => relay.handle(child, m));
    child.once('exit', (code, signal) => {
      children.delete(child);
      if (stopping) return;
      p.onWorkerExit?.({ pid: child.pid, code, signal });
      if (!p.restart) return;
      setTimeout(() => {
        if (!stopping) start().catch((err: Error) => process.stderr.write(`c1m: restarting a worker failed: ${err.message}\n`));
      }, budget.next()).unref();
    });
    const m = await waitFor(child, (x) => x.type === 'ready');
    return (m as { port: number }).port;
  };

  try {
    port = await start();
    await Promise.all(Array.from({ length: p.processes - 1 }, () => start()));
  } catch (err) {
    stopping = true;
    for (const c of children) c.kill('SIGKILL');
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    address: { host: p.listen.host, port },
    mode: 'processes',
    pids: () => [...children].map((c) => c.pid!).filter(Boolean),
    stats: () => undefined,
    gather: (key) => relay.collect(key),
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
