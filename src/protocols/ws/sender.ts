/**
 * Frame encoders: pure functions from (opcode, payload, options) to bytes, no socket.
 *
 * Three shapes, one header writer underneath:
 *   - `encodeFrame` (and `encodeClose`/`encodePing`/`encodePong`): one Buffer, header and
 *     payload together; the payload is copied (and masked) once.
 *   - `encodeHeader`: the header alone, for `writev([header, payload])` without copying the
 *     payload (servers: unmasked frames).
 *   - `writeFrameHeader`: the header written into caller memory (reserve -> fill -> commit).
 *
 * Random masking keys come 4 bytes at a time from a pool refilled by `randomFillSync`, so a
 * client frame costs no crypto call of its own.
 *
 * Errors: misuse (bad opcode, control payload over 125 bytes, unfinished control frame, RSV1
 * on a control frame, key not 4 bytes, invalid close code) throws `ERR_C1M_WS_INVALID_ARGUMENT`.
 */
import { randomFillSync } from 'node:crypto';
import { MAX_CLOSE_REASON, MAX_CONTROL_PAYLOAD, Opcode, isValidCloseCode } from './constants.js';
import { checkArgument } from './errors.js';
import { maskInPlace, readUint32BE } from './mask.js';

/** How to frame a payload. */
export interface FrameOptions {
  /** Last frame of its message. Default true. Control frames must keep it true. */
  fin?: boolean;
  /** Set RSV1: first frame of a compressed (permessage-deflate) message. Default false. */
  rsv1?: boolean;
  /**
   * Mask the payload; clients must (RFC 6455 5.3). A 4-byte key, or `true` for a random key.
   * Default: unmasked (servers). `encodeHeader`/`writeFrameHeader` take only an explicit key,
   * since the caller masks the payload itself (`maskPayload`).
   */
  mask?: Uint8Array | true;
}

/** Options for the control frame encoders. */
export interface ControlFrameOptions {
  /** As `FrameOptions.mask`. */
  mask?: Uint8Array | true;
}

const POOL_SIZE = 8192;
const maskPool = Buffer.allocUnsafe(POOL_SIZE);
let maskPoolPos = POOL_SIZE;
const EMPTY = new Uint8Array(0);

/** Bytes a frame header takes: 2, plus 2 or 8 for the extended length, plus 4 when masked. */
export function frameHeaderSize(payloadLength: number, masked: boolean): number {
  return 2 + (payloadLength < 126 ? 0 : payloadLength < 65536 ? 2 : 8) + (masked ? 4 : 0);
}

function checkFrame(opcode: number, payloadLength: number, fin: boolean, rsv1: boolean): void {
  checkArgument(
    opcode === Opcode.Continuation || opcode === Opcode.Text || opcode === Opcode.Binary ||
      opcode === Opcode.Close || opcode === Opcode.Ping || opcode === Opcode.Pong,
    `opcode must be 0, 1, 2, 8, 9 or 10, got ${opcode}`,
  );
  checkArgument(Number.isSafeInteger(payloadLength) && payloadLength >= 0, `payload length must be a non-negative integer, got ${payloadLength}`);
  if (opcode >= Opcode.Close) {
    checkArgument(payloadLength <= MAX_CONTROL_PAYLOAD, `control frame payload must be at most 125 bytes, got ${payloadLength}`);
    checkArgument(fin, 'control frames cannot be fragmented (fin must be true)');
    checkArgument(!rsv1, 'control frames cannot set RSV1');
  } else if (opcode === Opcode.Continuation) {
    checkArgument(!rsv1, 'RSV1 belongs on the first frame of a message, not a continuation');
  }
}

function checkKey(key: Uint8Array): void {
  checkArgument(key instanceof Uint8Array && key.length === 4, 'mask key must be a Uint8Array of 4 bytes');
}

/**
 * Write the header bytes; the masking key (if any) is already at its place or is copied from
 * `key`. Returns the offset after the header.
 */
function putHeader(
  target: Uint8Array,
  offset: number,
  opcode: number,
  length: number,
  fin: boolean,
  rsv1: boolean,
  mask: Uint8Array | true | undefined,
): number {
  let p = offset;
  target[p++] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = mask === undefined ? 0 : 0x80;
  if (length < 126) {
    target[p++] = maskBit | length;
  } else if (length < 65536) {
    target[p++] = maskBit | 126;
    target[p++] = length >>> 8;
    target[p++] = length & 0xff;
  } else {
    target[p++] = maskBit | 127;
    const hi = Math.floor(length / 0x100000000);
    const lo = length >>> 0;
    target[p++] = hi >>> 24;
    target[p++] = (hi >>> 16) & 0xff;
    target[p++] = (hi >>> 8) & 0xff;
    target[p++] = hi & 0xff;
    target[p++] = lo >>> 24;
    target[p++] = (lo >>> 16) & 0xff;
    target[p++] = (lo >>> 8) & 0xff;
    target[p++] = lo & 0xff;
  }
  if (mask === true) {
    if (maskPoolPos === POOL_SIZE) {
      randomFillSync(maskPool);
      maskPoolPos = 0;
    }
    target[p++] = maskPool[maskPoolPos++];
    target[p++] = maskPool[maskPoolPos++];
    target[p++] = maskPool[maskPoolPos++];
    target[p++] = maskPool[maskPoolPos++];
  } else if (mask !== undefined) {
    target[p++] = mask[0];
    target[p++] = mask[1];
    target[p++] = mask[2];
    target[p++] = mask[3];
  }
  return p;
}

/**
 * Write a frame header for a payload of `payloadLength` bytes into `target` at `offset`
 * (`frameHeaderSize` bytes must fit). Returns the offset after the header. With `mask` the
 * caller masks the payload with the same key (`maskPayload`).
 */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  opcode: Opcode,
  payloadLength: number,
  options?: FrameOptions,
): number {
  const fin = options?.fin ?? true;
  const rsv1 = options?.rsv1 ?? false;
  const mask = options?.mask;
  checkFrame(opcode, payloadLength, fin, rsv1);
  if (mask === true) checkArgument(false, 'writeFrameHeader needs an explicit mask key (the caller masks the payload)');
  else if (mask !== undefined) checkKey(mask);
  checkArgument(
    Number.isInteger(offset) && offset >= 0 && offset + frameHeaderSize(payloadLength, mask !== undefined) <= target.length,
    'the header does not fit in target at offset',
  );
  return putHeader(target, offset, opcode, payloadLength, fin, rsv1, mask);
}

/**
 * The header of a frame carrying `payloadLength` bytes, as a new Buffer: send it with the
 * payload in one `writev`, no copy. With `mask` (explicit key only) mask the payload with
 * `maskPayload` first.
 */
export function encodeHeader(opcode: Opcode, payloadLength: number, options?: FrameOptions): Buffer {
  const header = Buffer.allocUnsafe(frameHeaderSize(payloadLength, options?.mask !== undefined));
  writeFrameHeader(header, 0, opcode, payloadLength, options);
  return header;
}

/** XOR `payload` in place with a 4-byte `key` (masks and unmasks). */
export function maskPayload(payload: Uint8Array, key: Uint8Array): void {
  checkKey(key);
  maskInPlace(payload, 0, payload.length, readUint32BE(key, 0), 0);
}

/**
 * One frame, header and payload, in a new Buffer. A string payload is written as UTF-8
 * straight into the frame. Lifetime: `payload` is copied; the caller may reuse it at once.
 */
export function encodeFrame(opcode: Opcode, payload: Uint8Array | string, options?: FrameOptions): Buffer {
  const fin = options?.fin ?? true;
  const rsv1 = options?.rsv1 ?? false;
  const mask = options?.mask;
  const isString = typeof payload === 'string';
  const length = isString ? Buffer.byteLength(payload) : payload.length;
  checkFrame(opcode, length, fin, rsv1);
  if (mask !== undefined && mask !== true) checkKey(mask);
  const start = frameHeaderSize(length, mask !== undefined);
  const frame = Buffer.allocUnsafe(start + length);
  putHeader(frame, 0, opcode, length, fin, rsv1, mask);
  if (isString) frame.write(payload, start, length, 'utf8');
  else frame.set(payload, start);
  if (mask !== undefined && length !== 0) maskInPlace(frame, start, start + length, readUint32BE(frame, start - 4), 0);
  return frame;
}

/**
 * A close frame. No `code`: an empty payload. `reason` (default '') needs a `code` and may
 * take at most 123 UTF-8 bytes. `code` must be valid on the wire (`isValidCloseCode`):
 * 1005, 1006 and 1015 are for reporting only.
 */
export function encodeClose(code?: number, reason = '', options?: ControlFrameOptions): Buffer {
  if (code === undefined) {
    checkArgument(reason === '', 'a close reason needs a close code');
    return encodeFrame(Opcode.Close, EMPTY, options);
  }
  checkArgument(Number.isInteger(code) && isValidCloseCode(code), `close code ${code} may not be sent`);
  const reasonLength = Buffer.byteLength(reason);
  checkArgument(reasonLength <= MAX_CLOSE_REASON, `close reason must be at most 123 UTF-8 bytes, got ${reasonLength}`);
  const payload = Buffer.allocUnsafe(2 + reasonLength);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.write(reason, 2, reasonLength, 'utf8');
  return encodeFrame(Opcode.Close, payload, options);
}

/** A ping frame; `payload` (default empty) at most 125 bytes. */
export function encodePing(payload: Uint8Array | string = EMPTY, options?: ControlFrameOptions): Buffer {
  return encodeFrame(Opcode.Ping, payload, options);
}

/** A pong frame; `payload` (default empty) at most 125 bytes, usually the ping's. */
export function encodePong(payload: Uint8Array | string = EMPTY, options?: ControlFrameOptions): Buffer {
  return encodeFrame(Opcode.Pong, payload, options);
}
