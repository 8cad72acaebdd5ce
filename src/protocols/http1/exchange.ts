/**
 * The request and response objects of the HTTP/1.1 server (`HttpRequest`, `HttpResponse`) and
 * the response head encoding they share. A response writes through the session that owns it
 * (`ResponseSession`, implemented by server.ts's per-connection session): it writes at once
 * when it heads the session's queue, else keeps its bytes until the responses before it end.
 *
 * Lifetime: a request and its response belong to one connection's session until the response
 * ends; the session (not these objects) is what is pooled between requests.
 */
import { C1mError, type Connection } from '../../core/index.js';
import { parseFieldText, type Field, type RequestHead } from './parser.js';
import { CONTINUE_RESPONSE, STATUS_REASONS, encodeLastChunk, formatResponseHead, isValidFieldName, isValidFieldValue } from './response.js';

/** What a response needs of the session that owns it. */
export interface ResponseSession {
  readonly conn: Connection;
  /** The connection is gone: writes are dropped. */
  readonly closed: boolean;
  /** Responses in request order; the first one writes to the connection. */
  readonly queue: readonly HttpResponse[];
  /** `res` ended: start the next response (or release the session). */
  finished(res: HttpResponse): void;
  /** Cut the connection (a route failed after the head left). */
  abort(): void;
}

const EMPTY = Buffer.alloc(0);
/** Bodies announced up to this size get their buffer at once. */
const PREALLOCATE_MAX = 16 * 1024;

/**
 * The `Date` field line (IMF-fixdate), made on first use and dropped at the end of its second
 * by one unref'd timer per process (not per connection), so a response never reads the clock.
 */
let dateLine = '';
const dropDate = (): void => {
  dateLine = '';
};
function dateField(): string {
  if (dateLine === '') {
    const now = Date.now();
    dateLine = `Date: ${new Date(now).toUTCString()}\r\n`;
    setTimeout(dropDate, 1000 - (now % 1000)).unref();
  }
  return dateLine;
}

/** Status lines with their CRLF (`HTTP/1.1 200 OK\r\n`), by status. */
const STATUS_LINES: string[] = [];
function statusLine(status: number): string {
  return (STATUS_LINES[status] ??= formatResponseHead(status).slice(0, -2));
}

/** The path of a request-target: origin-form up to `?`, the path of an absolute-form, or `*`. */
function splitTarget(target: string): [path: string, query: string] {
  let start = 0;
  if (target.charCodeAt(0) !== 0x2f && target !== '*') {
    // absolute-form (`http://host/p?q`) or authority-form (CONNECT host:port).
    const scheme = target.indexOf('://');
    if (scheme === -1) return [target, ''];
    const slash = target.indexOf('/', scheme + 3);
    if (slash === -1) {
      const q = target.indexOf('?', scheme + 3);
      return ['/', q === -1 ? '' : target.slice(q + 1)];
    }
    start = slash;
  }
  const q = target.indexOf('?', start);
  return q === -1 ? [start === 0 ? target : target.slice(start), ''] : [target.slice(start, q), target.slice(q + 1)];
}

/**
 * One request. A fresh object per request: the application may keep it.
 *
 * Lifetime: `body` is complete when the route handler runs (accumulated up to
 * `maxBodyBytes`); it is the application's to keep.
 */
export class HttpRequest {
  /** Method token, case-sensitive. */
  readonly method: string;
  /** The request-target as received. */
  readonly target: string;
  /** The path part of the target (no query), not percent-decoded. */
  readonly path: string;
  /** What follows `?` in the target, or ''. */
  readonly query: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly versionMinor: 0 | 1;
  /** The client allows the connection to stay open after this request. */
  readonly keepAlive: boolean;
  /** An upgrade request (see `HttpHandlerOptions.onUpgrade`). */
  readonly upgrade: boolean;
  /** The request body (empty when there is none). */
  body: Buffer = EMPTY;
  /** The connection this request arrived on. */
  readonly conn: Connection;
  /** Trailer fields of a chunked body, if any. */
  trailers: Field[] | undefined;

  #chunks: Buffer[] | null = null;
  #filled = 0;
  /** The fields, or null until first read: decoded then from #fieldText. */
  #headers: Field[] | null;
  #fieldText: string | null;
  #fieldStart: number;

  /** @internal `fieldText`, `fieldStart`: the parser's, when it left `head.headers` empty. */
  constructor(head: RequestHead, conn: Connection, fieldText: string | null, fieldStart: number) {
    this.method = head.method;
    const target = head.target;
    this.target = target;
    const q = target.charCodeAt(0) === 0x2f ? target.indexOf('?') : -2;
    if (q === -1) {
      this.path = target; // origin-form without a query: the common case, no allocation
      this.query = '';
    } else {
      [this.path, this.query] = splitTarget(target);
    }
    this.versionMinor = head.versionMinor;
    this.#headers = fieldText === null ? head.headers : null;
    this.#fieldText = fieldText;
    this.#fieldStart = fieldStart;
    this.keepAlive = head.keepAlive;
    this.upgrade = head.upgrade;
    this.conn = conn;
    // Preallocate only small bodies: a client announcing a large body must send it before
    // it costs memory (no amplification by heads alone).
    const length = head.contentLength ?? 0;
    if (length > 0 && length <= PREALLOCATE_MAX) this.body = Buffer.allocUnsafe(length);
  }

  /** Every field line in order, names as received (split from the head's text on first read). */
  get headers(): Field[] {
    if (this.#headers === null) {
      this.#headers = parseFieldText(this.#fieldText!, this.#fieldStart);
      this.#fieldText = null;
    }
    return this.#headers;
  }

  /**
   * The value of a field, looked up ignoring case (`req.header('content-type')`). Repeated
   * fields are joined with `, `. Undefined when absent.
   */
  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    let out: string | undefined;
    const fields = this.headers;
    for (let k = 0; k < fields.length; k++) {
      const f = fields[k];
      if (f[0].length === lower.length && f[0].toLowerCase() === lower) out = out === undefined ? f[1] : `${out}, ${f[1]}`;
    }
    return out;
  }

  /** @internal Body bytes from the parser (a view valid only now: copied). */
  addBody(chunk: Uint8Array): void {
    if (this.body.length > 0) {
      this.body.set(chunk, this.#filled);
      this.#filled += chunk.length;
    } else {
      (this.#chunks ??= []).push(Buffer.from(chunk));
    }
  }

  /** @internal */
  completeBody(): void {
    if (this.#chunks !== null) {
      this.body = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks);
      this.#chunks = null;
    }
  }
}

type Chunk = Uint8Array | string;

/**
 * One response. Headers are validated by `setHeader` (`ERR_C1M_HTTP_INVALID_FIELD`); the head
 * leaves with the first `write` or with `end`. The server adds `Date`, `Content-Length`
 * (for `end(body)` without an earlier `write`), `Transfer-Encoding: chunked` (for `write`
 * without a `Content-Length` header, HTTP/1.1) and `Connection` when it closes.
 *
 * Backpressure: `write` returns false when the connection's buffer is past its high-water
 * mark; `onDrain` then runs once it has drained.
 *
 * Errors: calls after `end` are ignored (`write` returns false).
 */
export class HttpResponse {
  /** The status code (default 200). */
  statusCode = 200;
  /** Called when a `write` that returned false has drained. */
  onDrain: (() => void) | undefined;

  readonly #session: ResponseSession;
  readonly #head: boolean;
  readonly #versionMinor: 0 | 1;
  /** Names and values set by `setHeader`, alternating, in order; null until the first. */
  #fields: string[] | null = null;
  #hasLength = false;
  #hasDate = false;
  #headSent = false;
  #ended = false;
  #chunked = false;
  /** Bytes written while an earlier response is unfinished. */
  #pending: Chunk[] | null = null;
  /** @internal The connection closes after this response. */
  closeAfter: boolean;
  /** @internal Send 100 Continue when this response becomes the active one. */
  continuePending = false;

  /** @internal */
  constructor(session: ResponseSession, method: string, versionMinor: 0 | 1, keepAlive: boolean) {
    this.#session = session;
    this.#head = method === 'HEAD';
    this.#versionMinor = versionMinor;
    this.closeAfter = !keepAlive;
  }

  /** True once `end` was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /** True once the head was written (headers can no longer change). */
  get headersSent(): boolean {
    return this.#headSent;
  }

  /** Set the status code. Errors: `ERR_C1M_HTTP_INVALID_STATUS` outside 100-999. */
  status(code: number): this {
    statusLine(code); // validates
    this.statusCode = code;
    return this;
  }

  /**
   * Set a header, replacing earlier values of the same name (any case); an array sends one
   * line per value. `Connection: close` makes this the last response on the connection.
   *
   * Errors: `ERR_C1M_HTTP_INVALID_FIELD` for a name that is not a token or a value with
   * CR/LF/CTL; `ERR_C1M_HTTP_HEADERS_SENT` after the head was written.
   */
  setHeader(name: string, value: string | number | readonly (string | number)[]): this {
    if (this.#headSent) throw new C1mError('ERR_C1M_HTTP_HEADERS_SENT', `cannot set header ${name}: the head was already sent`);
    checkName(name);
    // Every value is checked before anything changes.
    const values: string | string[] = typeof value === 'string' ? value : Array.isArray(value) ? value.map(String) : String(value);
    if (typeof values === 'string') checkValue(name, values);
    else for (let k = 0; k < values.length; k++) checkValue(name, values[k]);
    let fields = this.#fields;
    if (fields === null) fields = this.#fields = [];
    else removeField(fields, name);
    if (typeof values === 'string') fields.push(name, values);
    else for (let k = 0; k < values.length; k++) fields.push(name, values[k]);
    // Only these names change what the server adds; compare lengths before any case folding.
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'date') this.#hasDate = true;
        break;
      case 10:
        if (name.toLowerCase() === 'connection' && (typeof values === 'string' ? [values] : values).some((v) => CLOSE_OPTION.test(v))) {
          this.closeAfter = true;
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') this.#hasLength = true;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') this.#hasLength = true;
        break;
    }
    return this;
  }

  /** The value of a header set with `setHeader` (joined with `, ` when repeated), or undefined. */
  getHeader(name: string): string | undefined {
    const fields = this.#fields;
    if (fields === null) return undefined;
    const lower = name.toLowerCase();
    let out: string | undefined;
    for (let k = 0; k < fields.length; k += 2) {
      if (fields[k].length === lower.length && fields[k].toLowerCase() === lower) out = out === undefined ? fields[k + 1] : `${out}, ${fields[k + 1]}`;
    }
    return out;
  }

  /**
   * Send body bytes. Without a `Content-Length` header the body is chunked (HTTP/1.1) or
   * delimited by closing the connection (HTTP/1.0). Nothing is sent for HEAD, 204 and 304.
   * Returns false under backpressure (see `onDrain`) or after `end`.
   */
  write(chunk: Chunk): boolean {
    if (this.#ended) return false;
    if (!this.#headSent) {
      let framing = NO_FRAMING;
      if (!this.#hasLength && this.#bodyAllowed()) {
        if (this.#versionMinor === 1) {
          this.#chunked = true;
          framing = CHUNKED;
        } else {
          this.closeAfter = true;
        }
      }
      this.#emit(this.#headBytes(framing));
    }
    // An empty string is also empty once encoded: no empty chunk (it would end the body).
    if (this.#head || !this.#bodyAllowed() || chunk.length === 0) return true;
    if (!this.#chunked) return this.#emit(chunk);
    const size = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    return this.#emitList([`${size.toString(16)}\r\n`, chunk, '\r\n']);
  }

  /**
   * Finish the response, with a last piece of body. Before any `write`, sets
   * `Content-Length` to the body's length (unless a length header was set).
   */
  end(body?: Chunk): void {
    if (this.#ended) return;
    if (!this.#headSent) {
      const bytes = body === undefined ? EMPTY : body;
      const allowed = this.#bodyAllowed();
      const length = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
      const head = this.#headBytes(allowed && !this.#hasLength ? length : NO_FRAMING);
      this.#ended = true;
      if (!allowed || this.#head || length === 0) this.#emit(head);
      else this.#emitList([head, bytes]);
    } else {
      if (body !== undefined && body.length > 0) this.write(body);
      this.#ended = true;
      if (this.#chunked && !this.#head) this.#emit(encodeLastChunk());
    }
    this.#session.finished(this);
  }

  /** @internal The response became the head of the queue: send what it buffered. */
  activate(): void {
    if (this.continuePending) {
      this.continuePending = false;
      this.#session.conn.write(CONTINUE_RESPONSE);
    }
    const pending = this.#pending;
    if (pending !== null) {
      this.#pending = null;
      this.#session.conn.writev(pending);
    }
  }

  /**
   * @internal The route handler threw: answer 500 and close, or cut the connection when
   * the head already left.
   */
  fail(): void {
    this.closeAfter = true;
    if (this.#ended) return;
    if (this.#headSent) {
      this.#ended = true;
      this.#pending = null;
      this.#session.abort();
      return;
    }
    this.#fields = null;
    this.#hasLength = false;
    this.statusCode = 500;
    this.end(STATUS_REASONS[500]);
  }

  #bodyAllowed(): boolean {
    const s = this.statusCode;
    return s >= 200 && s !== 204 && s !== 304;
  }

  /**
   * The head's bytes. `framing` is the Content-Length to add, or NO_FRAMING, or CHUNKED.
   * A head equal to the previous one (same status, fields, framing and second: a server
   * answering alike) is not encoded again; the engine copies what it is given.
   */
  #headBytes(framing: number): Buffer {
    this.#headSent = true;
    const status = this.statusCode;
    const date = this.#hasDate ? '' : dateField();
    const connection = this.closeAfter ? CONNECTION_CLOSE : this.#versionMinor === 0 ? CONNECTION_KEEP_ALIVE : CONNECTION_NONE;
    const fields = this.#fields;
    const last = lastHead;
    if (last.status === status && last.date === date && last.framing === framing && last.connection === connection && sameFields(last.fields, fields)) {
      return last.bytes;
    }
    let text = statusLine(status) + date;
    if (fields !== null) for (let k = 0; k < fields.length; k += 2) text += `${fields[k]}: ${fields[k + 1]}\r\n`;
    if (framing >= 0) text += `Content-Length: ${framing}\r\n`;
    else if (framing === CHUNKED) text += 'Transfer-Encoding: chunked\r\n';
    if (connection === CONNECTION_CLOSE) text += 'Connection: close\r\n';
    else if (connection === CONNECTION_KEEP_ALIVE) text += 'Connection: keep-alive\r\n';
    const bytes = Buffer.from(`${text}\r\n`, 'latin1');
    last.status = status;
    last.date = date;
    last.framing = framing;
    last.connection = connection;
    last.fields = fields === null ? NO_FIELDS : fields.slice();
    last.bytes = bytes;
    return bytes;
  }

  /** Send now when this is the active response, else keep (copied) for later. */
  #emit(chunk: Chunk): boolean {
    const s = this.#session;
    if (s.closed) return false;
    if (s.queue[0] === this) return s.conn.write(chunk);
    (this.#pending ??= []).push(typeof chunk === 'string' ? chunk : Buffer.from(chunk));
    return true;
  }

  /** `#emit` for several pieces (one writev). */
  #emitList(chunks: Chunk[]): boolean {
    const s = this.#session;
    if (s.closed) return false;
    if (s.queue[0] === this) return s.conn.writev(chunks);
    const pending = (this.#pending ??= []);
    for (const c of chunks) pending.push(typeof c === 'string' ? c : Buffer.from(c));
    return true;
  }
}

/** A `Connection` value with the `close` option. */
const CLOSE_OPTION = /(^|[\s,])close($|[\s,])/i;

/**
 * Names and short values that passed validation, one per slot by length: an application sets
 * the same few headers again and again, and comparing to a string it passed before is cheaper
 * than checking each character again (usually the very same string: one pointer comparison).
 */
const VALID_NAMES: (string | undefined)[] = new Array<undefined>(16).fill(undefined);
const VALID_VALUES: (string | undefined)[] = new Array<undefined>(32).fill(undefined);
const VALID_CACHED_MAX = 128;

function checkName(name: string): void {
  if (VALID_NAMES[name.length & 15] === name) return;
  if (!isValidFieldName(name)) throw new C1mError('ERR_C1M_HTTP_INVALID_FIELD', `invalid field name: ${JSON.stringify(name)}`);
  if (name.length <= VALID_CACHED_MAX) VALID_NAMES[name.length & 15] = name;
}

function checkValue(name: string, value: string): void {
  if (VALID_VALUES[value.length & 31] === value) return;
  if (!isValidFieldValue(value)) throw new C1mError('ERR_C1M_HTTP_INVALID_FIELD', `invalid value of field ${name}: ${JSON.stringify(value)}`);
  if (value.length <= VALID_CACHED_MAX) VALID_VALUES[value.length & 31] = value;
}

// `framing` of a head: a Content-Length (>= 0), or one of these.
const NO_FRAMING = -1;
const CHUNKED = -2;
// The Connection field the server adds.
const CONNECTION_NONE = 0;
const CONNECTION_CLOSE = 1;
const CONNECTION_KEEP_ALIVE = 2;
const NO_FIELDS: string[] = [];

/** What the last head was made of, and its bytes (shared by every response of the thread). */
const lastHead = { status: 0, date: '', fields: NO_FIELDS, framing: NO_FRAMING, connection: CONNECTION_NONE, bytes: EMPTY };

function sameFields(a: string[], b: string[] | null): boolean {
  if (b === null) return a.length === 0;
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** Remove the fields named `name` (any case) from a names-and-values list, in place. */
function removeField(fields: string[], name: string): void {
  let lower: string | undefined;
  let to = 0;
  for (let k = 0; k < fields.length; k += 2) {
    const f = fields[k];
    if (f.length === name.length && f.toLowerCase() === (lower ??= name.toLowerCase())) continue;
    fields[to] = f;
    fields[to + 1] = fields[k + 1];
    to += 2;
  }
  fields.length = to;
}

