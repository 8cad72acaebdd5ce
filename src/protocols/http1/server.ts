/**
 * HTTP/1.1 server on the engine: `createHttpHandler(options)` returns a c1m `Handler`.
 *
 * Model: per connection, one `Session` (a `RequestParser` and the queue of responses) lives in
 * `conn.context` only while a request is in progress or a response is pending. Between
 * requests the connection holds nothing in JS: the session goes back to a small pool shared
 * by the handler, and the idle keep-alive timeout is armed. A keep-alive connection that is
 * idle therefore costs what the engine costs, whatever the number of connections.
 *
 * Invariants:
 * - Responses leave in request order (pipelining): the response at the head of the queue
 *   writes to the connection; later ones buffer their bytes until it ends.
 * - A session is released only with an empty queue and the parser between messages, so no
 *   live response ever points at a session that serves another connection.
 * - No session held: `keepAliveTimeout` is armed. With a session, `#timer` mirrors what is
 *   armed, so `conn.setTimeout` is called only when the wanted value changes.
 * - Timeouts use the engine's sweep (`conn.setTimeout` + `onTimeout`), never a JS timer per
 *   connection. The engine's timeout is an idle timeout; the header deadline is enforced by
 *   re-arming it with the time left whenever bytes of an incomplete head arrive.
 *
 * Hot path: a keep-alive GET answered synchronously: take a session from the pool, one
 * `execute` (field lines stay one string until read), route lookup (two Map gets), the head's
 * bytes (reused when equal to the previous head), one `writev`, release.
 */
import { Action, C1mError, checkOption, type Connection, type Handler } from '../../core/index.js';
import { HttpParseError } from './errors.js';
import {
  RequestParser, parseFieldText, type Field, type RequestHead, type RequestParserCallbacks, type RequestParserOptions,
} from './parser.js';
import {
  CONTINUE_RESPONSE, STATUS_REASONS, encodeLastChunk, formatResponseHead, isValidFieldName, isValidFieldValue,
} from './response.js';

/** A route handler. A returned promise that rejects is handled like a thrown exception (500). */
export type RouteHandler = (req: HttpRequest, res: HttpResponse) => void | Promise<void>;

/**
 * Takes over a connection after an upgrade request (`Upgrade` + `Connection: upgrade`, or
 * CONNECT). `head` holds the bytes that followed the request (a copy; often empty).
 * Return the `Handler` that receives every later event of this connection (`onData`,
 * `onDrain`, `onEnd`, `onTimeout`, `onClose`; its `onOpen` is not called), after writing the
 * 101 response yourself. Return nothing to refuse: whatever was written is flushed and the
 * connection closes. `conn.context` is free for the new owner; the idle timeout is disarmed.
 */
export type UpgradeHook = (req: HttpRequest, conn: Connection, head: Buffer) => Handler | void;

/**
 * @internal A hook that reads the bytes after the request itself (the WebSocket handler's
 * `upgradeHook()` carries one under this key). The server calls it instead of the hook, with
 * no `head`, then hands the bytes that followed the request to the returned handler's
 * `onData` in place: what it leaves unconsumed stays in the engine, as on its own port.
 */
export const UPGRADE_IN_PLACE: unique symbol = Symbol('c1m.upgradeInPlace');

/** @internal See `UPGRADE_IN_PLACE`. */
export interface InPlaceUpgrade {
  [UPGRADE_IN_PLACE](req: HttpRequest, conn: Connection): Handler | void;
}

/** Options of `createHttpHandler`. Every limit has a safe default. */
export interface HttpHandlerOptions extends RequestParserOptions {
  /**
   * `'METHOD /path'` → handler, exact path match (no parameters). HEAD uses the GET route
   * when it has none of its own. A path known for other methods only: 405 with `Allow`.
   */
  routes?: Readonly<Record<string, RouteHandler>>;
  /** Called for every request no route matches (instead of 404/405). */
  onRequest?: RouteHandler;
  /**
   * Milliseconds from the first byte of a request head to its end, and the longest pause
   * while a body is arriving. Past it: 408 and close (slowloris). Default 10000; 0 disables.
   */
  headerTimeout?: number;
  /** Idle milliseconds allowed between requests on a keep-alive connection. Default 5000; 0 disables. */
  keepAliveTimeout?: number;
  /**
   * Responses that may wait behind an unfinished one (pipelining); past it reading pauses
   * until the queue shortens. Default 32.
   */
  maxPipelined?: number;
  /** Upgrade requests (WebSocket, CONNECT). Without it they are served as ordinary requests. */
  onUpgrade?: UpgradeHook;
  /** Called with exceptions of route handlers and the upgrade hook. Default: print to stderr. */
  onError?: (err: Error, req: HttpRequest) => void;
}

const EMPTY = Buffer.alloc(0);
const POOL_MAX = 256;
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

  readonly #session: Session;
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
  constructor(session: Session, method: string, versionMinor: 0 | 1, keepAlive: boolean) {
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

/** Shared by every session of one handler. */
interface Shared {
  parserOptions: RequestParserOptions;
  routes: Map<string, Map<string, RouteHandler>>;
  onRequest: RouteHandler | undefined;
  onUpgrade: UpgradeHook | undefined;
  onError: (err: Error, req: HttpRequest) => void;
  headerTimeout: number;
  keepAliveTimeout: number;
  maxPipelined: number;
  pool: Session[];
  upgraded: Map<number, Handler>;
  /**
   * Bytes an in-place upgrade's handler left unconsumed when the upgrade waited for earlier
   * responses (they were copied then): put in front of its next bytes. Rare; empty otherwise.
   */
  carry: Map<number, Buffer>;
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** The HTTP state of one connection while a request is in progress or a response pending. */
class Session implements RequestParserCallbacks {
  readonly #shared: Shared;
  readonly #parser: RequestParser;
  conn!: Connection;
  readonly queue: HttpResponse[] = [];
  /** The request whose body is arriving, and its response. */
  #req: HttpRequest | null = null;
  #res: HttpResponse | null = null;
  /** The last request was read (no keep-alive): nothing follows. */
  #last = false;
  /** When the current head's first bytes were seen (ms), or -1. */
  #headStart = -1;
  /** What is armed on the connection (ms). */
  #timer = 0;
  #inExecute = false;
  #paused = false;
  /** Stop answering: every later byte is discarded. */
  closed = false;
  /** Close once the queue is empty (the peer half-closed). */
  #closeWhenDone = false;
  #upgradeReq: HttpRequest | null = null;
  #upgradeHead: Buffer[] | null = null;
  /** During `data`, when the upgrade request ended in it: where its head ended (else -1). */
  #upgradeAt = -1;
  /** During `data`: what it returns when the upgrade ran inside it (see `#upgrade`). */
  #upgradeResult: number | Action = 0;

  constructor(shared: Shared) {
    this.#shared = shared;
    this.#parser = new RequestParser(this, shared.parserOptions, true);
  }

  /** Bind to a connection whose idle timer holds keepAliveTimeout. */
  attach(conn: Connection): void {
    this.conn = conn;
    this.#timer = this.#shared.keepAliveTimeout;
    this.#last = false;
    this.#headStart = -1;
  }

  // Parser callbacks (run inside execute).

  onRequest(head: RequestHead): void {
    const parser = this.#parser;
    const req = new HttpRequest(head, this.conn, parser.fieldText, parser.fieldStart);
    const res = new HttpResponse(this, head.method, head.versionMinor, head.keepAlive);
    this.#req = req;
    this.#res = res;
    this.queue.push(res);
    this.#headStart = -1;
    if (head.expectContinue && (head.chunked || (head.contentLength ?? 0) > 0)) {
      if (this.queue.length === 1) this.conn.write(CONTINUE_RESPONSE);
      else res.continuePending = true;
    }
  }

  onBody(chunk: Uint8Array): void {
    this.#req!.addBody(chunk);
  }

  onMessageComplete(trailers?: Field[]): void {
    const req = this.#req!;
    const res = this.#res!;
    this.#req = null;
    this.#res = null;
    res.continuePending = false;
    req.trailers = trailers;
    req.completeBody();
    if (!req.keepAlive) this.#last = true;
    const shared = this.#shared;
    if (req.upgrade && shared.onUpgrade !== undefined) {
      this.queue.pop(); // the hook answers, not a response of ours
      this.#upgradeReq = req;
      return;
    }
    const fn = this.#route(req, res);
    if (fn === undefined) return;
    try {
      const r = fn(req, res);
      if (r !== undefined && typeof (r as Promise<void>).then === 'function') {
        (r as Promise<void>).then(undefined, (err: unknown) => this.#handlerFailed(err, req, res));
      }
    } catch (err) {
      this.#handlerFailed(err, req, res);
    }
  }

  #route(req: HttpRequest, res: HttpResponse): RouteHandler | undefined {
    const shared = this.#shared;
    const byMethod = shared.routes.get(req.path);
    if (byMethod !== undefined) {
      const fn = byMethod.get(req.method) ?? (req.method === 'HEAD' ? byMethod.get('GET') : undefined);
      if (fn !== undefined) return fn;
    }
    if (shared.onRequest !== undefined) return shared.onRequest;
    if (byMethod === undefined) {
      res.status(404).end(STATUS_REASONS[404]);
    } else {
      const allow = [...byMethod.keys()];
      if (byMethod.has('GET') && !byMethod.has('HEAD')) allow.push('HEAD');
      res.status(405).setHeader('Allow', allow.join(', ')).end(STATUS_REASONS[405]);
    }
    return undefined;
  }

  #handlerFailed(err: unknown, req: HttpRequest, res: HttpResponse): void {
    try {
      this.#shared.onError(asError(err), req);
    } finally {
      res.fail();
    }
  }

  /** Bytes from the engine. Returns what `onData` returns. */
  data(data: Buffer): number | Action {
    if (this.closed) return data.length;
    if (this.#upgradeHead !== null) {
      this.#upgradeHead.push(Buffer.from(data));
      return data.length;
    }
    const parser = this.#parser;
    let offset = 0;
    this.#inExecute = true;
    try {
      for (;;) {
        const n = parser.execute(offset === 0 ? data : data.subarray(offset));
        if (!parser.upgraded) {
          offset += n;
          break;
        }
        offset += n;
        if (this.#upgradeReq !== null) {
          // Handed over in settle() below if nothing is queued before it (then in place),
          // else copied and handed over once the responses before it have left.
          this.#upgradeAt = offset;
          offset = data.length;
          break;
        }
        // No hook: the upgrade was served as an ordinary request; keep speaking HTTP.
        parser.reset();
      }
    } catch (err) {
      if (!(err instanceof HttpParseError)) throw err;
      this.#inExecute = false;
      this.#reject(err.status);
      return data.length;
    } finally {
      this.#inExecute = false;
    }
    if (this.#upgradeAt < 0) {
      this.settle();
      return offset;
    }
    this.#upgradeResult = data.length;
    this.#upgradeBytes = data;
    try {
      this.settle();
    } finally {
      this.#upgradeBytes = null;
    }
    if (this.#upgradeAt >= 0) {
      // Waiting behind earlier responses: keep a copy of what followed the head.
      this.#upgradeHead = [Buffer.from(data.subarray(this.#upgradeAt))];
      this.#upgradeAt = -1;
    }
    return this.#upgradeResult;
  }

  /** During `data` with `#upgradeAt` set: its bytes. */
  #upgradeBytes: Buffer | null = null;

  /**
   * Answer `status` and close, after the responses already queued. The request being
   * received (if any) gets no response of its own.
   */
  #reject(status: number): void {
    if (this.#res !== null) {
      this.queue.pop();
      this.#req = null;
      this.#res = null;
    }
    this.#last = true;
    const res = new HttpResponse(this, 'GET', 1, false);
    this.queue.push(res);
    res.status(status).end(STATUS_REASONS[status]);
    if (!this.closed) this.#arm(0); // earlier responses first; then it closes
  }

  /** A response ended: pass the connection to the next one. */
  finished(res: HttpResponse): void {
    const queue = this.queue;
    if (queue[0] !== res || this.closed) return;
    for (;;) {
      const done = queue.shift()!;
      if (done.closeAfter) {
        this.closed = true;
        queue.length = 0;
        this.conn.close();
        return;
      }
      if (queue.length === 0) break;
      queue[0].activate();
      if (!queue[0].ended) break;
    }
    if (!this.#inExecute) this.settle();
  }

  /** The head of the queue failed after its head left: cut the connection. */
  abort(): void {
    this.closed = true;
    this.queue.length = 0;
    this.conn.destroy();
  }

  /** After bytes or a response: release, pause, resume, or arm the right timeout. */
  settle(): void {
    if (this.closed) return;
    const shared = this.#shared;
    const queue = this.queue;
    if (this.#upgradeReq !== null) {
      if (queue.length === 0) this.#upgrade();
      else if (!this.#paused) {
        this.#paused = true;
        this.conn.pause();
      }
      return;
    }
    if (this.#closeWhenDone) {
      if (queue.length === 0) {
        this.closed = true;
        this.conn.close();
      }
      return;
    }
    if (queue.length >= shared.maxPipelined) {
      if (!this.#paused) {
        this.#paused = true;
        this.conn.pause();
      }
    } else if (this.#paused) {
      this.#paused = false;
      this.conn.resume();
    }
    if (this.#last || this.#parser.idle) {
      if (queue.length > 0 || this.#last) this.#arm(0);
      else this.#release();
    } else if (this.#req !== null) {
      this.#arm(shared.headerTimeout); // a body is arriving
    } else if (shared.headerTimeout > 0) {
      // A head is arriving: a deadline, enforced by re-arming with the time left.
      const now = Date.now();
      if (this.#headStart < 0) this.#headStart = now;
      const left = shared.headerTimeout - (now - this.#headStart);
      if (left <= 0) {
        this.#reject(408);
        return;
      }
      this.#timer = left;
      this.conn.setTimeout(left);
    }
  }

  /** The idle timeout expired while this session was held. */
  timeout(): void {
    this.#timer = 0;
    if (this.closed) return;
    if (!this.#last && !this.#parser.idle && this.#upgradeReq === null) this.#reject(408);
    else {
      this.closed = true;
      this.conn.close();
    }
  }

  /** The peer half-closed: answer what was asked, then close. */
  end(): void {
    this.#closeWhenDone = true;
    if (!this.#inExecute) this.settle();
  }

  /** Forward a drain to the response that is writing. */
  drain(): void {
    this.queue[0]?.onDrain?.();
  }

  #arm(ms: number): void {
    if (this.#timer !== ms) {
      this.#timer = ms;
      this.conn.setTimeout(ms);
    }
  }

  #release(): void {
    const shared = this.#shared;
    const conn = this.conn;
    conn.context = undefined;
    this.#arm(shared.keepAliveTimeout);
    this.conn = undefined as unknown as Connection;
    if (shared.pool.length < POOL_MAX) shared.pool.push(this);
  }

  #upgrade(): void {
    const shared = this.#shared;
    const req = this.#upgradeReq!;
    const conn = this.conn;
    // In place: inside `data`, the bytes after the head are a view of the engine's.
    const bytes = this.#upgradeBytes;
    const at = this.#upgradeAt;
    const head = bytes !== null && at >= 0 ? null : (this.#upgradeHead ?? []);
    this.#upgradeAt = -1;
    this.#upgradeReq = null;
    this.#upgradeHead = null;
    this.closed = true; // never pooled: the parser stays upgraded
    conn.context = undefined;
    conn.setTimeout(0);
    if (this.#paused) conn.resume();
    const hook = shared.onUpgrade!;
    const inPlace = (hook as Partial<InPlaceUpgrade>)[UPGRADE_IN_PLACE];
    let next: Handler | void;
    try {
      if (inPlace !== undefined) next = inPlace.call(hook, req, conn);
      else if (head === null) next = hook(req, conn, at < bytes!.length ? Buffer.from(bytes!.subarray(at)) : Buffer.alloc(0));
      else next = hook(req, conn, head.length === 1 ? head[0] : Buffer.concat(head));
    } catch (err) {
      shared.onError(asError(err), req);
      conn.destroy();
      return;
    }
    if (!next) {
      conn.context = this; // closed: the bytes that still arrive are discarded
      conn.close();
      return;
    }
    shared.upgraded.set(conn.id, next);
    if (inPlace === undefined) return;
    if (head === null) {
      // Consumed up to the end of the head, plus what the handler takes of the rest.
      if (at === bytes!.length) {
        this.#upgradeResult = at;
        return;
      }
      const used = next.onData?.(conn, bytes!.subarray(at));
      this.#upgradeResult = typeof used === 'number' ? at + used : used === undefined ? bytes!.length : used;
      return;
    }
    const rest = head.length === 1 ? head[0] : Buffer.concat(head);
    if (rest.length === 0) return;
    const r = feed(shared, next, conn, rest);
    if (r === Action.Close) conn.close();
    else if (r === Action.Shutdown) conn.shutdown();
  }
}

/**
 * `data` for `handler`, which took `conn` in place, outside an engine read (bytes that
 * waited for the upgrade, or held in `carry`): keeps what it leaves unconsumed in `carry`,
 * to put before its next bytes. Returns what the engine's `onData` should get for them.
 */
function feed(shared: Shared, handler: Handler, conn: Connection, data: Buffer): number | Action | void {
  const used = handler.onData?.(conn, data);
  if (typeof used === 'number' && used < data.length && conn.open) shared.carry.set(conn.id, Buffer.from(data.subarray(used)));
  return typeof used === 'number' ? undefined : used;
}

function buildRoutes(routes: Readonly<Record<string, RouteHandler>>): Map<string, Map<string, RouteHandler>> {
  const out = new Map<string, Map<string, RouteHandler>>();
  for (const key of Object.keys(routes)) {
    const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+)$/.exec(key);
    checkOption(m !== null, `routes["${key}"]`, 'keyed "METHOD /path"', key);
    const fn = routes[key];
    checkOption(typeof fn === 'function', `routes["${key}"]`, 'a function', typeof fn);
    const [, method, path] = m!;
    let byMethod = out.get(path);
    if (byMethod === undefined) out.set(path, (byMethod = new Map()));
    byMethod.set(method, fn);
  }
  return out;
}

const isMs = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

/**
 * An HTTP/1.1 server as a c1m `Handler`, for `listen()`, `serve()` or a handler module.
 *
 * ```ts
 * await listen(createHttpHandler({ routes: { 'GET /': (req, res) => res.end('hello') } }), { port: 8080 });
 * ```
 *
 * Threading: the handler may serve many connections of one reactor; create one per reactor.
 *
 * Errors: throws `ERR_C1M_INVALID_OPTION` for a bad option. At run time, a malformed request
 * gets the parse error's status (400, 413, 414, 431, 501, 505) and `Connection: close`; a
 * route handler's exception gets 500 and closes that connection; neither affects others.
 */
export function createHttpHandler(options: HttpHandlerOptions = {}): Handler {
  const headerTimeout = options.headerTimeout ?? 10_000;
  const keepAliveTimeout = options.keepAliveTimeout ?? 5000;
  const maxPipelined = options.maxPipelined ?? 32;
  checkOption(isMs(headerTimeout), 'headerTimeout', 'a non-negative integer (ms)', headerTimeout);
  checkOption(isMs(keepAliveTimeout), 'keepAliveTimeout', 'a non-negative integer (ms)', keepAliveTimeout);
  checkOption(Number.isInteger(maxPipelined) && maxPipelined >= 1, 'maxPipelined', 'a positive integer', maxPipelined);
  checkOption(options.onRequest === undefined || typeof options.onRequest === 'function', 'onRequest', 'a function', typeof options.onRequest);
  checkOption(options.onUpgrade === undefined || typeof options.onUpgrade === 'function', 'onUpgrade', 'a function', typeof options.onUpgrade);
  const { maxHeaderBytes, maxUriLength, maxBodyBytes, maxHeaders } = options;
  const parserOptions: RequestParserOptions = { maxHeaderBytes, maxUriLength, maxBodyBytes, maxHeaders };
  new RequestParser({ onRequest() {}, onBody() {}, onMessageComplete() {} }, parserOptions); // validates the limits now
  const shared: Shared = {
    parserOptions,
    routes: buildRoutes(options.routes ?? {}),
    onRequest: options.onRequest,
    onUpgrade: options.onUpgrade,
    onError: options.onError ?? ((err) => process.stderr.write(`c1m http: route handler failed: ${err.stack ?? err.message}\n`)),
    headerTimeout,
    keepAliveTimeout,
    maxPipelined,
    pool: [],
    upgraded: new Map(),
    carry: new Map(),
  };
  const upgraded = shared.upgraded;
  const taken = (conn: Connection): Handler | undefined => (upgraded.size === 0 ? undefined : upgraded.get(conn.id));

  return {
    onOpen(conn) {
      if (keepAliveTimeout > 0) conn.setTimeout(keepAliveTimeout);
    },
    onData(conn, data) {
      const h = taken(conn);
      if (h !== undefined) {
        if (shared.carry.size === 0) return h.onData?.(conn, data);
        const kept = shared.carry.get(conn.id);
        if (kept === undefined) return h.onData?.(conn, data);
        shared.carry.delete(conn.id);
        const r = feed(shared, h, conn, Buffer.concat([kept, data]));
        return r === undefined ? data.length : r;
      }
      let s = conn.context as Session | undefined;
      if (s === undefined) {
        s = shared.pool.pop() ?? new Session(shared);
        s.attach(conn);
        conn.context = s;
      }
      return s.data(data);
    },
    onDrain(conn) {
      const h = taken(conn);
      if (h !== undefined) h.onDrain?.(conn);
      else (conn.context as Session | undefined)?.drain();
    },
    onEnd(conn) {
      const h = taken(conn);
      if (h !== undefined) {
        if (h.onEnd) h.onEnd(conn);
        else conn.close();
        return;
      }
      const s = conn.context as Session | undefined;
      if (s === undefined) conn.close();
      else s.end();
    },
    onTimeout(conn) {
      const h = taken(conn);
      if (h !== undefined) {
        if (h.onTimeout) h.onTimeout(conn);
        else conn.close();
        return;
      }
      const s = conn.context as Session | undefined;
      if (s === undefined) conn.close();
      else s.timeout();
    },
    onClose(conn, reason) {
      const h = taken(conn);
      if (h !== undefined) {
        upgraded.delete(conn.id);
        shared.carry.delete(conn.id);
        h.onClose?.(conn, reason);
      }
    },
  };
}
