/**
 * Frame encoders: exact bytes against hex fixtures (RFC 6455 5.7), argument checks, and
 * round trips through FrameReceiver split at every byte.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FrameReceiver,
  Opcode,
  encodeClose,
  encodeFrame,
  encodeHeader,
  encodePing,
  encodePong,
  frameHeaderSize,
  maskPayload,
  writeFrameHeader,
  type FrameReceiverOptions,
} from '../../src/protocols/ws/index.js';

const KEY = Buffer.from('37fa213d', 'hex');
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const show = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const pattern = (n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 255));
const misuse = { code: 'ERR_C1M_WS_INVALID_ARGUMENT' };

describe('encodeFrame', () => {
  test('RFC 6455 5.7 examples', () => {
    assert.equal(show(encodeFrame(Opcode.Text, 'Hello')), '810548656c6c6f');
    assert.equal(show(encodeFrame(Opcode.Text, 'Hello', { mask: KEY })), '818537fa213d7f9f4d5158');
    assert.equal(show(encodeFrame(Opcode.Text, 'Hel', { fin: false })), '010348656c');
    assert.equal(show(encodeFrame(Opcode.Continuation, 'lo')), '80026c6f');
    assert.equal(show(encodePing('Hello')), '890548656c6c6f');
    assert.equal(show(encodePong(Buffer.from('Hello'), { mask: KEY })), '8a8537fa213d7f9f4d5158');
    assert.equal(show(encodeFrame(Opcode.Binary, pattern(256))), '827e0100' + show(pattern(256)));
    assert.equal(show(encodeFrame(Opcode.Binary, pattern(65536))), '827f0000000000010000' + show(pattern(65536)));
  });
  test('length encodings at their boundaries', () => {
    for (const [n, head] of [[0, '8200'], [125, '827d'], [126, '827e007e'], [65535, '827effff'], [65536, '827f0000000000010000']] as const) {
      const f = encodeFrame(Opcode.Binary, pattern(n));
      assert.equal(show(f.subarray(0, head.length / 2)), head);
      assert.equal(f.length, head.length / 2 + n);
      assert.equal(frameHeaderSize(n, false), head.length / 2);
      assert.equal(frameHeaderSize(n, true), head.length / 2 + 4);
    }
  });
  test('RSV1, strings with multi-byte characters, the payload is copied', () => {
    assert.equal(show(encodeFrame(Opcode.Text, hex('f248'), { rsv1: true })), 'c102f248');
    assert.equal(show(encodeFrame(Opcode.Text, 'κ€')), '8105cebae282ac');
    const payload = Buffer.from('abc');
    const f = encodeFrame(Opcode.Binary, payload);
    payload.fill(0);
    assert.equal(show(f), '8203616263');
  });
  test('random masking keys from the pool, across refills', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const f = encodeFrame(Opcode.Binary, pattern(40), { mask: true });
      assert.equal(f[1], 0x80 | 40);
      keys.add(show(f.subarray(2, 6)));
      const body = Buffer.from(f.subarray(6));
      maskPayload(body, f.subarray(2, 6));
      assert.deepEqual(body, pattern(40));
    }
    assert.ok(keys.size > 2990);
  });
  test('misuse throws ERR_C1M_WS_INVALID_ARGUMENT', () => {
    assert.throws(() => encodeFrame(3 as Opcode, 'x'), misuse);
    assert.throws(() => encodePing(pattern(126)), { ...misuse, message: /125/ });
    assert.throws(() => encodeFrame(Opcode.Ping, 'x', { fin: false }), misuse);
    assert.throws(() => encodeFrame(Opcode.Pong, 'x', { rsv1: true }), misuse);
    assert.throws(() => encodeFrame(Opcode.Continuation, 'x', { rsv1: true }), misuse);
    assert.throws(() => encodeFrame(Opcode.Text, 'x', { mask: KEY.subarray(0, 3) }), misuse);
  });
});

describe('encodeHeader and writeFrameHeader', () => {
  test('header plus payload in a writev equals encodeFrame', () => {
    for (const n of [0, 5, 125, 126, 65535, 65536]) {
      const p = pattern(n);
      assert.deepEqual(Buffer.concat([encodeHeader(Opcode.Binary, n), p]), encodeFrame(Opcode.Binary, p));
      const masked = Buffer.from(p);
      maskPayload(masked, KEY);
      assert.deepEqual(Buffer.concat([encodeHeader(Opcode.Binary, n, { mask: KEY }), masked]), encodeFrame(Opcode.Binary, p, { mask: KEY }));
    }
    assert.equal(show(encodeHeader(Opcode.Text, 3, { fin: false, rsv1: true })), '4103');
  });
  test('64-bit lengths beyond 2^32', () => {
    const target = Buffer.alloc(12);
    assert.equal(writeFrameHeader(target, 2, Opcode.Binary, 2 ** 32 + 5), 12);
    assert.equal(show(target), '0000827f0000000100000005');
  });
  test('misuse throws', () => {
    assert.throws(() => encodeHeader(Opcode.Binary, 4, { mask: true }), { ...misuse, message: /explicit mask key/ });
    assert.throws(() => writeFrameHeader(Buffer.alloc(3), 0, Opcode.Binary, 126), { ...misuse, message: /does not fit/ });
    assert.throws(() => encodeHeader(Opcode.Binary, -1), misuse);
    assert.throws(() => encodeHeader(Opcode.Binary, 1.5), misuse);
  });
});

describe('encodeClose', () => {
  test('fixtures', () => {
    assert.equal(show(encodeClose()), '8800');
    assert.equal(show(encodeClose(1000)), '880203e8');
    assert.equal(show(encodeClose(1001, 'bye')), '880503e9627965');
    assert.equal(show(encodeClose(1000, '', { mask: KEY })), '888237fa213d3412');
    assert.equal(encodeClose(4999, 'r'.repeat(123)).length, 2 + 125);
  });
  test('misuse throws', () => {
    assert.throws(() => encodeClose(1000, 'r'.repeat(124)), { ...misuse, message: /123/ });
    assert.throws(() => encodeClose(1000, 'κ'.repeat(62)), { ...misuse, message: /123/ });
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 2000, 5000, 1000.5]) assert.throws(() => encodeClose(code), misuse);
    assert.throws(() => encodeClose(undefined, 'why'), misuse);
  });
});

/** Feed `bytes` whole, split at every offset (or a sample for big inputs), and byte by byte. */
function roundTrip(bytes: Buffer, options: FrameReceiverOptions, expected: string[]): void {
  const run = (chunks: Uint8Array[]): string[] => {
    const events: string[] = [];
    const r = new FrameReceiver(
      {
        onMessage: (p, bin) => events.push(`${bin ? 'binary' : 'text'} ${show(p)}`),
        onPing: (p) => events.push(`ping ${show(p)}`),
        onPong: (p) => events.push(`pong ${show(p)}`),
        onClose: (code, reason) => events.push(`close ${code} ${reason}`),
      },
      options,
    );
    for (const c of chunks) r.execute(c);
    return events;
  };
  assert.deepEqual(run([Buffer.from(bytes)]), expected);
  const step = bytes.length > 2048 ? 499 : 1;
  for (let at = 1; at < bytes.length; at += step) {
    const b = Buffer.from(bytes);
    assert.deepEqual(run([b.subarray(0, at), b.subarray(at)]), expected, `split at ${at}`);
  }
  const b = Buffer.from(bytes);
  assert.deepEqual(run(Array.from({ length: b.length }, (_, i) => b.subarray(i, i + 1))), expected);
}

describe('round trip through FrameReceiver', () => {
  for (const role of ['server', 'client'] as const) {
    const mask = role === 'server' ? (true as const) : undefined;
    test(`${role}: messages of many sizes`, () => {
      for (const n of [0, 1, 3, 4, 125, 126, 300, 65536, 70001]) {
        const p = pattern(n);
        roundTrip(encodeFrame(Opcode.Binary, p, { mask }), { role }, [`binary ${show(p)}`]);
      }
      const s = 'héllo wörld ✓ 😀 '.repeat(20);
      roundTrip(encodeFrame(Opcode.Text, s, { mask }), { role }, [`text ${Buffer.from(s).toString('hex')}`]);
    });
    test(`${role}: fragments with control frames between, then close`, () => {
      const bytes = Buffer.concat([
        encodeFrame(Opcode.Text, 'ab€', { fin: false, mask }),
        encodePing('p', { mask }),
        encodeFrame(Opcode.Continuation, '', { fin: false, mask }),
        encodePong('', { mask }),
        encodeFrame(Opcode.Continuation, 'cd', { mask }),
        encodeClose(1001, 'going away', { mask }),
      ]);
      roundTrip(bytes, { role }, ['ping 70', 'pong ', `text ${Buffer.from('ab€cd').toString('hex')}`, 'close 1001 going away']);
    });
  }
});
