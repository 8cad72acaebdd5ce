/**
 * The frame receiver: RFC 6455 frames in, messages and control frames out, no socket.
 *
 * Model: an explicit state machine (HEADER -> PAYLOAD -> HEADER ...) fed with whatever bytes
 * the engine read. `execute` consumes every byte it is given; nothing is re-presented. What
 * must outlive one call is kept in exactly three places:
 *   - a header buffer (at most 14 bytes) when a frame header is split across reads;
 *   - the message assembly buffer, for a message fragmented or split across reads: payload
 *     is unmasked straight into it at its final offset, sized from the frame header, and
 *     grown geometrically only across fragments, so chunks are never concatenated;
 *   - a 125-byte control buffer, for a control frame split across reads.
 *
 * Hot path: a whole unfragmented frame inside one read (the common case) is unmasked in place
 * in the caller's bytes and delivered as a view: no copy, and no allocation but the view.
 *
 * Invariants:
 *   - every check runs in byte order, on the earliest bytes that decide it, so the events and
 *     the error are the same however the input is split;
 *   - limits (`maxPayload`, `maxFragments`) are checked from the frame header, before any of
 *     the frame's payload is stored;
 *   - text and close reasons are validated as their bytes arrive, across reads and fragments;
 *   - after a close frame the receiver is `'closed'`, after an error `'failed'`; both drop
 *     their buffers and ignore further bytes.
 */
import { checkOption } from '../../core/index.js';
import { MAX_CONTROL_PAYLOAD, Opcode, isValidCloseCode } from './constants.js';
import { WsProtocolError } from './errors.js';
import { copyMasked, maskInPlace, readUint32BE } from './mask.js';
import { UTF8_ACCEPT, UTF8_REJECT, validateUtf8 } from './utf8.js';

/**
 * What a receiver reports. Called as methods of the object given to the constructor.
 *
 * Lifetime: every `payload` is a view valid only until the callback returns; it may alias the
 * bytes given to `execute` or a buffer the receiver reuses. Copy what you keep.
 *
 * Errors: an exception thrown by a callback propagates out of `execute`, and the receiver is
 * `'failed'` from then on (the rest of that read was not parsed).
 */
export interface FrameHandler {
  /** A complete text (`isBinary` false, valid UTF-8) or binary message. */
  onMessage(payload: Uint8Array, isBinary: boolean): void;
  /**
   * A complete message whose first frame had RSV1 set (only when `extensions.rsv1` is on):
   * the still-compressed bytes, for the negotiated extension (permessage-deflate) to inflate.
   * Not UTF-8 checked: validate text after inflating. `maxPayload` bounded the compressed size.
   */
  onCompressedMessage?(payload: Uint8Array, isBinary: boolean): void;
  /** A ping; the application (or server) should answer with a pong carrying `payload`. */
  onPing?(payload: Uint8Array): void;
  /** A pong. */
  onPong?(payload: Uint8Array): void;
  /**
   * A valid close frame. `code` is undefined when the frame had no payload; `reason` is the
   * decoded UTF-8 reason ('' when none). The receiver is `'closed'` afterwards.
   */
  onClose?(code: number | undefined, reason: string): void;
}

/** Options of a `FrameReceiver`. */
export interface FrameReceiverOptions {
  /**
   * Which end we are. `'server'` requires every frame to be masked, `'client'` requires every
   * frame to be unmasked (RFC 6455 5.1). Required.
   */
  role: 'server' | 'client';
  /** Largest message, in bytes, summed over its fragments. Default 1 MiB. At most 2^31 - 1. */
  maxPayload?: number;
  /**
   * Most frames in one message. Default 65536. A frame costs the peer at least 2 wire bytes
   * (6 when masked) and us no memory, so this is a policy bound, not a memory one: it ends a
   * message of endless empty fragments, and allows e.g. 4 MiB in 64-byte fragments.
   */
  maxFragments?: number;
  /** Reserved bits given meaning by negotiated extensions. */
  extensions?: {
    /**
     * RSV1 marks a compressed message (permessage-deflate, RFC 7692): allowed on the first
     * frame of a data message, delivered to `onCompressedMessage` (then required). Default false.
     */
    rsv1?: boolean;
  };
}

/** Defaults of `FrameReceiverOptions`. */
export const RECEIVER_DEFAULTS = {
  maxPayload: 1024 * 1024,
  maxFragments: 65536,
} as const;

const HEADER = 0;
const PAYLOAD = 1;
const CLOSED = 2;
const FAILED = 3;

const decoder = new TextDecoder();

/**
 * Parses RFC 6455 frames from a byte stream, one instance per connection.
 *
 * Memory: between messages no message buffer is held. The 14-byte header buffer and the
 * 125-byte control buffer are allocated the first time a header or a control frame is split
 * across reads, then kept; everything is dropped on close or failure.
 * Threading: use an instance on one thread only, and do not call `execute` from its own
 * callbacks.
 */
export class FrameReceiver {
  readonly #handler: FrameHandler;
  readonly #server: boolean;
  readonly #maxPayload: number;
  readonly #maxFragments: number;
  readonly #rsv1: boolean;

  #state = HEADER;
  // Header split across reads.
  #hdr: Uint8Array | null = null;
  #hdrLen = 0;
  #hdrNeed = 0;
  // Current frame.
  #fin = false;
  #opcode = 0;
  #len7 = 0;
  #frameLen = 0;
  #remaining = 0;
  #mask = 0;
  #maskPhase = 0;
  // Current data message (#msgOpcode 0: none in progress).
  #msgOpcode = 0;
  #compressed = false;
  #msgLen = 0;
  #fragments = 0;
  #asm: Buffer | null = null;
  #utf8 = UTF8_ACCEPT;
  // Control frame split across reads.
  #ctl: Uint8Array | null = null;
  #ctlLen = 0;
  #ctlUtf8 = UTF8_ACCEPT;

  /**
   * Errors: throws `ERR_C1M_INVALID_OPTION` for a bad option, or when `extensions.rsv1` is on
   * and the handler has no `onCompressedMessage`.
   */
  constructor(handler: FrameHandler, options: FrameReceiverOptions) {
    checkOption(typeof handler?.onMessage === 'function', 'handler.onMessage', 'a function', handler?.onMessage);
    const role = options?.role;
    checkOption(role === 'server' || role === 'client', 'role', "'server' or 'client'", role);
    const maxPayload = options.maxPayload ?? RECEIVER_DEFAULTS.maxPayload;
    checkOption(Number.isInteger(maxPayload) && maxPayload >= 0 && maxPayload <= 0x7fffffff, 'maxPayload', 'an integer from 0 to 2147483647', maxPayload);
    const maxFragments = options.maxFragments ?? RECEIVER_DEFAULTS.maxFragments;
    checkOption(Number.isInteger(maxFragments) && maxFragments >= 1, 'maxFragments', 'a positive integer', maxFragments);
    const rsv1 = options.extensions?.rsv1 ?? false;
    checkOption(typeof rsv1 === 'boolean', 'extensions.rsv1', 'a boolean', rsv1);
    checkOption(!rsv1 || typeof handler.onCompressedMessage === 'function', 'extensions.rsv1', 'false unless the handler has onCompressedMessage', rsv1);
    this.#handler = handler;
    this.#server = role === 'server';
    this.#maxPayload = maxPayload;
    this.#maxFragments = maxFragments;
    this.#rsv1 = rsv1;
  }

  /** `'open'`, `'closed'` (a close frame arrived) or `'failed'` (an error was thrown). */
  get state(): 'open' | 'closed' | 'failed' {
    return this.#state === CLOSED ? 'closed' : this.#state === FAILED ? 'failed' : 'open';
  }

  /**
   * Parse `data`, consuming all of it, and run the handler for each complete message and
   * control frame. Once the receiver is `'closed'` or `'failed'` the bytes are ignored.
   *
   * Mutation: masked payload is unmasked in place in `data`; pass a copy to keep the original.
   * Lifetime: `data` is not kept after the call.
   * Errors: throws `WsProtocolError` when the peer breaks the protocol (send a close frame
   * with its `closeCode`, then close); rethrows what a handler callback throws. Either way
   * the receiver is `'failed'` afterwards.
   */
  execute(data: Uint8Array): void {
    if (this.#state >= CLOSED) return;
    try {
      const end = data.length;
      let pos = 0;
      while (pos < end && this.#state < CLOSED) {
        pos = this.#state === HEADER ? this.#header(data, pos, end) : this.#payload(data, pos, end);
      }
    } catch (err) {
      this.#state = FAILED;
      this.#release();
      throw err;
    }
  }

  #header(data: Uint8Array, pos: number, end: number): number {
    if (this.#hdrLen === 0 && end - pos >= 2) {
      this.#byte0(data[pos]);
      const need = this.#byte1(data[pos + 1]);
      if (end - pos >= need) {
        this.#parseHeader(data, pos);
        return this.#startPayload(data, pos + need, end);
      }
      // Header split across reads: keep its first bytes (already checked).
      const hdr = (this.#hdr ??= new Uint8Array(14));
      const n = end - pos;
      for (let i = 0; i < n; i++) hdr[i] = data[pos + i];
      this.#hdrLen = n;
      this.#hdrNeed = need;
      return end;
    }
    const hdr = (this.#hdr ??= new Uint8Array(14));
    while (pos < end) {
      const b = data[pos++];
      const n = ++this.#hdrLen;
      hdr[n - 1] = b;
      if (n === 1) this.#byte0(b);
      else if (n === 2) this.#hdrNeed = this.#byte1(b);
      if (n >= 2 && n === this.#hdrNeed) {
        this.#hdrLen = 0;
        this.#parseHeader(hdr, 0);
        return this.#startPayload(data, pos, end);
      }
    }
    return pos;
  }

  /** Checks decided by the first header byte: FIN, RSV, opcode, fragmentation state. */
  #byte0(b0: number): void {
    const fin = (b0 & 0x80) !== 0;
    const rsv = b0 & 0x70;
    const opcode = b0 & 0x0f;
    if ((rsv & 0x30) !== 0) fail('ERR_C1M_WS_RESERVED_BITS', `RSV2/RSV3 set (0x${rsv.toString(16)}) with no extension defining them`);
    if (opcode >= Opcode.Close) {
      if (opcode > Opcode.Pong) fail('ERR_C1M_WS_INVALID_OPCODE', `reserved control opcode 0x${opcode.toString(16)}`);
      if (rsv !== 0) fail('ERR_C1M_WS_RESERVED_BITS', 'RSV1 set on a control frame');
      if (!fin) fail('ERR_C1M_WS_FRAGMENTED_CONTROL_FRAME', 'control frame without FIN');
    } else if (opcode === Opcode.Continuation) {
      if (rsv !== 0) fail('ERR_C1M_WS_RESERVED_BITS', 'RSV1 set on a continuation frame');
      if (this.#msgOpcode === 0) fail('ERR_C1M_WS_UNEXPECTED_CONTINUATION', 'continuation frame with no message in progress');
      if (++this.#fragments > this.#maxFragments) fail('ERR_C1M_WS_TOO_MANY_FRAGMENTS', `message has more than ${this.#maxFragments} frames`);
    } else if (opcode <= Opcode.Binary) {
      if (rsv !== 0 && !this.#rsv1) fail('ERR_C1M_WS_RESERVED_BITS', 'RSV1 set with no extension negotiated');
      if (this.#msgOpcode !== 0) fail('ERR_C1M_WS_EXPECTED_CONTINUATION', 'new data frame inside a fragmented message');
      this.#msgOpcode = opcode;
      this.#compressed = rsv !== 0;
      this.#fragments = 1;
    } else {
      fail('ERR_C1M_WS_INVALID_OPCODE', `reserved data opcode 0x${opcode.toString(16)}`);
    }
    this.#fin = fin;
    this.#opcode = opcode;
  }

  /** Checks decided by the second header byte: MASK, 7-bit length. Returns the header size. */
  #byte1(b1: number): number {
    const masked = (b1 & 0x80) !== 0;
    if (masked !== this.#server) {
      fail(this.#server ? 'ERR_C1M_WS_MASK_REQUIRED' : 'ERR_C1M_WS_UNEXPECTED_MASK', this.#server ? 'client frame not masked' : 'server frame masked');
    }
    const len7 = b1 & 0x7f;
    if (this.#opcode >= Opcode.Close) {
      if (len7 > MAX_CONTROL_PAYLOAD) fail('ERR_C1M_WS_CONTROL_FRAME_TOO_LONG', 'control frame payload over 125 bytes');
      if (len7 === 1 && this.#opcode === Opcode.Close) fail('ERR_C1M_WS_INVALID_CLOSE_PAYLOAD', 'close frame payload of 1 byte');
    } else if (len7 < 126) {
      this.#checkSize(len7);
    }
    this.#len7 = len7;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
  }

  #checkSize(len: number): void {
    if (len > this.#maxPayload - this.#msgLen) {
      fail('ERR_C1M_WS_MESSAGE_TOO_BIG', `message exceeds maxPayload (${this.#maxPayload} bytes)`);
    }
  }

  /** The rest of a complete header at `buf[off]`: extended length and masking key. */
  #parseHeader(buf: Uint8Array, off: number): void {
    let p = off + 2;
    let len = this.#len7;
    if (len === 126) {
      len = (buf[p] << 8) | buf[p + 1];
      p += 2;
      this.#checkSize(len);
    } else if (len === 127) {
      const hi = readUint32BE(buf, p);
      if (hi >= 0x80000000) fail('ERR_C1M_WS_INVALID_LENGTH', '64-bit payload length with the most significant bit set');
      if (hi !== 0) this.#checkSize(Infinity);
      len = readUint32BE(buf, p + 4);
      p += 8;
      this.#checkSize(len);
    }
    if (this.#server) this.#mask = readUint32BE(buf, p);
    this.#maskPhase = 0;
    this.#frameLen = len;
    this.#remaining = len;
  }

  #startPayload(data: Uint8Array, pos: number, end: number): number {
    this.#state = PAYLOAD;
    // An empty frame completes now, not on the next read.
    return this.#remaining === 0 ? this.#payload(data, pos, end) : pos;
  }

  #payload(data: Uint8Array, pos: number, end: number): number {
    const rem = this.#remaining;
    const n = end - pos < rem ? end - pos : rem;
    const stop = pos + n;
    if (this.#opcode >= Opcode.Close) return this.#control(data, pos, stop);

    if (n === rem && rem === this.#frameLen && this.#fin && this.#opcode !== Opcode.Continuation) {
      // Whole unfragmented message in this read: unmask in place, deliver a view.
      if (this.#server && n !== 0) maskInPlace(data, pos, stop, this.#mask, 0);
      const payload = data.subarray(pos, stop);
      const isBinary = this.#opcode === Opcode.Binary;
      const compressed = this.#compressed;
      if (!isBinary && !compressed && validateUtf8(UTF8_ACCEPT, payload) !== UTF8_ACCEPT) invalidUtf8('text message');
      this.#state = HEADER;
      this.#remaining = 0;
      this.#msgOpcode = 0;
      this.#compressed = false;
      if (compressed) this.#handler.onCompressedMessage!(payload, isBinary);
      else this.#handler.onMessage(payload, isBinary);
      return stop;
    }

    let asm = this.#asm;
    const offset = this.#msgLen;
    if (asm === null || asm.length < offset + rem) asm = this.#grow(offset + rem);
    if (n !== 0) {
      if (this.#server) this.#maskPhase = copyMasked(data, pos, stop, asm, offset, this.#mask, this.#maskPhase);
      else asm.set(data.subarray(pos, stop), offset);
      if (this.#msgOpcode === Opcode.Text && !this.#compressed) {
        this.#utf8 = validateUtf8(this.#utf8, asm, offset, offset + n);
        if (this.#utf8 === UTF8_REJECT) invalidUtf8('text message');
      }
      this.#msgLen = offset + n;
      this.#remaining = rem - n;
    }
    if (n === rem) {
      this.#state = HEADER;
      if (this.#fin) this.#deliver(asm);
    }
    return stop;
  }

  /** Make the assembly buffer hold `need` bytes, keeping what it has. */
  #grow(need: number): Buffer {
    const old = this.#asm;
    // A final frame knows the exact size; fragments grow geometrically, up to maxPayload.
    const size = this.#fin || old === null ? need : Math.max(need, Math.min(old.length * 2, this.#maxPayload));
    const asm = Buffer.allocUnsafe(size);
    if (old !== null && this.#msgLen !== 0) asm.set(old.subarray(0, this.#msgLen));
    this.#asm = asm;
    return asm;
  }

  #deliver(asm: Buffer): void {
    const payload = asm.subarray(0, this.#msgLen);
    const isBinary = this.#msgOpcode === Opcode.Binary;
    const compressed = this.#compressed;
    if (!isBinary && !compressed && this.#utf8 !== UTF8_ACCEPT) invalidUtf8('text message');
    // Reset before the callback, so a throwing callback leaves nothing half-done. The buffer
    // is dropped, not reused: idle connections hold no message memory.
    this.#msgOpcode = 0;
    this.#compressed = false;
    this.#msgLen = 0;
    this.#fragments = 0;
    this.#utf8 = UTF8_ACCEPT;
    this.#asm = null;
    if (compressed) this.#handler.onCompressedMessage!(payload, isBinary);
    else this.#handler.onMessage(payload, isBinary);
  }

  #control(data: Uint8Array, pos: number, stop: number): number {
    const n = stop - pos;
    if (this.#ctlLen === 0 && n === this.#remaining) {
      // Whole control frame in this read.
      if (this.#server && n !== 0) maskInPlace(data, pos, stop, this.#mask, 0);
      const payload = data.subarray(pos, stop);
      if (this.#opcode === Opcode.Close) this.#checkClose(payload, 0, n);
      this.#state = HEADER;
      this.#remaining = 0;
      this.#dispatchControl(payload);
      return stop;
    }
    const ctl = (this.#ctl ??= new Uint8Array(MAX_CONTROL_PAYLOAD));
    const offset = this.#ctlLen;
    if (this.#server) this.#maskPhase = copyMasked(data, pos, stop, ctl, offset, this.#mask, this.#maskPhase);
    else ctl.set(data.subarray(pos, stop), offset);
    if (this.#opcode === Opcode.Close) this.#checkClose(ctl, offset, offset + n);
    this.#ctlLen = offset + n;
    this.#remaining -= n;
    if (this.#remaining === 0) {
      this.#state = HEADER;
      this.#ctlLen = 0;
      this.#dispatchControl(ctl.subarray(0, offset + n));
    }
    return stop;
  }

  /** Validate close payload bytes `buf[from, to)`, given `buf[0, from)` already checked. */
  #checkClose(buf: Uint8Array, from: number, to: number): void {
    if (from < 2 && to >= 2) {
      const code = (buf[0] << 8) | buf[1];
      if (!isValidCloseCode(code)) fail('ERR_C1M_WS_INVALID_CLOSE_CODE', `invalid close code ${code}`);
    }
    const start = from > 2 ? from : 2;
    if (to > start) {
      this.#ctlUtf8 = validateUtf8(this.#ctlUtf8, buf, start, to);
      if (this.#ctlUtf8 === UTF8_REJECT) invalidUtf8('close reason');
    }
  }

  #dispatchControl(payload: Uint8Array): void {
    const h = this.#handler;
    if (this.#opcode === Opcode.Ping) {
      h.onPing?.(payload);
    } else if (this.#opcode === Opcode.Pong) {
      h.onPong?.(payload);
    } else {
      if (this.#ctlUtf8 !== UTF8_ACCEPT) invalidUtf8('close reason');
      const code = payload.length >= 2 ? (payload[0] << 8) | payload[1] : undefined;
      const reason = payload.length > 2 ? decoder.decode(payload.subarray(2)) : '';
      this.#state = CLOSED;
      this.#release();
      h.onClose?.(code, reason);
    }
  }

  #release(): void {
    this.#asm = null;
    this.#ctl = null;
    this.#hdr = null;
  }
}

function fail(code: ConstructorParameters<typeof WsProtocolError>[0], message: string): never {
  throw new WsProtocolError(code, message);
}

function invalidUtf8(what: string): never {
  fail('ERR_C1M_WS_INVALID_UTF8', `${what} is not valid UTF-8`);
}
