/**
 * `authorize` again on open connections (`authorizeInterval`): every interval, the hook runs
 * once more for each open WebSocket with the grant it holds now and the upgrade request it came
 * with, and a connection it now refuses is closed (4003), as it would be refused at a connect:
 * a ban, a removed account or a revoked session reach connections already open, without a
 * token expiry or an operator's disconnect.
 *
 * Model: a round walks the connections filed when the round starts, at most `CONCURRENCY`
 * checks in flight (the hook is often a call to a backend: a round of 19,000 must not be
 * 19,000 requests at once; a pool, so one slow check holds one slot, not a batch); a round
 * that outlasts the interval delays the next one, never overlaps it. A check that throws,
 * rejects or does not settle within `min(interval, 10 s)` keeps the connection (a backend that
 * is down or hangs must not close every client, nor stop the rounds) and is counted.
 *
 * Memory: one `IdMap` entry per open WebSocket (its handle and its request, which the gateway
 * otherwise drops once the token is verified), only when the option is set.
 *
 * Threading: the reactor's thread. The timer is unref'd and runs only while something is filed.
 */
import { IdMap } from '../../core/index.js';

/** Most checks of one round in flight at once. */
const CONCURRENCY = 64;
/** Longest a check may take (at most the interval): then it counts as failed. */
const CHECK_TIMEOUT_MS = 10_000;
/** Longest interval a Node timer takes (2^31 - 1 ms, ~24.8 days). */
const MAX_INTERVAL_MS = 2 ** 31 - 1;

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
  readonly #failed: () => void;
  readonly #timeoutMs: number;
  readonly #watched = new IdMap<Watched<W>>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  /**
   * Every `intervalMs` (> 0, at most 2^31 - 1), `check` each open WebSocket filed; `refused`
   * those it says no to; `failed` once per check that threw, rejected or timed out. Errors:
   * throws a RangeError for any other interval.
   */
  constructor(intervalMs: number, check: (ws: W, req: AuthorizeRequest) => boolean | Promise<boolean>, refused: (ws: W) => void, failed: () => void = () => {}) {
    if (!(intervalMs > 0 && intervalMs <= MAX_INTERVAL_MS)) throw new RangeError(`gateway: authorizeInterval must be a number of ms > 0 and <= ${MAX_INTERVAL_MS}, not ${intervalMs}`);
    this.#intervalMs = intervalMs;
    this.#check = check;
    this.#refused = refused;
    this.#failed = failed;
    this.#timeoutMs = Math.min(intervalMs, CHECK_TIMEOUT_MS);
  }

  /** File `ws` (admitted, with the request it came with). Nothing after `stop`. */
  add(ws: W, req: AuthorizeRequest): void {
    if (this.#stopped) return;
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

  /** Stop checking for good (the gateway is shutting down). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => void this.#round(), this.#intervalMs);
    this.#timer.unref();
  }

  async #round(): Promise<void> {
    const all = Array.from(this.#watched.entries(), ([, w]) => w);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < all.length && !this.#stopped) await this.#one(all[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, all.length) }, worker));
    if (this.#stopped) return;
    if (this.#watched.size > 0) this.#schedule();
    else this.#timer = undefined;
  }

  async #one({ ws, req }: Watched<W>): Promise<void> {
    if (ws.readyState !== 'open' || !this.#watched.has(ws.id)) return; // closed since the round began
    let timer: NodeJS.Timeout | undefined;
    try {
      const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), this.#timeoutMs)));
      const ok = await Promise.race([this.#check(ws, req), late]);
      if (!ok && ws.readyState === 'open' && !this.#stopped) this.#refused(ws);
    } catch {
      this.#failed();
    } finally {
      clearTimeout(timer);
    }
  }
}
