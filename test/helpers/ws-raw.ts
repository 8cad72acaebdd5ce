/**
 * A raw-socket WebSocket client for conformance tests. Frames are built byte by byte (any
 * opcode, FIN, RSV bits, mask, payload length), sent whole or split at chosen byte positions
 * with pauses between the chunks; every server frame is parsed and checked strictly, and the
 * close frame (code, reason) and the TCP close (FIN or reset) are observed.
 *
 * Nothing here trusts the server: it records violations (a masked frame, RSV bits without an
 * extension, a reserved opcode, a fragmented or oversized control frame, bytes after the close
 * frame) in `violations` instead of throwing from a socket callback.
 */
import { createHash } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { HOST, deferred, sleep, waitFor, within } from './net.js';

export const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** RSV bits as Autobahn numbers them: 4 is RSV1, 2 is RSV2, 1 is RSV3. */
export type Rsv = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;

/** A client frame, described field by field. */
export interface ClientFrame {
  opcode: number;
  payload?: Uint8Array | string;
  /** Default true. */
  fin?: boolean;
  /** Default 0. */
  rsv?: Rsv;
  /** Default true (a client must mask). */
  mask?: boolean;
  /** The masking key; default: the next of a fixed pseudo-random sequence. */
  key?: Uint8Array;
}

let keySeed = 0x2545f491;
function nextKey(): Buffer {
  keySeed ^= keySeed << 13;
  keySeed ^= keySeed >>> 17;
  keySeed ^= keySeed << 5;
  const key = Buffer.allocUnsafe(4);
  key.writeUInt32BE(keySeed >>> 0);
  return key;
}

export const bytes = (data: Uint8Array | string | undefined): Buffer =>
  data === undefined ? Buffer.alloc(0) : typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);

/** The wire bytes of `f` (the payload is copied, then masked). */
export function encodeFrame(f: ClientFrame): Buffer {
  const body = bytes(f.payload);
  const len = body.length;
  const masked = f.mask ?? true;
  const ext = len < 126 ? 0 : len < 0x10000 ? 2 : 8;
  const out = Buffer.allocUnsafe(2 + ext + (masked ? 4 : 0) + len);
  out[0] = ((f.fin ?? true) ? 0x80 : 0) | ((f.rsv ?? 0) << 4) | (f.opcode & 0x0f);
  out[1] = (masked ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) out.writeUInt16BE(len, 2);
  if (ext === 8) out.writeBigUInt64BE(BigInt(len), 2);
  let p = 2 + ext;
  if (!masked) {
    body.copy(out, p);
    return out;
  }
  const key = f.key ?? nextKey();
  for (let i = 0; i < 4; i++) out[p + i] = key[i];
  p += 4;
  body.copy(out, p);
  maskBytes(out, p, key);
  return out;
}

/** XOR `buf[from..]` with `key` (4 bytes), key phase 0 at `from`. */
function maskBytes(buf: Buffer, from: number, key: Uint8Array): void {
  const end = buf.length;
  let i = from;
  // Bytewise up to 4-byte alignment, then a word at a time through a 32-bit view, then the tail.
  while (i < end && (buf.byteOffset + i) % 4 !== 0) buf[i] ^= key[(i++ - from) & 3];
  const n = (end - i) >>> 2;
  if (n > 0) {
    const ph = (i - from) & 3;
    const k = new Uint32Array(new Uint8Array([key[ph], key[(ph + 1) & 3], key[(ph + 2) & 3], key[(ph + 3) & 3]]).buffer)[0];
    const words = new Uint32Array(buf.buffer, buf.byteOffset + i, n);
    for (let w = 0; w < n; w++) words[w] ^= k;
    i += n * 4;
  }
  for (; i < end; i++) buf[i] ^= key[(i - from) & 3];
}

/** A frame header announcing `length` payload bytes, with its masking key (no payload). */
export function encodeHeader(opcode: number, length: number, opts: { fin?: boolean; rsv?: Rsv } = {}): Buffer {
  const ext = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  const out = Buffer.alloc(2 + ext + 4);
  out[0] = ((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | (opcode & 0x0f);
  out[1] = 0x80 | (ext === 0 ? length : ext === 2 ? 126 : 127);
  if (ext === 2) out.writeUInt16BE(length, 2);
  if (ext === 8) out.writeBigUInt64BE(BigInt(length), 2);
  return out; // masking key 0: the payload bytes go on the wire as they are
}

/** A frame from the server. */
export interface ServerFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Buffer;
}

/**
 * Incremental, strict parser of server frames. Chunks are kept in a list and joined once per
 * frame, so a large message costs one copy.
 */
export class FrameReader {
  readonly frames: ServerFrame[] = [];
  readonly violations: string[] = [];
  #chunks: Buffer[] = [];
  #avail = 0;
  #closeSeen = false;
  #inMessage = false;
  readonly #allowRsv1: boolean;

  constructor(opts: { allowRsv1?: boolean } = {}) {
    this.#allowRsv1 = opts.allowRsv1 ?? false;
  }

  push(chunk: Buffer): void {
    if (this.#closeSeen) {
      this.violations.push(`${chunk.length} bytes after the close frame`);
      return;
    }
    this.#chunks.push(chunk);
    this.#avail += chunk.length;
    while (this.#next());
  }

  /** Bytes received and not yet part of a complete frame. */
  get pending(): number {
    return this.#avail;
  }

  #peek(n: number): Buffer {
    if (this.#chunks[0].length < n) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0];
  }

  #next(): boolean {
    if (this.#closeSeen || this.#avail < 2) return false;
    let head = this.#peek(2);
    const len7 = head[1] & 0x7f;
    const hlen = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((head[1] & 0x80) !== 0 ? 4 : 0);
    if (this.#avail < hlen) return false;
    head = this.#peek(hlen);
    let len = len7;
    if (len7 === 126) len = head.readUInt16BE(2);
    else if (len7 === 127) len = Number(head.readBigUInt64BE(2));
    if (this.#avail < hlen + len) return false;
    const all = this.#peek(hlen + len);
    const b0 = all[0];
    const frame: ServerFrame = {
      fin: (b0 & 0x80) !== 0,
      rsv: (b0 >> 4) & 7,
      opcode: b0 & 0x0f,
      payload: Buffer.from(all.subarray(hlen, hlen + len)),
    };
    const rest = all.subarray(hlen + len);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#avail -= hlen + len;
    this.#check(frame, (all[1] & 0x80) !== 0, len7, len);
    this.frames.push(frame);
    if (frame.opcode === OP.close) {
      this.#closeSeen = true;
      if (this.#avail > 0) this.violations.push(`${this.#avail} bytes after the close frame`);
    }
    return true;
  }

  #check(f: ServerFrame, masked: boolean, len7: number, len: number): void {
    const v = this.violations;
    const what = `server frame ${this.frames.length} (opcode ${f.opcode})`;
    if (masked) v.push(`${what} is masked`);
    if (f.rsv !== 0 && !(f.rsv === 4 && this.#allowRsv1)) v.push(`${what} has RSV bits ${f.rsv}`);
    const minimal = len < 126 ? len7 === len : len < 0x10000 ? len7 === 126 : len7 === 127;
    if (!minimal) v.push(`${what}: length ${len} not in its shortest form`);
    if (f.opcode >= 0x8) {
      if (f.opcode > OP.pong) v.push(`${what}: reserved control opcode`);
      if (!f.fin) v.push(`${what}: fragmented control frame`);
      if (len > 125) v.push(`${what}: control payload of ${len} bytes`);
      if (f.opcode === OP.close && len === 1) v.push(`${what}: close payload of 1 byte`);
    } else if (f.opcode === OP.cont) {
      if (!this.#inMessage) v.push(`${what}: continuation with no message in progress`);
      this.#inMessage = !f.fin;
    } else if (f.opcode <= OP.binary) {
      if (this.#inMessage) v.push(`${what}: new message inside a fragmented one`);
      this.#inMessage = !f.fin;
    } else {
      v.push(`${what}: reserved data opcode`);
    }
  }
}

/** A server close frame's code (undefined when empty) and reason. */
export function closeOf(f: ServerFrame): { code: number | undefined; reason: string } {
  return f.payload.length >= 2
    ? { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString('utf8') }
    : { code: undefined, reason: '' };
}

/** How to put bytes on the wire. */
export interface SendOptions {
  /**
   * Split the bytes: a chunk size, or the offsets to split at (ascending). Default: one write.
   * Sending stops early, without error, once the server sent its close frame or closed TCP.
   */
  chop?: number | readonly number[];
  /**
   * Between chunks: ms to pause, or 'none' (one write call per chunk, back to back). Default:
   * one event-loop turn (setImmediate), so the server usually reads each chunk on its own.
   */
  delay?: number | 'none';
}

export interface ConnectOptions {
  host?: string;
  path?: string;
  /** Extra request fields (e.g. Sec-WebSocket-Extensions). */
  headers?: Record<string, string>;
  /** Accept RSV1 on server frames (permessage-deflate negotiated). */
  allowRsv1?: boolean;
}

export interface HandshakeResponse {
  status: number;
  /** Response fields, names lower-cased, repeated ones joined with ', '. */
  headers: Map<string, string>;
}

/** Result of waiting for the end of a connection. */
export interface CloseResult {
  /** The close frame's code, undefined when it had none, null when no close frame came. */
  code: number | undefined | null;
  reason: string;
  /** The server closed TCP with a FIN (not a reset). */
  fin: boolean;
  /** The socket error, if the connection ended with one (e.g. ECONNRESET). */
  error: string | undefined;
}

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = createHash('sha1').update(KEY + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');

/**
 * One raw WebSocket connection, past the opening handshake.
 *
 * Observations: `frames` (every server frame, in order), `violations`, `ended` (FIN from the
 * server), `closed` (the socket is gone), `error`.
 */
export class RawWebSocket {
  readonly socket: Socket;
  response: HandshakeResponse = { status: 0, headers: new Map() };
  readonly #reader: FrameReader;
  ended = false;
  closed = false;
  error: (Error & { code?: string }) | undefined;
  readonly #closedP: Promise<void>;
  #barriers = 0;

  private constructor(port: number, opts: ConnectOptions, head: (response: HandshakeResponse | Error) => void) {
    const socket = (this.socket = netConnect({ port, host: opts.host ?? HOST }));
    socket.setNoDelay(true);
    const reader = (this.#reader = new FrameReader({ allowRsv1: opts.allowRsv1 }));
    const done = deferred();
    this.#closedP = done.promise;
    let pre: Buffer | null = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      if (pre === null) return reader.push(chunk);
      pre = Buffer.concat([pre, chunk]);
      const end = pre.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = pre.subarray(0, end).toString('latin1').split('\r\n');
      const rest = pre.subarray(end + 4);
      pre = null;
      const headers = new Map<string, string>();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
      }
      head({ status: Number(lines[0].split(' ')[1]), headers });
      if (rest.length > 0) reader.push(rest);
    });
    socket.on('end', () => (this.ended = true));
    socket.on('error', (err) => {
      this.error ??= err;
      head(err);
    });
    socket.on('close', () => {
      this.closed = true;
      head(this.error ?? new Error('connection closed during the handshake'));
      done.resolve();
    });
    socket.once('connect', () => {
      let req = `GET ${opts.path ?? '/'} HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`;
      req += `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`;
      for (const [k, v] of Object.entries(opts.headers ?? {})) req += `${k}: ${v}\r\n`;
      socket.write(req + '\r\n');
    });
  }

  /**
   * Connect and complete the opening handshake (checks 101 and Sec-WebSocket-Accept).
   * Errors: rejects when the server answers anything else, or closes.
   */
  static async connect(port: number, opts: ConnectOptions = {}): Promise<RawWebSocket> {
    const answer = deferred<HandshakeResponse>();
    let settled = false;
    const ws = new RawWebSocket(port, opts, (r) => {
      if (settled) return;
      settled = true;
      if (r instanceof Error) answer.reject(r);
      else answer.resolve(r);
    });
    try {
      ws.response = await within(answer.promise, 'the handshake response');
      if (ws.response.status !== 101) throw new Error(`handshake answered ${ws.response.status}, not 101`);
      const accept = ws.response.headers.get('sec-websocket-accept');
      if (accept !== ACCEPT) throw new Error(`wrong Sec-WebSocket-Accept ${accept}`);
    } catch (err) {
      ws.destroy();
      throw err;
    }
    return ws;
  }

  /** Every server frame so far, in order. */
  get frames(): readonly ServerFrame[] {
    return this.#reader.frames;
  }

  /** Server misbehaviour seen so far (empty when it followed RFC 6455). */
  get violations(): readonly string[] {
    return this.#reader.violations;
  }

  /** The server's close frame, once it arrived. */
  get closeFrame(): ServerFrame | undefined {
    const f = this.#reader.frames;
    const last = f[f.length - 1];
    return last?.opcode === OP.close ? last : undefined;
  }

  /** The server is done: its close frame arrived, or TCP ended. */
  get serverDone(): boolean {
    return this.closeFrame !== undefined || this.ended || this.closed;
  }

  /**
   * Write `data` (one buffer, or several joined), split as `opts` says. Resolves once every
   * chunk was handed to the kernel, or early when the server is done (see `SendOptions`).
   */
  async send(data: Uint8Array | readonly Uint8Array[], opts: SendOptions = {}): Promise<void> {
    const buf = data instanceof Uint8Array ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.concat(data as Uint8Array[]);
    const cuts = splitPoints(buf.length, opts.chop);
    let from = 0;
    for (let i = 0; i <= cuts.length; i++) {
      const to = i < cuts.length ? cuts[i] : buf.length;
      if (to <= from) continue;
      if (this.serverDone) return;
      const written = this.#write(buf.subarray(from, to));
      if (opts.delay !== 'none' || i === cuts.length) await written;
      from = to;
      if (i < cuts.length && opts.delay !== 'none') {
        if (opts.delay) await sleep(opts.delay);
        else await new Promise((r) => setImmediate(r));
      }
    }
  }

  /** Encode and send frames (joined, then split as `opts` says). */
  sendFrames(frames: readonly ClientFrame[], opts?: SendOptions): Promise<void> {
    return this.send(frames.map(encodeFrame), opts);
  }

  #write(chunk: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || this.socket.writableEnded) return resolve();
      // A write racing the server's close may fail (EPIPE, ECONNRESET): observed via `error`.
      this.socket.write(chunk, () => resolve());
    });
  }

  /** Wait until `pred` holds, or the connection closed (then check `pred` yourself). */
  async waitFor(pred: () => boolean, what: string, timeout?: number): Promise<void> {
    await waitFor(() => pred() || this.closed, what, timeout);
  }

  /**
   * Send a ping with a unique payload and wait for its pong: every frame the server sent in
   * answer to earlier bytes has then arrived. The pong is removed from `frames`.
   * Errors: rejects when the connection closes first.
   */
  async barrier(): Promise<void> {
    const tag = Buffer.from(`barrier-${++this.#barriers}`);
    await this.sendFrames([{ opcode: OP.ping, payload: tag }]);
    const frames = this.#reader.frames;
    const isPong = (f: ServerFrame) => f.opcode === OP.pong && f.payload.equals(tag);
    await this.waitFor(() => frames.some(isPong) || this.serverDone, `the pong to ${tag}`);
    const at = frames.findIndex(isPong);
    if (at < 0) throw new Error(`the server closed before answering ${tag}: ${describeFrames(frames)}`);
    frames.splice(at, 1);
  }

  /**
   * Wait for the server's close frame and the end of the connection (the server closes TCP
   * first, RFC 6455 7.1.1). Resolves with what was seen; `code` is null when no close frame
   * came before the connection closed.
   */
  async waitClose(timeout = 30_000): Promise<CloseResult> {
    await within(this.#closedP, 'the server to close the connection', timeout);
    const f = this.closeFrame;
    const { code, reason } = f ? closeOf(f) : { code: null, reason: '' };
    return { code, reason, fin: this.ended, error: this.error?.code ?? this.error?.message };
  }

  /** Start the close handshake (our close frame), then wait for the server's answer and TCP close. */
  async close(code?: number, reason = ''): Promise<CloseResult> {
    const payload = code === undefined ? Buffer.alloc(0) : Buffer.concat([u16(code), Buffer.from(reason)]);
    await this.sendFrames([{ opcode: OP.close, payload }]);
    return this.waitClose();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Offsets at which to split `length` bytes. */
function splitPoints(length: number, chop: SendOptions['chop']): number[] {
  if (chop === undefined) return [];
  if (typeof chop !== 'number') return chop.filter((p) => p > 0 && p < length);
  if (!(chop >= 1)) throw new Error(`chop must be >= 1, got ${chop}`);
  const out: number[] = [];
  for (let p = chop; p < length; p += chop) out.push(p);
  return out;
}

/** A close code as two big-endian bytes. */
export function u16(code: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code & 0xffff);
  return b;
}

/** Frames as a short readable list, for assertion messages. */
export function describeFrames(frames: readonly ServerFrame[]): string {
  const names: Record<number, string> = { 0: 'cont', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };
  return `[${frames
    .map((f) => {
      const name = names[f.opcode] ?? `op${f.opcode}`;
      const body = f.opcode === OP.close ? JSON.stringify(closeOf(f)) : f.payload.length > 32 ? `${f.payload.length} bytes` : f.payload.toString('hex');
      return `${name}${f.fin ? '' : '(more)'} ${body}`;
    })
    .join(', ')}]`;
}
