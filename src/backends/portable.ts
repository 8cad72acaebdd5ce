/**
 * The portable backend: the Handler contract on `node:net`, for platforms without the native
 * epoll addon, and the reference behaviour the native backend is compared against.
 *
 * Model: one `net.Socket` per connection, wrapped in a `Link` (the per-connection state) that
 * the `Engine` keeps in a Map under an integer id. Ids come from a per-reactor counter and are
 * never reused. A `Connection` handle is only `{engine, id}`: it looks its id up on every call,
 * so once a connection closed its handles are stale forever.
 *
 * Invariants:
 * - `onClose` runs exactly once per connection, from the socket's `'close'` event, after the
 *   link left the Map (the handle is already stale inside `onClose`); no other callback of
 *   that connection runs after it.
 * - The first close reason set wins: a socket error arriving after `close()` keeps `'local'`.
 * - A link is `closing` from the moment the engine decided to close it: `onData` stops and
 *   writes are dropped (they return false).
 *
 * Size: over 600 lines of code on purpose: the engine, the per-socket `Link` and the handle are
 * one unit that shares its state (a handle reads the link table, a link calls the engine back);
 * what could stand apart already does (portable-tls.ts, portable-udp.ts, the handler contract).
 *
 * Hot path: one `'data'` event → at most one `onData` call, corked so that the writes it makes
 * leave in one `writev`. Unconsumed bytes live in one per-connection Buffer, grown by doubling
 * and compacted only after at least half of it was consumed (amortized O(1) per byte).
 *
 * Differences from the native backend: `reusePort` needs Node >= 22.12 (it is passed through,
 * and ignored by older `net`); `stats.batches` and `stats.acceptPauses` stay 0; Node < 20.1
 * ignores `highWaterMark` on accepted sockets, so `onDrain` there needs `highWaterMark` >= 16 KiB.
 */
import { connect as netConnect, createServer, type AddressInfo, type ListenOptions, type Server, type Socket, type TcpNetConnectOpts } from 'node:net';
import { C1mError, checkOption } from '../core/errors.js';
import {
  INVALID_RESULT,
  callbackFailed,
  connectionFailed,
  dataAction,
  report,
  resultFailed,
  type HandlerCallback,
} from '../core/handler-contract.js';
import { checkHeaderBytes, putHeader } from '../core/header.js';
import { resolveConnect, resolveListen, resolveTlsConnect, resolveTlsServer, type ResolvedOptions } from '../core/options.js';
import type { UdpHandler, UdpOptions, UdpSocket } from '../core/udp-types.js';
import { PortableUdp } from './portable-udp.js';
import { connect as tlsConnect, createServer as createTlsServer, TLSSocket, type ConnectionOptions, type Server as TlsServer } from 'node:tls';
import { ClientSessions, connectOptions as tlsConnectOptions, handshakeError, serverOptions as tlsServerOptions, tlsCloseReason, tlsInfo } from './portable-tls.js';
import {
  Action,
  type CloseReason,
  type ConnectOptions,
  type Connection,
  type EngineOptions,
  type Handler,
  type ListenAddress,
  type Reactor,
  type ReactorStats,
  type ServerOptions,
  type TcpKeepAlive,
  type TlsInfo,
  type TlsServerOptions,
} from '../core/types.js';

/** First capacity of a pending inbound buffer. */
const MIN_PENDING_BYTES = 16 * 1024;
/** An emptied pending buffer up to this size is kept for the next partial message; larger ones are released. */
const KEEP_PENDING_BYTES = 64 * 1024;
/** How long a graceful close waiting for the server's TLS 1.3 sessions waits for its close (as native). */
const CLOSE_WAIT_MS = 30_000;

/** `Link.send` results. */
const QUEUED = 1;
const QUEUED_FULL = 0;
const DROPPED = -1;

/** Copy write data into a Buffer the caller can no longer modify. */
function copyBytes(data: Uint8Array | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
}

/**
 * The state shared by a reactor, its links and its handles. Not exported: its members are
 * public only so that `Link` and `PortableConnection` can reach them.
 */
class Engine {
  readonly handler: Handler;
  readonly options: ResolvedOptions;
  /** Every connection not yet closed (including outbound ones still connecting), by id. */
  readonly links = new Map<number, Link>();
  /** The link whose `onClose` is running (its tag stays readable). */
  closingLink: Link | undefined;
  /** `Connection.context` values; an entry exists only while a context is set. */
  readonly contexts = new Map<number, unknown>();
  /** Links with an armed idle timeout: the only ones the sweep looks at. */
  readonly timed = new Set<Link>();
  readonly servers = new Set<Server>();
  /** Handler callbacks delivered (`stats.events`). */
  events = 0;
  /** Established connections (`stats.connections`). */
  established = 0;
  /** Inbound TLS handshakes that failed (`stats.tlsRejects`). */
  tlsRejects = 0;
  /** Set by `close()`: no new listeners, connections or accepts. */
  closing = false;
  /** TLS client sessions by `tls` options object (resumption). */
  readonly sessions = new ClientSessions();
  #nextId = 1;
  #sweeper: NodeJS.Timeout | undefined;
  #whenEmpty: (() => void) | undefined;

  constructor(handler: Handler, options: ResolvedOptions) {
    this.handler = handler;
    this.options = options;
  }

  /** Report an error to `options.onError` (see `handler-contract.ts`: never throws). */
  report(err: Error, conn?: Connection): void {
    report(this.options.onError, err, conn);
  }

  /** Track a socket: give it an id and a link. `connected` is false for an outbound connect in progress. */
  adopt(socket: Socket, connected: boolean): Link {
    socket.setNoDelay(this.options.noDelay);
    const link = new Link(this, this.#nextId++, socket, connected);
    this.links.set(link.id, link);
    if (connected) this.established++;
    if (this.options.idleTimeout > 0) link.setTimeout(this.options.idleTimeout);
    return link;
  }

  /** An accepted socket from one of our servers. */
  accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.adopt(socket, true).opened();
  }

  /** A link's socket closed: forget it (called once per link, before `onClose`). */
  forget(link: Link, wasEstablished: boolean): void {
    this.links.delete(link.id);
    this.timed.delete(link);
    if (wasEstablished) this.established--;
  }

  /** After `onClose`: drop the context and finish a pending shutdown once nothing is left. */
  released(link: Link): void {
    this.contexts.delete(link.id);
    if (this.closing && this.links.size === 0) this.#whenEmpty?.();
  }

  /** Arm `link`'s idle timeout; the sweep interval runs only while some link is armed. */
  arm(link: Link): void {
    this.timed.add(link);
    if (this.#sweeper === undefined) {
      this.#sweeper = setInterval(() => this.#sweep(), this.options.timerResolution);
      this.#sweeper.unref();
    }
  }

  #sweep(): void {
    const now = performance.now();
    // Deleting the visited entry and re-adding links (a re-armed onTimeout) is safe while
    // iterating a Set; a re-armed link has lastActivity >= now and is not expired again.
    for (const link of this.timed) {
      if (link.lastActivity + link.timeout < now) link.expire();
    }
    this.#stopSweepIfIdle();
  }

  #stopSweepIfIdle(): void {
    if (this.timed.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** Graceful shutdown; see `Reactor.close`. */
  async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    const serversClosed = [...this.servers].map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    this.servers.clear();
    if (this.handler.onShutdown) {
      try {
        this.handler.onShutdown();
      } catch (err) {
        callbackFailed(this.options.onError, err, 'onShutdown');
      }
    } else {
      // Without onShutdown the engine closes every connection gracefully (flush, then FIN),
      // as the native backend does.
      for (const link of [...this.links.values()]) link.close({ kind: 'local' });
    }
    const empty = new Promise<void>((resolve) => {
      if (this.links.size === 0) resolve();
      else this.#whenEmpty = resolve;
    });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), timeoutMs);
    });
    const first = await Promise.race([empty, expired]);
    clearTimeout(timer);
    if (first === 'expired') {
      for (const link of [...this.links.values()]) link.destroy({ kind: 'shutdown', code: 'ERR_C1M_SHUTDOWN' });
      await empty;
    }
    await Promise.all(serversClosed);
    this.timed.clear();
    this.#stopSweepIfIdle();
  }
}

/** One connection's state. Lives from adoption until its socket's `'close'` event. */
class Link {
  readonly id: number;
  readonly socket: Socket;
  readonly handle: PortableConnection;
  /** Decided to close: no more `onData`, writes are dropped. */
  closing = false;
  /** Idle timeout in ms while armed (0 = disarmed). */
  timeout = 0;
  /** `Connection.tag`. */
  tag = 0;
  /** `performance.now()` of the last bytes received (or of arming the timeout). */
  lastActivity = 0;
  readonly #engine: Engine;
  #connected: boolean;
  #finished = false;
  #peerEnded = false;
  #needDrain = false;
  #reason: CloseReason | undefined;
  /** Unconsumed inbound bytes are `#pending[#pendingStart, #pendingStart + #pendingLength)`. */
  #pending: Buffer | undefined;
  #pendingStart = 0;
  #pendingLength = 0;

  constructor(engine: Engine, id: number, socket: Socket, connected: boolean) {
    this.#engine = engine;
    this.id = id;
    this.socket = socket;
    this.#connected = connected;
    this.handle = new PortableConnection(engine, id);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('drain', () => this.#onDrain());
    socket.on('error', (err: NodeJS.ErrnoException) => this.#onError(err));
    socket.on('close', () => this.#onClose());
    // a TLS connection is established once its handshake completed (and the server verified)
    if (!connected) socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', () => this.#onConnect());
  }

  /** Deliver `onOpen` (the connection is established). */
  opened(): void {
    const handler = this.#engine.handler;
    if (!handler.onOpen) return;
    this.#engine.events++;
    try {
      handler.onOpen(this.handle);
    } catch (err) {
      this.fail(err, 'onOpen');
    }
  }

  /** Queue bytes the caller can no longer modify. */
  send(bytes: Buffer): number {
    const socket = this.socket;
    if (this.closing || socket.writableEnded || socket.destroyed) return DROPPED;
    if (bytes.length !== 0) socket.write(bytes);
    const buffered = socket.writableLength;
    const options = this.#engine.options;
    if (buffered > options.maxOutboundBytes) {
      this.destroy({ kind: 'slow-consumer', code: 'ERR_C1M_SLOW_CONSUMER' });
      return DROPPED;
    }
    // The socket's own highWaterMark equals ours, so whenever this returns QUEUED_FULL the
    // socket's write returned false too and will emit 'drain'.
    if (buffered > options.highWaterMark) {
      this.#needDrain = true;
      return QUEUED_FULL;
    }
    return QUEUED;
  }

  /** Flush, then close. Returns false if already closing. */
  close(reason: CloseReason): boolean {
    if (this.closing) return false;
    this.#reason ??= reason;
    this.closing = true;
    this.#dropPending();
    const socket = this.socket;
    if (socket.writableFinished) {
      socket.destroy();
      return true;
    }
    if (this.#engine.sessions.awaits(socket) && !this.#peerEnded) {
      // A TLS 1.3 client without its session yet reads on (discarding data: closing) until
      // the server's close, bounded like the native backend's close.
      const bound = setTimeout(() => socket.destroy(), CLOSE_WAIT_MS);
      socket.once('end', () => socket.destroy());
      socket.once('close', () => clearTimeout(bound));
    } else {
      socket.once('finish', () => socket.destroy());
    }
    if (!socket.writableEnded) socket.end();
    return true;
  }

  /** Close at once, dropping unsent bytes; the peer sees a reset when the socket allows it. */
  destroy(reason: CloseReason): void {
    if (this.#finished) return;
    this.#reason ??= reason;
    this.closing = true;
    this.#dropPending();
    const socket = this.socket;
    if (socket.destroyed) return;
    // A reset needs an established socket that has not sent FIN (libuv refuses it after shutdown).
    // node:tls sockets have no TCP handle of their own: resetAndDestroy throws (before any change).
    if (socket.connecting || socket.writableEnded || typeof socket.resetAndDestroy !== 'function' || socket instanceof TLSSocket) socket.destroy();
    else socket.resetAndDestroy();
  }

  /** Half-close after flushing; reading continues. Returns false if closing. */
  shutdown(): boolean {
    if (this.closing) return false;
    if (!this.socket.writableEnded) this.socket.end();
    return true;
  }

  /** Arm (ms > 0) or disarm (0) the idle timeout, counting from now. */
  setTimeout(ms: number): void {
    checkOption(Number.isInteger(ms) && ms >= 0, 'timeout', 'a non-negative integer (ms)', ms);
    if (this.#finished) return;
    this.timeout = ms;
    if (ms === 0) {
      this.#engine.timed.delete(this);
      return;
    }
    this.lastActivity = performance.now();
    this.#engine.arm(this);
  }

  /** The idle timeout expired (called by the sweep). */
  expire(): void {
    const engine = this.#engine;
    const ms = this.timeout;
    engine.timed.delete(this);
    this.timeout = 0;
    const reason: CloseReason = { kind: 'timeout', code: 'ERR_C1M_IDLE_TIMEOUT' };
    if (this.closing) {
      // A graceful close that could not flush within another idle period.
      this.destroy(reason);
      return;
    }
    const handler = engine.handler;
    if (handler.onTimeout) {
      engine.events++;
      try {
        handler.onTimeout(this.handle);
      } catch (err) {
        this.fail(err, 'onTimeout');
      }
      return;
    }
    this.close(reason);
    // Stay armed: if the flush stalls for another period, the next expiry destroys.
    this.setTimeout(ms);
  }

  /**
   * `callback` threw: report it and reset this connection only ('handler-error'). A close
   * already decided keeps its own reason (the first reason wins).
   */
  fail(thrown: unknown, callback: HandlerCallback): void {
    this.destroy(connectionFailed(this.#engine.options.onError, thrown, callback, this.handle));
  }

  #onConnect(): void {
    this.#connected = true;
    this.#engine.established++;
    if (!this.closing) this.opened();
  }

  #onData(chunk: Buffer): void {
    if (this.timeout !== 0) this.lastActivity = performance.now();
    if (this.closing) return;
    const engine = this.#engine;
    const handler = engine.handler;
    const data = this.#pendingLength === 0 ? chunk : this.#append(chunk);
    const length = data.length;
    let result: unknown;
    if (handler.onData) {
      engine.events++;
      const socket = this.socket;
      socket.cork();
      try {
        result = handler.onData(this.handle, data);
      } catch (err) {
        socket.uncork();
        this.fail(err, 'onData');
        return;
      }
      socket.uncork();
    }
    // The common results stay inline; only Actions and invalid results call out.
    if (result === undefined) {
      if (!this.closing) this.#dropPending();
    } else if (typeof result === 'number' && Number.isInteger(result) && result >= 0 && result <= length) {
      if (!this.closing) this.#keep(data, chunk, result);
    } else {
      this.#rareResult(result, length);
    }
  }

  /** The rare `onData` results: an Action, or an invalid result (reported even while closing). */
  #rareResult(result: unknown, length: number): void {
    const action = dataAction(result, length);
    if (action === INVALID_RESULT) {
      this.destroy(resultFailed(this.#engine.options.onError, result, length, this.handle));
    } else if (this.closing) {
      return;
    } else if (action === Action.Close) {
      this.close({ kind: 'local' });
    } else if (action === Action.Shutdown) {
      this.#dropPending();
      this.shutdown();
    }
  }

  /** Append a chunk after the pending bytes; returns a view of all of them. */
  #append(chunk: Buffer): Buffer {
    let buffer = this.#pending as Buffer;
    const start = this.#pendingStart;
    const length = this.#pendingLength;
    const need = length + chunk.length;
    if (start + need > buffer.length) {
      // Compact only when that frees at least half the buffer: each compaction then moves
      // fewer bytes than were consumed since the last one. Otherwise double.
      if (need <= buffer.length >>> 1) {
        buffer.copy(buffer, 0, start, start + length);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(need, buffer.length * 2));
        buffer.copy(grown, 0, start, start + length);
        buffer = this.#pending = grown;
      }
      this.#pendingStart = 0;
    }
    chunk.copy(buffer, this.#pendingStart + length);
    this.#pendingLength = need;
    return buffer.subarray(this.#pendingStart, this.#pendingStart + need);
  }

  /** Keep `data[consumed..]` for the next `onData`; enforce `maxInboundBytes`. */
  #keep(data: Buffer, chunk: Buffer, consumed: number): void {
    const rest = data.length - consumed;
    if (rest === 0) {
      this.#dropPending();
      return;
    }
    if (data === chunk) {
      // Nothing was pending: the tail of this chunk starts a pending buffer.
      let buffer = this.#pending;
      if (buffer === undefined || buffer.length < rest) buffer = this.#pending = Buffer.allocUnsafe(Math.max(MIN_PENDING_BYTES, rest * 2));
      chunk.copy(buffer, 0, consumed);
      this.#pendingStart = 0;
    } else {
      this.#pendingStart += consumed;
    }
    this.#pendingLength = rest;
    if (rest > this.#engine.options.maxInboundBytes) this.destroy({ kind: 'inbound-limit', code: 'ERR_C1M_INBOUND_LIMIT' });
  }

  #dropPending(): void {
    this.#pendingStart = 0;
    this.#pendingLength = 0;
    if (this.#pending !== undefined && (this.closing || this.#pending.length > KEEP_PENDING_BYTES)) this.#pending = undefined;
  }

  #onEnd(): void {
    this.#peerEnded = true;
    if (this.closing) return;
    const engine = this.#engine;
    const handler = engine.handler;
    if (handler.onEnd) {
      engine.events++;
      try {
        handler.onEnd(this.handle);
      } catch (err) {
        this.fail(err, 'onEnd');
      }
      return;
    }
    // Default: close our side too. No reason is set, so the close reports 'end'; the socket
    // destroys itself once our FIN is flushed.
    this.closing = true;
    this.#dropPending();
    if (!this.socket.writableEnded) this.socket.end();
  }

  #onDrain(): void {
    if (!this.#needDrain || this.closing) return;
    this.#needDrain = false;
    const engine = this.#engine;
    const handler = engine.handler;
    if (!handler.onDrain) return;
    engine.events++;
    try {
      handler.onDrain(this.handle);
    } catch (err) {
      this.fail(err, 'onDrain');
    }
  }

  #onError(err: NodeJS.ErrnoException): void {
    this.closing = true;
    if (this.#reason !== undefined) return;
    const tls = this.socket instanceof TLSSocket ? tlsCloseReason(err, this.#connected) : undefined;
    if (tls !== undefined) {
      this.#reason = tls;
      this.socket.destroy(); // a half-open TLSSocket is not destroyed by its own errors
      return;
    }
    const reason: CloseReason = { kind: this.#connected ? 'error' : 'connect-failed', error: err };
    if (typeof err.code === 'string') reason.code = err.code;
    if (typeof err.errno === 'number') reason.errno = -Math.abs(err.errno);
    this.#reason = reason;
  }

  #onClose(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.closing = true;
    this.#pending = undefined;
    const engine = this.#engine;
    engine.forget(this, this.#connected);
    const reason: CloseReason = this.#reason ?? { kind: this.#peerEnded ? 'end' : 'local' };
    const handler = engine.handler;
    if (handler.onClose) {
      engine.events++;
      engine.closingLink = this;
      try {
        handler.onClose(this.handle, reason);
      } catch (err) {
        callbackFailed(engine.options.onError, err, 'onClose', this.handle);
      } finally {
        engine.closingLink = undefined;
      }
    }
    engine.released(this);
  }
}

/**
 * A connection handle: the engine and an id, nothing else. Every call looks the id up, so a
 * handle of a closed connection is harmless forever.
 */
class PortableConnection implements Connection {
  readonly id: number;
  readonly #engine: Engine;

  constructor(engine: Engine, id: number) {
    this.#engine = engine;
    this.id = id;
  }

  get open(): boolean {
    const link = this.#engine.links.get(this.id);
    return link !== undefined && !link.closing;
  }

  write(data: Uint8Array | string): boolean {
    const link = this.#engine.links.get(this.id);
    return link !== undefined && !link.closing && link.send(copyBytes(data)) === QUEUED;
  }

  writeWithHeader(header: number, headerBytes: number, data: Uint8Array): boolean {
    checkHeaderBytes(headerBytes);
    const link = this.#engine.links.get(this.id);
    if (link === undefined || link.closing) return false;
    const frame = Buffer.allocUnsafe(headerBytes + data.length);
    putHeader(frame, 0, header, headerBytes);
    frame.set(data, headerBytes);
    return link.send(frame) === QUEUED;
  }

  writev(chunks: readonly (Uint8Array | string)[]): boolean {
    const link = this.#engine.links.get(this.id);
    if (link === undefined || link.closing) return false;
    const parts = chunks.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk));
    return link.send(Buffer.concat(parts)) === QUEUED;
  }

  cork(fn: () => void): void {
    const link = this.#engine.links.get(this.id);
    if (link === undefined) {
      fn();
      return;
    }
    link.socket.cork();
    try {
      fn();
    } finally {
      link.socket.uncork();
    }
  }

  close(): boolean {
    const link = this.#engine.links.get(this.id);
    return link !== undefined && link.close({ kind: 'local' });
  }

  destroy(): boolean {
    const link = this.#engine.links.get(this.id);
    if (link === undefined) return false;
    link.destroy({ kind: 'local' });
    return true;
  }

  shutdown(): boolean {
    const link = this.#engine.links.get(this.id);
    return link !== undefined && link.shutdown();
  }

  pause(): void {
    this.#engine.links.get(this.id)?.socket.pause();
  }

  resume(): void {
    this.#engine.links.get(this.id)?.socket.resume();
  }

  setTimeout(ms: number): void {
    const link = this.#engine.links.get(this.id);
    if (link !== undefined) link.setTimeout(ms);
    else checkOption(Number.isInteger(ms) && ms >= 0, 'timeout', 'a non-negative integer (ms)', ms);
  }

  get bufferedAmount(): number {
    return this.#engine.links.get(this.id)?.socket.writableLength ?? 0;
  }

  get remoteAddress(): string | undefined {
    return this.#engine.links.get(this.id)?.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#engine.links.get(this.id)?.socket.remotePort;
  }

  get localAddress(): string | undefined {
    return this.#engine.links.get(this.id)?.socket.localAddress;
  }

  get localPort(): number | undefined {
    return this.#engine.links.get(this.id)?.socket.localPort;
  }

  get context(): unknown {
    return this.#engine.contexts.get(this.id);
  }

  set context(value: unknown) {
    const engine = this.#engine;
    if (value === undefined) engine.contexts.delete(this.id);
    else if (engine.links.has(this.id)) engine.contexts.set(this.id, value);
  }

  get tag(): number {
    const engine = this.#engine;
    const link = engine.links.get(this.id) ?? (engine.closingLink?.id === this.id ? engine.closingLink : undefined);
    return link?.tag ?? 0;
  }

  set tag(value: number) {
    const link = this.#engine.links.get(this.id);
    if (link !== undefined) link.tag = value >>> 0;
  }

  get tls(): TlsInfo | undefined {
    const link = this.#engine.links.get(this.id);
    return link === undefined || link.closing ? undefined : tlsInfo(link.socket, undefined);
  }
}

/** node:net's socket and server options for `tcpKeepAlive` (idle time only); none when off. */
function keepAliveOptions(ka: Required<TcpKeepAlive> | undefined): { keepAlive?: boolean; keepAliveInitialDelay?: number } {
  return ka === undefined ? {} : { keepAlive: true, keepAliveInitialDelay: ka.idle * 1000 };
}

/** The `Reactor` facade over an `Engine`. */

class PortableReactor implements Reactor {
  readonly backend = 'portable' as const;
  readonly #engine: Engine;
  /** UDP sockets on node:dgram (./portable-udp.ts). */
  readonly #udp: PortableUdp;
  #closed: Promise<void> | undefined;

  constructor(handler: Handler, options: ResolvedOptions) {
    this.#engine = new Engine(handler, options);
    this.#udp = new PortableUdp((err) => this.#engine.report(err));
  }

  async udp(options: UdpOptions, handler: UdpHandler): Promise<UdpSocket> {
    if (this.#engine.closing) throw new C1mError('ERR_C1M_REACTOR_CLOSED', 'udp() after close()');
    return this.#udp.open(options, handler);
  }

  async listen(options: Omit<ServerOptions, keyof EngineOptions>): Promise<ListenAddress> {
    const engine = this.#engine;
    if (engine.closing) throw new C1mError('ERR_C1M_REACTOR_CLOSED', 'listen() after close()');
    const o = resolveListen(options);
    // node:net's keep-alive sets the idle time only (TCP_KEEPIDLE); interval and count stay the
    // system's. The server applies it to each accepted socket (on a TLS server the raw socket,
    // before its handshake).
    const netOptions = { allowHalfOpen: true, noDelay: engine.options.noDelay, highWaterMark: engine.options.highWaterMark, ...keepAliveOptions(o.tcpKeepAlive) };
    let server: Server;
    if (options.tls !== undefined) {
      const tls = createTlsServer({ ...netOptions, ...tlsServerOptions(resolveTlsServer(options.tls)) });
      tls.on('secureConnection', (socket: TLSSocket) => engine.accept(socket));
      tls.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
        socket.destroy(); // node:tls leaves it open (plain HTTP, a stalled handshake)
        engine.tlsRejects++;
        engine.report(handshakeError(err));
      });
      server = tls;
    } else {
      server = createServer(netOptions);
      server.on('connection', (socket: Socket) => engine.accept(socket));
    }
    // `reusePort` is understood by net from Node 22.12 on; older versions ignore the field.
    const listenOptions: ListenOptions & { reusePort?: boolean } = { port: o.port, host: o.host, backlog: o.backlog };
    if (o.reusePort) listenOptions.reusePort = true;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenOptions, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // After binding, server errors (accept failures) are reported, never thrown.
    server.on('error', (err: Error) => engine.report(err));
    if (engine.closing) {
      server.close();
      throw new C1mError('ERR_C1M_REACTOR_CLOSED', 'close() was called while listen() was binding');
    }
    engine.servers.add(server);
    const address = server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  setTlsContext(listener: ListenAddress, tls: TlsServerOptions): void {
    const o = tlsServerOptions(resolveTlsServer(tls));
    for (const server of this.#engine.servers) {
      const a = server.address() as AddressInfo | null;
      if (!(server instanceof Object && 'setSecureContext' in server) || a?.port !== listener.port || a.address !== listener.host) continue;
      const t = server as TlsServer;
      t.setSecureContext(o); // new connections; SNI names stay those given to listen
      return;
    }
    throw new C1mError('ERR_C1M_INVALID_OPTION', `no TLS listener of this reactor at ${listener.host}:${listener.port}`);
  }

  connect(options: Omit<ConnectOptions, keyof EngineOptions>): Connection {
    const engine = this.#engine;
    if (engine.closing) throw new C1mError('ERR_C1M_REACTOR_CLOSED', 'connect() after close()');
    const o = resolveConnect(options);
    if (options.tls !== undefined) {
      const r = resolveTlsConnect(options.tls, o.host);
      const t = tlsConnectOptions(r);
      const key = `${r.servername}:${o.port}`;
      if (r.resume) t.session = this.#engine.sessions.get(options.tls, key);
      const socket = tlsConnect({ ...t, port: o.port, host: o.host, localAddress: o.localAddress, allowHalfOpen: true, highWaterMark: engine.options.highWaterMark } as ConnectionOptions);
      // tls.connect does not pass net's keepAlive options on to its socket
      if (o.tcpKeepAlive !== undefined) socket.setKeepAlive(true, o.tcpKeepAlive.idle * 1000);
      if (r.resume) this.#engine.sessions.watch(socket, options.tls, key);
      return engine.adopt(socket, false).handle;
    }
    const connectOptions: TcpNetConnectOpts & { highWaterMark: number } = {
      port: o.port,
      host: o.host,
      localAddress: o.localAddress,
      allowHalfOpen: true,
      highWaterMark: engine.options.highWaterMark,
      ...keepAliveOptions(o.tcpKeepAlive),
    };
    return engine.adopt(netConnect(connectOptions), false).handle;
  }

  connection(id: number): Connection {
    const engine = this.#engine;
    return engine.links.get(id)?.handle ?? new PortableConnection(engine, id);
  }

  bufferedAmount(id: number): number {
    return this.#engine.links.get(id)?.handle.bufferedAmount ?? 0;
  }

  /** `node:net` hands a write to the kernel at once: what it still holds is a backlog (or, in that connection's own corked `onData`, its writes so far). */
  backlog(id: number): number {
    return this.bufferedAmount(id);
  }

  connections(): Connection[] {
    return Array.from(this.#engine.links.values(), (link) => link.handle);
  }

  broadcast(ids: ArrayLike<number>, data: Uint8Array | string): number {
    const links = this.#engine.links;
    // One copy shared by every socket: net never modifies the Buffers it is given.
    const bytes = copyBytes(data);
    let queued = 0;
    for (let i = 0; i < ids.length; i++) {
      const link = links.get(ids[i] as number);
      if (link !== undefined && link.send(bytes) !== DROPPED) queued++;
    }
    return queued;
  }

  get stats(): ReactorStats {
    const engine = this.#engine;
    return { connections: engine.established, batches: 0, events: engine.events, acceptPauses: 0, tlsRejects: engine.tlsRejects };
  }

  close(timeoutMs = 5000): Promise<void> {
    try {
      checkOption(Number.isFinite(timeoutMs) && timeoutMs >= 0, 'timeoutMs', 'a non-negative number (ms)', timeoutMs);
    } catch (err) {
      return Promise.reject(err);
    }
    this.#udp.closeAll();
    this.#closed ??= this.#engine.shutdown(timeoutMs);
    return this.#closed;
  }
}

/**
 * Create a reactor on `node:net` running `handler`.
 *
 * Threading: the reactor and its connections belong to the calling thread.
 *
 * Errors: handler exceptions close only their connection (reason `'handler-error'`) and go to
 * `options.onError`, as do listener errors after binding; they never stop the reactor.
 */
export function createPortableReactor(handler: Handler, options: ResolvedOptions): Reactor {
  return new PortableReactor(handler, options);
}
