/**
 * UDP on the portable backend: the `UdpSocket` contract on `node:dgram`, so code written for the
 * native backend runs where the addon does not.
 *
 * Model: one `dgram.Socket` per UDP socket. Each `'message'` event is one `onMessage` call (or an
 * `onMessages` batch of one); `from` is one reusable object per reactor, filled from Node's
 * `rinfo`. Sends go to `dgram.send` at once, on a copy of the bytes.
 *
 * Invariants: the same as the native backend's, emulated: a datagram longer than
 * `maxMessageSize` is cut and flagged; `send` returns false while libuv's send queue holds
 * datagrams (the kernel said EAGAIN), drops past `sendQueueBytes` are counted, and `onDrain`
 * follows once the queue has emptied.
 *
 * Differences: no batching (one JS call per datagram underneath); `reusePort` needs Node >=
 * 22.12 (older versions ignore it, so a second socket on the port fails with EADDRINUSE);
 * node:dgram hands one tick's sends to libuv before libuv reports a queue (an address lookup
 * stands between), so `sendQueueBytes` bounds the queue from the next tick on, not within a
 * burst made in one tick.
 */
import { existsSync } from 'node:fs';
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { C1mError } from '../core/errors.js';
import { socketFailed } from '../core/handler-contract.js';
import { checkDatagram, checkDestination, checkMulticastInterface, checkMulticastTTL, notConnected, resolveUdp, truncatedError, type ResolvedUdpOptions } from '../core/udp.js';
import type { UdpAddress, UdpBatch, UdpDestination, UdpHandler, UdpOptions, UdpSocket, UdpStats } from '../core/udp-types.js';

let nextId = 1;

class FixedAddress implements UdpAddress {
  constructor(readonly address: string, readonly port: number, readonly family: 'IPv4' | 'IPv6') {}
  copy(): UdpAddress {
    return this;
  }
}

/** The one reusable `from` of a reactor. */
class RecvAddress implements UdpAddress {
  address = '';
  port = 0;
  family: 'IPv4' | 'IPv6' = 'IPv4';
  copy(): UdpAddress {
    return new FixedAddress(this.address, this.port, this.family);
  }
}

/** A batch of one datagram (node:dgram delivers them one by one). */
class OneBatch implements UdpBatch {
  length = 0;
  msg: Buffer = Buffer.alloc(0);
  max = 0;
  constructor(readonly recvFrom: RecvAddress) {}
  #check(i: number): void {
    if (i !== 0 || this.length === 0) throw new RangeError(`batch index ${i} out of range 0..${this.length - 1}`);
  }
  data(i: number): Buffer {
    this.#check(i);
    return this.msg.length > this.max ? this.msg.subarray(0, this.max) : this.msg;
  }
  from(i: number): UdpAddress {
    this.#check(i);
    return this.recvFrom;
  }
  size(i: number): number {
    this.#check(i);
    return this.msg.length;
  }
  truncated(i: number): boolean {
    return this.size(i) > this.max;
  }
}

class PortableUdpSocket implements UdpSocket {
  readonly id = nextId++;
  readonly #udp: PortableUdp;
  readonly #sock: Socket;
  readonly #handler: UdpHandler;
  readonly #opts: ResolvedUdpOptions;
  #open = true;
  #connected = false;
  #wantDrain = false;
  #received = 0;
  #truncated = 0;
  #sent = 0;
  #drops = 0;
  #sendErrors = 0;

  constructor(udp: PortableUdp, sock: Socket, handler: UdpHandler, opts: ResolvedUdpOptions) {
    this.#udp = udp;
    this.#sock = sock;
    this.#handler = handler;
    this.#opts = opts;
    sock.on('message', (msg: Buffer, rinfo) => this.#onMessage(msg, rinfo.address, rinfo.port, rinfo.family));
    sock.on('error', (err) => this.#error(err));
  }

  #onMessage(msg: Buffer, address: string, port: number, family: string): void {
    if (!this.#open) return;
    const h = this.#handler, max = this.#opts.maxMessageSize, from = this.#udp.from;
    from.address = address;
    from.port = port;
    from.family = family === 'IPv6' ? 'IPv6' : 'IPv4';
    this.#received++;
    if (msg.length > max) this.#truncated++;
    try {
      if (h.onMessages) {
        const batch = this.#udp.batch;
        batch.length = 1;
        batch.msg = msg;
        batch.max = max;
        h.onMessages.call(h, this, batch);
        batch.length = 0;
      } else if (msg.length > max) {
        this.#error(truncatedError(msg.length, max));
      } else if (h.onMessage) {
        h.onMessage.call(h, this, msg, from);
      }
    } catch (err) {
      this.#error(err);
    }
  }

  #error(thrown: unknown): void {
    socketFailed((e) => this.#udp.report(e), this.#handler as { onError?(s: PortableUdpSocket, err: Error): void }, this, thrown);
  }

  get open(): boolean {
    return this.#open;
  }

  get address(): { address: string; port: number; family: 'IPv4' | 'IPv6' } {
    if (!this.#open) return { address: this.#opts.host, port: this.#opts.port, family: isIP(this.#opts.host) === 6 ? 'IPv6' : 'IPv4' };
    const a = this.#sock.address();
    return { address: a.address, port: a.port, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4' };
  }

  get remoteAddress(): { address: string; port: number } | undefined {
    if (!this.#connected || !this.#open) return undefined;
    const a = this.#sock.remoteAddress();
    return { address: a.address, port: a.port };
  }

  send(to: UdpDestination | Uint8Array | string, data?: Uint8Array | string): boolean {
    let dest: UdpDestination | null = null;
    if (data === undefined) {
      if (!this.#connected) throw notConnected();
      data = to as Uint8Array | string;
    } else {
      dest = to as UdpDestination;
      checkDestination(dest.address, dest.port);
    }
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    checkDatagram(bytes.length);
    if (!this.#open) return false;
    const sock = this.#sock;
    const queued = sock.getSendQueueSize();
    if (queued > 0) this.#wantDrain = true;
    if (queued > 0 && queued + bytes.length > this.#opts.sendQueueBytes) {
      this.#drops++;
      return false;
    }
    const done = (err: Error | null): void => {
      if (err) {
        this.#sendErrors++;
        if (this.#open) this.#error(err);
      } else {
        this.#sent++;
      }
      if (this.#wantDrain && this.#open && sock.getSendQueueSize() === 0) {
        this.#wantDrain = false;
        if (this.#handler.onDrain) {
          try {
            this.#handler.onDrain.call(this.#handler, this);
          } catch (e) {
            this.#error(e);
          }
        }
      }
    };
    if (dest === null) sock.send(bytes, done);
    else sock.send(bytes, dest.port, dest.address, done);
    return queued === 0;
  }

  async connect(host: string, port: number): Promise<void> {
    checkDestination(host, port);
    if (this.#connected) this.disconnect(); // dgram refuses to connect twice; the kernel re-associates
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#sock.once('error', onError);
      try {
        this.#sock.connect(port, host, () => {
          this.#sock.off('error', onError);
          resolve();
        });
      } catch (err) {
        this.#sock.off('error', onError);
        reject(err);
      }
    });
    this.#connected = true;
  }

  disconnect(): void {
    if (!this.#open || !this.#connected) return;
    this.#sock.disconnect();
    this.#connected = false;
  }

  addMembership(group: string, iface?: string): void {
    checkDestination(group, 1);
    this.#sock.addMembership(group, iface);
  }

  dropMembership(group: string, iface?: string): void {
    checkDestination(group, 1);
    this.#sock.dropMembership(group, iface);
  }

  setMulticastTTL(ttl: number): void {
    checkMulticastTTL(ttl);
    this.#sock.setMulticastTTL(ttl);
  }

  setMulticastLoopback(flag: boolean): void {
    this.#sock.setMulticastLoopback(flag);
  }

  setMulticastInterface(iface: string): void {
    const scope = checkMulticastInterface(iface, this.address.family);
    // node:dgram takes an unknown interface name silently (as the default): refuse it as the native backend does
    if (scope !== '' && !/^\d+$/.test(scope) && networkInterfaces()[scope] === undefined && !existsSync(`/sys/class/net/${scope}`)) {
      throw new C1mError('ERR_C1M_INVALID_OPTION', `iface: no network interface called "${scope}"`);
    }
    this.#sock.setMulticastInterface(iface);
  }

  get stats(): UdpStats {
    return {
      received: this.#received,
      truncated: this.#truncated,
      sent: this.#sent,
      drops: this.#drops,
      sendErrors: this.#sendErrors,
      queuedBytes: this.#open ? this.#sock.getSendQueueSize() : 0,
      gsoSent: 0,
      groReceived: 0,
    };
  }

  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#udp.sockets.delete(this);
    this.#sock.close();
  }
}

/**
 * A portable reactor's UDP sockets.
 *
 * Threading: the reactor's thread only. Lifetime: as long as the reactor; `closeAll()` at its close.
 */
export class PortableUdp {
  readonly sockets = new Set<PortableUdpSocket>();
  readonly from = new RecvAddress();
  readonly batch = new OneBatch(this.from);
  readonly report: (err: Error) => void;

  constructor(report: (err: Error) => void) {
    this.report = report;
  }

  async open(options: UdpOptions, handler: UdpHandler): Promise<UdpSocket> {
    if (handler === null || typeof handler !== 'object') {
      throw new TypeError('udp(): handler must be an object with onMessage/onMessages/...');
    }
    const o = resolveUdp(options);
    const v6 = isIP(o.host) === 6;
    const sock = createSocket({
      type: v6 ? 'udp6' : 'udp4',
      ipv6Only: o.ipv6Only,
      ...(o.recvBufferSize ? { recvBufferSize: o.recvBufferSize } : {}),
      ...(o.sendBufferSize ? { sendBufferSize: o.sendBufferSize } : {}),
      // understood from Node 22.12 on; older versions ignore it
      ...(o.reusePort ? { reusePort: true } : {}),
    } as Parameters<typeof createSocket>[0]);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        sock.close();
        reject(err);
      };
      sock.once('error', onError);
      sock.bind({ port: o.port, address: o.host, exclusive: true }, () => {
        sock.off('error', onError);
        resolve();
      });
    });
    const s = new PortableUdpSocket(this, sock, handler, { ...o, port: sock.address().port });
    this.sockets.add(s);
    return s;
  }

  closeAll(): void {
    for (const s of [...this.sockets]) s.close();
  }
}
