/**
 * The worker processes of one `c1m bench` run: fork them (`bench-worker.ts`), send them
 * phase commands, keep their latest counters, merge their progress histograms, and make
 * every wait bounded and cut short by an abort.
 *
 * Invariants: after `shutdown()` resolves every worker has exited (SIGKILL after the bounded
 * waits); `killAll()` is synchronous, for `process.on('exit')` and a second Ctrl-C. A worker
 * that exits before it reported a result, outside a stop, aborts the run (`worker_died`).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { latencyHistogram, mergeHistograms } from './bench-stats.js';
import type { ParentMessage, WorkerConfig, WorkerCounters, WorkerMessage, WorkerResult } from './bench-ipc.js';

const READY_TIMEOUT_MS = 30_000;
const RESULT_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 10_000;

/** Why a run ended early; false when it did not. */
export type Aborted = false | 'signal' | 'worker_died' | 'no_results' | 'low_memory' | 'too_many_failures';

/** One worker process as the parent sees it. */
export interface WorkerHandle {
  child: ChildProcess;
  config: WorkerConfig;
  ready: boolean;
  counters: WorkerCounters;
  /** performance.now() when every connection asked of it had settled (reset by `go`). */
  settledAt: number | undefined;
  /** The latest `snapshot` answer (cleared by `snapshot`). */
  snapshot: WorkerResult | undefined;
  result: WorkerResult | undefined;
  exited: boolean;
  fatal: string | undefined;
}

const ZERO: WorkerCounters = { started: 0, connected: 0, failed: 0, pending: 0, open: 0, retries: 0, msgsTotal: 0 };

/** The worker processes of one run (see the file comment). Threading: the main thread only. */
export class WorkerPool {
  workers: WorkerHandle[] = [];
  aborted: Aborted = false;
  /** Latency of the messages reported since the last `takeInterval()`. */
  readonly interval = latencyHistogram();
  readonly #err: NodeJS.WritableStream;
  /** Wakes every bounded wait early (abort, worker message, worker exit). */
  #wake: (() => void) | undefined;
  #stopping = false;

  readonly #execArgv: readonly string[];

  /** `execArgv`: Node/V8 flags for every worker, after this process's own (`--inspect*` dropped). */
  constructor(err: NodeJS.WritableStream, execArgv: readonly string[] = []) {
    this.#err = err;
    this.#execArgv = execArgv;
  }

  /** Fork one worker per config and wait for `ready`. False (after reporting why) when one cannot start. */
  async start(configs: WorkerConfig[]): Promise<boolean> {
    const script = fileURLToPath(new URL('./bench-worker.js', import.meta.url));
    // Worker output goes to our stderr: stdout carries only the result.
    const execArgv = [...process.execArgv.filter((arg) => !arg.startsWith('--inspect')), ...this.#execArgv];
    this.workers = configs.map((config) => {
      const child = fork(script, [], { stdio: ['ignore', 2, 2, 'ipc'], execArgv });
      const w: WorkerHandle = { child, config, ready: false, counters: { ...ZERO }, settledAt: undefined, snapshot: undefined, result: undefined, exited: false, fatal: undefined };
      child.on('message', (m: WorkerMessage) => this.#onMessage(w, m));
      child.on('exit', (code, sig) => {
        w.exited = true;
        if (w.result === undefined && !this.#stopping && this.aborted === false) {
          w.fatal ??= `exited early (${sig ?? `code ${code}`})`;
          this.aborted = 'worker_died';
        }
        this.#wake?.();
      });
      child.on('error', (e) => {
        w.fatal ??= e.message;
        if (child.pid === undefined) w.exited = true; // never started: no 'exit' will come
        this.#wake?.();
      });
      child.send({ type: 'config', config } satisfies ParentMessage);
      return w;
    });
    const ok = await this.waitFor(() => this.workers.every((w) => w.ready) || this.workers.some((w) => w.fatal !== undefined), READY_TIMEOUT_MS);
    if (ok && this.workers.every((w) => w.ready)) return true;
    for (const w of this.workers) {
      if (w.fatal) this.#err.write(`c1m bench: worker ${w.config.worker}: ${w.fatal}\n`);
      else if (!w.ready) this.#err.write(`c1m bench: worker ${w.config.worker}: not ready within ${READY_TIMEOUT_MS / 1000}s\n`);
    }
    this.#stopping = true;
    return false;
  }

  /** Process ids of the workers (for reports and clean-up checks). */
  pids(): number[] {
    return this.workers.map((w) => w.child.pid).filter((p): p is number => p !== undefined);
  }

  #onMessage(w: WorkerHandle, m: WorkerMessage): void {
    switch (m.type) {
      case 'ready':
        w.ready = true;
        break;
      case 'progress':
        w.counters = m.counters;
        if (m.hist) mergeHistograms([m.hist], this.interval);
        break;
      case 'connected':
        w.counters = m.counters;
        w.settledAt = performance.now();
        break;
      case 'snapshot':
        w.snapshot = m.result;
        w.counters = m.result;
        break;
      case 'result':
        w.result = m.result;
        break;
      case 'fatal':
        w.fatal = m.message;
        this.aborted = 'worker_died';
        break;
    }
    this.#wake?.();
  }

  /** Send `m` to every live worker. */
  send(m: ParentMessage): void {
    for (const w of this.workers) this.sendTo(w, m);
  }

  sendTo(w: WorkerHandle, m: ParentMessage): void {
    if (w.exited || !w.child.connected) return;
    if (m.type === 'go') w.settledAt = undefined;
    if (m.type === 'snapshot') w.snapshot = undefined;
    w.child.send(m);
  }

  /** End the run early (first reason wins) and wake the current wait. */
  abort(why: Exclude<Aborted, false>): void {
    if (this.aborted === false) this.aborted = why;
    this.#wake?.();
  }

  /**
   * Wait until `pred` holds (true), `ms` pass, or the run is aborted (false). With `evenIfAborted`
   * an abort does not cut the wait short (used for the final exits). `tick` runs at least
   * every 250 ms while waiting.
   */
  async waitFor(pred: () => boolean, ms: number, evenIfAborted = false, tick?: () => void): Promise<boolean> {
    const end = performance.now() + ms;
    while (!pred()) {
      if (!evenIfAborted && this.aborted !== false) return false;
      const left = end - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
      tick?.();
    }
    return true;
  }

  /** Sum a counter over the workers (final results where they exist, else the latest counters). */
  sum(pick: (c: WorkerCounters) => number): number {
    let n = 0;
    for (const w of this.workers) n += pick(w.result ?? w.counters);
    return n;
  }

  /** Ask every worker for its result, wait for it (bounded), then for every exit; SIGKILL what is left. */
  async shutdown(): Promise<void> {
    if (this.workers.length === 0) return;
    this.#stopping = true;
    this.send({ type: 'stop' });
    const gotAll = await this.waitFor(() => this.workers.every((w) => w.result !== undefined || w.exited), RESULT_TIMEOUT_MS, true);
    if (!gotAll) this.abort('no_results');
    await this.waitFor(() => this.workers.every((w) => w.exited), EXIT_TIMEOUT_MS, true);
    for (const w of this.workers) if (!w.exited) w.child.kill('SIGKILL');
    await this.waitFor(() => this.workers.every((w) => w.exited), EXIT_TIMEOUT_MS, true);
  }

  /** SIGKILL every worker still running, now. */
  killAll(): void {
    this.#stopping = true;
    for (const w of this.workers) if (!w.exited) w.child.kill('SIGKILL');
  }

  /** Report workers that failed (after a run). */
  reportFatal(): void {
    for (const w of this.workers) if (w.fatal) this.#err.write(`c1m bench: worker ${w.config.worker}: ${w.fatal}\n`);
  }
}
