/**
 * `serve({ processes: N })`: prefork. N processes, each a full engine with its own
 * SO_REUSEPORT listener (the kernel spreads connections), under a supervisor that replaces a
 * worker that exits while the others keep their connections. The first worker binds the port
 * (possibly 0); the others bind the port it got.
 *
 * TLS: every worker builds its own context from the same options (they travel in its job, sent
 * over its IPC channel when it asks: not in its environment, which other processes of the user
 * can read in /proc and the kernel limits to 128 KiB a string), with the same session ticket
 * keys, so a ticket from one worker resumes on another.
 * `setTls` sends the new options to every ready worker and waits for each one's answer; a
 * worker forked before the change and not yet ready is sent them once it is, and a replacement
 * starts with them.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { COMPACT_EXEC_ARGV, compactChildEnv } from './memory.js';
import { GatherRelay } from './gather.js';
import { loadBinding } from '../core/binding.js';
import { C1mError } from '../core/errors.js';
import { resolveTlsServer, type ListenPlan } from '../core/options.js';
import type { TlsServerOptions } from '../core/types.js';
import { tlsContext } from '../backends/native-tls.js';
import type { ServeHandle, WorkerExitInfo } from './serve-types.js';
import { RestartBudget, tlsToWire, waitFor, workerUrl, type WireTls, type WorkerJob, type WorkerMessage, type WorkerSpec } from './workers.js';

export interface PreforkPlan {
  processes: number;
  spec: WorkerSpec;
  listen: ListenPlan;
  restart: boolean;
  onWorkerExit?: (info: WorkerExitInfo) => void;
  /** TLS for every worker's listener (with the server's ticket keys). */
  tls?: TlsServerOptions;
  /** Node/V8 flags of every worker process, after compactMemory's (`ServeOptions.execArgv`). */
  execArgv?: readonly string[];
}

/** Tell one worker its new TLS options; resolves with its error, or undefined once applied (or it exited). */
function reloadTls(child: ChildProcess, seq: number, tls: WireTls): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const onMsg = (m: WorkerMessage): void => {
      if (m.type !== 'tlsSet' || m.seq !== seq) return;
      done();
      resolve(m.error ? new C1mError(m.error.code ?? 'ERR_C1M_WORKER', `worker ${child.pid}: ${m.error.message}`) : undefined);
    };
    // A worker that exits (or cannot be told) is replaced with the new options.
    const onExit = (): void => {
      done();
      resolve(undefined);
    };
    const done = (): void => {
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
    child.send({ type: 'setTls', seq, tls }, (err) => {
      if (err) onExit();
    });
  });
}

/** Fork the workers; resolves once every one listens. */
export async function servePrefork(p: PreforkPlan): Promise<ServeHandle> {
  const workerPath = fileURLToPath(workerUrl);
  const execArgv = [...(p.spec.compactMemory ? COMPACT_EXEC_ARGV : []), ...(p.execArgv ?? [])];
  // compactMemory: one malloc arena in each child (memory.ts, compactChildEnv).
  const env = p.spec.compactMemory ? compactChildEnv() : process.env;
  const children = new Set<ChildProcess>();
  const ready = new Set<ChildProcess>();
  let tls = p.tls;
  let seq = 0;
  const budget = new RestartBudget();
  let stopping = false;
  let port = p.listen.port;
  const relay = new GatherRelay(() => [...children].filter((c) => c.connected));

  const start = async (): Promise<number> => {
    // A UDP worker opens its own socket on the port; a TCP one its own SO_REUSEPORT listener.
    const forkedTls = tls;
    const spec: WorkerSpec = p.spec.udp ? { ...p.spec, udp: { ...p.spec.udp, port } } : { ...p.spec, listen: { ...p.listen, port, reusePort: true }, ...(tls ? { tls: tlsToWire(tls) } : {}) };
    const job: WorkerJob = { mode: 'process', spec };
    const child = fork(workerPath, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv, env });
    children.add(child);
    child.on('message', (m: WorkerMessage) => {
      if (m?.type !== 'job?') relay.handle(child, m);
      else child.send({ type: 'job', job }, () => undefined); // an exit meanwhile is handled below
    });
    child.once('exit', (code, signal) => {
      children.delete(child);
      ready.delete(child);
      if (stopping) return;
      p.onWorkerExit?.({ pid: child.pid, code, signal });
      if (!p.restart) return;
      setTimeout(() => {
        if (!stopping) start().catch((err: Error) => process.stderr.write(`c1m: restarting a worker failed: ${err.message}\n`));
      }, budget.next()).unref();
    });
    const m = await waitFor(child, (x) => x.type === 'ready');
    if (child.exitCode === null && child.signalCode === null) ready.add(child);
    // setTls ran while it started: it listens with the old options.
    if (tls !== forkedTls && tls) void reloadTls(child, ++seq, tlsToWire(tls)).then((err) => err && process.stderr.write(`c1m: ${err.message}\n`));
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
    async setTls(next) {
      if (!tls) throw new C1mError('ERR_C1M_INVALID_OPTION', 'setTls: this server was started without tls');
      // Checked here first (as each worker will build it), so that a bad certificate changes nothing.
      const b = loadBinding();
      if (b) tlsContext(b, b.constants, resolveTlsServer(next));
      tls = next;
      const wire = tlsToWire(next);
      const errors = (await Promise.all([...ready].map((c) => reloadTls(c, ++seq, wire)))).filter((e) => e !== undefined);
      if (errors.length) throw errors[0];
    },
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
