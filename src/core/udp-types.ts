/**
 * The UDP contract shared by every backend (native epoll with recvmmsg/sendmmsg, portable
 * node:dgram): a socket bound on a reactor, a handler called with datagrams, and addresses that
 * cost no object per datagram.
 *
 * Threading: a UDP socket and its handler belong to the reactor (thread) that opened it; every
 * callback runs there, never concurrently.
 */

/**
 * A datagram's peer: where it came from, or where to send. `address` and `port` are computed
 * when read, not per datagram.
 *
 * Lifetime: the `from` given to `onMessage` (or by `UdpBatch.from`) is one reusable view per
 * reactor, valid only until the callback returns (and, in a batch, until the next `from(i)`);
 * `send(from, ...)` during the callback is the cheap way to answer. Keep `from.copy()` to use it
 * later.
 */
export interface UdpAddress {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
  /** A copy that stays valid (and stays cheap to send to: its encoded form is kept). */
  copy(): UdpAddress;
}

/** A destination: a `UdpAddress`, or any `{ address, port }` (an IP address, not a name). */
export type UdpDestination = UdpAddress | { readonly address: string; readonly port: number };

/** Counters of one UDP socket. */
export interface UdpStats {
  /** Datagrams delivered to the handler (truncated ones included). */
  received: number;
  /** Datagrams received longer than `maxMessageSize`: cut and flagged (see `UdpHandler.onMessage`). */
  truncated: number;
  /** Datagrams the kernel took. */
  sent: number;
  /**
   * Datagrams dropped because the send queue (bounded by `sendQueueBytes`) was full after the
   * kernel's socket buffer refused them (`EAGAIN`). Memory never grows past the bound.
   */
  drops: number;
  /** Datagrams the kernel refused (each run reported once to `onError`). */
  sendErrors: number;
  /** Bytes waiting in the send queue now. */
  queuedBytes: number;
  /** Of `sent`, the datagrams that left in GSO runs (`UDP_SEGMENT`; 0 on the portable backend). */
  gsoSent: number;
  /** Of `received`, the datagrams the kernel handed over coalesced (`UDP_GRO`; 0 on the portable backend). */
  groReceived: number;
}

/**
 * A batch of datagrams received by one socket in one poll (`UdpHandler.onMessages`).
 *
 * Lifetime: valid only until the callback returns: `data(i)` views the engine's receive area,
 * `from(i)` moves the one reusable address view. Copy what you keep.
 */
export interface UdpBatch {
  readonly length: number;
  /** The bytes of datagram i (the first `maxMessageSize` bytes when truncated). */
  data(i: number): Buffer;
  /** The sender of datagram i (the shared view, moved to i). */
  from(i: number): UdpAddress;
  /** The datagram's length as sent (more than `data(i).length` when truncated). */
  size(i: number): number;
  /** Whether datagram i was longer than `maxMessageSize` and was cut. */
  truncated(i: number): boolean;
}

/** A UDP socket on a reactor. Handles are cheap; compare `id`. */
export interface UdpSocket {
  /** Unique within its reactor for the socket's life. */
  readonly id: number;
  /** False once closed. */
  readonly open: boolean;
  /** The local address (the port chosen by the kernel when bound to port 0). */
  readonly address: { address: string; port: number; family: 'IPv4' | 'IPv6' };
  /** The peer set by `connect`, undefined when not connected. */
  readonly remoteAddress: { address: string; port: number } | undefined;
  /**
   * Send one datagram to `to` (or, with one argument, to the connected peer). The bytes are
   * copied before this returns. Sends made during one batch leave together in `sendmmsg` calls
   * when the batch ends (on the portable backend: one `send` each).
   *
   * Backpressure: returns false while the socket's send queue holds datagrams (the kernel's
   * buffer said `EAGAIN`); the datagram is still queued, unless the queue is past
   * `sendQueueBytes`, in which case it is dropped and counted in `stats.drops`. `onDrain`
   * follows once the queue has emptied. Returns false for a closed socket (the datagram is
   * dropped, not counted).
   *
   * Errors: throws `ERR_C1M_UDP_MESSAGE_SIZE` for more than 65,527 bytes (the kernel refuses more than
   * 65,507 over IPv4 with `EMSGSIZE`, reported to `onError`),
   * `ERR_C1M_UDP_NOT_CONNECTED` for `send(data)` without `connect`, `ERR_C1M_INVALID_OPTION` for a
   * destination that is not an IP address and port. Errors the kernel reports (`ENETUNREACH`,
   * `EMSGSIZE`, `ECONNREFUSED`, ...) drop the datagram and go to `onError`; they are never thrown.
   */
  send(to: UdpDestination, data: Uint8Array | string): boolean;
  send(data: Uint8Array | string): boolean;
  /**
   * Connect to a default peer: `send(data)` goes there, only its datagrams are received, and
   * ICMP errors for it (`ECONNREFUSED` when nothing listens) reach `onError`.
   * Errors: rejects with a system error, or `ERR_C1M_INVALID_OPTION` for a host that is not an IP address.
   */
  connect(host: string, port: number): Promise<void>;
  /** Dissolve the association made by `connect`. */
  disconnect(): void;
  /** Join a multicast group (on the interface with address `iface`, or the default one). Throws a system error. */
  addMembership(group: string, iface?: string): void;
  /** Leave a multicast group. Throws a system error. */
  dropMembership(group: string, iface?: string): void;
  /**
   * Hops a multicast datagram sent from this socket may take (`IP_MULTICAST_TTL`, or
   * `IPV6_MULTICAST_HOPS` on an IPv6 socket), 0 to 255; the kernel's default is 1 (this
   * network only). Errors: throws `ERR_C1M_INVALID_OPTION` outside 0-255, a system error from the kernel.
   */
  setMulticastTTL(ttl: number): void;
  /**
   * Whether members of the group on this host (this socket included) receive what this socket
   * sends to it (`IP_MULTICAST_LOOP` / `IPV6_MULTICAST_LOOP`); the kernel's default is true.
   * Errors: throws a system error.
   */
  setMulticastLoopback(flag: boolean): void;
  /**
   * The interface multicast datagrams leave by: on an IPv4 socket the interface's local address
   * (`'127.0.0.1'` for `lo`), on an IPv6 socket `'::%NAME'` or `'::%INDEX'` (`'::%lo'`); `'0.0.0.0'`
   * or `'::'` for the kernel's choice (by the routing table). Errors: throws
   * `ERR_C1M_INVALID_OPTION` for an address of the other family or an unknown interface name, a
   * system error from the kernel (`EADDRNOTAVAIL`: no interface has that address).
   */
  setMulticastInterface(iface: string): void;
  /** Counters (one native call on the native backend: not for per-datagram use). */
  readonly stats: UdpStats;
  /** Flush what was sent so far, then close. Idempotent. */
  close(): void;
}

/**
 * What a UDP socket calls. Give `onMessage` (one call per datagram) or `onMessages` (one call per
 * batch); with both, only `onMessages` is called.
 *
 * Errors: an exception thrown by a callback is reported to `onError` (else to the reactor's
 * `onError`); the socket stays open and the rest of the batch is delivered.
 */
export interface UdpHandler {
  /**
   * A datagram arrived. A datagram longer than `maxMessageSize` is not passed here: it is counted
   * in `stats.truncated` and reported to `onError` as `ERR_C1M_UDP_TRUNCATED` (with `size`).
   *
   * Lifetime: `data` views the engine's receive area and `from` is a reusable view, both valid only
   * until this callback returns (`Buffer.from(data)`, `from.copy()` to keep them).
   */
  onMessage?(sock: UdpSocket, data: Buffer, from: UdpAddress): void;
  /** Every datagram one poll received on this socket, at once (truncated ones flagged). */
  onMessages?(sock: UdpSocket, batch: UdpBatch): void;
  /** The send queue has emptied after `send` returned false. */
  onDrain?(sock: UdpSocket): void;
  /**
   * A socket error (an ICMP error on a connected socket: `ECONNREFUSED`), a send the kernel refused,
   * a truncated datagram, or an exception from a callback. The socket stays open.
   */
  onError?(sock: UdpSocket, err: Error): void;
}

/** Options for `reactor.udp()`. */
export interface UdpOptions {
  /** Port to bind; 0 (the default) lets the kernel choose. */
  port?: number;
  /** Local address to bind. Default '0.0.0.0' ('::' binds IPv6). */
  host?: string;
  /** SO_REUSEPORT: several sockets (one per reactor or process) share the port; the kernel hashes flows over them. Default false. */
  reusePort?: boolean;
  /** IPV6_V6ONLY for an IPv6 socket. Default false (dual stack). */
  ipv6Only?: boolean;
  /** SO_RCVBUF in bytes (the kernel doubles it and caps it at net.core.rmem_max). Default: the kernel's. */
  recvBufferSize?: number;
  /** SO_SNDBUF in bytes (doubled, capped at net.core.wmem_max). Default: the kernel's. */
  sendBufferSize?: number;
  /** Bytes received per datagram, 1 to 65535; longer datagrams are cut and flagged. Default 65535. */
  maxMessageSize?: number;
  /** Bound of the send queue kept after `EAGAIN`, in bytes; datagrams past it are dropped and counted. Default 1 MiB. */
  sendQueueBytes?: number;
  /**
   * Send runs of equal-size datagrams to one destination (consecutive `send`s in one batch, the
   * last may be shorter) as one `UDP_SEGMENT` (GSO) send each, where the kernel supports it; the
   * peer receives the same datagrams. Default true. Native backend only (ignored by the portable one).
   */
  gso?: boolean;
  /**
   * Let the kernel hand over several datagrams of one flow at once (`UDP_GRO`, where it has it;
   * on this machine, from a GSO sender): the engine cuts them apart again, so the handler still
   * gets one datagram per call. Only with `maxMessageSize` 65535. Default true. Native backend only.
   */
  gro?: boolean;
}
