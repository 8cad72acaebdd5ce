/**
 * Byte classes for HTTP/1.1 (RFC 9110 §5.6, RFC 9112 §3). One 256-entry table per question,
 * so the parser's inner loops are a load and a compare: no regexes, no string work.
 */

export const HTAB = 0x09;
export const LF = 0x0a;
export const CR = 0x0d;
export const SP = 0x20;
export const DQUOTE = 0x22;
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const SEMI = 0x3b;
export const EQUALS = 0x3d;
export const BACKSLASH = 0x5c;

function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) if (pred(c)) t[c] = 1;
  return t;
}

const isAlnum = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const TCHAR_PUNCT = "!#$%&'*+-.^_`|~";

/** tchar: methods, field names, transfer codings, chunk-extension names and token values. */
export const TOKEN = table((c) => isAlnum(c) || TCHAR_PUNCT.includes(String.fromCharCode(c)));

/**
 * request-target bytes: VCHAR (0x21-0x7E) and obs-text (0x80-0xFF). Raw UTF-8 in a target is
 * common in the wild and carries no framing risk; it reaches the application latin1-decoded
 * (lossless: `Buffer.from(target, 'latin1')` restores the bytes). CTLs, SP and DEL are refused.
 */
export const TARGET = table((c) => (c >= 0x21 && c <= 0x7e) || c >= 0x80);

/** field-value bytes (RFC 9110 §5.5): HTAB, SP, VCHAR and obs-text; never CTL, DEL, CR or LF. */
export const FIELD_VALUE = table((c) => c === HTAB || (c >= 0x20 && c <= 0x7e) || c >= 0x80);

/** qdtext (RFC 9110 §5.6.4) inside a quoted chunk-extension value. */
export const QDTEXT = table((c) => c === HTAB || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80);

/** The byte after a backslash in a quoted-string: HTAB / SP / VCHAR / obs-text. */
export const QUOTED_PAIR = table((c) => c === HTAB || (c >= 0x20 && c <= 0x7e) || c >= 0x80);

/**
 * Host field value (RFC 9110 §7.2: uri-host [":" port]): unreserved, pct-encoded, sub-delims,
 * ":" and the brackets of an IP-literal. Anything else (spaces, "/", "@", "?", "#") is refused.
 */
export const HOST = table((c) => isAlnum(c) || "-._~%!$&'()*+,;=:[]".includes(String.fromCharCode(c)));

/** Hex digit value, or -1. */
export const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = 10 + c;
  HEX[0x61 + c] = 10 + c;
}

/** True when `buf[at..at+lower.length)` equals `lower` ignoring ASCII case (`lower` is lowercase). */
export function equalsLower(buf: Uint8Array, at: number, lower: Uint8Array): boolean {
  // `| 0x20` maps A-Z onto a-z. The only other bytes it can map onto a letter, digit or "-"
  // are CTLs, and callers pass only bytes already validated as tchar or field-value.
  for (let k = 0; k < lower.length; k++) if ((buf[at + k] | 0x20) !== lower[k]) return false;
  return true;
}

/** ASCII bytes of a literal. */
export const ascii = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0));
