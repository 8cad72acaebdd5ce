/**
 * Property tests for the WebSocket core. Bounded: FUZZ_RUNS runs per property (default 200).
 *
 *   - any bytes, and any sequence of plausible frames, only ever throw WsProtocolError, and
 *     give the same events and error however they are split;
 *   - encoded messages (fragmented, with control frames between) round-trip through the
 *     receiver under any split;
 *   - the UTF-8 validator agrees with buffer.isUtf8 and rejects at the first impossible byte;
 *   - masking at any offset, length and phase equals the byte-wise definition.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import {
  FrameReceiver,
  Opcode,
  UTF8_ACCEPT,
  UTF8_REJECT,
  WsProtocolError,
  encodeClose,
  encodeFrame,
  encodePing,
  encodePong,
  validateUtf8,
  type FrameReceiverOptions,
} from '../../src/protocols/ws/index.js';
import { copyMasked, maskInPlace } from '../../src/protocols/ws/mask.js';

const numRuns = Number(process.env.FUZZ_RUNS ?? 200);
const show = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Cut `bytes` (a fresh copy) at the given points. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const b = Buffer.from(bytes);
  const at = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...at, b.length]) {
    out.push(b.subarray(prev, c));
    prev = c;
  }
  return out;
}

/** Events of a receiver over `chunks`; the only acceptable exception is WsProtocolError. */
function run(options: FrameReceiverOptions, chunks: Uint8Array[]): string[] {
  const events: string[] = [];
  const r = new FrameReceiver(
    {
      onMessage: (p, bin) => events.push(`${bin ? 'binary' : 'text'} ${show(p)}`),
      onCompressedMessage: (p, bin) => events.push(`compressed ${bin} ${show(p)}`),
      onPing: (p) => events.push(`ping ${show(p)}`),
      onPong: (p) => events.push(`pong ${show(p)}`),
      onClose: (code, reason) => events.push(`close ${code} ${reason}`),
    },
    options,
  );
  for (const c of chunks) {
    try {
      r.execute(c);
    } catch (err) {
      if (!(err instanceof WsProtocolError)) throw err;
      assert.ok([1002, 1007, 1009].includes(err.closeCode));
      events.push(`error ${err.code}`);
      break;
    }
  }
  return events;
}

const optionsArb: fc.Arbitrary<FrameReceiverOptions> = fc.record({
  role: fc.constantFrom('server' as const, 'client' as const),
  maxPayload: fc.integer({ min: 0, max: 400 }),
  maxFragments: fc.integer({ min: 1, max: 8 }),
  extensions: fc.record({ rsv1: fc.boolean() }),
});

/** A frame that is often, but not always, valid: any header bits, any length form. */
const frameArb = fc.record({
  fin: fc.boolean(),
  rsv: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, fc.integer({ min: 0, max: 7 })),
  opcode: fc.oneof({ arbitrary: fc.constantFrom(0, 1, 2, 8, 9, 10), weight: 4 }, fc.integer({ min: 0, max: 15 })),
  wrongMask: fc.oneof({ arbitrary: fc.constant(false), weight: 15 }, fc.constant(true)),
  form: fc.constantFrom(7, 16, 64),
  payload: fc.oneof(fc.uint8Array({ maxLength: 140 }), fc.string({ unit: 'binary', maxLength: 40 }).map((s) => Buffer.from(s))),
  key: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  truncate: fc.oneof({ arbitrary: fc.constant(-1), weight: 7 }, fc.nat()),
});

/** The bytes of a `frameArb` frame sent to a receiver of `role`. */
function build(f: (typeof frameArb) extends fc.Arbitrary<infer T> ? T : never, role: 'server' | 'client'): Buffer {
  const masked = (role === 'server') !== f.wrongMask;
  const n = f.payload.length;
  const head = [(f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode];
  const mb = masked ? 0x80 : 0;
  if (f.form === 7 && n < 126) head.push(mb | n);
  else if (f.form !== 64 && n < 65536) head.push(mb | 126, n >> 8, n & 255);
  else head.push(mb | 127, 0, 0, 0, 0, 0, 0, n >> 8, n & 255);
  const body = masked ? Buffer.from(f.payload).map((b, i) => b ^ f.key[i & 3]) : Buffer.from(f.payload);
  const bytes = Buffer.concat([Buffer.from(head), masked ? Buffer.from(f.key) : Buffer.alloc(0), body]);
  return f.truncate < 0 ? bytes : bytes.subarray(0, f.truncate % (bytes.length + 1));
}

test('arbitrary bytes only throw WsProtocolError, the same under any split', () => {
  fc.assert(
    fc.property(optionsArb, fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(), { maxLength: 6 }), (options, bytes, cuts) => {
      const whole = run(options, [Buffer.from(bytes)]);
      assert.deepEqual(run(options, split(bytes, cuts)), whole);
    }),
    { numRuns },
  );
});

test('plausible frame sequences only throw WsProtocolError, the same under any split', () => {
  fc.assert(
    fc.property(optionsArb, fc.array(frameArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 8 }), (options, frames, cuts) => {
      const bytes = Buffer.concat(frames.map((f) => build(f, options.role)));
      const whole = run(options, [Buffer.from(bytes)]);
      assert.deepEqual(run(options, split(bytes, cuts)), whole);
      const byByte = Array.from({ length: bytes.length }, (_, i) => Buffer.from(bytes.subarray(i, i + 1)));
      assert.deepEqual(run(options, byByte), whole);
    }),
    { numRuns },
  );
});

/** A message, its fragment boundaries, and control frames to slip between fragments. */
const messageArb = fc.record({
  data: fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.uint8Array({ maxLength: 3000 }),
  ),
  cuts: fc.array(fc.nat(), { maxLength: 5 }),
  controls: fc.array(fc.record({ ping: fc.boolean(), payload: fc.uint8Array({ maxLength: 125 }) }), { maxLength: 3 }),
});

test('encoded messages round-trip under any split', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('server' as const, 'client' as const),
      fc.array(messageArb, { maxLength: 5 }),
      fc.option(fc.record({ code: fc.constantFrom(1000, 1001, 1011, 3000, 4999), reason: fc.string({ maxLength: 30 }) })),
      fc.array(fc.nat(), { maxLength: 10 }),
      (role, messages, close, cuts) => {
        const mask = role === 'server' ? (true as const) : undefined;
        const frames: Buffer[] = [];
        const expected: string[] = [];
        for (const m of messages) {
          const isText = typeof m.data === 'string';
          const bytes = isText ? Buffer.from(m.data as string) : Buffer.from(m.data as Uint8Array);
          const pieces = split(bytes, m.cuts);
          pieces.forEach((piece, i) => {
            const opcode = i > 0 ? Opcode.Continuation : isText ? Opcode.Text : Opcode.Binary;
            frames.push(encodeFrame(opcode, piece, { fin: i === pieces.length - 1, mask }));
            const c = m.controls[i];
            if (c !== undefined && i < pieces.length - 1) {
              frames.push(c.ping ? encodePing(c.payload, { mask }) : encodePong(c.payload, { mask }));
              expected.push(`${c.ping ? 'ping' : 'pong'} ${show(c.payload)}`);
            }
          });
          expected.push(`${isText ? 'text' : 'binary'} ${show(bytes)}`);
        }
        if (close !== null) {
          const reason = Buffer.from(close.reason).subarray(0, 123).toString();
          const valid = Buffer.byteLength(reason) <= 123 ? reason : '';
          frames.push(encodeClose(close.code, valid, { mask }));
          expected.push(`close ${close.code} ${valid}`);
        }
        const all = Buffer.concat(frames);
        assert.deepEqual(run({ role }, split(all, cuts)), expected);
      },
    ),
    { numRuns },
  );
});

/** Oracle: can `prefix` still begin some valid UTF-8 text? */
function viable(prefix: Uint8Array): boolean {
  const tails = [[], [0x80], [0xa0], [0x90], [0x80, 0x80], [0xa0, 0x80], [0x90, 0x80], [0x80, 0x80, 0x80], [0x90, 0x80, 0x80]];
  return tails.some((t) => isUtf8(Buffer.concat([prefix, Buffer.from(t)])));
}

const utf8ish = fc.array(
  fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0x80, max: 0xbf }), fc.integer({ min: 0xc0, max: 0xff })),
  { maxLength: 40 },
);

test('UTF-8: agrees with buffer.isUtf8 and rejects at the first impossible byte', () => {
  fc.assert(
    fc.property(utf8ish, fc.nat({ max: 300 }), fc.array(fc.nat(), { maxLength: 4 }), (arr, pad, cuts) => {
      const bytes = Buffer.concat([Buffer.alloc(pad, 0x61), Buffer.from(arr)]);
      assert.equal(validateUtf8(UTF8_ACCEPT, bytes) === UTF8_ACCEPT, isUtf8(bytes));
      let s = UTF8_ACCEPT;
      for (const piece of split(bytes, cuts)) s = validateUtf8(s, piece);
      assert.equal(s === UTF8_ACCEPT, isUtf8(bytes));
      let rejectedAt = -1;
      s = UTF8_ACCEPT;
      for (let i = 0; i < bytes.length && rejectedAt < 0; i++) {
        s = validateUtf8(s, bytes, i, i + 1);
        if (s === UTF8_REJECT) rejectedAt = i;
      }
      let impossibleAt = -1;
      for (let i = 0; i < bytes.length && impossibleAt < 0; i++) if (!viable(bytes.subarray(0, i + 1))) impossibleAt = i;
      assert.equal(rejectedAt, impossibleAt);
    }),
    { numRuns },
  );
});

test('masking at any offset, length and phase equals the byte-wise definition', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 200 }),
      fc.nat(),
      fc.nat(),
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 3 }),
      fc.nat({ max: 7 }),
      (data, a, b, key, phase, dstOffset) => {
        const start = data.length === 0 ? 0 : a % data.length;
        const end = start + (data.length === 0 ? 0 : b % (data.length - start + 1));
        const k = [key >>> 24, (key >>> 16) & 255, (key >>> 8) & 255, key & 255];
        const want = Buffer.from(data);
        for (let i = start; i < end; i++) want[i] ^= k[(phase + i - start) & 3];
        const got = Buffer.from(data);
        assert.equal(maskInPlace(got, start, end, key, phase), (phase + end - start) & 3);
        assert.deepEqual(got, want);
        const dst = Buffer.alloc(dstOffset + end - start);
        copyMasked(data, start, end, dst, dstOffset, key, phase);
        assert.deepEqual(dst.subarray(dstOffset), want.subarray(start, end));
      },
    ),
    { numRuns },
  );
});
