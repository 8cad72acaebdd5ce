/**
 * What the supervisors (threads.ts, prefork.ts) and the worker entry (worker.ts) share: the
 * handler-module loader, the job a worker is given, the messages it answers with, and the
 * restart budget.
 *
 * Protocol: a worker posts `ready` once its reactor runs (with its registry id in threads
 * mode, its bound port in prefork), or `error` if it could not start; on `shutdown` it closes
 * gracefully and posts `closed`; a prefork worker answers `setTls` (a certificate reload)
 * with `tlsSet`. A prefork worker first asks for its job (`job?`, answered by `job`) over its
 * IPC channel: the job (TLS keys included) never sits in its environment, where
 * /proc/<pid>/environ shows it and the kernel limits one string to 128 KiB.
 */
import type { ChildProcess } from 'node:child_process';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { C1mError } from '../core/errors.js';
import type { UdpOptions } from '../core/udp-types.js';
import type { EngineOptions, Handler, TlsServerOptions } from '../core/types.js';
import type { ListenPlan } from '../core/options.js';
import { COMPACT_THREAD_LIMITS } from './memory.js';

/** What a worker thread or process is told to run. */
export interface WorkerSpec {
  /** File URL of the handler module. */
  handler: string;
  handlerOptions: unknown;
  engine: EngineOptions;
  /** Apply `serve`'s compactMemory policy in the worker (prefork children: their own process). */
  compactMemory?: boolean;
  /** Open a UDP socket (the handler is a UdpHandler) instead of listening. */
  udp?: UdpOptions;
  /** Prefork only: the worker's own SO_REUSEPORT listener. */
  listen?: ListenPlan;
  /** Prefork only: the listener's TLS options (`tlsToWire`: the job travels as JSON). */
  tls?: WireTls;
}

/** TLS options in a JSON-safe form: every byte array as `{ $bytes: base64 }`. */
export type WireTls = { readonly wire: unknown };

function encode(v: unknown): unknown {
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (Array.isArray(v)) return v.map(encode);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encode(x)]));
  return v;
}

function decode(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(decode);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.$bytes === 'string' && Object.keys(o).length === 1) return Buffer.from(o.$bytes, 'base64');
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, decode(x)]));
  }
  return v;
}

/** TLS options for a prefork worker's job or a `setTls` message (both JSON). */
export function tlsToWire(t: TlsServerOptions): WireTls {
  return { wire: encode(t) };
}

/** The options `tlsToWire` encoded. */
export function tlsFromWire(w: WireTls): TlsServerOptions {
  return decode(w.wire) as TlsServerOptions;
}

/** The job in `workerData` (threads) or the `job` message (processes). */
export interface WorkerJob {
  mode: 'thread' | 'process';
  spec: WorkerSpec;
}

export type WorkerMessage =
  /** A prefork worker's first message: send me my job (`{ type: 'job', job }`). */
  | { type: 'job?' }
  | { type: 'ready'; id?: number; port?: number }
  | { type: 'error'; message: string; code?: string }
  | { type: 'closed' }
  /** The answer to a prefork worker's `{ type: 'setTls', seq, tls }`: applied, or why not. */
  | { type: 'tlsSet'; seq: number; error?: { message: string; code?: string } };

/** The entry module every worker runs. */
export const workerUrl = new URL('./worker.js', import.meta.url);

/**
 * Start `spec` on a new worker thread (`threads` mode, TCP or UDP): the one place threads are
 * made, so a compact server's thread always gets its young-generation cap (memory.ts).
 */
export function startWorkerThread(spec: WorkerSpec): Worker {
  const job: WorkerJob = { mode: 'thread', spec };
  return new Worker(workerUrl, { workerData: job, ...(spec.compactMemory ? { resourceLimits: COMPACT_THREAD_LIMITS } : {}) });
}

/** A handler module path (relative to the working directory) or URL, as a file URL. */
export function toModuleUrl(spec: string | URL): string {
  if (spec instanceof URL) return spec.href;
  if (spec.startsWith('file:')) return spec;
  return pathToFileURL(isAbsolute(spec) ? spec : resolve(spec)).href;
}

/**
 * Load a handler module (used by every reactor, in every thread and process).
 * Errors: `ERR_C1M_INVALID_OPTION` when the module exports neither `createHandler` nor a
 * default handler object; the module's own import error (`ERR_MODULE_NOT_FOUND`, ...).
 */
export async function loadHandler(spec: string | URL, handlerOptions: unknown): Promise<Handler> {
  const url = toModuleUrl(spec);
  const mod = (await import(url)) as { createHandler?: unknown; default?: unknown };
  const h = typeof mod.createHandler === 'function'
    ? await (mod.createHandler as (o: unknown) => unknown)(handlerOptions)
    : mod.default;
  if (!h || typeof h !== 'object') {
    const what = typeof mod.createHandler === 'function' ? 'its createHandler(options) returned no handler object' : 'it exports neither createHandler(options) nor a default handler object';
    throw new C1mError('ERR_C1M_INVALID_OPTION', `handler module ${url}: ${what}`);
  }
  return h as Handler;
}

/**
 * Resolve with the first message of `target` that `pred` accepts. Rejects on an `error`
 * message, or when the worker exits first.
 */
export function waitFor(target: Worker | ChildProcess, pred: (m: WorkerMessage) => boolean): Promise<WorkerMessage> {
  return new Promise((resolveP, reject) => {
    const onMsg = (m: WorkerMessage): void => {
      if (m.type === 'error') {
        cleanup();
        reject(new C1mError(m.code ?? 'ERR_C1M_WORKER', m.message));
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

/**
 * How long to wait before replacing a worker that died: at once, unless more than 10
 * replacements were started in the last 10 s (a worker that dies on start must not spin).
 */
export class RestartBudget {
  readonly #starts: number[] = [];

  /** Record a restart now; returns the delay in ms before it should start. */
  next(now = Date.now()): number {
    this.#starts.push(now);
    while (this.#starts.length && this.#starts[0]! < now - 10_000) this.#starts.shift();
    return this.#starts.length > 10 ? 1000 : 0;
  }
}

/**
 * Shut one worker thread down gracefully: ask it (`shutdown`, its reactor closes with
 * `timeoutMs`), wait for its `closed`, then terminate it. Never rejects.
 */
export async function stopWorkerThread(worker: Worker, timeoutMs: number): Promise<void> {
  const done = waitFor(worker, (m) => m.type === 'closed').catch(() => undefined);
  worker.postMessage({ type: 'shutdown', timeoutMs });
  await done;
  await worker.terminate();
}
