/**
 * What the WebSocket server (server.ts) and client (client.ts) share once the opening handshake
 * is done: per-connection state in the engine's `conn.tag` word, the frame cutter with its fast
 * path, receivers shared between connections, the close handshake and heartbeat steps, and frame
 * writing from one staging buffer. Internal: nothing here is exported by the package.
 *
 * The roles differ in two places only, both read from `Framing.role`: masking (a server reads
 * masked frames and sends unmasked ones, a client the reverse) and who closes TCP first after
 * the close handshake (the server, RFC 6455 7.1.1). permessage-deflate is negotiated by each
 * role (the server answers offers, the client offers), which sets the codec bits and answers
 * `codec()`.
 *
 * Model:
 *   - A WebSocket's state is its connection's `tag` (a 32-bit word the engine keeps outside the
 *     JS heap): the flags below, the index of a shared codec (bits 8-15) and of an interned
 *     subprotocol (bits 16-23); bits 24-31 are the role's own. Anything more (application
 *     `data`, a receiver of its own, the close code and reason while closing, what a role adds)
 *     lives in an Extra in `Framing.extras` only while it holds something.
 *   - Frames are cut at their boundaries before parsing. A whole, unfragmented, uncompressed
 *     text or binary frame, masked as the role expects, at a message boundary (the common case)
 *     is unmasked in place when masked and delivered directly: the fast path. Other whole frames
 *     go to a FrameReceiver; a frame split across reads stays in the engine (the consumed count
 *     stops at its start) while it is at most `HOLD_FRAME_BYTES`, so it comes back whole; a
 *     larger one is streamed into a receiver of the connection's own.
 *   - A FrameReceiver between messages holds nothing but its state at a frame boundary, and
 *     frames are only fed whole or streamed to their end: so one receiver per handler (one more
 *     with RSV1 allowed) serves every connection whose bytes end on a message boundary, and a
 *     connection has its own only while a fragmented or streamed message is in progress.
 *
 * Invariants:
 *   - a connection's own receiver exists exactly while a message is in progress (IN_MESSAGE)
 *     or a frame is being streamed (`frameLeft > 0`);
 *   - the EXTRA bit of the tag is set exactly while `extras` holds an Extra for the connection;
 *   - bytes handed to a receiver are always consumed (it unmasks them in place): only bytes no
 *     receiver has seen are left to the engine;
 *   - no data frame is sent after our close frame.
 */
import { randomFillSync } from 'node:crypto';
import { areaOf, IdMap, offsetOf, type Connection, type Reactor } from '../../core/index.js';
import { Opcode } from './constants.js';
import { PerMessageDeflate, type DeflateParams, type ResolvedDeflateOptions } from './deflate.js';
import { WsProtocolError } from './errors.js';
import { maskInPlace, readUint32BE, unmaskWhole, wordView } from './mask.js';
import { FrameReceiver, RECEIVER_DEFAULTS, type FrameHandler, type FrameReceiverOptions } from './receiver.js';
import { encodeClose, encodeFrame, encodeHeader, type ControlFrameOptions } from './sender.js';
import { isValidUtf8 } from './utf8.js';

/**
 * A frame split across reads is left to the engine (re-presented whole later) when its header
 * and payload take at most this many bytes; larger frames are streamed into a receiver.
 * Keep the engine's `maxInboundBytes` above this and above `maxHeaderBytes`.
 */
export const HOLD_FRAME_BYTES = 16 * 1024;

// conn.tag: the per-connection state, in the engine (no JS heap for an idle WebSocket).
/** The upgrade is done: frames flow (on a server: a WebSocket of this handler). */
export const UPGRADED = 1;
/** A fragmented message is in progress (frames seen, not its last). */
export const IN_MESSAGE = 2;
/** A heartbeat ping is unanswered (no byte since). */
export const AWAIT_PONG = 4;
export const CLOSE_SENT = 8;
export const CLOSE_RECEIVED = 16;
/** The connection failed (an error was reported, our close frame sent if upgraded); TCP closing. */
export const FAILED = 32;
/** Terminated, or a callback threw: nothing more is read or sent. */
export const GONE = 64;
/** `Framing.extras` holds an Extra for this connection. */
export const EXTRA = 128;
export const NOT_OPEN = CLOSE_SENT | CLOSE_RECEIVED | FAILED | GONE;
export const NO_MORE_INPUT = CLOSE_RECEIVED | FAILED | GONE;
/** Bits 8-15: 1 + index of a shared stateless codec; OWN_CODEC: a codec in the Extra. 0: none. */
export const CODEC_SHIFT = 8;
export const OWN_CODEC = 0xff;
/** Bits 16-23: 1 + index of the selected subprotocol in `protocolNames` (0: none or `Extra.protocol`). */
export const PROTOCOL_SHIFT = 16;
/** The first of the bits 24-31, left to a role for its own flags. */
export const ROLE_FLAG = 1 << 24;
const MAX_INTERNED = 0xfe;

export const CODE_NO_STATUS = 1005;
export const CODE_ABNORMAL = 1006;
export const CODE_GOING_AWAY = 1001;

/** The first header byte's RSV1 bit, or-ed into an opcode for `writeFrame`. */
export const RSV1 = 0x40;

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

/** A fresh Sec-WebSocket-Key: 16 random bytes in base64. */
export function randomKey(): string {
  const at = takeRandom(16);
  return RANDOM.toString('base64', at, at + 16);
}

// Send staging: the payload is written at HEAD_ROOM (and masked in place by a client), the
// header right-aligned before it; `conn.write` copies, so one buffer serves every send. Frames
// staged here have a payload under 64 KiB: a header of at most 4 bytes, plus a 4-byte key.
const HEAD_ROOM = 8;
const SCRATCH = Buffer.allocUnsafe(64 * 1024);
const SCRATCH_ROOM = SCRATCH.length - HEAD_ROOM;
// Views of SCRATCH for payloads under 126 bytes (a 2-byte header, 6 bytes masked), made once.
const SMALL_FRAMES = Array.from({ length: 126 }, (_, len) => SCRATCH.subarray(HEAD_ROOM - 2, HEAD_ROOM + len));
const SMALL_MASKED_FRAMES = Array.from({ length: 126 }, (_, len) => SCRATCH.subarray(HEAD_ROOM - 6, HEAD_ROOM + len));

/**
 * Write one unmasked, final frame of `opcode` carrying `data` (UTF-8 for a string): a server's
 * frame. `opcode` may carry `RSV1` (a compressed message).
 */
export function writeFrame(conn: Connection, opcode: number, data: Uint8Array | string): boolean {
  // The payload is staged here and in writeMaskedFrame alike, not by a shared helper: on the
  // server's echo path that call level cost about 3% per 64-byte frame (V8 inlines less).
  let len: number;
  if (typeof data === 'string') {
    if (data.length * 3 > SCRATCH_ROOM && (data.length > SCRATCH_ROOM || Buffer.byteLength(data) > SCRATCH_ROOM)) {
      return writeLarge(conn, opcode, Buffer.from(data, 'utf8'));
    }
    len = SCRATCH.write(data, HEAD_ROOM, 'utf8');
  } else {
    // Bytes: the header goes before them as the engine copies them, no staging here.
    len = data.length;
    if (len < 126) return conn.writeWithHeader(((0x80 | opcode) << 8) | len, 2, data);
    if (len < 0x10000) return conn.writeWithHeader((((0x80 | opcode) << 24) | (126 << 16) | len) >>> 0, 4, data);
    return writeLarge(conn, opcode, data);
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

/** A frame too large for SCRATCH: unmasked, its header and `data` in one writev; masked, one copy. */
function writeLarge(conn: Connection, opcode: number, data: Uint8Array, masked = false): boolean {
  const options = { rsv1: (opcode & RSV1) !== 0 };
  if (masked) return conn.write(encodeFrame((opcode & 0x0f) as Opcode, data, { ...options, mask: true }));
  return conn.writev([encodeHeader((opcode & 0x0f) as Opcode, data.length, options), data]);
}

/**
 * Write one final frame of `opcode` carrying `data` (UTF-8 for a string), masked with a fresh
 * key taken from a pool of random bytes (one `randomFillSync` per 1024 keys): a client's frame.
 */
export function writeMaskedFrame(conn: Connection, opcode: number, data: Uint8Array | string): boolean {
  let len: number;
  if (typeof data === 'string') {
    if (data.length * 3 > SCRATCH_ROOM && (data.length > SCRATCH_ROOM || Buffer.byteLength(data) > SCRATCH_ROOM)) {
      return writeLarge(conn, opcode, Buffer.from(data, 'utf8'), true);
    }
    len = SCRATCH.write(data, HEAD_ROOM, 'utf8');
  } else {
    len = data.length;
    if (len > SCRATCH_ROOM) return writeLarge(conn, opcode, data, true);
    SCRATCH.set(data, HEAD_ROOM);
  }
  const at = takeRandom(4);
  if (len !== 0) maskInPlace(SCRATCH, HEAD_ROOM, HEAD_ROOM + len, readUint32BE(RANDOM, at), 0);
  RANDOM.copy(SCRATCH, HEAD_ROOM - 4, at, at + 4);
  if (len < 126) {
    SCRATCH[HEAD_ROOM - 6] = 0x80 | opcode;
    SCRATCH[HEAD_ROOM - 5] = 0x80 | len;
    return conn.write(SMALL_MASKED_FRAMES[len]);
  }
  const start = HEAD_ROOM - 8;
  SCRATCH[start] = 0x80 | opcode;
  SCRATCH[start + 1] = 0x80 | 126;
  SCRATCH[start + 2] = len >>> 8;
  SCRATCH[start + 3] = len & 0xff;
  return conn.write(SCRATCH.subarray(start, HEAD_ROOM + len));
}

/**
 * A Buffer made directly over an ArrayBuffer range: `new PayloadView(ab, offset, length)` is a
 * Buffer (Buffer.prototype methods, `Buffer.isBuffer`) that skips the species lookup of
 * `subarray`, about twice as cheap per message on the fast path.
 */
class PayloadView extends Uint8Array {}
Object.setPrototypeOf(PayloadView.prototype, Buffer.prototype);

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * What a WebSocket holds beyond its tag, only while it holds something. A role extends it
 * with its own fields, and `empty` with them.
 */
export class FrameExtra {
  data: unknown = undefined;
  rx: FrameReceiver | null = null;
  /** Bytes of a streamed frame still to come. */
  frameLeft = 0;
  /** The close code to report (set once a close frame was received or a protocol error sent). */
  code = 0;
  reason = '';
  /** The subprotocol, when past the interned names. */
  protocol = '';
  /** A stateful permessage-deflate codec (context takeover: OWN_CODEC in the tag). */
  codec: PerMessageDeflate | null = null;
  get empty(): boolean {
    return this.data === undefined && this.rx === null && this.frameLeft === 0 && this.code === 0 && this.protocol === '' && this.codec === null;
  }
}

/** The callbacks and limits the shared part reads from a role's options. */
export interface FramingOptions<W> {
  onMessage?(ws: W, data: Buffer, isBinary: boolean): void;
  onPing?(ws: W, data: Uint8Array): void;
  onPong?(ws: W, data: Uint8Array): void;
  onError?(ws: W, err: WsProtocolError): void;
  maxPayload?: number;
  maxFragments?: number;
}

/**
 * Handler-wide state shared by every WebSocket of one handler, and the steps of an upgraded
 * connection's life. A role subclasses it with its handle type `W`, its Extra `X` and its
 * options `O`. Internal.
 */
export abstract class Framing<W, X extends FrameExtra, O extends FramingOptions<W>> {
  /** Extras by connection id (see `FrameExtra`); an entry exists only while it holds something. */
  readonly extras = new IdMap<X>();
  /** WebSockets whose `onClose` has not yet run. */
  count = 0;
  /** The reactor, from `onReactor` (for the shutdown sweep). */
  reactor: Reactor | null = null;
  readonly maxPayload: number;
  /** Subprotocol names selected so far (interned: a connection keeps only an index). */
  readonly protocolNames: string[] = [];
  /** The receivers for connections whose bytes end on a message boundary (RSV1 off, on). */
  idleRx: FrameReceiver;
  idleDeflateRx: FrameReceiver | null = null;
  readonly #dispatch: Dispatch<W>;
  readonly #receiverOptions: FrameReceiverOptions;
  readonly #deflateReceiverOptions: FrameReceiverOptions;
  /** The mask bit of the frames the fast path takes: 0x80 from a client (we serve), 0 from a server. */
  readonly #peerMask: number;
  readonly #closeOptions: ControlFrameOptions | undefined;
  readonly #protocolIndex = new Map<string, number>();

  constructor(
    readonly role: 'server' | 'client',
    readonly opts: O,
    readonly closeTimeout: number,
    readonly pingInterval: number,
  ) {
    this.#dispatch = new Dispatch<W>(this as AnyFraming<W>);
    // The receiver validates maxPayload and maxFragments.
    this.#receiverOptions = { role, maxPayload: opts.maxPayload, maxFragments: opts.maxFragments };
    this.#deflateReceiverOptions = { ...this.#receiverOptions, extensions: { rsv1: true } };
    this.maxPayload = opts.maxPayload ?? RECEIVER_DEFAULTS.maxPayload;
    this.idleRx = this.newReceiver(false);
    const server = role === 'server';
    this.#peerMask = server ? 0x80 : 0;
    this.#closeOptions = server ? undefined : { mask: true };
  }

  /** A handle for `conn`. */
  abstract socket(conn: Connection): W;
  /** A new, empty Extra. */
  protected abstract newExtra(): X;
  /** Stateless codecs shared by every connection that agreed the same windows (a tag keeps 1 + index). */
  readonly codecList: PerMessageDeflate[] = [];
  readonly #codecIndex = new Map<string, number>();

  /**
   * The codec bits of the tag for agreed `params` (`d`: the role's resolved options). Without
   * context takeover the connection shares a stateless codec; with it, its own codec goes to
   * `extra()` (the history window kept as a preset dictionary).
   */
  protected deflateCodecBits(params: DeflateParams, d: ResolvedDeflateOptions, extra: () => X): number {
    if (!params.serverNoContextTakeover || !params.clientNoContextTakeover) {
      extra().codec = new PerMessageDeflate({ role: this.role, params, level: d.level, memLevel: d.memLevel });
      return OWN_CODEC << CODEC_SHIFT;
    }
    const key = `${params.serverMaxWindowBits},${params.clientMaxWindowBits}`;
    let i = this.#codecIndex.get(key);
    if (i === undefined) {
      i = this.codecList.length;
      this.codecList.push(new PerMessageDeflate({ role: this.role, params, level: d.level, memLevel: d.memLevel }));
      this.#codecIndex.set(key, i);
    }
    return (i + 1) << CODEC_SHIFT;
  }

  /** The connection's permessage-deflate codec, or null. */
  codec(conn: Connection, tag: number): PerMessageDeflate | null {
    const c = (tag >>> CODEC_SHIFT) & 0xff;
    if (c === 0) return null;
    return c === OWN_CODEC ? this.extras.get(conn.id)!.codec : this.codecList[c - 1]!;
  }

  newReceiver(deflate: boolean): FrameReceiver {
    return new FrameReceiver(this.#dispatch, deflate ? this.#deflateReceiverOptions : this.#receiverOptions);
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

  /** The tag bits for subprotocol `name`, or 0 with the name kept in `extra()` past MAX_INTERNED names. */
  protocolBits(name: string, extra: () => X): number {
    let i = this.#protocolIndex.get(name);
    if (i === undefined) {
      if (this.protocolNames.length >= MAX_INTERNED) {
        extra().protocol = name;
        return 0;
      }
      i = this.protocolNames.length;
      this.protocolNames.push(name);
      this.#protocolIndex.set(name, i);
    }
    return (i + 1) << PROTOCOL_SHIFT;
  }

  /** The connection's Extra, created (and flagged in its tag) when missing. */
  extra(conn: Connection): X {
    let x = this.extras.get(conn.id);
    if (x === undefined) {
      x = this.newExtra();
      this.extras.set(conn.id, x);
      conn.tag = conn.tag | EXTRA;
    }
    return x;
  }

  /** Drop `x` once it holds nothing. */
  trim(conn: Connection, x: X): void {
    if (!x.empty) return;
    this.extras.delete(conn.id);
    conn.tag = conn.tag & ~EXTRA;
  }

  /** The application's value for `conn` (`ws.data`). */
  data(conn: Connection): unknown {
    return (conn.tag & EXTRA) !== 0 ? this.extras.get(conn.id)?.data : undefined;
  }

  /** Set `ws.data`; the caller checked that the WebSocket may still hold it. */
  setData(conn: Connection, value: unknown): void {
    if (value === undefined && (conn.tag & EXTRA) === 0) return;
    const x = this.extra(conn);
    x.data = value;
    this.trim(conn, x);
  }

  /** The subprotocol selected in the handshake, or ''. */
  protocol(conn: Connection): string {
    const tag = conn.tag;
    const p = (tag >>> PROTOCOL_SHIFT) & 0xff;
    if (p !== 0) return this.protocolNames[p - 1];
    return (tag & EXTRA) !== 0 ? (this.extras.get(conn.id)?.protocol ?? '') : '';
  }

  /** Write one final frame as the role sends it: unmasked by a server, masked by a client. */
  writeFrame(conn: Connection, opcode: number, data: Uint8Array | string): boolean {
    return this.#peerMask !== 0 ? writeFrame(conn, opcode, data) : writeMaskedFrame(conn, opcode, data);
  }

  /**
   * Frames in `data[start..]` of an upgraded connection; returns the offset up to which bytes
   * were consumed. `ws` is the handle to reuse, if one was made already.
   *
   * Fast path: a whole, unfragmented, uncompressed text or binary frame, masked as the role
   * expects, read at a message boundary, is unmasked (when masked) and delivered here without
   * a receiver. Anything else (control frames, fragments, RSV bits, wrongly masked or oversized
   * frames, reserved opcodes) goes to a FrameReceiver, which applies every rule of RFC 6455.
   */
  receive(conn: Connection, data: Buffer, start: number, ws: W | null): number {
    const end = data.length;
    let tag = conn.tag;
    if ((tag & NO_MORE_INPUT) !== 0) return end;
    if ((tag & AWAIT_PONG) !== 0) conn.tag = tag &= ~AWAIT_PONG;
    let pos = start;
    if ((tag & EXTRA) !== 0) {
      const x = this.extras.get(conn.id)!;
      if (x.frameLeft > 0) {
        const stop = end - pos > x.frameLeft ? pos + x.frameLeft : end;
        x.frameLeft -= stop - pos;
        if (!this.#feed(conn, (ws ??= this.socket(conn)), x.rx!, data, pos, stop)) return end;
        pos = stop;
        if (x.frameLeft > 0) return end;
        this.holding(conn, false);
        tag = conn.tag;
        if ((tag & IN_MESSAGE) === 0) {
          x.rx = null;
          this.trim(conn, x);
        }
      }
    }
    let from = pos;
    let inMessage = (tag & IN_MESSAGE) !== 0;
    let words: Uint32Array | null = null;
    let base = 0;
    let arrayBuffer: ArrayBufferLike | null = null;
    const maxPayload = this.maxPayload;
    const peerMask = this.#peerMask;
    while (end - pos >= 2) {
      const b1 = data[pos + 1];
      // A frame masked against the role's rule is cut like any other; the receiver refuses it (1002).
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
        const x = this.extra(conn);
        x.frameLeft = frameEnd - end;
        this.holding(conn, true);
        this.#feed(conn, (ws ??= this.socket(conn)), (x.rx ??= this.newReceiver(this.codec(conn, tag) !== null)), data, from, end);
        return end;
      }
      if (pos === from && !inMessage && (b0 === 0x82 || b0 === 0x81) && (b1 & 0x80) === peerMask && len <= maxPayload) {
        const payloadStart = pos + head;
        if (arrayBuffer === null) {
          base = offsetOf(data);
          arrayBuffer = areaOf(data);
        }
        if (peerMask !== 0 && len !== 0) {
          unmaskWhole(data, base, (words ??= wordView(arrayBuffer)), payloadStart, frameEnd, readUint32BE(data, payloadStart - 4));
        }
        const payload = new PayloadView(arrayBuffer as ArrayBuffer, base + payloadStart, len) as Buffer;
        pos = from = frameEnd;
        ws ??= this.socket(conn);
        if (b0 === 0x81 && !isValidUtf8(payload)) {
          this.fail(conn, ws, new WsProtocolError('ERR_C1M_WS_INVALID_UTF8', 'text message is not valid UTF-8'));
          return end;
        }
        const onMessage = this.opts.onMessage;
        if (onMessage !== undefined) {
          onMessage.call(this.opts, ws, payload, b0 === 0x82);
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
    const deflate = ((tag >>> CODEC_SHIFT) & 0xff) !== 0;
    let x = (tag & EXTRA) !== 0 ? this.extras.get(conn.id)! : undefined;
    let rx = x?.rx ?? null;
    if (rx === null) {
      if (inMessage) {
        x ??= this.extra(conn);
        rx = x.rx = this.newReceiver(deflate);
      } else {
        rx = this.idle(deflate);
      }
    }
    if (!this.#feed(conn, (ws ??= this.socket(conn)), rx, data, from, pos)) return end;
    if (!inMessage && x !== undefined && x.rx !== null) {
      x.rx = null;
      this.trim(conn, x);
    }
    return pos;
  }

  /** Parse whole frames (or the rest of the input) with `rx`. False: read no further. */
  #feed(conn: Connection, ws: W, rx: FrameReceiver, data: Buffer, from: number, to: number): boolean {
    const dispatch = this.#dispatch;
    const prevWs = dispatch.ws;
    const prevConn = dispatch.conn;
    dispatch.ws = ws;
    dispatch.conn = conn;
    try {
      rx.execute(from === 0 && to === data.length ? data : data.subarray(from, to));
    } catch (err) {
      this.retire(rx);
      this.dropReceiver(conn);
      if (!(err instanceof WsProtocolError)) {
        // A callback threw: the engine resets the connection; read nothing more of it.
        conn.tag = conn.tag | GONE;
        throw err;
      }
      this.fail(conn, ws, err);
      return false;
    } finally {
      dispatch.ws = prevWs;
      dispatch.conn = prevConn;
    }
    if (rx.state !== 'open') {
      // A close frame: the receiver ignores everything after it.
      this.retire(rx);
      this.dropReceiver(conn);
      return false;
    }
    return (conn.tag & NO_MORE_INPUT) === 0;
  }

  /**
   * The connection's bytes stop (`held`) or resume ending on a frame boundary outside the
   * engine: a frame is being streamed into its receiver. A role whose engine absorbs bytes
   * that look like a whole frame (the server's native heartbeat) turns that off meanwhile.
   */
  holding(_conn: Connection, _held: boolean): void {}

  /** Forget a connection's own receiver and streamed frame (its Extra stays if it holds more). */
  dropReceiver(conn: Connection): void {
    if ((conn.tag & EXTRA) === 0) return;
    const x = this.extras.get(conn.id);
    if (x === undefined) return;
    x.rx = null;
    x.frameLeft = 0;
    this.trim(conn, x);
  }

  /** The peer broke the protocol: our close frame with its code, then close TCP (RFC 6455 7.1.7). */
  fail(conn: Connection, ws: W, err: WsProtocolError): void {
    const tag = conn.tag;
    if ((tag & NO_MORE_INPUT) !== 0) return;
    const x = this.extra(conn);
    x.code = err.closeCode;
    x.reason = '';
    conn.tag = conn.tag | FAILED | CLOSE_SENT;
    if ((tag & CLOSE_SENT) === 0) conn.write(encodeClose(err.closeCode, '', this.#closeOptions));
    conn.close();
    this.opts.onError?.(ws, err);
  }

  /**
   * The peer's close frame: echo its code and reason (RFC 6455 5.5.1), then a server closes TCP
   * and a client waits up to `closeTimeout` for the server to close it first (7.1.1).
   */
  peerClosed(conn: Connection, code: number | undefined, reason: string): void {
    const tag = conn.tag;
    if ((tag & NO_MORE_INPUT) !== 0) return;
    const x = this.extra(conn);
    x.code = code ?? CODE_NO_STATUS;
    x.reason = reason;
    conn.tag = conn.tag | CLOSE_RECEIVED | CLOSE_SENT;
    if ((tag & CLOSE_SENT) === 0) {
      conn.write(code === undefined ? encodeClose(undefined, '', this.#closeOptions) : encodeClose(code, reason, this.#closeOptions));
    }
    if (this.role === 'server') conn.close();
    else conn.setTimeout(this.closeTimeout);
  }

  /**
   * Start the close handshake on an open WebSocket: our close frame, then up to `closeTimeout`
   * for the peer's. Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` (before any change) for a code
   * that may not be sent or a reason over 123 UTF-8 bytes.
   */
  startClose(conn: Connection, code: number | undefined, reason: string): void {
    const frame = encodeClose(code, reason, this.#closeOptions);
    conn.tag = conn.tag | CLOSE_SENT;
    conn.write(frame);
    conn.setTimeout(this.closeTimeout);
  }

  /** Close the connection at once, without a close handshake (`onClose` reports 1006). */
  abort(conn: Connection): void {
    conn.tag = conn.tag | GONE;
    this.dropReceiver(conn);
    conn.destroy();
  }

  /**
   * The engine's idle timeout fired on an upgraded connection: the close handshake did not
   * finish or the heartbeat went unanswered (terminate), a heartbeat is due (ping), or an idle
   * timeout of the engine's or the application's expired (close with 1001).
   */
  timedOut(conn: Connection): void {
    const tag = conn.tag;
    if ((tag & GONE) !== 0) return;
    if ((tag & NOT_OPEN) !== 0 || (tag & AWAIT_PONG) !== 0) {
      this.abort(conn);
      return;
    }
    const interval = this.pingInterval;
    if (interval > 0) {
      conn.tag = tag | AWAIT_PONG;
      this.writeFrame(conn, Opcode.Ping, '');
      conn.setTimeout(interval);
      return;
    }
    this.startClose(conn, CODE_GOING_AWAY, '');
  }
}

type AnyFraming<W> = Framing<W, FrameExtra, FramingOptions<W>>;

/**
 * Routes a receiver's events to the WebSocket whose bytes it is parsing (`ws`, on `conn`):
 * receivers are shared, and this keeps one handler object per Framing instead of a closure
 * per socket.
 */
class Dispatch<W> implements FrameHandler {
  ws: W | null = null;
  conn: Connection | null = null;
  readonly #s: AnyFraming<W>;
  constructor(s: AnyFraming<W>) {
    this.#s = s;
  }
  onMessage(payload: Uint8Array, isBinary: boolean): void {
    if ((this.conn!.tag & NO_MORE_INPUT) === 0) this.#s.opts.onMessage?.(this.ws!, asBuffer(payload), isBinary);
  }
  onCompressedMessage(payload: Uint8Array, isBinary: boolean): void {
    const s = this.#s;
    const conn = this.conn!;
    const tag = conn.tag;
    if ((tag & NO_MORE_INPUT) !== 0) return;
    // Throws WsProtocolError (1007, 1009): the feed fails the connection with it.
    const data = s.codec(conn, tag)!.decompress(payload, s.maxPayload);
    if (!isBinary && !isValidUtf8(data)) throw new WsProtocolError('ERR_C1M_WS_INVALID_UTF8', 'text message is not valid UTF-8');
    s.opts.onMessage?.(this.ws!, data, isBinary);
  }
  onPing(payload: Uint8Array): void {
    const s = this.#s;
    const conn = this.conn!;
    const tag = conn.tag;
    if ((tag & NO_MORE_INPUT) !== 0) return;
    if ((tag & CLOSE_SENT) === 0) s.writeFrame(conn, Opcode.Pong, payload);
    s.opts.onPing?.(this.ws!, payload);
  }
  onPong(payload: Uint8Array): void {
    if ((this.conn!.tag & NO_MORE_INPUT) === 0) this.#s.opts.onPong?.(this.ws!, payload);
  }
  onClose(code: number | undefined, reason: string): void {
    this.#s.peerClosed(this.conn!, code, reason);
  }
}
