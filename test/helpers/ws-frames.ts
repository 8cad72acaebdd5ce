/**
 * Byte-level WebSocket frames for tests: build one frame (masked like a client's by default),
 * and split a server's output into frames. For scripted conversations use ws-raw.ts.
 */

/** One frame read back from the wire. */
export interface Frame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  payload: Buffer;
}

const KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

/** A frame of `opcode` carrying `data`; `rsv` is or-ed into the first byte; masked unless `mask: false`. */
export function frame(opcode: number, data: Uint8Array | string, opts: { fin?: boolean; mask?: boolean; rsv?: number } = {}): Buffer {
  const body = Buffer.from(typeof data === 'string' ? Buffer.from(data) : data);
  const masked = opts.mask ?? true;
  const len = body.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (masked ? 4 : 0));
  head[0] = ((opts.fin ?? true) ? 0x80 : 0) | (opts.rsv ?? 0) | opcode;
  head[1] = (masked ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (masked) {
    KEY.copy(head, 2 + ext);
    for (let i = 0; i < len; i++) body[i] ^= KEY[i & 3];
  }
  return Buffer.concat([head, body]);
}

/** The whole unmasked frames at the start of `buf` (a trailing partial frame is ignored). */
export function parseFrames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  let p = 0;
  while (buf.length - p >= 2) {
    let len = buf[p + 1] & 0x7f;
    let h = 2;
    if (len === 126) {
      len = buf.readUInt16BE(p + 2);
      h = 4;
    } else if (len === 127) {
      len = Number(buf.readBigUInt64BE(p + 2));
      h = 10;
    }
    if (buf.length - p < h + len) break;
    out.push({ fin: (buf[p] & 0x80) !== 0, rsv1: (buf[p] & 0x40) !== 0, opcode: buf[p] & 0x0f, payload: buf.subarray(p + h, p + h + len) });
    p += h + len;
  }
  return out;
}
