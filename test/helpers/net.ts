/**
 * Helpers for loopback integration tests: a raw node:net client that collects bytes, a polling
 * `waitFor` with a timeout (it fails only when something never happens), fd counting, and a
 * server on a chosen backend whose `onError` collects instead of printing.
 */
import { readdirSync } from 'node:fs';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { createReactor } from '../../src/index.js';
import type { EngineOptions, Handler, Reactor } from '../../src/index.js';
import type { BackendName } from './backends.js';

export const HOST = '127.0.0.1';
/** Per-test guard against hangs (never a performance threshold). */
export const GUARD = { timeout: 120_000 };

/** A loopback port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, HOST, r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void, reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `pred` until it is true; reject after `timeout` ms naming `what`. */
export async function waitFor(pred: () => boolean, what = 'condition', timeout = 30_000): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Reject if `p` does not settle within `timeout` ms. */
export async function within<T>(p: Promise<T>, what: string, timeout = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms waiting for ${what}`)), timeout);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Open file descriptors of this process. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** A node:net client that collects every byte it receives. */
export class RawClient {
  readonly socket: Socket;
  readonly chunks: Buffer[] = [];
  length = 0;
  ended = false;
  closed = false;
  error: (Error & { code?: string }) | undefined;
  readonly connected: Promise<void>;
  readonly closedP: Promise<void>;

  constructor(port: number, opts: { host?: string; allowHalfOpen?: boolean; paused?: boolean } = {}) {
    this.socket = netConnect({ port, host: opts.host ?? HOST, allowHalfOpen: opts.allowHalfOpen ?? false });
    const c = deferred(), z = deferred();
    this.connected = c.promise;
    this.closedP = z.promise;
    this.connected.catch(() => {});
    this.socket.once('connect', () => c.resolve());
    this.socket.on('error', (err) => {
      this.error ??= err;
      c.reject(err);
    });
    this.socket.on('end', () => (this.ended = true));
    this.socket.on('close', () => {
      this.closed = true;
      c.reject(this.error ?? new Error('closed before connecting'));
      z.resolve();
    });
    if (opts.paused) this.socket.pause();
    else this.collect();
  }

  /** Start collecting (also resumes a paused socket). */
  collect(): void {
    this.socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.length += chunk.length;
    });
    this.socket.resume();
  }

  bytes(): Buffer {
    if (this.chunks.length > 1) this.chunks.splice(0, this.chunks.length, Buffer.concat(this.chunks));
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  text(): string {
    return this.bytes().toString('utf8');
  }

  /** Write and resolve once the bytes were handed to the kernel. */
  send(data: Uint8Array | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  waitBytes(n: number, timeout = 30_000): Promise<void> {
    return waitFor(() => this.length >= n || this.closed, `${n} bytes (have ${this.length})`, timeout).then(() => {
      if (this.length < n) throw new Error(`connection closed after ${this.length} of ${n} bytes`);
    });
  }

  waitClosed(timeout = 30_000): Promise<void> {
    return within(this.closedP, 'client close', timeout);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Connect a RawClient and wait for the connection. */
export async function rawClient(port: number, opts?: { host?: string; allowHalfOpen?: boolean; paused?: boolean }): Promise<RawClient> {
  const c = new RawClient(port, opts);
  await within(c.connected, 'client connect');
  return c;
}

export interface TestServer {
  reactor: Reactor;
  port: number;
  errors: Error[];
}

/** A reactor on `backend`, listening on an ephemeral loopback port. */
export async function startServer(backend: BackendName, handler: Handler, options: EngineOptions = {}): Promise<TestServer> {
  const errors: Error[] = [];
  const reactor = createReactor(handler, { onError: (err) => errors.push(err), ...options, backend });
  const { port } = await reactor.listen({ port: 0, host: HOST });
  return { reactor, port, errors };
}

/** A handler that writes back every byte. */
export const echoHandler: Handler = {
  onData(conn, data) {
    conn.write(data);
  },
};

/** Deterministic pseudo-random bytes (xorshift), so failures are reproducible. */
export function payload(size: number, seed = size): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Index of the first differing byte, or -1. */
export function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
