/**
 * Connection handles of the native backend. A handle is a value `(host, fd, gen)` made per
 * callback: it holds no state of its own, and every method goes to the reactor that made it,
 * which checks `(fd, gen)` against the shared slot table first. So a handle to a closed
 * connection is stale forever, even after the kernel reuses the fd.
 */
import type { NativeConstants } from '../core/binding.js';
import { C1mError } from '../core/errors.js';
import { checkHeaderBytes } from '../core/header.js';
import type { IdMap } from '../core/id-map.js';
import type { Connection, TlsInfo } from '../core/types.js';

const TWO32 = 2 ** 32;

/** What a handle needs of its reactor (`NativeReactor` implements it). Threading: the reactor's thread. */
export interface ConnectionHost {
  readonly k: NativeConstants;
  /** Per-connection user values, only for connections that have one. */
  readonly contexts: IdMap<unknown>;
  isAlive(fd: number, gen: number): boolean;
  write(fd: number, gen: number, data: Uint8Array | string): boolean;
  writeWithHeader(fd: number, gen: number, header: number, headerBytes: number, data: Uint8Array): boolean;
  command(fd: number, gen: number, op: number, arg: number): boolean;
  buffered(fd: number, gen: number): number;
  sockname(fd: number, gen: number, peer: boolean): [string, number] | undefined;
  getTag(fd: number, gen: number): number;
  setTag(fd: number, gen: number, v: number): void;
  tlsInfo(fd: number, gen: number): TlsInfo | undefined;
}

/** A connection of the native backend (see the file comment). */
export class NativeConnection implements Connection {
  readonly #r: ConnectionHost;
  readonly fd: number;
  readonly gen: number;
  constructor(r: ConnectionHost, fd: number, gen: number) {
    this.#r = r;
    this.fd = fd;
    this.gen = gen;
  }
  get id(): number {
    return this.fd < 0 ? this.fd : this.gen * TWO32 + this.fd;
  }
  get open(): boolean {
    return this.#r.isAlive(this.fd, this.gen);
  }
  write(data: Uint8Array | string): boolean {
    return this.#r.write(this.fd, this.gen, data);
  }
  writeWithHeader(header: number, headerBytes: number, data: Uint8Array): boolean {
    if (headerBytes !== 2 && headerBytes !== 4) checkHeaderBytes(headerBytes);
    return this.#r.writeWithHeader(this.fd, this.gen, header, headerBytes, data);
  }
  writev(chunks: readonly (Uint8Array | string)[]): boolean {
    let ok = this.#r.isAlive(this.fd, this.gen);
    for (const c of chunks) ok = this.#r.write(this.fd, this.gen, c) && ok;
    return ok;
  }
  cork(fn: () => void): void {
    // Writes are always staged until the batch (or microtask) ends, and consecutive writes to
    // one connection leave in one sendmsg: corking is the engine's normal behaviour.
    fn();
  }
  close(): boolean {
    return this.#r.command(this.fd, this.gen, this.#r.k.OP_CLOSE, 0);
  }
  destroy(): boolean {
    return this.#r.command(this.fd, this.gen, this.#r.k.OP_DESTROY, this.#r.k.R_LOCAL);
  }
  shutdown(): boolean {
    return this.#r.command(this.fd, this.gen, this.#r.k.OP_SHUTDOWN, 0);
  }
  pause(): void {
    this.#r.command(this.fd, this.gen, this.#r.k.OP_PAUSE, 0);
  }
  resume(): void {
    this.#r.command(this.fd, this.gen, this.#r.k.OP_RESUME, 0);
  }
  setTimeout(ms: number): void {
    if (!Number.isInteger(ms) || ms < 0 || ms > 0xffffffff) {
      throw new C1mError('ERR_C1M_INVALID_OPTION', `timeout must be a non-negative integer (ms), got ${ms}`);
    }
    this.#r.command(this.fd, this.gen, this.#r.k.OP_TIMEOUT, ms);
  }
  setHeartbeat(ms: number, absorbPongs: boolean): void {
    if (!Number.isInteger(ms) || ms < 0 || ms > 0xffffffff) {
      throw new C1mError('ERR_C1M_INVALID_OPTION', `heartbeat interval must be a non-negative integer (ms), got ${ms}`);
    }
    const k = this.#r.k;
    this.#r.command(this.fd, this.gen, k.OP_TIMEOUT | k.OPF_HEARTBEAT | (absorbPongs ? k.OPF_PONGS : 0), ms);
  }
  setAutoPong(on: boolean): void {
    this.#r.command(this.fd, this.gen, this.#r.k.OP_AUTO_PONG, on ? 1 : 0);
  }
  get bufferedAmount(): number {
    return this.#r.buffered(this.fd, this.gen);
  }
  get remoteAddress(): string | undefined {
    return this.#r.sockname(this.fd, this.gen, true)?.[0];
  }
  get remotePort(): number | undefined {
    return this.#r.sockname(this.fd, this.gen, true)?.[1];
  }
  get localAddress(): string | undefined {
    return this.#r.sockname(this.fd, this.gen, false)?.[0];
  }
  get localPort(): number | undefined {
    return this.#r.sockname(this.fd, this.gen, false)?.[1];
  }
  get context(): unknown {
    return this.#r.contexts.get(this.id);
  }
  set context(v: unknown) {
    if (!this.open) return;
    if (v === undefined) this.#r.contexts.delete(this.id);
    else this.#r.contexts.set(this.id, v);
  }
  get tag(): number {
    return this.#r.getTag(this.fd, this.gen);
  }
  set tag(v: number) {
    this.#r.setTag(this.fd, this.gen, v);
  }
  get tls(): TlsInfo | undefined {
    return this.#r.tlsInfo(this.fd, this.gen);
  }
}
