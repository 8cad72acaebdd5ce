/**
 * Types the WebSocket client's modules share, so that imports flow one way:
 * `client-types.ts` <- `client-handshake.ts` (the pure handshake) <- `client.ts` (the handler)
 * <- `websocket-client.ts` (the `ws`-like API). Nothing here has runtime code.
 */

import type { TlsConnectOptions } from '../../core/index.js';

/** Options of one `connect`. */
export interface WebSocketConnectOptions<T = unknown> {
  /**
   * TLS for a `wss:` URL (ignored for `ws:`): trusted `ca`, `rejectUnauthorized`, a client
   * `cert`/`key`, `resume`, ... Default: the system's trust store, the certificate verified.
   * `servername` defaults to the URL's host (not `address`). Pass the same object to every
   * connect: contexts and resumable sessions are kept per object and server name.
   */
  tls?: TlsConnectOptions;
  /** Subprotocols to offer, in order of preference (HTTP tokens, no duplicates). Default none. */
  protocols?: readonly string[];
  /**
   * Extra request fields. The handshake's own fields (Host, Upgrade, Connection, and the
   * Sec-WebSocket-* fields) may not be given.
   */
  headers?: Readonly<Record<string, string>>;
  /** An `Origin` field (browsers send one; servers may check it). Default none. */
  origin?: string;
  /**
   * The IP address to connect to. Default: the URL's host, which must then be an IP address
   * (resolve names first; the URL's host still goes in the Host field).
   */
  address?: string;
  /** Source address to bind before connecting. */
  localAddress?: string;
  /** Overrides the handler's `handshakeTimeout` for this connection. */
  handshakeTimeout?: number;
  /** The initial `ws.data`. */
  data?: T;
}
