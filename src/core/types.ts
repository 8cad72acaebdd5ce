/**
 * The Handler contract shared by every backend (native epoll, portable node:net).
 *
 * Threading: a handler object runs on exactly one reactor thread. Every callback of one
 * connection runs on that connection's reactor, never concurrently.
 */

import type { UdpHandler, UdpOptions, UdpSocket } from './udp-types.js';

/** What a handler may return from `onData` instead of a byte count. */
export const Action = {
  /** Consume every byte, flush what was written, then close the connection. */
  Close: -1,
  /** Consume every byte, flush what was written, then half-close (FIN) our side. */
  Shutdown: -2,
} as const;
export type Action = (typeof Action)[keyof typeof Action];

/** Why a connection closed: `onClose(conn, reason)`. */
export interface CloseReason {
  /**
   * `'end'` peer closed cleanly; `'local'` closed by the application (`close()`/`destroy()`);
   * `'error'` socket error (see `errno`/`syscall`); `'timeout'` idle timeout;
   * `'inbound-limit'` unconsumed inbound bytes exceeded `maxInboundBytes`;
   * `'slow-consumer'` unsent outbound bytes exceeded `maxOutboundBytes`;
   * `'handler-error'` a handler callback threw; `'shutdown'` closed by server shutdown;
   * `'connect-failed'` an outbound connect did not complete (see `code`);
   * `'tls-error'` TLS failed (a bad record, an alert, a certificate that does not verify, a
   * handshake timeout): `code` is an `ERR_C1M_TLS_*` code and `error.message` OpenSSL's reason.
   */
  kind:
    | 'end'
    | 'local'
    | 'error'
    | 'timeout'
    | 'inbound-limit'
    | 'slow-consumer'
    | 'handler-error'
    | 'shutdown'
    | 'connect-failed'
    | 'tls-error';
  /** Node-style error code: `ECONNRESET`, `ECONNREFUSED`, or an `ERR_C1M_*` code. */
  code?: string;
  /** Negative errno for socket errors. */
  errno?: number;
  /** The error, for `'error'`, `'connect-failed'`, `'handler-error'` and `'tls-error'`. */
  error?: Error;
}

/**
 * A handle to one connection. Handles are cheap values: the engine may hand a different
 * object for the same connection to each callback, so compare `id`, not the object.
 *
 * Lifetime: a handle stays safe forever. Once the connection closed, its id is stale:
 * `write` and `close` on it are harmless no-ops that return false, even when the kernel
 * has reused the file descriptor for a new connection (ids carry a generation).
 *
 * Threading: use a handle only on the reactor that created it.
 */
export interface Connection {
  /** Stable id, unique within its reactor: never equal for two connections' lifetimes. */
  readonly id: number;
  /** True while the connection is open (false after close, or for a stale handle). */
  readonly open: boolean;
  /**
   * Queue bytes for sending. Bytes are copied before this returns: the caller may reuse them.
   * Writes made during one batch of events leave in one crossing when the batch ends.
   *
   * Backpressure: returns false when the connection's buffered bytes exceed `highWaterMark`
   * (the bytes are still queued; wait for `onDrain`), or when the handle is stale (dropped).
   * Past `maxOutboundBytes` the connection closes with reason `'slow-consumer'`.
   */
  write(data: Uint8Array | string): boolean;
  /**
   * `write` of a small header followed by `data`, without building the frame first: the
   * header is the low `headerBytes` (1 to 4) bytes of `header`, most significant first (a
   * length prefix, a WebSocket frame header). The cheap way for a framing codec to send one
   * frame; the bytes leave exactly as `write(header bytes)` then `write(data)` would.
   *
   * Backpressure: as `write`. Errors: throws `ERR_C1M_INVALID_ARGUMENT` when `headerBytes`
   * is not 1 to 4.
   */
  writeWithHeader(header: number, headerBytes: number, data: Uint8Array): boolean;
  /** Queue several chunks, sent with one `writev`. Same return value as `write`. */
  writev(chunks: readonly (Uint8Array | string)[]): boolean;
  /** Run `fn`; every write it makes leaves together (one `writev`) when it returns. */
  cork(fn: () => void): void;
  /** Flush queued bytes, then close. Returns false for a stale handle. */
  close(): boolean;
  /** Close at once, dropping unsent bytes (the peer sees a reset). */
  destroy(): boolean;
  /** Half-close: flush queued bytes, then send FIN. Reading continues. */
  shutdown(): boolean;
  /** Stop reading from the socket (inbound backpressure); `resume()` restarts it. */
  pause(): void;
  resume(): void;
  /**
   * Idle timeout in milliseconds for this connection (0 disables): when no bytes arrive for
   * that long, `onTimeout` runs (default: close with reason `'timeout'`). Resolution is the
   * engine's timer tick; a coarse sweep, never a timer per connection.
   */
  setTimeout(ms: number): void;
  /**
   * A WebSocket server's heartbeat kept by the engine, without JS (native backend only: the
   * portable backend has no such method, so check for it). Like `setTimeout(ms)`, except that
   * the first time no byte arrived for `ms`, the engine writes an empty ping frame itself
   * (`0x89 0x00`) and waits `ms` more; only if no byte came by then does `onTimeout` run. With
   * `absorbPongs`, a read that is exactly one empty masked pong (6 bytes) with no bytes kept
   * before it is consumed by the engine and never reaches `onData`: pass false while the
   * protocol holds part of a frame of its own, or when pongs must be seen. `setTimeout` (or
   * `ms` 0) ends heartbeat mode; a close ends it too.
   *
   * For a WebSocket server speaking RFC 6455 on this connection only: the ping is a frame.
   * Errors: throws `ERR_C1M_INVALID_OPTION` for `ms` out of range (as `setTimeout`).
   */
  setHeartbeat?(ms: number, absorbPongs: boolean): void;
  /**
   * A WebSocket client's answer to its server's heartbeat, kept by the engine (native backend
   * only: check for it). While on, a read that is exactly one empty unmasked ping (`0x89 0x00`)
   * with no bytes kept before it is answered by the engine with an empty pong masked by a fresh
   * random key, and never reaches `onData` (it still counts as a byte for the idle timeout).
   * Plain TCP only: over TLS the ping reaches `onData` as before. Turn it off while the
   * protocol holds part of a frame of its own, or when pings must be seen. Off by default.
   *
   * For a WebSocket client speaking RFC 6455 on this connection only: the pong is a frame.
   */
  setAutoPong?(on: boolean): void;
  /** Bytes accepted by `write` (or a `broadcast` naming this connection) and not yet taken by the kernel. */
  readonly bufferedAmount: number;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  /**
   * One user value per connection (undefined by default). Costs memory only once set;
   * readable in `onClose`, cleared right after it.
   */
  context: unknown;
  /**
   * A 32-bit unsigned integer per connection for protocol state bits, 0 when the connection
   * opens. Unlike `context` it costs no JS heap: the native backend keeps it in a per-reactor
   * typed array indexed by fd. Values are stored as uint32 (`>>> 0`). Readable in `onClose`;
   * a stale handle reads 0 and ignores writes.
   */
  tag: number;
  /**
   * TLS facts of a connection that speaks TLS (undefined on plain TCP, and before the
   * handshake completes). Read-only; each read asks the engine (not for per-message use).
   */
  readonly tls?: TlsInfo | undefined;
}

/** What a completed TLS handshake agreed on: `conn.tls`. */
export interface TlsInfo {
  /** `'TLSv1.2'` or `'TLSv1.3'`. */
  protocol: string;
  /** The cipher suite, OpenSSL's name (`'TLS_AES_256_GCM_SHA384'`). */
  cipher: string;
  /** The ALPN protocol both sides chose, undefined when none. */
  alpnProtocol: string | undefined;
  /** The SNI server name (the client's request on a server; the one sent on a client). */
  servername: string | undefined;
  /** Whether the session was resumed (a session ticket; see `TlsConnectOptions.resume`). */
  resumed: boolean;
  /** Whether the peer's certificate verified (false when it sent none or it did not verify); on a
   *  resumed session, whether it verified when the session was made. */
  authorized: boolean;
  /** Why it did not verify (OpenSSL's text), undefined when it did. */
  authorizationError: string | undefined;
  /** The peer's certificate, when it sent one (a server sees one only with `requestCert`). On a
   *  resumed session: kept by the native backend, undefined on the portable one (node:tls). */
  peerCertificate: import('node:crypto').X509Certificate | undefined;
}

/** PEM text or bytes. */
export type Pem = string | Uint8Array;

/** TLS for `listen({ tls })`. Certificates are PEM; `cert` may hold the chain after the leaf. */
export interface TlsServerOptions {
  cert: Pem;
  key: Pem;
  /** Certificates trusted to sign client certificates (with `requestCert`). */
  ca?: Pem;
  /** Ask clients for a certificate (mTLS). Default false. */
  requestCert?: boolean;
  /** With `requestCert`: refuse a client without a certificate that verifies. Default true. */
  rejectUnauthorized?: boolean;
  /** ALPN protocols this server speaks, in preference order (e.g. `['http/1.1']`). */
  alpn?: readonly string[];
  /** Other certificates by SNI name (exact, or `'*.example.com'`); unknown names get `cert`. */
  sni?: Readonly<Record<string, { cert: Pem; key: Pem }>>;
  /** `'TLSv1.2'` (default) or `'TLSv1.3'`. TLS 1.0 and 1.1 are always refused. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** A handshake not complete after this many ms is dropped. Default 10000; 0 disables. */
  handshakeTimeout?: number;
  /**
   * Cipher suites in preference order, as an OpenSSL cipher string in node:tls's form: `TLS_*`
   * names are TLS 1.3 suites, the rest a TLS 1.2 cipher list; a part left out keeps the
   * default. Default: TLS 1.3 `TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256`
   * (AES-128 first, as Chrome and Go order them), TLS 1.2 forward-secret AEAD suites first.
   * A server applies its own order, except that a client listing ChaCha20 first gets it. An unknown or empty selection throws `ERR_C1M_TLS_CONFIG` (native) when the context is made.
   */
  ciphers?: string;
  /**
   * Session ticket keys: exactly 80 random bytes (OpenSSL's layout: 16 bytes of key name, 32
   * of HMAC secret, 32 of AES secret), kept secret. Servers with the same keys accept each
   * other's tickets, so a client resumes on any reactor, thread or process. Default: random
   * keys per context, except that `serve` draws one set for the whole server (every worker,
   * and kept across `setTls`) when none is given. The portable backend gives `node:tls` 48
   * bytes of them (name, the first 16 of each secret).
   */
  ticketKeys?: Uint8Array;
}

/** TLS for `connect({ tls })`. The peer's chain and host name are verified by default. */
export interface TlsConnectOptions {
  /** The name sent as SNI and checked against the certificate (a DNS name or an IP address).
   *  Default: the `host` connected to. */
  servername?: string;
  /** Trusted certificates. Default: the system's store. */
  ca?: Pem;
  /** Refuse a server whose certificate or name does not verify. Default true. */
  rejectUnauthorized?: boolean;
  /** A client certificate and its key (mTLS). */
  cert?: Pem;
  key?: Pem;
  /** ALPN protocols to offer, in preference order. */
  alpn?: readonly string[];
  /** `'TLSv1.2'` (default) or `'TLSv1.3'`. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** A handshake not complete after this many ms fails with `'tls-error'`. Default 10000; 0 disables. */
  handshakeTimeout?: number;
  /**
   * Cipher suites in preference order, as an OpenSSL cipher string in node:tls's form: `TLS_*`
   * names are TLS 1.3 suites, the rest a TLS 1.2 cipher list; a part left out keeps the
   * default. Default: TLS 1.3 `TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256`
   * (AES-128 first, as Chrome and Go order them), TLS 1.2 forward-secret AEAD suites first.
   * An unknown or empty selection throws `ERR_C1M_TLS_CONFIG` (native) when the context is made.
   */
  ciphers?: string;
  /**
   * Session resumption. Default true: the newest session a server sent is kept per (server
   * name, port), at most 64 of them (the oldest evicted), and offered by the next connect made
   * on the same reactor with this same options object (the cache belongs to the reactor's TLS
   * context for the object: reuse one object per server to resume). `conn.tls.resumed` tells whether it was accepted. A resumed session skips the
   * certificate check (it was checked when the session was made, with these options). false:
   * every connect is a full handshake.
   *
   * A TLS 1.3 server sends its sessions after the handshake, so a graceful `close()` of a
   * TLS 1.3 connection that has received none yet reads on (discarding data) until the server's
   * close_notify or FIN answers its own, at most 30 s, before `onClose` runs: a connection closed
   * right at `onOpen` still leaves a session for the next connect. Other closes are unchanged.
   */
  resume?: boolean;
}

/**
 * Application callbacks. Every callback is optional.
 *
 * Errors: an exception thrown by a callback closes that one connection with reason
 * `'handler-error'` (code `ERR_C1M_HANDLER`) and is reported to `EngineOptions.onError`; so is
 * an invalid `onData` result (`ERR_C1M_HANDLER_RESULT`). A thrown value that is not an Error
 * reaches `onError` wrapped in one (`cause` is the value). `onClose`, `onShutdown` and
 * `onReactor` have no connection to close: their failures are only reported. Nothing a
 * handler throws or returns stops the reactor. See docs/errors.md.
 */
export interface Handler {
  /**
   * A connection is established (accepted, or an outbound connect completed).
   *
   * Read once, when the reactor is created. Without it the native backend does not report
   * accepts to JS one by one: a poll that only accepted connections costs no JS call (they
   * still count in `stats.connections` and appear in `connections()`).
   */
  onOpen?(conn: Connection): void;
  /**
   * Bytes arrived. Return how many bytes were consumed (undefined = all of them), or an
   * `Action`; anything else (a count out of range, NaN, a string, ...) resets the connection
   * (`'handler-error'`, reported as `ERR_C1M_HANDLER_RESULT`). Unconsumed bytes are kept
   * (outside the JS heap) and presented again, followed by the next bytes, on the next call;
   * past `maxInboundBytes` the connection closes with reason `'inbound-limit'`.
   *
   * Lifetime: `data` is a view of engine memory, valid only until this callback returns.
   * Copy what you keep (`Buffer.from(data)`).
   */
  onData?(conn: Connection, data: Buffer): number | Action | void;
  /** Buffered outbound bytes were all written after `write` had returned false. */
  onDrain?(conn: Connection): void;
  /**
   * The peer half-closed (sent FIN). Default when absent: close our side too, after
   * flushing queued bytes. Define it to keep writing on a half-open connection.
   */
  onEnd?(conn: Connection): void;
  /** The idle timeout expired. Default when absent: close with reason `'timeout'`. */
  onTimeout?(conn: Connection): void;
  /** The connection is gone; the handle is stale from now on. Called once per connection. */
  onClose?(conn: Connection, reason: CloseReason): void;
  /** The server is shutting down gracefully (listeners already closed). */
  onShutdown?(): void;
  /**
   * The reactor this handler runs on, given once by `createReactor` before any other
   * callback. A handler module loaded by `serve` has no other way to reach its reactor
   * (for `reactor.broadcast`); keep it for use inside the callbacks.
   *
   * Errors: a throw is reported to `onError`; `createReactor` still returns the reactor.
   */
  onReactor?(reactor: Reactor): void;
}

/** Engine options shared by servers and clients. Every limit has a safe default. */
export interface EngineOptions {
  /** `'native'` (Linux epoll addon), `'portable'` (node:net), or `'auto'` (default). */
  backend?: 'auto' | 'native' | 'portable';
  /** `write` returns false past this many buffered bytes. Default 64 KiB. */
  highWaterMark?: number;
  /** Buffered outbound bytes past which the connection is closed ('slow-consumer'). Default 16 MiB. */
  maxOutboundBytes?: number;
  /** Unconsumed inbound bytes past which the connection is closed ('inbound-limit'). Default 1 MiB. */
  maxInboundBytes?: number;
  /** Idle timeout in ms for new connections; 0 (default) disables. */
  idleTimeout?: number;
  /** Timer sweep resolution in ms. Default 250. */
  timerResolution?: number;
  /**
   * Poll each reactor every `pollInterval` ms from a timer instead of waking per event
   * (`Reactor.setPollInterval`, applied when the reactor is made; native backend, the portable
   * backend ignores it). 0 (default) wakes per event. Reads, accepts and the reactor's own
   * timers wait up to `pollInterval` ms; writes, broadcasts and publishes go out at once; an
   * idle reactor still wakes 1000 / `pollInterval` times a second. For servers that run many
   * more processes than cores (a per-process open-file limit forces ~50 processes for a million
   * connections on one box): there a wake-up costs more than the few events it brings, and a
   * connect ramp reaches each process a few connections at a time. Measured in BENCHMARKS.md
   * (sixteenth sitting); not for traffic that needs low latency.
   */
  pollInterval?: number;
  /**
   * Disable Nagle's algorithm (TCP_NODELAY). Default true. The native backend sets it just
   * before a connection's first write, which is the same for the peer (Nagle only holds back
   * data sent while earlier data is unacknowledged) and spares idle connections the syscall.
   */
  noDelay?: boolean;
  /**
   * Called with errors from handler callbacks (always an `Error`; `conn` is the connection the
   * callback ran for, if any), from accept and from failed inbound TLS handshakes. Default:
   * print to stderr, at most one line per error code per second (the others are counted, and
   * the count is printed with the next line of that code). Errors made for what a peer did (a
   * reset, a failed handshake) carry no JS stack. If it throws, both errors go to stderr; the
   * reactor carries on.
   */
  onError?: (err: Error, conn?: Connection) => void;
}

/** Options for `listen()`. */
export interface ServerOptions extends EngineOptions {
  port: number;
  /** Default '0.0.0.0'. */
  host?: string;
  /** listen(2) backlog. Default 4096 (the kernel caps it at net.core.somaxconn). */
  backlog?: number;
  /** Set SO_REUSEPORT on the listening socket. Default false (true in prefork mode). */
  reusePort?: boolean;
  /**
   * Seconds the kernel holds a new connection back until its first bytes arrive
   * (`TCP_DEFER_ACCEPT`), for protocols whose client speaks first (HTTP, WebSocket, TLS): the
   * reactor then accepts and reads it in one wake-up. A client that sends nothing is accepted
   * after about this long (the kernel's SYN-ACK retransmissions), so never set it for a
   * protocol whose server speaks first. Default 0 (off); at most 3600. Native backend only
   * (the portable backend ignores it).
   */
  deferAccept?: number;
  /** Terminate TLS on this listener (native: in the reactor; portable: node:tls). */
  tls?: TlsServerOptions;
  /**
   * TCP keep-alive on every accepted connection (see `TcpKeepAlive`). Native: set once on the
   * listening socket, which Linux copies into each accepted one (no system call per accept).
   * Default: off.
   */
  tcpKeepAlive?: number | TcpKeepAlive;
}

/**
 * TCP keep-alive: the kernel's own heartbeat. After `idle` seconds without receiving a segment
 * (and with nothing unacknowledged), the kernel sends a probe every `interval` seconds; after
 * `count` unanswered probes it resets the connection, and `onClose` gets
 * `{ kind: 'error', code: 'ETIMEDOUT' }`. A probe and its answer wake no process on
 * either side (the peer's kernel answers), so at a million idle connections it costs a small
 * fraction of what an application heartbeat (a WebSocket ping and pong) costs: see
 * BENCHMARKS.md. It finds peers that vanished without a FIN or RST (a phone that lost its
 * network, a crashed host, a dropped NAT mapping) and keeps stateful middleboxes' mappings warm;
 * it proves nothing about the peer's application (a hung client still answers), and a
 * connection with unacknowledged outbound data is left to TCP's retransmission timeout
 * (`net.ipv4.tcp_retries2`, ~15 minutes by default) instead. A number is `{ idle: n }`.
 *
 * The kernel fires keep-alive timers in groups (~2 s apart at HZ 250), so the probes of all
 * connections opened together leave together: raise `net.core.netdev_max_backlog` (loopback),
 * or the NIC's queue, above that burst, or dropped probes reset live connections (`c1m doctor`).
 *
 * Native: `SO_KEEPALIVE`, `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`. Portable:
 * `socket.setKeepAlive(true, idle * 1000)`; `interval` and `count` are the system's there.
 */
export interface TcpKeepAlive {
  /** Seconds without traffic before the first probe: an integer from 1 to 32767. */
  idle: number;
  /** Seconds between probes: 1 to 32767. Default: `idle / 3` rounded up. */
  interval?: number;
  /** Unanswered probes before the connection is reset: 1 to 127. Default 3. */
  count?: number;
}

/** Options for `connect()`. */
export interface ConnectOptions extends EngineOptions {
  port: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Source address to bind before connecting (port chosen at connect time). */
  localAddress?: string;
  /** Speak TLS: `onOpen` runs once the handshake completed and the server verified. */
  tls?: TlsConnectOptions;
  /** TCP keep-alive on this connection (see `TcpKeepAlive`); native: set before `connect(2)`. Default: off. */
  tcpKeepAlive?: number | TcpKeepAlive;
}

/** The address a listener is bound to. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Engine counters, read without a crossing. */
export interface ReactorStats {
  /** Open connections on this reactor. */
  connections: number;
  /** JS<->native crossings that delivered events (one per poll). 0 on the portable backend. */
  batches: number;
  /** Events delivered (open, data, drain, end, timeout, close). */
  events: number;
  /** Accept pauses caused by EMFILE/ENFILE/ENOBUFS/ENOMEM. */
  acceptPauses: number;
  /** Accepted TLS connections dropped during their handshake (each also told to `onError`). */
  tlsRejects?: number;
}

/**
 * One event loop (reactor) with its connections: a server, a client, or both.
 *
 * Threading: a reactor belongs to the thread that created it; call it only there.
 */
export interface Reactor {
  /** The backend in use. */
  readonly backend: 'native' | 'portable';
  /** Start listening; resolves once the socket is bound. May be called more than once. */
  listen(options: Omit<ServerOptions, keyof EngineOptions>): Promise<ListenAddress>;
  /**
   * Open an outbound connection. Returns its handle at once; `onOpen` runs when it is
   * established, or `onClose` with reason `'connect-failed'` (code `ECONNREFUSED`, ...).
   * `host` must be an IP address (resolve names first).
   */
  connect(options: Omit<ConnectOptions, keyof EngineOptions>): Connection;
  /**
   * Replace a TLS listener's certificate, key and other TLS options without a restart: new
   * connections use them, open ones keep theirs. `listener` is what `listen` resolved to.
   * Errors: `ERR_C1M_TLS_*` as for `listen`; `ERR_C1M_INVALID_OPTION` for an unknown listener.
   */
  setTlsContext?(listener: ListenAddress, tls: TlsServerOptions): void;
  /**
   * Trade latency for wake-ups (native backend only). With `ms` 0 (the default) the reactor
   * polls as soon as the kernel reports an event, one wake-up and one crossing per burst.
   * With `ms` > 0 it polls every `ms` milliseconds from a timer and nobody is woken in between:
   * reads, accepts, connect completions, writability after backpressure, the reactor's own
   * timers (idle timeouts, heartbeats) and hand-offs from other threads wait up to `ms`, and
   * each poll takes everything that arrived meanwhile in one batch. A burst larger than one
   * batch (1,024 readable connections) is not held to a batch per tick: the polls that follow
   * run in the next turns of the event loop until nothing is left, then the timer alone polls
   * again. Writes are not delayed (they are flushed as before). For processes that hold many mostly-idle connections where
   * a few milliseconds do not matter (load generators, device simulators, a one-box
   * benchmark's client side): on a loaded box a wake-up per event is a large part of what a
   * delivery costs. Each timer poll is a wake-up of its own, so pick `ms` against the event
   * rate: with 52 Node processes on 2 cores, 50 ms cut a broadcast's client CPU by 10-35 % and
   * 5 ms raised it. Can be changed at any time; takes effect at once.
   *
   * Errors: `ERR_C1M_INVALID_OPTION` unless `ms` is an integer in 0..60000;
   * `ERR_C1M_REACTOR_CLOSED` after `close()`.
   */
  setPollInterval?(ms: number): void;
  /** A handle for a connection id (stale ids give a handle whose `open` is false). */
  connection(id: number): Connection;
  /**
   * `connection(id).bufferedAmount` without making a handle: for loops over many ids (a
   * publish's slow-subscriber check). 0 for a stale id.
   */
  bufferedAmount(id: number): number;
  /**
   * What of `id`'s buffered bytes is bound to wait in this process: 0 while the kernel has
   * taken everything handed to it so far, else `bufferedAmount`. Bytes a write or broadcast
   * staged in this turn count only behind a backlog: before one, the kernel is expected to take
   * them at the turn's end. A publish's slow-subscriber check reads this, so a subscriber the
   * kernel keeps up with is never slow however large a burst, and one already behind gains at
   * most one message past the limit. 0 for a stale id.
   */
  backlog(id: number): number;
  /**
   * Handles to every connection of this reactor that is open or connecting, in no particular
   * order (for shutdown sweeps and diagnostics). O(highest fd) on the native backend, so
   * not for per-message use. Threading: on the reactor's thread only.
   */
  connections(): Connection[];
  /**
   * Write the same bytes to many connections in one crossing. Stale ids are skipped.
   * Returns the number of connections the bytes were queued for. While the reactor is
   * closing, its connections still open get them (after `close()` resolved: none).
   */
  broadcast(ids: ArrayLike<number>, data: Uint8Array | string): number;
  /**
   * Open a UDP socket on this reactor (see `UdpHandler`, `UdpOptions`). Resolves once bound.
   * `close()` of the reactor closes it.
   * Errors: rejects with `ERR_C1M_INVALID_OPTION` or a system error (`EADDRINUSE`, ...).
   */
  udp(options: UdpOptions, handler: UdpHandler): Promise<UdpSocket>;
  /** Counters. */
  readonly stats: ReactorStats;
  /**
   * Graceful shutdown: stop accepting, call `onShutdown`, let handlers flush and close; after
   * `timeoutMs` (default 5000) close what remains with reason `'shutdown'`. Resolves when
   * every connection is closed and the reactor released its resources.
   */
  close(timeoutMs?: number): Promise<void>;
}
