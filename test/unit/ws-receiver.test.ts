/**
 * FrameReceiver: byte fixtures, each fed whole, split in two at every offset, and one byte
 * at a time, with identical events required. Cases follow the Autobahn TestSuite categories
 * (1 framing, 2 ping/pong, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close,
 * 9 limits) plus masking and lifetime rules.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FrameReceiver,
  WsProtocolError,
  type FrameHandler,
  type FrameReceiverOptions,
} from '../../src/protocols/ws/index.js';

const KEY = Buffer.from('37fa213d', 'hex');
const SERVER: FrameReceiverOptions = { role: 'server' };
const CLIENT: FrameReceiverOptions = { role: 'client' };

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const show = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A frame built independently of the sender: `rsv` is the 3 RSV bits (4 = RSV1). */
function frame(
  opcode: number,
  payload: Uint8Array | string = '',
  o: { fin?: boolean; rsv?: number; masked?: boolean } = {},
): Buffer {
  const p = Buffer.from(payload);
  const mb = o.masked ? 0x80 : 0;
  const head = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
  if (p.length < 126) head.push(mb | p.length);
  else if (p.length < 65536) head.push(mb | 126, p.length >> 8, p.length & 255);
  else head.push(mb | 127, 0, 0, 0, 0, p.length >>> 24, (p.length >> 16) & 255, (p.length >> 8) & 255, p.length & 255);
  if (!o.masked) return Buffer.concat([Buffer.from(head), p]);
  return Buffer.concat([Buffer.from(head), KEY, p.map((b, i) => b ^ KEY[i & 3])]);
}

/** Run a receiver over `chunks`; events as strings, the error (if any) last. */
function feed(options: FrameReceiverOptions, chunks: Uint8Array[]): string[] {
  const events: string[] = [];
  const handler: FrameHandler = {
    onMessage: (p, bin) => events.push(bin ? `binary ${show(p)}` : `text ${JSON.stringify(Buffer.from(p).toString())}`),
    onCompressedMessage: (p, bin) => events.push(`compressed ${bin ? 'binary' : 'text'} ${show(p)}`),
    onPing: (p) => events.push(`ping ${show(p)}`),
    onPong: (p) => events.push(`pong ${show(p)}`),
    onClose: (code, reason) => events.push(`close ${code} ${JSON.stringify(reason)}`),
  };
  const r = new FrameReceiver(handler, options);
  for (const chunk of chunks) {
    try {
      r.execute(chunk);
    } catch (err) {
      assert.ok(err instanceof WsProtocolError, `not a WsProtocolError: ${err}`);
      events.push(`error ${err.code} ${err.closeCode}`);
      assert.equal(r.state, 'failed');
      r.execute(hex('8100')); // dead: ignored
      break;
    }
  }
  return events;
}

/** Offsets to split at: all of them for small inputs, headers/ends plus a stride for big ones. */
function offsets(n: number): number[] {
  if (n <= 2048) return Array.from({ length: Math.max(0, n - 1) }, (_, i) => i + 1);
  const set = new Set<number>();
  for (let i = 1; i < 40; i++) set.add(i);
  for (let i = n - 40; i < n; i++) set.add(i);
  for (let i = 40; i < n - 40; i += 997) set.add(i);
  return [...set];
}

/** Assert `input` yields `expected` whole, split at every offset, and byte by byte. */
function check(input: Buffer, options: FrameReceiverOptions, expected: string[]): void {
  assert.deepEqual(feed(options, [Buffer.from(input)]), expected, 'whole');
  for (const at of offsets(input.length)) {
    const b = Buffer.from(input);
    assert.deepEqual(feed(options, [b.subarray(0, at), b.subarray(at)]), expected, `split at ${at}`);
  }
  const b = Buffer.from(input);
  const bytes = Array.from({ length: b.length }, (_, i) => b.subarray(i, i + 1));
  assert.deepEqual(feed(options, bytes), expected, 'byte by byte');
}

type Build = (opcode: number, payload?: Uint8Array | string, o?: { fin?: boolean; rsv?: number }) => Buffer;

/** The same frames, masked for a server receiver and unmasked for a client one. */
function checkBoth(frames: (f: Build) => Buffer[], expected: string[], extra: Partial<FrameReceiverOptions> = {}): void {
  for (const masked of [true, false]) {
    const f: Build = (op, p, o) => frame(op, p, { ...o, masked });
    check(Buffer.concat(frames(f)), { ...extra, role: masked ? 'server' : 'client' }, expected);
  }
}

const err = (code: string, close: number): string => `error ERR_C1M_WS_${code} ${close}`;
const text = (s: string): string => `text ${JSON.stringify(s)}`;
const pattern = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 255));

describe('RFC 6455 5.7 examples', () => {
  test('single-frame unmasked text', () => check(hex('810548656c6c6f'), CLIENT, [text('Hello')]));
  test('single-frame masked text', () => check(hex('818537fa213d7f9f4d5158'), SERVER, [text('Hello')]));
  test('fragmented unmasked text', () => check(hex('010348656c 80026c6f'), CLIENT, [text('Hello')]));
  test('unmasked ping', () => check(hex('890548656c6c6f'), CLIENT, ['ping 48656c6c6f']));
  test('masked pong', () => check(hex('8a8537fa213d7f9f4d5158'), SERVER, ['pong 48656c6c6f']));
  test('256 bytes binary, 16-bit length', () => {
    check(Buffer.concat([hex('827e0100'), pattern(256)]), CLIENT, [`binary ${show(pattern(256))}`]);
  });
  test('64 KiB binary, 64-bit length', () => {
    check(Buffer.concat([hex('827f0000000000010000'), pattern(65536)]), CLIENT, [`binary ${show(pattern(65536))}`]);
  });
});

describe('1 framing', () => {
  for (const n of [0, 1, 125, 126, 127, 128, 4097, 65535, 65536]) {
    test(`text and binary of ${n} bytes`, () => {
      const s = 'x'.repeat(n);
      checkBoth((f) => [f(1, s)], [text(s)]);
      checkBoth((f) => [f(2, pattern(n))], [`binary ${show(pattern(n))}`]);
    });
  }
  test('many frames in one read', () => {
    checkBoth((f) => [f(1, 'a'), f(2, 'b'), f(9, ''), f(1, ''), f(10, 'c')], [text('a'), 'binary 62', 'ping ', text(''), 'pong 63']);
  });
  test('a whole frame in one read is delivered as a view of that read', () => {
    const input = frame(2, pattern(300), { masked: true });
    let seen: Uint8Array | undefined;
    new FrameReceiver({ onMessage: (p) => (seen = p) }, SERVER).execute(input);
    assert.equal(seen?.buffer, input.buffer);
    assert.deepEqual(Buffer.from(seen!), pattern(300));
  });
});

describe('2 ping/pong', () => {
  test('empty ping', () => check(hex('8900'), CLIENT, ['ping ']));
  test('ping with text and binary payloads', () => {
    checkBoth((f) => [f(9, 'Hello, world!'), f(9, hex('00fffefdfcfb00ff'))], [`ping ${show(Buffer.from('Hello, world!'))}`, 'ping 00fffefdfcfb00ff']);
  });
  test('ping with 125 bytes', () => checkBoth((f) => [f(9, pattern(125))], [`ping ${show(pattern(125))}`]));
  test('ping with 126 bytes fails on the length byte', () => check(hex('897e007e'), CLIENT, [err('CONTROL_FRAME_TOO_LONG', 1002)]));
  test('unsolicited pong', () => checkBoth((f) => [f(10, 'unsolicited')], [`pong ${show(Buffer.from('unsolicited'))}`]));
  test('ten pings in a row', () => {
    checkBoth((f) => Array.from({ length: 10 }, (_, i) => f(9, `p${i}`)), Array.from({ length: 10 }, (_, i) => `ping ${show(Buffer.from(`p${i}`))}`));
  });
});

describe('3 reserved bits', () => {
  test('RSV1 on text without an extension', () => check(hex('c10548656c6c6f'), CLIENT, [err('RESERVED_BITS', 1002)]));
  for (const rsv of [1, 2, 3, 5, 6, 7]) {
    test(`RSV ${rsv} after a valid message`, () => {
      checkBoth((f) => [f(1, 'Hello'), f(2, 'x', { rsv }), f(9, '')], [text('Hello'), err('RESERVED_BITS', 1002)]);
      checkBoth((f) => [f(9, '', { rsv })], [err('RESERVED_BITS', 1002)]);
      checkBoth((f) => [f(8, '', { rsv })], [err('RESERVED_BITS', 1002)]);
    });
  }
  test('with extensions.rsv1, RSV1 marks a compressed message', () => {
    const ext = { extensions: { rsv1: true } };
    checkBoth((f) => [f(1, hex('f248cdc9c90700'), { rsv: 4 })], ['compressed text f248cdc9c90700'], ext);
    checkBoth((f) => [f(2, 'ab', { rsv: 4, fin: false }), f(9, 'p'), f(0, 'cd')], ['ping 70', 'compressed binary 61626364'], ext);
    checkBoth((f) => [f(1, hex('ff'), { rsv: 4 }), f(1, 'ok')], ['compressed text ff', text('ok')], ext);
  });
  test('with extensions.rsv1, RSV1 stays forbidden on continuations and control frames', () => {
    const ext = { extensions: { rsv1: true } };
    checkBoth((f) => [f(1, 'a', { rsv: 4, fin: false }), f(0, 'b', { rsv: 4 })], [err('RESERVED_BITS', 1002)], ext);
    checkBoth((f) => [f(9, '', { rsv: 4 })], [err('RESERVED_BITS', 1002)], ext);
    checkBoth((f) => [f(1, '', { rsv: 2 })], [err('RESERVED_BITS', 1002)], ext);
  });
});

describe('4 opcodes', () => {
  for (const op of [3, 4, 5, 6, 7, 11, 12, 13, 14, 15]) {
    test(`reserved opcode ${op}`, () => {
      checkBoth((f) => [f(1, 'Hello'), f(op, 'x'), f(9, '')], [text('Hello'), err('INVALID_OPCODE', 1002)]);
    });
  }
  test('fixture: opcode 3 with empty payload', () => check(hex('8300'), CLIENT, [err('INVALID_OPCODE', 1002)]));
});

describe('5 fragmentation', () => {
  test('fragmented ping and pong', () => {
    checkBoth((f) => [f(9, 'frag', { fin: false }), f(0, 'ment')], [err('FRAGMENTED_CONTROL_FRAME', 1002)]);
    checkBoth((f) => [f(10, 'frag', { fin: false })], [err('FRAGMENTED_CONTROL_FRAME', 1002)]);
  });
  test('text in two and in many fragments', () => {
    checkBoth((f) => [f(1, 'frag', { fin: false }), f(0, 'ment')], [text('fragment')]);
    checkBoth((f) => [f(1, 'f', { fin: false }), ...'ragmen'.split('').map((c) => f(0, c, { fin: false })), f(0, 't')], [text('fragment')]);
  });
  test('empty fragments', () => {
    check(hex('0100 0000 8000'), CLIENT, [text('')]);
    checkBoth((f) => [f(2, '', { fin: false }), f(0, 'x', { fin: false }), f(0, '')], ['binary 78']);
  });
  test('control frames between fragments', () => {
    checkBoth((f) => [f(1, 'fr', { fin: false }), f(9, '1'), f(0, 'ag', { fin: false }), f(10, '2'), f(0, 'ment')], ['ping 31', 'pong 32', text('fragment')]);
  });
  test('large fragments grow the assembly buffer', () => {
    const parts = [pattern(70000), pattern(3), pattern(130000)];
    checkBoth((f) => [f(2, parts[0], { fin: false }), f(0, parts[1], { fin: false }), f(9, 'p'), f(0, parts[2])], ['ping 70', `binary ${show(Buffer.concat(parts))}`]);
  });
  test('continuation with nothing to continue', () => {
    check(hex('800548656c6c6f'), CLIENT, [err('UNEXPECTED_CONTINUATION', 1002)]);
    checkBoth((f) => [f(0, 'x', { fin: false })], [err('UNEXPECTED_CONTINUATION', 1002)]);
    checkBoth((f) => [f(1, 'a', { fin: false }), f(0, 'b'), f(0, 'c')], [text('ab'), err('UNEXPECTED_CONTINUATION', 1002)]);
  });
  test('new data frame inside a fragmented message', () => {
    checkBoth((f) => [f(1, 'a', { fin: false }), f(1, 'b')], [err('EXPECTED_CONTINUATION', 1002)]);
    checkBoth((f) => [f(2, 'a', { fin: false }), f(9, ''), f(2, 'b', { fin: false })], ['ping ', err('EXPECTED_CONTINUATION', 1002)]);
  });
  test('close inside a fragmented message', () => {
    checkBoth((f) => [f(1, 'a', { fin: false }), f(8, hex('03e8')), f(0, 'b')], ['close 1000 ""']);
  });
});

/** Classic invalid sequences (Markus Kuhn's UTF-8-test.txt, sections 3-5, plus > U+10FFFF). */
const INVALID_UTF8 = [
  '80', 'bf', '80bf', '80bf80', '80bf80bf', '80bf80bf80', '80bf80bf80bf', '80bf80bf80bf80',
  'c020', 'df20', 'e020', 'ef20', 'f020', 'f720', 'f820', 'fb20', 'fc20', 'fd20',
  'c0', 'e080', 'f08080', 'f8808080', 'fc80808080', 'df', 'efbf', 'f7bfbf', 'fbbfbfbf', 'fdbfbfbfbf',
  'c0e080f08080f8808080fc80808080dfefbff7bfbffbbfbfbffdbfbfbfbf',
  'fe', 'ff', 'fefeffff',
  'c0af', 'e080af', 'f08080af', 'f8808080af', 'fc80808080af',
  'c1bf', 'e09fbf', 'f08fbfbf', 'f887bfbfbf', 'fc83bfbfbfbf',
  'c080', 'e08080', 'f0808080', 'f880808080', 'fc8080808080',
  'eda080', 'edadbf', 'edae80', 'edafbf', 'edb080', 'edbe80', 'edbfbf',
  'eda080edb080', 'eda080edbfbf', 'edadbfedb080', 'edafbfedbfbf',
  'f4908080', 'f5808080', 'f7bfbfbf',
  'cebae1bdb9cf83cebcceb5eda080656469746564',
];
/** Valid boundary cases (Kuhn sections 2 and 5.3). */
const VALID_UTF8 = [
  '00', '7f', 'c280', 'dfbf', 'e0a080', 'efbfbf', 'f0908080', 'f48fbfbf',
  'ed9fbf', 'ee8080', 'efbfbd', 'efbfbe', 'efb790', 'cebae1bdb9cf83cebcceb5',
];

describe('6 UTF-8', () => {
  test('valid text in one frame and one fragment per byte', () => {
    for (const h of VALID_UTF8) {
      const s = hex(h).toString();
      checkBoth((f) => [f(1, hex(h))], [text(s)]);
      const bytes = [...hex(h)];
      checkBoth((f) => bytes.map((b, i) => f(i === 0 ? 1 : 0, Buffer.from([b]), { fin: i === bytes.length - 1 })), [text(s)]);
    }
  });
  test('invalid sequences fail with 1007, whole and fragmented, short and long', () => {
    for (const h of INVALID_UTF8) {
      checkBoth((f) => [f(1, hex(h))], [err('INVALID_UTF8', 1007)]);
      const long = Buffer.concat([Buffer.from('a'.repeat(300)), hex(h), Buffer.from('z'.repeat(300))]);
      check(frame(1, long, { masked: true }), SERVER, [err('INVALID_UTF8', 1007)]);
      const bytes = [...hex(h)];
      check(Buffer.concat(bytes.map((b, i) => frame(i === 0 ? 1 : 0, Buffer.from([b]), { fin: i === bytes.length - 1 }))), CLIENT, [err('INVALID_UTF8', 1007)]);
    }
  });
  test('fails fast across fragments, before the message ends', () => {
    // Autobahn 6.4.1: "κόσμε", then F4 90 80 80 (> U+10FFFF), then "edited" never arrives.
    const input = Buffer.concat([frame(1, hex('cebae1bdb9cf83cebcceb5'), { fin: false }), frame(0, hex('f4'), { fin: false }), frame(0, hex('90'), { fin: false })]);
    check(input, CLIENT, [err('INVALID_UTF8', 1007)]);
  });
  test('fails fast inside a frame, before its payload ends', () => {
    // Declares 20 bytes; the 6th (first byte of U+D800) is already impossible.
    check(hex('8114 cebae1bdb9 eda0'), CLIENT, [err('INVALID_UTF8', 1007)]);
    check(Buffer.concat([hex('817e00c8'), Buffer.from('a'.repeat(150)), hex('ff')]), CLIENT, [err('INVALID_UTF8', 1007)]);
  });
  test('text ending inside a character', () => {
    checkBoth((f) => [f(1, hex('cebae1bd'))], [err('INVALID_UTF8', 1007)]);
    checkBoth((f) => [f(1, hex('ce'), { fin: false }), f(0, '')], [err('INVALID_UTF8', 1007)]);
  });
  test('binary messages are not checked', () => checkBoth((f) => [f(2, hex('fffe80'))], ['binary fffe80']));
});

describe('7 close', () => {
  test('empty close, then nothing more is parsed', () => {
    const r = new FrameReceiver({ onMessage: () => assert.fail('parsed after close') }, CLIENT);
    r.execute(hex('8800 810548656c6c6f'));
    assert.equal(r.state, 'closed');
    check(hex('8800 810548656c6c6f'), CLIENT, ['close undefined ""']);
  });
  test('close with code, and with code and reason', () => {
    check(hex('880203e8'), CLIENT, ['close 1000 ""']);
    checkBoth((f) => [f(8, Buffer.concat([hex('0bb8'), Buffer.from('bye κ')]))], ['close 3000 "bye κ"']);
  });
  test('reason of 123 bytes is fine, 124 is too long', () => {
    const ok = Buffer.concat([hex('03e8'), Buffer.from('r'.repeat(123))]);
    checkBoth((f) => [f(8, ok)], [`close 1000 ${JSON.stringify('r'.repeat(123))}`]);
    checkBoth((f) => [f(8, Buffer.concat([ok, Buffer.from('r')]))], [err('CONTROL_FRAME_TOO_LONG', 1002)]);
  });
  test('payload of one byte', () => {
    check(hex('880103'), CLIENT, [err('INVALID_CLOSE_PAYLOAD', 1002)]);
    checkBoth((f) => [f(8, hex('03'))], [err('INVALID_CLOSE_PAYLOAD', 1002)]);
  });
  test('invalid UTF-8 reason', () => {
    check(hex('8806 03e8 cebae1bd'), CLIENT, [err('INVALID_UTF8', 1007)]);
    checkBoth((f) => [f(8, hex('03e8 eda080'))], [err('INVALID_UTF8', 1007)]);
    checkBoth((f) => [f(8, hex('03e8 61ff62'))], [err('INVALID_UTF8', 1007)]);
  });
  test('valid close codes', () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
      checkBoth((f) => [f(8, Buffer.from([code >> 8, code & 255]))], [`close ${code} ""`]);
    }
  });
  test('invalid close codes', () => {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
      checkBoth((f) => [f(8, Buffer.from([code >> 8, code & 255, 0x61]))], [err('INVALID_CLOSE_CODE', 1002)]);
    }
    check(hex('8803 03ed 61'), CLIENT, [err('INVALID_CLOSE_CODE', 1002)]);
  });
});

describe('9 limits', () => {
  test('maxPayload is checked from the header, before any payload', () => {
    const o = { role: 'client', maxPayload: 100 } as const;
    check(hex('81 65'), o, [err('MESSAGE_TOO_BIG', 1009)]); // 101, 7-bit
    check(hex('82 7e 0065'), o, [err('MESSAGE_TOO_BIG', 1009)]); // 101, 16-bit
    check(hex('82 7f 0000000000000065'), o, [err('MESSAGE_TOO_BIG', 1009)]); // 101, 64-bit
    check(hex('82 7f 0000000100000000'), o, [err('MESSAGE_TOO_BIG', 1009)]); // 2^32
    check(hex('82 7f 0000000000100001'), CLIENT, [err('MESSAGE_TOO_BIG', 1009)]); // default 1 MiB
    checkBoth((f) => [f(2, pattern(100))], [`binary ${show(pattern(100))}`], { maxPayload: 100 });
  });
  test('maxPayload counts every fragment of a message', () => {
    checkBoth((f) => [f(1, 'x'.repeat(60), { fin: false }), f(0, 'y'.repeat(41))], [err('MESSAGE_TOO_BIG', 1009)], { maxPayload: 100 });
    checkBoth((f) => [f(1, 'x'.repeat(60), { fin: false }), f(0, 'y'.repeat(40)), f(1, 'z'.repeat(100))], [text('x'.repeat(60) + 'y'.repeat(40)), text('z'.repeat(100))], { maxPayload: 100 });
  });
  test('control frames do not count against maxPayload', () => {
    checkBoth((f) => [f(9, pattern(50))], [`ping ${show(pattern(50))}`], { maxPayload: 10 });
  });
  test('maxFragments', () => {
    checkBoth((f) => [f(1, 'a', { fin: false }), f(0, 'b', { fin: false }), f(0, 'c')], [text('abc')], { maxFragments: 3 });
    checkBoth((f) => [f(1, 'a', { fin: false }), f(0, 'b', { fin: false }), f(0, 'c')], [err('TOO_MANY_FRAGMENTS', 1009)], { maxFragments: 2 });
  });
  test('64-bit length with the most significant bit set', () => {
    check(hex('82 7f 8000000000000000'), CLIENT, [err('INVALID_LENGTH', 1002)]);
    check(hex('82 ff ffffffffffffffff 37fa213d'), SERVER, [err('INVALID_LENGTH', 1002)]);
  });
});

describe('masking', () => {
  test('a server requires masked frames', () => {
    check(hex('810548656c6c6f'), SERVER, [err('MASK_REQUIRED', 1002)]);
    check(hex('8900'), SERVER, [err('MASK_REQUIRED', 1002)]);
  });
  test('a client rejects masked frames', () => check(hex('818537fa213d7f9f4d5158'), CLIENT, [err('UNEXPECTED_MASK', 1002)]));
  test('every key phase and alignment unmasks correctly', () => {
    for (const n of [1, 2, 3, 4, 5, 31, 32, 33, 63, 64, 65, 1000]) {
      check(frame(2, pattern(n), { masked: true }), SERVER, [`binary ${show(pattern(n))}`]);
    }
  });
});

describe('options and lifetime', () => {
  test('options are validated once, with exact messages', () => {
    const h = { onMessage: () => {} };
    assert.throws(() => new FrameReceiver(h, {} as FrameReceiverOptions), { code: 'ERR_C1M_INVALID_OPTION', message: /role/ });
    assert.throws(() => new FrameReceiver(h, { role: 'server', maxPayload: -1 }), { code: 'ERR_C1M_INVALID_OPTION', message: /maxPayload/ });
    assert.throws(() => new FrameReceiver(h, { role: 'server', maxFragments: 0 }), { code: 'ERR_C1M_INVALID_OPTION', message: /maxFragments/ });
    assert.throws(() => new FrameReceiver(h, { role: 'server', extensions: { rsv1: true } }), { code: 'ERR_C1M_INVALID_OPTION', message: /onCompressedMessage/ });
  });
  test('a throwing callback propagates and leaves the receiver failed', () => {
    const r = new FrameReceiver({ onMessage: () => { throw new Error('boom'); } }, CLIENT);
    assert.throws(() => r.execute(hex('8100 8100')), /boom/);
    assert.equal(r.state, 'failed');
    r.execute(hex('8100'));
  });
  test('state is open while parsing', () => {
    const r = new FrameReceiver({ onMessage: () => {} }, CLIENT);
    r.execute(hex('81'));
    assert.equal(r.state, 'open');
  });
});
