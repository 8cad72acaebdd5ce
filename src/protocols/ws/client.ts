/**
 * The WebSocket client (RFC 6455) on the engine: `createWebSocketClientHandler` returns a c1m
 * Handler; its `connect(reactor, url)` opens client WebSockets on that reactor, on either
 * backend. This is the lean level, built to hold tens of thousands of connections per process;
 * `WebSocketClient` (websocket-client.ts) is the `ws`-like API on top.
 *
 * Model (the server's, server.ts, seen from the other end):
 *   - `connect` writes the whole upgrade request on the connecting handle (the engine sends it
 *     once TCP is up) and arms the handshake timeout with the engine's idle timeout. Until the
 *     response head's blank line arrives its bytes stay in the engine (onData returns 0); then
 *     the head is parsed whole and checked (RFC 6455 4.1). Bytes behind it are frames.
 *   - A WebSocket's state is its connection's `tag` word plus an `Extra` held only while
 *     needed, and its frames are cut, delivered on the fast path and parsed as framing.ts
 *     describes (the client's side of `Framing`: frames from the server are unmasked). The
 *     client's Extra adds the handshake's key and offered subprotocols while connecting.
 *     `ClientWebSocket` objects are handles made per callback, like `Connection`.
 *   - Every frame we send is masked with a fresh key (`writeMaskedFrame`), compressed ones too.
 *
 * permessage-deflate (option `perMessageDeflate`, off by default): the same offer goes in every
 * request of a handler (`deflateOffer`) and the answer is checked with the rest of the
 * response (`checkResponse`; an invalid one fails the handshake). The codecs are kept as the
 * server keeps them (server.ts): a connection without context takeover either way points at a
 * stateless codec shared by every connection with the same window bits (an index in its tag),
 * so an idle one holds nothing for the extension; one with context takeover has a codec of its
 * own in its Extra, holding at most 2^windowBits bytes of plaintext per direction that takes
 * over. Messages of at least `threshold` bytes are compressed (RSV1, then masked); compressed
 * messages are inflated whole, at most `maxPayload` bytes (past it: 1009).
 *
 * What an idle open client WebSocket holds in JS: nothing, unless the application set `data`
 * (one Map entry), the server selected more than 254 distinct subprotocols, or
 * permessage-deflate with context takeover was agreed (its codec).
 *
 * Timers: the handshake timeout, heartbeats (`pingInterval`) and the close handshake timeout
 * all use the engine's idle timeout (`conn.setTimeout` / `onTimeout`), one armed at a time.
 *
 * Invariants: those of framing.ts, and:
 *   - every WebSocket that `connect` returned gets exactly one `onClose`, opened or not;
 *     `onError` runs at most once before it, when the connection failed;
 *   - the EXTRA bit is kept as framing.ts says, except on a connect that failed at once,
 *     whose handle ignores tag writes;
 *   - no frame is sent before the 101 arrived.
 */
import { isIP } from 'node:net';
import { C1mError, checkOption, type CloseReason, type Connection, type Handler, type Reactor, type SystemError, type TlsInfo } from '../../core/index.js';
import { headEndWithin } from '../http1/index.js';
import { Opcode } from './constants.js';
import {
  deflateOffer,
  formatDeflateParams,
  reachesThreshold,
  resolveDeflateOptions,
  type DeflateParams,
  type PerMessageDeflateOptions,
  type ResolvedDeflateOptions,
} from './deflate.js';
import { WsProtocolError } from './errors.js';
import {
  CLOSE_RECEIVED,
  CODE_ABNORMAL,
  CODE_GOING_AWAY,
  CODEC_SHIFT,
  FAILED,
  FrameExtra,
  Framing,
  GONE,
  NOT_OPEN,
  ROLE_FLAG,
  RSV1,
  UPGRADED,
  randomKey,
  writeMaskedFrame,
} from './framing.js';
import { RECEIVER_DEFAULTS } from './receiver.js';
import { encodeFrame, encodePing } from './sender.js';
import {
  WsHandshakeError,
  buildRequest,
  checkConnectOptions,
  checkResponse,
  parseResponseHead,
  type HandshakeResult,
  parseWsUrl,
} from './client-handshake.js';
import { isMs, plain101 } from './handshake.js';
import type { WebSocketConnectOptions } from './client-types.js';
import { WssOptions } from './client-tls.js';

export type { WebSocketConnectOptions } from './client-types.js';

/** What a client connection failure may be: see `WebSocketClientHandlerOptions.onError`. */
export type WsClientError = WsProtocolError | WsHandshakeError | SystemError | C1mError;

/** Options of `createWebSocketClientHandler`. Every callback is optional. */
export interface WebSocketClientHandlerOptions<T = unknown> {
  /** The 101 arrived and was valid: frames may be sent. `ws.protocol` is the selected subprotocol. */
  onOpen?(ws: ClientWebSocket<T>): void;
  /**
   * A complete message. `isBinary` false: `data` is valid UTF-8 text.
   * Lifetime: `data` is a view valid only until this callback returns; copy what you keep.
   */
  onMessage?(ws: ClientWebSocket<T>, data: Buffer, isBinary: boolean): void;
  /**
   * The WebSocket is gone; runs exactly once for every WebSocket `connect` returned, opened or
   * not. `code` is the server's close code (1005 when its close frame had none), the code we
   * sent for a protocol error, or 1006 when there was no close handshake (connect or handshake
   * failure, reset, timeout, `terminate()`).
   */
  onClose?(ws: ClientWebSocket<T>, code: number, reason: string): void;
  /** `send` returned false earlier and the buffered bytes are now written. */
  onDrain?(ws: ClientWebSocket<T>): void;
  /** A ping arrived (a pong was already queued). Lifetime: `data` as in `onMessage`. */
  onPing?(ws: ClientWebSocket<T>, data: Uint8Array): void;
  /** A pong arrived. Lifetime: `data` as in `onMessage`. */
  onPong?(ws: ClientWebSocket<T>, data: Uint8Array): void;
  /**
   * The connection failed; `onClose` follows. `err` is a system error when TCP could not
   * connect (`code` `ECONNREFUSED`, ...), a `C1mError` `ERR_C1M_TLS*` when a `wss:` TLS
   * handshake failed, a `WsHandshakeError` when the opening handshake failed, or a
   * `WsProtocolError` when the server broke RFC 6455 (our close frame with `err.closeCode` is
   * on its way, then TCP closes). Not called for `terminate()` or a reset after the open.
   */
  onError?(ws: ClientWebSocket<T>, err: WsClientError): void;
  /** Largest message in bytes (summed over fragments); past it: close 1009. Default 1 MiB. */
  maxPayload?: number;
  /** Most frames in one message; past it: close 1009. Default 65536. */
  maxFragments?: number;
  /** Largest response head to the upgrade request, in bytes. Default 16 KiB. */
  maxHeaderBytes?: number;
  /**
   * Fail a WebSocket whose TCP connect and handshake have not completed after this many ms
   * (`ERR_C1M_WS_HANDSHAKE_TIMEOUT`). 0 leaves the engine's `idleTimeout` in charge.
   * Default 10000; `connect` may override it.
   */
  handshakeTimeout?: number;
  /** How long to wait for the server's close frame, then for its TCP close, in ms. Default 5000. */
  closeTimeout?: number;
  /**
   * Heartbeat in ms: after this long without a byte from the server, ping; after as long again,
   * close the connection (1006). 0 (default) disables. Resolution: the engine's `timerResolution`.
   */
  pingInterval?: number;
  /**
   * permessage-deflate (RFC 7692): `true` offers it with the defaults, an object tunes the
   * offer, `false` (default) offers nothing. The defaults offer `server_no_context_takeover`
   * and `client_no_context_takeover`, so every message is compressed and inflated on its own
   * and an idle connection holds no compression state; a server that declines leaves the
   * connection uncompressed. An answer that breaks RFC 7692 fails the handshake
   * (`ERR_C1M_WS_HANDSHAKE_EXTENSION`). Messages of at least `threshold` bytes are sent
   * compressed; received ones inflate to at most `maxPayload` bytes (past it: close 1009).
   * Compression runs synchronously on the reactor's thread. See `PerMessageDeflateOptions`.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
}

/** Defaults of `WebSocketClientHandlerOptions`. */
export const WS_CLIENT_DEFAULTS = {
  maxPayload: RECEIVER_DEFAULTS.maxPayload,
  maxFragments: RECEIVER_DEFAULTS.maxFragments,
  maxHeaderBytes: 16 * 1024,
  handshakeTimeout: 10_000,
  closeTimeout: 5000,
  pingInterval: 0,
  perMessageDeflate: false,
} as const;

/** A WebSocket client handler: the Handler to create the reactor with, and its `connect`. */
export interface WebSocketClientHandler<T = unknown> extends Handler {
  /**
   * Open a client WebSocket to `url` (`ws://host[:port]/path?query`, or `wss://` over TLS with
   * `options.tls`) on `reactor`, whose handler must be this one. Returns at once; `onOpen` or
   * `onError` + `onClose` follow. A TLS failure (untrusted certificate, wrong name, timeout) is
   * an `onError` with the engine's `ERR_C1M_TLS*` error (`C1mError`).
   *
   * Errors: throws `ERR_C1M_WS_INVALID_URL` for a URL that is not `ws:`/`wss:`/`http:`/`https:`, has a
   * fragment, or names a host that is not an IP address (without `address`);
   * `ERR_C1M_INVALID_OPTION` for a bad option; `ERR_C1M_REACTOR_CLOSED` after `reactor.close()`.
   * Connect failures are reported to `onError`, never thrown.
   */
  connect(reactor: Reactor, url: string | URL, options?: WebSocketConnectOptions<T>): ClientWebSocket<T>;
  /** WebSockets of this handler not yet closed (connecting or open). */
  readonly clients: number;
}

/** A client's own tag flag: the handshake timeout is armed (the open re-arms the connection's timeout). */
const TIMED = ROLE_FLAG;
/** A client's own tag flag: the engine answers the server's empty pings (`conn.setAutoPong`). */
const ENGINE_PONG = ROLE_FLAG << 1;

// Module-local copies of tag bits for the per-message `send` (see server.ts: V8 folds these,
// not imported bindings).
const OPEN = UPGRADED;
const SEND_BITS = UPGRADED | NOT_OPEN;
const CODEC_BITS = 0xff << CODEC_SHIFT;


/**
 * What a WebSocket holds beyond its tag, only while it holds something: what every role's
 * Extra holds (`FrameExtra`), the handshake's expectations while connecting, or a codec with
 * context takeover.
 */
class Extra extends FrameExtra {
  /** Our Sec-WebSocket-Key, while connecting. */
  key = '';
  /** The subprotocols offered, while connecting. */
  offered: readonly string[] | null = null;
  override get empty(): boolean {
    return super.empty && this.key === '' && this.offered === null;
  }
}

/** Handler-wide state shared by every WebSocket of one handler: the client's `Framing`. Internal. */
class Shared extends Framing<ClientWebSocket<unknown>, Extra, WebSocketClientHandlerOptions<unknown>> {
  /** The `Sec-WebSocket-Extensions` offer of every request, or ''. */
  readonly offer: string;
  /** Codecs without context takeover (stateless), one per agreement, shared by connections. */
  constructor(
    opts: WebSocketClientHandlerOptions<unknown>,
    readonly maxHeaderBytes: number,
    readonly handshakeTimeout: number,
    closeTimeout: number,
    pingInterval: number,
    /** The resolved permessage-deflate options, or null when it is off. */
    readonly deflate: ResolvedDeflateOptions | null,
  ) {
    super('client', opts, closeTimeout, pingInterval);
    this.offer = deflate === null ? '' : deflateOffer(deflate);
  }
  socket(conn: Connection): ClientWebSocket<unknown> {
    return createSocket(conn, this);
  }
  protected newExtra(): Extra {
    return new Extra();
  }
  /** The codec bits of the tag for agreed `params`; a stateful codec goes to `x`. */
  codecBits(params: DeflateParams, x: Extra): number {
    return this.deflateCodecBits(params, this.deflate!, () => x);
  }
  // While a frame is streamed into the receiver, the engine must not take the next bytes for a
  // ping; once the close handshake started, pings are not answered (as in JS).
  override holding(conn: Connection, held: boolean): void {
    this.#enginePongs(conn, !held);
  }
  override startClose(conn: Connection, code: number | undefined, reason: string): void {
    super.startClose(conn, code, reason);
    this.#enginePongs(conn, false);
  }
  override peerClosed(conn: Connection, code: number | undefined, reason: string): void {
    super.peerClosed(conn, code, reason);
    this.#enginePongs(conn, false);
  }
  /** The engine's answer to bare pings on (only while open) or off, for a WebSocket that has it. */
  #enginePongs(conn: Connection, on: boolean): void {
    const tag = conn.tag;
    if ((tag & ENGINE_PONG) !== 0) conn.setAutoPong!(on && (tag & NOT_OPEN) === 0);
  }
}

// Engine-side access to a WebSocket's connection, bound in its static block.
let createSocket: (conn: Connection, shared: Shared) => ClientWebSocket<unknown>;

/**
 * One client WebSocket: a handle, like the engine's `Connection`. Its state lives in the
 * engine (`conn.tag`), not in this object: callbacks may hand different objects for one
 * WebSocket (and `connect` yet another), so compare `ws.id`, and keep ids, not objects, in
 * long-lived sets.
 *
 * Threading: use it only on its reactor's thread (inside callbacks, or tasks of that thread).
 * Lifetime: safe to keep after close: `send`, `ping`, `close` then do nothing, `data` reads
 * undefined.
 */
export class ClientWebSocket<T = unknown> {
  readonly #conn: Connection;
  readonly #shared: Shared;

  private constructor(conn: Connection, shared: Shared) {
    this.#conn = conn;
    this.#shared = shared;
  }

  /**
   * One application value per WebSocket (`WebSocketConnectOptions.data`, else undefined).
   * Costs one Map entry while set; readable in `onClose`, gone after it.
   */
  get data(): T {
    return this.#shared.data(this.#conn) as T;
  }

  set data(value: T) {
    const conn = this.#conn;
    if ((conn.tag & GONE) !== 0 || !conn.open) return;
    this.#shared.setData(conn, value);
  }

  /** The subprotocol the server selected, or '' (always '' before the open and after the close). */
  get protocol(): string {
    return this.#shared.protocol(this.#conn);
  }

  /**
   * The agreed permessage-deflate parameters as a `Sec-WebSocket-Extensions` value (window
   * bits only when under 15), or '' when the extension is not in use (and before the open and
   * after the close).
   */
  get extensions(): string {
    const conn = this.#conn;
    if ((conn.tag & GONE) !== 0 || !conn.open) return '';
    const codec = this.#shared.codec(conn, conn.tag);
    return codec === null ? '' : formatDeflateParams(codec.params);
  }

  /** The connection id: stable for the WebSocket's lifetime, unique within its reactor. */
  get id(): number {
    return this.#conn.id;
  }

  /** TLS facts of a `wss:` WebSocket (`conn.tls`: protocol, `resumed`, ...); undefined for `ws:`,
   *  before the TLS handshake completed and after the close. */
  get tls(): TlsInfo | undefined {
    return this.#conn.tls;
  }

  /**
   * `'connecting'` until the 101 was checked; `'open'`; `'closing'` once a close frame was
   * sent or received (or the connection failed); `'closed'` once the connection is gone.
   */
  get readyState(): 'connecting' | 'open' | 'closing' | 'closed' {
    const conn = this.#conn;
    const tag = conn.tag;
    if ((tag & GONE) !== 0 || !conn.open) return 'closed';
    if ((tag & UPGRADED) === 0) return (tag & FAILED) !== 0 ? 'closing' : 'connecting';
    return (tag & NOT_OPEN) !== 0 ? 'closing' : 'open';
  }

  /** Bytes queued and not yet taken by the kernel. */
  get bufferedAmount(): number {
    return this.#conn.bufferedAmount;
  }

  /**
   * Send a message: a string as text, bytes as binary, unless `isBinary` says otherwise
   * (text bytes must then be valid UTF-8: they are not checked). Masked with a fresh key;
   * the bytes are copied. With permessage-deflate, a message of at least `threshold` bytes is
   * compressed first (synchronously); without context takeover it goes uncompressed when that
   * is not smaller, and always when the server limited our window to 8 bits.
   *
   * Backpressure: returns false past the engine's `highWaterMark` (the message is still
   * queued; wait for `onDrain`), and when the WebSocket is not open (dropped: connecting,
   * closing or closed).
   */
  send(data: Uint8Array | string, isBinary: boolean = typeof data !== 'string'): boolean {
    const conn = this.#conn;
    const tag = conn.tag;
    if ((tag & SEND_BITS) !== OPEN) return false;
    const opcode = isBinary ? Opcode.Binary : Opcode.Text;
    if ((tag & CODEC_BITS) !== 0) {
      const shared = this.#shared;
      const codec = shared.codec(conn, tag)!;
      if (codec.canCompress && reachesThreshold(data, shared.deflate!.threshold)) {
        const raw = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
        const packed = codec.compress(raw);
        // With context takeover the peer's window must see every compressed message.
        if (codec.stateful || packed.length < raw.length) return writeMaskedFrame(conn, opcode | RSV1, packed);
        return writeMaskedFrame(conn, opcode, raw);
      }
    }
    return writeMaskedFrame(conn, opcode, data);
  }

  /**
   * Send a ping (`data` at most 125 bytes). Returns false when not open.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for a payload over 125 bytes.
   */
  ping(data?: Uint8Array | string): boolean {
    const conn = this.#conn;
    if ((conn.tag & (UPGRADED | NOT_OPEN)) !== UPGRADED) return false;
    return conn.write(encodePing(data, { mask: true }));
  }

  /**
   * Send an unsolicited pong (pings are answered automatically). Returns false when not open.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for a payload over 125 bytes.
   */
  pong(data?: Uint8Array | string): boolean {
    const conn = this.#conn;
    if ((conn.tag & (UPGRADED | NOT_OPEN)) !== UPGRADED) return false;
    return conn.write(encodeFrame(Opcode.Pong, data ?? '', { mask: true }));
  }

  /**
   * Start the close handshake: send a close frame (no `code`: an empty one), then wait up to
   * `closeTimeout` for the server's close frame and its TCP close. Messages that arrive
   * meanwhile are still delivered. While connecting: the same as `terminate()`. No-op when
   * closing or closed.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for a code that may not be sent (1005,
   * 1006, 1015, ...) or a reason over 123 UTF-8 bytes.
   */
  close(code?: number, reason = ''): void {
    const conn = this.#conn;
    const tag = conn.tag;
    if ((tag & (UPGRADED | FAILED | GONE)) === 0) {
      this.terminate();
      return;
    }
    if ((tag & (UPGRADED | NOT_OPEN)) !== UPGRADED) return;
    this.#shared.startClose(conn, code, reason);
  }

  /** Close the connection at once, without a close handshake (`onClose` reports 1006). */
  terminate(): void {
    const conn = this.#conn;
    if ((conn.tag & GONE) !== 0) return;
    this.#shared.abort(conn);
  }

  static {
    createSocket = (conn, shared) => new ClientWebSocket(conn, shared);
  }
}

/** What a plain 101 selects: nothing (see `plain101`). */
const PLAIN_101: HandshakeResult = { protocol: '', deflate: null };

/** The response head and whatever follows it; returns the bytes consumed. */
function handshake(s: Shared, conn: Connection, data: Buffer): number {
  const tag = conn.tag;
  if ((tag & (FAILED | GONE)) !== 0) return data.length;
  const limit = s.maxHeaderBytes;
  const headEnd = headEndWithin(data, limit);
  if (headEnd < 0) {
    if (data.length < limit) return 0;
    return failHandshake(s, conn, new WsHandshakeError('ERR_C1M_WS_HANDSHAKE_MALFORMED', `response head larger than maxHeaderBytes (${limit})`), data.length);
  }
  const x = s.extras.get(conn.id)!;
  let agreed: HandshakeResult | WsHandshakeError = PLAIN_101;
  // The common answer (nothing offered, nothing selected) is checked where the engine read it.
  if (x.offered!.length !== 0 || s.deflate !== null || !plain101(data, headEnd, x.key)) {
    const head = parseResponseHead(data.toString('latin1', 0, headEnd - 4));
    if (typeof head === 'string') return failHandshake(s, conn, new WsHandshakeError('ERR_C1M_WS_HANDSHAKE_MALFORMED', head), data.length);
    agreed = checkResponse(head, x.key, x.offered!, s.deflate);
    if (agreed instanceof WsHandshakeError) return failHandshake(s, conn, agreed, data.length);
  }
  x.key = '';
  x.offered = null;
  let bits = agreed.protocol === '' ? 0 : s.protocolBits(agreed.protocol, () => x);
  if (agreed.deflate !== null) bits |= s.codecBits(agreed.deflate, x);
  // The server's empty heartbeat pings are answered by the engine, unless the application
  // watches pings (native backend only).
  const enginePong = s.opts.onPing === undefined && conn.setAutoPong !== undefined;
  conn.tag = (tag & ~TIMED) | UPGRADED | bits | (enginePong ? ENGINE_PONG : 0);
  if (enginePong) conn.setAutoPong!(true);
  s.trim(conn, x);
  // Replaces the handshake timeout with the heartbeat (or none); with neither configured the
  // engine's idleTimeout stays in charge.
  if (s.pingInterval > 0 || (tag & TIMED) !== 0) conn.setTimeout(s.pingInterval);
  const ws = createSocket(conn, s);
  s.opts.onOpen?.(ws);
  return headEnd < data.length ? s.receive(conn, data, headEnd, ws) : headEnd;
}

function failHandshake(s: Shared, conn: Connection, err: WsHandshakeError, consumed: number): number {
  conn.tag = conn.tag | FAILED;
  conn.close();
  s.opts.onError?.(createSocket(conn, s), err);
  return consumed;
}

/** The engine's idle timeout fired: the handshake timeout, or one of an upgraded connection's. */
function timedOut(s: Shared, conn: Connection): void {
  const tag = conn.tag;
  if ((tag & GONE) !== 0) return;
  if ((tag & UPGRADED) === 0) {
    if ((tag & FAILED) !== 0) {
      createSocket(conn, s).terminate();
      return;
    }
    conn.tag = tag | FAILED;
    conn.destroy();
    s.opts.onError?.(createSocket(conn, s), new WsHandshakeError('ERR_C1M_WS_HANDSHAKE_TIMEOUT', 'the opening handshake did not complete in time'));
    return;
  }
  if ((tag & CLOSE_RECEIVED) !== 0) {
    // Both close frames went; the server did not close TCP: we may (RFC 6455 7.1.1).
    conn.close();
    return;
  }
  s.timedOut(conn);
}

/** The error of a connection that closed before its handshake completed. */
function connectError(reason: CloseReason): WsClientError {
  if (reason.kind === 'connect-failed' && reason.error !== undefined) return reason.error as SystemError;
  if (reason.kind === 'tls-error' && reason.error !== undefined) return reason.error as C1mError; // ERR_C1M_TLS*
  const detail = reason.code !== undefined ? `${reason.kind}, ${reason.code}` : reason.kind;
  return new WsHandshakeError('ERR_C1M_WS_HANDSHAKE_CLOSED', `the connection closed before the opening handshake completed (${detail})`);
}


class WsClient implements WebSocketClientHandler<unknown> {
  readonly #shared: Shared;
  /** The `tls` options objects of `wss:` connects, one per (given options, server name). */
  readonly #wss = new WssOptions();

  constructor(opts: WebSocketClientHandlerOptions<unknown>) {
    checkOption(typeof opts === 'object' && opts !== null, 'options', 'an object', opts);
    const pingInterval = opts.pingInterval ?? WS_CLIENT_DEFAULTS.pingInterval;
    const closeTimeout = opts.closeTimeout ?? WS_CLIENT_DEFAULTS.closeTimeout;
    const handshakeTimeout = opts.handshakeTimeout ?? WS_CLIENT_DEFAULTS.handshakeTimeout;
    const maxHeaderBytes = opts.maxHeaderBytes ?? WS_CLIENT_DEFAULTS.maxHeaderBytes;
    checkOption(isMs(pingInterval), 'pingInterval', 'an integer number of ms from 0 to 2147483647', pingInterval);
    checkOption(isMs(closeTimeout) && closeTimeout > 0, 'closeTimeout', 'an integer number of ms from 1 to 2147483647', closeTimeout);
    checkOption(isMs(handshakeTimeout), 'handshakeTimeout', 'an integer number of ms from 0 to 2147483647', handshakeTimeout);
    checkOption(Number.isInteger(maxHeaderBytes) && maxHeaderBytes >= 64, 'maxHeaderBytes', 'an integer >= 64', maxHeaderBytes);
    for (const name of ['onOpen', 'onMessage', 'onClose', 'onDrain', 'onPing', 'onPong', 'onError'] as const) {
      checkOption(opts[name] === undefined || typeof opts[name] === 'function', name, 'a function', typeof opts[name]);
    }
    const perMessageDeflate = opts.perMessageDeflate ?? WS_CLIENT_DEFAULTS.perMessageDeflate;
    checkOption(
      typeof perMessageDeflate === 'boolean' || (typeof perMessageDeflate === 'object' && perMessageDeflate !== null),
      'perMessageDeflate', 'a boolean or an object', perMessageDeflate,
    );
    const deflate = perMessageDeflate === false ? null : resolveDeflateOptions(perMessageDeflate);
    // The receiver validates maxPayload and maxFragments.
    this.#shared = new Shared(opts, maxHeaderBytes, handshakeTimeout, closeTimeout, pingInterval, deflate);
  }

  get clients(): number {
    return this.#shared.count;
  }

  connect(reactor: Reactor, url: string | URL, options: WebSocketConnectOptions<unknown> = {}): ClientWebSocket<unknown> {
    const target = parseWsUrl(url);
    const offered = checkConnectOptions(options);
    const address = options.address ?? target.hostname;
    if (isIP(address) === 0) {
      throw new C1mError('ERR_C1M_WS_INVALID_URL', `host ${JSON.stringify(target.hostname)} is not an IP address: resolve it and pass options.address`);
    }
    const s = this.#shared;
    s.reactor ??= reactor;
    const tls = target.secure ? this.#wss.for(options.tls, target.hostname) : undefined;
    const conn = reactor.connect({ host: address, port: target.port, localAddress: options.localAddress, tls });
    s.count++;
    const key = randomKey();
    // A connect that failed at once has a stale handle (its tag ignores writes): its Extra is
    // found by id in onClose all the same.
    const x = s.extra(conn);
    x.key = key;
    x.offered = offered;
    x.data = options.data;
    conn.write(buildRequest(target, key, options, s.offer));
    const timeout = options.handshakeTimeout ?? s.handshakeTimeout;
    if (timeout > 0) {
      conn.tag = conn.tag | TIMED;
      conn.setTimeout(timeout);
    }
    return createSocket(conn, s);
  }

  onData(conn: Connection, data: Buffer): number {
    const s = this.#shared;
    return (conn.tag & UPGRADED) === 0 ? handshake(s, conn, data) : s.receive(conn, data, 0, null);
  }

  onDrain(conn: Connection): void {
    if ((conn.tag & (UPGRADED | GONE)) === UPGRADED) this.#shared.opts.onDrain?.(createSocket(conn, this.#shared));
  }

  onTimeout(conn: Connection): void {
    timedOut(this.#shared, conn);
  }

  onClose(conn: Connection, reason: CloseReason): void {
    const s = this.#shared;
    s.count--;
    const tag = conn.tag;
    const x = s.extras.get(conn.id);
    const opts = s.opts;
    try {
      const ws = createSocket(conn, s);
      if ((tag & UPGRADED) === 0) {
        // Terminated by the application, or already reported: no error.
        if ((tag & (FAILED | GONE)) === 0) opts.onError?.(ws, connectError(reason));
        opts.onClose?.(ws, CODE_ABNORMAL, '');
        return;
      }
      const handshake = (tag & (CLOSE_RECEIVED | FAILED)) !== 0 && x !== undefined;
      opts.onClose?.(ws, handshake ? x.code : CODE_ABNORMAL, handshake ? x.reason : '');
    } finally {
      if (x !== undefined) s.extras.delete(conn.id);
    }
  }

  onReactor(reactor: Reactor): void {
    this.#shared.reactor = reactor;
  }

  onShutdown(): void {
    const s = this.#shared;
    // Open WebSockets get a close handshake (1001), connecting ones are terminated.
    for (const conn of s.reactor?.connections() ?? []) createSocket(conn, s).close(CODE_GOING_AWAY);
  }
}

/**
 * A c1m Handler for client WebSockets: create a reactor with it (`createReactor(handler)`),
 * then `handler.connect(reactor, url)`. Use one handler per reactor, and no other handler on
 * that reactor. `reactor.close()` starts a close handshake (1001) on every open WebSocket and
 * terminates those still connecting.
 *
 * Errors: throws `ERR_C1M_INVALID_OPTION` for a bad option. An exception thrown by a callback
 * closes that connection (`'handler-error'`, reported to the engine's `onError`; `onClose`
 * reports 1006).
 */
export function createWebSocketClientHandler<T = unknown>(options: WebSocketClientHandlerOptions<T> = {}): WebSocketClientHandler<T> {
  return new WsClient(options as WebSocketClientHandlerOptions<unknown>) as unknown as WebSocketClientHandler<T>;
}
