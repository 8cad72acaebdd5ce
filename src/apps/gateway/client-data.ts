/**
 * What a gateway WebSocket's `data` holds: `Pending` until its token is verified, then its
 * `Grant`; an open gateway's clients hold nothing once open (`undefined` stands for the shared
 * `OPEN_GRANT`), so they cost no JS object and no `data` entry.
 *
 * Threading: one gateway (one reactor thread), like the WebSockets whose data it is.
 */
import { OPEN_GRANT, type Grant } from './auth.js';
import type { ClientOp } from './protocol.js';

/** Most messages a client may send before its token is verified. */
export const MAX_EARLY_MESSAGES = 16;

/**
 * A WebSocket whose token is not verified yet (its `data` until then): the token, the request
 * (for `authorize`), what the URL asked, and the messages that arrived meanwhile.
 */
export class Pending {
  early: (string | Uint8Array)[] | null = null;
  constructor(
    readonly token: string | undefined,
    readonly req: { target: string; headers: readonly (readonly [string, string])[] } | null,
    readonly querySub: Extract<ClientOp, { op: 'sub' }> | null,
  ) {}
}

/** A gateway WebSocket's `data` (see the module comment). */
export type ClientData = Pending | Grant | undefined;

/** The grant of a WebSocket's `data`, or null while its token is being verified. */
export const grantOf = (d: ClientData): Grant | null => (d === undefined ? OPEN_GRANT : d instanceof Pending ? null : d);
