/**
 * Streaming UTF-8 validation: Markus Kuhn's UTF-8-test.txt cases, exhaustive short sequences
 * against Node's own `buffer.isUtf8`, and rejection at the earliest impossible byte.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { UTF8_ACCEPT, UTF8_REJECT, isValidUtf8, validateUtf8 } from '../../src/protocols/ws/index.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Kuhn sections 1, 2 and 5.3: valid. */
const VALID = [
  '', 'cebae1bdb9cf83cebcceb5', // 1: "κόσμε"
  '00', 'c280', 'e0a080', 'f0908080', // 2.1 first of each length
  '7f', 'dfbf', 'efbfbf', 'f48fbfbf', // 2.2 last of each length (U+10FFFF)
  'ed9fbf', 'ee8080', 'efbfbd', // 2.3 U+D7FF, U+E000, U+FFFD
  'efbfbe', 'efb790', 'efb7af', 'f09fbfbe', 'f48fbfbe', // 5.3 noncharacters are valid UTF-8
];

/** Kuhn sections 2 (beyond U+10FFFF), 3, 4 and 5.1-5.2: invalid. */
const INVALID = [
  'f8888080 80', 'fc8480808080', 'f7bfbfbf', 'fbbfbfbfbf', 'fdbfbfbfbfbf', 'f4908080', // 2.x > U+10FFFF
  '80', 'bf', '80bf', '80bf80', '80bf80bf', '80bf80bf80', '80bf80bf80bf', '80bf80bf80bf80', // 3.1
  Buffer.from(Array.from({ length: 64 }, (_, i) => 0x80 + i)).toString('hex'), // 3.1.9 all continuations
  ...Array.from({ length: 32 }, (_, i) => (0xc0 + i).toString(16) + '20'), // 3.2.1 lonely 2-byte starts
  ...Array.from({ length: 16 }, (_, i) => (0xe0 + i).toString(16) + '20'), // 3.2.2
  ...Array.from({ length: 8 }, (_, i) => (0xf0 + i).toString(16) + '20'), // 3.2.3
  'f820', 'f920', 'fa20', 'fb20', 'fc20', 'fd20', // 3.2.4-5
  'c0', 'e080', 'f08080', 'f8808080', 'fc80808080', 'df', 'efbf', 'f7bfbf', 'fbbfbfbf', 'fdbfbfbfbf', // 3.3
  'c0e080f08080f8808080fc80808080dfefbff7bfbffbbfbfbffdbfbfbfbf', // 3.4
  'fe', 'ff', 'fefeffff', // 3.5
  'c0af', 'e080af', 'f08080af', 'f8808080af', 'fc80808080af', // 4.1 overlong "/"
  'c1bf', 'e09fbf', 'f08fbfbf', 'f887bfbfbf', 'fc83bfbfbfbf', // 4.2 maximum overlong
  'c080', 'e08080', 'f0808080', 'f880808080', 'fc8080808080', // 4.3 overlong NUL
  'eda080', 'edadbf', 'edae80', 'edafbf', 'edb080', 'edbe80', 'edbfbf', // 5.1 single surrogates
  'eda080edb080', 'eda080edbfbf', 'edadbfedb080', 'edadbfedbfbf', // 5.2 paired surrogates
  'edae80edb080', 'edae80edbfbf', 'edafbfedb080', 'edafbfedbfbf',
];

/** Validate `bytes` one byte at a time; the index of the rejecting byte, or -1. */
function rejectIndex(bytes: Uint8Array): number {
  let s = UTF8_ACCEPT;
  for (let i = 0; i < bytes.length; i++) {
    s = validateUtf8(s, bytes, i, i + 1);
    if (s === UTF8_REJECT) return i;
  }
  return -1;
}

/** Oracle: can `prefix` still begin some valid UTF-8 text? */
function viable(prefix: Uint8Array): boolean {
  const tails = [0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf];
  const tryTail = (t: number[]): boolean => isUtf8(Buffer.concat([prefix, Buffer.from(t)]));
  if (tryTail([])) return true;
  for (const a of tails) {
    if (tryTail([a])) return true;
    for (const b of tails) {
      if (tryTail([a, b])) return true;
      for (const c of tails) if (tryTail([a, b, c])) return true;
    }
  }
  return false;
}

/** Oracle: the index of the first byte after which no valid text is possible, or -1. */
function firstImpossible(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) if (!viable(bytes.subarray(0, i + 1))) return i;
  return -1;
}

describe('Markus Kuhn UTF-8-test.txt', () => {
  test('valid cases, whole, byte by byte, and on the native path', () => {
    for (const h of VALID) {
      const b = hex(h);
      assert.ok(isValidUtf8(b), h);
      assert.equal(rejectIndex(b), -1, h);
      assert.ok(isValidUtf8(Buffer.concat([Buffer.alloc(200, 0x61), b, Buffer.alloc(200, 0x62)])), h);
    }
  });
  test('invalid cases, whole, byte by byte, and on the native path', () => {
    for (const h of INVALID) {
      const b = hex(h);
      assert.ok(!isValidUtf8(b), h);
      assert.ok(!isValidUtf8(Buffer.concat([Buffer.alloc(200, 0x61), b, Buffer.alloc(200, 0x62)])), h);
      assert.ok(!isValidUtf8(Buffer.concat([Buffer.alloc(200, 0x61), b])), h);
    }
  });
  test('invalid cases are rejected at the earliest impossible byte', () => {
    for (const h of INVALID) {
      const b = hex(h);
      assert.equal(rejectIndex(b), firstImpossible(b), h);
    }
  });
});

describe('exhaustive short sequences against buffer.isUtf8', () => {
  test('every 1- and 2-byte sequence', () => {
    const b = Buffer.alloc(2);
    for (let x = 0; x < 256; x++) {
      assert.equal(isValidUtf8(Buffer.from([x])), isUtf8(Buffer.from([x])), `${x}`);
      for (let y = 0; y < 256; y++) {
        b[0] = x;
        b[1] = y;
        assert.equal(isValidUtf8(b), isUtf8(b), b.toString('hex'));
      }
    }
  });
  test('3- and 4-byte sequences over every lead and second byte', () => {
    const thirds = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff];
    for (let x = 0xc0; x < 256; x++) {
      for (let y = 0; y < 256; y++) {
        for (const z of thirds) {
          const b3 = Buffer.from([x, y, z]);
          assert.equal(isValidUtf8(b3), isUtf8(b3), b3.toString('hex'));
          const b4 = Buffer.from([x, y, z, 0x80]);
          assert.equal(isValidUtf8(b4), isUtf8(b4), b4.toString('hex'));
        }
      }
    }
  });
  test('every code point encodes to valid UTF-8; every surrogate is rejected', () => {
    for (let cp = 0; cp <= 0x10ffff; cp += cp < 0x10000 ? 1 : 17) {
      if (cp >= 0xd800 && cp <= 0xdfff) {
        const b = Buffer.from([0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)]);
        assert.ok(!isValidUtf8(b), cp.toString(16));
      } else {
        assert.ok(isValidUtf8(Buffer.from(String.fromCodePoint(cp))), cp.toString(16));
      }
    }
  });
});

describe('streaming', () => {
  test('state carries an unfinished character across pieces', () => {
    const b = hex('e282ac');
    let s = validateUtf8(UTF8_ACCEPT, b, 0, 1);
    assert.notEqual(s, UTF8_ACCEPT);
    assert.notEqual(s, UTF8_REJECT);
    s = validateUtf8(s, b, 1, 2);
    s = validateUtf8(s, b, 2, 3);
    assert.equal(s, UTF8_ACCEPT);
  });
  test('a long piece ending inside a character continues on the DFA', () => {
    for (const tail of ['c3', 'e282', 'f09f98']) {
      const b = Buffer.concat([Buffer.alloc(300, 0x61), hex(tail)]);
      const s = validateUtf8(UTF8_ACCEPT, b);
      assert.notEqual(s, UTF8_REJECT, tail);
      assert.notEqual(s, UTF8_ACCEPT, tail);
    }
    const s = validateUtf8(validateUtf8(UTF8_ACCEPT, Buffer.concat([Buffer.alloc(300, 0x61), hex('f09f')])), hex('98 80'));
    assert.equal(s, UTF8_ACCEPT);
  });
  test('a rejected state stays rejected', () => {
    assert.equal(validateUtf8(UTF8_REJECT, Buffer.from('abc')), UTF8_REJECT);
    assert.equal(validateUtf8(UTF8_REJECT, Buffer.alloc(500, 0x61)), UTF8_REJECT);
  });
});
