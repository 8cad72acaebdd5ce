/**
 * Engine options: defaults and validation, done once at the boundary.
 */
import { isIP } from 'node:net';
import { checkOption } from './errors.js';
import type { ConnectOptions, Connection, EngineOptions, ServerOptions } from './types.js';

/** Engine options with every default filled in. */
export interface ResolvedOptions {
  backend: 'auto' | 'native' | 'portable';
  highWaterMark: number;
  maxOutboundBytes: number;
  maxInboundBytes: number;
  idleTimeout: number;
  timerResolution: number;
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

function defaultOnError(err: Error): void {
  process.stderr.write(`c1m: ${err.stack ?? err.message}\n`);
}

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
    noDelay: o.noDelay ?? true,
    onError: o.onError ?? defaultOnError,
  };
  checkOption(isCount(r.highWaterMark, 1), 'highWaterMark', 'a positive integer', r.highWaterMark);
  checkOption(isCount(r.maxOutboundBytes, 1), 'maxOutboundBytes', 'a positive integer', r.maxOutboundBytes);
  checkOption(isCount(r.maxInboundBytes, 1) && r.maxInboundBytes <= 0x7fffffff, 'maxInboundBytes', 'a positive integer below 2 GiB', r.maxInboundBytes);
  checkOption(isCount(r.idleTimeout), 'idleTimeout', 'a non-negative integer (ms)', r.idleTimeout);
  checkOption(isCount(r.timerResolution, 10) && r.timerResolution <= 60_000, 'timerResolution', 'an integer from 10 to 60000 (ms)', r.timerResolution);
  checkOption(typeof r.noDelay === 'boolean', 'noDelay', 'a boolean', r.noDelay);
  checkOption(typeof r.onError === 'function', 'onError', 'a function', r.onError);
  return r;
}

/** Validate listen options. */
export function resolveListen(o: Pick<ServerOptions, 'port' | 'host' | 'backlog' | 'reusePort'>): Required<Pick<ServerOptions, 'port' | 'host' | 'backlog' | 'reusePort'>> {
  const r = { port: o.port, host: o.host ?? '0.0.0.0', backlog: o.backlog ?? DEFAULTS.backlog, reusePort: o.reusePort ?? false };
  checkOption(isCount(r.port) && r.port <= 65535, 'port', 'an integer from 0 to 65535', r.port);
  checkOption(isIP(r.host) !== 0, 'host', 'an IPv4 or IPv6 address', r.host);
  checkOption(isCount(r.backlog, 1), 'backlog', 'a positive integer', r.backlog);
  checkOption(typeof r.reusePort === 'boolean', 'reusePort', 'a boolean', r.reusePort);
  return r;
}

/** Validate connect options. */
export function resolveConnect(o: Pick<ConnectOptions, 'port' | 'host' | 'localAddress'>): { port: number; host: string; localAddress: string | undefined } {
  const r = { port: o.port, host: o.host ?? '127.0.0.1', localAddress: o.localAddress };
  checkOption(isCount(r.port, 1) && r.port <= 65535, 'port', 'an integer from 1 to 65535', r.port);
  checkOption(isIP(r.host) !== 0, 'host', 'an IPv4 or IPv6 address (resolve names first)', r.host);
  checkOption(r.localAddress === undefined || isIP(r.localAddress) === isIP(r.host), 'localAddress', 'an IP address of the same family as host', r.localAddress);
  return r;
}

/** Encode a write argument: strings become UTF-8 bytes. */
export function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}
