/**
 * The gateway's admin listener (`--admin-port`): publish, `/metrics`, `/stats` and
 * `/dashboard` on a port of their own, so that the public port serves only `/ws`.
 *
 * The model: every gateway (one per reactor: each worker thread or prefork process, or the one
 * of a single process) opens its own listener on the admin port with `SO_REUSEPORT`, on a
 * reactor of its own beside the one that serves WebSockets, as the public port is served in
 * prefork. Not one listener in the supervisor: a publish needs a gateway (its token checks,
 * its NATS connection, and standalone its subscribers), which only the workers have, and
 * `/metrics` from any worker is already every worker's registry summed (engine/gather.ts),
 * exactly as on the public port. A second reactor rather than a second listener on the
 * WebSocket reactor: that one's handler would have to tell every connection's listener apart
 * (an `OPEN` record per accept on the hot path); the admin reactor carries only operations
 * traffic and its own handler.
 *
 * Invariants: the admin reactor is counted in the engine metrics (its connections are the
 * publishers'), and closes when the gateway shuts down.
 *
 * Threading: created and closed on the gateway's thread.
 */
import type { Handler, ListenAddress, Reactor } from '../../core/index.js';
import { createReactor, trackReactor, untrackReactor } from '../../engine/index.js';

/** How long admin connections get to finish when the gateway shuts down. */
const ADMIN_GRACE_MS = 2000;

/** An open admin listener. */
export interface AdminListener {
  readonly address: ListenAddress;
  /** Stop accepting and close its connections (gracefully, within 2 s). */
  close(): Promise<void>;
}

/**
 * Whether `port`/`host` are a usable admin address: null when they are, else the reason.
 * Port 0 is refused: every worker must bind the same port, and nothing would tell which one.
 */
export function checkAdminAddress(port: unknown, host: unknown): string | null {
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) return `adminPort must be a port number from 1 to 65535, not ${JSON.stringify(port)}`;
  if (typeof host !== 'string' || host === '') return `adminHost must be an address, not ${JSON.stringify(host)}`;
  return null;
}

/**
 * Listen on `host:port` (with `SO_REUSEPORT`, shared by every worker) with `handler` on a
 * reactor of its own, on the default backend (native when the addon loads: the gateway's
 * options do not say which backend its WebSocket reactor got). Errors: rejects with the bind's system error (`EADDRINUSE`,
 * `EADDRNOTAVAIL`, ...) prefixed with the address; nothing is left open then.
 */
export async function openAdmin(handler: Handler, port: number, host: string): Promise<AdminListener> {
  const reactor: Reactor = createReactor(handler);
  let address: ListenAddress;
  try {
    address = await reactor.listen({ port, host, reusePort: true });
  } catch (err) {
    await reactor.close(0);
    const e = err as Error;
    e.message = `admin port ${host}:${port}: ${e.message}`;
    throw e;
  }
  trackReactor(reactor);
  return {
    address,
    close: () => reactor.close(ADMIN_GRACE_MS).finally(() => untrackReactor(reactor)),
  };
}
