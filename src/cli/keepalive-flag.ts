/**
 * `--tcp-keepalive IDLE[,INTERVAL[,COUNT]]` (`c1m serve`, `c1m bench million`): the flag's
 * syntax only; the ranges are checked by the engine (`tcpKeepAlive`), which names the field.
 */
import type { TcpKeepAlive } from '../index.js';

/** What both commands say about a value `parseKeepAlive` refuses. */
export const KEEPALIVE_SYNTAX = '--tcp-keepalive takes IDLE[,INTERVAL[,COUNT]], non-negative integers (seconds, seconds, probes)';

/** The flag's value as `tcpKeepAlive`; null when it is not 1 to 3 comma-separated integers. */
export function parseKeepAlive(s: string): TcpKeepAlive | null {
  const parts = s.split(',').map((p) => p.trim());
  if (parts.length > 3 || !parts.every((p) => /^\d+$/.test(p))) return null;
  const [idle, interval, count] = parts.map(Number);
  return { idle: idle!, ...(interval !== undefined ? { interval } : {}), ...(count !== undefined ? { count } : {}) };
}
