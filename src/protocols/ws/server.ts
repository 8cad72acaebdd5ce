/**
 * The WebSocket server (RFC 6455) on the engine: `createWebSocketHandler` returns a c1m
 * Handler that answers the opening handshake, then speaks frames, on either backend.
 *
 * Model:
 *   - Before the upgrade a connection has no state at all. Its bytes stay in the engine
 *     (onData returns 0) until the head's blank line arrives. A plain upgrade head is then
 *     read in place (`plainUpgrade`) and answered from a shared buffer: nothing is allocated
 *     that outlives it. Any other head goes through one RequestParser per handler, reset for
 *     each head, and the same checks (`#decide`). A head is at most `maxHeaderBytes`.
 *   - Behind the HTTP server (`upgradeHook`), `#decide` runs on the request it parsed, and the
 *     bytes after the head reach `onData` in place (see UPGRADE_IN_PLACE in http1/server.ts).
 *   - After the upgrade a WebSocket's state is its connection's `tag` word plus an `Extra`
 *     held only while needed, and its frames are cut, unmasked on the fast path and parsed
 *     as framing.ts describes (the server's side of `Framing`). The server's Extra adds a
 *     codec with context takeover and bytes kept from a hand-over by the HTTP server.
 *     `WebSocket` objects are handles made per callback, like the engine's `Connection`.
 *
 * What an idle open WebSocket holds in JS: nothing. Its state is the engine's per-connection
 * tag word (on the native backend 4 bytes in a typed array indexed by fd).
 *
 * permessage-deflate: a connection without context takeover (the default) points at a codec
 * shared by every connection with the same agreement, which holds only parameters; messages
 * are deflated and inflated by one synchronous zlib call each. Only a connection that agreed
 * to context takeover has a codec of its own, with at most 2^windowBits bytes of history per
 * direction. Compressed messages are assembled (compressed) by the receiver like any other,
 * then inflated whole, at most `maxPayload` bytes.
 *
 * Timers: the handshake timeout, heartbeats (`pingInterval`) and the close handshake timeout
 * all use the engine's idle timeout (`conn.setTimeout` / `onTimeout`, a coarse sweep), never a
 * JS timer per connection. Only one of them is armed at a time.
 *
 * Invariants: those of framing.ts, and `onClose` runs once per open WebSocket.
 */
import { Action, checkOption, spreadOver, type Connection, type Handler, type Reactor } from '../../core/index.js';
import { HttpParseError, RequestParser, UPGRADE_IN_PLACE, UPGRADE_QUICK, UPGRADE_TAGGED, headEndWithin, parseFieldText, type QuickUpgrade, type RequestHead, type ResponseFields } from '../http1/index.js';
import { Opcode } from './constants.js';
import {
  PerMessageDeflate,
  formatDeflateParams,
  negotiateDeflate,
  parseExtensions,
  resolveDeflateOptions,
  type DeflateParams,
  type PerMessageDeflateOptions,
  type ResolvedDeflateOptions,
} from './deflate.js';
import { WsProtocolError, checkArgument } from './errors.js';
import {
  CLOSE_RECEIVED,
  CODE_ABNORMAL,
  CODE_GOING_AWAY,
  CODEC_SHIFT,
  EXTRA,
  FAILED,
  FrameExtra,
  Framing,
  GONE,
  NO_MORE_INPUT,
  NOT_OPEN,
  ROLE_FLAG,
  RSV1,
  UPGRADED,
  writeFrame,
} from './framing.js';
import { HeadCatcher, QUICK_MAX_FIELDS, QUICK_MAX_TARGET, WS_VERSION, fieldList, headOf, refuse, type HookRequest, acceptHead, acceptHeadFromBytes, acceptResponse, plainUpgrade, headerHasToken, isMs, parseProtocols, sameName, validateKey } from './handshake.js';
import { RECEIVER_DEFAULTS } from './receiver.js';
import { encodeFrame, encodePing } from './sender.js';
import { CODE_TRY_AGAIN_LATER, WsTopics, type WsPubSubOptions, type WsPubSubStats, type WsPublishOptions } from './server-pubsub.js';
import { checkTopic } from '../pubsub/index.js';

export type { WsPubSubOptions, WsPubSubStats, WsPublishOptions } from './server-pubsub.js';

export { HOLD_FRAME_BYTES } from './framing.js';

/** A refusal returned by `onUpgrade`: the HTTP status (300-599) and extra response fields. */
export interface UpgradeRejection {
  status: number;
  headers?: ResponseFields;
}

/** Options of `createWebSocketHandler`. Every callback is optional. */
export interface WebSocketServerOptions<T = unknown> {
  /**
   * Decide on a valid upgrade request before the 101 is sent. Return `false` (403), an
   * `UpgradeRejection` (any object whose `status` is a number), or anything else to accept:
   * that value (unless `undefined` or `true`) becomes `ws.data`. Synchronous only.
   *
   * Lifetime: `req` is a fresh object; keep what you need in the returned value.
   */
  onUpgrade?(req: RequestHead, conn: Connection): false | UpgradeRejection | T | true | undefined | void;
  /** The 101 is written; frames may be sent. */
  onOpen?(ws: WebSocket<T>): void;
  /**
   * A complete message. `isBinary` false: `data` is valid UTF-8 text.
   * Lifetime: `data` is a view valid only until this callback returns; copy what you keep.
   */
  onMessage?(ws: WebSocket<T>, data: Buffer, isBinary: boolean): void;
  /**
   * The connection is gone. `code` is the peer's close code (1005 when its close frame had
   * none), the code we sent for a protocol error, or 1006 when the connection ended without
   * a close handshake. Runs once per WebSocket.
   */
  onClose?(ws: WebSocket<T>, code: number, reason: string): void;
  /** `send` returned false earlier and the buffered bytes are now written. */
  onDrain?(ws: WebSocket<T>): void;
  /** A ping arrived (a pong was already queued). Lifetime: `data` as in `onMessage`. */
  onPing?(ws: WebSocket<T>, data: Uint8Array): void;
  /** A pong arrived. Lifetime: `data` as in `onMessage`. */
  onPong?(ws: WebSocket<T>, data: Uint8Array): void;
  /** The peer broke the protocol; a close frame with `err.closeCode` is on its way, then TCP closes. */
  onError?(ws: WebSocket<T>, err: WsProtocolError): void;
  /**
   * Subprotocol selection: the supported names (the first offered that is supported wins),
   * or a function of the offered names (client order) returning one of them or undefined.
   * Default: none is selected.
   */
  protocols?: readonly string[] | ((offered: readonly string[], req: RequestHead) => string | undefined);
  /**
   * Largest message in bytes (summed over fragments); past it: close 1009. Default 1 MiB.
   * A compressed message is bounded twice: its compressed size, then its inflated size
   * (inflating stops at the limit).
   */
  maxPayload?: number;
  /** Most frames in one message; past it: close 1009. Default 65536. */
  maxFragments?: number;
  /** Largest upgrade request head in bytes; past it: 431. Default 16 KiB. */
  maxHeaderBytes?: number;
  /**
   * Heartbeat in ms: after this long without a byte from the peer, ping; after as long again,
   * close the connection (code 1006 reported). 0 (default) disables. Resolution: the
   * engine's `timerResolution`.
   */
  pingInterval?: number;
  /** How long to wait for the peer's close frame after ours, in ms. Default 5000. */
  closeTimeout?: number;
  /**
   * Close a connection that has not completed the upgrade request after this many ms. 0
   * leaves the engine's `idleTimeout` in charge. Default 10000.
   */
  handshakeTimeout?: number;
  /**
   * permessage-deflate (RFC 7692): `true` for the defaults, an object to tune it, `false`
   * (default) to ignore clients' offers. By default the server adds `server_no_context_takeover`
   * and `client_no_context_takeover` to its answer, so every message is compressed and
   * inflated on its own and an idle connection holds no compression state. See
   * `PerMessageDeflateOptions` and docs/websocket.md for the memory and CPU it costs.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /**
   * Topics (`ws.subscribe`, `handler.publish(topic, ...)`): limits and the slow-subscriber
   * policy. Defaults: `PUBSUB_DEFAULTS` (64 topics per WebSocket, 100,000 topics, names up to
   * 256 UTF-8 bytes, slow subscribers past 1 MiB buffered closed with 1013).
   */
  pubsub?: WsPubSubOptions;
  /**
   * `active` true when the first WebSocket of this handler subscribed to `topic`, false after
   * the last one left it (unsubscribe, close frame, or close). For a gateway that relays
   * topics between processes. What it throws reaches the caller of `subscribe`/`unsubscribe`
   * (when it is a close, the engine's `onError`).
   */
  onTopicInterest?(topic: string, active: boolean): void;
  /**
   * Spread a graceful shutdown's closes over this many ms instead of sending every 1001 at
   * once, so that the clients of a restarting server, which reconnect as soon as they are
   * closed, do not all reach the next one in the same second. A WebSocket keeps working
   * (messages, publishes, subscriptions) until its turn; the handler's `onShutdown()`
   * promise resolves once the last close frame is queued. Upgrades not yet answered when the
   * shutdown starts are refused with 503. Default 0: all at once.
   *
   * The reactor's `close(timeoutMs)` resets whatever is still open at its deadline, so give
   * it more than this plus `closeTimeout` (`c1m serve --grace` does so by default).
   */
  shutdownSpread?: number;
}

/** Defaults of `WebSocketServerOptions`. */
export const WS_SERVER_DEFAULTS = {
  maxPayload: RECEIVER_DEFAULTS.maxPayload,
  maxFragments: RECEIVER_DEFAULTS.maxFragments,
  maxHeaderBytes: 16 * 1024,
  pingInterval: 0,
  closeTimeout: 5000,
  handshakeTimeout: 10_000,
  perMessageDeflate: false,
  shutdownSpread: 0,
} as const;

/** A WebSocket handler: a c1m Handler, plus a count of its open WebSockets. */
export interface WebSocketHandler extends Handler {
  /** WebSockets open (upgraded and not yet closed) on this handler. */
  readonly clients: number;
  /**
   * `publish` that knows this handler's WebSockets: ids that are not open WebSockets of this
   * handler (closing, closed, someone else's) are skipped, and with permessage-deflate a
   * message of at least `threshold` bytes is compressed once per distinct agreement and sent
   * compressed to every WebSocket without context takeover (the others get it uncompressed).
   * `reactor` must be the one this handler serves. Returns the number of connections the
   * message was queued for.
   *
   * Backpressure: none is reported; check `ws.bufferedAmount` for slow clients.
   */
  publish(reactor: Reactor, ids: ArrayLike<number>, message: Uint8Array | string, isBinary?: boolean): number;
  /**
   * Publish `message` to every open WebSocket of this handler subscribed to `topic`: the frame
   * is encoded once (compressed once per distinct agreement with `options.compress`) and
   * written with `reactor.broadcast`, one crossing for all local subscribers. Returns the
   * number of subscribers it was queued for.
   *
   * Backpressure: never waits. A subscriber past `pubsub.maxBufferedBytes` is closed with 1013
   * (`slowSubscriber: 'close'`) or skipped (`'drop'`); see `pubsubStats`.
   * Errors: `ERR_C1M_WS_INVALID_ARGUMENT` when the topic has subscribers but the handler was
   * never given its reactor (`onReactor`).
   */
  publish(topic: string, message: Uint8Array | string, options?: WsPublishOptions): number;
  /** Open WebSockets of this handler subscribed to `topic`. */
  subscriberCount(topic: string): number;
  /** Counters of this handler's topics. A fresh object per read. */
  readonly pubsubStats: WsPubSubStats;
  /**
   * An `onUpgrade` hook for `createHttpHandler`, to serve WebSockets and HTTP on one port:
   * the upgrade request goes through this handler's own checks (the same answers, 101 or a
   * refusal, as on a dedicated port) and the connection is handed over on success.
   * `createHttpHandler` hands it over in place: the checks run on the request it parsed, and
   * the bytes after the head reach this handler's `onData` without a copy. Called by other
   * code, the hook reads `head` itself.
   * Give this handler its reactor too (`wsHandler.onReactor?.(reactor)`), or a graceful
   * shutdown will not send 1001 to its WebSockets.
   */
  upgradeHook(): (req: { method: string; target: string; headers: readonly (readonly [string, string])[] }, conn: Connection, head: Buffer) => Handler | void;
  /**
   * The graceful shutdown (the engine calls it once its listeners are closed): every open
   * WebSocket gets a 1001 close, all at once or spread over `shutdownSpread` ms. Resolves when
   * the last close frame is queued (the peers' answers may still be on their way). Calls after
   * the first return the first one's promise.
   */
  onShutdown(): Promise<void>;
}

// Module-local copies of the tag bits `send` tests: an imported binding is read through its
// module cell at every use and V8 does not fold it (2-3% per echoed 64-byte frame).
const WS = UPGRADED;
/** The engine keeps this WebSocket's heartbeat (`conn.setHeartbeat`): a timeout means no answer. */
const ENGINE_HEARTBEAT = ROLE_FLAG;
const SEND_BITS = UPGRADED | NOT_OPEN;
const CODEC_BITS = 0xff << CODEC_SHIFT;

const NO_PROTOCOLS: readonly string[] = Object.freeze([]);

/** True when `data` takes at least `threshold` bytes (UTF-8 for a string), cheaply. */
function atLeast(data: Uint8Array | string, threshold: number): boolean {
  if (typeof data !== 'string') return data.length >= threshold;
  // A UTF-16 code unit takes 1 to 3 UTF-8 bytes.
  if (data.length >= threshold) return true;
  if (data.length * 3 < threshold) return false;
  return Buffer.byteLength(data) >= threshold;
}

/**
 * What a WebSocket holds beyond its tag, only while it holds something: what every role's
 * Extra holds (`FrameExtra`), a codec with context takeover, or bytes short of a frame.
 */
class Extra extends FrameExtra {
  /**
   * Bytes short of a frame left in the `head` given to the hook when it is called directly
   * (the HTTP server hands bytes over in place, so it never needs this; see `upgradeHook`).
   */
  pending: Buffer | null = null;
  override get empty(): boolean {
    return super.empty && this.pending === null;
  }
}

/** Handler-wide state shared by every WebSocket of one handler: the server's `Framing`. Internal. */
class Shared extends Framing<WebSocket<unknown>, Extra, WebSocketServerOptions<unknown>> {
  /** The resolved permessage-deflate options, or null when it is off. */
  readonly deflate: ResolvedDeflateOptions | null;
  /** Codecs without context takeover (stateless), one per agreement, shared by connections. */
  shuttingDown = false;
  /** The handler's topics: a WebSocket is subscribed only while open (see the overrides below). */
  readonly topics: WsTopics;
  constructor(opts: WebSocketServerOptions<unknown>, pingInterval: number, closeTimeout: number, deflate: ResolvedDeflateOptions | null) {
    super('server', opts, closeTimeout, pingInterval);
    this.deflate = deflate;
    const interest = opts.onTopicInterest;
    this.topics = new WsTopics(opts.pubsub, typeof interest === 'function' ? (topic, active) => interest.call(opts, topic, active) : interest);
  }
  // A WebSocket leaves its topics as soon as it is no longer open: no data frame may follow our
  // close frame, and a publish then needs no state check per subscriber.
  override fail(conn: Connection, ws: WebSocket<unknown>, err: WsProtocolError): void {
    super.fail(conn, ws, err);
    this.topics.table.removeAll(conn.id);
  }
  override peerClosed(conn: Connection, code: number | undefined, reason: string): void {
    super.peerClosed(conn, code, reason);
    this.topics.table.removeAll(conn.id);
  }
  override startClose(conn: Connection, code: number | undefined, reason: string): void {
    super.startClose(conn, code, reason);
    this.topics.table.removeAll(conn.id);
  }
  override abort(conn: Connection): void {
    super.abort(conn);
    this.topics.table.removeAll(conn.id);
  }
  /**
   * Arm the heartbeat (`pingInterval` 0: clear the timeout): in the engine when it can keep it
   * (the native backend's `setHeartbeat`; empty pongs absorbed unless the application has
   * `onPong`), else on the engine's timeout and `timedOut`.
   */
  armHeartbeat(conn: Connection): void {
    if (this.pingInterval === 0 || conn.setHeartbeat === undefined) return conn.setTimeout(this.pingInterval);
    conn.tag = conn.tag | ENGINE_HEARTBEAT;
    conn.setHeartbeat(this.pingInterval, this.opts.onPong === undefined);
  }
  // While this side holds part of a frame (streamed, or in `Extra.pending`), the engine must not
  // take the next bytes for a pong.
  override holding(conn: Connection, held: boolean): void {
    const tag = conn.tag;
    if ((tag & (ENGINE_HEARTBEAT | NOT_OPEN)) !== ENGINE_HEARTBEAT || this.opts.onPong !== undefined) return;
    const x = !held && (tag & EXTRA) !== 0 ? this.extras.get(conn.id) : undefined;
    if (x === undefined || (x.frameLeft === 0 && x.pending === null)) conn.setHeartbeat!(this.pingInterval, !held);
  }
  // The engine pinged and heard nothing for an interval more: terminate (1006). After the close
  // started (its setTimeout ended heartbeat mode), the timeout is the close handshake's.
  override timedOut(conn: Connection): void {
    const tag = conn.tag;
    if ((tag & (ENGINE_HEARTBEAT | NOT_OPEN)) === ENGINE_HEARTBEAT) this.abort(conn);
    else super.timedOut(conn);
  }
  /** A slow subscriber (see server-pubsub.ts): close with 1013. */
  closeSlow(conn: Connection): void {
    if ((conn.tag & (WS | NOT_OPEN)) === WS) this.startClose(conn, CODE_TRY_AGAIN_LATER, '');
  }
  socket(conn: Connection): WebSocket<unknown> {
    return createSocket(conn, this);
  }
  protected newExtra(): Extra {
    return new Extra();
  }
  /** The codec bits of the tag for `params`; a stateful codec goes to `extra`. */
  codecBits(params: DeflateParams, extra: () => Extra): number {
    return this.deflateCodecBits(params, this.deflate!, extra);
  }
}

// Engine-side access to a WebSocket's private state, bound in its static block.
let createSocket: (conn: Connection, shared: Shared) => WebSocket<unknown>;

/**
 * One upgraded connection: a handle, like the engine's `Connection`. The WebSocket's state
 * lives in the engine (`conn.tag`), not in this object: callbacks may hand different objects
 * for one WebSocket, so compare `ws.id` (and keep ids, not objects, in long-lived sets).
 *
 * Threading: use it only on its reactor's thread (inside callbacks, or tasks of that thread).
 * Lifetime: safe to keep after close: `send`, `ping` and `close` then do nothing, `data`
 * reads undefined.
 */
export class WebSocket<T = unknown> {
  readonly #conn: Connection;
  readonly #shared: Shared;

  private constructor(conn: Connection, shared: Shared) {
    this.#conn = conn;
    this.#shared = shared;
  }

  /**
   * One application value per WebSocket: what `onUpgrade` returned, else undefined. Costs
   * one Map entry while set; readable in `onClose`, gone after it.
   */
  get data(): T {
    return this.#shared.data(this.#conn) as T;
  }

  set data(value: T) {
    const conn = this.#conn;
    if ((conn.tag & (WS | GONE)) !== WS || !conn.open) return;
    this.#shared.setData(conn, value);
  }

  /** The subprotocol selected in the handshake, or '' when none. */
  get protocol(): string {
    return this.#shared.protocol(this.#conn);
  }

  /**
   * The agreed permessage-deflate parameters as a `Sec-WebSocket-Extensions` value (window
   * bits only when under 15), or '' when the extension is not in use.
   */
  get extensions(): string {
    const codec = this.#shared.codec(this.#conn, this.#conn.tag);
    return codec === null ? '' : formatDeflateParams(codec.params);
  }

  /** The connection id (for `publish` and `reactor.broadcast`). */
  get id(): number {
    return this.#conn.id;
  }

  /** `'open'`; `'closing'` once a close frame was sent or received; `'closed'` once the connection is gone. */
  get readyState(): 'open' | 'closing' | 'closed' {
    const conn = this.#conn;
    const tag = conn.tag;
    if ((tag & (WS | GONE)) !== WS || !conn.open) return 'closed';
    return (tag & NOT_OPEN) !== 0 ? 'closing' : 'open';
  }

  /** Bytes queued and not yet taken by the kernel. */
  get bufferedAmount(): number {
    return this.#conn.bufferedAmount;
  }

  get remoteAddress(): string | undefined {
    return this.#conn.remoteAddress;
  }

  /**
   * Send a message: a string as text, bytes as binary, unless `isBinary` says otherwise
   * (text bytes must then be valid UTF-8: they are not checked). The bytes are copied.
   * With permessage-deflate, a message of at least `threshold` bytes is compressed first
   * (synchronously); without context takeover it goes uncompressed when that is not smaller.
   *
   * Backpressure: returns false past the engine's `highWaterMark` (the message is still
   * queued; wait for `onDrain`), and when the WebSocket is closing or closed (dropped).
   */
  send(data: Uint8Array | string, isBinary: boolean = typeof data !== 'string'): boolean {
    const conn = this.#conn;
    const tag = conn.tag;
    if ((tag & SEND_BITS) !== WS) return false;
    const opcode = isBinary ? Opcode.Binary : Opcode.Text;
    if ((tag & CODEC_BITS) !== 0) {
      const shared = this.#shared;
      if (atLeast(data, shared.deflate!.threshold)) {
        const codec = shared.codec(conn, tag)!;
        const raw = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
        const packed = codec.compress(raw);
        if (codec.stateful || packed.length < raw.length) return writeFrame(conn, opcode | RSV1, packed);
        return writeFrame(conn, opcode, raw);
      }
    }
    return writeFrame(conn, opcode, data);
  }

  /**
   * Send a ping (`data` at most 125 bytes). Returns false when not open.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for a payload over 125 bytes.
   */
  ping(data?: Uint8Array | string): boolean {
    if ((this.#conn.tag & (WS | NOT_OPEN)) !== WS) return false;
    return this.#conn.write(encodePing(data));
  }

  /**
   * Start the close handshake: send a close frame (no `code`: an empty one), then wait up to
   * `closeTimeout` for the peer's close frame before the connection is closed. No-op unless
   * open. Messages that arrive meanwhile are still delivered.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for a code that may not be sent (1005,
   * 1006, 1015, ...) or a reason over 123 UTF-8 bytes.
   */
  close(code?: number, reason = ''): void {
    const conn = this.#conn;
    const tag = conn.tag;
    if ((tag & (WS | NOT_OPEN)) !== WS) return;
    this.#shared.startClose(conn, code, reason);
  }

  /** Close the connection at once, without a close handshake (`onClose` reports 1006). */
  terminate(): void {
    const conn = this.#conn;
    const tag = conn.tag;
    if ((tag & (WS | GONE)) !== WS) return;
    this.#shared.abort(conn);
  }

  /**
   * Subscribe to `topic` (for `handler.publish(topic, ...)`). Returns true if newly
   * subscribed, false if it already was or the WebSocket is not open. A WebSocket leaves all
   * its topics when it stops being open (close frame sent or received, failure, close).
   *
   * Memory: no object per WebSocket or subscription (about 16 bytes per subscription; see
   * docs/websocket.md). Errors: `ERR_C1M_PUBSUB_TOPIC` for a name that is empty, longer than
   * `pubsub.maxTopicLength` UTF-8 bytes, not valid UTF-8 or with a control character;
   * `ERR_C1M_PUBSUB_LIMIT` past `pubsub.maxTopicsPerConnection` or `pubsub.maxTopics`.
   */
  subscribe(topic: string): boolean {
    const conn = this.#conn;
    const table = this.#shared.topics.table;
    if ((conn.tag & (WS | NOT_OPEN)) !== WS || !conn.open) {
      checkTopic(topic, table.maxTopicLength);
      return false;
    }
    return table.subscribe(conn.id, topic);
  }

  /** Leave `topic`. Returns true if the WebSocket was subscribed to it. */
  unsubscribe(topic: string): boolean {
    return this.#shared.topics.table.unsubscribe(this.#conn.id, topic);
  }

  /** True while the WebSocket is subscribed to `topic` (never once it is closing). */
  isSubscribed(topic: string): boolean {
    return this.#shared.topics.table.isSubscribed(this.#conn.id, topic);
  }

  /** The topics this WebSocket is subscribed to, in no particular order. */
  getTopics(): string[] {
    return this.#shared.topics.table.topicsOf(this.#conn.id);
  }

  static {
    createSocket = (conn, shared) => new WebSocket(conn, shared);
  }
}

class WsServer implements WebSocketHandler {
  /** Behind the HTTP server, its connections are known by their nonzero tag (no per-connection entry there). */
  readonly [UPGRADE_TAGGED] = true;
  readonly #shared: Shared;
  readonly #opts: WebSocketServerOptions<unknown>;
  readonly #heads = new HeadCatcher();
  readonly #parser: RequestParser;
  readonly #maxHeaderBytes: number;
  readonly #handshakeTimeout: number;
  readonly #protocols: WebSocketServerOptions<unknown>['protocols'];
  /** No callback needs the parsed request: plain upgrades take `plainUpgrade`. */
  readonly #quick: boolean;
  /** The 101 head `#decide` chose (a shared buffer: write it at once). */
  #answer: Buffer = Buffer.alloc(0);
  readonly #shutdownSpread: number;
  /** The shutdown's closes, once started. */
  #shutdown: Promise<void> | null = null;

  constructor(opts: WebSocketServerOptions<unknown>) {
    checkOption(typeof opts === 'object' && opts !== null, 'options', 'an object', opts);
    const pingInterval = opts.pingInterval ?? WS_SERVER_DEFAULTS.pingInterval;
    const closeTimeout = opts.closeTimeout ?? WS_SERVER_DEFAULTS.closeTimeout;
    const handshakeTimeout = opts.handshakeTimeout ?? WS_SERVER_DEFAULTS.handshakeTimeout;
    const maxHeaderBytes = opts.maxHeaderBytes ?? WS_SERVER_DEFAULTS.maxHeaderBytes;
    checkOption(isMs(pingInterval), 'pingInterval', 'an integer number of ms from 0 to 2147483647', pingInterval);
    checkOption(isMs(closeTimeout) && closeTimeout > 0, 'closeTimeout', 'an integer number of ms from 1 to 2147483647', closeTimeout);
    checkOption(isMs(handshakeTimeout), 'handshakeTimeout', 'an integer number of ms from 0 to 2147483647', handshakeTimeout);
    checkOption(Number.isInteger(maxHeaderBytes) && maxHeaderBytes >= 64, 'maxHeaderBytes', 'an integer >= 64', maxHeaderBytes);
    const shutdownSpread = opts.shutdownSpread ?? WS_SERVER_DEFAULTS.shutdownSpread;
    checkOption(isMs(shutdownSpread), 'shutdownSpread', 'an integer number of ms from 0 to 2147483647', shutdownSpread);
    const protocols = opts.protocols;
    checkOption(
      protocols === undefined || typeof protocols === 'function' || (Array.isArray(protocols) && protocols.every((p) => typeof p === 'string')),
      'protocols', 'an array of strings or a function', protocols,
    );
    for (const name of ['onUpgrade', 'onOpen', 'onMessage', 'onClose', 'onDrain', 'onPing', 'onPong', 'onError', 'onTopicInterest'] as const) {
      checkOption(opts[name] === undefined || typeof opts[name] === 'function', name, 'a function', typeof opts[name]);
    }
    const perMessageDeflate = opts.perMessageDeflate ?? WS_SERVER_DEFAULTS.perMessageDeflate;
    checkOption(
      typeof perMessageDeflate === 'boolean' || (typeof perMessageDeflate === 'object' && perMessageDeflate !== null),
      'perMessageDeflate', 'a boolean or an object', perMessageDeflate,
    );
    const deflate = perMessageDeflate === false ? null : resolveDeflateOptions(perMessageDeflate);
    // The receiver validates maxPayload and maxFragments.
    this.#shared = new Shared(opts, pingInterval, closeTimeout, deflate);
    this.#opts = opts;
    this.#parser = new RequestParser(this.#heads, { maxHeaderBytes });
    this.#maxHeaderBytes = maxHeaderBytes;
    this.#handshakeTimeout = handshakeTimeout;
    this.#shutdownSpread = shutdownSpread;
    this.#protocols = protocols;
    this.#quick = opts.onUpgrade === undefined && typeof protocols !== 'function';
  }

  get clients(): number {
    return this.#shared.count;
  }

  onReactor(reactor: Reactor): void {
    this.#shared.reactor = reactor;
  }

  upgradeHook(): (req: HookRequest, conn: Connection, head: Buffer) => Handler | void {
    // The HTTP server calls handOver (UPGRADE_IN_PLACE) with the request it parsed, then
    // hands the bytes after the head to onData in place: nothing is serialised or parsed
    // again, nothing is copied, and a partial frame stays in the engine as on our own port.
    const handOver = (req: HookRequest, conn: Connection): Handler | undefined => {
      const tag = this.#decide(conn, headOf(req));
      // Refused: the answer is written; the HTTP server flushes it and closes.
      if (tag < 0) return undefined;
      this.#start(conn, tag, this.#answer);
      const onOpen = this.#opts.onOpen;
      if (onOpen !== undefined) onOpen.call(this.#opts, createSocket(conn, this.#shared));
      return this;
    };
    // Called directly (another HTTP server): `head` is read here, and a partial frame at its
    // end is kept until the next bytes.
    const hook = (req: HookRequest, conn: Connection, head: Buffer): Handler | undefined => {
      if (handOver(req, conn) === undefined) return undefined;
      if (head.length > 0) {
        const used = this.onData(conn, head);
        if (typeof used === 'number' && used < head.length && (conn.tag & NO_MORE_INPUT) === 0) {
          this.#shared.extra(conn).pending = Buffer.from(head.subarray(used));
          this.#shared.holding(conn, true);
        }
      }
      return this;
    };
    const quick: QuickUpgrade = { maxTarget: QUICK_MAX_TARGET, maxFields: QUICK_MAX_FIELDS, take: (conn, data, headEnd) => this.#take(conn, data, headEnd) };
    return Object.assign(hook, { [UPGRADE_IN_PLACE]: handOver, [UPGRADE_QUICK]: quick });
  }

  publish(topic: string, message: Uint8Array | string, options?: WsPublishOptions): number;
  publish(reactor: Reactor, ids: ArrayLike<number>, message: Uint8Array | string, isBinary?: boolean): number;
  publish(target: Reactor | string, second: ArrayLike<number> | Uint8Array | string, third?: Uint8Array | string | WsPublishOptions, fourth?: boolean): number {
    if (typeof target === 'string') return this.#shared.topics.publish(this.#shared, target, second as Uint8Array | string, third as WsPublishOptions | undefined);
    const message = third as Uint8Array | string;
    return this.#publishIds(target, second as ArrayLike<number>, message, fourth ?? typeof message !== 'string');
  }

  subscriberCount(topic: string): number {
    return this.#shared.topics.table.subscriberCount(topic);
  }

  get pubsubStats(): WsPubSubStats {
    return this.#shared.topics.stats;
  }

  #publishIds(reactor: Reactor, ids: ArrayLike<number>, message: Uint8Array | string, isBinary: boolean): number {
    const opcode = isBinary ? Opcode.Binary : Opcode.Text;
    const shared = this.#shared;
    const plain: number[] = [];
    // Our window bits -> a stateless codec with them, and its recipients: they all get the same
    // bytes. Stateful codecs would have to compress per connection: those recipients get the
    // uncompressed frame (RSV1 is per message).
    const packed = new Map<number, [PerMessageDeflate, number[]]>();
    const compress = shared.deflate !== null && atLeast(message, shared.deflate.threshold);
    for (let i = 0; i < ids.length; i++) {
      const conn = reactor.connection(ids[i]);
      const tag = conn.tag;
      if ((tag & (WS | NOT_OPEN)) !== WS) continue;
      const codec = compress ? shared.codec(conn, tag) : null;
      if (codec === null || codec.stateful) {
        plain.push(ids[i]);
        continue;
      }
      const group = packed.get(codec.params.serverMaxWindowBits);
      if (group === undefined) packed.set(codec.params.serverMaxWindowBits, [codec, [ids[i]]]);
      else group[1].push(ids[i]);
    }
    let sent = 0;
    if (packed.size !== 0) {
      const raw = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
      for (const [codec, list] of packed.values()) {
        const body = codec.compress(raw);
        if (body.length < raw.length) sent += reactor.broadcast(list, encodeFrame(opcode, body, { rsv1: true }));
        else for (const id of list) plain.push(id);
      }
    }
    if (plain.length !== 0) sent += reactor.broadcast(plain, encodeFrame(opcode, message));
    return sent;
  }

  onOpen(conn: Connection): void {
    if (this.#handshakeTimeout > 0) conn.setTimeout(this.#handshakeTimeout);
  }

  onData(conn: Connection, data: Buffer): number | Action {
    const tag = conn.tag;
    if ((tag & WS) === 0) return this.#handshake(conn, data);
    if ((tag & EXTRA) !== 0) {
      const s = this.#shared;
      const x = s.extras.get(conn.id)!;
      const pending = x.pending;
      if (pending !== null) {
        // Bytes kept from a `head` given to the hook directly (see upgradeHook): consume all
        // of `data` from the engine, keep whatever is still short of a frame.
        x.pending = null;
        const bytes = Buffer.concat([pending, data]);
        const used = s.receive(conn, bytes, 0, null);
        if (used < bytes.length && (conn.tag & NO_MORE_INPUT) === 0) {
          s.extra(conn).pending = Buffer.from(bytes.subarray(used));
          s.holding(conn, true);
        } else {
          if (s.extras.get(conn.id) === x) s.trim(conn, x);
          s.holding(conn, false);
        }
        return data.length;
      }
    }
    return this.#shared.receive(conn, data, 0, null);
  }

  onDrain(conn: Connection): void {
    if ((conn.tag & WS) !== 0) this.#opts.onDrain?.(createSocket(conn, this.#shared));
  }

  onTimeout(conn: Connection): void {
    if ((conn.tag & WS) !== 0) this.#shared.timedOut(conn);
    else conn.close();
  }

  onClose(conn: Connection): void {
    const tag = conn.tag;
    if ((tag & WS) === 0) return;
    const s = this.#shared;
    s.count--;
    const x = (tag & EXTRA) !== 0 ? s.extras.get(conn.id) : undefined;
    const handshake = (tag & (CLOSE_RECEIVED | FAILED)) !== 0 && x !== undefined;
    try {
      try {
        // Usually done when it stopped being open; not after a reset or a callback that threw.
        s.topics.table.removeAll(conn.id);
      } finally {
        s.opts.onClose?.(createSocket(conn, s), handshake ? x.code : CODE_ABNORMAL, handshake ? x.reason : '');
      }
    } finally {
      if (x !== undefined) s.extras.delete(conn.id);
    }
  }

  onShutdown(): Promise<void> {
    if (this.#shutdown !== null) return this.#shutdown;
    const s = this.#shared;
    s.shuttingDown = true;
    const reactor = s.reactor;
    const ids: number[] = [];
    if (reactor !== null) {
      for (const conn of reactor.connections()) if ((conn.tag & (WS | NOT_OPEN)) === WS) ids.push(conn.id);
    }
    const goAway = (i: number): void => {
      const conn = reactor!.connection(ids[i]!);
      // Closed meanwhile (by the peer, a slow-subscriber check, ...): nothing to do.
      if (conn.open && (conn.tag & (WS | NOT_OPEN)) === WS) createSocket(conn, s).close(CODE_GOING_AWAY);
    };
    // Done early once none is open (peers left, or the reactor's deadline reset them).
    const closing = spreadOver(ids.length, this.#shutdownSpread, goAway, () => s.count === 0);
    // A close that throws is a bug, but the others went on: say so rather than crash the process.
    return (this.#shutdown = closing.catch((err: Error) => process.emitWarning(`c1m: a WebSocket's shutdown close failed: ${err.message}`)));
  }

  #handshake(conn: Connection, data: Buffer): number | Action {
    const limit = this.#maxHeaderBytes;
    const headEnd = headEndWithin(data, limit);
    if (headEnd < 0) return data.length >= limit ? refuse(conn, 431) : 0;
    if (this.#quick && !this.#shared.shuttingDown) {
      // The common request, read in place: no parse into strings (see plainUpgrade).
      const key = plainUpgrade(data, headEnd, this.#shared.deflate === null);
      if (key >= 0) return this.#open(conn, data, headEnd, WS, acceptHeadFromBytes(data, key));
    }
    const heads = this.#heads;
    const parser = this.#parser;
    heads.head = null;
    parser.reset();
    let consumed: number;
    try {
      consumed = parser.execute(data.subarray(0, headEnd));
    } catch (err) {
      if (err instanceof HttpParseError) return refuse(conn, err.status);
      throw err;
    }
    const req = heads.head as RequestHead | null;
    heads.head = null;
    // Only empty lines before a request line: drop them and wait for the head.
    if (req === null) return consumed > 0 ? consumed : refuse(conn, 400);
    const tag = this.#decide(conn, req);
    if (tag < 0) return tag as Action;
    return this.#open(conn, data, headEnd, tag, this.#answer);
  }

  /**
   * The checks and choices of the handshake on a parsed request: refused, the answer is
   * written and Action.Close returned; accepted, the tag to set is returned and the 101 head
   * is in `#answer` (the extras are set already).
   */
  #decide(conn: Connection, req: RequestHead): number {
    if (this.#shared.shuttingDown) return refuse(conn, 503);
    if (req.method !== 'GET') return refuse(conn, 405, [['Allow', 'GET']]);
    if (!req.upgrade || req.versionMinor !== 1 || !headerHasToken(req.upgradeProtocol ?? undefined, 'websocket')) return refuse(conn, 400);
    if (req.chunked || (req.contentLength !== null && req.contentLength !== 0)) return refuse(conn, 400);
    // One pass over the fields, comparing names in place (no lowercased copies).
    const headers = req.headers;
    let key: string | undefined;
    let keys = 0;
    let version: string | undefined;
    let versions = 0;
    let protocolField: string | undefined;
    let extensionsField: string | undefined;
    for (let i = 0; i < headers.length; i++) {
      const f = headers[i];
      const name = f[0];
      if (name.length < 17 || (name.charCodeAt(0) | 0x20) !== 0x73) continue; // 's': every field read here
      if (sameName(name, 'sec-websocket-key')) {
        key = f[1];
        keys++;
      } else if (sameName(name, 'sec-websocket-version')) {
        version = versions === 0 ? f[1] : `${version}, ${f[1]}`;
        versions++;
      } else if (sameName(name, 'sec-websocket-protocol')) {
        protocolField = protocolField === undefined ? f[1] : `${protocolField}, ${f[1]}`;
      } else if (sameName(name, 'sec-websocket-extensions')) {
        extensionsField = extensionsField === undefined ? f[1] : `${extensionsField}, ${f[1]}`;
      }
    }
    if (keys !== 1 || !validateKey(key)) return refuse(conn, 400);
    if (version === undefined) return refuse(conn, 400);
    if (versions !== 1 || version !== WS_VERSION) return refuse(conn, 426, [['Sec-WebSocket-Version', WS_VERSION]]);
    const offered = protocolField === undefined ? NO_PROTOCOLS : parseProtocols(protocolField);
    if (offered === null) return refuse(conn, 400);
    // Extensions are read only when one is enabled: otherwise offers are ignored, as before.
    let agreement: ReturnType<typeof negotiateDeflate> = null;
    const deflate = this.#shared.deflate;
    if (deflate !== null) {
      const extensions = parseExtensions(extensionsField);
      if (extensions === null) return refuse(conn, 400);
      agreement = negotiateDeflate(extensions, deflate);
    }
    let protocol: string | undefined;
    const select = this.#protocols;
    if (offered.length !== 0 && select !== undefined) {
      if (typeof select === 'function') {
        protocol = select(offered, req);
        checkArgument(protocol === undefined || offered.includes(protocol), `protocols() returned ${JSON.stringify(protocol)}, which the client did not offer`);
      } else {
        protocol = offered.find((p) => select.includes(p));
      }
    }
    const tag = this.#admit(conn, req, agreement, protocol);
    if (tag >= 0) {
      this.#answer = protocol === undefined && agreement === null ? acceptHead(key!) : acceptResponse(key!, { protocol, extensions: agreement?.response });
    }
    return tag;
  }

  /**
   * `onUpgrade`'s verdict on a request that passed the checks, and the tag of the WebSocket
   * it opens (the extras are set); refused, the answer is written and an Action returned.
   */
  #admit(conn: Connection, req: RequestHead, agreement: ReturnType<typeof negotiateDeflate>, protocol: string | undefined): number {
    let context: unknown;
    const onUpgrade = this.#opts.onUpgrade;
    if (onUpgrade !== undefined) {
      const verdict = onUpgrade.call(this.#opts, req, conn);
      if (verdict === false) return refuse(conn, 403);
      if (typeof verdict === 'object' && verdict !== null && typeof (verdict as UpgradeRejection).status === 'number') {
        const { status, headers: extra } = verdict as UpgradeRejection;
        checkArgument(Number.isInteger(status) && status >= 300 && status <= 599, `onUpgrade rejected with status ${status}; expected 300-599`);
        return refuse(conn, status, fieldList(extra));
      }
      if (verdict !== true) context = verdict;
    }
    const s = this.#shared;
    let tag = WS;
    if (agreement !== null || protocol !== undefined || context !== undefined) {
      let x: Extra | undefined;
      const extra = (): Extra => (x ??= new Extra());
      if (agreement !== null) tag |= s.codecBits(agreement.params, extra);
      if (protocol !== undefined) tag |= s.protocolBits(protocol, extra);
      if (context !== undefined) extra().data = context;
      if (x !== undefined) {
        s.extras.set(conn.id, x);
        tag |= EXTRA;
      }
    }
    return tag;
  }

  /**
   * `UPGRADE_QUICK` for `upgradeHook()`: a plain upgrade (see `plainUpgrade`) that is a
   * connection's first bytes behind the HTTP server, read in place: no HTTP parse, no
   * `HttpRequest`, the key hashed from the bytes. What `handOver` does with a parsed request,
   * with the same checks and answers; anything else is left to that path (returns undefined,
   * having done nothing). Returns this handler (opened) or null (refused, the answer written).
   */
  #take(conn: Connection, data: Buffer, headEnd: number): Handler | null | undefined {
    const s = this.#shared;
    if (s.shuttingDown) return undefined;
    const key = plainUpgrade(data, headEnd, s.deflate === null);
    if (key < 0) return undefined;
    conn.setTimeout(0); // as the HTTP server does before its hook
    let tag = WS;
    if (this.#opts.onUpgrade !== undefined) {
      // The request the parsed path gives onUpgrade, field for field (headOf), sliced from one
      // string of the head (without its last CRLF: each field line keeps its own).
      const text = (data as Buffer & { latin1Slice(start: number, end: number): string }).latin1Slice(0, headEnd - 2);
      const targetEnd = text.indexOf(' ', 4);
      const req = headOf({ method: 'GET', target: text.slice(4, targetEnd), headers: parseFieldText(text, targetEnd + 11), upgrade: true });
      tag = this.#admit(conn, req, null, undefined);
      if (tag < 0) return null;
    }
    this.#start(conn, tag, acceptHeadFromBytes(data, key));
    this.#opts.onOpen?.call(this.#opts, createSocket(conn, s));
    return this;
  }

  /** The upgrade is accepted: set the tag, write the 101 `head`, open, read what follows the head. */
  #open(conn: Connection, data: Buffer, headEnd: number, tag: number, head: Buffer): number {
    this.#start(conn, tag, head);
    const s = this.#shared;
    const onOpen = this.#opts.onOpen;
    const ws = onOpen === undefined ? null : createSocket(conn, s);
    if (ws !== null) onOpen!.call(this.#opts, ws);
    return headEnd < data.length ? s.receive(conn, data, headEnd, ws) : headEnd;
  }

  /** Set the tag and write the 101 `head`; the WebSocket is open once `onOpen` has run. */
  #start(conn: Connection, tag: number, head: Buffer): void {
    const s = this.#shared;
    conn.tag = tag;
    s.count++;
    // Replaces the handshake timeout with the heartbeat (or none). With neither configured,
    // the engine's idleTimeout stays in charge. Armed BEFORE the head is written: the engine
    // gathers consecutive writes to one connection into one sendmsg, and a timer command
    // between the 101 and what `onOpen` sends would split them into two.
    if (s.pingInterval > 0 || this.#handshakeTimeout > 0) s.armHeartbeat(conn);
    conn.write(head);
  }
}

/**
 * A c1m Handler serving WebSockets: pass it to `listen`, `createReactor`, or export it from a
 * handler module for `serve`. Use one handler per reactor.
 *
 * Errors: throws `ERR_C1M_INVALID_OPTION` for a bad option. An exception thrown by a callback
 * closes that connection (`'handler-error'`, reported to the engine's `onError`; `onClose`
 * reports 1006); a protocol error closes it with the error's close code (see `onError`).
 */
export function createWebSocketHandler<T = unknown>(options: WebSocketServerOptions<T>): WebSocketHandler {
  return new WsServer(options as WebSocketServerOptions<unknown>);
}

/**
 * Send one message to many connections: the frame is encoded once and written by
 * `reactor.broadcast` in one crossing. Returns the number of connections it was queued for.
 * The frame is never compressed (valid with or without permessage-deflate: RSV1 is per
 * message); `handler.publish` compresses for the WebSockets that negotiated it.
 *
 * `ids` should be of open WebSockets (`ws.id`) of this reactor: the engine skips closed ids,
 * but cannot know that a WebSocket is closing, so drop a WebSocket from your lists when you
 * call `close` on it (or in `onClose`).
 * Backpressure: none is reported; check `ws.bufferedAmount` for slow clients.
 */
export function publish(reactor: Reactor, ids: ArrayLike<number>, message: Uint8Array | string, isBinary: boolean = typeof message !== 'string'): number {
  if (ids.length === 0) return 0;
  const frame = encodeFrame(isBinary ? Opcode.Binary : Opcode.Text, message);
  return reactor.broadcast(ids, frame);
}
