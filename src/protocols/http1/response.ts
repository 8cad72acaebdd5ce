/**
 * HTTP/1.1 response framing as pure functions: status line and fields, chunked coding.
 *
 * Invariant: nothing here writes a byte that could end a line or a field early. Names must be
 * tokens; values and reason phrases may hold only HTAB, SP, VCHAR and obs-text (no CR, LF,
 * NUL or other CTL), so a value taken from a request can never inject a field or a response.
 *
 * Errors (misuse, thrown as `C1mError`): `ERR_C1M_HTTP_INVALID_STATUS` for a status outside
 * 100-999, `ERR_C1M_HTTP_INVALID_FIELD` for a bad name, value or reason phrase.
 */
import { C1mError } from '../../core/index.js';
import { FIELD_VALUE, TOKEN } from './chars.js';

/** Reason phrases of the registered status codes (RFC 9110 §15 and the IANA registry). */
export const STATUS_REASONS: Readonly<Record<number, string>> = Object.freeze({
  100: 'Continue',
  101: 'Switching Protocols',
  102: 'Processing',
  103: 'Early Hints',
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  203: 'Non-Authoritative Information',
  204: 'No Content',
  205: 'Reset Content',
  206: 'Partial Content',
  207: 'Multi-Status',
  208: 'Already Reported',
  226: 'IM Used',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  304: 'Not Modified',
  305: 'Use Proxy',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  417: 'Expectation Failed',
  418: "I'm a Teapot",
  421: 'Misdirected Request',
  422: 'Unprocessable Content',
  423: 'Locked',
  424: 'Failed Dependency',
  425: 'Too Early',
  426: 'Upgrade Required',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
  506: 'Variant Also Negotiates',
  507: 'Insufficient Storage',
  508: 'Loop Detected',
  510: 'Not Extended',
  511: 'Network Authentication Required',
});

/** Response fields: `[name, value]` pairs in order, or an object (an array value repeats the field). */
export type ResponseFields =
  | readonly (readonly [name: string, value: string | number])[]
  | Readonly<Record<string, string | number | readonly (string | number)[]>>;

/** Options of `encodeResponseHead`. */
export interface ResponseHeadOptions {
  /** Reason phrase. Default: `STATUS_REASONS[status]`, or empty for an unregistered status. */
  reason?: string;
  /** 1 (default) answers `HTTP/1.1`, 0 answers `HTTP/1.0`. */
  versionMinor?: 0 | 1;
}

/** True when `name` is a non-empty token (RFC 9110 §5.1). */
export function isValidFieldName(name: string): boolean {
  if (name.length === 0) return false;
  for (let k = 0; k < name.length; k++) {
    const c = name.charCodeAt(k);
    if (c > 0xff || TOKEN[c] !== 1) return false;
  }
  return true;
}

/**
 * True when `value` may be sent as a field value or reason phrase: HTAB, SP, VCHAR and
 * obs-text only (CR, LF, NUL, other CTLs and characters above U+00FF are refused).
 */
export function isValidFieldValue(value: string): boolean {
  for (let k = 0; k < value.length; k++) {
    const c = value.charCodeAt(k);
    if (c > 0xff || FIELD_VALUE[c] === 0) return false;
  }
  return true;
}

function invalidField(what: string, value: string): C1mError {
  return new C1mError('ERR_C1M_HTTP_INVALID_FIELD', `invalid ${what}: ${JSON.stringify(value)}`);
}

/** Status lines already formatted, for registered codes. */
const STATUS_LINES: string[][] = [[], []];

function statusLine(status: number, versionMinor: 0 | 1, reason: string | undefined): string {
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new C1mError('ERR_C1M_HTTP_INVALID_STATUS', `status must be an integer from 100 to 999, got ${String(status)}`);
  }
  if (reason === undefined) {
    const cached = STATUS_LINES[versionMinor][status];
    if (cached !== undefined) return cached;
    reason = STATUS_REASONS[status] ?? '';
  } else if (!isValidFieldValue(reason)) {
    throw invalidField('reason phrase', reason);
  }
  // The SP before the reason is required even when the reason is empty (RFC 9112 §4).
  const line = `HTTP/1.${versionMinor} ${status} ${reason}\r\n`;
  if (reason === STATUS_REASONS[status]) STATUS_LINES[versionMinor][status] = line;
  return line;
}

function fieldLine(name: string, value: string | number): string {
  if (!isValidFieldName(name)) throw invalidField('field name', name);
  // A number must be finite: `Content-Length: NaN` is a bug, never a value to send.
  const v = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof v !== 'string' || !isValidFieldValue(v)) throw invalidField(`value of field ${name}`, String(v));
  return `${name}: ${v}\r\n`;
}

/** Field lines for `fields`, each ending in CRLF. */
function formatFields(fields: ResponseFields): string {
  let out = '';
  if (Array.isArray(fields)) {
    const list = fields as readonly (readonly [string, string | number])[];
    for (let k = 0; k < list.length; k++) out += fieldLine(list[k][0], list[k][1]);
  } else {
    const record = fields as Readonly<Record<string, string | number | readonly (string | number)[]>>;
    for (const name of Object.keys(record)) {
      const value = record[name];
      if (Array.isArray(value)) for (const v of value as readonly (string | number)[]) out += fieldLine(name, v);
      else out += fieldLine(name, value as string | number);
    }
  }
  return out;
}

/**
 * The head of a response as text: status line, one line per field, and the empty line.
 * Every character is below U+0100: encode it as latin1 (`encodeResponseHead` does).
 *
 * Errors: `ERR_C1M_HTTP_INVALID_STATUS`, `ERR_C1M_HTTP_INVALID_FIELD`.
 */
export function formatResponseHead(status: number, fields: ResponseFields = [], options: ResponseHeadOptions = {}): string {
  return statusLine(status, options.versionMinor === 0 ? 0 : 1, options.reason) + formatFields(fields) + '\r\n';
}

/**
 * The head of a response as bytes, ready for `conn.write`.
 *
 * Errors: `ERR_C1M_HTTP_INVALID_STATUS`, `ERR_C1M_HTTP_INVALID_FIELD`.
 */
export function encodeResponseHead(status: number, fields: ResponseFields = [], options: ResponseHeadOptions = {}): Buffer {
  return Buffer.from(formatResponseHead(status, fields, options), 'latin1');
}

/**
 * `HTTP/1.1 100 Continue` and its empty line: the interim answer to `Expect: 100-continue`.
 * A shared buffer: do not modify it.
 */
export const CONTINUE_RESPONSE: Buffer = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

/**
 * The size line that opens one chunk of `size` bytes (`size` > 0): hex digits and CRLF.
 * Send it, the chunk's bytes, then `CRLF`.
 *
 * Errors: a size that is not a positive safe integer throws a `RangeError` (an empty chunk
 * would end the body: use `encodeLastChunk`).
 */
export function encodeChunkHeader(size: number): Buffer {
  if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`chunk size must be a positive safe integer, got ${size}`);
  return Buffer.from(`${size.toString(16)}\r\n`, 'latin1');
}

/** CRLF: ends a chunk's data. */
export const CRLF: Buffer = Buffer.from('\r\n', 'latin1');

/**
 * One chunk as pieces for `conn.writev` (size line, the data itself, CRLF): the data is not
 * copied. An empty `data` gives no pieces, since an empty chunk would end the body.
 */
export function encodeChunk(data: Uint8Array): Uint8Array[] {
  if (data.length === 0) return [];
  return [encodeChunkHeader(data.length), data, CRLF];
}

const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/**
 * The end of a chunked body: the last chunk, the trailer fields if any, and the empty line.
 * Without trailers the same shared buffer is returned each time: do not modify it.
 *
 * Errors: `ERR_C1M_HTTP_INVALID_FIELD` for a bad trailer name or value.
 */
export function encodeLastChunk(trailers?: ResponseFields): Buffer {
  if (trailers === undefined) return LAST_CHUNK;
  return Buffer.from(`0\r\n${formatFields(trailers)}\r\n`, 'latin1');
}
