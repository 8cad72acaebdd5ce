/**
 * HTTP/1.1 server on the engine: `createHttpHandler(options)` returns a c1m `Handler`.
 *
 * The request and response objects are in exchange.ts; this file is the per-connection
 * session and the handler.
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
 * - No session held: `keepAliveTimeout` is armed (`firstTimeout` before the first request). With a session, `#timer` mirrors what is
 *   armed, so `conn.setTimeout` is called only when the wanted value changes.
 * - Timeouts use the engine's sweep (`conn.setTimeout` + `onTimeout`), never a JS timer per
 *   connection. The engine's timeout is an idle timeout; the header deadline is enforced by
 *   re-arming it with the time left whenever bytes of an incomplete head arrive.
 *
 * Hot path: a keep-alive GET answered synchronously: take a session from the pool, one
 * `execute` (field lines stay one string until read), route lookup (two Map gets), the head's
 * bytes (reused when equal to the previous head), one `writev`, release.
 */
import { Action, checkOption, type Connection, type Handler } from '../../core/index.js';
import { HttpParseError } from './errors.js';
import { HttpRequest, HttpResponse, type ResponseSession } from './exchange.js';
import { PARSER_DEFAULTS, RequestParser, headEndWithin, type Field, type RequestHead, type RequestParserCallbacks, type RequestParserOptions } from './parser.js';
import { CONTINUE_RESPONSE, STATUS_REASONS } from './response.js';

export { HttpRequest, HttpResponse } from './exchange.js';

const POOL_MAX = 256;

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

/**
 * @internal Carried (as `true`) by a handler that upgrades connections and sets bit 0 of the
 * `tag` of each one it takes, from the hook's return until after its `onClose` (the WebSocket
 * handler does). The HTTP server routes such connections by that bit and keeps no
 * per-connection entry for them (the first such handler it meets; others go to the map). Its
 * own HTTP connections never have bit 0 set (only `SERVED`), and an upgrade hook is called
 * with the tag back at 0.
 */
export const UPGRADE_TAGGED: unique symbol = Symbol('c1m.upgradeTagged');

/**
 * @internal A hook that can serve a common upgrade request straight from its bytes (the
 * WebSocket handler's `upgradeHook()` carries one under this key). For a connection's first
 * read, when it holds a whole head within the parser's limits, the server offers the bytes to
 * `take` before any parsing. `take` returns `undefined` having done nothing (the request then
 * goes through the parser and the hook as usual); `null` when it refused the upgrade (its
 * answer written: the connection closes after it); or the handler that took the connection, as
 * the hook would. The server then routes the connection to it and hands it the bytes after the
 * head, as after the hook. Exceptions from `take`: as the hook's (`onError`, then the connection
 * is destroyed).
 */
export const UPGRADE_QUICK: unique symbol = Symbol('c1m.upgradeQuick');

/** @internal See `UPGRADE_QUICK`. */
export interface QuickUpgrade {
  /** The longest target and the most field lines `take` ever accepts (the server's parser limits must admit them). */
  readonly maxTarget: number;
  readonly maxFields: number;
  /** `data`: the first bytes of `conn`; `headEnd`: the offset just past the head's CRLF CRLF. Reads nothing past it. */
  take(conn: Connection, data: Buffer, headEnd: number): Handler | null | undefined;
}

/** Tag bit of an HTTP connection that has had a request (the rest of its tag stays 0). */
const SERVED = 0x80000000;

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
  /**
   * Idle milliseconds allowed between requests on a keep-alive connection. Default 5000; 0
   * disables. A new connection waits for its first request at least `headerTimeout` (the
   * larger of the two): under a reconnect storm a client may take seconds to send it.
   */
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

/** Shared by every session of one handler. */
interface Shared {
  parserOptions: RequestParserOptions;
  routes: Map<string, Map<string, RouteHandler>>;
  onRequest: RouteHandler | undefined;
  onUpgrade: UpgradeHook | undefined;
  onError: (err: Error, req: HttpRequest) => void;
  headerTimeout: number;
  keepAliveTimeout: number;
  /** What a new connection is armed with before its first request: see `keepAliveTimeout`. */
  firstTimeout: number;
  maxPipelined: number;
  pool: Session[];
  /** Upgraded connections and their handlers, except those routed by tag (`tagged`). */
  upgraded: Map<number, Handler>;
  /** The `UPGRADE_TAGGED` handler whose connections are known by a nonzero tag, once one took one. */
  tagged: Handler | undefined;
  /**
   * Bytes an in-place upgrade's handler left unconsumed when the upgrade waited for earlier
   * responses (they were copied then): put in front of its next bytes. Rare; empty otherwise.
   */
  carry: Map<number, Buffer>;
  /** The hook's quick path, when it has one and the parser's limits admit it (see `UPGRADE_QUICK`). */
  quick: QuickUpgrade | undefined;
  /** The parser's maxHeaderBytes: a quick head must end within it. */
  maxHeaderBytes: number;
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/** The HTTP state of one connection while a request is in progress or a response pending. */
class Session implements RequestParserCallbacks, ResponseSession {
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

  /** Bind to a connection whose idle timer holds firstTimeout (new) or keepAliveTimeout (kept alive). */
  attach(conn: Connection): void {
    this.conn = conn;
    // A new connection holds firstTimeout (marked SERVED from its first request on), one kept
    // alive keepAliveTimeout.
    const t = conn.tag;
    if ((t & SERVED) === 0) {
      conn.tag = t | SERVED;
      this.#timer = this.#shared.firstTimeout;
    } else {
      this.#timer = this.#shared.keepAliveTimeout;
    }
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
    const result = this.#upgradeResult;
    if (this.#handedOver) this.#recycle();
    return result;
  }

  /**
   * The connection was handed over in place (`#upgrade` inside `data`): nothing refers to this
   * session any more (not the connection's context, not a queued response), so it goes back to
   * the pool as a released session would, its parser reset. An upgrade storm then builds no
   * session and no parser per connection.
   */
  #recycle(): void {
    this.#handedOver = false;
    this.#parser.reset();
    this.closed = false;
    this.#paused = false;
    this.#closeWhenDone = false;
    this.#upgradeResult = 0;
    this.conn = undefined as unknown as Connection;
    const pool = this.#shared.pool;
    if (pool.length < POOL_MAX) pool.push(this);
  }

  /** Set by an in-place upgrade that took the connection: `data` recycles the session. */
  #handedOver = false;

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
    this.closed = true; // pooled again only by `data` after an in-place hand-over (#recycle)
    conn.context = undefined;
    conn.tag = 0; // the upgrade hook gets the tag as a new connection has it
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
    route(shared, conn, next);
    if (inPlace === undefined) return;
    if (head === null) {
      this.#handedOver = true;
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

/** Send every later event of the upgraded `conn` to `next`. */
function route(shared: Shared, conn: Connection, next: Handler): void {
  if ((next as { [UPGRADE_TAGGED]?: boolean })[UPGRADE_TAGGED] === true && (conn.tag & 1) !== 0 && (shared.tagged ??= next) === next) {
    // routed by its tag: no entry
  } else {
    shared.upgraded.set(conn.id, next);
  }
}

/** The hook's quick path, if it has one whose requests always fit within the parser's limits. */
function quickOf(hook: UpgradeHook | undefined, limits: RequestParserOptions): QuickUpgrade | undefined {
  const quick = (hook as Partial<Record<typeof UPGRADE_QUICK, QuickUpgrade>> | undefined)?.[UPGRADE_QUICK];
  if (quick === undefined) return undefined;
  const fits = quick.maxTarget <= (limits.maxUriLength ?? PARSER_DEFAULTS.maxUriLength) && quick.maxFields <= (limits.maxHeaders ?? PARSER_DEFAULTS.maxHeaders);
  return fits ? quick : undefined;
}

/**
 * Offer a fresh connection's first bytes to the hook's quick path (`UPGRADE_QUICK`). Returns
 * undefined when it did not take them (nothing happened: parse as usual).
 */
function takeQuick(shared: Shared, conn: Connection, data: Buffer): number | Action | undefined {
  const headEnd = headEndWithin(data, shared.maxHeaderBytes);
  if (headEnd < 0) return undefined;
  let next: Handler | null | undefined;
  try {
    next = shared.quick!.take(conn, data, headEnd);
  } catch (err) {
    shared.onError(asError(err), requestOf(shared, conn, data.subarray(0, headEnd)));
    conn.destroy();
    return data.length;
  }
  if (next === undefined) return undefined;
  if (next === null) return Action.Close; // refused: the answer is written
  // As after the hook (#upgrade): routed first, then the bytes after the head, in place.
  route(shared, conn, next);
  if (headEnd === data.length) return headEnd;
  const used = next.onData?.(conn, data.subarray(headEnd));
  return typeof used === 'number' ? headEnd + used : used === undefined ? data.length : used;
}

/** The request of a head the quick path took, parsed as the session would (for `onError`). */
function requestOf(shared: Shared, conn: Connection, head: Buffer): HttpRequest {
  let got: RequestHead | null = null;
  const parser = new RequestParser({ onRequest: (h) => void (got = h), onBody() {}, onMessageComplete() {} }, shared.parserOptions, true);
  parser.execute(head);
  return new HttpRequest(got!, conn, parser.fieldText, parser.fieldStart);
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
    firstTimeout: keepAliveTimeout > 0 && headerTimeout > keepAliveTimeout ? headerTimeout : keepAliveTimeout,
    maxPipelined,
    pool: [],
    upgraded: new Map(),
    tagged: undefined,
    carry: new Map(),
    quick: quickOf(options.onUpgrade, parserOptions),
    maxHeaderBytes: parserOptions.maxHeaderBytes ?? PARSER_DEFAULTS.maxHeaderBytes,
  };
  const upgraded = shared.upgraded;
  const taken = (conn: Connection): Handler | undefined => {
    const h = upgraded.size === 0 ? undefined : upgraded.get(conn.id);
    if (h !== undefined || shared.tagged === undefined || (conn.tag & 1) === 0) return h;
    return shared.tagged;
  };

  return {
    onOpen(conn) {
      if (shared.firstTimeout > 0) conn.setTimeout(shared.firstTimeout);
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
        // A connection's first bytes: a common upgrade is served from them, no parse.
        if (shared.quick !== undefined && conn.tag === 0) {
          const r = takeQuick(shared, conn, data);
          if (r !== undefined) return r;
        }
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
