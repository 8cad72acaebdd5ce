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

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)). */
export function acceptKey(secKey: string): string {
  return createHash('sha1').update(secKey + WS_GUID).digest('base64');
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
  const want = token.toLowerCase();
  for (const element of listElements(value)) if (element.toLowerCase() === want) return true;
  return false;
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

/** The value of header `lower` (joined with ', ' when repeated), or undefined. */
export function field(headers: Field[], lower: string, count?: { n: number }): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < headers.length; i++) {
    const [name, v] = headers[i];
    if (name.length === lower.length && name.toLowerCase() === lower) {
      value = value === undefined ? v : `${value}, ${v}`;
      if (count) count.n++;
    }
  }
  return value;
}

/** A timeout option: an integer number of ms from 0 to 2^31-1. */
export const isMs = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0x7fffffff;
