/**
 * `authorize` again on open connections (`authorizeInterval`): every interval, the hook runs
 * once more for each open WebSocket with the grant it holds now and the upgrade request it came
 * with, and a connection it now refuses is closed (4003), as it would be refused at a connect:
 * a ban, a removed account or a revoked session reach connections already open, without a
 * token expiry or an operator's disconnect.
 *
 * Model: a round walks the connections filed when the round starts, at most `CONCURRENCY`
 * checks in flight (the hook is often a call to a backend: a round of 19,000 must not be
 * 19,000 requests at once); a round that outlasts the interval delays the next one, never
 * overlaps it. A hook that throws or rejects keeps the connection (a backend that is down must
 * not close every client) and is counted.
 *
 * Memory: one `IdMap` entry per open WebSocket (its handle and its request, which the gateway
 * otherwise drops once the token is verified), only when the option is set.
 *
 * Threading: the reactor's thread. The timer is unref'd and runs only while something is filed.
 */
import { IdMap } from '../../core/index.js';

/** Most checks of one round in flight at once. */
const CONCURRENCY = 64;

/** The upgrade request `authorize` sees. */
export interface AuthorizeRequest {
  target: string;
  headers: readonly (readonly [string, string])[];
}

interface Watched<W> {
  ws: W;
  req: AuthorizeRequest;
}

export class Reauthorizer<W extends { readonly id: number; readonly readyState: string }> {
  readonly #intervalMs: number;
  readonly #check: (ws: W, req: AuthorizeRequest) => boolean | Promise<boolean>;
  readonly #refused: (ws: W) => void;
  readonly #watched = new IdMap<Watched<W>>();
  #timer: NodeJS.Timeout | undefined;
  /** Checks that threw or rejected (the connection was kept). */
  errors = 0;

  /**
   * Every `intervalMs` (> 0), `check` each open WebSocket filed; `refused` those it says no to.
   * Errors: throws a RangeError for an interval that is not a positive finite number.
   */
  constructor(intervalMs: number, check: (ws: W, req: AuthorizeRequest) => boolean | Promise<boolean>, refused: (ws: W) => void) {
    if (!(intervalMs > 0 && Number.isFinite(intervalMs))) throw new RangeError(`gateway: authorizeInterval must be a number of ms > 0, not ${intervalMs}`);
    this.#intervalMs = intervalMs;
    this.#check = check;
    this.#refused = refused;
  }

  /** File `ws` (admitted, with the request it came with). */
  add(ws: W, req: AuthorizeRequest): void {
    this.#watched.set(ws.id, { ws, req });
    if (this.#timer === undefined) this.#schedule();
  }

  /** Unfile the connection `id` (closed). */
  remove(id: number): void {
    this.#watched.delete(id);
  }

  /** Connections filed. */
  get size(): number {
    return this.#watched.size;
  }

  /** Stop checking (the gateway is shutting down). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => void this.#round(), this.#intervalMs);
    this.#timer.unref();
  }

  async #round(): Promise<void> {
    const all = Array.from(this.#watched.entries(), ([, w]) => w);
    for (let i = 0; i < all.length; i += CONCURRENCY) {
      await Promise.all(all.slice(i, i + CONCURRENCY).map((w) => this.#one(w)));
    }
    if (this.#timer === undefined) return; // stopped meanwhile
    if (this.#watched.size > 0) this.#schedule();
    else this.#timer = undefined;
  }

  async #one({ ws, req }: Watched<W>): Promise<void> {
    if (ws.readyState !== 'open' || !this.#watched.has(ws.id)) return; // closed since the round began
    try {
      if (!(await this.#check(ws, req)) && ws.readyState === 'open') this.#refused(ws);
    } catch {
      this.errors++;
    }
  }
}
