/**
 * The native backend: a Reactor over the epoll addon.
 *
 * Model: the addon calls `#onBatch(n)` once per poll with n event records in the shared event
 * array; data is a view of the shared receive area. Everything the handlers do (write, close,
 * ...) is staged as commands in the shared send area and applied by the addon when the batch
 * returns: one crossing per poll. Commands staged outside a batch (timers, other I/O) are
 * flushed by one crossing at the end of the current microtask queue.
 *
 * Per connection, JS holds nothing unless the user sets `context`: handles are made per
 * callback; liveness and buffered bytes are read from the shared slot table.
 *
 * Size: over 600 lines of code on purpose. The batch loop and the send-area staging share the
 * reactor's private state on the per-message path (slot and event views, the merge state of
 * the last staged write, staged byte counts), and on V8 11 every hop through another object
 * there is a load the hot path pays per message (docs/architecture.md, "The JS side of a
 * poll"). What is not on that path stands apart: handles (native-connection.ts), broadcast
 * staging (native-broadcast.ts), UDP (native-udp.ts), TLS (native-tls.ts), close reasons
 * (core/layout.ts), the handler contract (core/handler-contract.ts).
 */
import { Action } from '../core/types.js';
import type { CloseReason, Connection, Handler, ListenAddress, Reactor, ReactorStats, TlsConnectOptions, TlsInfo, TlsServerOptions } from '../core/types.js';
import { raiseNofile, type Binding, type NativeConstants, type NativeHandle, type NativeTlsContext } from '../core/binding.js';
import { closeReason, ctlBytes, layoutOf, reactorError, type Layout } from '../core/layout.js';
import { C1mError, checkOption, errnoName, systemError } from '../core/errors.js';
import {
  INVALID_RESULT,
  callbackFailed,
  connectionFailed,
  dataAction,
  report,
  resultFailed,
  type HandlerCallback,
  type HandlerErrorReason,
} from '../core/handler-contract.js';
import { areaView } from '../core/area-view.js';
import { IdMap } from '../core/id-map.js';
import { putHeader } from '../core/header.js';
import { NativeConnection, type ConnectionHost } from './native-connection.js';
import { clearStaged, stageBroadcast, touch, touchList, type BroadcastArea } from './native-broadcast.js';
import { tlsContext, tlsFailure, tlsInfo } from './native-tls.js';
import { resolveConnect, resolveListen, resolveTlsConnect, resolveTlsServer, toBytes, type ResolvedOptions } from '../core/options.js';
import type { UdpHandler, UdpOptions, UdpSocket } from '../core/udp-types.js';
import { NativeUdp } from './native-udp.js';

const EVENTS = 4096;
const SEND_AREA = 1 << 20;
const READ_BUDGET = 64 * 1024;
/** Writes larger than this skip the send area and go out in their own crossing. */
const DIRECT_WRITE = 128 * 1024;
const TWO32 = 2 ** 32;
/** What the addon's listen and connect take for "no TCP keep-alive" (idle 0). */
const KEEPALIVE_OFF = { idle: 0, interval: 0, count: 0 } as const;
/**
 * `Uint8Array.prototype.set`, called with `.call`: a `.set` load on a typed array stays a
 * generic LoadIC call in optimized code (V8 11), about 4 ns per staged write.
 */
const copyInto = Uint8Array.prototype.set;

/** Hand-off balancing across sub-reactors (threads mode). */
export type Balance = 'round-robin' | 'least-connections' | 'hash';

/** Extra listen options for the threads mode's acceptor. */
export interface HandoffOptions {
  targets: number[];
  balance: Balance;
}


/** A reactor on the epoll addon. Create with `createNativeReactor`. */
export class NativeReactor implements Reactor, ConnectionHost {
  readonly backend = 'native' as const;
  readonly k: NativeConstants;
  /** Per-connection user values, only for connections that have one. */
  readonly contexts = new IdMap<unknown>();
  /** `Connection.tag` by fd, allocated on first use (pages are touched only where used);
   *  zero for every fd without a connection (cleared after each `onClose`). */
  #tags: Uint32Array | null = null;
  /** The connection whose `onClose` is running: its tag is still readable. */
  #closingFd = -1;
  #closingGen = -1;
  readonly #b: Binding;
  readonly #h: NativeHandle;
  readonly #handler: Handler;
  readonly #opts: ResolvedOptions;
  readonly #slots: Uint32Array;
  readonly #nslots: number;
  /** The receive area: `onData` gets views of it (`areaView`). */
  readonly #recv: ArrayBuffer;
  readonly #ev: Int32Array;
  readonly #send: Buffer;
  readonly #sendI32: Int32Array;
  readonly #ctl: Int32Array;
  /** Bytes staged per fd (writes and broadcasts) since the last flush (reset lazily via #touched). */
  readonly #staged: Uint32Array;
  readonly #touched: Int32Array;
  /** The last staged write (header offset, end of the staged area after it, fd, gen): a
   *  write to the same connection right after it extends it. -1: none since the last flush. */
  #mergeAt = 0;
  #mergeEnd = -1;
  /** Broadcast staging (native-broadcast.ts); its `castEnd` is reset wherever the area is consumed. */
  readonly #castArea: BroadcastArea;
  #mergeFd = -1;
  #mergeGen = 0;
  #placeAt = 0;
  #placePrior = 0;
  #inBatch = false;
  #flushQueued = false;
  /** Established connections (quiet accepts included once absorbed). */
  #open = 0;
  /** No onOpen: the engine counts accepts (CTL_QUIET_OPENS) instead of reporting each, so a
   *  poll that only accepted costs no crossing. `#quietSeen` is the count absorbed so far. */
  readonly #quiet: boolean;
  #quietSeen = 0;
  /** Outbound connections still connecting. */
  #connecting = 0;
  #refd = true;
  #batches = 0;
  #events = 0;
  #failedConnects = 0;
  readonly #listeners = new Map<number, ListenAddress>();
  /** Why a connection a failed callback reset is closing, by id, until its CLOSE record. */
  readonly #handlerReasons = new Map<number, HandlerErrorReason>();
  /** Accepted TLS connections dropped during their handshake. */
  #tlsRejects = 0;
  /** Client TLS contexts, one per `tls` options object (shared by the connects using it). */
  readonly #clientTls = new WeakMap<TlsConnectOptions, NativeTlsContext>();
  readonly #connectTargets = new Map<number, { host: string; port: number }>();
  /** The shared-memory layout (src/core/layout.ts). */
  readonly #L: Layout;
  // Layout constants as own fields: the per-message checks and staging read them without going
  // through the layout object.
  readonly #slotWords: number;
  readonly #slotGen: number;
  readonly #slotFlags: number;
  readonly #slotOutLen: number;
  readonly #liveFlags: number;
  readonly #cmdBytes: number;
  readonly #cmdOp: number;
  readonly #cmdFd: number;
  readonly #cmdGen: number;
  readonly #cmdLen: number;
  readonly #alignMask: number;
  /** Control word: bytes of commands staged in the send area. */
  readonly #sendUsed: number;
  readonly #opWrite: number;
  readonly #wantDrain: number;
  readonly #highWater: number;
  /** UDP sockets (./native-udp.ts), made at the first `udp()`. */
  #udp: NativeUdp | null = null;
  #closing: Promise<void> | undefined;
  #closed: (() => void) | undefined;
  #released = false;

  constructor(b: Binding, handler: Handler, opts: ResolvedOptions) {
    this.#b = b;
    this.k = b.constants;
    this.#handler = handler;
    this.#quiet = !handler.onOpen;
    this.#opts = opts;
    const L = this.#L = layoutOf(this.k);
    this.#slotWords = L.slotWords;
    this.#slotGen = L.slotGen;
    this.#slotFlags = L.slotFlags;
    this.#slotOutLen = L.slotOutLen;
    this.#liveFlags = L.liveFlags;
    this.#cmdBytes = L.cmdBytes;
    this.#cmdOp = L.cmdOp;
    this.#cmdFd = L.cmdFd;
    this.#cmdGen = L.cmdGen;
    this.#cmdLen = L.cmdLen;
    this.#alignMask = L.cmdAlignMask;
    this.#sendUsed = L.ctlSendUsed;
    this.#opWrite = this.k.OP_WRITE;
    this.#wantDrain = this.k.OPF_WANT_DRAIN;
    this.#highWater = opts.highWaterMark;
    const [soft] = raiseNofile(b);
    // fds are below the soft limit; cap the table at 16M entries (512 MiB of address space,
    // touched only where fds are used).
    this.#nslots = Math.min(Math.max(soft, 1024), 1 << 24);
    const slots = new ArrayBuffer(this.#nslots * L.slotBytes);
    const recv = new ArrayBuffer(Math.max(2 << 20, opts.maxInboundBytes + READ_BUDGET + 4096));
    const events = new ArrayBuffer(EVENTS * L.evBytes);
    const send = new ArrayBuffer(SEND_AREA);
    const ctl = new ArrayBuffer(ctlBytes(L));
    this.#slots = new Uint32Array(slots);
    this.#recv = recv;
    this.#ev = new Int32Array(events);
    this.#send = Buffer.from(send);
    this.#sendI32 = new Int32Array(send);
    this.#ctl = new Int32Array(ctl);
    this.#staged = new Uint32Array(this.#nslots);
    this.#touched = touchList(this.#nslots);
    this.#castArea = {
      send: this.#send, sendI32: this.#sendI32, ctl: this.#ctl, L, size: SEND_AREA, op: this.k.OP_BROADCAST, castAt: -1, castEnd: -1,
      staged: this.#staged, touched: this.#touched,
      alive: (fd, gen) => this.#alive(fd, gen),
      flush: () => this.#flushNow(),
    };
    const tickMs = opts.timerResolution;
    this.#h = b.create(
      {
        nslots: this.#nslots,
        maxIn: opts.maxInboundBytes,
        maxOut: Math.min(opts.maxOutboundBytes, 0xffffffff),
        highWater: opts.highWaterMark,
        tickMs,
        idleTicks: opts.idleTimeout ? Math.ceil(opts.idleTimeout / tickMs) : 0,
        nodelay: opts.noDelay ? 1 : 0,
        readBudget: READ_BUDGET,
        quietOpen: this.#quiet ? 1 : 0,
      },
      slots, recv, events, send, ctl,
      (n) => this.#onBatch(n),
    );
    if (opts.pollInterval > 0) this.#b.pollInterval(this.#h, opts.pollInterval);
    this.#updateRef();
  }

  /** Registry id of this reactor: a hand-off target for an acceptor on another thread. */
  get nativeId(): number {
    return this.#b.id(this.#h);
  }

  get stats(): ReactorStats {
    this.#absorbQuiet();
    return {
      connections: this.#open,
      batches: this.#batches,
      events: this.#events,
      acceptPauses: this.#released ? 0 : this.#ctl[this.#L.ctlAcceptPauses]!,
      tlsRejects: this.#tlsRejects,
    };
  }

  // ---- used by NativeConnection ----

  /** True from connect()/accept until the connection closes (connecting counts as open). */
  isAlive(fd: number, gen: number): boolean {
    return this.#alive(fd, gen);
  }

  #alive(fd: number, gen: number): boolean {
    if (fd < 0 || fd >= this.#nslots || this.#released) return false;
    const w = fd * this.#slotWords;
    return this.#slots[w + this.#slotGen] === gen && (this.#slots[w + this.#slotFlags]! & this.#liveFlags) !== 0;
  }

  getTag(fd: number, gen: number): number {
    // A tag is non-zero only from setTag on a live connection to the end of its onClose, and
    // a slot's gen changes when its connection closes: the gen check is the liveness check.
    const tags = this.#tags;
    if (tags === null || fd < 0 || fd >= this.#nslots) return 0;
    const t = tags[fd]!;
    if (t === 0) return 0;
    if (this.#slots[fd * this.#slotWords + this.#slotGen] === gen && !this.#released) return t;
    return fd === this.#closingFd && gen === this.#closingGen ? t : 0;
  }

  setTag(fd: number, gen: number, v: number): void {
    if (!this.#alive(fd, gen)) return;
    (this.#tags ??= new Uint32Array(this.#nslots))[fd] = v;
  }

  buffered(fd: number, gen: number): number {
    if (!this.#alive(fd, gen)) return 0;
    return this.#slots[fd * this.#slotWords + this.#slotOutLen]! + this.#staged[fd]!;
  }

  /** `conn.tls`: one addon call; undefined for plain TCP or before the handshake completed. */
  tlsInfo(fd: number, gen: number): TlsInfo | undefined {
    if (!this.#alive(fd, gen) || (this.#slots[fd * this.#slotWords + this.#slotFlags]! & this.k.F_TLS) === 0) return undefined;
    return tlsInfo(this.#b, this.#h, fd, gen);
  }

  sockname(fd: number, gen: number, peer: boolean): [string, number] | undefined {
    if (!this.#alive(fd, gen)) return undefined;
    return this.#b.sockname(this.#h, fd, gen, peer);
  }

  /** Stage `data` for fd/gen. Returns false past the high-water mark or for a stale id. */
  write(fd: number, gen: number, data: Uint8Array | string): boolean {
    let len: number;
    if (typeof data === 'string') {
      len = data.length * 3 <= DIRECT_WRITE ? -1 : Buffer.byteLength(data);
      if (len > DIRECT_WRITE) return this.#alive(fd, gen) && this.#writeDirect(fd, gen, Buffer.from(data));
    } else {
      len = data.length;
      if (len > DIRECT_WRITE) return this.#alive(fd, gen) && this.#writeDirect(fd, gen, data);
    }
    const dst = this.#place(fd, gen, len < 0 ? data.length * 3 : len);
    if (dst < 0) return false;
    if (typeof data === 'string') len = this.#send.write(data, dst, 'utf8');
    else copyInto.call(this.#send, data, dst);
    return this.#commit(fd, gen, len);
  }

  /** `write` of a 1 to 4 byte header (checked by the caller) and `data`. */
  writeWithHeader(fd: number, gen: number, header: number, headerBytes: number, data: Uint8Array): boolean {
    const len = headerBytes + data.length;
    if (len > DIRECT_WRITE) {
      if (!this.#alive(fd, gen)) return false;
      const frame = Buffer.allocUnsafe(len);
      putHeader(frame, 0, header, headerBytes);
      frame.set(data, headerBytes);
      return this.#writeDirect(fd, gen, frame);
    }
    const dst = this.#place(fd, gen, len);
    if (dst < 0) return false;
    putHeader(this.#send, dst, header, headerBytes);
    copyInto.call(this.#send, data, dst + headerBytes);
    return this.#commit(fd, gen, len);
  }

  /**
   * Where `room` more bytes for fd/gen go in the send area, or -1 for a stale id. Consecutive
   * writes to one connection extend its last staged write: one command header, no padding
   * between them (a WebSocket frame's header and payload, a pipelined reply). Such a write
   * needs no liveness check: the connection was alive at the write it extends, and only native
   * code changes the slot table, which has not run since (a flush resets #mergeEnd). Flushes
   * first when the area is full. Sets #placeAt/#placePrior for `#commit`.
   */
  #place(fd: number, gen: number, room: number): number {
    let at = this.#ctl[this.#sendUsed]!, prior = 0;
    if (at === this.#mergeEnd && fd === this.#mergeFd && gen === this.#mergeGen) {
      at = this.#mergeAt;
      prior = this.#sendI32[(at >> 2) + this.#cmdLen]!;
    } else if (!this.#alive(fd, gen)) return -1;
    const hdr = this.#cmdBytes;
    if (at + hdr + prior + room + this.#alignMask > SEND_AREA) {
      this.#flushNow(); // native code ran: the connection may have closed in it
      if (!this.#alive(fd, gen)) return -1;
      at = prior = 0;
    }
    this.#placeAt = at;
    this.#placePrior = prior;
    return at + hdr + prior;
  }

  /**
   * Account `len` bytes copied where `#place` said: the command header, staged bytes,
   * backpressure. Extending a staged write (prior > 0) leaves what its first write set: the
   * command's fd and gen, the merge target, the flush already scheduled (or the batch's end).
   */
  #commit(fd: number, gen: number, len: number): boolean {
    const at = this.#placeAt, prior = this.#placePrior;
    const staged = this.#staged[fd]! + len;
    this.#staged[fd] = staged;
    const ok = this.#slots[fd * this.#slotWords + this.#slotOutLen]! + staged <= this.#highWater;
    const i = at >> 2, mask = this.#alignMask;
    if (prior === 0) {
      if (staged === len) touch(this.#touched, fd);
      this.#sendI32[i + this.#cmdOp] = ok ? this.#opWrite : this.#opWrite | this.#wantDrain;
      this.#sendI32[i + this.#cmdFd] = fd;
      this.#sendI32[i + this.#cmdGen] = gen;
      this.#mergeAt = at;
      this.#mergeFd = fd;
      this.#mergeGen = gen;
      this.#scheduleFlush();
    } else if (!ok) {
      this.#sendI32[i + this.#cmdOp] |= this.#wantDrain;
    }
    this.#sendI32[i + this.#cmdLen] = prior + len;
    const end = at + this.#cmdBytes + ((prior + len + mask) & ~mask);
    this.#ctl[this.#sendUsed] = end;
    this.#mergeEnd = end;
    return ok;
  }

  #writeDirect(fd: number, gen: number, data: Uint8Array): boolean {
    this.#flushNow();
    if (this.#b.writeDirect(this.#h, fd, gen, data) < 0) return false;
    return this.buffered(fd, gen) <= this.#opts.highWaterMark;
  }

  /** Stage a command without payload. Returns false for a stale id. */
  command(fd: number, gen: number, op: number, arg: number): boolean {
    if (!this.#alive(fd, gen)) return false;
    let used = this.#ctl[this.#sendUsed]!;
    const hdr = this.#cmdBytes;
    if (used + hdr > SEND_AREA) {
      this.#flushNow();
      used = 0;
    }
    const i = used >> 2;
    this.#sendI32[i + this.#cmdOp] = op;
    this.#sendI32[i + this.#cmdFd] = fd;
    this.#sendI32[i + this.#cmdGen] = gen;
    this.#sendI32[i + this.#cmdLen] = arg;
    this.#ctl[this.#sendUsed] = used + hdr;
    this.#scheduleFlush();
    return true;
  }

  #scheduleFlush(): void {
    if (this.#inBatch || this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      if (this.#ctl[this.#sendUsed] !== 0) this.#flushNow();
    });
  }

  #flushNow(): void {
    this.#mergeEnd = this.#castArea.castEnd = -1;
    if (this.#released) return;
    if (this.#ctl[this.#sendUsed] !== 0) this.#b.flush(this.#h);
    clearStaged(this.#staged, this.#touched);
  }

  // ---- Reactor API ----

  async listen(options: Parameters<Reactor['listen']>[0], handoff?: HandoffOptions): Promise<ListenAddress> {
    this.#assertUsable();
    const o = resolveListen(options);
    const tls = options.tls === undefined ? undefined : tlsContext(this.#b, this.k, resolveTlsServer(options.tls));
    const policy = handoff?.balance === 'least-connections' ? this.k.LB_LEAST_CONN : handoff?.balance === 'hash' ? this.k.LB_HASH : this.k.LB_ROUND_ROBIN;
    const ka = o.tcpKeepAlive ?? KEEPALIVE_OFF;
    const [fd, port] = this.#b.listen(this.#h, o.host, o.port, o.backlog, o.reusePort, handoff?.targets ?? [], policy, o.deferAccept, ka.idle, ka.interval, ka.count);
    if (tls) {
      const rc = this.#b.tlsListen(this.#h, fd, tls);
      if (rc < 0) {
        this.#b.unlisten(this.#h, fd);
        throw systemError(rc, 'tls listen');
      }
    }
    const addr = { host: o.host, port };
    this.#listeners.set(fd, addr);
    this.#updateRef();
    return addr;
  }

  /**
   * Replace the hand-off targets (registry ids, at least one) of this reactor's hand-off
   * listeners: threads mode's acceptor drops a worker that died and adds its replacement.
   * Errors: a system error (`EINVAL`) for an empty list or a listener without targets.
   */
  retarget(targets: number[]): void {
    for (const fd of this.#listeners.keys()) {
      const rc = this.#b.retarget(this.#h, fd, targets);
      if (rc < 0) throw systemError(rc, 'retarget');
    }
  }

  /**
   * Replace the TLS context of the listener at `listener`: new connections get the new
   * certificate; open ones keep theirs. On a hand-off listener (threads mode) this reaches
   * every worker's new connections, since each accepted fd carries the listener's context.
   */
  setTlsContext(listener: ListenAddress, tls: TlsServerOptions): void {
    this.#assertUsable();
    const ctx = tlsContext(this.#b, this.k, resolveTlsServer(tls));
    for (const [fd, addr] of this.#listeners) {
      if (addr.port !== listener.port || addr.host !== listener.host) continue;
      const rc = this.#b.tlsListen(this.#h, fd, ctx);
      if (rc < 0) throw systemError(rc, 'tls listen');
      return;
    }
    throw new C1mError('ERR_C1M_INVALID_OPTION', `no listener of this reactor at ${listener.host}:${listener.port}`);
  }

  setPollInterval(ms: number): void {
    checkOption(Number.isInteger(ms) && ms >= 0 && ms <= 60_000, 'ms', 'an integer in 0..60000', ms);
    this.#assertUsable();
    this.#b.pollInterval(this.#h, ms);
  }

  connect(options: Parameters<Reactor['connect']>[0]): Connection {
    this.#assertUsable();
    const o = resolveConnect(options);
    let tls: NativeTlsContext | undefined, servername: string | undefined, sessionKey: string | undefined;
    if (options.tls !== undefined) {
      const t = resolveTlsConnect(options.tls, o.host);
      servername = t.servername;
      if (t.resume) sessionKey = `${t.servername}:${o.port}`;
      tls = this.#clientTls.get(options.tls);
      if (tls === undefined) this.#clientTls.set(options.tls, tls = tlsContext(this.#b, this.k, t));
    }
    const ka = o.tcpKeepAlive ?? KEEPALIVE_OFF;
    const fd = this.#b.connect(this.#h, o.host, o.port, o.localAddress, ka.idle, ka.interval, ka.count);
    if (fd < 0) {
      // No socket at all (EMFILE, EADDRNOTAVAIL from bind, ...): report it like any failed
      // connect, asynchronously, on a handle that is stale from the start.
      const conn = new NativeConnection(this, -1 - this.#failedConnects++, 0);
      const reason: CloseReason = { kind: 'connect-failed', code: errnoName(fd), errno: fd, error: systemError(fd, 'connect', { address: o.host, port: o.port }) };
      setImmediate(() => this.#deliverClose(conn, reason));
      return conn;
    }
    const gen = this.#slots[fd * this.#slotWords + this.#slotGen]!;
    // A connect refused at once is already closed (its CLOSE record is on its way): no TLS for it.
    if (tls && this.#alive(fd, gen)) {
      const rc = this.#b.tlsConnect(this.#h, fd, gen, tls, servername, sessionKey);
      if (rc < 0) {
        this.command(fd, gen, this.k.OP_DESTROY, this.k.R_LOCAL);
        report(this.#opts.onError, systemError(rc, 'tls connect', { address: o.host, port: o.port }));
      }
    }
    this.#connectTargets.set(fd, o); // the validated options: no second object per connect
    this.#connecting++;
    this.#updateRef();
    return new NativeConnection(this, fd, gen);
  }

  connection(id: number): Connection {
    if (id < 0) return new NativeConnection(this, id, 0);
    return new NativeConnection(this, id % TWO32, Math.floor(id / TWO32));
  }

  bufferedAmount(id: number): number {
    return id < 0 ? 0 : this.buffered(id % TWO32, Math.floor(id / TWO32));
  }

  backlog(id: number): number {
    if (id < 0) return 0;
    const fd = id % TWO32;
    if (!this.#alive(fd, Math.floor(id / TWO32))) return 0;
    const queued = this.#slots[fd * this.#slotWords + this.#slotOutLen]!;
    return queued === 0 ? 0 : queued + this.#staged[fd]!;
  }

  connections(): Connection[] {
    const out: Connection[] = [];
    if (this.#released) return out;
    const W = this.#slotWords, G = this.#slotGen, F = this.#slotFlags;
    const live = this.#liveFlags;
    const slots = this.#slots;
    // The engine keeps the highest fd a connection of this reactor has had.
    const high = Math.min(this.#ctl[this.#L.ctlMaxFd]!, this.#nslots - 1);
    for (let fd = 0; fd <= high; fd++) {
      if ((slots[fd * W + F]! & live) !== 0) out.push(new NativeConnection(this, fd, slots[fd * W + G]!));
    }
    return out;
  }

  broadcast(ids: ArrayLike<number>, data: Uint8Array | string): number {
    // While closing, the connections still open get it (a shutdown spread over time); once
    // released every id is stale.
    if (this.#released) return 0;
    const bytes = toBytes(data);
    const n = ids.length;
    if (n === 0) return 0;
    if (bytes.length + 64 > SEND_AREA / 2) {
      let count = 0;
      for (let i = 0; i < n; i++) {
        const id = ids[i]!;
        const fd = id % TWO32, gen = Math.floor(id / TWO32);
        if (!this.#alive(fd, gen)) continue;
        this.write(fd, gen, bytes);
        count++;
      }
      return count;
    }
    const count = stageBroadcast(this.#castArea, ids, bytes);
    this.#scheduleFlush();
    return count;
  }

  udp(options: UdpOptions, handler: UdpHandler): Promise<UdpSocket> {
    this.#assertUsable();
    this.#udp ??= new NativeUdp({
      b: this.#b, h: this.#h, k: this.k, L: this.#L, recv: Buffer.from(this.#recv), ev: this.#ev, slots: this.#slots,
      send: this.#send, sendI32: this.#sendI32, ctl: this.#ctl, sendArea: SEND_AREA,
      flushNow: () => this.#flushNow(), scheduleFlush: () => this.#scheduleFlush(),
      report: (err) => report(this.#opts.onError, err), updateRef: () => this.#updateRef(),
    });
    return this.#udp.open(options, handler);
  }

  close(timeoutMs = 5000): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      this.#closed = resolve;
    });
    for (const fd of this.#listeners.keys()) this.#b.unlisten(this.#h, fd);
    this.#listeners.clear();
    this.#udp?.closeAll();
    if (this.#handler.onShutdown) {
      try {
        this.#handler.onShutdown();
      } catch (err) {
        callbackFailed(this.#opts.onError, err, 'onShutdown');
      }
    } else {
      this.#forEachOpen((fd, gen) => this.command(fd, gen, this.k.OP_CLOSE, 0));
    }
    const timer = setTimeout(() => {
      this.#forEachOpen((fd, gen) => this.command(fd, gen, this.k.OP_DESTROY, this.k.R_SHUTDOWN));
    }, timeoutMs);
    timer.unref();
    void this.#closing.then(() => clearTimeout(timer));
    this.#updateRef();
    this.#maybeFinish();
    return this.#closing;
  }

  #forEachOpen(fn: (fd: number, gen: number) => void): void {
    const W = this.#slotWords, live = this.#liveFlags;
    for (let fd = 0; fd < this.#nslots; fd++) {
      const w = fd * W;
      if ((this.#slots[w + this.#slotFlags]! & live) !== 0) fn(fd, this.#slots[w + this.#slotGen]!);
    }
  }

  /** Count the accepts the engine registered quietly since last time (see `#quiet`). */
  #absorbQuiet(): void {
    if (!this.#quiet || this.#released) return;
    const q = this.#ctl[this.#L.ctlQuietOpens]!;
    if (q === this.#quietSeen) return;
    this.#open += (q - this.#quietSeen) | 0; // the counter wraps at 2^31
    this.#quietSeen = q;
  }

  #maybeFinish(): void {
    this.#absorbQuiet();
    if (!this.#closing || this.#open + this.#connecting > 0 || this.#released) return;
    this.#released = true;
    this.#mergeEnd = -1;
    this.#b.close(this.#h);
    this.#closed?.();
  }

  #assertUsable(): void {
    if (this.#closing) throw new C1mError('ERR_C1M_REACTOR_CLOSED', 'the reactor is closing or closed');
  }

  #updateRef(): void {
    if (this.#released) return;
    this.#absorbQuiet();
    const want = this.#listeners.size > 0 || this.#open + this.#connecting > 0 || (this.#udp?.size ?? 0) > 0;
    if (want !== this.#refd) {
      this.#refd = want;
      this.#b.ref(this.#h, want);
    }
  }

  // ---- the batch ----

  #onBatch(n: number): void {
    this.#absorbQuiet(); // before the records: a close in them may be of a quiet accept
    this.#inBatch = true;
    this.#batches++;
    this.#events += n;
    clearStaged(this.#staged, this.#touched);
    this.#mergeEnd = this.#castArea.castEnd = -1; // native code consumed the staged area after the previous batch
    const ev = this.#ev, k = this.k, L = this.#L, W = L.evWords, h = this.#handler;
    const KIND = L.evKind, FD = L.evFd, GEN = L.evGen;
    try {
      for (let i = 0; i < n; i++) {
        const b = i * W;
        const type = ev[b + KIND]!, fd = ev[b + FD]!, gen = ev[b + GEN]!;
        switch (type) {
          case k.EV_DATA: {
            if (!h.onData) break;
            const off = ev[b + L.dataOffset]!, len = ev[b + L.dataLength]!;
            const conn = new NativeConnection(this, fd, gen);
            let r: unknown;
            try {
              r = h.onData(conn, areaView(this.#recv, off, len));
            } catch (err) {
              this.#handlerFailed(err, 'onData', conn);
              break;
            }
            // The common results stay inline; only Actions and invalid results call out.
            if (r === undefined) break;
            if (typeof r === 'number' && Number.isInteger(r) && r >= 0 && r <= len) {
              ev[b + L.dataConsumed] = r;
            } else {
              this.#rareResult(r, len, conn);
            }
            break;
          }
          case k.EV_OPEN: {
            this.#open++;
            if (ev[b + L.openFrom] === -1 && this.#connectTargets.delete(fd)) this.#connecting--;
            if (h.onOpen) this.#call(h.onOpen, 'onOpen', new NativeConnection(this, fd, gen));
            break;
          }
          case k.EV_DRAIN:
            // A drain queued when the kernel took a flush whole can be overtaken by later
            // writes; those set a new drain request natively, so report only a real one.
            if (h.onDrain && this.buffered(fd, gen) <= this.#opts.highWaterMark) {
              this.#call(h.onDrain, 'onDrain', new NativeConnection(this, fd, gen));
            }
            break;
          case k.EV_END:
            if (h.onEnd) this.#call(h.onEnd, 'onEnd', new NativeConnection(this, fd, gen));
            else this.command(fd, gen, k.OP_CLOSE, 0);
            break;
          case k.EV_TIMEOUT:
            if (h.onTimeout) this.#call(h.onTimeout, 'onTimeout', new NativeConnection(this, fd, gen));
            else this.command(fd, gen, k.OP_CLOSE, k.R_TIMEOUT); // graceful: flush, then close
            break;
          case k.EV_CLOSE:
            this.#onClose(fd, gen, ev[b + L.closeReason]!, ev[b + L.closeErrno]!, ev[b + L.closeDetail]!);
            break;
          case k.EV_ACCEPT_ERROR: {
            const err = systemError(ev[b + L.acceptErrno]!, 'accept');
            if (ev[b + L.acceptPaused] === 1) err.message += ' (accepting paused, retrying with backoff)';
            report(this.#opts.onError, err);
            break;
          }
          case k.EV_TLS_REJECT: {
            this.#tlsRejects++;
            const { code, error } = tlsFailure(this.#b, k, ev[b + L.closeReason]!, ev[b + L.closeErrno]!, ev[b + L.closeDetail]!, true);
            report(this.#opts.onError, Object.assign(error, { code }));
            break;
          }
          case k.EV_ERROR:
            report(this.#opts.onError, reactorError(k, ev[b + L.errorWhat]!, ev[b + L.errorErrno]!, fd, ev[b + L.errorDetail]!));
            break;
          case k.EV_UDP_MSG:
          case k.EV_UDP_DRAIN:
          case k.EV_UDP_ERROR:
            if (this.#udp !== null) i = this.#udp.record(i, n) - 1; // a batch form takes a run of records
            break;
        }
      }
    } finally {
      this.#inBatch = false;
      this.#mergeEnd = this.#castArea.castEnd = -1; // ... and consumes it after this one
    }
    this.#updateRef();
    this.#maybeFinish();
  }

  #onClose(fd: number, gen: number, why: number, errno: number, detail: number): void {
    const id = gen * TWO32 + fd;
    const target = this.#connectTargets.get(fd); // present only while connecting
    this.#connectTargets.delete(fd);
    if (target) this.#connecting--;
    else this.#open--;
    // Taken whatever the reason: a reset staged by a failed callback can be overtaken by
    // another close (a peer reset in the same poll), and the entry must not outlive the id.
    let failed: HandlerErrorReason | undefined;
    if (this.#handlerReasons.size !== 0) {
      failed = this.#handlerReasons.get(id);
      if (failed) this.#handlerReasons.delete(id);
    }
    const reason: CloseReason = why === this.k.R_TLS
      ? { kind: 'tls-error', ...tlsFailure(this.#b, this.k, why, errno, detail, false) }
      : closeReason(this.k, why, errno, failed, target && { address: target.host, port: target.port });
    this.#closingFd = fd;
    this.#closingGen = gen;
    try {
      // The context and tag are still readable in onClose (as on the portable backend), gone after it.
      this.#deliverClose(new NativeConnection(this, fd, gen), reason);
    } finally {
      this.#closingFd = -1;
      this.contexts.delete(id);
      if (this.#tags !== null && fd >= 0 && fd < this.#nslots) this.#tags[fd] = 0;
    }
  }

  /** `onClose`; a failure is reported with the (now stale) handle, nothing more. */
  #deliverClose(conn: NativeConnection, reason: CloseReason): void {
    const onClose = this.#handler.onClose;
    if (!onClose) return;
    try {
      onClose.call(this.#handler, conn, reason);
    } catch (err) {
      callbackFailed(this.#opts.onError, err, 'onClose', conn);
    }
  }

  /** A callback of a live connection (onOpen, onDrain, onEnd, onTimeout); a failure resets it. */
  #call(fn: (conn: Connection) => void, callback: HandlerCallback, conn: NativeConnection): void {
    try {
      fn.call(this.#handler, conn);
    } catch (err) {
      this.#handlerFailed(err, callback, conn);
    }
  }

  /** The rare `onData` results, off the inline path: an Action, or an invalid result. */
  #rareResult(r: unknown, len: number, conn: NativeConnection): void {
    const action = dataAction(r, len);
    if (action === Action.Close) this.command(conn.fd, conn.gen, this.k.OP_CLOSE, 0);
    else if (action === Action.Shutdown) this.command(conn.fd, conn.gen, this.k.OP_SHUTDOWN, 0);
    else if (action === INVALID_RESULT) this.#resetForHandler(resultFailed(this.#opts.onError, r, len, conn), conn);
  }

  /** `callback` of `conn` threw: report it, then reset `conn` with reason 'handler-error'. */
  #handlerFailed(thrown: unknown, callback: HandlerCallback, conn: NativeConnection): void {
    this.#resetForHandler(connectionFailed(this.#opts.onError, thrown, callback, conn), conn);
  }

  /** Reset `conn` for a failed callback; its CLOSE record will carry `reason`. */
  #resetForHandler(reason: HandlerErrorReason, conn: NativeConnection): void {
    if (this.#alive(conn.fd, conn.gen)) {
      this.#handlerReasons.set(conn.id, reason);
      this.command(conn.fd, conn.gen, this.k.OP_DESTROY, this.k.R_HANDLER);
    }
  }
}

/** Create a reactor on the native backend. */
export function createNativeReactor(b: Binding, handler: Handler, options: ResolvedOptions): NativeReactor {
  return new NativeReactor(b, handler, options);
}
