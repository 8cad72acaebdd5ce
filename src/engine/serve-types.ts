/**
 * The options and handle of `serve`, shared by its single, threads and processes modes.
 */
import type { Balance } from '../backends/native.js';
import type { ListenAddress, ReactorStats, ServerOptions, TlsServerOptions } from '../core/types.js';
import type { UdpOptions } from '../core/udp-types.js';

/** What `onWorkerExit` is told about a worker that exited unexpectedly. */
export interface WorkerExitInfo {
  /** The worker's process id (prefork), or this process's id (threads). */
  pid: number | undefined;
  /** The worker thread's id (threads mode only). */
  threadId?: number;
  /** Exit code (`process.exit(n)`, 1 for an uncaught exception), or null when killed by a signal. */
  code: number | null;
  /** The signal that killed a prefork worker; always null for threads. */
  signal: NodeJS.Signals | null;
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
  /**
   * Replace a worker (thread or process) that exits while the server runs: at once, but at
   * most 10 times in 10 s, then one a second. Default true.
   */
  restart?: boolean;
  /**
   * Called when a worker thread or process exits unexpectedly (before it is replaced). In
   * threads mode the acceptor has already stopped handing it connections.
   */
  onWorkerExit?: (info: WorkerExitInfo) => void;
  /**
   * Keep the process's idle footprint small: V8's young generation stays at its start size
   * (`threads` workers: `resourceLimits.maxYoungGenerationSizeMb` 3, two 1 MiB semi-spaces),
   * glibc hands freed heap memory back at once (prefork children: they run with one malloc
   * arena, `GLIBC_TUNABLES=glibc.malloc.arena_max=1` unless the environment sets `arena_max`,
   * inherited by processes they start, and keep up to 4 MiB of freed heap top while busy),
   * and once a burst of activity is over (the
   * event loop under 2 % busy for 6 s) two full V8 collections give back the young generation
   * the burst grew and `malloc_trim(0)` the free pages left between live chunks (see
   * src/engine/memory.ts; in `threads` mode each worker thread collects its own isolate).
   * Applies to every process of the server (this one and prefork children) for its whole
   * life: V8 flags and malloc policy are process-wide. Costs about 1-2 % CPU per message and a pause of a few ms per quiet spell;
   * nothing runs while the process is busy (event loop over 2 % busy) or its connections keep
   * opening or closing (more than 16 per half second). A worker's figures are in its `c1m.memory` gather
   * value (`handle.gather('c1m.memory')`: `{ compact, trimThreshold, trims, gcs, gcMs,
   * gcMsMax, newSpaceKb }`). Default false;
   * `c1m serve` turns it on (`--no-compact-memory` to turn it off).
   */
  compactMemory?: boolean;
  /**
   * Run the server's threads and processes under Linux's `SCHED_BATCH` (see
   * `setBatchScheduling`): set in this process before any worker starts, so worker threads
   * and prefork workers (restarted ones too) inherit it. For servers that take connections or
   * messages in bursts on a saturated box (a million-connection ramp, a mass reconnect): fewer,
   * larger wake-ups. Costs up to a time slice of latency while every CPU is busy. Process-wide,
   * stays after `close()`. Native addon only (`ERR_C1M_NATIVE_UNAVAILABLE`). Default false;
   * `c1m serve --batch-scheduling`.
   */
  batchScheduling?: boolean;
  /**
   * Node and V8 flags for each prefork worker process (`processes` only), after those of
   * `compactMemory`; e.g. `['--max-old-space-size=512']` or `['--max-opt=1']` (V8's baseline
   * tier only: no per-process optimizing compiles, slower hot loops; measured in docs/bench.md,
   * "Many processes on two cores"). Fixed at fork: restarted workers get the same flags.
   * Errors: `ERR_C1M_INVALID_OPTION` unless an array of `--flag` strings given with `processes`;
   * a flag Node rejects makes every worker exit at start (reported as a worker exit).
   */
  execArgv?: readonly string[];
  /**
   * Serve UDP instead of TCP: the handler module gives a `UdpHandler`, and every reactor (this
   * thread's, each worker thread's, each process's) opens its own socket on `port` (with
   * `SO_REUSEPORT` when there are several: the kernel hashes each flow to one of them).
   */
  udp?: true | Omit<UdpOptions, 'port' | 'host'>;
  /**
   * Serve `GET /metrics` (Prometheus text: the engine's metrics and those the handler module
   * registers in `metricsRegistry()`, summed over every worker) on this port of `host`, from
   * this process. Default: none.
   */
  metricsPort?: number;
}

/** What each mode's starter returns: `serve` adds `setTls` where the mode has none (UDP). */
export type ModeHandle = Omit<ServeHandle, 'setTls'> & { setTls?: ServeHandle['setTls'] };

/** A running multi-core server. */
export interface ServeHandle {
  readonly address: ListenAddress;
  readonly mode: 'single' | 'threads' | 'processes';
  /** Worker process ids (prefork), current; this process's id in the other modes. */
  pids(): number[];
  /** Counters of the reactor in this thread (single mode), else undefined. */
  stats(): ReactorStats | undefined;
  /** Every live worker's value for `key` (see gather.ts); this process's own in single mode. */
  gather(key: string): Promise<unknown[]>;
  /** Where `metricsPort` listens, when it was given. */
  readonly metricsAddress?: ListenAddress;
  /**
   * Replace the server's TLS certificate (and the rest of its `tls` options) without a
   * restart: every reactor's new connections get the new context, open connections keep
   * theirs. Single mode: the reactor's `setTlsContext`; threads: the acceptor's context, which
   * every accepted fd carries to its worker; processes: each worker process builds the new
   * context, and a worker started later (a replacement) starts with it. Without
   * `tls.ticketKeys` the server's own ticket keys (given or drawn at `serve`) are kept, so
   * sessions issued before the reload still resume.
   *
   * Resolves once every live reactor uses it. Errors (nothing changed): `ERR_C1M_INVALID_OPTION`
   * (bad options, or a server started without `tls`), `ERR_C1M_TLS_CONFIG` /
   * `ERR_C1M_TLS_KEY_MISMATCH` (a certificate or key OpenSSL refuses). In processes mode a
   * worker that fails all the same (it should not: the options were checked first) rejects the
   * call after the others changed.
   */
  setTls(tls: TlsServerOptions): Promise<void>;
  /** Graceful shutdown of every reactor; resolves when all are closed. */
  close(timeoutMs?: number): Promise<void>;
}
