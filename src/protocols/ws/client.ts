/**
 * The WebSocket client (RFC 6455) on the engine: `createWebSocketClientHandler` returns a c1m
 * Handler; its `connect(reactor, url)` opens client WebSockets on that reactor, on either
 * backend. This is the lean level, built to hold tens of thousands of connections per process;
 * `WebSocketClient` (websocket-client.ts) is the `ws`-like API on top.
 *
 * Model (the server's, server.ts, seen from the other end):
 *   - `connect` writes the whole upgrade request on the connecting handle (the engine sends it
 *     once TCP is up) and arms the handshake timeout with the engine's idle timeout. Until the
 *     response head's blank line arrives its bytes stay in the engine (onData returns 0); then
 *     the head is parsed whole and checked (RFC 6455 4.1). Bytes behind it are frames.
 *   - A WebSocket's state is its connection's `tag` (a 32-bit word the engine keeps outside the
 *     JS heap): flags and the index of its interned subprotocol. Anything more (the handshake's
 *     key and offered subprotocols while connecting, `data`, a receiver of its own, the close
 *     code and reason while closing) lives in an `Extra` in the handler's Map only while it is
 *     held. `ClientWebSocket` objects are handles made per callback, like `Connection`.
 *   - Frames are cut at their boundaries before parsing. A whole, unfragmented text or binary
 *     frame at a message boundary is delivered directly (the fast path); other whole frames go
 *     to one FrameReceiver shared by the handler; a frame split across reads stays in the
 *     engine while it is at most `HOLD_FRAME_BYTES`; a connection gets a receiver of its own
 *     only while a fragmented message is in progress or a large frame streams in.
 *   - Every frame we send is masked with a fresh key taken 4 bytes at a time from a pool of
 *     random bytes (refilled by one `randomFillSync` per 1024 keys); frames up to 64 KiB are
 *     built in one module buffer, which `conn.write` copies before it returns.
 *
 * What an idle open client WebSocket holds in JS: nothing, unless the application set `data`
 * (one Map entry) or the server selected more than 254 distinct subprotocols.
 *
 * Timers: the handshake timeout, heartbeats (`pingInterval`) and the close handshake timeout
 * all use the engine's idle timeout (`conn.setTimeout` / `onTimeout`), one armed at a time.
 *
 * Invariants:
 *   - every WebSocket that `connect` returned gets exactly one `onClose`, opened or not;
 *     `onError` runs at most once before it, when the connection failed;
 *   - the EXTRA bit of the tag is set exactly while the handler's Map holds an Extra for it
 *     (except on a connect that failed at once, whose handle ignores tag writes);
 *   - no frame is sent before the 101 arrived, and no data frame after our close frame;
 *   - bytes handed to a receiver are always consumed: only bytes no receiver has seen are left
 *     to the engine.
 */
import { randomFillSync } from 'node:crypto';
import { isIP } from 'node:net';
import { C1mError, checkOption, type CloseReason, type Connection, type Handler, type Reactor, type SystemError } from '../../core/index.js';
import { Opcode } from './constants.js';
import { WsProtocolError } from './errors.js';
import { maskInPlace, readUint32BE } from './mask.js';
import { FrameReceiver, RECEIVER_DEFAULTS, type FrameHandler, type FrameReceiverOptions } from './receiver.js';
import { encodeClose, encodeFrame, encodePing } from './sender.js';
import { HOLD_FRAME_BYTES } from './server.js';
import { isValidUtf8 } from './utf8.js';
import {
  WsHandshakeError,
  buildRequest,
  checkConnectOptions,
  checkResponse,
  isMs,
  parseResponseHead,
  parseWsUrl,
} from './client-handshake.js';

/** What a client connection failure may be: see `WebSocketClientHandlerOptions.onError`. */
export type WsClientError = WsProtocolError | WsHandshakeError | SystemError | C1mError;

/** Options of `createWebSocketClientHandler`. Every callback is optional. */
export interface WebSocketClientHandlerOptions<T = unknown> {
  /** The 101 arrived and was valid: frames may be sent. `ws.protocol` is the selected subprotocol. */
  onOpen?(ws: ClientWebSocket<T>): void;
  /**
   * A complete message. `isBinary` false: `data` is valid UTF-8 text.
   * Lifetime: `data` is a view valid only until this callback returns; copy what you keep.
   */
  onMessage?(ws: ClientWebSocket<T>, data: Buffer, isBinary: boolean): void;
  /**
   * The WebSocket is gone; runs exactly once for every WebSocket `connect` returned, opened or
   * not. `code` is the server's close code (1005 when its close frame had none), the code we
   * sent for a protocol error, or 1006 when there was no close handshake (connect or handshake
   * failure, reset, timeout, `terminate()`).
   */
  onClose?(ws: ClientWebSocket<T>, code: number, reason: string): void;
  /** `send` returned false earlier and the buffered bytes are now written. */
  onDrain?(ws: ClientWebSocket<T>): void;
  /** A ping arrived (a pong was already queued). Lifetime: `data` as in `onMessage`. */
  onPing?(ws: ClientWebSocket<T>, data: Uint8Array): void;
  /** A pong arrived. Lifetime: `data` as in `onMessage`. */
  onPong?(ws: ClientWebSocket<T>, data: Uint8Array): void;
  /**
   * The connection failed; `onClose` follows. `err` is a system error when TCP could not
   * connect (`code` `ECONNREFUSED`, ...), a `WsHandshakeError` when the handshake failed, or a
   * `WsProtocolError` when the server broke RFC 6455 (our close frame with `err.closeCode` is
   * on its way, then TCP closes). Not called for `terminate()` or a reset after the open.
   */
  onError?(ws: ClientWebSocket<T>, err: WsClientError): void;
  /** Largest message in bytes (summed over fragments); past it: close 1009. Default 1 MiB. */
  maxPayload?: number;
  /** Most frames in one message; past it: close 1009. Default 65536. */
  maxFragments?: number;
  /** Largest response head to the upgrade request, in bytes. Default 16 KiB. */
  maxHeaderBytes?: number;
  /**
   * Fail a WebSocket whose TCP connect and handshake have not completed after this many ms
   * (`ERR_C1M_WS_HANDSHAKE_TIMEOUT`). 0 leaves the engine's `idleTimeout` in charge.
   * Default 10000; `connect` may override it.
   */
  handshakeTimeout?: number;
  /** How long to wait for the server's close frame, then for its TCP close, in ms. Default 5000. */
  closeTimeout?: number;
  /**
   * Heartbeat in ms: after this long without a byte from the server, ping; after as long again,
   * close the connection (1006). 0 (default) disables. Resolution: the engine's `timerResolution`.
   */
  pingInterval?: number;
}

/** Options of one `connect`. */
export interface WebSocketConnectOptions<T = unknown> {
  /** Subprotocols to offer, in order of preference (HTTP tokens, no duplicates). Default none. */
  protocols?: readonly string[];
  /**
   * Extra request fields. The handshake's own fields (Host, Upgrade, Connection, and the
   * Sec-WebSocket-* fields) may not be given.
   */
  headers?: Readonly<Record<string, string>>;
  /** An `Origin` field (browsers send one; servers may check it). Default none. */
  origin?: string;
  /**
   * The IP address to connect to. Default: the URL's host, which must then be an IP address
   * (resolve names first; the URL's host still goes in the Host field).
   */
  address?: string;
  /** Source address to bind before connecting. */
  localAddress?: string;
  /** Overrides the handler's `handshakeTimeout` for this connection. */
  handshakeTimeout?: number;
  /** The initial `ws.data`. */
  data?: T;
}

/** Defaults of `WebSocketClientHandlerOptions`. */
export const WS_CLIENT_DEFAULTS = {
  maxPayload: RECEIVER_DEFAULTS.maxPayload,
  maxFragments: RECEIVER_DEFAULTS.maxFragments,
  maxHeaderBytes: 16 * 1024,
  handshakeTimeout: 10_000,
  closeTimeout: 5000,
  pingInterval: 0,
} as const;

/** A WebSocket client handler: the Handler to create the reactor with, and its `connect`. */
export interface WebSocketClientHandler<T = unknown> extends Handler {
  /**
   * Open a client WebSocket to `url` (`ws://host[:port]/path?query`) on `reactor`, whose
   * handler must be this one. Returns at once; `onOpen` or `onError` + `onClose` follow.
   *
   * Errors: throws `ERR_C1M_WS_INVALID_URL` for a URL that is not `ws:`/`http:`, has a
   * fragment, or names a host that is not an IP address (without `address`);
   * `ERR_C1M_INVALID_OPTION` for a bad option; `ERR_C1M_REACTOR_CLOSED` after `reactor.close()`.
   * Connect failures are reported to `onError`, never thrown.
   */
  connect(reactor: Reactor, url: string | URL, options?: WebSocketConnectOptions<T>): ClientWebSocket<T>;
  /** WebSockets of this handler not yet closed (connecting or open). */
  readonly clients: number;
}

// conn.tag: the per-connection state, in the engine (no JS heap for an idle WebSocket).
const UPGRADED = 1; // the 101 was accepted: frames flow
const IN_MESSAGE = 2; // a fragmented message is in progress (frames seen, not its last)
const AWAIT_PONG = 4; // a heartbeat ping is unanswered (no byte since)
const CLOSE_SENT = 8;
const CLOSE_RECEIVED = 16;
const FAILED = 32; // an error was reported (handshake or protocol); TCP closing
const GONE = 64; // terminated by the application, or a callback threw
const EXTRA = 128; // the handler's `extras` holds an `Extra` for this connection
const TIMED = 256; // the handshake timeout is armed (the open re-arms the connection's timeout)
const NOT_OPEN = CLOSE_SENT | CLOSE_RECEIVED | FAILED | GONE;
const NO_MORE_INPUT = CLOSE_RECEIVED | FAILED | GONE;
/** Bits 16-23: 1 + index of the selected subprotocol in `Shared.protocolNames` (0: none or `Extra.protocol`). */
const PROTOCOL_SHIFT = 16;
const MAX_INTERNED = 0xfe;

const CODE_NO_STATUS = 1005;
const CODE_ABNORMAL = 1006;
const CODE_GOING_AWAY = 1001;

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

// Random bytes for masking keys and Sec-WebSocket-Key, refilled in one call when used up.
const RANDOM = Buffer.allocUnsafe(4096);
let randomPos = RANDOM.length;

function takeRandom(n: number): number {
  if (randomPos + n > RANDOM.length) {
    randomFillSync(RANDOM);
    randomPos = 0;
  }
  const at = randomPos;
  randomPos += n;
  return at;
}

// Send staging: the payload is written at HEAD_ROOM and masked in place, the header (with
// its key) right-aligned before it; `conn.write` copies, so one buffer serves every send.
const HEAD_ROOM = 8;
const SCRATCH = Buffer.allocUnsafe(64 * 1024);
const SCRATCH_ROOM = SCRATCH.length - HEAD_ROOM;
// Views of SCRATCH for payloads under 126 bytes (6-byte masked header), made once.
const SMALL_FRAMES = Array.from({ length: 126 }, (_, len) => SCRATCH.subarray(HEAD_ROOM - 6, HEAD_ROOM + len));

/** Write one masked, final frame of `opcode` carrying `data` (UTF-8 for a string). */
function writeFrame(conn: Connection, opcode: number, data: Uint8Array | string): boolean {
  let len: number;
  if (typeof data === 'string') {
    if (data.length * 3 > SCRATCH_ROOM && (data.length > SCRATCH_ROOM || Buffer.byteLength(data) > SCRATCH_ROOM)) {
      return conn.write(encodeFrame(opcode as Opcode, data, { mask: true }));
    }
    len = SCRATCH.write(data, HEAD_ROOM, 'utf8');
  } else {
    len = data.length;
    if (len > SCRATCH_ROOM) return conn.write(encodeFrame(opcode as Opcode, data, { mask: true }));
    SCRATCH.set(data, HEAD_ROOM);
  }
  const at = takeRandom(4);
  if (len !== 0) maskInPlace(SCRATCH, HEAD_ROOM, HEAD_ROOM + len, readUint32BE(RANDOM, at), 0);
  RANDOM.copy(SCRATCH, HEAD_ROOM - 4, at, at + 4);
  if (len < 126) {
    SCRATCH[HEAD_ROOM - 6] = 0x80 | opcode;
    SCRATCH[HEAD_ROOM - 5] = 0x80 | len;
    return conn.write(SMALL_FRAMES[len]);
  }
  // len <= SCRATCH_ROOM < 65536: a 16-bit extended length.
  const start = HEAD_ROOM - 8;
  SCRATCH[start] = 0x80 | opcode;
  SCRATCH[start + 1] = 0x80 | 126;
  SCRATCH[start + 2] = len >>> 8;
  SCRATCH[start + 3] = len & 0xff;
  return conn.write(SCRATCH.subarray(start, HEAD_ROOM + len));
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * What a WebSocket holds beyond its tag, only while it holds something: the handshake's
 * expectations (while connecting), `data` set by the application, its own receiver (a message
 * in progress), the close code and reason (closing), or a subprotocol name not interned.
 */
class Extra {
  /** Our Sec-WebSocket-Key, while connecting. */
  key = '';
  /** The subprotocols offered, while connecting. */
  offered: readonly string[] | null = null;
  data: unknown = undefined;
  rx: FrameReceiver | null = null;
  /** Bytes of a streamed frame still to come. */
  frameLeft = 0;
  /** The close code to report (set once a close frame was received or a protocol error sent). */
  code = 0;
  reason = '';
  protocol = '';
  get empty(): boolean {
    return this.key === '' && this.offered === null && this.data === undefined && this.rx === null && this.frameLeft === 0 && this.code === 0 && this.protocol === '';
  }
}

/** Handler-wide state shared by every WebSocket of one handler. Internal. */
class Shared {
  /** Extras by connection id (see `Extra`); an entry exists only while it holds something. */
  readonly extras = new Map<number, Extra>();
  /** WebSockets connecting or open (`onClose` not yet run). */
  count = 0;
  /** The reactor, from `onReactor` or the first `connect` (for the shutdown sweep). */
  reactor: Reactor | null = null;
  readonly dispatch: Dispatch;
  readonly receiverOptions: FrameReceiverOptions;
  readonly maxPayload: number;
  /** Subprotocol names selected so far (interned: a connection keeps only an index). */
  readonly protocolNames: string[] = [];
  readonly #protocolIndex = new Map<string, number>();
  /** The receiver for connections whose bytes end on a message boundary. */
  idleRx: FrameReceiver;
  constructor(
    readonly opts: WebSocketClientHandlerOptions<unknown>,
    readonly maxHeaderBytes: number,
    readonly handshakeTimeout: number,
    readonly closeTimeout: number,
    readonly pingInterval: number,
  ) {
    this.dispatch = new Dispatch(this);
    this.receiverOptions = { role: 'client', maxPayload: opts.maxPayload, maxFragments: opts.maxFragments };
    this.maxPayload = opts.maxPayload ?? RECEIVER_DEFAULTS.maxPayload;
    this.idleRx = this.newReceiver();
  }
  newReceiver(): FrameReceiver {
    return new FrameReceiver(this.dispatch, this.receiverOptions);
  }
  /** Replace `rx` if it is the shared receiver (after it failed or saw a close frame). */
  retire(rx: FrameReceiver): void {
    if (rx === this.idleRx) this.idleRx = this.newReceiver();
  }
  /** The tag bits for subprotocol `name`, or 0 with the name kept in `x` past MAX_INTERNED names. */
  protocolBits(name: string, x: Extra): number {
    let i = this.#protocolIndex.get(name);
    if (i === undefined) {
      if (this.protocolNames.length >= MAX_INTERNED) {
        x.protocol = name;
        return 0;
      }
      i = this.protocolNames.length;
      this.protocolNames.push(name);
      this.#protocolIndex.set(name, i);
    }
    return (i + 1) << PROTOCOL_SHIFT;
  }
  /** The connection's Extra, created (and flagged in its tag) when missing. */
  extra(conn: Connection): Extra {
    let x = this.extras.get(conn.id);
    if (x === undefined) {
      x = new Extra();
      this.extras.set(conn.id, x);
      conn.tag = conn.tag | EXTRA;
    }
    return x;
  }
  /** Drop `x` once it holds nothing. */
  trim(conn: Connection, x: Extra): void {
    if (!x.empty) return;
    this.extras.delete(conn.id);
    conn.tag = conn.tag & ~EXTRA;
  }
}

// Engine-side access to a WebSocket's connection, bound in its static block.
let createSocket: (conn: Connection, shared: Shared) => ClientWebSocket<unknown>;
let connOf: (ws: ClientWebSocket<unknown>) => Connection;

/**
 * Routes a receiver's events to the WebSocket whose bytes it is parsing (`current`): receivers
 * are shared, and this keeps one handler object per client handler, not a closure per socket.
 */
class Dispatch implements FrameHandler {
  current: ClientWebSocket<unknown> | null = null;
  constructor(readonly shared: Shared) {}
  onMessage(payload: Uint8Array, isBinary: boolean): void {
    const ws = this.current!;
    if ((connOf(ws).tag & NO_MORE_INPUT) === 0) this.shared.opts.onMessage?.(ws, asBuffer(payload), isBinary);
  }
  onPing(payload: Uint8Array): void {
    const ws = this.current!;
    const conn = connOf(ws);
    const tag = conn.tag;
    if ((tag & NO_MORE_INPUT) !== 0) return;
    if ((tag & CLOSE_SENT) === 0) writeFrame(conn, Opcode.Pong, payload);
    this.shared.opts.onPing?.(ws, payload);
  }
  onPong(payload: Uint8Array): void {
    const ws = this.current!;
    if ((connOf(ws).tag & NO_MORE_INPUT) === 0) this.shared.opts.onPong?.(ws, payload);
  }
  onClose(code: number | undefined, reason: string): void {
    peerClosed(this.shared, connOf(this.current!), code, reason);
  }
}

/**
 * One client WebSocket: a handle, like the engine's `Connection`. Its state lives in the
 * engine (`conn.tag`), not in this object: callbacks may hand different objects for one
 * WebSocket (and `connect` yet another), so compare `ws.id`, and keep ids, not objects, in
 * long-lived sets.
 *
 * Threading: use it only on its reactor's thread (inside callbacks, or tasks of that thread).
 * Lifetime: safe to keep after close: `send`, `ping`, `close` then do nothing, `data` reads
 * undefined.
 */
export class ClientWebSocket<T = unknown> {
  readonly #conn: Connection;
  readonly #shared: Shared;

  private constructor(conn: Connection, shared: Shared) {
    this.#conn = conn;
    this.#shared = shared;
  }

  /**
   * One application value per WebSocket (`WebSocketConnectOptions.data`, else undefined).
   * Costs one Map entry while set; readable in `onClose`, gone after it.
   */
  get data(): T {
    const conn = this.#conn;
    return ((conn.tag & EXTRA) !== 0 ? this.#shared.extras.get(conn.id)?.data : undefined) as T;
  }

  set data(value: T) {
    const conn = this.#conn;
    if ((conn.tag & GONE) !== 0 || !conn.open) return;
    if (value === undefined && (conn.tag & EXTRA) === 0) return;
    const x = this.#shared.extra(conn);
    x.data = value;
    this.#shared.trim(conn, x);
  }

  /** The subprotocol the server selected, or '' (always '' before the open and after the close). */
  get protocol(): string {
    const conn = this.#conn;
    const tag = conn.tag;
    const p = (tag >>> PROTOCOL_SHIFT) & 0xff;
    if (p !== 0) return this.#shared.protocolNames[p - 1];
    return (tag & EXTRA) !== 0 ? (this.#shared.extras.get(conn.id)?.protocol ?? '') : '';
  }

  /** The connection id: stable for the WebSocket's lifetime, unique within its reactor. */
  get id(): number {
    return this.#conn.id;
  }

  /**
   * `'connecting'` until the 101 was checked; `'open'`; `'closing'` once a close frame was
   * sent or received (or the connection failed); `'closed'` once the connection is gone.
   */
  get readyState(): 'connecting' | 'open' | 'closing' | 'closed' {
    const conn = this.#conn;
    const tag = conn.tag;
    if ((tag & GONE) !== 0 || !conn.open) return 'closed';
    if ((tag & UPGRADED) === 0) return (tag & FAILED) !== 0 ? 'closing' : 'connecting';
    return (tag & NOT_OPEN) !== 0 ? 'closing' : 'open';
  }

  /** Bytes queued and not yet taken by the kernel. */
  get bufferedAmount(): number {
    return this.#conn.bufferedAmount;
  }

  /**
   * Send a message: a string as text, bytes as binary, unless `isBinary` says otherwise
   * (text bytes must then be valid UTF-8: they are not checked). Masked with a fresh key;
   * the bytes are copied.
   *
   * Backpressure: returns false past the engine's `highWaterMark` (the message is still
   * queued; wait for `onDrain`), and when the WebSocket is not open (dropped: connecting,
   * closing or closed).
   */
  send(data: Uint8Array | string, isBinary: boolean = typeof data !== 'string'): boolean {
    const conn = this.#conn;
    if ((conn.tag & (UPGRADED | NOT_OPEN)) !== UPGRADED) return false;
    return writeFrame(conn, isBinary ? Opcode.Binary : Opcode.Text, data);
  }

  /**
   * Send a ping (`data` at most 125 bytes). Returns false when not open.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for a payload over 125 bytes.
   */
  ping(data?: Uint8Array | string): boolean {
    const conn = this.#conn;
    if ((conn.tag & (UPGRADED | NOT_OPEN)) !== UPGRADED) return false;
    return conn.write(encodePing(data, { mask: true }));
  }

  /**
   * Send an unsolicited pong (pings are answered automatically). Returns false when not open.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for a payload over 125 bytes.
   */
  pong(data?: Uint8Array | string): boolean {
    const conn = this.#conn;
    if ((conn.tag & (UPGRADED | NOT_OPEN)) !== UPGRADED) return false;
    return conn.write(encodeFrame(Opcode.Pong, data ?? '', { mask: true }));
  }

  /**
   * Start the close handshake: send a close frame (no `code`: an empty one), then wait up to
   * `closeTimeout` for the server's close frame and its TCP close. Messages that arrive
   * meanwhile are still delivered. While connecting: the same as `terminate()`. No-op when
   * closing or closed.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for a code that may not be sent (1005,
   * 1006, 1015, ...) or a reason over 123 UTF-8 bytes.
   */
  close(code?: number, reason = ''): void {
    const conn = this.#conn;
    const tag = conn.tag;
    if ((tag & (UPGRADED | FAILED | GONE)) === 0) {
      this.terminate();
      return;
    }
    if ((tag & (UPGRADED | NOT_OPEN)) !== UPGRADED) return;
    const frame = encodeClose(code, reason, { mask: true });
    conn.tag = tag | CLOSE_SENT;
    conn.write(frame);
    conn.setTimeout(this.#shared.closeTimeout);
  }

  /** Close the connection at once, without a close handshake (`onClose` reports 1006). */
  terminate(): void {
    const conn = this.#conn;
    const tag = conn.tag;
    if ((tag & GONE) !== 0) return;
    conn.tag = tag | GONE;
    dropReceiver(this.#shared, conn);
    conn.destroy();
  }

  static {
    createSocket = (conn, shared) => new ClientWebSocket(conn, shared);
    connOf = (ws) => ws.#conn;
  }
}

/** Forget a connection's own receiver and streamed frame (its Extra stays if it holds more). */
function dropReceiver(s: Shared, conn: Connection): void {
  if ((conn.tag & EXTRA) === 0) return;
  const x = s.extras.get(conn.id);
  if (x === undefined) return;
  x.rx = null;
  x.frameLeft = 0;
  s.trim(conn, x);
}

/**
 * A Buffer made directly over an ArrayBuffer range (Buffer.prototype methods,
 * `Buffer.isBuffer`), skipping the species lookup of `subarray`: the fast path's message view.
 */
class PayloadView extends Uint8Array {}
Object.setPrototypeOf(PayloadView.prototype, Buffer.prototype);

/** The response head and whatever follows it; returns the bytes consumed. */
function handshake(s: Shared, conn: Connection, data: Buffer): number {
  const tag = conn.tag;
  if ((tag & (FAILED | GONE)) !== 0) return data.length;
  const limit = s.maxHeaderBytes;
  const blank = (data.length > limit ? data.subarray(0, limit) : data).indexOf(CRLFCRLF);
  if (blank < 0) {
    if (data.length < limit) return 0;
    return failHandshake(s, conn, new WsHandshakeError('ERR_C1M_WS_HANDSHAKE_MALFORMED', `response head larger than maxHeaderBytes (${limit})`), data.length);
  }
  const headEnd = blank + 4;
  const head = parseResponseHead(data.toString('latin1', 0, blank));
  if (typeof head === 'string') return failHandshake(s, conn, new WsHandshakeError('ERR_C1M_WS_HANDSHAKE_MALFORMED', head), data.length);
  const x = s.extras.get(conn.id)!;
  const protocol = checkResponse(head, x.key, x.offered!);
  if (typeof protocol !== 'string') return failHandshake(s, conn, protocol, data.length);
  x.key = '';
  x.offered = null;
  const bits = protocol === '' ? 0 : s.protocolBits(protocol, x);
  conn.tag = (tag & ~TIMED) | UPGRADED | bits;
  s.trim(conn, x);
  // Replaces the handshake timeout with the heartbeat (or none); with neither configured the
  // engine's idleTimeout stays in charge.
  if (s.pingInterval > 0 || (tag & TIMED) !== 0) conn.setTimeout(s.pingInterval);
  const ws = createSocket(conn, s);
  s.opts.onOpen?.(ws);
  return headEnd < data.length ? receive(s, conn, data, headEnd, ws) : headEnd;
}

function failHandshake(s: Shared, conn: Connection, err: WsHandshakeError, consumed: number): number {
  conn.tag = conn.tag | FAILED;
  conn.close();
  s.opts.onError?.(createSocket(conn, s), err);
  return consumed;
}

/**
 * Frames in `data[start..]` of an upgraded connection; returns the offset up to which bytes
 * were consumed. `ws` is the handle to reuse, if one was made already.
 *
 * Fast path: a whole, unfragmented text or binary frame without RSV bits, read at a message
 * boundary, is delivered here as a view, without a receiver. Anything else (control frames,
 * fragments, RSV bits, masked or oversized frames, reserved opcodes) goes to a FrameReceiver,
 * which applies every rule of RFC 6455.
 */
function receive(s: Shared, conn: Connection, data: Buffer, start: number, ws: ClientWebSocket<unknown> | null): number {
  const end = data.length;
  let tag = conn.tag;
  if ((tag & NO_MORE_INPUT) !== 0) return end;
  if ((tag & AWAIT_PONG) !== 0) conn.tag = tag &= ~AWAIT_PONG;
  let pos = start;
  if ((tag & EXTRA) !== 0) {
    const x = s.extras.get(conn.id)!;
    if (x.frameLeft > 0) {
      const stop = end - pos > x.frameLeft ? pos + x.frameLeft : end;
      x.frameLeft -= stop - pos;
      if (!feed(s, conn, (ws ??= createSocket(conn, s)), x.rx!, data, pos, stop)) return end;
      pos = stop;
      if (x.frameLeft > 0) return end;
      tag = conn.tag;
      if ((tag & IN_MESSAGE) === 0) {
        x.rx = null;
        s.trim(conn, x);
      }
    }
  }
  let from = pos;
  let inMessage = (tag & IN_MESSAGE) !== 0;
  const maxPayload = s.maxPayload;
  while (end - pos >= 2) {
    const b1 = data[pos + 1];
    // A masked server frame is cut like any other; the receiver then refuses it (1002).
    let head = (b1 & 0x80) !== 0 ? 6 : 2;
    let len = b1 & 0x7f;
    if (len === 126) {
      head += 2;
      if (end - pos < head) break;
      len = (data[pos + 2] << 8) | data[pos + 3];
    } else if (len === 127) {
      head += 8;
      if (end - pos < head) break;
      len = data.readUInt32BE(pos + 2) * 0x100000000 + data.readUInt32BE(pos + 6);
    } else if (end - pos < head) {
      break;
    }
    const b0 = data[pos];
    const frameEnd = pos + head + len;
    if (frameEnd > end) {
      if (head + len <= HOLD_FRAME_BYTES) break;
      // Too large to leave in the engine: stream it into this connection's receiver.
      if ((b0 & 0x0f) < Opcode.Close) inMessage = (b0 & 0x80) === 0;
      tag = conn.tag;
      conn.tag = inMessage ? tag | IN_MESSAGE : tag & ~IN_MESSAGE;
      const x = s.extra(conn);
      x.frameLeft = frameEnd - end;
      feed(s, conn, (ws ??= createSocket(conn, s)), (x.rx ??= s.newReceiver()), data, from, end);
      return end;
    }
    if (pos === from && !inMessage && (b0 === 0x82 || b0 === 0x81) && (b1 & 0x80) === 0 && len <= maxPayload) {
      const payloadStart = pos + head;
      const payload = new PayloadView(data.buffer as ArrayBuffer, data.byteOffset + payloadStart, len) as Buffer;
      pos = from = frameEnd;
      ws ??= createSocket(conn, s);
      if (b0 === 0x81 && !isValidUtf8(payload)) {
        fail(s, conn, ws, new WsProtocolError('ERR_C1M_WS_INVALID_UTF8', 'text message is not valid UTF-8'));
        return end;
      }
      const onMessage = s.opts.onMessage;
      if (onMessage !== undefined) {
        onMessage.call(s.opts, ws, payload, b0 === 0x82);
        if ((conn.tag & NO_MORE_INPUT) !== 0) return end;
      }
      continue;
    }
    if ((b0 & 0x0f) < Opcode.Close) inMessage = (b0 & 0x80) === 0;
    pos = frameEnd;
  }
  if (pos === from) return pos;
  tag = conn.tag;
  conn.tag = tag = inMessage ? tag | IN_MESSAGE : tag & ~IN_MESSAGE;
  let x = (tag & EXTRA) !== 0 ? s.extras.get(conn.id)! : undefined;
  let rx = x?.rx ?? null;
  if (rx === null) {
    if (inMessage) {
      x ??= s.extra(conn);
      rx = x.rx = s.newReceiver();
    } else {
      rx = s.idleRx;
    }
  }
  if (!feed(s, conn, (ws ??= createSocket(conn, s)), rx, data, from, pos)) return end;
  if (!inMessage && x !== undefined && x.rx !== null) {
    x.rx = null;
    s.trim(conn, x);
  }
  return pos;
}

/** Parse whole frames (or the rest of the input) with `rx`. False: read no further. */
function feed(s: Shared, conn: Connection, ws: ClientWebSocket<unknown>, rx: FrameReceiver, data: Buffer, from: number, to: number): boolean {
  const dispatch = s.dispatch;
  const prev = dispatch.current;
  dispatch.current = ws;
  try {
    rx.execute(from === 0 && to === data.length ? data : data.subarray(from, to));
  } catch (err) {
    s.retire(rx);
    dropReceiver(s, conn);
    if (!(err instanceof WsProtocolError)) {
      // A callback threw: the engine resets the connection; read nothing more of it.
      conn.tag = conn.tag | GONE;
      throw err;
    }
    fail(s, conn, ws, err);
    return false;
  } finally {
    dispatch.current = prev;
  }
  if (rx.state !== 'open') {
    // A close frame: the receiver ignores everything after it.
    s.retire(rx);
    dropReceiver(s, conn);
    return false;
  }
  return (conn.tag & NO_MORE_INPUT) === 0;
}

/** The server broke the protocol: our close frame with its code, then close TCP (RFC 6455 7.1.7). */
function fail(s: Shared, conn: Connection, ws: ClientWebSocket<unknown>, err: WsProtocolError): void {
  const tag = conn.tag;
  if ((tag & NO_MORE_INPUT) !== 0) return;
  const x = s.extra(conn);
  x.code = err.closeCode;
  x.reason = '';
  conn.tag = conn.tag | FAILED | CLOSE_SENT;
  if ((tag & CLOSE_SENT) === 0) conn.write(encodeClose(err.closeCode, '', { mask: true }));
  conn.close();
  s.opts.onError?.(ws, err);
}

function peerClosed(s: Shared, conn: Connection, code: number | undefined, reason: string): void {
  const tag = conn.tag;
  if ((tag & NO_MORE_INPUT) !== 0) return;
  const x = s.extra(conn);
  x.code = code ?? CODE_NO_STATUS;
  x.reason = reason;
  conn.tag = conn.tag | CLOSE_RECEIVED | CLOSE_SENT;
  // Echo code and reason (RFC 6455 5.5.1), then let the server close TCP first (7.1.1).
  if ((tag & CLOSE_SENT) === 0) conn.write(code === undefined ? encodeClose(undefined, '', { mask: true }) : encodeClose(code, reason, { mask: true }));
  conn.setTimeout(s.closeTimeout);
}

function timedOut(s: Shared, conn: Connection): void {
  const tag = conn.tag;
  if ((tag & GONE) !== 0) return;
  if ((tag & UPGRADED) === 0) {
    if ((tag & FAILED) !== 0) {
      createSocket(conn, s).terminate();
      return;
    }
    conn.tag = tag | FAILED;
    conn.destroy();
    s.opts.onError?.(createSocket(conn, s), new WsHandshakeError('ERR_C1M_WS_HANDSHAKE_TIMEOUT', 'the opening handshake did not complete in time'));
    return;
  }
  if ((tag & CLOSE_RECEIVED) !== 0) {
    // Both close frames went; the server did not close TCP: we may (RFC 6455 7.1.1).
    conn.close();
    return;
  }
  if ((tag & NOT_OPEN) !== 0 || (tag & AWAIT_PONG) !== 0) {
    // The server never answered our close frame, or the heartbeat went unanswered.
    createSocket(conn, s).terminate();
    return;
  }
  const interval = s.pingInterval;
  if (interval > 0) {
    conn.tag = tag | AWAIT_PONG;
    writeFrame(conn, Opcode.Ping, '');
    conn.setTimeout(interval);
    return;
  }
  // An idle timeout of the engine's: leave politely.
  createSocket(conn, s).close(CODE_GOING_AWAY);
}

/** The error of a connection that closed before its handshake completed. */
function connectError(reason: CloseReason): WsClientError {
  if (reason.kind === 'connect-failed' && reason.error !== undefined) return reason.error as SystemError;
  const detail = reason.code !== undefined ? `${reason.kind}, ${reason.code}` : reason.kind;
  return new WsHandshakeError('ERR_C1M_WS_HANDSHAKE_CLOSED', `the connection closed before the opening handshake completed (${detail})`);
}


class WsClient implements WebSocketClientHandler<unknown> {
  readonly #shared: Shared;

  constructor(opts: WebSocketClientHandlerOptions<unknown>) {
    checkOption(typeof opts === 'object' && opts !== null, 'options', 'an object', opts);
    const pingInterval = opts.pingInterval ?? WS_CLIENT_DEFAULTS.pingInterval;
    const closeTimeout = opts.closeTimeout ?? WS_CLIENT_DEFAULTS.closeTimeout;
    const handshakeTimeout = opts.handshakeTimeout ?? WS_CLIENT_DEFAULTS.handshakeTimeout;
    const maxHeaderBytes = opts.maxHeaderBytes ?? WS_CLIENT_DEFAULTS.maxHeaderBytes;
    checkOption(isMs(pingInterval), 'pingInterval', 'an integer number of ms from 0 to 2147483647', pingInterval);
    checkOption(isMs(closeTimeout) && closeTimeout > 0, 'closeTimeout', 'an integer number of ms from 1 to 2147483647', closeTimeout);
    checkOption(isMs(handshakeTimeout), 'handshakeTimeout', 'an integer number of ms from 0 to 2147483647', handshakeTimeout);
    checkOption(Number.isInteger(maxHeaderBytes) && maxHeaderBytes >= 64, 'maxHeaderBytes', 'an integer >= 64', maxHeaderBytes);
    for (const name of ['onOpen', 'onMessage', 'onClose', 'onDrain', 'onPing', 'onPong', 'onError'] as const) {
      checkOption(opts[name] === undefined || typeof opts[name] === 'function', name, 'a function', typeof opts[name]);
    }
    // The receiver validates maxPayload and maxFragments.
    this.#shared = new Shared(opts, maxHeaderBytes, handshakeTimeout, closeTimeout, pingInterval);
  }

  get clients(): number {
    return this.#shared.count;
  }

  connect(reactor: Reactor, url: string | URL, options: WebSocketConnectOptions<unknown> = {}): ClientWebSocket<unknown> {
    const target = parseWsUrl(url);
    const offered = checkConnectOptions(options);
    const address = options.address ?? target.hostname;
    if (isIP(address) === 0) {
      throw new C1mError('ERR_C1M_WS_INVALID_URL', `host ${JSON.stringify(target.hostname)} is not an IP address: resolve it and pass options.address`);
    }
    const s = this.#shared;
    s.reactor ??= reactor;
    const conn = reactor.connect({ host: address, port: target.port, localAddress: options.localAddress });
    s.count++;
    const at = takeRandom(16);
    const key = RANDOM.toString('base64', at, at + 16);
    // A connect that failed at once has a stale handle (its tag ignores writes): its Extra is
    // found by id in onClose all the same.
    const x = s.extra(conn);
    x.key = key;
    x.offered = offered;
    x.data = options.data;
    conn.write(buildRequest(target, key, options));
    const timeout = options.handshakeTimeout ?? s.handshakeTimeout;
    if (timeout > 0) {
      conn.tag = conn.tag | TIMED;
      conn.setTimeout(timeout);
    }
    return createSocket(conn, s);
  }

  onData(conn: Connection, data: Buffer): number {
    const s = this.#shared;
    return (conn.tag & UPGRADED) === 0 ? handshake(s, conn, data) : receive(s, conn, data, 0, null);
  }

  onDrain(conn: Connection): void {
    if ((conn.tag & (UPGRADED | GONE)) === UPGRADED) this.#shared.opts.onDrain?.(createSocket(conn, this.#shared));
  }

  onTimeout(conn: Connection): void {
    timedOut(this.#shared, conn);
  }

  onClose(conn: Connection, reason: CloseReason): void {
    const s = this.#shared;
    s.count--;
    const tag = conn.tag;
    const x = s.extras.get(conn.id);
    const opts = s.opts;
    try {
      const ws = createSocket(conn, s);
      if ((tag & UPGRADED) === 0) {
        // Terminated by the application, or already reported: no error.
        if ((tag & (FAILED | GONE)) === 0) opts.onError?.(ws, connectError(reason));
        opts.onClose?.(ws, CODE_ABNORMAL, '');
        return;
      }
      const handshake = (tag & (CLOSE_RECEIVED | FAILED)) !== 0 && x !== undefined;
      opts.onClose?.(ws, handshake ? x.code : CODE_ABNORMAL, handshake ? x.reason : '');
    } finally {
      if (x !== undefined) s.extras.delete(conn.id);
    }
  }

  onReactor(reactor: Reactor): void {
    this.#shared.reactor = reactor;
  }

  onShutdown(): void {
    const s = this.#shared;
    // Open WebSockets get a close handshake (1001), connecting ones are terminated.
    for (const conn of s.reactor?.connections() ?? []) createSocket(conn, s).close(CODE_GOING_AWAY);
  }
}

/**
 * A c1m Handler for client WebSockets: create a reactor with it (`createReactor(handler)`),
 * then `handler.connect(reactor, url)`. Use one handler per reactor, and no other handler on
 * that reactor. `reactor.close()` starts a close handshake (1001) on every open WebSocket and
 * terminates those still connecting.
 *
 * Errors: throws `ERR_C1M_INVALID_OPTION` for a bad option. An exception thrown by a callback
 * closes that connection (`'handler-error'`, reported to the engine's `onError`; `onClose`
 * reports 1006).
 */
export function createWebSocketClientHandler<T = unknown>(options: WebSocketClientHandlerOptions<T> = {}): WebSocketClientHandler<T> {
  return new WsClient(options as WebSocketClientHandlerOptions<unknown>) as unknown as WebSocketClientHandler<T>;
}
