/**
 * RFC 6455 conformance of the WebSocket server, case by case in the categories of the
 * Autobahn|Testsuite fuzzing client (test names carry its case numbers where a case maps;
 * "c1m" marks cases of our own), against the ws-echo app on every backend.
 *
 * Each case is data: the bytes a raw client sends (frames built field by field, whole or split
 * at chosen bytes, with pauses), the messages the server must send back, in order, and how the
 * connection must end: either the server fails it with an exact close code and closes TCP, or
 * it is still open after the case and answers our close 1000 with its own, then closes TCP.
 * The expectation is Autobahn's strict "OK". After every case that fails the connection, a
 * fresh connection must still echo.
 *
 * Fail-fast is checked by construction, never by timing: the bytes after the point where the
 * server must fail are never sent, so the close frame has to come without them; and a
 * "barrier" (a ping whose pong we wait for) proves the server accepted everything before it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { constants as zc, deflateRawSync, inflateRawSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { createHandler } from '../../src/apps/ws-echo.js';
import { createWebSocketHandler } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, payload, startServer, type TestServer } from '../helpers/net.js';
import {
  OP, RawWebSocket, bytes, describeFrames, encodeFrame, encodeHeader, u16, type ClientFrame, type CloseResult, type Rsv, type SendOptions,
  type ServerFrame,
} from '../helpers/ws-raw.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** maxPayload of the main server: Autobahn's largest message (9.1.6) fits exactly. */
const MAIN_MAX = 16 * MiB;
/** maxPayload of the server for the 1009 cases. */
const SMALL_MAX = 64 * KiB;

// ---- frames and expected messages ---------------------------------------------------------

type Data = Uint8Array | string;
const text = (p: Data, o: Partial<ClientFrame> = {}): ClientFrame => ({ opcode: OP.text, payload: p, ...o });
const binary = (p: Data, o: Partial<ClientFrame> = {}): ClientFrame => ({ opcode: OP.binary, payload: p, ...o });
const cont = (p: Data, fin = true, o: Partial<ClientFrame> = {}): ClientFrame => ({ opcode: OP.cont, payload: p, fin, ...o });
const ping = (p: Data = '', o: Partial<ClientFrame> = {}): ClientFrame => ({ opcode: OP.ping, payload: p, ...o });
const pong = (p: Data = '', o: Partial<ClientFrame> = {}): ClientFrame => ({ opcode: OP.pong, payload: p, ...o });
const close = (code?: number, reason: Data = ''): ClientFrame => ({
  opcode: OP.close,
  payload: code === undefined ? Buffer.alloc(0) : Buffer.concat([u16(code), bytes(reason)]),
});
/**
 * Sent right behind bytes the server must fail on, in the same write: a server that does not
 * fail answers it, and the case fails at once instead of waiting for a close that never comes.
 */
const PROBE_PAYLOAD = 'probe: the server must fail before this ping';
const probe = (): ClientFrame => ping(PROBE_PAYLOAD);
const hex = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');

/** `data` cut into data frames of `size` bytes: the first `opcode`, then continuations. */
function fragments(opcode: number, data: Data, size: number, o: Partial<ClientFrame> = {}): ClientFrame[] {
  const b = bytes(data);
  const out: ClientFrame[] = [];
  for (let off = 0; off < b.length || out.length === 0; off += size) {
    const end = Math.min(off + size, b.length);
    out.push({ opcode: out.length === 0 ? opcode : OP.cont, payload: b.subarray(off, end), fin: end >= b.length, ...(out.length === 0 ? o : {}) });
  }
  return out;
}

/** A message (or control frame) the server must send. */
interface Msg {
  op: number;
  data: Buffer;
}
const echoText = (d: Data): Msg => ({ op: OP.text, data: bytes(d) });
const echoBinary = (d: Data): Msg => ({ op: OP.binary, data: bytes(d) });
const pongOf = (d: Data = ''): Msg => ({ op: OP.pong, data: bytes(d) });

/** Server frames (close frame excluded) joined into messages; control frames stay as they are. */
function messages(frames: readonly ServerFrame[]): Msg[] {
  const out: Msg[] = [];
  let parts: Buffer[] | null = null;
  let op = 0;
  for (const f of frames) {
    if (f.opcode === OP.close) break;
    if (f.opcode >= 0x8) {
      out.push({ op: f.opcode, data: f.payload });
    } else {
      if (f.opcode !== OP.cont) {
        op = f.opcode;
        parts = [];
      }
      parts?.push(f.payload);
      if (f.fin && parts) {
        out.push({ op, data: Buffer.concat(parts) });
        parts = null;
      }
    }
  }
  return out;
}

/** A message as a short string: small payloads in hex, large ones by length and digest. */
function show(m: Msg): string {
  const name = ({ 1: 'text', 2: 'binary', 9: 'ping', 10: 'pong' } as Record<number, string>)[m.op] ?? `op${m.op}`;
  const d = m.data;
  return d.length <= 48 ? `${name} ${d.toString('hex')}` : `${name} ${d.length} bytes sha1 ${createHash('sha1').update(d).digest('hex')}`;
}

// ---- cases --------------------------------------------------------------------------------

/** Bytes to send (frames, or raw bytes), split and paced as `SendOptions` says. */
interface Send extends SendOptions {
  frames: readonly (ClientFrame | Buffer)[];
}
type Step = Send | 'barrier';

interface Case {
  /** Autobahn case number, or 'c1m' (with a sub-number) for cases of our own. */
  id: string;
  title: string;
  steps: readonly Step[];
  /** Messages (and pongs) the server sends, in order, before its close frame. Default none. */
  expect?: readonly Msg[];
  /**
   * How the server ends the connection after the steps: a close code (a protocol error, or
   * our own close frame echoed), `'empty'` (it echoes our empty close frame), or undefined:
   * it stays open, and we close with 1000.
   */
  close?: number | 'empty';
  /** Which server: the main one (maxPayload 16 MiB) or the small one (64 KiB). */
  server?: 'main' | 'small';
  /** Run on the permessage-deflate server with this offer. */
  deflate?: string;
  /** Build `steps` and `expect` when the case runs (large payloads are not kept around). */
  lazy?: () => Pick<Case, 'steps' | 'expect'>;
}

const PROTOCOL_ERRORS = new Set([1002, 1007, 1009]);
const send = (frames: Send['frames'], o: SendOptions = {}): Send => ({ frames, ...o });
const OCTETS: SendOptions = { chop: 1 };
/** Every frame in its own write. */
const frameWise = (frames: readonly ClientFrame[]): Step[] => frames.map((f) => send([f]));

/** Printable ASCII text of `n` bytes. */
const ALPHABET = Buffer.from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,*');
const ascii = (n: number, seed = 0): string => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = ALPHABET[(i * 7 + seed) % ALPHABET.length];
  return b.toString('latin1');
};
/** Valid UTF-8 of exactly `n` bytes, mixing 1- to 4-byte characters. */
function utf8Text(n: number): Buffer {
  const unit = Buffer.from('aé€😀', 'utf8'); // 1 + 2 + 3 + 4 bytes
  const out = Buffer.alloc(n, 0x61);
  for (let off = 0; off + unit.length <= n; off += unit.length) unit.copy(out, off);
  return out;
}

// 1 Framing: payload lengths around the 7-bit, 16-bit and 64-bit length encodings.
const LENGTHS = [0, 125, 126, 127, 128, 65535, 65536];
function framingCases(): Case[] {
  const out: Case[] = [];
  for (const [k, kind] of [[1, 'text'], [2, 'binary']] as const) {
    const make = (len: number): [ClientFrame, Msg] => {
      const p = kind === 'text' ? ascii(len) : payload(len, len + 7);
      return kind === 'text' ? [text(p), echoText(p)] : [binary(p), echoBinary(p)];
    };
    LENGTHS.forEach((len, i) => {
      const [f, m] = make(len);
      out.push({ id: `1.${k}.${i + 1}`, title: `${kind}, ${len} bytes`, steps: [send([f])], expect: [m] });
      // Small frames one byte per write; large ones with the header split at every byte.
      const split = len <= 128 ? OCTETS : { chop: Array.from({ length: 14 }, (_, j) => j + 1) };
      out.push({ id: 'c1m', title: `${kind}, ${len} bytes, ${len <= 128 ? 'byte by byte' : 'header byte by byte'}`, steps: [send([f], split)], expect: [m] });
    });
    const [f, m] = make(65536);
    out.push({ id: `1.${k}.8`, title: `${kind}, 65536 bytes in chops of 997`, steps: [send([f], { chop: 997 })], expect: [m] });
  }
  out.push(
    { id: 'c1m', title: 'unmasked client frame: 1002', steps: [send([text('Hello', { mask: false })])], close: 1002 },
    { id: 'c1m', title: 'unmasked ping after a valid message: echo, then 1002', steps: [send([text('Hello'), ping('x', { mask: false })])], expect: [echoText('Hello')], close: 1002 },
    { id: 'c1m', title: '64-bit length with the most significant bit set: 1002', steps: [send([Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])])], close: 1002 },
  );
  return out;
}

// 2 Pings and pongs.
function pingCases(): Case[] {
  const p125 = Buffer.alloc(125, 0xfe);
  const tenPings = Array.from({ length: 10 }, (_, i) => ping(`payload-${i}`));
  const tenPongs = Array.from({ length: 10 }, (_, i) => pongOf(`payload-${i}`));
  return [
    { id: '2.1', title: 'ping without payload', steps: [send([ping()])], expect: [pongOf()] },
    { id: '2.2', title: 'ping with a text payload', steps: [send([ping('Hello, world!')])], expect: [pongOf('Hello, world!')] },
    { id: '2.3', title: 'ping with a binary payload', steps: [send([ping(hex('00ff fefd fcfb 00ff'))])], expect: [pongOf(hex('00ff fefd fcfb 00ff'))] },
    { id: '2.4', title: 'ping with 125 bytes', steps: [send([ping(p125)])], expect: [pongOf(p125)] },
    { id: '2.5', title: 'ping with 126 bytes: 1002', steps: [send([ping(Buffer.alloc(126, 0xfe))])], close: 1002 },
    { id: 'c1m', title: 'pong with 126 bytes: 1002', steps: [send([pong(Buffer.alloc(126, 0xfe))])], close: 1002 },
    { id: 'c1m', title: 'ping with a 5-byte payload in the 16-bit length form: 1002', steps: [send([Buffer.from([0x89, 0xfe, 0x00, 0x05, 0, 0, 0, 0, 0x68, 0x65, 0x6c, 0x6c, 0x6f])])], close: 1002 },
    { id: '2.6', title: 'ping with 125 bytes, byte by byte', steps: [send([ping(p125)], OCTETS)], expect: [pongOf(p125)] },
    { id: '2.7', title: 'unsolicited pong without payload: ignored', steps: [send([pong()])] },
    { id: '2.8', title: 'unsolicited pong with payload: ignored', steps: [send([pong('unsolicited pong payload')])] },
    { id: '2.9', title: 'unsolicited pong, then ping: one pong', steps: [send([pong('unsolicited pong payload'), ping('ping payload')])], expect: [pongOf('ping payload')] },
    { id: '2.10', title: '10 pings in a row: 10 pongs in order', steps: [send(tenPings)], expect: tenPongs },
    { id: '2.11', title: '10 pings in a row, byte by byte', steps: [send(tenPings, OCTETS)], expect: tenPongs },
    { id: 'c1m', title: 'ping split at every byte of its header, payload in 3 writes', steps: [send([ping(p125)], { chop: [1, 2, 3, 4, 5, 6, 40, 90], delay: 1 })], expect: [pongOf(p125)] },
  ];
}

// 3 Reserved bits: no extension is negotiated, so any RSV bit fails the connection.
function rsvCases(): Case[] {
  const hello = text('Hello, world!');
  const seq = (rsv: Rsv): ClientFrame[] => [hello, text('Hello, world!', { rsv }), ping()];
  return [
    { id: '3.1', title: 'text with RSV=1: 1002', steps: [send([text('Hello, world!', { rsv: 1 })])], close: 1002 },
    { id: '3.2', title: 'text, text with RSV=2, ping: echo, 1002, no pong', steps: [send(seq(2))], expect: [echoText('Hello, world!')], close: 1002 },
    { id: '3.3', title: 'text, text with RSV=3, ping, frame-wise', steps: frameWise(seq(3)), expect: [echoText('Hello, world!')], close: 1002 },
    { id: '3.4', title: 'text, text with RSV=4, ping, byte by byte', steps: [send(seq(4), OCTETS)], expect: [echoText('Hello, world!')], close: 1002 },
    { id: '3.5', title: 'binary with RSV=5: 1002', steps: [send([binary(payload(8, 3), { rsv: 5 })])], close: 1002 },
    { id: '3.6', title: 'ping with RSV=6: 1002', steps: [send([ping('Hello, world!', { rsv: 6 })])], close: 1002 },
    { id: '3.7', title: 'close with RSV=7: 1002', steps: [send([{ ...close(1000), rsv: 7 }])], close: 1002 },
    { id: 'c1m', title: 'continuation with RSV1 inside a fragmented text: 1002', steps: [send([text('ab', { fin: false }), cont('cd', true, { rsv: 4 })])], close: 1002 },
  ];
}

// 4 Opcodes: every reserved opcode, alone and after a valid message (then a ping that must
// not be answered). Autobahn samples five of each kind; the others are ours.
function opcodeCases(): Case[] {
  const autobahn: Record<string, string> = {
    '3 alone': '4.1.1', '4 alone': '4.1.2', '5 after': '4.1.3', '6 after': '4.1.4', '7 after': '4.1.5',
    '11 alone': '4.2.1', '12 alone': '4.2.2', '13 after': '4.2.3', '14 after': '4.2.4', '15 after': '4.2.5',
  };
  const out: Case[] = [];
  for (const op of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
    const kind = op < 8 ? 'data' : 'control';
    const bad: ClientFrame = { opcode: op, payload: op % 2 === 0 ? 'reserved opcode payload' : '' };
    out.push({ id: autobahn[`${op} alone`] ?? 'c1m', title: `reserved ${kind} opcode ${op}: 1002`, steps: [send([bad])], close: 1002 });
    out.push({
      id: autobahn[`${op} after`] ?? 'c1m',
      title: `text, reserved ${kind} opcode ${op}, ping: echo, 1002, no pong`,
      steps: [send([text('Hello, world!'), bad, ping()])],
      expect: [echoText('Hello, world!')],
      close: 1002,
    });
  }
  return out;
}

// 5 Fragmentation.
function fragmentationCases(): Case[] {
  const two = [text('fragment1', { fin: false }), cont('fragment2')];
  const twoPing = [text('fragment1', { fin: false }), ping('ping payload'), cont('fragment2')];
  const lonelyCont = (fin: boolean) => [cont('fragment1', fin), text('fragment2', { fin: false }), cont('fragment3')];
  const fin9 = [cont('non-continuation payload', true), text('Hello, world!')];
  const fin12 = [cont('non-continuation payload', false), text('Hello, world!')];
  const five = (i: number) => cont(`fragment${i}`, i === 5);
  const msg5 = echoText('fragment1fragment2fragment3fragment4fragment5');
  const oneByte = fragments(OP.text, 'Hello, fragmented world!', 1);
  const many = payload(4000, 9);
  return [
    { id: '5.1', title: 'ping in 2 fragments: 1002', steps: [send([ping('fragment1', { fin: false }), cont('fragment2')])], close: 1002 },
    { id: '5.2', title: 'pong in 2 fragments: 1002', steps: [send([pong('fragment1', { fin: false }), cont('fragment2')])], close: 1002 },
    { id: 'c1m', title: 'close in 2 fragments: 1002', steps: [send([{ ...close(1000), fin: false }, cont('')])], close: 1002 },
    { id: '5.3', title: 'text in 2 fragments', steps: [send(two)], expect: [echoText('fragment1fragment2')] },
    { id: '5.4', title: 'text in 2 fragments, byte by byte', steps: [send(two, OCTETS)], expect: [echoText('fragment1fragment2')] },
    { id: '5.5', title: 'text in 2 fragments, byte by byte with pauses', steps: [send(two, { chop: 1, delay: 1 })], expect: [echoText('fragment1fragment2')] },
    { id: '5.6', title: 'text in 2 fragments, ping between', steps: [send(twoPing)], expect: [pongOf('ping payload'), echoText('fragment1fragment2')] },
    { id: '5.7', title: 'text in 2 fragments, ping between, byte by byte', steps: [send(twoPing, OCTETS)], expect: [pongOf('ping payload'), echoText('fragment1fragment2')] },
    { id: '5.8', title: 'text in 2 fragments, ping between, frame-wise with barriers', steps: [send([twoPing[0]]), 'barrier', send([twoPing[1]]), 'barrier', send([twoPing[2]])], expect: [pongOf('ping payload'), echoText('fragment1fragment2')] },
    { id: '5.9', title: 'continuation (FIN) with nothing to continue: 1002', steps: [send(fin9)], close: 1002 },
    { id: '5.10', title: 'same, byte by byte', steps: [send(fin9, OCTETS)], close: 1002 },
    { id: '5.11', title: 'same, byte by byte with pauses', steps: [send(fin9, { chop: 1, delay: 1 })], close: 1002 },
    { id: '5.12', title: 'continuation (no FIN) with nothing to continue: 1002', steps: [send(fin12)], close: 1002 },
    { id: '5.13', title: 'same, byte by byte', steps: [send(fin12, OCTETS)], close: 1002 },
    { id: '5.14', title: 'same, byte by byte with pauses', steps: [send(fin12, { chop: 1, delay: 1 })], close: 1002 },
    { id: '5.15', title: 'text in 2 fragments, then a lonely continuation: echo, 1002', steps: [send([...two, cont('fragment3', false), text('fragment4')])], expect: [echoText('fragment1fragment2')], close: 1002 },
    { id: '5.16', title: 'twice: lonely continuation (no FIN), text in 2 fragments: 1002', steps: [send([...lonelyCont(false), ...lonelyCont(false)])], close: 1002 },
    { id: '5.17', title: 'twice: lonely continuation (FIN), text in 2 fragments: 1002', steps: [send([...lonelyCont(true), ...lonelyCont(true)])], close: 1002 },
    { id: '5.18', title: 'text in 2 fragments, both with the text opcode: 1002', steps: [send([text('fragment1', { fin: false }), text('fragment2')])], close: 1002 },
    {
      id: '5.19',
      title: 'text in 5 fragments, pings between: each pong before the message ends',
      steps: [send([text('fragment1', { fin: false }), five(2), ping('pongme 1!')]), 'barrier', send([five(3), five(4), ping('pongme 2!')]), 'barrier', send([five(5)])],
      expect: [pongOf('pongme 1!'), pongOf('pongme 2!'), msg5],
    },
    {
      id: '5.20',
      title: 'same, byte by byte with pauses',
      steps: [send([text('fragment1', { fin: false }), five(2), ping('pongme 1!')], { chop: 1, delay: 1 }), 'barrier', send([five(3), five(4), ping('pongme 2!')], OCTETS), 'barrier', send([five(5)], OCTETS)],
      expect: [pongOf('pongme 1!'), pongOf('pongme 2!'), msg5],
    },
    { id: 'c1m', title: 'binary in 3 fragments, pong between (ignored)', steps: [send([binary(hex('0102'), { fin: false }), pong('x'), cont(hex('03'), false), cont(hex('0405'))])], expect: [echoBinary(hex('0102030405'))] },
    { id: 'c1m', title: 'binary inside a fragmented text: 1002', steps: [send([text('ab', { fin: false }), binary('cd')])], close: 1002 },
    { id: 'c1m', title: 'text in fragments of 1 byte', steps: [send(oneByte)], expect: [echoText('Hello, fragmented world!')] },
    { id: 'c1m', title: 'text in fragments of 1 byte, byte by byte', steps: [send(oneByte, OCTETS)], expect: [echoText('Hello, fragmented world!')] },
    { id: 'c1m', title: 'binary in 4000 fragments of 1 byte', steps: [send(fragments(OP.binary, many, 1))], expect: [echoBinary(many)] },
    { id: 'c1m', title: 'fragmented text, close between fragments: close echoed, message dropped', steps: [send([text('fragment1', { fin: false }), close(1000), cont('fragment2')])], close: 1000 },
  ];
}

// 6 UTF-8. The 6.5-6.23 tables follow the sections of Markus Kuhn's UTF-8 decoder stress
// test, in Autobahn's order; validity is decided by the WHATWG decoder (TextDecoder, fatal),
// which rejects at the earliest impossible byte, as RFC 6455 8.1 asks of us.
const KOSME = hex('cebae1bdb9cf83cebcceb5');
function utf8Tables(): [string, Buffer[]][] {
  const h = (...xs: string[]) => xs.map(hex);
  const range = (from: number, to: number, each: (b: number) => number[]) => Buffer.from(Array.from({ length: to - from }, (_, i) => each(from + i)).flat());
  const missing = h('c0', 'e080', 'f08080', 'f8808080', 'fc80808080', 'df', 'efbf', 'f7bfbf', 'fbbfbfbf', 'fdbfbfbfbf');
  const highs = ['eda080', 'edadbf', 'edae80', 'edafbf'];
  const nonChars: Buffer[] = h('efbfbe', 'efbfbf');
  for (const z1 of [0xf0, 0xf1, 0xf2, 0xf3, 0xf4]) {
    for (const z2 of [0x8f, 0x9f, 0xaf, 0xbf]) {
      if ((z1 === 0xf4 && z2 !== 0x8f) || (z1 === 0xf0 && z2 === 0x8f)) continue; // > U+10FFFF, overlong
      for (const z4 of [0xbe, 0xbf]) nonChars.push(Buffer.from([z1, z2, 0xbf, z4]));
    }
  }
  return [
    ['Some valid UTF-8 sequences', [Buffer.from('hello$world'), Buffer.from('hello¢world'), Buffer.from('hello€world'), Buffer.from('hello\u{24b62}world'), KOSME]],
    ['All prefixes of κόσμε', Array.from({ length: KOSME.length }, (_, i) => KOSME.subarray(0, i + 1))],
    ['First possible sequence of a certain length', h('00', 'c280', 'e0a080', 'f0908080')],
    ['First possible sequence of length 5/6 (not Unicode)', h('f888808080', 'fc8480808080')],
    ['Last possible sequence of a certain length', h('7f', 'dfbf', 'efbfbf', 'f48fbfbf')],
    ['Last possible sequence of length 4/5/6 (over U+10FFFF)', h('f7bfbfbf', 'fbbfbfbfbf', 'fdbfbfbfbfbf')],
    ['Other boundary conditions', h('ed9fbf', 'ee8080', 'efbfbd', 'f48fbfbf', 'f4908080')],
    ['Unexpected continuation bytes', [...h('80', 'bf', '80bf', '80bf80', '80bf80bf', '80bf80bf80', '80bf80bf80bf'), range(0x80, 0xbf, (b) => [b])]],
    ['Lonely start characters', [[0xc0, 0xdf], [0xe0, 0xef], [0xf0, 0xf7], [0xf8, 0xfb], [0xfc, 0xfd]].map(([a, b]) => range(a, b, (x) => [x, 0x20]))],
    ['Sequences with the last continuation byte missing', missing],
    ['Concatenation of incomplete sequences', [Buffer.concat(missing)]],
    ['Impossible bytes', h('fe', 'ff', 'fefeffff')],
    ['Overlong ASCII character', h('c0af', 'e080af', 'f08080af', 'f8808080af', 'fc80808080af')],
    ['Maximum overlong sequences', h('c1bf', 'e09fbf', 'f08fbfbf', 'f887bfbfbf', 'fc83bfbfbfbf')],
    ['Overlong NUL', h('c080', 'e08080', 'f0808080', 'f880808080', 'fc8080808080')],
    ['Single UTF-16 surrogates', h(...highs, 'edb080', 'edbe80', 'edbfbf')],
    ['Paired UTF-16 surrogates', highs.flatMap((hi) => h(hi + 'edb080', hi + 'edbfbf'))],
    ['Noncharacters (valid UTF-8)', nonChars],
    ['Unicode specials (valid UTF-8)', h('efbfb9', 'efbfba', 'efbfbb', 'efbfbc', 'efbfbd', 'efbfbe', 'efbfbf')],
  ];
}

/** Index of the first byte no valid UTF-8 can contain at its place; -1: a valid prefix. */
function firstBadByte(b: Uint8Array): number {
  const d = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < b.length; i++) {
    try {
      d.decode(b.subarray(i, i + 1), { stream: true });
    } catch {
      return i;
    }
  }
  return -1;
}

const isUtf8 = (b: Uint8Array): boolean => firstBadByte(b) < 0 && (() => {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
})();

/** A UTF-8 case, run twice: as one frame, and as 1-byte fragments stopping at the bad byte. */
interface Utf8Case {
  id: string;
  title: string;
  data: Buffer;
}

function utf8Cases(): { plain: Case[]; tables: Utf8Case[] } {
  const greeting = Buffer.from('Hello-µ@ßöäüàá-UTF-8!!');
  const bad = hex('cebae1bdb9cf83cebcceb5 eda080 656469746564');
  const split = (data: Buffer, at: number[]) => {
    const cuts = [0, ...at, data.length];
    return cuts.slice(1).map((end, i) => cont(data.subarray(cuts[i], end), i === cuts.length - 2)).map((f, i) => (i === 0 ? { ...f, opcode: OP.text } : f));
  };
  const p1 = KOSME, p2 = hex('f4908080'), p3 = hex('656469746564');
  const whole = Buffer.concat([p1, p2, p3]);
  // A frame over HOLD_FRAME_BYTES is streamed, so it is checked as its bytes arrive.
  const bigHead = Buffer.alloc(20_000, 0x61);
  const big = Buffer.concat([bigHead, p2, Buffer.alloc(12_000, 0x62)]);
  const bigWire = encodeFrame(text(big));
  const plain: Case[] = [
    { id: '6.1.1', title: 'empty text message', steps: [send([text('')])], expect: [echoText('')] },
    { id: '6.1.2', title: 'empty text message in 3 empty fragments', steps: [send([text('', { fin: false }), cont('', false), cont('')])], expect: [echoText('')] },
    { id: '6.1.3', title: 'empty, non-empty, empty fragment', steps: [send([text('', { fin: false }), cont('middle frame payload', false), cont('')])], expect: [echoText('middle frame payload')] },
    { id: '6.2.1', title: 'valid UTF-8 in one frame', steps: [send([text(greeting)])], expect: [echoText(greeting)] },
    { id: '6.2.2', title: 'valid UTF-8 in 2 fragments split at a character boundary', steps: [send(split(greeting, [12]))], expect: [echoText(greeting)] },
    { id: '6.2.3', title: 'valid UTF-8 in 1-byte fragments (split inside characters)', steps: [send(fragments(OP.text, greeting, 1))], expect: [echoText(greeting)] },
    { id: '6.2.4', title: 'κόσμε in 1-byte fragments', steps: [send(fragments(OP.text, KOSME, 1))], expect: [echoText(KOSME)] },
    { id: '6.3.1', title: 'invalid UTF-8 (a surrogate) in one frame: 1007', steps: [send([text(bad)])], close: 1007 },
    { id: '6.3.2', title: 'same in 1-byte fragments: 1007', steps: [send(fragments(OP.text, bad, 1))], close: 1007 },
    {
      id: '6.4.1',
      title: 'fail fast: valid fragment accepted, the next (U+110000) fails without the rest',
      steps: [send([text(p1, { fin: false })]), 'barrier', send([cont(p2, false), probe()])],
      close: 1007,
    },
    {
      id: '6.4.2',
      title: 'fail fast: the invalid byte alone in the middle fragment',
      steps: [send([text(Buffer.concat([p1, p2.subarray(0, 1)]), { fin: false })]), 'barrier', send([cont(p2.subarray(1, 2), false), probe()])],
      close: 1007,
    },
    // One small frame in chops: the server parses a frame at most HOLD_FRAME_BYTES long only
    // once it is whole (docs/websocket.md), so the close may come with the last chop:
    // Autobahn's NON-STRICT. The streamed variant below must fail fast.
    { id: '6.4.3', title: 'one frame in 3 chops (valid, invalid, rest): 1007', steps: [send([text(whole)], { chop: [6 + p1.length, 6 + p1.length + 4], delay: 5 })], close: 1007 },
    { id: '6.4.4', title: 'one frame in 3 chops around the single invalid byte: 1007', steps: [send([text(whole)], { chop: [6 + p1.length + 1, 6 + p1.length + 2], delay: 5 })], close: 1007 },
    {
      id: 'c1m',
      title: 'fail fast inside one large streamed frame: 1007 before the frame is complete',
      steps: [send([bigWire.subarray(0, 10 + 4 + 10_000)]), send([bigWire.subarray(14 + 10_000, 14 + bigHead.length + 2)])],
      close: 1007,
    },
    { id: 'c1m', title: 'a character split across two fragments, both in one write', steps: [send(split(hex('f09f9880'), [2]))], expect: [echoText(hex('f09f9880'))] },
    { id: 'c1m', title: 'a character split across fragments with a ping between', steps: [send([text(hex('e2'), { fin: false }), ping('p'), cont(hex('82'), false), cont(hex('ac'))], OCTETS)], expect: [pongOf('p'), echoText(hex('e282ac'))] },
    { id: 'c1m', title: 'a message ending inside a character: 1007', steps: [send([text(hex('41e282'), { fin: false }), cont('')])], close: 1007 },
    { id: 'c1m', title: 'invalid UTF-8 in a binary message is not checked', steps: [send([binary(bad)])], expect: [echoBinary(bad)] },
  ];
  const tables: Utf8Case[] = [];
  utf8Tables().forEach(([section, seqs], i) => {
    seqs.forEach((data, j) => tables.push({ id: `6.${i + 5}.${j + 1}`, title: `${section}: ${data.length > 16 ? `${data.subarray(0, 16).toString('hex')}... (${data.length} bytes)` : data.toString('hex')}`, data }));
  });
  return { plain, tables };
}

/** The two runs of a UTF-8 table case. */
function utf8Runs(c: Utf8Case): Case[] {
  const valid = isUtf8(c.data);
  const badAt = firstBadByte(c.data);
  const whole: Case = { id: c.id, title: 'one frame', steps: [send([text(c.data)])], ...(valid ? { expect: [echoText(c.data)] } : { close: 1007 }) };
  let fragmented: Case;
  if (valid) {
    fragmented = { id: c.id, title: '1-byte fragments', steps: [send(fragments(OP.text, c.data, 1))], expect: [echoText(c.data)] };
  } else if (badAt >= 0) {
    // Never send the bytes after the bad one, nor the final fragment: the close must come now.
    const upTo = fragments(OP.text, c.data, 1).slice(0, badAt + 1).map((f) => ({ ...f, fin: false }));
    fragmented = { id: c.id, title: `1-byte fragments up to the bad byte (${badAt}), no FIN`, steps: [send([...upTo, probe()])], close: 1007 };
  } else {
    // A valid prefix cut short: only the final (empty) fragment can tell.
    const all = fragments(OP.text, c.data, 1).map((f) => ({ ...f, fin: false }));
    fragmented = { id: c.id, title: '1-byte fragments, then an empty final one', steps: [send([...all, cont('')])], close: 1007 };
  }
  // Inside 80 bytes of ASCII: long pieces take the validator's bulk path, not only its DFA.
  const padded = Buffer.concat([Buffer.alloc(40, 0x78), c.data, Buffer.alloc(40, 0x79)]);
  const inText: Case = { id: c.id, title: 'one frame, between 40 ASCII bytes each side', steps: [send([text(padded)])], ...(valid ? { expect: [echoText(padded)] } : { close: 1007 }) };
  return [whole, fragmented, inText];
}

// 7 Close handling.
const VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999];
const INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999];
function closeCases(): Case[] {
  const reason123 = ascii(123);
  const big = ascii(256 * KiB, 3);
  const badReason = hex('cebae1bdb9cf83cebcceb5eda080656469746564');
  return [
    { id: '7.1.1', title: 'text, then close: echo, close echoed', steps: [send([text('Hello World!'), close(1000)])], expect: [echoText('Hello World!')], close: 1000 },
    { id: '7.1.2', title: 'close twice: the second is ignored', steps: [send([close(1000), close(1000)])], close: 1000 },
    { id: '7.1.3', title: 'close, then ping: no pong', steps: [send([close(1000), ping('Hello World!')])], close: 1000 },
    { id: '7.1.4', title: 'close, then text: no echo', steps: [send([close(1000), text('Hello World!')])], close: 1000 },
    { id: '7.1.5', title: 'first fragment, close, last fragment: nothing delivered', steps: [send([text('fragment1', { fin: false }), close(1000), cont('fragment2')])], close: 1000 },
    { id: '7.1.6', title: '256 KiB text, text, close, ping: both echoes, then close', steps: [send([text(big), text('Hello World!'), close(1000), ping()])], expect: [echoText(big), echoText('Hello World!')], close: 1000 },
    { id: '7.3.1', title: 'close without payload: empty close echoed', steps: [send([close()])], close: 'empty' },
    { id: '7.3.2', title: 'close with a 1-byte payload: 1002', steps: [send([{ opcode: OP.close, payload: hex('03') }])], close: 1002 },
    { id: '7.3.3', title: 'close 1000 without reason', steps: [send([close(1000)])], close: 1000 },
    { id: '7.3.4', title: 'close 1000 with a reason', steps: [send([close(1000, 'Hello World!')])], close: 1000 },
    { id: '7.3.5', title: 'close 1000 with a 123-byte reason', steps: [send([close(1000, reason123)])], close: 1000 },
    { id: 'c1m', title: 'close 1000 with a 123-byte reason, byte by byte', steps: [send([close(1000, reason123)], OCTETS)], close: 1000 },
    { id: '7.3.6', title: 'close with a 124-byte reason (126-byte control frame): 1002', steps: [send([close(1000, reason123 + 'x')])], close: 1002 },
    { id: '7.5.1', title: 'close reason not valid UTF-8: 1007', steps: [send([close(1000, badReason)])], close: 1007 },
    { id: 'c1m', title: 'close reason not valid UTF-8, byte by byte: 1007', steps: [send([close(1000, badReason)], OCTETS)], close: 1007 },
    ...VALID_CODES.map((code, i): Case => ({ id: `7.7.${i + 1}`, title: `valid close code ${code}: echoed`, steps: [send([close(code)])], close: code })),
    ...[1012, 1013, 1014].map((code): Case => ({ id: 'c1m', title: `IANA-registered close code ${code}: echoed`, steps: [send([close(code)])], close: code })),
    ...INVALID_CODES.map((code, i): Case => ({ id: `7.9.${i + 1}`, title: `invalid close code ${code}: 1002`, steps: [send([close(code)])], close: 1002 })),
    { id: 'c1m', title: 'invalid close code 1015 (reporting only): 1002', steps: [send([close(1015)])], close: 1002 },
    { id: '7.13.1', title: 'close code 5000: 1002', steps: [send([close(5000)])], close: 1002 },
    { id: '7.13.2', title: 'close code 65535: 1002', steps: [send([close(65535)])], close: 1002 },
  ];
}

// 9 Limits and large messages (the main server allows 16 MiB).
function limitCases(): Case[] {
  const out: Case[] = [];
  const sizes = [64 * KiB, 256 * KiB, MiB, 4 * MiB, 8 * MiB, 16 * MiB];
  const lazy = (id: string, title: string, build: () => Pick<Case, 'steps' | 'expect'>): Case => ({ id, title, steps: [], lazy: build });
  sizes.forEach((n, i) => out.push(lazy(`9.1.${i + 1}`, `text of ${n / KiB} KiB`, () => {
    const t = utf8Text(n);
    return { steps: [send([text(t)])], expect: [echoText(t)] };
  })));
  sizes.forEach((n, i) => out.push(lazy(`9.2.${i + 1}`, `binary of ${n / KiB} KiB`, () => {
    const b = payload(n, i);
    return { steps: [send([binary(b)])], expect: [echoBinary(b)] };
  })));
  // Autobahn uses 4 MiB here; 1 MiB keeps the suite quick and still needs 16384 fragments of 64.
  const fragSizes = [64, 256, KiB, 4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB];
  fragSizes.forEach((f, i) => out.push(lazy(`9.3.${i + 1}`, `1 MiB text in fragments of ${f} bytes`, () => {
    const t = utf8Text(MiB);
    return { steps: [send(fragments(OP.text, t, f))], expect: [echoText(t)] };
  })));
  fragSizes.forEach((f, i) => out.push(lazy(`9.4.${i + 1}`, `1 MiB binary in fragments of ${f} bytes`, () => {
    const b = payload(MiB, 44);
    return { steps: [send(fragments(OP.binary, b, f))], expect: [echoBinary(b)] };
  })));
  const chops = [64, 128, 256, 512, 1024, 2048];
  chops.forEach((c, i) => out.push(lazy(`9.5.${i + 1}`, `1 MiB text, written in chops of ${c} bytes`, () => {
    const t = utf8Text(MiB);
    return { steps: [send([text(t)], { chop: c, delay: 'none' })], expect: [echoText(t)] };
  })));
  chops.forEach((c, i) => out.push(lazy(`9.6.${i + 1}`, `1 MiB binary, written in chops of ${c} bytes`, () => {
    const b = payload(MiB, 45);
    return { steps: [send([binary(b)], { chop: c, delay: 'none' })], expect: [echoBinary(b)] };
  })));
  const smalls = [0, 16, 64, 256, 1024, 4096];
  smalls.forEach((n, i) => out.push(lazy(`9.7.${i + 1}`, `1000 texts of ${n} bytes, pipelined`, () => {
    const msgs = Array.from({ length: 1000 }, (_, k) => ascii(n, k));
    return { steps: [send(msgs.map((m) => text(m)))], expect: msgs.map(echoText) };
  })));
  smalls.forEach((n, i) => out.push(lazy(`9.8.${i + 1}`, `1000 binaries of ${n} bytes, pipelined`, () => {
    const msgs = Array.from({ length: 1000 }, (_, k) => payload(n, k + 1));
    return { steps: [send(msgs.map((m) => binary(m)))], expect: msgs.map(echoBinary) };
  })));
  // maxPayload: the small server allows 64 KiB.
  const atMax = payload(SMALL_MAX, 5);
  const frag30 = payload(30 * KiB, 6);
  out.push(
    { id: 'c1m', server: 'small', title: 'binary of exactly maxPayload: echoed', steps: [send([binary(atMax)])], expect: [echoBinary(atMax)] },
    { id: 'c1m', server: 'small', title: 'binary of maxPayload + 1: 1009', steps: [send([binary(payload(SMALL_MAX + 1, 5))])], close: 1009 },
    { id: 'c1m', server: 'small', title: 'text of maxPayload + 1: 1009', steps: [send([text(ascii(SMALL_MAX + 1))])], close: 1009 },
    { id: 'c1m', server: 'small', title: 'a header announcing 1 MiB: 1009 before any payload', steps: [send([encodeHeader(OP.binary, MiB)])], close: 1009 },
    { id: 'c1m', server: 'small', title: 'a 64-bit length of 2^32: 1009 before any payload', steps: [send([encodeHeader(OP.binary, 2 ** 32)])], close: 1009 },
    {
      id: 'c1m',
      server: 'small',
      title: 'fragments summing past maxPayload: 1009 at the header of the one that crosses',
      steps: [send([binary(frag30, { fin: false }), cont(frag30, false)]), 'barrier', send([encodeHeader(OP.cont, 30 * KiB)])],
      close: 1009,
    },
    { id: 'c1m', title: 'a header announcing 16 MiB + 1: 1009 before any payload', steps: [send([encodeHeader(OP.text, MAIN_MAX + 1)])], close: 1009 },
  );
  return out;
}

// 10 Misc: how the client fragments a message does not matter.
function miscCases(): Case[] {
  const t = ascii(65536, 10);
  return [{ id: '10.1.1', title: '64 KiB text auto-fragmented in 1300-byte frames', steps: [send(fragments(OP.text, t, 1300))], expect: [echoText(t)] }];
}

// 12/13 permessage-deflate (RFC 7692), on a server with `perMessageDeflate: true`.
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** One compressed message: DEFLATE with a sync flush, its trailing 00 00 ff ff removed (RFC 7692 7.2.1). */
function deflateMessage(data: Data): Buffer {
  const out = deflateRawSync(bytes(data), { finishFlush: zc.Z_SYNC_FLUSH });
  return out.subarray(out.length - 4).equals(TRAILER) ? out.subarray(0, out.length - 4) : out;
}

/** The deflate cases, run with each offer: messages the server inflates and echoes. */
function deflateCases(): Case[] {
  const out: Case[] = [];
  const sizes = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072];
  sizes.forEach((n, i) => {
    const t = ascii(n, i);
    out.push({ id: `12.1.${i + 1}`, title: `compressed text of ${n} bytes`, steps: [send([text(deflateMessage(t), { rsv: 4 })])], expect: [echoText(t)] });
  });
  sizes.forEach((n, i) => {
    const b = payload(n, i);
    out.push({ id: `12.2.${i + 1}`, title: `compressed binary of ${n} bytes`, steps: [send([binary(deflateMessage(b), { rsv: 4 })])], expect: [echoBinary(b)] });
  });
  const t = ascii(10_000, 1);
  out.push(
    { id: 'c1m', title: 'compressed text in 7-byte fragments (RSV1 on the first only)', steps: [send(fragments(OP.text, deflateMessage(t), 7, { rsv: 4 }))], expect: [echoText(t)] },
    { id: 'c1m', title: 'compressed and plain messages interleaved', steps: [send([text(deflateMessage('one'), { rsv: 4 }), text('two'), binary(deflateMessage('three'), { rsv: 4 })])], expect: [echoText('one'), echoText('two'), echoBinary('three')] },
    { id: 'c1m', title: 'RSV1 on a continuation: 1002', steps: [send([text(deflateMessage('ab'), { rsv: 4, fin: false }), cont('', true, { rsv: 4 })])], close: 1002 },
    { id: 'c1m', title: 'RSV1 on a ping: 1002', steps: [send([ping('x', { rsv: 4 })])], close: 1002 },
    { id: 'c1m', title: 'compressed data that does not inflate: 1007', steps: [send([text(hex('ffffffff'), { rsv: 4 })])], close: 1007 },
    { id: 'c1m', title: 'compressed text that inflates to invalid UTF-8: 1007', steps: [send([text(deflateMessage(hex('cebae1bdb9cf83cebcceb5eda080')), { rsv: 4 })])], close: 1007 },
  );
  return out;
}

/** Inflate the server's compressed messages (RSV1 on their first frame), with context takeover unless refused. */
function inflateServerMessages(frames: readonly ServerFrame[], takeover: boolean): ServerFrame[] {
  let history = Buffer.alloc(0);
  const out: ServerFrame[] = [];
  let compressed = false;
  for (const f of frames) {
    if (f.opcode === OP.text || f.opcode === OP.binary) compressed = (f.rsv & 4) !== 0;
    if (f.opcode >= 0x8 || !compressed) {
      out.push(f);
      continue;
    }
    out.push({ ...f, rsv: 0, payload: f.payload });
    if (!f.fin) continue;
    // Join this message's frames, inflate, put it back as one frame.
    let start = out.length - 1;
    while (out[start].opcode === OP.cont) start--;
    const parts = out.splice(start);
    const wire = Buffer.concat([...parts.map((p) => p.payload), TRAILER]);
    const plain = inflateRawSync(wire, { finishFlush: zc.Z_SYNC_FLUSH, ...(takeover && history.length > 0 ? { dictionary: history } : {}) });
    if (takeover) history = Buffer.concat([history, plain]).subarray(-32 * KiB);
    out.push({ fin: true, rsv: 0, opcode: parts[0].opcode, payload: plain });
  }
  return out;
}

// ---- the runner ---------------------------------------------------------------------------

interface Servers {
  main: TestServer;
  small: TestServer;
  deflate: TestServer;
}

async function runCase(port: number, spec: Case): Promise<void> {
  const c = spec.lazy ? { ...spec, ...spec.lazy() } : spec;
  const ws = await RawWebSocket.connect(port, c.deflate === undefined ? {} : { headers: { 'Sec-WebSocket-Extensions': c.deflate }, allowRsv1: true });
  try {
    if (c.deflate !== undefined) assert.match(ws.response.headers.get('sec-websocket-extensions') ?? '', /^permessage-deflate\b/, 'the offer is accepted');
    for (const step of c.steps) {
      if (step === 'barrier') await ws.barrier();
      else await ws.send(step.frames.map((f) => (Buffer.isBuffer(f) ? f : encodeFrame(f as ClientFrame))), step);
    }
    let result: CloseResult;
    if (c.close === undefined) {
      await ws.barrier(); // every answer to the steps is in, and the server is still open
      result = await ws.close(1000);
    } else {
      const isProbe = (f: ServerFrame) => f.opcode === OP.pong && f.payload.toString() === PROBE_PAYLOAD;
      await ws.waitFor(() => ws.serverDone || ws.frames.some(isProbe), 'the close frame');
      assert.ok(!ws.frames.some(isProbe), `the server answered a ping sent after the bytes it must fail on: ${describeFrames(ws.frames)}`);
      result = await ws.waitClose();
    }
    let frames = ws.frames;
    if (c.deflate !== undefined) {
      const takeover = !/server_no_context_takeover/.test(ws.response.headers.get('sec-websocket-extensions') ?? '');
      frames = inflateServerMessages(frames, takeover);
    }
    const context = `frames: ${describeFrames(ws.frames)}`;
    assert.deepEqual(messages(frames).map(show), (c.expect ?? []).map(show), `messages before the close frame; ${context}`);
    const code = c.close === 'empty' ? undefined : (c.close ?? 1000);
    assert.equal(result.code, code, `the close code; ${context}`);
    assert.deepEqual(ws.violations, [], 'the server frames follow RFC 6455');
    assert.ok(ws.closed, 'TCP closed');
    // The server closes TCP first and cleanly after a close handshake or a protocol error
    // (RFC 6455 7.1.1, 7.1.7); we sent nothing after the bytes it had to read.
    assert.ok(result.fin, `TCP closed by a FIN, not ${result.error}`);
  } finally {
    ws.destroy();
  }
}

/** A fresh connection still echoes. */
async function assertHealthy(port: number, deflate?: string): Promise<void> {
  const ws = await RawWebSocket.connect(port, deflate === undefined ? {} : { headers: { 'Sec-WebSocket-Extensions': deflate }, allowRsv1: true });
  try {
    await ws.sendFrames([text('still there?')]);
    await ws.barrier();
    const r = await ws.close(1000);
    let frames = ws.frames;
    if (deflate !== undefined) frames = inflateServerMessages(frames, !/server_no_context_takeover/.test(ws.response.headers.get('sec-websocket-extensions') ?? ''));
    assert.deepEqual(messages(frames).map(show), [show(echoText('still there?'))], 'a fresh connection echoes');
    assert.equal(r.code, 1000);
  } finally {
    ws.destroy();
  }
}

function defineCases(servers: () => Servers, cases: readonly Case[]): void {
  for (const c of cases) {
    test(`${c.id} ${c.title}`, GUARD, async () => {
      const s = servers();
      const srv = c.deflate !== undefined ? s.deflate : c.server === 'small' ? s.small : s.main;
      await runCase(srv.port, c);
      if (typeof c.close === 'number' && PROTOCOL_ERRORS.has(c.close)) await assertHealthy(srv.port, c.deflate);
    });
  }
}

const OFFERS = [
  'permessage-deflate',
  'permessage-deflate; client_max_window_bits',
  'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
  'permessage-deflate; server_max_window_bits=10; client_max_window_bits=10',
];

for (const backend of backends) {
  describe(`WebSocket conformance, Autobahn categories (${backend})`, () => {
    let s: Servers;
    const servers = (): Servers => s;
    before(async () => {
      // The echo of a 16 MiB message is queued whole: above the default maxOutboundBytes
      // (16 MiB), the portable backend would close the connection as a slow consumer.
      const main = await startServer(backend, createHandler({ maxPayload: MAIN_MAX }), { maxOutboundBytes: 2 * MAIN_MAX });
      const small = await startServer(backend, createHandler({ maxPayload: SMALL_MAX }));
      const deflate = await startServer(backend, createWebSocketHandler({
        maxPayload: MAIN_MAX,
        perMessageDeflate: true,
        onMessage(ws, data, isBinary) {
          ws.send(data, isBinary);
        },
      }));
      s = { main, small, deflate };
    });
    after(async () => {
      await Promise.all([s?.main.reactor.close(1000), s?.small.reactor.close(1000), s?.deflate.reactor.close(1000)]);
    });

    describe('1 framing', () => defineCases(servers, framingCases()));
    describe('2 pings and pongs', () => defineCases(servers, pingCases()));
    describe('3 reserved bits', () => defineCases(servers, rsvCases()));
    describe('4 opcodes', () => defineCases(servers, opcodeCases()));
    describe('5 fragmentation', () => defineCases(servers, fragmentationCases()));
    describe('6 UTF-8', () => {
      const { plain, tables } = utf8Cases();
      defineCases(servers, plain);
      for (const c of tables) {
        test(`${c.id} ${c.title}`, GUARD, async () => {
          for (const run of utf8Runs(c)) {
            await runCase(s.main.port, run).catch((err: Error) => {
              throw new Error(`${c.id} (${run.title}): ${err.message}`, { cause: err });
            });
          }
          if (!isUtf8(c.data)) await assertHealthy(s.main.port);
        });
      }
    });
    describe('7 close handling', () => defineCases(servers, closeCases()));
    describe('9 limits and large messages', () => defineCases(servers, limitCases()));
    describe('10 misc', () => defineCases(servers, miscCases()));
    describe('12/13 permessage-deflate', () => {
      for (const offer of OFFERS) {
        describe(offer, () => defineCases(servers, deflateCases().map((c) => ({ ...c, deflate: offer }))));
      }
    });

    test('reports no engine errors', () => {
      assert.deepEqual([...s.main.errors, ...s.small.errors, ...s.deflate.errors].map(String), []);
    });
  });
}
