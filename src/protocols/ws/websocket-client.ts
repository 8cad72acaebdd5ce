/**
 * `WebSocketClient`: an API familiar to users of the `ws` package, on the lean client
 * (client.ts). Each instance is one client WebSocket on a reactor the module shares.
 *
 * Model: one reactor per backend and set of limits, created on first use with a
 * `createWebSocketClientHandler` whose callbacks forward to the instance kept in `ws.data`.
 * A reactor with no connection does not keep the process alive (the native backend unrefs
 * its loop handle, the portable one holds no socket), so nothing needs closing; an open
 * WebSocket keeps the process alive, as a socket does.
 *
 * Differences from `ws`: `send` returns whether the message stayed under the high-water mark
 * (and emits 'drain' later when it did not), its callback runs once the message is queued in
 * the engine (not once the kernel took it); the 'close' reason is a string; permessage-deflate
 * is off unless `perMessageDeflate` is given (`ws` offers it by default); `wss:` takes its TLS
 * options in one `tls` object (`ws` takes `ca`, `rejectUnauthorized`, ... at the top level); no
 * redirects, no `binaryType` (messages are Buffers).
 */
import { lookup } from 'node:dns';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { C1mError, checkOption, type EngineOptions, type Reactor, type TlsConnectOptions } from '../../core/index.js';
import { createReactor } from '../../engine/index.js';
import { WsHandshakeError, checkConnectOptions, parseWsUrl, type WsTarget } from './client-handshake.js';
import { resolveDeflateOptions, type PerMessageDeflateOptions } from './deflate.js';
import { checkArgument } from './errors.js';
import {
  WS_CLIENT_DEFAULTS,
  createWebSocketClientHandler,
  type ClientWebSocket,
  type WebSocketClientHandler,
  type WebSocketConnectOptions,
  type WsClientError,
} from './client.js';

/** Options of `new WebSocketClient(url, protocols, options)`. */
export interface WebSocketClientOptions {
  /** Extra request fields (not the handshake's own: Host, Upgrade, Connection, Sec-WebSocket-*). */
  headers?: Readonly<Record<string, string>>;
  /** An `Origin` field. Default none. */
  origin?: string;
  /** Source address to bind before connecting. */
  localAddress?: string;
  /** ms for TCP connect plus handshake; past it: 'error' (`ERR_C1M_WS_HANDSHAKE_TIMEOUT`). Default 10000. */
  handshakeTimeout?: number;
  /** Largest message in bytes; past it the connection closes with 1009. Default 1 MiB. */
  maxPayload?: number;
  /** Most frames in one message; past it: 1009. Default 65536. */
  maxFragments?: number;
  /** ms to wait for the server's close frame (and then its TCP close). Default 5000. */
  closeTimeout?: number;
  /** Heartbeat: ping after this many ms of silence, close (1006) after as long again. Default 0 (off). */
  pingInterval?: number;
  /** Which engine backend the shared reactor runs on. Default `'auto'`. */
  backend?: EngineOptions['backend'];
  /**
   * permessage-deflate: `true` offers it with the defaults, an object tunes the offer, `false`
   * (default, unlike `ws`) offers nothing. As `WebSocketClientHandlerOptions.perMessageDeflate`:
   * no compression state per idle connection by default, inflated messages bounded by
   * `maxPayload` (1009), an invalid answer fails the handshake ('error'
   * `ERR_C1M_WS_HANDSHAKE_EXTENSION`). `extensions` shows what was agreed.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /**
   * TLS for a `wss:` URL, as `WebSocketConnectOptions.tls` (`ca`, `rejectUnauthorized`,
   * `servername`, `cert`/`key`, `resume`). Default: the system's trust store, the URL's host
   * as the server name. Reuse one object so that connections resume TLS sessions.
   */
  tls?: TlsConnectOptions;
}

/** Data `send` accepts. */
export type WebSocketClientData = string | ArrayBuffer | ArrayBufferView;

type Callback = (err?: Error) => void;

// Bridges from the shared handlers into an instance's private state, bound in its static block.
let opened: (client: WebSocketClient) => void;
let finished: (client: WebSocketClient, code: number, reason: string) => void;
let failed: (client: WebSocketClient, err: Error) => void;

interface Runtime {
  reactor: Reactor;
  handler: WebSocketClientHandler<WebSocketClient>;
}

const runtimes = new Map<string, Runtime>();

/**
 * The shared reactor and handler for `backend`, these limits and this permessage-deflate
 * configuration. Errors: throws `ERR_C1M_INVALID_OPTION` for a bad `perMessageDeflate`.
 */
function runtimeFor(o: WebSocketClientOptions): Runtime {
  const backend = o.backend ?? 'auto';
  const pmd = o.perMessageDeflate ?? WS_CLIENT_DEFAULTS.perMessageDeflate;
  checkOption(typeof pmd === 'boolean' || (typeof pmd === 'object' && pmd !== null), 'perMessageDeflate', 'a boolean or an object', pmd);
  const perMessageDeflate = pmd === false ? false : resolveDeflateOptions(pmd);
  const limits = {
    maxPayload: o.maxPayload ?? WS_CLIENT_DEFAULTS.maxPayload,
    maxFragments: o.maxFragments ?? WS_CLIENT_DEFAULTS.maxFragments,
    closeTimeout: o.closeTimeout ?? WS_CLIENT_DEFAULTS.closeTimeout,
    pingInterval: o.pingInterval ?? WS_CLIENT_DEFAULTS.pingInterval,
    perMessageDeflate,
  };
  // Resolved options list every field in one order: equal configurations give equal keys.
  const key = `${backend}/${limits.maxPayload}/${limits.maxFragments}/${limits.closeTimeout}/${limits.pingInterval}/${JSON.stringify(perMessageDeflate)}`;
  let rt = runtimes.get(key);
  if (rt !== undefined) return rt;
  const handler = createWebSocketClientHandler<WebSocketClient>({
    ...limits,
    onOpen: (ws) => opened(ws.data),
    onMessage: (ws, data, isBinary) => ws.data.emit('message', Buffer.from(data), isBinary),
    onPing: (ws, data) => ws.data.emit('ping', Buffer.from(data)),
    onPong: (ws, data) => ws.data.emit('pong', Buffer.from(data)),
    onDrain: (ws) => ws.data.emit('drain'),
    onError: (ws, err) => failed(ws.data, err),
    onClose: (ws, code, reason) => finished(ws.data, code, reason),
  });
  rt = { reactor: createReactor(handler, { backend }), handler };
  runtimes.set(key, rt);
  return rt;
}

function toPayload(data: WebSocketClientData): string | Uint8Array {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  checkArgument(false, `data must be a string, an ArrayBuffer or an ArrayBufferView, got ${typeof data}`);
  return '';
}

const STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'] as const;

/**
 * A client WebSocket with the `ws` package's shape: events 'open', 'message' (data: Buffer,
 * isBinary), 'ping' and 'pong' (data: Buffer), 'drain', 'error' (err), 'close' (code, reason).
 *
 * Lifetime: 'close' is emitted exactly once, after 'error' when the connection failed
 * (connect refused, handshake refused or timed out, protocol error). An 'error' with no
 * listener is thrown on a later tick (an uncaught exception), as Node does for sockets.
 * Threading: use it on the thread that created it.
 * Errors: the constructor throws `ERR_C1M_WS_INVALID_URL` or `ERR_C1M_INVALID_OPTION`
 * synchronously; an exception thrown by a listener closes that WebSocket (1006) and is
 * printed to stderr, never thrown into the engine's other connections.
 */
export class WebSocketClient extends EventEmitter {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;

  /** The URL given to the constructor. */
  readonly url: string;
  #ws: ClientWebSocket<WebSocketClient> | null = null;
  /** The selected subprotocol, kept from the open (the handle forgets it at the close). */
  #protocol = '';
  /** The agreed extensions, kept from the open. */
  #extensions = '';
  /** Set once 'close' was emitted (or scheduled before any connection existed). */
  #closed = false;
  /** `close()`/`terminate()` while connecting: 'error' (aborted) then 'close'. */
  #aborted = false;

  /**
   * Connect to `url` (`ws://host[:port]/path`, or `wss://` with `options.tls`), offering `protocols` (a name or a list). Host
   * names are resolved with `dns.lookup` first.
   */
  constructor(url: string | URL, protocols?: string | readonly string[], options: WebSocketClientOptions = {}) {
    super();
    this.url = String(url);
    const target = parseWsUrl(url);
    checkOption(typeof options === 'object' && options !== null, 'options', 'an object', options);
    const offered = protocols === undefined ? [] : typeof protocols === 'string' ? [protocols] : protocols;
    const rt = runtimeFor(options);
    const connectOptions: WebSocketConnectOptions<WebSocketClient> = {
      protocols: offered,
      headers: options.headers,
      origin: options.origin,
      localAddress: options.localAddress,
      handshakeTimeout: options.handshakeTimeout,
      tls: options.tls,
      data: this,
    };
    if (isIP(target.hostname) !== 0) {
      this.#ws = rt.handler.connect(rt.reactor, url, connectOptions);
      return;
    }
    // The connect happens after the lookup: check its options now, so that misuse throws here.
    checkConnectOptions(connectOptions);
    this.#resolve(rt, url, target, connectOptions);
  }

  #resolve(rt: Runtime, url: string | URL, target: WsTarget, connectOptions: WebSocketConnectOptions<WebSocketClient>): void {
    lookup(target.hostname, (err, address) => {
      if (this.#closed) return;
      if (this.#aborted) {
        this.#abortNow();
        return;
      }
      if (err) {
        this.#closed = true;
        failed(this, err);
        this.emit('close', 1006, '');
        return;
      }
      try {
        this.#ws = rt.handler.connect(rt.reactor, url, { ...connectOptions, address });
      } catch (e) {
        this.#closed = true;
        failed(this, e as Error);
        this.emit('close', 1006, '');
      }
    });
  }

  /** 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED (the static constants). */
  get readyState(): number {
    if (this.#closed) return WebSocketClient.CLOSED;
    if (this.#aborted) return WebSocketClient.CLOSING;
    switch (this.#ws?.readyState ?? 'connecting') {
      case 'connecting':
        return WebSocketClient.CONNECTING;
      case 'open':
        return WebSocketClient.OPEN;
      default:
        // CLOSED only once 'close' was emitted.
        return WebSocketClient.CLOSING;
    }
  }

  /** The subprotocol the server selected, or ''. */
  get protocol(): string {
    return this.#protocol;
  }

  /**
   * The agreed permessage-deflate parameters as a `Sec-WebSocket-Extensions` value, or ''
   * (not offered, declined, or not yet open). `ws` gives only the names; this starts with the
   * name (`permessage-deflate`) and carries the parameters too.
   */
  get extensions(): string {
    return this.#extensions;
  }

  /** Bytes queued and not yet taken by the kernel. */
  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /**
   * Send a message: a string as text, anything else as binary (unless `options.binary`
   * says otherwise). The bytes are copied. `cb` runs on a later tick: without an argument
   * once the message is queued, with an error when the WebSocket is closing or closed.
   *
   * Backpressure: returns false past the engine's high-water mark (the message is queued;
   * wait for 'drain') or when it was not sent.
   * Errors: throws `ERR_C1M_WS_NOT_OPEN` while connecting (as `ws` does).
   */
  send(data: WebSocketClientData, options?: { binary?: boolean } | Callback, cb?: Callback): boolean {
    if (typeof options === 'function') {
      cb = options;
      options = undefined;
    }
    const payload = toPayload(data);
    const ws = this.#openOrThrow();
    if (ws === null) {
      this.#notOpen(cb);
      return false;
    }
    const ok = ws.send(payload, options?.binary ?? typeof payload !== 'string');
    if (cb !== undefined) process.nextTick(cb);
    return ok;
  }

  /** Send a ping (at most 125 bytes). Same callback, return value and errors as `send`. */
  ping(data?: WebSocketClientData, cb?: Callback): boolean {
    const payload = data === undefined ? undefined : toPayload(data);
    const ws = this.#openOrThrow();
    if (ws === null) {
      this.#notOpen(cb);
      return false;
    }
    const ok = ws.ping(payload);
    if (cb !== undefined) process.nextTick(cb);
    return ok;
  }

  /** Send a pong (at most 125 bytes); pings are answered automatically. As `ping`. */
  pong(data?: WebSocketClientData, cb?: Callback): boolean {
    const payload = data === undefined ? undefined : toPayload(data);
    const ws = this.#openOrThrow();
    if (ws === null) {
      this.#notOpen(cb);
      return false;
    }
    const ok = ws.pong(payload);
    if (cb !== undefined) process.nextTick(cb);
    return ok;
  }

  /**
   * Start the close handshake (`code` and `reason` as in RFC 6455; none: an empty close frame).
   * While connecting: abort, emitting 'error' (`ERR_C1M_WS_HANDSHAKE_ABORTED`) then 'close'.
   * Errors: throws `ERR_C1M_WS_INVALID_ARGUMENT` for a code that may not be sent or a reason
   * over 123 UTF-8 bytes.
   */
  close(code?: number, reason?: string): void {
    if (this.readyState === WebSocketClient.CONNECTING) {
      this.#abort();
      return;
    }
    this.#ws?.close(code, reason);
  }

  /** Close the connection at once, without a close handshake ('close' reports 1006). */
  terminate(): void {
    if (this.readyState === WebSocketClient.CONNECTING) {
      this.#abort();
      return;
    }
    this.#ws?.terminate();
  }

  #openOrThrow(): ClientWebSocket<WebSocketClient> | null {
    const state = this.readyState;
    if (state === WebSocketClient.CONNECTING) {
      throw new C1mError('ERR_C1M_WS_NOT_OPEN', 'WebSocket is not open: readyState 0 (CONNECTING)');
    }
    return state === WebSocketClient.OPEN ? this.#ws : null;
  }

  #notOpen(cb: Callback | undefined): void {
    if (cb === undefined) return;
    const state = this.readyState;
    const err = new C1mError('ERR_C1M_WS_NOT_OPEN', `WebSocket is not open: readyState ${state} (${STATES[state]})`);
    process.nextTick(cb, err);
  }

  #abort(): void {
    this.#aborted = true;
    // With a connection, its onClose emits the error and 'close'; during the lookup, the
    // lookup's callback does.
    this.#ws?.terminate();
  }

  #abortNow(): void {
    this.#closed = true;
    failed(this, new WsHandshakeError('ERR_C1M_WS_HANDSHAKE_ABORTED', 'the WebSocket was closed before the connection was established'));
    this.emit('close', 1006, '');
  }

  static {
    opened = (client) => {
      client.#protocol = client.#ws?.protocol ?? '';
      client.#extensions = client.#ws?.extensions ?? '';
      client.emit('open');
    };
    failed = (client, err) => {
      if (client.listenerCount('error') > 0) client.emit('error', err);
      // Like an unhandled socket error: thrown outside the engine's callbacks.
      else process.nextTick(() => client.emit('error', err));
    };
    finished = (client, code, reason) => {
      if (client.#aborted && code === 1006 && !client.#closed) {
        client.#abortNow();
        return;
      }
      client.#closed = true;
      client.emit('close', code, reason);
    };
  }
}

// Typed events, for editors: the same names and arguments as `ws`.
export interface WebSocketClient {
  on(event: 'open' | 'drain', listener: () => void): this;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
  on(event: 'error', listener: (err: WsClientError | Error) => void): this;
  on(event: 'close', listener: (code: number, reason: string) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'open' | 'drain', listener: () => void): this;
  once(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  once(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
  once(event: 'error', listener: (err: WsClientError | Error) => void): this;
  once(event: 'close', listener: (code: number, reason: string) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}
