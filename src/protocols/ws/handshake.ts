/**
 * The opening handshake (RFC 6455 4), as pure functions over header values: the HTTP parser
 * and the socket live elsewhere.
 *
 * Server: check `Upgrade`/`Connection` with `headerHasToken`, `Sec-WebSocket-Version` against
 * `WS_VERSION`, the key with `validateKey`; pick a subprotocol with `parseProtocols` and
 * `negotiateProtocol`; answer with `acceptResponse`. Client: send `generateKey()`, then verify
 * the answer with `checkAccept`.
 *
 * Errors: helpers that judge peer input return a value (false, null, undefined); only misuse
 * (invalid arguments of our own) throws `ERR_C1M_WS_INVALID_ARGUMENT`.
 *
 * Hot path (a server's upgrade): `headerHasToken` and `sameName` compare in place, and the
 * accept value is a SHA-1 computed here over one preallocated block pair (`acceptKeyInto`):
 * `createHash` per upgrade made a Hash object, a native handle and three strings, and 19,000
 * upgrades in a burst grew the V8 heap that an idle server then keeps (see docs/websocket.md).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Field } from '../http1/index.js';
import { checkArgument } from './errors.js';

/** The GUID appended to the key before hashing (RFC 6455 1.3). */
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The only `Sec-WebSocket-Version` this implementation speaks. */
export const WS_VERSION = '13';

// Base64 of exactly 16 bytes: 22 characters, the last carrying 2 data bits (4 zero bits), '=='.
const KEY_RE = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// A header field value: visible ASCII, obs-text, space and tab; never CR, LF or NUL.
const FIELD_VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;

// SHA-1 (FIPS 180-4) of key + GUID, for the 24-character keys validateKey accepts: 60 bytes of
// message, so two 64-byte blocks whose padding, GUID and length are written once.
const KEY_LENGTH = 24;
const SHA_BLOCKS = new Uint8Array(128);
for (let i = 0; i < WS_GUID.length; i++) SHA_BLOCKS[KEY_LENGTH + i] = WS_GUID.charCodeAt(i);
SHA_BLOCKS[KEY_LENGTH + WS_GUID.length] = 0x80;
SHA_BLOCKS[126] = ((KEY_LENGTH + WS_GUID.length) * 8) >>> 8;
SHA_BLOCKS[127] = ((KEY_LENGTH + WS_GUID.length) * 8) & 0xff;
const SHA_W = new Int32Array(80);
const SHA_H = new Int32Array(5);
const SHA_OUT = new Uint8Array(20);
const BASE64 = Uint8Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', (c) => c.charCodeAt(0));

function shaBlock(at: number): void {
  const w = SHA_W;
  const m = SHA_BLOCKS;
  for (let i = 0; i < 16; i++) {
    const j = at + i * 4;
    w[i] = (m[j] << 24) | (m[j + 1] << 16) | (m[j + 2] << 8) | m[j + 3];
  }
  for (let i = 16; i < 80; i++) {
    const x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
    w[i] = (x << 1) | (x >>> 31);
  }
  const h = SHA_H;
  let a = h[0];
  let b = h[1];
  let c = h[2];
  let d = h[3];
  let e = h[4];
  for (let i = 0; i < 80; i++) {
    let f: number;
    let k: number;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc | 0;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6 | 0;
    }
    const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  h[0] = (h[0] + a) | 0;
  h[1] = (h[1] + b) | 0;
  h[2] = (h[2] + c) | 0;
  h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0;
}

/** Length of a `Sec-WebSocket-Accept` value: base64 of 20 bytes. */
export const ACCEPT_LENGTH = 28;

/**
 * Write the `Sec-WebSocket-Accept` value for `secKey` (valid: see `validateKey`) as 28 ASCII
 * bytes at `out[at]`. Allocates nothing. Internal (the server's upgrade path).
 */
export function acceptKeyInto(secKey: string, out: Uint8Array, at: number): void {
  const m = SHA_BLOCKS;
  for (let i = 0; i < KEY_LENGTH; i++) m[i] = secKey.charCodeAt(i);
  const h = SHA_H;
  h[0] = 0x67452301;
  h[1] = 0xefcdab89 | 0;
  h[2] = 0x98badcfe | 0;
  h[3] = 0x10325476;
  h[4] = 0xc3d2e1f0 | 0;
  shaBlock(0);
  shaBlock(64);
  const d = SHA_OUT;
  for (let i = 0; i < 5; i++) {
    const v = h[i];
    d[i * 4] = v >>> 24;
    d[i * 4 + 1] = (v >>> 16) & 0xff;
    d[i * 4 + 2] = (v >>> 8) & 0xff;
    d[i * 4 + 3] = v & 0xff;
  }
  let o = at;
  for (let i = 0; i < 18; i += 3) {
    const n = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
    out[o++] = BASE64[n >>> 18];
    out[o++] = BASE64[(n >>> 12) & 63];
    out[o++] = BASE64[(n >>> 6) & 63];
    out[o++] = BASE64[n & 63];
  }
  const n = (d[18] << 8) | d[19];
  out[o++] = BASE64[n >>> 10];
  out[o++] = BASE64[(n >>> 4) & 63];
  out[o++] = BASE64[(n << 2) & 63];
  out[o] = 0x3d; // '='
}

const ACCEPT_SCRATCH = Buffer.allocUnsafe(ACCEPT_LENGTH);

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)). */
export function acceptKey(secKey: string): string {
  if (!validateKey(secKey)) return createHash('sha1').update(secKey + WS_GUID).digest('base64');
  acceptKeyInto(secKey, ACCEPT_SCRATCH, 0);
  return ACCEPT_SCRATCH.toString('latin1', 0, ACCEPT_LENGTH);
}

/** True when `secKey` is a valid `Sec-WebSocket-Key`: the canonical base64 of 16 bytes. */
export function validateKey(secKey: string | undefined): boolean {
  return typeof secKey === 'string' && KEY_RE.test(secKey);
}

/** A fresh random `Sec-WebSocket-Key` (client). */
export function generateKey(): string {
  return randomBytes(16).toString('base64');
}

/** True when the server's `Sec-WebSocket-Accept` answers the key we sent (client). */
export function checkAccept(secKey: string, accept: string | undefined): boolean {
  return typeof accept === 'string' && accept.trim() === acceptKey(secKey);
}

/** Split a comma-separated header value into its elements, trimmed of spaces and tabs. */
function listElements(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    let s = 0;
    let e = part.length;
    while (s < e && (part.charCodeAt(s) === 0x20 || part.charCodeAt(s) === 0x09)) s++;
    while (e > s && (part.charCodeAt(e - 1) === 0x20 || part.charCodeAt(e - 1) === 0x09)) e--;
    // RFC 9110 5.6.1: recipients ignore empty list elements.
    if (e > s) out.push(part.slice(s, e));
  }
  return out;
}

/**
 * True when the comma-separated header `value` contains `token`, compared case-insensitively
 * (`Connection: keep-alive, Upgrade` has `upgrade`).
 */
export function headerHasToken(value: string | undefined, token: string): boolean {
  if (typeof value !== 'string') return false;
  // In place, no element strings: elements are trimmed of SP/HTAB, empty ones never match.
  const n = token.length;
  let s = 0;
  while (s <= value.length) {
    let e = value.indexOf(',', s);
    if (e < 0) e = value.length;
    let a = s;
    let b = e;
    while (a < b && (value.charCodeAt(a) === 0x20 || value.charCodeAt(a) === 0x09)) a++;
    while (b > a && (value.charCodeAt(b - 1) === 0x20 || value.charCodeAt(b - 1) === 0x09)) b--;
    if (b - a === n && n > 0 && sameLetters(value, a, token)) return true;
    s = e + 1;
  }
  return false;
}

/** True when `s[at, at + t.length)` equals `t` ignoring ASCII case. */
function sameLetters(s: string, at: number, t: string): boolean {
  for (let i = 0; i < t.length; i++) {
    const x = s.charCodeAt(at + i);
    const y = t.charCodeAt(i);
    if (x === y) continue;
    // Equal ignoring case only for a pair of ASCII letters.
    if ((x | 0x20) !== (y | 0x20) || (x | 0x20) < 0x61 || (x | 0x20) > 0x7a) return false;
  }
  return true;
}

/** True when header name `name` is `lower` (a lowercase name) ignoring ASCII case; allocates nothing. */
export function sameName(name: string, lower: string): boolean {
  return name.length === lower.length && sameLetters(name, 0, lower);
}

/**
 * The subprotocols offered in a `Sec-WebSocket-Protocol` value, in the client's order. Several
 * header lines may be given joined with commas. Undefined or empty: `[]`. Malformed (an element
 * that is not an HTTP token, or a duplicate): null — answer 400.
 */
export function parseProtocols(header: string | undefined): string[] | null {
  if (header === undefined) return [];
  const protocols = listElements(header);
  const seen = new Set<string>();
  for (const p of protocols) {
    if (!TOKEN_RE.test(p) || seen.has(p)) return null;
    seen.add(p);
  }
  return protocols;
}

/**
 * The subprotocol to accept: the first of `offered` (client preference) that `supported`
 * contains, compared exactly (subprotocol names are case-sensitive). None: undefined, and
 * the response carries no `Sec-WebSocket-Protocol`.
 */
export function negotiateProtocol(offered: readonly string[], supported: readonly string[]): string | undefined {
  for (const p of offered) if (supported.includes(p)) return p;
  return undefined;
}

/** What `acceptResponse` adds to the 101 response. */
export interface AcceptResponseOptions {
  /** The chosen subprotocol (an HTTP token), sent as `Sec-WebSocket-Protocol`. Default none. */
  protocol?: string;
  /** The negotiated `Sec-WebSocket-Extensions` value. Default none. */
  extensions?: string;
  /** Extra header fields, in order. Names must be tokens, values free of CR/LF/NUL. */
  headers?: Readonly<Record<string, string>>;
}

/**
 * The complete `101 Switching Protocols` response (status line, headers, blank line) for a
 * valid `Sec-WebSocket-Key`, as bytes to write before any frame.
 *
 * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for an invalid key (check it first with
 * `validateKey`), a protocol that is not a token, or a header that could split the response.
 */
export function acceptResponse(secKey: string, options?: AcceptResponseOptions): Buffer {
  checkArgument(validateKey(secKey), 'secKey must be a valid Sec-WebSocket-Key (see validateKey)');
  let head =
    'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(secKey)}\r\n`;
  const protocol = options?.protocol;
  if (protocol !== undefined) {
    checkArgument(typeof protocol === 'string' && TOKEN_RE.test(protocol), `protocol must be an HTTP token, got ${JSON.stringify(protocol)}`);
    head += `Sec-WebSocket-Protocol: ${protocol}\r\n`;
  }
  const extensions = options?.extensions;
  if (extensions !== undefined) {
    checkArgument(typeof extensions === 'string' && FIELD_VALUE_RE.test(extensions), 'extensions must be a header value without CR, LF or NUL');
    head += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  }
  const headers = options?.headers;
  if (headers !== undefined) {
    for (const [name, value] of Object.entries(headers)) {
      checkArgument(TOKEN_RE.test(name), `header name must be an HTTP token, got ${JSON.stringify(name)}`);
      checkArgument(typeof value === 'string' && FIELD_VALUE_RE.test(value), `header ${name} must be a string without CR, LF or NUL`);
      head += `${name}: ${value}\r\n`;
    }
  }
  return Buffer.from(head + '\r\n', 'latin1');
}

const ACCEPT_HEAD = Buffer.from(
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' +
    ' '.repeat(ACCEPT_LENGTH) + '\r\n\r\n',
  'latin1',
);
const ACCEPT_AT = ACCEPT_HEAD.length - 4 - ACCEPT_LENGTH;

/**
 * `acceptResponse(secKey)` without options, in one buffer shared by every call: valid only
 * until the next call (write it at once; `conn.write` copies). `secKey` must be valid (see
 * `validateKey`). Internal (the server's upgrade path): allocates nothing.
 */
export function acceptHead(secKey: string): Buffer {
  acceptKeyInto(secKey, ACCEPT_HEAD, ACCEPT_AT);
  return ACCEPT_HEAD;
}

/** The value of header `lower` (joined with ', ' when repeated), or undefined. */
export function field(headers: Field[], lower: string, count?: { n: number }): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < headers.length; i++) {
    const [name, v] = headers[i];
    if (sameName(name, lower)) {
      value = value === undefined ? v : `${value}, ${v}`;
      if (count) count.n++;
    }
  }
  return value;
}

/** A timeout option: an integer number of ms from 0 to 2^31-1. */
export const isMs = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0x7fffffff;
