/**
 * UDP on the native backend: sockets opened by the addon (native/src/udp.c), datagrams delivered
 * from UDP_MSG records of the reactor's batch, sends staged as UDP_SEND commands in the send area.
 *
 * Model: `NativeUdp` is a reactor's UDP half, made at its first `udp()`. The reactor's batch loop
 * hands it every UDP record; it calls the socket's handler with a view of the receive area and
 * the one reusable `from` view (moved to the record's address entry). `send` writes a command
 * header, the 32-byte destination entry and the bytes into the send area; the addon sends the
 * batch's datagrams with sendmmsg after the batch.
 *
 * Invariants: a record whose (fd, gen) is not an open socket of this reactor is skipped (closed
 * during the batch). Nothing per datagram is allocated here except the `data` Buffer view.
 * Backpressure is read from the slot table (`out_len`: bytes in the native send queue).
 *
 * Hot path: `record` -> `onMessage`; `send` -> `#stage`.
 */
import type { Binding, NativeConstants, NativeHandle } from '../core/binding.js';
import type { Layout } from '../core/layout.js';
import { C1mError, systemError } from '../core/errors.js';
import { socketFailed } from '../core/handler-contract.js';
import { checkDatagram, checkDestination, checkMulticastInterface, checkMulticastTTL, formatAddress, notConnected, readFamily, readPort, resolveUdp, truncatedError, type ResolvedUdpOptions } from '../core/udp.js';
import type { UdpAddress, UdpBatch, UdpDestination, UdpHandler, UdpOptions, UdpSocket, UdpStats } from '../core/udp-types.js';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

const TWO32 = 2 ** 32;

/** What `NativeUdp` needs of its reactor: the shared areas and the staging/flush hooks. */
export interface UdpHost {
  readonly b: Binding;
  readonly h: NativeHandle;
  readonly k: NativeConstants;
  readonly L: Layout;
  readonly recv: Buffer;
  readonly ev: Int32Array;
  readonly slots: Uint32Array;
  readonly send: Buffer;
  readonly sendI32: Int32Array;
  readonly ctl: Int32Array;
  /** Bytes of the send area. */
  readonly sendArea: number;
  /** Apply the staged commands now (the area is full, or a close must not lose them). */
  flushNow(): void;
  /** Flush at the end of the microtask queue when outside a batch. */
  scheduleFlush(): void;
  /** The reactor's `onError`. */
  report(err: Error): void;
  /** Re-evaluate whether the reactor keeps the process alive. */
  updateRef(): void;
}

/** A kept address: its entry bytes, ready to copy into a send command. */
class FixedAddress implements UdpAddress {
  readonly entry: Buffer;
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
  constructor(entry: Buffer, address: string, port: number) {
    this.entry = entry;
    this.address = address;
    this.port = port;
    this.family = isIP(address) === 6 ? 'IPv6' : 'IPv4';
  }
  copy(): UdpAddress {
    return this;
  }
}

/** The one reusable view of a received datagram's address entry. */
class RecvAddress implements UdpAddress {
  readonly #u: NativeUdp;
  off = 0;
  constructor(u: NativeUdp) {
    this.#u = u;
  }
  get address(): string {
    return formatAddress(this.#u.k, this.#u.recv, this.off);
  }
  get port(): number {
    return readPort(this.#u.k, this.#u.recv, this.off);
  }
  get family(): 'IPv4' | 'IPv6' {
    return readFamily(this.#u.k, this.#u.recv, this.off) === this.#u.k.AF_INET6 ? 'IPv6' : 'IPv4';
  }
  copy(): UdpAddress {
    const size = this.#u.k.UDP_ADDR_SIZE;
    const entry = Buffer.alloc(size);
    this.#u.recv.copy(entry, 0, this.off, this.off + size);
    return new FixedAddress(entry, this.address, this.port);
  }
}

/** The records of one socket's run in the current batch. */
class RecvBatch implements UdpBatch {
  readonly #u: NativeUdp;
  first = 0;
  length = 0;
  max = 0;
  constructor(u: NativeUdp) {
    this.#u = u;
  }
  #rec(i: number): number {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`batch index ${i} out of range 0..${this.length - 1}`);
    return (this.first + i) * this.#u.L.evWords;
  }
  data(i: number): Buffer {
    const r = this.#rec(i), ev = this.#u.ev, L = this.#u.L;
    const off = ev[r + L.udpMsgOffset]!, len = ev[r + L.udpMsgLength]!;
    return this.#u.recv.subarray(off, off + Math.min(len, this.max));
  }
  from(i: number): UdpAddress {
    const f = this.#u.from;
    f.off = this.#u.ev[this.#rec(i) + this.#u.L.udpMsgAddr]!;
    return f;
  }
  size(i: number): number {
    return this.#u.ev[this.#rec(i) + this.#u.L.udpMsgLength]!;
  }
  truncated(i: number): boolean {
    return this.size(i) > this.max;
  }
}

/** The index of interface `scope` (a name, or an index already); 0 for ''. Linux: /sys/class/net. */
function interfaceIndex(scope: string): number {
  if (scope === '') return 0;
  if (/^\d+$/.test(scope)) return Number(scope);
  try {
    return Number(readFileSync(`/sys/class/net/${scope}/ifindex`, 'utf8').trim());
  } catch {
    throw new C1mError('ERR_C1M_INVALID_OPTION', `iface: no network interface called "${scope}"`);
  }
}

class NativeUdpSocket implements UdpSocket {
  readonly #u: NativeUdp;
  readonly fd: number;
  readonly gen: number;
  readonly handler: UdpHandler;
  readonly opts: ResolvedUdpOptions;
  received = 0;
  truncated = 0;
  /** Native counters at close (the socket's native state is gone after it). */
  #final: number[] | undefined;
  #connected = false;
  constructor(u: NativeUdp, fd: number, gen: number, handler: UdpHandler, opts: ResolvedUdpOptions) {
    this.#u = u;
    this.fd = fd;
    this.gen = gen;
    this.handler = handler;
    this.opts = opts;
  }
  get id(): number {
    return this.gen * TWO32 + this.fd;
  }
  get open(): boolean {
    return this.#u.sockets.get(this.fd) === this;
  }
  get address(): { address: string; port: number; family: 'IPv4' | 'IPv6' } {
    const a = this.open ? this.#u.b.udpSockname(this.#u.h, this.fd, this.gen, false) : undefined;
    const address = a?.[0] ?? this.opts.host;
    return { address, port: a?.[1] ?? this.opts.port, family: isIP(address) === 6 ? 'IPv6' : 'IPv4' };
  }
  get remoteAddress(): { address: string; port: number } | undefined {
    if (!this.#connected || !this.open) return undefined;
    const a = this.#u.b.udpSockname(this.#u.h, this.fd, this.gen, true);
    return a ? { address: a[0], port: a[1] } : undefined;
  }
  send(to: UdpDestination | Uint8Array | string, data?: Uint8Array | string): boolean {
    if (data === undefined) {
      if (!this.#connected) throw notConnected();
      return this.#u.stage(this, null, to as Uint8Array | string);
    }
    return this.#u.stage(this, to as UdpDestination, data);
  }
  async connect(host: string, port: number): Promise<void> {
    checkDestination(host, port);
    this.#u.host.flushNow(); // datagrams sent before connect() leave before it
    const rc = this.open ? this.#u.b.udpConnect(this.#u.h, this.fd, this.gen, host, port) : -9; // EBADF
    if (rc < 0) throw systemError(rc, 'connect', { address: host, port });
    this.#connected = true;
  }
  disconnect(): void {
    if (!this.open) return;
    this.#u.host.flushNow();
    this.#u.b.udpConnect(this.#u.h, this.fd, this.gen, undefined, 0);
    this.#connected = false;
  }
  addMembership(group: string, iface?: string): void {
    this.#membership(true, group, iface);
  }
  dropMembership(group: string, iface?: string): void {
    this.#membership(false, group, iface);
  }
  #membership(join: boolean, group: string, iface: string | undefined): void {
    checkDestination(group, 1);
    if (iface !== undefined) checkDestination(iface, 1);
    const rc = this.open ? this.#u.b.udpMembership(this.#u.h, this.fd, this.gen, join, group, iface) : -9;
    if (rc < 0) throw systemError(rc, join ? 'addMembership' : 'dropMembership', { address: group });
  }
  setMulticastTTL(ttl: number): void {
    checkMulticastTTL(ttl);
    this.#multicast('setMulticastTTL', this.#u.k.UDP_MCAST_TTL, ttl, undefined);
  }
  setMulticastLoopback(flag: boolean): void {
    this.#multicast('setMulticastLoopback', this.#u.k.UDP_MCAST_LOOP, flag ? 1 : 0, undefined);
  }
  setMulticastInterface(iface: string): void {
    const scope = checkMulticastInterface(iface, this.address.family);
    if (this.address.family === 'IPv4') this.#multicast('setMulticastInterface', this.#u.k.UDP_MCAST_IF, 0, iface);
    else this.#multicast('setMulticastInterface', this.#u.k.UDP_MCAST_IF, interfaceIndex(scope), undefined);
  }
  #multicast(syscall: string, what: number, value: number, iface: string | undefined): void {
    const rc = this.open ? this.#u.b.udpMulticast(this.#u.h, this.fd, this.gen, what, value, iface) : -9; // EBADF
    if (rc < 0) throw systemError(rc, syscall, iface === undefined ? {} : { address: iface });
  }
  get stats(): UdpStats {
    const n = this.#final ?? (this.open ? this.#u.b.udpStats(this.#u.h, this.fd, this.gen) : undefined) ?? [0, 0, 0, 0, 0, 0, 0];
    return { received: this.received, truncated: this.truncated, sent: n[0]!, drops: n[1]!, sendErrors: n[2]!, queuedBytes: n[4]!, gsoSent: n[5]!, groReceived: n[6]! };
  }
  close(): void {
    if (!this.open) return;
    this.#u.host.flushNow();
    this.#final = this.#u.b.udpStats(this.#u.h, this.fd, this.gen);
    this.#u.b.udpClose(this.#u.h, this.fd, this.gen);
    this.#u.sockets.delete(this.fd);
    this.#u.host.updateRef();
  }
}

/**
 * A reactor's UDP sockets, made by `NativeReactor.udp()` at its first call.
 *
 * Threading: the reactor's thread only. Lifetime: as long as the reactor; `closeAll()` at its close.
 */
export class NativeUdp {
  readonly host: UdpHost;
  readonly b: Binding;
  readonly h: NativeHandle;
  readonly k: NativeConstants;
  readonly L: Layout;
  readonly recv: Buffer;
  readonly ev: Int32Array;
  readonly sockets = new Map<number, NativeUdpSocket>();
  readonly from: RecvAddress;
  readonly #batch: RecvBatch;
  /** The last plain `{ address, port }` destination and its entry (a crossing to encode, once). */
  #lastAddress = '';
  #lastPort = -1;
  readonly #lastEntry: Buffer;
  readonly #addrSize: number;

  constructor(host: UdpHost) {
    this.host = host;
    this.b = host.b;
    this.h = host.h;
    this.k = host.k;
    this.L = host.L;
    this.recv = host.recv;
    this.ev = host.ev;
    this.from = new RecvAddress(this);
    this.#batch = new RecvBatch(this);
    this.#addrSize = this.k.UDP_ADDR_SIZE;
    this.#lastEntry = Buffer.alloc(this.#addrSize);
  }

  get size(): number {
    return this.sockets.size;
  }

  async open(options: UdpOptions, handler: UdpHandler): Promise<UdpSocket> {
    if (handler === null || typeof handler !== 'object') {
      throw new TypeError('udp(): handler must be an object with onMessage/onMessages/...');
    }
    const o = resolveUdp(options);
    const [fd, port] = this.b.udpOpen(this.h, o.host, o.port, o);
    const gen = this.host.slots[fd * this.L.slotWords + this.L.slotGen]!;
    const sock = new NativeUdpSocket(this, fd, gen, handler, { ...o, port });
    this.sockets.set(fd, sock);
    this.host.updateRef();
    return sock;
  }

  closeAll(): void {
    for (const s of [...this.sockets.values()]) s.close();
  }

  /** Stage one datagram (`to` null: the connected peer). */
  stage(sock: NativeUdpSocket, to: UdpDestination | null, data: Uint8Array | string): boolean {
    if (!sock.open) return false;
    const host = this.host, L = this.L, size = this.#addrSize;
    let len = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    checkDatagram(len);
    // the destination entry first (it may need a crossing to encode: before reserving room)
    let entry: Buffer | null = null, recvOff = -1;
    if (to instanceof RecvAddress) recvOff = to.off;
    else if (to instanceof FixedAddress) entry = to.entry;
    else if (to !== null) entry = this.#encode(to.address, to.port);
    const total = L.cmdBytes + ((size + len + L.cmdAlignMask) & ~L.cmdAlignMask);
    let at = host.ctl[L.ctlSendUsed]!;
    if (at + total > host.sendArea) {
      host.flushNow();
      at = 0;
    }
    const send = host.send, dst = at + L.cmdBytes;
    if (recvOff >= 0) this.recv.copy(send, dst, recvOff, recvOff + size);
    else if (entry !== null) entry.copy(send, dst);
    else send.fill(0, dst, dst + size);
    if (typeof data === 'string') len = send.write(data, dst + size, 'utf8');
    else send.set(data, dst + size);
    const ok = host.slots[sock.fd * L.slotWords + L.slotOutLen] === 0;
    const i = at >> 2, k = this.k;
    host.sendI32[i + L.cmdOp] = ok ? k.OP_UDP_SEND : k.OP_UDP_SEND | k.OPF_WANT_DRAIN;
    host.sendI32[i + L.cmdFd] = sock.fd;
    host.sendI32[i + L.cmdGen] = sock.gen;
    host.sendI32[i + L.cmdLen] = len;
    host.ctl[L.ctlSendUsed] = at + total;
    host.scheduleFlush();
    return ok;
  }

  #encode(address: string, port: number): Buffer {
    if (address === this.#lastAddress && port === this.#lastPort) return this.#lastEntry;
    checkDestination(address, port);
    this.b.udpEncode(address, port, this.#lastEntry);
    this.#lastAddress = address;
    this.#lastPort = port;
    return this.#lastEntry;
  }

  /** Handle the UDP record at index i of the batch; returns the index of the next record to look at. */
  record(i: number, n: number): number {
    const ev = this.ev, L = this.L, k = this.k, W = L.evWords, b = i * W;
    const kind = ev[b + L.evKind]!, fd = ev[b + L.evFd]!, gen = ev[b + L.evGen]!;
    const sock = this.sockets.get(fd);
    if (sock === undefined || sock.gen !== gen) return i + 1;
    const h = sock.handler;
    if (kind === k.EV_UDP_MSG) {
      if (h.onMessages) {
        let j = i + 1;
        while (j < n && ev[j * W + L.evKind] === kind && ev[j * W + L.evFd] === fd && ev[j * W + L.evGen] === gen) j++;
        const batch = this.#batch;
        batch.first = i;
        batch.length = j - i;
        batch.max = sock.opts.maxMessageSize;
        sock.received += j - i;
        for (let r = i; r < j; r++) if (ev[r * W + L.udpMsgLength]! > batch.max) sock.truncated++;
        try {
          h.onMessages.call(h, sock, batch);
        } catch (err) {
          this.#error(sock, err);
        }
        batch.length = 0;
        return j;
      }
      const len = ev[b + L.udpMsgLength]!, max = sock.opts.maxMessageSize;
      sock.received++;
      if (len > max) {
        sock.truncated++;
        this.#error(sock, truncatedError(len, max));
        return i + 1;
      }
      if (h.onMessage) {
        const off = ev[b + L.udpMsgOffset]!;
        this.from.off = ev[b + L.udpMsgAddr]!;
        try {
          h.onMessage.call(h, sock, this.recv.subarray(off, off + len), this.from);
        } catch (err) {
          this.#error(sock, err);
        }
      }
    } else if (kind === k.EV_UDP_DRAIN) {
      if (h.onDrain && this.host.slots[fd * L.slotWords + L.slotOutLen] === 0) {
        try {
          h.onDrain.call(h, sock);
        } catch (err) {
          this.#error(sock, err);
        }
      }
    } else if (kind === k.EV_UDP_ERROR) {
      const send = ev[b + L.udpErrorWhat] === k.UDP_E_SEND;
      const err = systemError(ev[b + L.udpErrorErrno]!, send ? 'sendmmsg' : 'recvmmsg');
      const dropped = ev[b + L.udpErrorCount]!;
      if (send) err.message += ` (${dropped} datagram${dropped === 1 ? '' : 's'} dropped)`;
      this.#error(sock, err);
    }
    return i + 1;
  }

  #error(sock: NativeUdpSocket, thrown: unknown): void {
    socketFailed((e) => this.host.report(e), sock.handler as { onError?(s: NativeUdpSocket, err: Error): void }, sock, thrown);
  }
}
