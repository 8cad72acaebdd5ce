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
import { Action, type Connection } from '../../core/index.js';
import type { Field, QuickUpgrade, RequestHead, ResponseFields, UpgradeHook } from '../http1/index.js';
import { FIELD_VALUE, HOST, TARGET, TOKEN, UPGRADE_QUICK, ascii, encodeResponseHead, equalsLower } from '../http1/index.js';
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
  acceptInto(out, at);
}

/** The SHA-1 and base64 of `acceptKeyInto`, for the key already in SHA_BLOCKS. */
function acceptInto(out: Uint8Array, at: number): void {
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

/** `acceptHead` for a key given as the 24 bytes at `buf[at]` (as `plainUpgrade` returns it). */
export function acceptHeadFromBytes(buf: Uint8Array, at: number): Buffer {
  const m = SHA_BLOCKS;
  for (let i = 0; i < KEY_LENGTH; i++) m[i] = buf[at + i];
  acceptInto(ACCEPT_HEAD, ACCEPT_AT);
  return ACCEPT_HEAD;
}

const L_HOST = ascii('host');
const L_UPGRADE = ascii('upgrade');
const L_CONNECTION = ascii('connection');
const L_WEBSOCKET = ascii('websocket');
const L_CONTENT_LENGTH = ascii('content-length');
const L_TRANSFER_ENCODING = ascii('transfer-encoding');
const L_KEY = ascii('sec-websocket-key');
const L_VERSION = ascii('sec-websocket-version');
const L_PROTOCOL = ascii('sec-websocket-protocol');
const L_EXTENSIONS = ascii('sec-websocket-extensions');
const GET_SP = ascii('GET ');
const SP_HTTP11_CRLF = ascii(' HTTP/1.1\r\n');
// Bounds of the quick path, below the parser's defaults (8 KiB target, 100 fields): past
// them the parser decides.
/** The longest target and the most field lines `plainUpgrade` accepts. */
export const QUICK_MAX_TARGET = 2048;
export const QUICK_MAX_FIELDS = 64;
// Base64 digits; the 22nd of a 16-byte key carries 2 data bits and 4 zero bits: A, Q, g or w.
const B64 = Uint8Array.from({ length: 256 }, (_, c) => (BASE64.includes(c) ? 1 : 0));

function bytesAre(buf: Uint8Array, at: number, lit: Uint8Array): boolean {
  for (let k = 0; k < lit.length; k++) if (buf[at + k] !== lit[k]) return false;
  return true;
}

/** True when the list `buf[vs, ve)` has element `lower`, the elements cut at `,` and, when `spaces`, at SP/HTAB too. */
function listHas(buf: Uint8Array, vs: number, ve: number, lower: Uint8Array, spaces: boolean): boolean {
  let k = vs;
  while (k < ve) {
    let c = buf[k];
    if (c === 0x2c || c === 0x20 || c === 0x09) {
      k++;
      continue;
    }
    const start = k;
    while (k < ve && (c = buf[k]) !== 0x2c && (!spaces || (c !== 0x20 && c !== 0x09))) k++;
    let end = k;
    while (end > start && ((c = buf[end - 1]) === 0x20 || c === 0x09)) end--;
    if (end - start === lower.length && equalsLower(buf, start, lower)) return true;
  }
  return false;
}

/** The parts of the field line `fieldLine` read last (value trimmed of OWS). */
const LINE = { nameStart: 0, nameLength: 0, vs: 0, ve: 0 };

/**
 * The field line at `buf[i]` as the HTTP parser accepts it (`name: value` CRLF, a token name, a
 * field-value): its parts go to LINE and the offset after its CRLF is returned; -1 when it is
 * not one. The caller knows a CR follows within `buf` (the head's blank line).
 */
function fieldLine(buf: Uint8Array, i: number): number {
  const nameStart = i;
  while (TOKEN[buf[i]] === 1) i++;
  const nameLength = i - nameStart;
  if (nameLength === 0 || buf[i] !== 0x3a) return -1;
  i++;
  let c: number;
  while ((c = buf[i]) === 0x20 || c === 0x09) i++;
  const vs = i;
  while (FIELD_VALUE[buf[i]] === 1) i++;
  if (buf[i] !== 0x0d || buf[i + 1] !== 0x0a) return -1;
  let ve = i;
  while (ve > vs && ((c = buf[ve - 1]) === 0x20 || c === 0x09)) ve--;
  LINE.nameStart = nameStart;
  LINE.nameLength = nameLength;
  LINE.vs = vs;
  LINE.ve = ve;
  return i + 2;
}

/**
 * The server's quick path for the common upgrade request: when `buf[0, headEnd)` (a head
 * ending with its blank line) is a plain, valid WebSocket upgrade, returns the offset of its
 * 24-byte `Sec-WebSocket-Key`; otherwise -1, and the full HTTP parser and the checks on its
 * result decide (they give the same answer for every head this accepts). Allocates nothing.
 *
 * Plain: `GET <target> HTTP/1.1`, no empty line before it, a target of at most 2 KiB, at most
 * 64 field lines, each `name: value` as the parser accepts it, exactly one Host (valid), one
 * Upgrade with a `websocket` element, a Connection with an `upgrade` option, one valid key,
 * one `Sec-WebSocket-Version: 13`, no Content-Length, Transfer-Encoding or
 * Sec-WebSocket-Protocol, and no Sec-WebSocket-Extensions unless `ignoreExtensions`.
 * Internal (server.ts).
 */
export function plainUpgrade(buf: Uint8Array, headEnd: number, ignoreExtensions: boolean): number {
  if (headEnd < 16 || !bytesAre(buf, 0, GET_SP)) return -1;
  let i = 4;
  while (i < headEnd && TARGET[buf[i]] === 1) i++;
  if (i === 4 || i - 4 > QUICK_MAX_TARGET || !bytesAre(buf, i, SP_HTTP11_CRLF)) return -1;
  i += SP_HTTP11_CRLF.length;
  let fields = 0;
  let hosts = 0;
  let upgrades = 0;
  let connUpgrade = false;
  let key = -1;
  let keys = 0;
  let versions = 0;
  // The head ends with CRLF CRLF at headEnd, so every line below ends before it.
  while (buf[i] !== 0x0d) {
    if (++fields > QUICK_MAX_FIELDS || (i = fieldLine(buf, i)) < 0) return -1;
    const { nameStart, vs, ve } = LINE;
    let c: number;
    switch (LINE.nameLength) {
      case 4:
        if (equalsLower(buf, nameStart, L_HOST)) {
          if (hosts++ !== 0) return -1;
          for (let k = vs; k < ve; k++) if (HOST[buf[k]] !== 1) return -1;
        }
        break;
      case 7:
        if (equalsLower(buf, nameStart, L_UPGRADE)) {
          if (upgrades++ !== 0 || !listHas(buf, vs, ve, L_WEBSOCKET, false)) return -1;
        }
        break;
      case 10:
        if (equalsLower(buf, nameStart, L_CONNECTION) && listHas(buf, vs, ve, L_UPGRADE, true)) connUpgrade = true;
        break;
      case 14:
        if (equalsLower(buf, nameStart, L_CONTENT_LENGTH)) return -1;
        break;
      case 17:
        if (equalsLower(buf, nameStart, L_TRANSFER_ENCODING)) return -1;
        if (equalsLower(buf, nameStart, L_KEY)) {
          if (keys++ !== 0 || ve - vs !== KEY_LENGTH) return -1;
          for (let k = vs; k < vs + 21; k++) if (B64[buf[k]] !== 1) return -1;
          c = buf[vs + 21];
          if ((c !== 0x41 && c !== 0x51 && c !== 0x67 && c !== 0x77) || buf[vs + 22] !== 0x3d || buf[vs + 23] !== 0x3d) return -1;
          key = vs;
        }
        break;
      case 21:
        if (equalsLower(buf, nameStart, L_VERSION)) {
          if (versions++ !== 0 || ve - vs !== 2 || buf[vs] !== 0x31 || buf[vs + 1] !== 0x33) return -1;
        }
        break;
      case 22:
        if (equalsLower(buf, nameStart, L_PROTOCOL)) return -1;
        break;
      case 24:
        if (!ignoreExtensions && equalsLower(buf, nameStart, L_EXTENSIONS)) return -1;
        break;
    }
  }
  if (i + 2 !== headEnd || hosts !== 1 || upgrades !== 1 || !connUpgrade || keys !== 1 || versions !== 1) return -1;
  return key;
}

const STATUS_101 = ascii('HTTP/1.1 101');
const L_ACCEPT = ascii('sec-websocket-accept');
const EXPECTED_ACCEPT = new Uint8Array(ACCEPT_LENGTH);

/**
 * The client's quick path: true when `buf[0, headEnd)` (a response head ending with its blank
 * line) is a plain 101 that answers `key` and selects nothing: `HTTP/1.1 101` with an optional
 * reason, at most 64 field lines as `parseResponseHead` accepts them, exactly one Upgrade whose
 * value is `websocket` (any case), a Connection with an `upgrade` element, exactly one
 * Sec-WebSocket-Accept equal to the key's answer, and no Sec-WebSocket-Extensions or
 * Sec-WebSocket-Protocol. Otherwise false, and `parseResponseHead` + `checkResponse` decide
 * (they accept every head this accepts, selecting nothing). Allocates nothing. Internal (client.ts).
 */
export function plain101(buf: Uint8Array, headEnd: number, key: string): boolean {
  if (headEnd < 16 || !bytesAre(buf, 0, STATUS_101)) return false;
  let i = STATUS_101.length;
  if (buf[i] === 0x20) {
    i++;
    while (FIELD_VALUE[buf[i]] === 1) i++;
  }
  if (buf[i] !== 0x0d || buf[i + 1] !== 0x0a) return false;
  i += 2;
  let fields = 0;
  let upgrades = 0;
  let connUpgrade = false;
  let accept = -1;
  let accepts = 0;
  // The head ends with CRLF CRLF at headEnd, so every line below ends before it.
  while (buf[i] !== 0x0d) {
    if (++fields > QUICK_MAX_FIELDS || (i = fieldLine(buf, i)) < 0) return false;
    const { nameStart, vs, ve } = LINE;
    switch (LINE.nameLength) {
      case 7:
        if (equalsLower(buf, nameStart, L_UPGRADE) && (upgrades++ !== 0 || ve - vs !== L_WEBSOCKET.length || !equalsLower(buf, vs, L_WEBSOCKET))) return false;
        break;
      case 10:
        if (equalsLower(buf, nameStart, L_CONNECTION) && listHas(buf, vs, ve, L_UPGRADE, false)) connUpgrade = true;
        break;
      case 20:
        if (equalsLower(buf, nameStart, L_ACCEPT)) {
          if (accepts++ !== 0 || ve - vs !== ACCEPT_LENGTH) return false;
          accept = vs;
        }
        break;
      case 22:
        if (equalsLower(buf, nameStart, L_PROTOCOL)) return false;
        break;
      case 24:
        if (equalsLower(buf, nameStart, L_EXTENSIONS)) return false;
        break;
    }
  }
  if (i + 2 !== headEnd || upgrades !== 1 || !connUpgrade || accepts !== 1 || !validateKey(key)) return false;
  acceptKeyInto(key, EXPECTED_ACCEPT, 0);
  return bytesAre(buf, accept, EXPECTED_ACCEPT);
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

/** What `upgradeHook` reads of a request the HTTP server parsed (an `HttpRequest`). */
export type HookRequest = { method: string; target: string; headers: readonly (readonly [string, string])[]; upgrade?: boolean };

/**
 * The RequestHead of a request the HTTP server parsed and found to be an upgrade, as the
 * handshake reads it (one object, dropped after the handshake; its strings are the request's).
 */
export function headOf(req: HookRequest): RequestHead {
  const headers = req.headers as Field[];
  let upgradeProtocol: string | null = null;
  let host: string | null = null;
  let contentLength: number | null = null;
  let chunked = false;
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i];
    if (sameName(name, 'upgrade')) upgradeProtocol = upgradeProtocol === null ? value : `${upgradeProtocol}, ${value}`;
    else if (sameName(name, 'host')) host = value;
    else if (sameName(name, 'content-length')) contentLength = Number(value);
    else if (sameName(name, 'transfer-encoding')) chunked = true;
  }
  return {
    method: req.method,
    target: req.target,
    versionMinor: 1,
    headers,
    host,
    contentLength: chunked ? null : contentLength,
    chunked,
    keepAlive: true,
    upgrade: req.upgrade ?? (req.method === 'CONNECT' || upgradeProtocol !== null),
    upgradeProtocol,
    expectContinue: false,
  };
}

/**
 * @internal The quick path (`UPGRADE_QUICK`) of a WebSocket handler's `upgradeHook()` hook,
 * taking only requests whose target is `path` or `path?query` (for a server that routes
 * upgrades by path: other targets go through the parser to its own hook).
 */
export function quickUpgradeFor(hook: UpgradeHook, path: string): QuickUpgrade {
  const quick = (hook as unknown as Record<typeof UPGRADE_QUICK, QuickUpgrade>)[UPGRADE_QUICK];
  const want = ascii(`GET ${path}`);
  return {
    maxTarget: quick.maxTarget,
    maxFields: quick.maxFields,
    // `GET <path>` then the end of the target or its query; the rest is take's to check.
    take: (conn, data, headEnd) => {
      const c = data[want.length];
      if (c !== 0x20 && c !== 0x3f) return undefined;
      for (let i = 0; i < want.length; i++) if (data[i] !== want[i]) return undefined;
      return quick.take(conn, data, headEnd);
    },
  };
}

// ---- the server's refusals and its head collector ----

/** Collects the head of the one request being read (the parser calls these as methods). */
export class HeadCatcher {
  head: RequestHead | null = null;
  onRequest(head: RequestHead): void {
    this.head = head;
  }
  onBody(): void {}
  onMessageComplete(): void {}
}

/** Response fields as a list of pairs (a field with several values: one pair each). */
export function fieldList(headers: ResponseFields | undefined): [string, string | number][] {
  if (headers === undefined) return [];
  if (Array.isArray(headers)) return (headers as readonly (readonly [string, string | number])[]).map(([n, v]) => [n, v]);
  const out: [string, string | number][] = [];
  for (const [name, value] of Object.entries(headers as Readonly<Record<string, string | number | readonly (string | number)[]>>)) {
    if (Array.isArray(value)) for (const v of value as readonly (string | number)[]) out.push([name, v]);
    else out.push([name, value as string | number]);
  }
  return out;
}

/** Answer `status`, then close (after flushing). */
export function refuse(conn: Connection, status: number, extra: [string, string | number][] = []): Action {
  conn.write(encodeResponseHead(status, [...extra, ['Connection', 'close'], ['Content-Length', 0]]));
  return Action.Close;
}
