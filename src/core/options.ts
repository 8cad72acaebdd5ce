/**
 * Engine options: defaults and validation, done once at the boundary.
 */
import { isIP } from 'node:net';
import { checkOption } from './errors.js';
import type { ConnectOptions, Connection, EngineOptions, Pem, ServerOptions, TcpKeepAlive, TlsConnectOptions, TlsServerOptions } from './types.js';

/** Engine options with every default filled in. */
export interface ResolvedOptions {
  backend: 'auto' | 'native' | 'portable';
  highWaterMark: number;
  maxOutboundBytes: number;
  maxInboundBytes: number;
  idleTimeout: number;
  timerResolution: number;
  pollInterval: number;
  noDelay: boolean;
  onError: (err: Error, conn?: Connection) => void;
}

export const DEFAULTS = {
  highWaterMark: 64 * 1024,
  maxOutboundBytes: 16 * 1024 * 1024,
  maxInboundBytes: 1024 * 1024,
  idleTimeout: 0,
  timerResolution: 250,
  backlog: 4096,
} as const;

/**
 * The default `onError`: each error to stderr, but at most one per error code per `everyMs`
 * (a server facing scanners or aborting clients can see thousands of failed handshakes a
 * second, and a write per error would cost more than the handshakes); the ones held back are
 * counted and the count goes out with the next line of that code. Codes are few (ERR_C1M_* and
 * errno names), so the table stays small. `now` and `write` are for tests.
 */
export function errorPrinter(everyMs = 1000, now: () => number = Date.now, write: (line: string) => void = (l) => void process.stderr.write(l)): (err: Error) => void {
  const last = new Map<string, { at: number; held: number }>();
  return (err: Error): void => {
    const code = (err as { code?: unknown }).code;
    const key = typeof code === 'string' ? code : err.name;
    const t = now();
    const e = last.get(key);
    if (e !== undefined && t - e.at < everyMs) {
      e.held++;
      return;
    }
    const held = e !== undefined && e.held > 0 ? ` [${e.held} more ${key} not shown since the last one]` : '';
    last.set(key, { at: t, held: 0 });
    write(`c1m: ${err.stack ?? err.message}${held}\n`);
  };
}

const defaultOnError = errorPrinter();

const isCount = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;

/** Validate and fill engine options. Throws `ERR_C1M_INVALID_OPTION` with the exact problem. */
export function resolveOptions(o: EngineOptions = {}): ResolvedOptions {
  const backend = o.backend ?? 'auto';
  checkOption(backend === 'auto' || backend === 'native' || backend === 'portable', 'backend', "'auto', 'native' or 'portable'", backend);
  const r: ResolvedOptions = {
    backend,
    highWaterMark: o.highWaterMark ?? DEFAULTS.highWaterMark,
    maxOutboundBytes: o.maxOutboundBytes ?? DEFAULTS.maxOutboundBytes,
    maxInboundBytes: o.maxInboundBytes ?? DEFAULTS.maxInboundBytes,
    idleTimeout: o.idleTimeout ?? DEFAULTS.idleTimeout,
    timerResolution: o.timerResolution ?? DEFAULTS.timerResolution,
    pollInterval: o.pollInterval ?? 0,
    noDelay: o.noDelay ?? true,
    onError: o.onError ?? defaultOnError,
  };
  checkOption(isCount(r.highWaterMark, 1), 'highWaterMark', 'a positive integer', r.highWaterMark);
  checkOption(isCount(r.maxOutboundBytes, 1), 'maxOutboundBytes', 'a positive integer', r.maxOutboundBytes);
  checkOption(isCount(r.maxInboundBytes, 1) && r.maxInboundBytes <= 0x7fffffff, 'maxInboundBytes', 'a positive integer below 2 GiB', r.maxInboundBytes);
  checkOption(isCount(r.idleTimeout), 'idleTimeout', 'a non-negative integer (ms)', r.idleTimeout);
  checkOption(isCount(r.timerResolution, 10) && r.timerResolution <= 60_000, 'timerResolution', 'an integer from 10 to 60000 (ms)', r.timerResolution);
  checkOption(isCount(r.pollInterval) && r.pollInterval <= 60_000, 'pollInterval', 'an integer from 0 to 60000 (ms)', r.pollInterval);
  checkOption(typeof r.noDelay === 'boolean', 'noDelay', 'a boolean', r.noDelay);
  checkOption(typeof r.onError === 'function', 'onError', 'a function', r.onError);
  return r;
}

const KEEPALIVE_DEFAULT_COUNT = 3;

/** Validate `tcpKeepAlive` (see `TcpKeepAlive`) and fill its defaults; undefined: off. */
export function resolveKeepAlive(v: number | TcpKeepAlive | undefined): Required<TcpKeepAlive> | undefined {
  if (v === undefined) return undefined;
  const o = typeof v === 'number' ? { idle: v } : v;
  checkOption(typeof o === 'object' && o !== null, 'tcpKeepAlive', 'a number of seconds or { idle, interval?, count? }', v);
  const idle = o.idle;
  checkOption(isCount(idle, 1) && idle <= 32767, 'tcpKeepAlive.idle', 'an integer from 1 to 32767 (seconds)', idle);
  const interval = o.interval ?? Math.ceil(idle / 3);
  checkOption(isCount(interval, 1) && interval <= 32767, 'tcpKeepAlive.interval', 'an integer from 1 to 32767 (seconds)', interval);
  const count = o.count ?? KEEPALIVE_DEFAULT_COUNT;
  checkOption(isCount(count, 1) && count <= 127, 'tcpKeepAlive.count', 'an integer from 1 to 127', count);
  return { idle, interval, count };
}

/** Listen options, validated and filled: plain data, passed on to worker processes and threads as is. */
export interface ListenPlan {
  port: number;
  host: string;
  backlog: number;
  reusePort: boolean;
  deferAccept: number;
  tcpKeepAlive?: Required<TcpKeepAlive>;
}

/** Validate listen options. */
export function resolveListen(o: Pick<ServerOptions, 'port' | 'host' | 'backlog' | 'reusePort' | 'deferAccept' | 'tcpKeepAlive'>): ListenPlan {
  const r: ListenPlan = { port: o.port, host: o.host ?? '0.0.0.0', backlog: o.backlog ?? DEFAULTS.backlog, reusePort: o.reusePort ?? false, deferAccept: o.deferAccept ?? 0 };
  const ka = resolveKeepAlive(o.tcpKeepAlive);
  if (ka !== undefined) r.tcpKeepAlive = ka;
  checkOption(isCount(r.port) && r.port <= 65535, 'port', 'an integer from 0 to 65535', r.port);
  checkOption(isIP(r.host) !== 0, 'host', 'an IPv4 or IPv6 address', r.host);
  checkOption(isCount(r.backlog, 1), 'backlog', 'a positive integer', r.backlog);
  checkOption(typeof r.reusePort === 'boolean', 'reusePort', 'a boolean', r.reusePort);
  checkOption(isCount(r.deferAccept) && r.deferAccept <= 3600, 'deferAccept', 'an integer from 0 to 3600 (seconds)', r.deferAccept);
  return r;
}

/** Address strings connects used, with their `isIP` family (bounded: see `ipFamily`). */
const connectFamilies = new Map<string, number>();
const CONNECT_FAMILIES_MAX = 1024;

/** `isIP(s)` of a string a connect uses, remembered: a client opening many connections to one
 *  host from a few source addresses would otherwise run node's address regexes 3 times per
 *  connect. At most CONNECT_FAMILIES_MAX strings are kept (then it just calls `isIP`). */
function ipFamily(s: unknown): number {
  if (typeof s !== 'string') return 0;
  let f = connectFamilies.get(s);
  if (f === undefined) {
    f = isIP(s);
    if (connectFamilies.size < CONNECT_FAMILIES_MAX) connectFamilies.set(s, f);
  }
  return f;
}

/** Validate connect options. */
export function resolveConnect(o: Pick<ConnectOptions, 'port' | 'host' | 'localAddress' | 'tcpKeepAlive'>): { port: number; host: string; localAddress: string | undefined; tcpKeepAlive: Required<TcpKeepAlive> | undefined } {
  const r = { port: o.port, host: o.host ?? '127.0.0.1', localAddress: o.localAddress, tcpKeepAlive: resolveKeepAlive(o.tcpKeepAlive) };
  checkOption(isCount(r.port, 1) && r.port <= 65535, 'port', 'an integer from 1 to 65535', r.port);
  const family = ipFamily(r.host);
  checkOption(family !== 0, 'host', 'an IPv4 or IPv6 address (resolve names first)', r.host);
  checkOption(r.localAddress === undefined || ipFamily(r.localAddress) === family, 'localAddress', 'an IP address of the same family as host', r.localAddress);
  return r;
}

/** Encode a write argument: strings become UTF-8 bytes. */
export function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** TLS options as both backends use them: PEM as bytes, ALPN in wire format, defaults filled. */
export interface ResolvedTls {
  server: boolean;
  cert: Buffer | undefined;
  key: Buffer | undefined;
  ca: Buffer | undefined;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  /** 0x0303 (TLS 1.2) or 0x0304 (TLS 1.3). */
  minVersion: number;
  alpn: Buffer | undefined;
  alpnList: string[] | undefined;
  handshakeMs: number;
  sni: [name: string, cert: Buffer, key: Buffer][];
  servername: string | undefined;
  /** Server: 80 bytes of session ticket keys, or undefined for random ones. */
  ticketKeys?: Buffer | undefined;
  /** Client: keep and offer sessions (`TlsConnectOptions.resume`); false for servers. */
  resume: boolean;
  /** `ciphers` as given (an OpenSSL cipher string), or undefined for c1m's defaults. */
  ciphers: string | undefined;
}

/** The length of `TlsServerOptions.ticketKeys` (OpenSSL's SSL_CTRL_SET_TLSEXT_TICKET_KEYS). */
export const TICKET_KEYS_BYTES = 80;

const isPem = (v: unknown): v is Pem => typeof v === 'string' || v instanceof Uint8Array;
const pemBytes = (v: Pem | undefined): Buffer | undefined => (v === undefined ? undefined : typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v));

function alpnWire(list: readonly string[] | undefined, name: string): Buffer | undefined {
  if (list === undefined) return undefined;
  checkOption(Array.isArray(list) && list.length > 0, name, 'a non-empty array of protocol names', list);
  const parts: Buffer[] = [];
  for (const p of list) {
    const b = Buffer.from(String(p), 'utf8');
    checkOption(typeof p === 'string' && b.length >= 1 && b.length <= 255, name, 'protocol names of 1 to 255 bytes', p);
    parts.push(Buffer.from([b.length]), b);
  }
  return Buffer.concat(parts);
}

function common(o: TlsServerOptions | TlsConnectOptions, server: boolean): Omit<ResolvedTls, 'sni' | 'servername' | 'resume'> {
  checkOption(typeof o === 'object' && o !== null, 'tls', 'an object', o);
  for (const k of ['cert', 'key', 'ca'] as const) checkOption(o[k] === undefined || isPem(o[k]), `tls.${k}`, 'PEM text (a string or bytes)', typeof o[k]);
  const minVersion = o.minVersion ?? 'TLSv1.2';
  checkOption(minVersion === 'TLSv1.2' || minVersion === 'TLSv1.3', 'tls.minVersion', "'TLSv1.2' or 'TLSv1.3'", minVersion);
  const handshakeMs = o.handshakeTimeout ?? 10_000;
  checkOption(isCount(handshakeMs) && handshakeMs <= 0xffffffff, 'tls.handshakeTimeout', 'a non-negative integer (ms)', handshakeMs);
  const rejectUnauthorized = o.rejectUnauthorized ?? true;
  checkOption(typeof rejectUnauthorized === 'boolean', 'tls.rejectUnauthorized', 'a boolean', rejectUnauthorized);
  const ciphers = o.ciphers;
  checkOption(ciphers === undefined || (typeof ciphers === 'string' && ciphers.length > 0 && ciphers.length < 4000 && !ciphers.includes('\0')), 'tls.ciphers', 'an OpenSSL cipher string', ciphers);
  const requestCert = server ? ((o as TlsServerOptions).requestCert ?? false) : false;
  checkOption(typeof requestCert === 'boolean', 'tls.requestCert', 'a boolean', requestCert);
  return {
    server, cert: pemBytes(o.cert), key: pemBytes(o.key), ca: pemBytes(o.ca), requestCert, rejectUnauthorized,
    minVersion: minVersion === 'TLSv1.3' ? 0x0304 : 0x0303, alpn: alpnWire(o.alpn, 'tls.alpn'),
    alpnList: o.alpn ? [...o.alpn] : undefined, handshakeMs, ciphers,
  };
}

/** Validate `listen({ tls })`. Throws `ERR_C1M_INVALID_OPTION` naming the problem. */
export function resolveTlsServer(o: TlsServerOptions): ResolvedTls {
  const r = common(o, true);
  checkOption(r.cert !== undefined && r.key !== undefined, 'tls', 'an object with cert and key (PEM)', Object.keys(o ?? {}));
  const sni: ResolvedTls['sni'] = [];
  if (o.sni !== undefined) {
    checkOption(typeof o.sni === 'object' && o.sni !== null, 'tls.sni', 'an object of { cert, key } by host name', o.sni);
    for (const [name, v] of Object.entries(o.sni)) {
      checkOption(name.length > 0 && name.length < 256, 'tls.sni', 'host names of 1 to 255 characters', name);
      checkOption(typeof v === 'object' && v !== null && isPem(v.cert) && isPem(v.key), `tls.sni.${name}`, 'an object with cert and key (PEM)', typeof v);
      sni.push([name, pemBytes(v.cert)!, pemBytes(v.key)!]);
    }
  }
  const tk = o.ticketKeys;
  checkOption(tk === undefined || (tk instanceof Uint8Array && tk.length === TICKET_KEYS_BYTES), 'tls.ticketKeys', `${TICKET_KEYS_BYTES} bytes (a Uint8Array)`, tk instanceof Uint8Array ? `${tk.length} bytes` : typeof tk);
  return { ...r, sni, servername: undefined, resume: false, ticketKeys: tk === undefined ? undefined : Buffer.from(tk) };
}

/** Validate `connect({ tls })`; `host` is the default server name. */
export function resolveTlsConnect(o: TlsConnectOptions, host: string): ResolvedTls {
  const r = common(o, false);
  checkOption((r.cert === undefined) === (r.key === undefined), 'tls', 'cert and key together (or neither)', Object.keys(o));
  const servername = o.servername ?? host;
  checkOption(typeof servername === 'string' && servername.length < 256, 'tls.servername', 'a host name', servername);
  const resume = o.resume ?? true;
  checkOption(typeof resume === 'boolean', 'tls.resume', 'a boolean', resume);
  return { ...r, sni: [], servername, resume };
}
