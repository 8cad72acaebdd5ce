/**
 * The gateway's options (`createGateway`, the handler module's `createHandler`, and through
 * `--handler-options` / the flags of `c1m serve gateway`), apart from the code that uses them
 * (index.ts) so that the public surface reads in one place.
 */
import type { AuthOptions, Grant } from './auth.js';
import type { HistoryOptions } from './history.js';
import type { AuthorizeRequest } from './reauthorize.js';
import type { PubsubOptions } from './topics.js';

/** Options of the gateway (`--handler-options` of `c1m serve gateway`, built by its flags). */
export interface GatewayOptions extends AuthOptions, HistoryOptions {
  /** NATS server URL(s), comma-separated: fan-out across processes and machines. Default: none (standalone). */
  nats?: string;
  /** NATS subject prefix of topics. Default `c1m.topic.`. */
  natsPrefix?: string;
  /**
   * NATS subject prefix of the gateways' control messages (a disconnect goes to
   * `<prefix>disconnect`, an unsubscribe to `<prefix>unsubscribe`, a subscribe to
   * `<prefix>subscribe`). It must end with `.`, hold no wildcard, and neither it nor
   * `natsPrefix` may start with the other, so that no topic's subject is a control subject.
   * Default `c1m.control.` with the default `natsPrefix`, else `c1m.control.<natsPrefix>`: a
   * deployment with its own topic prefix has its own control subjects.
   */
  natsControlPrefix?: string;
  /**
   * With `nats` and `history > 0` the history lives in this JetStream stream, shared by every
   * process and machine on that NATS (created or updated at start). Default `C1M_HISTORY`.
   */
  historyStream?: string;
  /** The JetStream history's storage: `memory` (default; lost when NATS restarts) or `file`. */
  historyStorage?: 'memory' | 'file';
  /** Bytes the JetStream history keeps over all topics (the stream's `max_bytes`). Default 256 MiB. */
  historyStreamBytes?: number;
  /** Topic limits and slow subscribers (the pub/sub API's options). */
  pubsub?: PubsubOptions;
  /**
   * Let clients publish over their WebSocket (`{"op":"pub",...}`): with tokens, to the topics
   * their `publish` claim grants (the claim that also guards `POST /publish`); on an open
   * gateway (`noAuth`), to any topic. Off: a `pub` gets a `forbidden` error. Default false.
   */
  clientPublish?: boolean;
  /**
   * With `clientPublish`: the most `pub`s one user may make per second through this gateway
   * (all its connections to it together; on an open gateway, one connection), in bursts of up
   * to as many (a token bucket per publisher: pub-rate.ts); a `pub` over it gets a `limit`
   * error and is not published. 0: no limit. Default 100. A token's `publish_rate` claim sets
   * its user's rate instead.
   */
  clientPublishRate?: number;
  /** Largest published message (HTTP body) and client message, in bytes. Default 65536. */
  maxMessageBytes?: number;
  /** WebSocket heartbeat in ms (0: none). Default 30000. */
  pingInterval?: number;
  /**
   * At a graceful shutdown, close the WebSockets (1001) spread evenly over this many ms
   * rather than all at once, so that the clients of a restarting gateway do not all reconnect
   * in the same second (see `WebSocketServerOptions.shutdownSpread`). Until its turn a client
   * keeps receiving: NATS, the history and `adminPort` stay up until the last close is sent;
   * the listener is closed at once. The server's close timeout (`c1m serve --grace`) must be
   * longer. Default 0: all at once.
   */
  shutdownSpread?: number;
  /** Serve `/metrics`, `/stats` and `/dashboard` (on the gateway's port, or on `adminPort`). Default true. */
  metrics?: boolean;
  /**
   * Serve `POST /publish/<topic>`, `/metrics`, `/stats` and `/dashboard` on this port of
   * `adminHost` instead of the gateway's port, which then serves only `/ws` (anything else: 404).
   * Plain HTTP (the server's `tls` applies to its own port only). Every gateway (each worker
   * thread or process) listens on it with `SO_REUSEPORT`, as on the public port in prefork, so it must differ from the server's port (`c1m serve` checks;
   * here the kernel would mix the two) and be free of other servers. Publish auth and
   * `/metrics` (every worker summed) are as on the public port. 1 to 65535 (not 0: every
   * worker binds the same port). Lifetime: opened before the gateway serves, closed at its
   * shutdown. Errors: `createGateway` rejects with the bind's error (`EADDRINUSE`, ...) naming
   * the address. Default: none (everything on the gateway's port).
   */
  adminPort?: number;
  /** The address `adminPort` binds. Default `127.0.0.1` (loopback: operations stay private). */
  adminHost?: string;
  /**
   * A custom check after the token verified (handler modules only: a function does not pass
   * through `--handler-options`). Returning false closes the WebSocket with 4003.
   */
  authorize?: (grant: Grant, req: AuthorizeRequest) => boolean | Promise<boolean>;
  /**
   * With `authorize`: run it again every this many ms on each open connection (with the grant
   * it holds then and the request it came with); one it now refuses is closed with 4003, one
   * whose check throws, rejects or has not settled within min(interval, 10 s) is kept. At most
   * 64 checks in flight, ever (reauthorize.ts); a round that outlasts the interval delays the
   * next. Costs one entry per open connection. Default: none (at connect only).
   */
  authorizeInterval?: number;
}
