/**
 * Streaming UTF-8 validation (RFC 3629): rejects overlong forms, surrogates (U+D800-DFFF),
 * code points above U+10FFFF and stray or missing continuation bytes.
 *
 * Model: a DFA whose state is one small integer, so a caller keeps it in a number field and
 * feeds a message's bytes in any number of pieces. The state turns `UTF8_REJECT` at the first
 * byte that no valid text can contain — before the message, or even the piece, is complete —
 * and stays there. `UTF8_ACCEPT` means the bytes so far end on a character boundary.
 *
 * Hot path: a piece fed in the accept state and at least `NATIVE_MIN` bytes long goes to
 * Node's `buffer.isUtf8` (simdutf) up to its last character boundary; only the at most three
 * bytes of an unfinished character after it go through the DFA.
 */
import { isUtf8 } from 'node:buffer';

/** The bytes so far are valid and end on a character boundary. */
export const UTF8_ACCEPT = 0;
/** The bytes so far cannot begin valid UTF-8. Sticky. */
export const UTF8_REJECT = 256;

/** Pieces at least this long (in the accept state) are checked natively. */
const NATIVE_MIN = 24;

// States, premultiplied by 256 so that `TABLE[state + byte]` is the next state.
// After a lead byte the state says how many continuation bytes remain and, for the first of
// them, the narrowed range that excludes overlongs (E0, F0), surrogates (ED) and > U+10FFFF (F4).
const ACCEPT = 0;
const REJECT = 1;
const CONT1 = 2; // one more, 80-BF
const CONT2 = 3; // two more, 80-BF
const E0 = 4; // two more, first A0-BF
const ED = 5; // two more, first 80-9F
const CONT3 = 6; // three more, 80-BF
const F0 = 7; // three more, first 90-BF
const F4 = 8; // three more, first 80-8F

const TABLE = buildTable();

function buildTable(): Uint16Array {
  const t = new Uint16Array(9 * 256).fill(REJECT * 256);
  const range = (state: number, lo: number, hi: number, next: number): void => {
    for (let b = lo; b <= hi; b++) t[state * 256 + b] = next * 256;
  };
  range(ACCEPT, 0x00, 0x7f, ACCEPT);
  range(ACCEPT, 0xc2, 0xdf, CONT1);
  range(ACCEPT, 0xe0, 0xe0, E0);
  range(ACCEPT, 0xe1, 0xec, CONT2);
  range(ACCEPT, 0xed, 0xed, ED);
  range(ACCEPT, 0xee, 0xef, CONT2);
  range(ACCEPT, 0xf0, 0xf0, F0);
  range(ACCEPT, 0xf1, 0xf3, CONT3);
  range(ACCEPT, 0xf4, 0xf4, F4);
  range(CONT1, 0x80, 0xbf, ACCEPT);
  range(CONT2, 0x80, 0xbf, CONT1);
  range(E0, 0xa0, 0xbf, CONT1);
  range(ED, 0x80, 0x9f, CONT1);
  range(CONT3, 0x80, 0xbf, CONT2);
  range(F0, 0x90, 0xbf, CONT2);
  range(F4, 0x80, 0x8f, CONT2);
  return t;
}

/**
 * Feed `bytes[start, end)` to the validator in `state` (start with `UTF8_ACCEPT`) and return
 * the new state: `UTF8_REJECT` as soon as the bytes cannot be valid, `UTF8_ACCEPT` when they
 * end on a character boundary, another value while a character is unfinished. A whole text
 * is valid when the final state is `UTF8_ACCEPT`.
 */
export function validateUtf8(state: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  let s = state;
  let i = start;
  if (s === ACCEPT && end - i >= NATIVE_MIN) {
    // Cut before a trailing lead byte: the prefix ends on a boundary of any valid text, so it
    // must be valid on its own, and the unfinished character goes through the DFA.
    let cut = end;
    for (let j = end - 1; j >= end - 3; j--) {
      const b = bytes[j];
      if ((b & 0xc0) !== 0x80) {
        if (b >= 0xc0) cut = j;
        break;
      }
    }
    const whole = i === 0 && cut === bytes.length;
    if (!isUtf8(whole ? bytes : bytes.subarray(i, cut))) return UTF8_REJECT;
    i = cut;
  }
  for (; i < end; i++) {
    s = TABLE[s + bytes[i]];
    if (s === UTF8_REJECT) return UTF8_REJECT;
  }
  return s;
}

/** True when `bytes` is one complete, valid UTF-8 text. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  return validateUtf8(UTF8_ACCEPT, bytes) === UTF8_ACCEPT;
}
