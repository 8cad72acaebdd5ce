/**
 * The WebSocket server (RFC 6455) on the engine: `createWebSocketHandler` returns a c1m
 * Handler that answers the opening handshake, then speaks frames, on either backend.
 *
 * Model:
 *   - Before the upgrade a connection has no state at all. Its bytes stay in the engine
 *     (onData returns 0) until the head's blank line arrives; one RequestParser per handler,
 *     reset for each head, then reads it whole. A head is at most `maxHeaderBytes`.
 *   - After the upgrade the connection's state is one `WebSocket` object (in the handler's
 *     Map, keyed by connection id). Frames are cut at their boundaries before parsing:
 *     whole frames go to a FrameReceiver; a frame split across reads stays in the engine
 *     (onData consumes up to its start) while it is at most `HOLD_FRAME_BYTES`, so it comes
 *     back whole; a larger one is streamed into a receiver of the connection's own.
 *   - A FrameReceiver between messages holds nothing but its state at a frame boundary, and
 *     frames are only fed whole or streamed to their end: so one receiver per handler serves
 *     every connection whose bytes end on a message boundary (the common case), and a
 *     connection gets its own receiver only while a fragmented or streamed message is in
 *     progress. It is dropped at the end of that message.
 *
 * What an idle open connection holds in JS: its `WebSocket` (9 fields: the connection handle,
 * the shared handler state, the receiver slot (null), flags and close code in one integer,
 * bytes left of a streamed frame, the close reason, `protocol`, `data`, the permessage-deflate
 * codec slot), the connection handle (native: reactor, fd, generation), and one Map entry. No
 * closure, timer, or buffer.
 *
 * permessage-deflate: a connection without context takeover (the default) points at a codec
 * shared by every connection with the same agreement, which holds only parameters; messages
 * are deflated and inflated by one synchronous zlib call each. Only a connection that agreed
 * to context takeover has a codec of its own, with at most 2^windowBits bytes of history per
 * direction. Compressed messages are assembled (compressed) by the receiver like any other,
 * then inflated whole, at most `maxPayload` bytes.
 *
 * Timers: the handshake timeout, heartbeats (`pingInterval`) and the close handshake timeout
 * all use the engine's idle timeout (`conn.setTimeout` / `onTimeout`, a coarse sweep), never a
 * JS timer per connection. Only one of them is armed at a time.
 *
 * Invariants:
 *   - a connection's own receiver exists exactly while a message is in progress (IN_MESSAGE)
 *     or a frame is being streamed (`#frameLeft > 0`);
 *   - bytes handed to a receiver are always consumed (it unmasks them in place): only bytes
 *     no receiver has seen are left to the engine;
 *   - no data frame is sent after our close frame; `onClose` runs once per open WebSocket.
 */
import { Action, checkOption, type Connection, type Handler, type Reactor } from '../../core/index.js';
import { HttpParseError, RequestParser, encodeResponseHead, type Field, type RequestHead, type ResponseFields } from '../http1/index.js';
import { Opcode } from './constants.js';
import {
  PerMessageDeflate,
  formatDeflateParams,
  negotiateDeflate,
  parseExtensions,
  resolveDeflateOptions,
  type DeflateParams,
  type PerMessageDeflateOptions,
  type ResolvedDeflateOptions,
} from './deflate.js';
import { WsProtocolError, checkArgument } from './errors.js';
import { WS_VERSION, acceptResponse, headerHasToken, parseProtocols, validateKey } from './handshake.js';
import { FrameReceiver, RECEIVER_DEFAULTS, type FrameHandler, type FrameReceiverOptions } from './receiver.js';
import { encodeClose, encodeFrame, encodeHeader, encodePing, encodePong } from './sender.js';
import { isValidUtf8 } from './utf8.js';

/** A refusal returned by `onUpgrade`: the HTTP status (300-599) and extra response fields. */
export interface UpgradeRejection {
  status: number;
  headers?: ResponseFields;
}

/** Options of `createWebSocketHandler`. Every callback is optional. */
export interface WebSocketServerOptions<T = unknown> {
  /**
   * Decide on a valid upgrade request before the 101 is sent. Return `false` (403), an
   * `UpgradeRejection` (any object whose `status` is a number), or anything else to accept:
   * that value (unless `undefined` or `true`) becomes `ws.data`. Synchronous only.
   *
   * Lifetime: `req` is a fresh object; keep what you need in the returned value.
   */
  onUpgrade?(req: RequestHead, conn: Connection): false | UpgradeRejection | T | true | undefined | void;
  /** The 101 is written; frames may be sent. */
  onOpen?(ws: WebSocket<T>): void;
  /**
   * A complete message. `isBinary` false: `data` is valid UTF-8 text.
   * Lifetime: `data` is a view valid only until this callback returns; copy what you keep.
   */
  onMessage?(ws: WebSocket<T>, data: Buffer, isBinary: boolean): void;
  /**
   * The connection is gone. `code` is the peer's close code (1005 when its close frame had
   * none), the code we sent for a protocol error, or 1006 when the connection ended without
   * a close handshake. Runs once per WebSocket.
   */
  onClose?(ws: WebSocket<T>, code: number, reason: string): void;
  /** `send` returned false earlier and the buffered bytes are now written. */
  onDrain?(ws: WebSocket<T>): void;
  /** A ping arrived (a pong was already queued). Lifetime: `data` as in `onMessage`. */
  onPing?(ws: WebSocket<T>, data: Uint8Array): void;
  /** A pong arrived. Lifetime: `data` as in `onMessage`. */
  onPong?(ws: WebSocket<T>, data: Uint8Array): void;
  /** The peer broke the protocol; a close frame with `err.closeCode` is on its way, then TCP closes. */
  onError?(ws: WebSocket<T>, err: WsProtocolError): void;
  /**
   * Subprotocol selection: the supported names (the first offered that is supported wins),
   * or a function of the offered names (client order) returning one of them or undefined.
   * Default: none is selected.
   */
  protocols?: readonly string[] | ((offered: readonly string[], req: RequestHead) => string | undefined);
  /**
   * Largest message in bytes (summed over fragments); past it: close 1009. Default 1 MiB.
   * A compressed message is bounded twice: its compressed size, then its inflated size
   * (inflating stops at the limit).
   */
  maxPayload?: number;
  /** Most frames in one message; past it: close 1009. Default 65536. */
  maxFragments?: number;
  /** Largest upgrade request head in bytes; past it: 431. Default 16 KiB. */
  maxHeaderBytes?: number;
  /**
   * Heartbeat in ms: after this long without a byte from the peer, ping; after as long again,
   * close the connection (code 1006 reported). 0 (default) disables. Resolution: the
   * engine's `timerResolution`.
   */
  pingInterval?: number;
  /** How long to wait for the peer's close frame after ours, in ms. Default 5000. */
  closeTimeout?: number;
  /**
   * Close a connection that has not completed the upgrade request after this many ms. 0
   * leaves the engine's `idleTimeout` in charge. Default 10000.
   */
  handshakeTimeout?: number;
  /**
   * permessage-deflate (RFC 7692): `true` for the defaults, an object to tune it, `false`
   * (default) to ignore clients' offers. By default the server adds `server_no_context_takeover`
   * and `client_no_context_takeover` to its answer, so every message is compressed and
   * inflated on its own and an idle connection holds no compression state. See
   * `PerMessageDeflateOptions` and docs/websocket.md for the memory and CPU it costs.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
}

/** Defaults of `WebSocketServerOptions`. */
export const WS_SERVER_DEFAULTS = {
  maxPayload: RECEIVER_DEFAULTS.maxPayload,
  maxFragments: RECEIVER_DEFAULTS.maxFragments,
  maxHeaderBytes: 16 * 1024,
  pingInterval: 0,
  closeTimeout: 5000,
  handshakeTimeout: 10_000,
  perMessageDeflate: false,
} as const;

/**
 * A frame split across reads is left to the engine (re-presented whole later) when its header
 * and payload take at most this many bytes; larger frames are streamed into a receiver.
 * Keep the engine's `maxInboundBytes` above this and above `maxHeaderBytes`.
 */
export const HOLD_FRAME_BYTES = 16 * 1024;

/** A WebSocket handler: a c1m Handler, plus a count of its open WebSockets. */
export interface WebSocketHandler extends Handler {
  /** WebSockets open (upgraded and not yet closed) on this handler. */
  readonly clients: number;
  /**
   * `publish` that knows this handler's WebSockets: ids that are not open WebSockets of this
   * handler (closing, closed, someone else's) are skipped, and with permessage-deflate a
   * message of at least `threshold` bytes is compressed once per distinct agreement and sent
   * compressed to every WebSocket without context takeover (the others get it uncompressed).
   * `reactor` must be the one this handler serves. Returns the number of connections the
   * message was queued for.
   *
   * Backpressure: none is reported; check `ws.bufferedAmount` for slow clients.
   */
  publish(reactor: Reactor, ids: ArrayLike<number>, message: Uint8Array | string, isBinary?: boolean): number;
}

// #bits: flags in the low byte, the close code to report above it.
const IN_MESSAGE = 1; // a fragmented message is in progress (frames seen, not its last)
const AWAIT_PONG = 2; // a heartbeat ping is unanswered (no byte since)
const CLOSE_SENT = 4;
const CLOSE_RECEIVED = 8;
const FAILED = 16; // protocol error: our close frame is sent, TCP closing
const GONE = 32; // terminated, or the connection closed
const NOT_OPEN = CLOSE_SENT | CLOSE_RECEIVED | FAILED | GONE;
const NO_MORE_INPUT = CLOSE_RECEIVED | FAILED | GONE;
const FLAGS = 0xff;

const CODE_NO_STATUS = 1005;
const CODE_ABNORMAL = 1006;
const CODE_GOING_AWAY = 1001;

const PING_FRAME = encodePing();
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

// Send staging: a frame is built here (header right-aligned before HEAD_ROOM) and copied by
// `conn.write` before it returns, so one buffer serves every send.
const HEAD_ROOM = 10;
const SCRATCH = Buffer.allocUnsafe(64 * 1024);
const SCRATCH_ROOM = SCRATCH.length - HEAD_ROOM;
// Views of SCRATCH for frames with a payload under 126 bytes (2-byte header), made once.
const SMALL_FRAMES = Array.from({ length: 126 }, (_, len) => SCRATCH.subarray(HEAD_ROOM - 2, HEAD_ROOM + len));

/**
 * Write one unmasked, final frame of `opcode` carrying `data` (UTF-8 for a string). `opcode`
 * may carry `RSV1` (a compressed message).
 */
function writeFrame(conn: Connection, opcode: number, data: Uint8Array | string): boolean {
  let len: number;
  if (typeof data === 'string') {
    if (data.length * 3 > SCRATCH_ROOM && (data.length > SCRATCH_ROOM || Buffer.byteLength(data) > SCRATCH_ROOM)) {
      return writeLarge(conn, opcode, Buffer.from(data, 'utf8'));
    }
    len = SCRATCH.write(data, HEAD_ROOM, 'utf8');
  } else {
    len = data.length;
    if (len > SCRATCH_ROOM) return writeLarge(conn, opcode, data);
    SCRATCH.set(data, HEAD_ROOM);
  }
  if (len < 126) {
    SCRATCH[HEAD_ROOM - 2] = 0x80 | opcode;
    SCRATCH[HEAD_ROOM - 1] = len;
    return conn.write(SMALL_FRAMES[len]);
  }
  const start = HEAD_ROOM - 4;
  SCRATCH[start] = 0x80 | opcode;
  SCRATCH[start + 1] = 126;
  SCRATCH[start + 2] = len >>> 8;
  SCRATCH[start + 3] = len & 0xff;
  return conn.write(SCRATCH.subarray(start, HEAD_ROOM + len));
}

function writeLarge(conn: Connection, opcode: number, data: Uint8Array): boolean {
  return conn.writev([encodeHeader((opcode & 0x0f) as Opcode, data.length, { rsv1: (opcode & RSV1) !== 0 }), data]);
}

/** The first header byte's RSV1 bit, or-ed into an opcode for `writeFrame`. */
const RSV1 = 0x40;

/** True when `data` takes at least `threshold` bytes (UTF-8 for a string), cheaply. */
function atLeast(data: Uint8Array | string, threshold: number): boolean {
  if (typeof data !== 'string') return data.length >= threshold;
  // A UTF-16 code unit takes 1 to 3 UTF-8 bytes.
  if (data.length >= threshold) return true;
  if (data.length * 3 < threshold) return false;
  return Buffer.byteLength(data) >= threshold;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Handler-wide state shared by every WebSocket of one handler. Internal. */
class Shared {
  readonly sockets = new Map<number, WebSocket<unknown>>();
  readonly dispatch = new Dispatch();
  readonly receiverOptions: FrameReceiverOptions;
  readonly deflateReceiverOptions: FrameReceiverOptions;
  readonly maxPayload: number;
  /** The resolved permessage-deflate options, or null when it is off. */
  readonly deflate: ResolvedDeflateOptions | null;
  /** Codecs without context takeover (stateless), one per agreement, shared by connections. */
  readonly codecs = new Map<string, PerMessageDeflate>();
  /** The receivers for connections whose bytes end on a message boundary (RSV1 off, on). */
  idleRx: FrameReceiver;
  idleDeflateRx: FrameReceiver | null = null;
  shuttingDown = false;
  constructor(
    readonly opts: WebSocketServerOptions<unknown>,
    readonly pingInterval: number,
    readonly closeTimeout: number,
    deflate: ResolvedDeflateOptions | null,
  ) {
    this.receiverOptions = { role: 'server', maxPayload: opts.maxPayload, maxFragments: opts.maxFragments };
    this.deflateReceiverOptions = { ...this.receiverOptions, extensions: { rsv1: true } };
    this.maxPayload = opts.maxPayload ?? RECEIVER_DEFAULTS.maxPayload;
    this.deflate = deflate;
    this.idleRx = this.newReceiver(false);
  }
  newReceiver(deflate: boolean): FrameReceiver {
    return new FrameReceiver(this.dispatch, deflate ? this.deflateReceiverOptions : this.receiverOptions);
  }
  /** The shared receiver for a connection with (or without) permessage-deflate. */
  idle(deflate: boolean): FrameReceiver {
    return deflate ? (this.idleDeflateRx ??= this.newReceiver(true)) : this.idleRx;
  }
  /** Replace `rx` if it is a shared receiver (after it failed or saw a close frame). */
  retire(rx: FrameReceiver): void {
    if (rx === this.idleRx) this.idleRx = this.newReceiver(false);
    else if (rx === this.idleDeflateRx) this.idleDeflateRx = null;
  }
  /** The codec for `params`: shared when stateless, else the connection's own. */
  codec(params: DeflateParams): PerMessageDeflate {
    const d = this.deflate!;
    if (!params.serverNoContextTakeover || !params.clientNoContextTakeover) {
      return new PerMessageDeflate({ role: 'server', params, level: d.level, memLevel: d.memLevel });
    }
    const key = `${params.serverMaxWindowBits},${params.clientMaxWindowBits}`;
    let codec = this.codecs.get(key);
    if (codec === undefined) {
      codec = new PerMessageDeflate({ role: 'server', params, level: d.level, memLevel: d.memLevel });
      this.codecs.set(key, codec);
    }
    return codec;
  }
}

// Engine-side operations on a WebSocket's private state, bound in its static block.
let createSocket: (conn: Connection, shared: Shared, protocol: string, data: unknown, deflate: PerMessageDeflate | null) => WebSocket<unknown>;
let receive: (ws: WebSocket<unknown>, data: Buffer, start: number) => number;
let frameMessage: (ws: WebSocket<unknown>, payload: Uint8Array, isBinary: boolean) => void;
let frameCompressed: (ws: WebSocket<unknown>, payload: Uint8Array, isBinary: boolean) => void;
let socketCodec: (ws: WebSocket<unknown>) => PerMessageDeflate | null;
let socketOpen: (ws: WebSocket<unknown>) => boolean;
let framePing: (ws: WebSocket<unknown>, payload: Uint8Array) => void;
let framePong: (ws: WebSocket<unknown>, payload: Uint8Array) => void;
let frameClose: (ws: WebSocket<unknown>, code: number | undefined, reason: string) => void;
let timedOut: (ws: WebSocket<unknown>) => void;
let closed: (ws: WebSocket<unknown>) => void;

/**
 * Routes a receiver's events to the WebSocket whose bytes it is parsing (`current`): receivers
 * are shared, and this keeps one handler object per server instead of a closure per socket.
 */
class Dispatch implements FrameHandler {
  current: WebSocket<unknown> | null = null;
  onMessage(payload: Uint8Array, isBinary: boolean): void {
    frameMessage(this.current!, payload, isBinary);
  }
  onCompressedMessage(payload: Uint8Array, isBinary: boolean): void {
    frameCompressed(this.current!, payload, isBinary);
  }
  onPing(payload: Uint8Array): void {
    framePing(this.current!, payload);
  }
  onPong(payload: Uint8Array): void {
    framePong(this.current!, payload);
  }
  onClose(code: number | undefined, reason: string): void {
    frameClose(this.current!, code, reason);
  }
}

/**
 * One upgraded connection.
 *
 * Threading: use it only on its reactor's thread (inside callbacks, or tasks of that thread).
 * Lifetime: safe to keep after close: `send`, `ping` and `close` then do nothing.
 */
export class WebSocket<T = unknown> {
  /** One application value per WebSocket: what `onUpgrade` returned, else undefined. */
  data: T;
  /** The subprotocol selected in the handshake, or '' when none. */
  readonly protocol: string;
  readonly #conn: Connection;
  readonly #shared: Shared;
  /** This connection's receiver, only while a message is in progress or a frame streams in. */
  #rx: FrameReceiver | null = null;
  /** Flags (low byte) and the close code to report (above). */
  #bits = 0;
  /** Bytes of a streamed frame still to come. */
  #frameLeft = 0;
  #reason = '';
  /** The permessage-deflate codec (shared unless it takes context over), or null. */
  readonly #deflate: PerMessageDeflate | null;

  private constructor(conn: Connection, shared: Shared, protocol: string, data: T, deflate: PerMessageDeflate | null) {
    this.#conn = conn;
    this.#shared = shared;
    this.protocol = protocol;
    this.data = data;
    this.#deflate = deflate;
  }

  /**
   * The agreed permessage-deflate parameters as a `Sec-WebSocket-Extensions` value (window
   * bits only when under 15), or '' when the extension is not in use.
   */
  get extensions(): string {
    const deflate = this.#deflate;
    return deflate === null ? '' : formatDeflateParams(deflate.params);
  }

  /** The connection id (for `publish` and `reactor.broadcast`). */
  get id(): number {
    return this.#conn.id;
  }

  /** `'open'`; `'closing'` once a close frame was sent or received; `'closed'` once the connection is gone. */
  get readyState(): 'open' | 'closing' | 'closed' {
    const b = this.#bits;
    return (b & GONE) !== 0 ? 'closed' : (b & NOT_OPEN) !== 0 ? 'closing' : 'open';
  }

  /** Bytes queued and not yet taken by the kernel. */
  get bufferedAmount(): number {
    return this.#conn.bufferedAmount;
  }

  get remoteAddress(): string | undefined {
    return this.#conn.remoteAddress;
  }

  /**
   * Send a message: a string as text, bytes as binary, unless `isBinary` says otherwise
   * (text bytes must then be valid UTF-8: they are not checked). The bytes are copied.
   * With permessage-deflate, a message of at least `threshold` bytes is compressed first
   * (synchronously); without context takeover it goes uncompressed when that is not smaller.
   *
   * Backpressure: returns false past the engine's `highWaterMark` (the message is still
   * queued; wait for `onDrain`), and when the WebSocket is closing or closed (dropped).
   */
  send(data: Uint8Array | string, isBinary: boolean = typeof data !== 'string'): boolean {
    if ((this.#bits & NOT_OPEN) !== 0) return false;
    const opcode = isBinary ? Opcode.Binary : Opcode.Text;
    const deflate = this.#deflate;
    if (deflate !== null && atLeast(data, this.#shared.deflate!.threshold)) {
      const raw = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      const packed = deflate.compress(raw);
      if (deflate.stateful || packed.length < raw.length) return writeFrame(this.#conn, opcode | RSV1, packed);
      return writeFrame(this.#conn, opcode, raw);
    }
    return writeFrame(this.#conn, opcode, data);
  }

  /**
   * Send a ping (`data` at most 125 bytes). Returns false when not open.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for a payload over 125 bytes.
   */
  ping(data?: Uint8Array | string): boolean {
    if ((this.#bits & NOT_OPEN) !== 0) return false;
    return this.#conn.write(encodePing(data));
  }

  /**
   * Start the close handshake: send a close frame (no `code`: an empty one), then wait up to
   * `closeTimeout` for the peer's close frame before the connection is closed. No-op unless
   * open. Messages that arrive meanwhile are still delivered.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for a code that may not be sent (1005,
   * 1006, 1015, ...) or a reason over 123 UTF-8 bytes.
   */
  close(code?: number, reason = ''): void {
    if ((this.#bits & NOT_OPEN) !== 0) return;
    const frame = encodeClose(code, reason);
    this.#bits |= CLOSE_SENT;
    this.#conn.write(frame);
    this.#conn.setTimeout(this.#shared.closeTimeout);
  }

  /** Close the connection at once, without a close handshake (`onClose` reports 1006). */
  terminate(): void {
    if ((this.#bits & GONE) !== 0) return;
    this.#bits |= GONE;
    this.#rx = null;
    this.#conn.destroy();
  }

  static {
    createSocket = (conn, shared, protocol, data, deflate) => new WebSocket(conn, shared, protocol, data, deflate);
    receive = (ws, data, start) => ws.#receive(data, start);
    frameMessage = (ws, payload, isBinary) => {
      if ((ws.#bits & NO_MORE_INPUT) === 0) ws.#shared.opts.onMessage?.(ws, asBuffer(payload), isBinary);
    };
    frameCompressed = (ws, payload, isBinary) => {
      if ((ws.#bits & NO_MORE_INPUT) !== 0) return;
      // Throws WsProtocolError (1007, 1009): #feed fails the connection with it.
      const data = ws.#deflate!.decompress(payload, ws.#shared.maxPayload);
      if (!isBinary && !isValidUtf8(data)) throw new WsProtocolError('ERR_C1M_WS_INVALID_UTF8', 'text message is not valid UTF-8');
      ws.#shared.opts.onMessage?.(ws, data, isBinary);
    };
    socketCodec = (ws) => ws.#deflate;
    socketOpen = (ws) => (ws.#bits & NOT_OPEN) === 0;
    framePing = (ws, payload) => {
      if ((ws.#bits & NO_MORE_INPUT) !== 0) return;
      if ((ws.#bits & CLOSE_SENT) === 0) ws.#conn.write(encodePong(payload));
      ws.#shared.opts.onPing?.(ws, payload);
    };
    framePong = (ws, payload) => {
      if ((ws.#bits & NO_MORE_INPUT) === 0) ws.#shared.opts.onPong?.(ws, payload);
    };
    frameClose = (ws, code, reason) => ws.#peerClosed(code, reason);
    timedOut = (ws) => ws.#timedOut();
    closed = (ws) => ws.#closed();
  }

  /** Frames in `data[start..]`; returns the offset up to which bytes were consumed. */
  #receive(data: Buffer, start: number): number {
    const end = data.length;
    if ((this.#bits & NO_MORE_INPUT) !== 0) return end;
    this.#bits &= ~AWAIT_PONG;
    let pos = start;
    if (this.#frameLeft > 0) {
      const stop = end - pos > this.#frameLeft ? pos + this.#frameLeft : end;
      this.#frameLeft -= stop - pos;
      if (!this.#feed(this.#rx!, data, pos, stop)) return end;
      pos = stop;
      if (this.#frameLeft > 0) return end;
      if ((this.#bits & IN_MESSAGE) === 0) this.#rx = null;
    }
    const from = pos;
    let inMessage = (this.#bits & IN_MESSAGE) !== 0;
    while (end - pos >= 2) {
      const b1 = data[pos + 1];
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
        this.#bits = inMessage ? this.#bits | IN_MESSAGE : this.#bits & ~IN_MESSAGE;
        this.#frameLeft = frameEnd - end;
        this.#feed((this.#rx ??= this.#shared.newReceiver(this.#deflate !== null)), data, from, end);
        return end;
      }
      if ((b0 & 0x0f) < Opcode.Close) inMessage = (b0 & 0x80) === 0;
      pos = frameEnd;
    }
    if (pos === from) return pos;
    this.#bits = inMessage ? this.#bits | IN_MESSAGE : this.#bits & ~IN_MESSAGE;
    const deflate = this.#deflate !== null;
    const rx = this.#rx ?? (inMessage ? (this.#rx = this.#shared.newReceiver(deflate)) : this.#shared.idle(deflate));
    if (!this.#feed(rx, data, from, pos)) return end;
    if (!inMessage) this.#rx = null;
    return pos;
  }

  /** Parse whole frames (or the rest of the input) with `rx`. False: read no further. */
  #feed(rx: FrameReceiver, data: Buffer, from: number, to: number): boolean {
    const shared = this.#shared;
    const dispatch = shared.dispatch;
    const prev = dispatch.current;
    dispatch.current = this;
    try {
      rx.execute(from === 0 && to === data.length ? data : data.subarray(from, to));
    } catch (err) {
      shared.retire(rx);
      this.#rx = null;
      this.#frameLeft = 0;
      if (!(err instanceof WsProtocolError)) {
        // A callback threw: the engine resets the connection; read nothing more of it.
        this.#bits |= GONE;
        throw err;
      }
      this.#fail(err);
      return false;
    } finally {
      dispatch.current = prev;
    }
    if (rx.state !== 'open') {
      // A close frame: the receiver ignores everything after it.
      shared.retire(rx);
      this.#rx = null;
      this.#frameLeft = 0;
      return false;
    }
    return (this.#bits & NO_MORE_INPUT) === 0;
  }

  #fail(err: WsProtocolError): void {
    const bits = this.#bits;
    if ((bits & NO_MORE_INPUT) !== 0) return;
    this.#bits = (bits & FLAGS) | FAILED | CLOSE_SENT | (err.closeCode << 8);
    this.#reason = '';
    if ((bits & CLOSE_SENT) === 0) this.#conn.write(encodeClose(err.closeCode));
    this.#conn.close();
    this.#shared.opts.onError?.(this, err);
  }

  #peerClosed(code: number | undefined, reason: string): void {
    const bits = this.#bits;
    if ((bits & NO_MORE_INPUT) !== 0) return;
    this.#bits = (bits & FLAGS) | CLOSE_RECEIVED | CLOSE_SENT | ((code ?? CODE_NO_STATUS) << 8);
    this.#reason = reason;
    // Echo code and reason (RFC 6455 5.5.1), then close TCP: the server closes first (7.1.1).
    if ((bits & CLOSE_SENT) === 0) this.#conn.write(code === undefined ? encodeClose() : encodeClose(code, reason));
    this.#conn.close();
  }

  #timedOut(): void {
    const bits = this.#bits;
    if ((bits & GONE) !== 0) return;
    if ((bits & NOT_OPEN) !== 0 || (bits & AWAIT_PONG) !== 0) {
      // The close handshake did not finish, or the heartbeat went unanswered.
      this.terminate();
      return;
    }
    const interval = this.#shared.pingInterval;
    if (interval > 0) {
      this.#bits = bits | AWAIT_PONG;
      this.#conn.write(PING_FRAME);
      this.#conn.setTimeout(interval);
      return;
    }
    // An idle timeout armed by the application: leave politely.
    this.close(CODE_GOING_AWAY);
  }

  #closed(): void {
    const bits = this.#bits;
    this.#bits = bits | GONE;
    this.#rx = null;
    this.#frameLeft = 0;
    const handshake = (bits & (CLOSE_RECEIVED | FAILED)) !== 0;
    const code = handshake ? bits >>> 8 : CODE_ABNORMAL;
    const reason = handshake ? this.#reason : '';
    this.#shared.opts.onClose?.(this, code, reason);
  }
}

/** Collects the head of the one request being read (the parser calls these as methods). */
class HeadCatcher {
  head: RequestHead | null = null;
  onRequest(head: RequestHead): void {
    this.head = head;
  }
  onBody(): void {}
  onMessageComplete(): void {}
}

/** The value of header `lower` (joined with ', ' when repeated), or undefined. */
function field(headers: Field[], lower: string, count?: { n: number }): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < headers.length; i++) {
    const [name, v] = headers[i];
    if (name.length === lower.length && name.toLowerCase() === lower) {
      value = value === undefined ? v : `${value}, ${v}`;
      if (count) count.n++;
    }
  }
  return value;
}

function fieldList(headers: ResponseFields | undefined): [string, string | number][] {
  if (headers === undefined) return [];
  if (Array.isArray(headers)) return (headers as readonly (readonly [string, string | number])[]).map(([n, v]) => [n, v]);
  const out: [string, string | number][] = [];
  for (const [name, value] of Object.entries(headers as Readonly<Record<string, string | number | readonly (string | number)[]>>)) {
    if (Array.isArray(value)) for (const v of value as readonly (string | number)[]) out.push([name, v]);
    else out.push([name, value as string | number]);
  }
  return out;
}

/** Answer `status`, then close (after flushing). */
function refuse(conn: Connection, status: number, extra: [string, string | number][] = []): Action {
  conn.write(encodeResponseHead(status, [...extra, ['Connection', 'close'], ['Content-Length', 0]]));
  return Action.Close;
}

const isMs = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0x7fffffff;

class WsServer implements WebSocketHandler {
  readonly #shared: Shared;
  readonly #opts: WebSocketServerOptions<unknown>;
  readonly #heads = new HeadCatcher();
  readonly #parser: RequestParser;
  readonly #maxHeaderBytes: number;
  readonly #handshakeTimeout: number;
  readonly #protocols: WebSocketServerOptions<unknown>['protocols'];

  constructor(opts: WebSocketServerOptions<unknown>) {
    checkOption(typeof opts === 'object' && opts !== null, 'options', 'an object', opts);
    const pingInterval = opts.pingInterval ?? WS_SERVER_DEFAULTS.pingInterval;
    const closeTimeout = opts.closeTimeout ?? WS_SERVER_DEFAULTS.closeTimeout;
    const handshakeTimeout = opts.handshakeTimeout ?? WS_SERVER_DEFAULTS.handshakeTimeout;
    const maxHeaderBytes = opts.maxHeaderBytes ?? WS_SERVER_DEFAULTS.maxHeaderBytes;
    checkOption(isMs(pingInterval), 'pingInterval', 'an integer number of ms from 0 to 2147483647', pingInterval);
    checkOption(isMs(closeTimeout) && closeTimeout > 0, 'closeTimeout', 'an integer number of ms from 1 to 2147483647', closeTimeout);
    checkOption(isMs(handshakeTimeout), 'handshakeTimeout', 'an integer number of ms from 0 to 2147483647', handshakeTimeout);
    checkOption(Number.isInteger(maxHeaderBytes) && maxHeaderBytes >= 64, 'maxHeaderBytes', 'an integer >= 64', maxHeaderBytes);
    const protocols = opts.protocols;
    checkOption(
      protocols === undefined || typeof protocols === 'function' || (Array.isArray(protocols) && protocols.every((p) => typeof p === 'string')),
      'protocols', 'an array of strings or a function', protocols,
    );
    for (const name of ['onUpgrade', 'onOpen', 'onMessage', 'onClose', 'onDrain', 'onPing', 'onPong', 'onError'] as const) {
      checkOption(opts[name] === undefined || typeof opts[name] === 'function', name, 'a function', typeof opts[name]);
    }
    const perMessageDeflate = opts.perMessageDeflate ?? WS_SERVER_DEFAULTS.perMessageDeflate;
    checkOption(
      typeof perMessageDeflate === 'boolean' || (typeof perMessageDeflate === 'object' && perMessageDeflate !== null),
      'perMessageDeflate', 'a boolean or an object', perMessageDeflate,
    );
    const deflate = perMessageDeflate === false ? null : resolveDeflateOptions(perMessageDeflate);
    // The receiver validates maxPayload and maxFragments.
    this.#shared = new Shared(opts, pingInterval, closeTimeout, deflate);
    this.#opts = opts;
    this.#parser = new RequestParser(this.#heads, { maxHeaderBytes });
    this.#maxHeaderBytes = maxHeaderBytes;
    this.#handshakeTimeout = handshakeTimeout;
    this.#protocols = protocols;
  }

  get clients(): number {
    return this.#shared.sockets.size;
  }

  publish(reactor: Reactor, ids: ArrayLike<number>, message: Uint8Array | string, isBinary: boolean = typeof message !== 'string'): number {
    const opcode = isBinary ? Opcode.Binary : Opcode.Text;
    const shared = this.#shared;
    const plain: number[] = [];
    // Our window bits -> a stateless codec with them, and its recipients: they all get the same
    // bytes. Stateful codecs would have to compress per connection: those recipients get the
    // uncompressed frame (RSV1 is per message).
    const packed = new Map<number, [PerMessageDeflate, number[]]>();
    const compress = shared.deflate !== null && atLeast(message, shared.deflate.threshold);
    for (let i = 0; i < ids.length; i++) {
      const ws = shared.sockets.get(ids[i]);
      if (ws === undefined || !socketOpen(ws)) continue;
      const codec = compress ? socketCodec(ws) : null;
      if (codec === null || codec.stateful) {
        plain.push(ids[i]);
        continue;
      }
      const group = packed.get(codec.params.serverMaxWindowBits);
      if (group === undefined) packed.set(codec.params.serverMaxWindowBits, [codec, [ids[i]]]);
      else group[1].push(ids[i]);
    }
    let sent = 0;
    if (packed.size !== 0) {
      const raw = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
      for (const [codec, list] of packed.values()) {
        const body = codec.compress(raw);
        if (body.length < raw.length) sent += reactor.broadcast(list, encodeFrame(opcode, body, { rsv1: true }));
        else for (const id of list) plain.push(id);
      }
    }
    if (plain.length !== 0) sent += reactor.broadcast(plain, encodeFrame(opcode, message));
    return sent;
  }

  onOpen(conn: Connection): void {
    if (this.#handshakeTimeout > 0) conn.setTimeout(this.#handshakeTimeout);
  }

  onData(conn: Connection, data: Buffer): number | Action {
    const ws = this.#shared.sockets.get(conn.id);
    if (ws !== undefined) return receive(ws, data, 0);
    return this.#handshake(conn, data);
  }

  onDrain(conn: Connection): void {
    const ws = this.#shared.sockets.get(conn.id);
    if (ws !== undefined) this.#opts.onDrain?.(ws);
  }

  onTimeout(conn: Connection): void {
    const ws = this.#shared.sockets.get(conn.id);
    if (ws !== undefined) timedOut(ws);
    else conn.close();
  }

  onClose(conn: Connection): void {
    const sockets = this.#shared.sockets;
    const ws = sockets.get(conn.id);
    if (ws === undefined) return;
    sockets.delete(conn.id);
    closed(ws);
  }

  onShutdown(): void {
    this.#shared.shuttingDown = true;
    for (const ws of this.#shared.sockets.values()) ws.close(CODE_GOING_AWAY);
  }

  #handshake(conn: Connection, data: Buffer): number | Action {
    const limit = this.#maxHeaderBytes;
    const blank = (data.length > limit ? data.subarray(0, limit) : data).indexOf(CRLFCRLF);
    if (blank < 0) return data.length >= limit ? refuse(conn, 431) : 0;
    const headEnd = blank + 4;
    const heads = this.#heads;
    const parser = this.#parser;
    heads.head = null;
    parser.reset();
    let consumed: number;
    try {
      consumed = parser.execute(data.subarray(0, headEnd));
    } catch (err) {
      if (err instanceof HttpParseError) return refuse(conn, err.status);
      throw err;
    }
    const req = heads.head as RequestHead | null;
    heads.head = null;
    // Only empty lines before a request line: drop them and wait for the head.
    if (req === null) return consumed > 0 ? consumed : refuse(conn, 400);
    if (this.#shared.shuttingDown) return refuse(conn, 503);
    if (req.method !== 'GET') return refuse(conn, 405, [['Allow', 'GET']]);
    if (!req.upgrade || req.versionMinor !== 1 || !headerHasToken(req.upgradeProtocol ?? undefined, 'websocket')) return refuse(conn, 400);
    if (req.chunked || (req.contentLength !== null && req.contentLength !== 0)) return refuse(conn, 400);
    const headers = req.headers;
    const count = { n: 0 };
    const key = field(headers, 'sec-websocket-key', count);
    if (count.n !== 1 || !validateKey(key)) return refuse(conn, 400);
    count.n = 0;
    const version = field(headers, 'sec-websocket-version', count);
    if (version === undefined) return refuse(conn, 400);
    if (count.n !== 1 || version !== WS_VERSION) return refuse(conn, 426, [['Sec-WebSocket-Version', WS_VERSION]]);
    const offered = parseProtocols(field(headers, 'sec-websocket-protocol'));
    if (offered === null) return refuse(conn, 400);
    // Extensions are read only when one is enabled: otherwise offers are ignored, as before.
    let agreement: ReturnType<typeof negotiateDeflate> = null;
    const deflate = this.#shared.deflate;
    if (deflate !== null) {
      const extensions = parseExtensions(field(headers, 'sec-websocket-extensions'));
      if (extensions === null) return refuse(conn, 400);
      agreement = negotiateDeflate(extensions, deflate);
    }
    let protocol: string | undefined;
    const select = this.#protocols;
    if (offered.length !== 0 && select !== undefined) {
      if (typeof select === 'function') {
        protocol = select(offered, req);
        checkArgument(protocol === undefined || offered.includes(protocol), `protocols() returned ${JSON.stringify(protocol)}, which the client did not offer`);
      } else {
        protocol = offered.find((p) => select.includes(p));
      }
    }
    let context: unknown;
    const onUpgrade = this.#opts.onUpgrade;
    if (onUpgrade !== undefined) {
      const verdict = onUpgrade.call(this.#opts, req, conn);
      if (verdict === false) return refuse(conn, 403);
      if (typeof verdict === 'object' && verdict !== null && typeof (verdict as UpgradeRejection).status === 'number') {
        const { status, headers: extra } = verdict as UpgradeRejection;
        checkArgument(Number.isInteger(status) && status >= 300 && status <= 599, `onUpgrade rejected with status ${status}; expected 300-599`);
        return refuse(conn, status, fieldList(extra));
      }
      if (verdict !== true) context = verdict;
    }
    const ws = createSocket(conn, this.#shared, protocol ?? '', context, agreement === null ? null : this.#shared.codec(agreement.params));
    conn.write(acceptResponse(key!, { protocol, extensions: agreement?.response }));
    this.#shared.sockets.set(conn.id, ws);
    // Replaces the handshake timeout with the heartbeat (or none). With neither configured,
    // the engine's idleTimeout stays in charge.
    if (this.#shared.pingInterval > 0 || this.#handshakeTimeout > 0) conn.setTimeout(this.#shared.pingInterval);
    this.#opts.onOpen?.(ws);
    return headEnd < data.length ? receive(ws, data, headEnd) : headEnd;
  }
}

/**
 * A c1m Handler serving WebSockets: pass it to `listen`, `createReactor`, or export it from a
 * handler module for `serve`. Use one handler per reactor.
 *
 * Errors: throws `ERR_C1M_INVALID_OPTION` for a bad option. An exception thrown by a callback
 * closes that connection (`'handler-error'`, reported to the engine's `onError`; `onClose`
 * reports 1006); a protocol error closes it with the error's close code (see `onError`).
 */
export function createWebSocketHandler<T = unknown>(options: WebSocketServerOptions<T>): WebSocketHandler {
  return new WsServer(options as WebSocketServerOptions<unknown>);
}

/**
 * Send one message to many connections: the frame is encoded once and written by
 * `reactor.broadcast` in one crossing. Returns the number of connections it was queued for.
 * The frame is never compressed (valid with or without permessage-deflate: RSV1 is per
 * message); `handler.publish` compresses for the WebSockets that negotiated it.
 *
 * `ids` should be of open WebSockets (`ws.id`) of this reactor: the engine skips closed ids,
 * but cannot know that a WebSocket is closing, so drop a WebSocket from your lists when you
 * call `close` on it (or in `onClose`).
 * Backpressure: none is reported; check `ws.bufferedAmount` for slow clients.
 */
export function publish(reactor: Reactor, ids: ArrayLike<number>, message: Uint8Array | string, isBinary: boolean = typeof message !== 'string'): number {
  if (ids.length === 0) return 0;
  const frame = encodeFrame(isBinary ? Opcode.Binary : Opcode.Text, message);
  return reactor.broadcast(ids, frame);
}
