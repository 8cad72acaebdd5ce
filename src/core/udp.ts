/**
 * UDP pieces every backend shares: options validated once, the address entry codec (the
 * kernel's sockaddr_in / sockaddr_in6 bytes, field offsets from the addon) and the errors. The
 * top-level `udp()` helper and `serve({ udp })` are in the engine layer (src/engine/udp.ts).
 *
 * Hot path: `readPort`/`formatAddress` run only when a handler reads `from.port`/`from.address`;
 * nothing here runs per datagram otherwise.
 */
import { isIP } from 'node:net';
import { C1mError, checkOption } from './errors.js';
import type { UdpOptions } from './udp-types.js';

/** UDP options with every default filled in. */
export type ResolvedUdpOptions = Required<UdpOptions>;

/** Defaults of `UdpOptions` (the others are off / the kernel's). */
export const UDP_DEFAULTS = {
  host: '0.0.0.0',
  maxMessageSize: 65535,
  sendQueueBytes: 1024 * 1024,
} as const;

/** The largest datagram `send` accepts (IPv6's limit; IPv4's, 65,507, is the kernel's to enforce). */
export const MAX_DATAGRAM = 65527;

const isCount = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;

/** Validate UDP options. Throws `ERR_C1M_INVALID_OPTION` with the exact problem. */
export function resolveUdp(o: UdpOptions = {}): ResolvedUdpOptions {
  const r: ResolvedUdpOptions = {
    port: o.port ?? 0,
    host: o.host ?? UDP_DEFAULTS.host,
    reusePort: o.reusePort ?? false,
    ipv6Only: o.ipv6Only ?? false,
    recvBufferSize: o.recvBufferSize ?? 0,
    sendBufferSize: o.sendBufferSize ?? 0,
    maxMessageSize: o.maxMessageSize ?? UDP_DEFAULTS.maxMessageSize,
    sendQueueBytes: o.sendQueueBytes ?? UDP_DEFAULTS.sendQueueBytes,
    gso: o.gso ?? true,
    gro: o.gro ?? true,
  };
  checkOption(isCount(r.port) && r.port <= 65535, 'port', 'an integer from 0 to 65535', r.port);
  checkOption(isIP(r.host) !== 0, 'host', 'an IPv4 or IPv6 address', r.host);
  checkOption(typeof r.reusePort === 'boolean', 'reusePort', 'a boolean', r.reusePort);
  checkOption(typeof r.ipv6Only === 'boolean', 'ipv6Only', 'a boolean', r.ipv6Only);
  checkOption(isCount(r.recvBufferSize) && r.recvBufferSize <= 0x7fffffff, 'recvBufferSize', 'a non-negative integer below 2 GiB (0: the default)', r.recvBufferSize);
  checkOption(isCount(r.sendBufferSize) && r.sendBufferSize <= 0x7fffffff, 'sendBufferSize', 'a non-negative integer below 2 GiB (0: the default)', r.sendBufferSize);
  checkOption(isCount(r.maxMessageSize, 1) && r.maxMessageSize <= 65535, 'maxMessageSize', 'an integer from 1 to 65535', r.maxMessageSize);
  checkOption(isCount(r.sendQueueBytes) && r.sendQueueBytes <= 0x7fffffff, 'sendQueueBytes', 'a non-negative integer below 2 GiB', r.sendQueueBytes);
  checkOption(typeof r.gso === 'boolean', 'gso', 'a boolean', r.gso);
  checkOption(typeof r.gro === 'boolean', 'gro', 'a boolean', r.gro);
  return r;
}

/** Check a destination's port and address (an IP, not a name). */
export function checkDestination(address: unknown, port: unknown): void {
  checkOption(typeof address === 'string' && isIP(address) !== 0, 'address', 'an IPv4 or IPv6 address (resolve names first)', address);
  checkOption(isCount(port, 1) && port <= 65535, 'port', 'an integer from 1 to 65535', port);
}

/** Check a multicast TTL (hops): an integer from 0 to 255. */
export function checkMulticastTTL(ttl: unknown): asserts ttl is number {
  checkOption(Number.isInteger(ttl) && (ttl as number) >= 0 && (ttl as number) <= 255, 'ttl', 'an integer from 0 to 255', ttl);
}

/**
 * Check `setMulticastInterface`'s argument for a socket of `family`: an IPv4 socket takes a local
 * IPv4 address; an IPv6 socket takes '::' (the default) or '::%SCOPE' (an interface name or
 * index). Returns the scope of an IPv6 one ('' for '::').
 */
export function checkMulticastInterface(iface: unknown, family: 'IPv4' | 'IPv6'): string {
  if (family === 'IPv4') {
    checkOption(typeof iface === 'string' && isIP(iface) === 4, 'iface', 'the IPv4 address of a local interface (an IPv4 socket)', iface);
    return '';
  }
  const m = typeof iface === 'string' ? /^::(?:%([\w.-]{1,15}))?$/.exec(iface) : null;
  checkOption(m !== null, 'iface', "'::' or '::%NAME' / '::%INDEX' naming an interface (an IPv6 socket)", iface);
  return m![1] ?? '';
}

/** `ERR_C1M_UDP_MESSAGE_SIZE` unless `len` fits one datagram. */
export function checkDatagram(len: number): void {
  if (len > MAX_DATAGRAM) {
    throw new C1mError('ERR_C1M_UDP_MESSAGE_SIZE', `a datagram carries at most ${MAX_DATAGRAM} bytes, got ${len}`);
  }
}

/** The error `onError` gets for a datagram cut to `maxMessageSize`. */
export function truncatedError(size: number, max: number): C1mError & { size: number } {
  const err = new C1mError('ERR_C1M_UDP_TRUNCATED', `a ${size}-byte datagram was cut to maxMessageSize (${max} bytes) and not delivered to onMessage`) as C1mError & { size: number };
  err.size = size;
  return err;
}

/** `ERR_C1M_UDP_NOT_CONNECTED`: `send(data)` on a socket without a peer. */
export function notConnected(): C1mError {
  return new C1mError('ERR_C1M_UDP_NOT_CONNECTED', 'send(data) needs a connected socket: call connect() or pass a destination');
}

/** Byte offsets and values of the kernel's socket addresses (exported by the addon). */
export interface SockaddrLayout {
  UDP_ADDR_SIZE: number; SA_FAMILY: number; SA_FAMILY_SIZE: number; AF_INET: number; AF_INET6: number;
  SIN_PORT: number; SIN_ADDR: number; SIN6_PORT: number; SIN6_ADDR: number; SIN6_SCOPE_ID: number;
}

/** The address family of the entry at `off` (0: none). */
export function readFamily(k: SockaddrLayout, b: Uint8Array, off: number): number {
  // sa_family_t is a host-order u16 (little-endian on every Linux target c1m builds for: x86, arm).
  return b[off + k.SA_FAMILY]! | (b[off + k.SA_FAMILY + 1]! << 8);
}

/** The port of the entry at `off` (network order in the entry). */
export function readPort(k: SockaddrLayout, b: Uint8Array, off: number): number {
  const p = off + (readFamily(k, b, off) === k.AF_INET6 ? k.SIN6_PORT : k.SIN_PORT);
  return (b[p]! << 8) | b[p + 1]!;
}

/** The IP address of the entry at `off`, formatted as Node formats it (RFC 5952 for IPv6). */
export function formatAddress(k: SockaddrLayout, b: Uint8Array, off: number): string {
  const fam = readFamily(k, b, off);
  if (fam === k.AF_INET) {
    const a = off + k.SIN_ADDR;
    return `${b[a]}.${b[a + 1]}.${b[a + 2]}.${b[a + 3]}`;
  }
  if (fam !== k.AF_INET6) return '';
  const a = off + k.SIN6_ADDR;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[a + 2 * i]! << 8) | b[a + 2 * i + 1]!);
  // IPv4-mapped (::ffff:a.b.c.d)
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${b[a + 12]}.${b[a + 13]}.${b[a + 14]}.${b[a + 15]}`;
  }
  // the longest run of two or more zero groups becomes "::" (the first one on a tie)
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (from: number, to: number): string => g.slice(from, to).map((x) => x.toString(16)).join(':');
  let s = best < 0 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLen, 8)}`;
  const scope = b[off + k.SIN6_SCOPE_ID]! | (b[off + k.SIN6_SCOPE_ID + 1]! << 8) | (b[off + k.SIN6_SCOPE_ID + 2]! << 16) | (b[off + k.SIN6_SCOPE_ID + 3]! << 24);
  if (scope !== 0) s += `%${scope >>> 0}`;
  return s;
}
