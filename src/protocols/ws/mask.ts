/**
 * Masking (RFC 6455 5.3): XOR payload bytes with a repeating 4-byte key.
 *
 * Keys travel as one unsigned 32-bit number holding the key bytes in wire order (first byte in
 * the top bits), so receivers keep them in a number field instead of a buffer per connection.
 * `phase` is the key byte that applies to the first byte given: a frame's payload may arrive
 * in pieces, and piece n starts at phase (bytes before it) & 3.
 *
 * Hot path: runs of at least `WORD_MIN` bytes are XORed a 32-bit word at a time over a
 * Uint32Array view of the whole underlying ArrayBuffer; the view of the last buffer seen is
 * cached, so the engine's shared receive buffer costs no allocation per frame.
 */
import { endianness } from 'node:os';

const LITTLE_ENDIAN = endianness() === 'LE';
const WORD_MIN = 32;

let cachedBuffer: ArrayBufferLike | undefined;
let cachedWords: Uint32Array = new Uint32Array(0);

function wordsOf(buffer: ArrayBufferLike, endWord: number): Uint32Array {
  if (buffer !== cachedBuffer || cachedWords.length < endWord) {
    cachedBuffer = buffer;
    cachedWords = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  }
  return cachedWords;
}

/** The big-endian uint32 at `bytes[offset]`; for 4 key bytes, their key number. */
export function readUint32BE(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

/**
 * XOR `buf[start, end)` in place with `key`, starting at key byte `phase` (0-3).
 * Returns the phase for the byte after `end`.
 */
export function maskInPlace(buf: Uint8Array, start: number, end: number, key: number, phase: number): number {
  const next = (phase + end - start) & 3;
  // Rotate so the key byte for buf[start] sits in the top bits.
  let k = phase === 0 ? key : ((key << (phase * 8)) | (key >>> (32 - phase * 8))) >>> 0;
  let i = start;
  if (end - i >= WORD_MIN) {
    // Bytes up to a 4-byte boundary of the underlying memory, one at a time.
    while (((buf.byteOffset + i) & 3) !== 0) {
      buf[i++] ^= k >>> 24;
      k = ((k << 8) | (k >>> 24)) >>> 0;
    }
    const first = (buf.byteOffset + i) >>> 2;
    const last = (buf.byteOffset + end) >>> 2;
    const words = wordsOf(buf.buffer, last);
    const w = LITTLE_ENDIAN
      ? ((k & 0xff) << 24) | ((k & 0xff00) << 8) | ((k >>> 8) & 0xff00) | (k >>> 24)
      : k | 0;
    for (let j = first; j < last; j++) words[j] ^= w;
    i += (last - first) << 2;
  }
  const m0 = k >>> 24;
  const m1 = (k >>> 16) & 0xff;
  const m2 = (k >>> 8) & 0xff;
  const m3 = k & 0xff;
  for (; i + 3 < end; i += 4) {
    buf[i] ^= m0;
    buf[i + 1] ^= m1;
    buf[i + 2] ^= m2;
    buf[i + 3] ^= m3;
  }
  if (i < end) buf[i++] ^= m0;
  if (i < end) buf[i++] ^= m1;
  if (i < end) buf[i] ^= m2;
  return next;
}

/**
 * Copy `src[start, end)` to `dst[offset...]`, XORed with `key` from key byte `phase`.
 * Returns the phase for the byte after `end`.
 */
export function copyMasked(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  offset: number,
  key: number,
  phase: number,
): number {
  const n = end - start;
  if (n >= WORD_MIN) {
    // memcpy, then word-wise XOR in place: faster than a fused byte loop.
    dst.set(src.subarray(start, end), offset);
    return maskInPlace(dst, offset, offset + n, key, phase);
  }
  let k = phase === 0 ? key : ((key << (phase * 8)) | (key >>> (32 - phase * 8))) >>> 0;
  for (let i = 0; i < n; i++) {
    dst[offset + i] = src[start + i] ^ (k >>> 24);
    k = ((k << 8) | (k >>> 24)) >>> 0;
  }
  return (phase + n) & 3;
}

/**
 * A Uint32Array over all of `buffer` (cached for the last buffer asked for): pass it with the
 * byte offset of a view into `buffer` to `unmaskWhole`, so that a loop over many frames of one
 * read reads the view's `buffer` and `byteOffset` once instead of once per frame.
 */
export function wordView(buffer: ArrayBufferLike): Uint32Array {
  return wordsOf(buffer, 0);
}

/**
 * Unmask a whole payload `buf[start, end)` in place with `key` (phase 0). `byteOffset` is
 * `buf.byteOffset` and `words` is `wordView(buf.buffer)`.
 */
export function unmaskWhole(buf: Uint8Array, byteOffset: number, words: Uint32Array, start: number, end: number, key: number): void {
  let k = key;
  let i = start;
  if (end - i >= 16) {
    while (((byteOffset + i) & 3) !== 0) {
      buf[i++] ^= k >>> 24;
      k = ((k << 8) | (k >>> 24)) >>> 0;
    }
    let j = (byteOffset + i) >>> 2;
    const last = (byteOffset + end) >>> 2;
    const w = LITTLE_ENDIAN
      ? ((k & 0xff) << 24) | ((k & 0xff00) << 8) | ((k >>> 8) & 0xff00) | (k >>> 24)
      : k | 0;
    // Four words per iteration: a loop iteration also costs an interrupt check in V8's code.
    for (; j + 4 <= last; j += 4) {
      words[j] ^= w;
      words[j + 1] ^= w;
      words[j + 2] ^= w;
      words[j + 3] ^= w;
    }
    for (; j < last; j++) words[j] ^= w;
    i = (j << 2) - byteOffset;
  }
  for (; i < end; i++) {
    buf[i] ^= k >>> 24;
    k = ((k << 8) | (k >>> 24)) >>> 0;
  }
}
