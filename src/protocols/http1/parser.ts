/**
 * HTTP/1.1 request parser (RFC 9112): an explicit, resumable state machine over bytes.
 *
 * Model: `execute(data)` walks the bytes once, calling `onRequest` when a head is complete,
 * `onBody` with views of body bytes, and `onMessageComplete` at the end of each message.
 * Pipelined requests in one buffer are parsed back to back.
 *
 * Invariants:
 * - No chunk of the stream is ever copied or concatenated. Body bytes are handed out as views
 *   of `data`. The only bytes the parser needs again are those of an incomplete line of a head
 *   or trailer section (request line or field line): `execute` leaves them unconsumed, and the
 *   caller presents them again at the start of the next call, followed by new bytes (exactly
 *   the engine's `onData` contract). The parser remembers how far it already scanned, so each
 *   byte is examined once however the stream is split, and keeps only integers in between.
 *   An incomplete line is bounded by maxHeaderBytes, so the caller never holds more.
 * - Strings are made once per head: completed lines are recorded as offsets, and decoded with
 *   one native call for the whole run of lines (then sliced) when the head ends, or when the
 *   call ends first (their bytes are consumed then). Framing fields are read from the bytes.
 *   For the HTTP server (`lazyFields`), field lines that arrive in one call are not sliced at
 *   all: the head's one string goes to the server, which splits it only if they are read.
 * - Every decision depends only on the bytes seen so far, never on where the stream was split:
 *   the same bytes give the same callbacks (body views aside) and the same error.
 * - After an error the parser is dead: every later `execute` throws the same error.
 *
 * Hot path: `#head` (request line and fields, ~1-2 ns per byte of field value) and the body
 * cases of `#run` (one view per call). Each state is a tight loop over one byte-class table,
 * and a line that is all in the data runs through its states without a dispatch; no regex, no
 * per-byte allocation. The one native call per head (`latin1Slice`) costs about as much as
 * scanning 50 bytes.
 *
 * Strictness (each rejected with a stable code, see errors.ts): only CRLF ends a line (a bare
 * LF is refused, RFC 9112 §2.2 allows either choice); obs-fold, whitespace before a colon,
 * CTLs in values, non-token methods and names; Content-Length that is not 1*DIGIT or appears
 * twice (even identical); Content-Length with Transfer-Encoding; Transfer-Encoding in
 * HTTP/1.0, or not ending in chunked (400), or with another coding (501); a missing or
 * repeated Host in HTTP/1.1.
 *
 * Size: over 600 lines of code on purpose. It is one state machine: the head, body and chunked
 * states share the scan position, the limits and the recorded line offsets as fields of one
 * class, and the hot loops run from one state into the next without a call. Splitting the
 * states across modules would put a call and a hand-off of that state inside those loops; the
 * byte classes (chars.ts) and the errors (errors.ts) are already apart.
 */
import { C1mError, checkOption } from '../../core/index.js';
import {
  BACKSLASH, COLON, COMMA, CR, DQUOTE, EQUALS, FIELD_VALUE, HEX, HOST, HTAB, LF, QDTEXT, QUOTED_PAIR,
  SEMI, SP, TARGET, TOKEN, ascii, equalsLower,
} from './chars.js';
import { HttpParseError, type HttpParseErrorCode } from './errors.js';

/** A field line: the raw name (case as received) and the value without surrounding whitespace. */
export type Field = [name: string, value: string];

/**
 * A complete request head.
 *
 * Lifetime: a fresh object per request; the application may keep it. Its strings may be
 * slices of one string holding the whole head (at most maxHeaderBytes), kept alive by them.
 */
export interface RequestHead {
  /**
   * The method token, case-sensitive (`GET`, `POST`, ...). No method changes how a request
   * is framed: HEAD only matters to the response (no body), CONNECT sets `upgrade`.
   */
  method: string;
  /** The request-target as received (origin-form `/a?b`, absolute-form, authority-form, `*`). */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 (and for HTTP/1.2+, handled as 1.1 per RFC 9110 §6.2). */
  versionMinor: 0 | 1;
  /** Every field line in order, names as received. */
  headers: Field[];
  /** The Host value, or null when absent (only possible in HTTP/1.0). */
  host: string | null;
  /** Content-Length, or null when absent (always null when `chunked`). */
  contentLength: number | null;
  /** The body uses the chunked transfer coding. */
  chunked: boolean;
  /**
   * The connection stays open after this message: HTTP/1.1 unless `Connection: close`;
   * HTTP/1.0 only with `Connection: keep-alive` (and no `close`). When false, the parser
   * discards every later byte: the server answers this request, then closes.
   */
  keepAlive: boolean;
  /**
   * After this message the connection leaves HTTP: an HTTP/1.1 request with `Upgrade` and a
   * `Connection: upgrade` option, or any CONNECT request. The parser stops at the end of the
   * message and `execute` returns the offset where the new protocol's bytes begin.
   */
  upgrade: boolean;
  /** The Upgrade value (`websocket`), or null. Set even when `upgrade` is false. */
  upgradeProtocol: string | null;
  /**
   * HTTP/1.1 request with `Expect: 100-continue`: write `CONTINUE_RESPONSE` (or a final
   * status) before the client sends the body. Other expectations are left to the server (417).
   */
  expectContinue: boolean;
}

/**
 * Parser callbacks, called as methods of this object (so one object per connection can hold
 * its state without closures).
 *
 * Errors: an exception thrown by a callback propagates out of `execute` and leaves the parser
 * dead (every later `execute` rethrows it).
 */
export interface RequestParserCallbacks {
  /** A request head is complete and valid. Its body, if any, follows through `onBody`. */
  onRequest(head: RequestHead): void;
  /**
   * Body bytes, de-chunked.
   *
   * Lifetime: `chunk` is a view of the bytes passed to `execute`, valid only until this
   * callback returns. Copy what you keep.
   */
  onBody(chunk: Uint8Array): void;
  /** The message is complete. `trailers` holds the trailer fields of a chunked body, if any. */
  onMessageComplete(trailers?: Field[]): void;
}

/** Parser limits. Every limit has a safe default. */
export interface RequestParserOptions {
  /**
   * Bytes of the head (request line, fields, final CRLF, and any empty lines before it), and
   * separately of a trailer section and of all chunk extensions of one message.
   * Default 16 KiB. Past it: 431 (`ERR_C1M_HTTP_HEADERS_TOO_LARGE`), or 413 for extensions.
   */
  maxHeaderBytes?: number;
  /** Bytes of the request-target. Default 8 KiB. Past it: 414 (`ERR_C1M_HTTP_URI_TOO_LONG`). */
  maxUriLength?: number;
  /**
   * Body bytes of one request, checked against Content-Length before any body byte is read,
   * and against the running sum of chunk sizes before each chunk's data. Default 1 MiB.
   * Past it: 413 (`ERR_C1M_HTTP_BODY_TOO_LARGE`).
   */
  maxBodyBytes?: number;
  /** Field lines in a head (and, separately, in a trailer section). Default 100. Past it: 431. */
  maxHeaders?: number;
}

/** The default limits of `RequestParserOptions`. */
export const PARSER_DEFAULTS = {
  maxHeaderBytes: 16 * 1024,
  maxUriLength: 8 * 1024,
  maxBodyBytes: 1024 * 1024,
  maxHeaders: 100,
} as const;

// States. The line states come first: while in one of them, the bytes from #lineStart on are
// part of an incomplete line and are handed back to the caller.
const S_LINE_START = 0; // before the request line; empty lines (CRLF) are skipped here
const S_LINE_START_LF = 1; // saw CR of an empty line
const S_METHOD = 2;
const S_TARGET = 3;
const S_VERSION = 4;
const S_REQUEST_LF = 5; // saw CR after the version
const S_FIELD_START = 6; // start of a field line, or of the empty line ending the section
const S_FIELD_NAME = 7;
const S_FIELD_OWS = 8; // after the colon
const S_FIELD_VALUE = 9;
const S_FIELD_LF = 10; // saw CR after a value
const S_SECTION_LF = 11; // saw CR of the empty line ending the head or trailer section
const S_LAST_LINE_STATE = S_SECTION_LF;
const S_IDLE = 12; // between messages
const S_BODY = 13; // Content-Length body
const S_CHUNK_SIZE_START = 14;
const S_CHUNK_SIZE = 15;
const S_CHUNK_SIZE_LF = 16;
const S_EXT_BWS = 17; // whitespace after the chunk size: only ";" may follow
const S_EXT_NAME_START = 18;
const S_EXT_NAME = 19;
const S_EXT_AFTER_NAME = 20; // whitespace after a name: "=" or ";" may follow
const S_EXT_VALUE_START = 21;
const S_EXT_TOKEN = 22;
const S_EXT_QUOTED = 23;
const S_EXT_QUOTED_PAIR = 24;
const S_EXT_AFTER_VALUE = 25; // whitespace after a value: only ";" may follow
const S_CHUNK_DATA = 26;
const S_CHUNK_DATA_CR = 27;
const S_CHUNK_DATA_LF = 28;
const S_UPGRADED = 29;
const S_CLOSED = 30;
const S_DEAD = 31;

const MAX_CHUNK_SIZE_DIGITS = 16;

const L_HOST = ascii('host');
const L_EXPECT = ascii('expect');
const L_UPGRADE = ascii('upgrade');
const L_CONNECTION = ascii('connection');
const L_CONTENT_LENGTH = ascii('content-length');
const L_TRANSFER_ENCODING = ascii('transfer-encoding');
const L_CHUNKED = ascii('chunked');
const L_CLOSE = ascii('close');
const L_KEEP_ALIVE = ascii('keep-alive');
const L_100_CONTINUE = ascii('100-continue');

/**
 * `Buffer#latin1Slice` is what `toString('latin1', start, end)` calls after its argument
 * checks; undocumented but present in every Node version. Called once per head.
 */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/**
 * Offsets of the field lines completed during the current `execute` call and not yet decoded:
 * nameStart, nameEnd, valueStart, valueEnd per line. Shared by all parsers: it is only used
 * between a line's CRLF and the end of the same `#head` call, and no callback runs in between.
 */
let FIELD_OFFSETS = new Int32Array(4 * 64);

/** Common methods as constants (no allocation, and internalized for fast comparison), or null. */
function knownMethod(buf: Latin1Buffer, start: number, end: number): string | null {
  const b0 = buf[start];
  switch (end - start) {
    case 3:
      if (b0 === 0x47 && buf[start + 1] === 0x45 && buf[start + 2] === 0x54) return 'GET';
      if (b0 === 0x50 && buf[start + 1] === 0x55 && buf[start + 2] === 0x54) return 'PUT';
      break;
    case 4:
      if (b0 === 0x50 && buf[start + 1] === 0x4f && buf[start + 2] === 0x53 && buf[start + 3] === 0x54) return 'POST';
      if (b0 === 0x48 && buf[start + 1] === 0x45 && buf[start + 2] === 0x41 && buf[start + 3] === 0x44) return 'HEAD';
      break;
  }
  return null;
}

function asBuffer(data: Uint8Array): Latin1Buffer {
  // What the parser needs of a Buffer is latin1Slice; a property check is cheaper than instanceof.
  return (typeof (data as Latin1Buffer).latin1Slice === 'function' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)) as Latin1Buffer;
}

const fail = (code: HttpParseErrorCode): HttpParseError => new HttpParseError(code);

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** buf[start..end) is `HTTP/` DIGIT `.` DIGIT. */
function isHttpVersion(buf: Uint8Array, start: number, end: number): boolean {
  return (
    end - start === 8 &&
    buf[start] === 0x48 && buf[start + 1] === 0x54 && buf[start + 2] === 0x54 && buf[start + 3] === 0x50 &&
    buf[start + 4] === 0x2f && isDigit(buf[start + 5]) && buf[start + 6] === 0x2e && isDigit(buf[start + 7])
  );
}

/** The values of several Upgrade lines as one list (RFC 9110 §5.3). Rare. */
function joinUpgrade(fields: Field[]): string {
  return fields
    .filter(([name]) => name.length === 7 && name.toLowerCase() === 'upgrade')
    .map(([, value]) => value)
    .join(', ');
}

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/**
 * @internal The offset just past the first blank line (CRLF CRLF) that lies wholly within the
 * first `max` bytes of `data`, or -1: where a head read whole ends (the HTTP server's quick
 * upgrade, the WebSocket server's and client's handshakes).
 */
export function headEndWithin(data: Buffer, max: number): number {
  const at = (data.length > max ? data.subarray(0, max) : data).indexOf(CRLFCRLF);
  return at < 0 ? -1 : at + 4;
}

/**
 * @internal The list of fields in `text` from `start` on (field lines the parser already
 * validated, see `fieldText`): the list `RequestHead.headers` holds when the parser decodes it.
 */
export function parseFieldText(text: string, start: number): Field[] {
  const fields: Field[] = [];
  let at = start;
  while (at < text.length) {
    // A name is a token (no ":"), and a value holds no CR: the first of each ends the part.
    const colon = text.indexOf(':', at);
    const cr = text.indexOf('\r', colon);
    let vs = colon + 1;
    let ve = cr;
    let c = 0;
    while (vs < ve && ((c = text.charCodeAt(vs)) === SP || c === HTAB)) vs++;
    while (ve > vs && ((c = text.charCodeAt(ve - 1)) === SP || c === HTAB)) ve--;
    fields.push([text.slice(at, colon), text.slice(vs, ve)]);
    at = cr + 2;
  }
  return fields;
}

const isCount = (v: unknown, min: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

/**
 * An incremental HTTP/1.1 request parser for one connection.
 *
 * ```ts
 * onData(conn, data) {
 *   try {
 *     return parser.execute(data); // the unconsumed tail comes back with the next bytes
 *   } catch (err) {
 *     if (!(err instanceof HttpParseError)) throw err;
 *     conn.write(encodeResponseHead(err.status, [['Connection', 'close'], ['Content-Length', 0]]));
 *     return Action.Close;
 *   }
 * }
 * ```
 *
 * Threading: not re-entrant; do not call `execute` or `reset` from a callback.
 */
export class RequestParser {
  readonly #cb: RequestParserCallbacks;
  readonly #maxHeaderBytes: number;
  readonly #maxUriLength: number;
  readonly #maxBodyBytes: number;
  readonly #maxHeaders: number;
  readonly #lazyFields: boolean;

  #state = S_IDLE;
  #error: unknown = null;
  #busy = false;
  /** Bytes of the pending incomplete line already scanned (where the next call resumes). */
  #scanned = 0;
  /** Index in the current data where the current line starts (0 on entry when resuming). */
  #lineStart = 0;
  /** Head or trailer bytes still allowed from #lineStart on. */
  #budget = 0;
  /** Offsets from #lineStart: method end / name end; target end / value start; value end (set at CR). */
  #mark1 = 0;
  #mark2 = 0;
  #mark3 = 0;
  /** Field lines recorded in FIELD_OFFSETS, not yet decoded into #fields. */
  #pending = 0;
  /** The request line is complete and not yet decoded; its offsets (in the current data): */
  #requestLinePending = false;
  #methodStart = 0;
  #methodEnd = 0;
  #targetEnd = 0;

  // The message being parsed.
  #method = '';
  #target = '';
  #versionMinor: 0 | 1 = 1;
  #fields: Field[] = [];
  /** With lazyFields: the head's text, its field lines not decoded into #fields (see `fieldText`). */
  #fieldText: string | null = null;
  #fieldStart = 0;
  /** The Host value (null while the field lines are left as text). */
  #host: string | null = null;
  #inTrailers = false;
  /** Index in #fields of the Host line, of the first Upgrade line, and how many Upgrade lines. */
  #hostIndex = -1;
  #upgradeIndex = -1;
  #upgradeCount = 0;
  #contentLength = -1;
  #teSeen = false;
  #teChunked = false;
  #teChunkedLast = false;
  #teOther = false;
  #connClose = false;
  #connKeepAlive = false;
  #connUpgrade = false;
  #expectContinue = false;
  #keepAlive = true;
  #upgrade = false;
  /** Body bytes still expected: of the Content-Length body, or of the current chunk. */
  #remaining = 0;
  #bodyBytes = 0;
  #sizeDigits = 0;
  #extensionBytes = 0;

  /**
   * `lazyFields` is internal (the HTTP server's): when a head's field lines all arrive in one
   * `execute` call, `onRequest` gets an empty `headers` and a null `host`, and `fieldText`
   * holds the field lines as text.
   *
   * Errors: throws `ERR_C1M_INVALID_OPTION` when a limit is not a positive integer.
   */
  constructor(callbacks: RequestParserCallbacks, options: RequestParserOptions = {}, lazyFields = false) {
    this.#cb = callbacks;
    this.#lazyFields = lazyFields;
    this.#maxHeaderBytes = options.maxHeaderBytes ?? PARSER_DEFAULTS.maxHeaderBytes;
    this.#maxUriLength = options.maxUriLength ?? PARSER_DEFAULTS.maxUriLength;
    this.#maxBodyBytes = options.maxBodyBytes ?? PARSER_DEFAULTS.maxBodyBytes;
    this.#maxHeaders = options.maxHeaders ?? PARSER_DEFAULTS.maxHeaders;
    checkOption(isCount(this.#maxHeaderBytes, 16), 'maxHeaderBytes', 'an integer >= 16', this.#maxHeaderBytes);
    checkOption(isCount(this.#maxUriLength, 1), 'maxUriLength', 'a positive integer', this.#maxUriLength);
    checkOption(isCount(this.#maxBodyBytes, 0), 'maxBodyBytes', 'a non-negative integer', this.#maxBodyBytes);
    checkOption(isCount(this.#maxHeaders, 1), 'maxHeaders', 'a positive integer', this.#maxHeaders);
  }

  /**
   * Parse as much of `data` as possible. Returns how many bytes were consumed:
   * - normally `data.length`, or less when `data` ends inside a line of a head or trailer
   *   section: the unconsumed tail is that incomplete line and MUST be the start of the next
   *   call's `data` (followed by new bytes). Its length never exceeds maxHeaderBytes.
   * - after an upgrade (or CONNECT) message: the offset of the first byte of the new
   *   protocol. `upgraded` is then true and every later call returns 0.
   * - after a message with `keepAlive` false: every later byte is consumed and discarded.
   *
   * Lifetime: `data` is not retained; views passed to `onBody` are valid during the callback.
   *
   * Errors: throws `HttpParseError` (with `code` and `status`) on malformed input or a limit;
   * the parser is then dead and every later call throws the same error. An exception from a
   * callback propagates and kills the parser the same way. Throws `ERR_C1M_HTTP_PARSER_MISUSE`
   * when called re-entrantly or with fewer bytes than it left unconsumed.
   */
  execute(data: Uint8Array): number {
    if (this.#error !== null) throw this.#error;
    if (this.#busy) throw new C1mError('ERR_C1M_HTTP_PARSER_MISUSE', 'RequestParser.execute called from a parser callback');
    const len = data.length;
    const from = this.#scanned;
    if (from > len) {
      throw new C1mError('ERR_C1M_HTTP_PARSER_MISUSE', `execute needs the ${from} unconsumed bytes of the previous call again, got ${len}`);
    }
    this.#busy = true;
    try {
      const end = this.#run(asBuffer(data), from, len);
      if (this.#state > S_LAST_LINE_STATE) {
        this.#scanned = 0;
        return end;
      }
      // Hand the incomplete line back; on the next call it starts at offset 0.
      const lineStart = this.#lineStart;
      this.#scanned = len - lineStart;
      this.#lineStart = 0;
      return lineStart;
    } catch (err) {
      this.#error = err;
      this.#state = S_DEAD;
      throw err;
    } finally {
      this.#busy = false;
    }
  }

  /**
   * @internal With `lazyFields`, during `onRequest`: a text holding, from `fieldStart` on, the
   * head's field lines exactly as received (`Name: value\r\n` each, already validated) when
   * `head.headers` was left empty; else null. `parseFieldText` makes the list `headers` would hold.
   */
  get fieldText(): string | null {
    return this.#fieldText;
  }

  /** @internal See `fieldText`. */
  get fieldStart(): number {
    return this.#fieldStart;
  }

  /** True between messages: no byte of a next request has been seen (safe to close idle). */
  get idle(): boolean {
    return this.#state === S_IDLE;
  }

  /** True once an upgrade (or CONNECT) message is complete: the bytes that follow are not HTTP. */
  get upgraded(): boolean {
    return this.#state === S_UPGRADED;
  }

  /**
   * Forget everything, including an error or an upgrade: the parser expects a new request.
   * For reuse with a new connection, or to keep speaking HTTP after declining an upgrade
   * (then call `execute` with the bytes from the offset it returned).
   */
  reset(): void {
    if (this.#busy) throw new C1mError('ERR_C1M_HTTP_PARSER_MISUSE', 'RequestParser.reset called from a parser callback');
    this.#state = S_IDLE;
    this.#error = null;
    this.#scanned = 0;
    this.#lineStart = 0;
  }

  #run(buf: Latin1Buffer, i: number, len: number): number {
    while (i < len) {
      const state = this.#state;
      if (state <= S_LAST_LINE_STATE) {
        i = this.#head(buf, i, len);
        continue;
      }
      switch (state) {
        case S_IDLE:
          this.#beginMessage(i);
          break;
        case S_BODY:
        case S_CHUNK_DATA: {
          const rem = this.#remaining;
          const end = len - i > rem ? i + rem : len;
          this.#remaining = rem - (end - i);
          const chunk = buf.subarray(i, end);
          i = end;
          const done = this.#remaining === 0;
          if (done && state === S_CHUNK_DATA) this.#state = S_CHUNK_DATA_CR;
          this.#cb.onBody(chunk);
          if (done && state === S_BODY) this.#messageComplete(undefined);
          break;
        }
        case S_CHUNK_DATA_CR: {
          const c = buf[i];
          if (c !== CR) throw fail(c === LF ? 'ERR_C1M_HTTP_BARE_LF' : 'ERR_C1M_HTTP_INVALID_CHUNK_DATA');
          i++;
          this.#state = S_CHUNK_DATA_LF;
          break;
        }
        case S_CHUNK_DATA_LF:
          if (buf[i] !== LF) throw fail('ERR_C1M_HTTP_BARE_CR');
          i++;
          this.#state = S_CHUNK_SIZE_START;
          break;
        case S_CHUNK_SIZE_START: {
          const v = HEX[buf[i]];
          if (v < 0) throw fail('ERR_C1M_HTTP_INVALID_CHUNK_SIZE');
          this.#remaining = v;
          this.#sizeDigits = 1;
          i++;
          this.#state = S_CHUNK_SIZE;
          break;
        }
        case S_CHUNK_SIZE:
          i = this.#chunkSize(buf, i, len);
          break;
        case S_CHUNK_SIZE_LF:
          if (buf[i] !== LF) throw fail('ERR_C1M_HTTP_BARE_CR');
          i++;
          this.#chunkLineDone(i);
          break;
        case S_UPGRADED:
          return i;
        case S_CLOSED:
          return len;
        default: // S_EXT_*: the dead state never gets here (execute throws first)
          i = this.#extension(buf, i, len);
      }
    }
    return i;
  }

  #beginMessage(i: number): void {
    this.#state = S_LINE_START;
    this.#lineStart = i;
    this.#budget = this.#maxHeaderBytes;
    this.#fields = [];
    this.#fieldText = null;
    this.#host = null;
    this.#pending = 0;
    this.#requestLinePending = false;
    this.#inTrailers = false;
    this.#hostIndex = -1;
    this.#upgradeIndex = -1;
    this.#upgradeCount = 0;
    this.#contentLength = -1;
    this.#teSeen = false;
    this.#teChunked = false;
    this.#teChunkedLast = false;
    this.#teOther = false;
    this.#connClose = false;
    this.#connKeepAlive = false;
    this.#connUpgrade = false;
    this.#expectContinue = false;
    this.#bodyBytes = 0;
    this.#extensionBytes = 0;
  }

  /**
   * The line states: request line, field lines, the empty line ending a section. Returns at
   * the end of the data (the incomplete line starts at #lineStart) or when the section ends.
   * Completed lines are recorded as offsets and decoded together when it returns (`#decode`).
   *
   * The states are tested in line order, each step going straight on to the next: a line that
   * is all in `buf` runs from its first state to its last without a dispatch, and the loop only
   * turns at the end of a line. Positions within the line live in locals, and go back to
   * #mark1-3 only when the call ends inside a line.
   */
  #head(buf: Latin1Buffer, i: number, len: number): number {
    let state = this.#state;
    let lineStart = this.#lineStart;
    const regionStart = lineStart;
    // The first byte past the budget: the limit is the same for every line of a section,
    // because the budget shrinks by exactly as much as the line start moves.
    const limit = lineStart + this.#budget;
    const stop = limit < len ? limit : len;
    let mark1 = this.#mark1;
    let mark2 = this.#mark2;
    let mark3 = this.#mark3;
    let c = 0;
    // The tables as locals: the loops below then load them once, not once per byte.
    const token = TOKEN;
    const target = TARGET;
    const fieldValue = FIELD_VALUE;
    while (i < stop) {
      if (state < S_FIELD_START) {
        // The request line, and the empty lines before it.
        if (state === S_LINE_START) {
          c = buf[i];
          if (c === CR) {
            i++;
            state = S_LINE_START_LF;
            continue;
          }
          if (c === LF) throw fail('ERR_C1M_HTTP_BARE_LF');
          state = S_METHOD;
        } else if (state === S_LINE_START_LF) {
          if (buf[i] !== LF) throw fail('ERR_C1M_HTTP_BARE_CR');
          i++;
          lineStart = i;
          state = S_LINE_START;
          continue;
        }
        if (state === S_METHOD) {
          while (i < stop && token[buf[i]] === 1) i++;
          if (i === stop) break;
          if (buf[i] !== SP || i === lineStart) throw fail('ERR_C1M_HTTP_INVALID_METHOD');
          mark1 = i - lineStart;
          i++;
          state = S_TARGET;
        }
        if (state === S_TARGET) {
          const targetStart = lineStart + mark1 + 1;
          while (i < stop && target[buf[i]] === 1) i++;
          if (i - targetStart > this.#maxUriLength) throw fail('ERR_C1M_HTTP_URI_TOO_LONG');
          if (i === stop) break;
          if (buf[i] !== SP || i === targetStart) throw fail('ERR_C1M_HTTP_INVALID_TARGET');
          mark2 = i - lineStart;
          i++;
          state = S_VERSION;
        }
        if (state === S_VERSION) {
          const versionStart = lineStart + mark2 + 1;
          if (i === versionStart && i + 8 < stop && buf[i + 8] === CR && isHttpVersion(buf, i, i + 8)) {
            i += 8; // the loop below would stop at this CR: nothing before it is CR or LF
          } else {
            while (i < stop && (c = buf[i]) !== CR) {
              if (c === LF) throw fail('ERR_C1M_HTTP_BARE_LF');
              if (i - versionStart === 8) throw fail('ERR_C1M_HTTP_INVALID_VERSION');
              i++;
            }
            if (i === stop) break;
          }
          this.#version(buf, versionStart, i);
          i++;
          state = S_REQUEST_LF;
          if (i === stop) break;
        }
        // S_REQUEST_LF
        if (buf[i] !== LF) throw fail('ERR_C1M_HTTP_BARE_CR');
        i++;
        this.#requestLinePending = true;
        this.#methodStart = lineStart;
        this.#methodEnd = lineStart + mark1;
        this.#targetEnd = lineStart + mark2;
        lineStart = i;
        state = S_FIELD_START;
        continue;
      }
      if (state === S_FIELD_START) {
        c = buf[i];
        if (token[c] !== 1) {
          if (c !== CR) {
            throw fail(
              c === SP || c === HTAB ? 'ERR_C1M_HTTP_OBS_FOLD' : c === LF ? 'ERR_C1M_HTTP_BARE_LF' : 'ERR_C1M_HTTP_INVALID_HEADER_NAME',
            );
          }
          i++;
          state = S_SECTION_LF;
          continue;
        }
        if (this.#fields.length + this.#pending === this.#maxHeaders) throw fail('ERR_C1M_HTTP_TOO_MANY_HEADERS');
        i++;
        state = S_FIELD_NAME;
      }
      if (state === S_FIELD_NAME) {
        while (i < stop && token[buf[i]] === 1) i++;
        if (i === stop) break;
        c = buf[i];
        if (c !== COLON) {
          throw fail(c === SP || c === HTAB ? 'ERR_C1M_HTTP_HEADER_NAME_WHITESPACE' : 'ERR_C1M_HTTP_INVALID_HEADER_NAME');
        }
        mark1 = i - lineStart;
        i++;
        state = S_FIELD_OWS;
      }
      if (state === S_FIELD_OWS) {
        while (i < stop && ((c = buf[i]) === SP || c === HTAB)) i++;
        if (i === stop) break;
        mark2 = i - lineStart;
        state = S_FIELD_VALUE;
      }
      if (state === S_FIELD_VALUE) {
        while (i < stop && fieldValue[buf[i]] !== 0) i++;
        if (i === stop) break;
        c = buf[i];
        if (c !== CR) throw fail(c === LF ? 'ERR_C1M_HTTP_BARE_LF' : 'ERR_C1M_HTTP_INVALID_HEADER_VALUE');
        // Trim OWS at the end: the whole line is still in buf.
        const valueStart = lineStart + mark2;
        let valueEnd = i;
        while (valueEnd > valueStart && ((c = buf[valueEnd - 1]) === SP || c === HTAB)) valueEnd--;
        mark3 = valueEnd - lineStart;
        i++;
        state = S_FIELD_LF;
        if (i === stop) break;
      }
      if (state === S_FIELD_LF) {
        if (buf[i] !== LF) throw fail('ERR_C1M_HTTP_BARE_CR');
        i++;
        this.#fieldLine(buf, lineStart, mark1, lineStart + mark2, lineStart + mark3);
        lineStart = i;
        state = S_FIELD_START;
        continue;
      }
      // S_SECTION_LF
      if (buf[i] !== LF) throw fail('ERR_C1M_HTTP_BARE_CR');
      this.#decode(buf, regionStart, lineStart, true);
      i++;
      this.#lineStart = i;
      if (this.#inTrailers) {
        const trailers = this.#fields;
        this.#messageComplete(trailers.length > 0 ? trailers : undefined);
      } else {
        this.#headComplete();
      }
      return i;
    }
    if (i < len) throw fail('ERR_C1M_HTTP_HEADERS_TOO_LARGE');
    this.#state = state;
    this.#lineStart = lineStart;
    this.#budget = limit - lineStart;
    this.#mark1 = mark1;
    this.#mark2 = mark2;
    this.#mark3 = mark3;
    // The completed lines are consumed now: decode them before their bytes go.
    if (this.#pending > 0 || this.#requestLinePending) this.#decode(buf, regionStart, lineStart, false);
    return i;
  }

  /**
   * Decode the recorded lines, all within buf[from..to), with one native call for the whole
   * region and string slices for the parts (about twice as fast as one call per string).
   * `last`: the section ends at `to`. With lazyFields, a field section that is all in the
   * region stays one string (the server decodes only what the application reads).
   */
  #decode(buf: Latin1Buffer, from: number, to: number, last: boolean): void {
    const text = buf.latin1Slice(from, to);
    if (this.#requestLinePending) {
      this.#requestLinePending = false;
      const methodStart = this.#methodStart;
      const methodEnd = this.#methodEnd;
      this.#method = knownMethod(buf, methodStart, methodEnd) ?? text.slice(methodStart - from, methodEnd - from);
      this.#target = text.slice(methodEnd + 1 - from, this.#targetEnd - from);
    }
    const offsets = FIELD_OFFSETS;
    const end = 4 * this.#pending;
    if (end === 0) return;
    this.#pending = 0;
    const fields = this.#fields;
    const host = this.#hostIndex - fields.length;
    if (last && this.#lazyFields && fields.length === 0 && !this.#inTrailers && this.#upgradeIndex === -1) {
      this.#fieldText = text;
      this.#fieldStart = offsets[0] - from;
      return;
    }
    for (let k = 0; k < end; k += 4) {
      fields.push([text.slice(offsets[k] - from, offsets[k + 1] - from), text.slice(offsets[k + 2] - from, offsets[k + 3] - from)]);
    }
    if (host >= 0 && host < end / 4 && !this.#inTrailers) this.#host = fields[this.#hostIndex][1];
  }

  /** Validate `HTTP/d.d` at buf[start..end). */
  #version(buf: Latin1Buffer, start: number, end: number): void {
    if (!isHttpVersion(buf, start, end)) throw fail('ERR_C1M_HTTP_INVALID_VERSION');
    const minor = buf[start + 7] - 0x30;
    if (buf[start + 5] !== 0x31) throw fail('ERR_C1M_HTTP_UNSUPPORTED_VERSION');
    this.#versionMinor = minor === 0 ? 0 : 1;
  }

  /** A complete field line at buf[lineStart..] (value at [vs, ve)): record it, and read the framing fields. */
  #fieldLine(buf: Latin1Buffer, lineStart: number, nameLength: number, vs: number, ve: number): void {
    const index = this.#fields.length + this.#pending;
    const at = 4 * this.#pending++;
    if (at === FIELD_OFFSETS.length) {
      const grown = new Int32Array(2 * at);
      grown.set(FIELD_OFFSETS);
      FIELD_OFFSETS = grown;
    }
    const offsets = FIELD_OFFSETS;
    offsets[at] = lineStart;
    offsets[at + 1] = lineStart + nameLength;
    offsets[at + 2] = vs;
    offsets[at + 3] = ve;
    // Trailer fields carry no framing (RFC 9110 §6.5.1): reported, never interpreted.
    if (this.#inTrailers) return;
    switch (nameLength) {
      case 4:
        if (equalsLower(buf, lineStart, L_HOST)) {
          if (this.#hostIndex !== -1) throw fail('ERR_C1M_HTTP_DUPLICATE_HOST');
          for (let k = vs; k < ve; k++) if (HOST[buf[k]] !== 1) throw fail('ERR_C1M_HTTP_INVALID_HOST');
          this.#hostIndex = index;
        }
        break;
      case 6:
        if (equalsLower(buf, lineStart, L_EXPECT) && ve - vs === 12 && equalsLower(buf, vs, L_100_CONTINUE)) {
          this.#expectContinue = true;
        }
        break;
      case 7:
        if (equalsLower(buf, lineStart, L_UPGRADE)) {
          if (this.#upgradeIndex === -1) this.#upgradeIndex = index;
          this.#upgradeCount++;
        }
        break;
      case 10:
        if (equalsLower(buf, lineStart, L_CONNECTION)) this.#connection(buf, vs, ve);
        break;
      case 14:
        if (equalsLower(buf, lineStart, L_CONTENT_LENGTH)) this.#contentLengthField(buf, vs, ve);
        break;
      case 17:
        if (equalsLower(buf, lineStart, L_TRANSFER_ENCODING)) this.#transferEncoding(buf, vs, ve);
        break;
    }
  }

  #contentLengthField(buf: Latin1Buffer, vs: number, ve: number): void {
    if (this.#contentLength !== -1) throw fail('ERR_C1M_HTTP_DUPLICATE_CONTENT_LENGTH');
    if (vs === ve) throw fail('ERR_C1M_HTTP_INVALID_CONTENT_LENGTH');
    let n = 0;
    for (let k = vs; k < ve; k++) {
      const d = buf[k] - 0x30;
      if (d < 0 || d > 9) throw fail('ERR_C1M_HTTP_INVALID_CONTENT_LENGTH');
      // Saturate: any length past 2^53 is simply "too large" (413 at the end of the head).
      n = n > Number.MAX_SAFE_INTEGER ? n : n * 10 + d;
    }
    this.#contentLength = n;
  }

  /** Transfer-Encoding: a list of codings; only `chunked`, once, and last, is understood. */
  #transferEncoding(buf: Latin1Buffer, vs: number, ve: number): void {
    this.#teSeen = true;
    let k = vs;
    while (k < ve) {
      let c = buf[k];
      if (c === COMMA || c === SP || c === HTAB) {
        k++; // empty list elements and OWS are allowed (RFC 9110 §5.6.1)
        continue;
      }
      const start = k;
      while (k < ve && TOKEN[buf[k]] === 1) k++;
      if (k === start) throw fail('ERR_C1M_HTTP_INVALID_TRANSFER_ENCODING');
      const isChunked = k - start === 7 && equalsLower(buf, start, L_CHUNKED);
      // Skip to the end of the element: OWS, then optional parameters (";" ...).
      while (k < ve && ((c = buf[k]) === SP || c === HTAB)) k++;
      let params = false;
      if (k < ve && buf[k] === SEMI) {
        params = true;
        while (k < ve && buf[k] !== COMMA) k++;
      }
      if (k < ve && buf[k] !== COMMA) throw fail('ERR_C1M_HTTP_INVALID_TRANSFER_ENCODING');
      if (isChunked && !params) {
        if (this.#teChunked) throw fail('ERR_C1M_HTTP_INVALID_TRANSFER_ENCODING');
        this.#teChunked = true;
        this.#teChunkedLast = true;
      } else {
        this.#teOther = true;
        this.#teChunkedLast = false;
      }
    }
  }

  /** Connection: a list of options; close, keep-alive and upgrade matter here. */
  #connection(buf: Latin1Buffer, vs: number, ve: number): void {
    let k = vs;
    while (k < ve) {
      let c = buf[k];
      if (c === COMMA || c === SP || c === HTAB) {
        k++;
        continue;
      }
      const start = k;
      while (k < ve && (c = buf[k]) !== COMMA && c !== SP && c !== HTAB) k++;
      const n = k - start;
      if (n === 5 && equalsLower(buf, start, L_CLOSE)) this.#connClose = true;
      else if (n === 10 && equalsLower(buf, start, L_KEEP_ALIVE)) this.#connKeepAlive = true;
      else if (n === 7 && equalsLower(buf, start, L_UPGRADE)) this.#connUpgrade = true;
    }
  }

  /** The head is complete: check framing (RFC 9112 §6.3), report it, and set up the body. */
  #headComplete(): void {
    const minor = this.#versionMinor;
    const contentLength = this.#contentLength;
    if (this.#teSeen) {
      if (contentLength !== -1) throw fail('ERR_C1M_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING');
      if (minor === 0) throw fail('ERR_C1M_HTTP_INVALID_TRANSFER_ENCODING');
      if (!this.#teChunkedLast) throw fail('ERR_C1M_HTTP_CHUNKED_NOT_LAST');
      if (this.#teOther) throw fail('ERR_C1M_HTTP_UNSUPPORTED_TRANSFER_CODING');
    }
    if (minor === 1 && this.#hostIndex === -1) throw fail('ERR_C1M_HTTP_MISSING_HOST');
    if (contentLength > this.#maxBodyBytes) throw fail('ERR_C1M_HTTP_BODY_TOO_LARGE');

    const method = this.#method;
    const fields = this.#fields;
    const upgradeProtocol = this.#upgradeIndex === -1 ? null : this.#upgradeCount === 1 ? fields[this.#upgradeIndex][1] : joinUpgrade(fields);
    const keepAlive = minor === 1 ? !this.#connClose : this.#connKeepAlive && !this.#connClose;
    const upgrade = method === 'CONNECT' || (minor === 1 && this.#connUpgrade && upgradeProtocol !== null);
    const chunked = this.#teSeen;
    this.#keepAlive = keepAlive;
    this.#upgrade = upgrade;
    const head: RequestHead = {
      method,
      target: this.#target,
      versionMinor: minor,
      headers: fields,
      host: this.#host,
      contentLength: contentLength === -1 ? null : contentLength,
      chunked,
      keepAlive,
      upgrade,
      upgradeProtocol,
      expectContinue: minor === 1 && this.#expectContinue,
    };
    const bodyless = !chunked && contentLength <= 0;
    if (chunked) {
      this.#state = S_CHUNK_SIZE_START;
    } else if (!bodyless) {
      this.#state = S_BODY;
      this.#remaining = contentLength;
    } else {
      this.#state = S_IDLE; // until #messageComplete picks the state after this message
    }
    this.#cb.onRequest(head);
    if (bodyless) this.#messageComplete(undefined);
  }

  #messageComplete(trailers: Field[] | undefined): void {
    this.#state = this.#upgrade ? S_UPGRADED : this.#keepAlive ? S_IDLE : S_CLOSED;
    this.#cb.onMessageComplete(trailers);
  }

  /** Hex digits of a chunk size, then what may follow them. */
  #chunkSize(buf: Latin1Buffer, i: number, len: number): number {
    let size = this.#remaining;
    let digits = this.#sizeDigits;
    let v = 0;
    while (i < len && (v = HEX[buf[i]]) >= 0) {
      if (++digits > MAX_CHUNK_SIZE_DIGITS) throw fail('ERR_C1M_HTTP_CHUNK_SIZE_OVERFLOW');
      size = size * 16 + v;
      i++;
    }
    if (size > Number.MAX_SAFE_INTEGER) throw fail('ERR_C1M_HTTP_CHUNK_SIZE_OVERFLOW');
    this.#remaining = size;
    this.#sizeDigits = digits;
    if (i === len) return i;
    const c = buf[i];
    if (c === CR) this.#state = S_CHUNK_SIZE_LF;
    else if (c === SEMI) this.#state = S_EXT_NAME_START;
    else if (c === SP || c === HTAB) this.#state = S_EXT_BWS;
    else throw fail(c === LF ? 'ERR_C1M_HTTP_BARE_LF' : 'ERR_C1M_HTTP_INVALID_CHUNK_SIZE');
    if (c !== CR) this.#countExtension();
    return i + 1;
  }

  /** The CRLF of a chunk-size line arrived at i - 1. */
  #chunkLineDone(i: number): void {
    const size = this.#remaining;
    if (size === 0) {
      // last-chunk: the trailer section follows, parsed like a head.
      this.#state = S_FIELD_START;
      this.#inTrailers = true;
      this.#lineStart = i;
      this.#budget = this.#maxHeaderBytes;
      this.#fields = [];
      this.#pending = 0;
      return;
    }
    this.#bodyBytes += size;
    if (this.#bodyBytes > this.#maxBodyBytes) throw fail('ERR_C1M_HTTP_BODY_TOO_LARGE');
    this.#state = S_CHUNK_DATA;
  }

  /** Count one byte of a chunk-size line after the digits (checked per byte: split-independent). */
  #countExtension(): void {
    if (++this.#extensionBytes > this.#maxHeaderBytes) throw fail('ERR_C1M_HTTP_CHUNK_EXTENSIONS_TOO_LARGE');
  }

  /**
   * chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), validated and
   * ignored. Extensions are rare; this path favours plainness over speed.
   */
  #extension(buf: Latin1Buffer, i: number, len: number): number {
    let state = this.#state;
    while (i < len) {
      const c = buf[i];
      this.#countExtension();
      const ws = c === SP || c === HTAB;
      let next = -1;
      switch (state) {
        case S_EXT_BWS:
          if (ws) next = state;
          else if (c === SEMI) next = S_EXT_NAME_START;
          break;
        case S_EXT_NAME_START:
          if (ws) next = state;
          else if (TOKEN[c] === 1) next = S_EXT_NAME;
          break;
        case S_EXT_NAME:
        case S_EXT_TOKEN:
          if (TOKEN[c] === 1) next = state;
          else if (c === SEMI) next = S_EXT_NAME_START;
          else if (c === CR) next = S_CHUNK_SIZE_LF;
          else if (ws) next = state === S_EXT_NAME ? S_EXT_AFTER_NAME : S_EXT_AFTER_VALUE;
          else if (c === EQUALS && state === S_EXT_NAME) next = S_EXT_VALUE_START;
          break;
        case S_EXT_AFTER_NAME:
          if (ws) next = state;
          else if (c === EQUALS) next = S_EXT_VALUE_START;
          else if (c === SEMI) next = S_EXT_NAME_START;
          break;
        case S_EXT_VALUE_START:
          if (ws) next = state;
          else if (c === DQUOTE) next = S_EXT_QUOTED;
          else if (TOKEN[c] === 1) next = S_EXT_TOKEN;
          break;
        case S_EXT_QUOTED:
          if (c === DQUOTE) next = S_EXT_AFTER_VALUE;
          else if (c === BACKSLASH) next = S_EXT_QUOTED_PAIR;
          else if (QDTEXT[c] === 1) next = state;
          break;
        case S_EXT_QUOTED_PAIR:
          if (QUOTED_PAIR[c] === 1) next = S_EXT_QUOTED;
          break;
        case S_EXT_AFTER_VALUE:
          if (ws) next = state;
          else if (c === SEMI) next = S_EXT_NAME_START;
          else if (c === CR) next = S_CHUNK_SIZE_LF;
          break;
      }
      if (next === -1) throw fail(c === LF ? 'ERR_C1M_HTTP_BARE_LF' : 'ERR_C1M_HTTP_INVALID_CHUNK_EXTENSION');
      i++;
      state = next;
      if (state === S_CHUNK_SIZE_LF) break;
    }
    this.#state = state;
    return i;
  }
}
