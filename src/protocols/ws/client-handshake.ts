/**
 * The client side of the opening handshake (RFC 6455 4.1), as pure functions: split a `ws:`
 * URL, build the upgrade request (with a permessage-deflate offer when configured), parse the
 * response head, and check it, extension answer included (RFC 7692 5). No I/O: the client
 * (client.ts) calls these around the engine.
 *
 * Errors: a response that fails a check is returned as a `WsHandshakeError` (the client then
 * fails the connection); misuse (bad URL, bad options) throws `ERR_C1M_WS_INVALID_URL` or
 * `ERR_C1M_INVALID_OPTION`.
 */
import { C1mError, checkOption } from '../../core/index.js';
import { isValidFieldName, isValidFieldValue, type Field } from '../http1/index.js';
import type { WebSocketConnectOptions } from './client-types.js';
import { checkDeflateResponse, type DeflateParams, type ResolvedDeflateOptions } from './deflate.js';
import { WS_VERSION, checkAccept, field, headerHasToken, isMs } from './handshake.js';

/** Codes of `WsHandshakeError`. */
export type WsHandshakeErrorCode =
  | 'ERR_C1M_WS_HANDSHAKE_STATUS'
  | 'ERR_C1M_WS_HANDSHAKE_MALFORMED'
  | 'ERR_C1M_WS_HANDSHAKE_UPGRADE'
  | 'ERR_C1M_WS_HANDSHAKE_CONNECTION'
  | 'ERR_C1M_WS_HANDSHAKE_ACCEPT'
  | 'ERR_C1M_WS_HANDSHAKE_PROTOCOL'
  | 'ERR_C1M_WS_HANDSHAKE_EXTENSION'
  | 'ERR_C1M_WS_HANDSHAKE_TIMEOUT'
  | 'ERR_C1M_WS_HANDSHAKE_CLOSED'
  | 'ERR_C1M_WS_HANDSHAKE_ABORTED';

/**
 * The opening handshake failed (RFC 6455 4.1: the client fails the connection). `status` and
 * `headers` describe the server's response when one arrived.
 */
export class WsHandshakeError extends C1mError {
  declare readonly code: WsHandshakeErrorCode;
  /** The response status (e.g. 200, 403, 426), or undefined when no valid head arrived. */
  readonly status: number | undefined;
  /** The response fields, names lower-cased, repeated fields joined with ', '. */
  readonly headers: Readonly<Record<string, string>>;
  constructor(code: WsHandshakeErrorCode, message: string, status?: number, headers: Readonly<Record<string, string>> = {}) {
    super(code, message);
    this.name = 'WsHandshakeError';
    this.status = status;
    this.headers = headers;
  }
}

/** A parsed response head. */
export interface ResponseHead {
  versionMinor: number;
  status: number;
  headers: Field[];
}

// RFC 9112 4 and 5: status-line and field-line. Field values are trimmed of SP/HTAB; CR, LF
// and other CTLs are refused (the character classes exclude them).
const STATUS_LINE_RE = /^HTTP\/1\.([0-9]) ([0-9]{3})(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const FIELD_LINE_RE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\t\x20-\x7e\x80-\xff]*?)[\t ]*$/;
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Parse a response head (without its blank line). Returns a description of the problem when invalid. */
export function parseResponseHead(text: string): ResponseHead | string {
  const lines = text.split('\r\n');
  const status = STATUS_LINE_RE.exec(lines[0]);
  if (status === null) return `invalid status line ${JSON.stringify(lines[0].slice(0, 80))}`;
  const headers: Field[] = [];
  for (let i = 1; i < lines.length; i++) {
    const f = FIELD_LINE_RE.exec(lines[i]);
    if (f === null) return `invalid header line ${JSON.stringify(lines[i].slice(0, 80))}`;
    headers.push([f[1], f[2]]);
  }
  return { versionMinor: Number(status[1]), status: Number(status[2]), headers };
}


function headerRecord(headers: Field[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    out[lower] = out[lower] === undefined ? value : `${out[lower]}, ${value}`;
  }
  return out;
}

/** What a valid response selected. */
export interface HandshakeResult {
  /** The selected subprotocol, or ''. */
  protocol: string;
  /** The agreed permessage-deflate parameters, or null (not offered, or declined by the server). */
  deflate: DeflateParams | null;
}

/**
 * RFC 6455 4.1, validating the server's response (steps 1-6): the first problem as an error,
 * else what the server selected. `deflate` is the permessage-deflate configuration whose offer
 * went in the request (`deflateOffer`), or null when none was offered: any extension in the
 * answer then fails the handshake.
 */
export function checkResponse(
  head: ResponseHead,
  key: string,
  offered: readonly string[],
  deflate: ResolvedDeflateOptions | null = null,
): WsHandshakeError | HandshakeResult {
  const { status, headers } = head;
  const fail = (code: WsHandshakeErrorCode, message: string): WsHandshakeError => new WsHandshakeError(code, message, status, headerRecord(headers));
  if (status !== 101) return fail('ERR_C1M_WS_HANDSHAKE_STATUS', `the server answered ${status} instead of 101`);
  if (head.versionMinor !== 1) return new WsHandshakeError('ERR_C1M_WS_HANDSHAKE_MALFORMED', '101 response in HTTP/1.0', status, headerRecord(headers));
  const upgrade = field(headers, 'upgrade');
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return fail('ERR_C1M_WS_HANDSHAKE_UPGRADE', `Upgrade is ${JSON.stringify(upgrade)}, not websocket`);
  if (!headerHasToken(field(headers, 'connection'), 'upgrade')) return fail('ERR_C1M_WS_HANDSHAKE_CONNECTION', 'Connection does not contain upgrade');
  if (!checkAccept(key, field(headers, 'sec-websocket-accept'))) return fail('ERR_C1M_WS_HANDSHAKE_ACCEPT', 'Sec-WebSocket-Accept is missing or does not answer our key');
  const extensions = field(headers, 'sec-websocket-extensions');
  let params: DeflateParams | null = null;
  if (deflate === null) {
    if (extensions !== undefined && extensions !== '') return fail('ERR_C1M_WS_HANDSHAKE_EXTENSION', `the server selected extensions we did not offer: ${JSON.stringify(extensions)}`);
  } else {
    const agreed = checkDeflateResponse(extensions, deflate);
    if (typeof agreed === 'string') return fail('ERR_C1M_WS_HANDSHAKE_EXTENSION', `invalid Sec-WebSocket-Extensions answer: ${agreed}`);
    if (agreed !== false) params = agreed;
  }
  const count = { n: 0 };
  const protocol = field(headers, 'sec-websocket-protocol', count);
  if (protocol !== undefined && (count.n !== 1 || !offered.includes(protocol))) {
    return fail('ERR_C1M_WS_HANDSHAKE_PROTOCOL', `the server selected subprotocol ${JSON.stringify(protocol)}, which we did not offer`);
  }
  return { protocol: protocol ?? '', deflate: params };
}

// Request fields the handshake owns.
const RESERVED_FIELDS = new Set(['host', 'upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions']);

/** Where to connect and what to send: the parts of a WebSocket URL (RFC 6455 3). */
export interface WsTarget {
  /** The host as it goes in the Host field (with the port when not the scheme's default, IPv6 in brackets). */
  hostField: string;
  /** The host without brackets: an IP address, or a name to resolve. */
  hostname: string;
  port: number;
  /** Path and query: the request-target. */
  resource: string;
  /** `Authorization` value when the URL carried user information. */
  authorization: string | undefined;
  /** `wss:` (or `https:`): the connection speaks TLS. */
  secure: boolean;
}

/**
 * Split a `ws:` / `wss:` (or `http:` / `https:`) URL. Errors: `ERR_C1M_WS_INVALID_URL` for
 * another scheme, a fragment, or a malformed URL.
 */
export function parseWsUrl(url: string | URL): WsTarget {
  let u: URL;
  try {
    u = url instanceof URL ? url : new URL(url);
  } catch {
    throw new C1mError('ERR_C1M_WS_INVALID_URL', `invalid URL ${JSON.stringify(String(url))}`);
  }
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  if (u.protocol !== 'ws:' && u.protocol !== 'http:' && !secure) {
    throw new C1mError('ERR_C1M_WS_INVALID_URL', `URL scheme must be ws:, wss:, http: or https:, got ${u.protocol}`);
  }
  if (u.hash !== '' || String(url).includes('#')) throw new C1mError('ERR_C1M_WS_INVALID_URL', 'a WebSocket URL may not have a fragment');
  const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (hostname === '') throw new C1mError('ERR_C1M_WS_INVALID_URL', 'the URL has no host');
  let authorization: string | undefined;
  if (u.username !== '' || u.password !== '') {
    let credentials: string;
    try {
      credentials = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
    } catch {
      throw new C1mError('ERR_C1M_WS_INVALID_URL', 'the URL user information is not valid percent-encoded UTF-8');
    }
    authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  const port = u.port === '' ? (secure ? 443 : 80) : Number(u.port);
  return { hostField: u.host, hostname, port, resource: (u.pathname || '/') + u.search, authorization, secure };
}

/**
 * The upgrade request (RFC 6455 4.1) as bytes, from options `checkConnectOptions` accepted.
 * `extensions`: the `Sec-WebSocket-Extensions` offer (`deflateOffer`), or '' for none.
 */
export function buildRequest(target: WsTarget, key: string, options: WebSocketConnectOptions<unknown>, extensions = ''): Buffer {
  let head =
    `GET ${target.resource} HTTP/1.1\r\n` +
    `Host: ${target.hostField}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${key}\r\n` +
    `Sec-WebSocket-Version: ${WS_VERSION}\r\n`;
  const protocols = options.protocols;
  if (protocols !== undefined && protocols.length !== 0) head += `Sec-WebSocket-Protocol: ${protocols.join(', ')}\r\n`;
  if (extensions !== '') head += `Sec-WebSocket-Extensions: ${extensions}\r\n`;
  if (options.origin !== undefined) head += `Origin: ${options.origin}\r\n`;
  if (target.authorization !== undefined) head += `Authorization: ${target.authorization}\r\n`;
  if (options.headers !== undefined) {
    for (const [name, value] of Object.entries(options.headers)) head += `${name}: ${value}\r\n`;
  }
  return Buffer.from(head + '\r\n', 'latin1');
}

/** Validate the options of one connect (once, at the boundary); returns the offered subprotocols. */
export function checkConnectOptions(options: WebSocketConnectOptions<unknown>): readonly string[] {
  checkOption(typeof options === 'object' && options !== null, 'options', 'an object', options);
  const protocols = options.protocols ?? [];
  checkOption(Array.isArray(protocols), 'protocols', 'an array of strings', protocols);
  const seen = new Set<string>();
  for (const p of protocols) {
    checkOption(typeof p === 'string' && TOKEN_RE.test(p) && !seen.has(p), 'protocols', 'distinct HTTP tokens', protocols);
    seen.add(p);
  }
  const origin = options.origin;
  checkOption(origin === undefined || (typeof origin === 'string' && isValidFieldValue(origin)), 'origin', 'a string without CR, LF or NUL', origin);
  const headers = options.headers;
  checkOption(headers === undefined || (typeof headers === 'object' && headers !== null), 'headers', 'an object of strings', headers);
  if (headers !== undefined) {
    for (const [name, value] of Object.entries(headers)) {
      checkOption(isValidFieldName(name) && !RESERVED_FIELDS.has(name.toLowerCase()), `headers.${name}`, 'an HTTP token other than the handshake fields', name);
      checkOption(typeof value === 'string' && isValidFieldValue(value), `headers.${name}`, 'a string without CR, LF or NUL', value);
    }
  }
  const timeout = options.handshakeTimeout;
  checkOption(timeout === undefined || isMs(timeout), 'handshakeTimeout', 'an integer number of ms from 0 to 2147483647', timeout);
  checkOption(options.tls === undefined || (typeof options.tls === 'object' && options.tls !== null), 'tls', 'an object of TLS options', options.tls);
  return protocols;
}
