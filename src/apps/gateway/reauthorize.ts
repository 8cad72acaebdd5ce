/**
 * `authorize` again on open connections (`authorizeInterval`): every interval, the hook runs
 * once more for each open WebSocket with the grant it holds now and the upgrade request it came
 * with, and a connection it now refuses is closed (4003), as it would be refused at a connect:
 * a ban, a removed account or a revoked session reach connections already open, without a
 * token expiry or an operator's disconnect.
 *
 * Model: a round walks the connections filed when the round starts; at most `CONCURRENCY`
 * checks are in flight, ever (the hook is often a call to a backend: a round of 19,000 must not
 * be 19,000 requests at once, nor may a backend that hangs collect one more per connection each
 * round): a check holds its slot until it settles. A round that outlasts the interval delays
 * the next one, never overlaps it. A check that throws, rejects or has not settled within
 * `min(interval, 10 s)` keeps its connection (a backend that is down or slow must not close
 * every client) and is counted; the round goes on with the slots left, and waits for one when
 * all 64 hold checks that have not settled.
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
  /** Checks started and not settled (timed-out ones included), across rounds: at most `CONCURRENCY`. */
  #busy = 0;
  /** Checks waiting for a slot; a slot that frees goes to the first. */
  readonly #waiting: (() => void)[] = [];

  /**
   * Every `intervalMs` (> 0, at most 2^31 - 1), `check` each open WebSocket filed; `refused`
   * those it says no to; `failed` once per check that threw, rejected or had not settled after
   * `timeoutMs` (default: the interval, at most 10 s). Errors: throws a RangeError for any other
   * interval.
   */
  constructor(
    intervalMs: number,
    check: (ws: W, req: AuthorizeRequest) => boolean | Promise<boolean>,
    refused: (ws: W) => void,
    failed: () => void = () => {},
    timeoutMs = Math.min(intervalMs, CHECK_TIMEOUT_MS),
  ) {
    if (!(intervalMs > 0 && intervalMs <= MAX_INTERVAL_MS)) throw new RangeError(`gateway: authorizeInterval must be a number of ms > 0 and <= ${MAX_INTERVAL_MS}, not ${intervalMs}`);
    this.#intervalMs = intervalMs;
    this.#check = check;
    this.#refused = refused;
    this.#failed = failed;
    this.#timeoutMs = timeoutMs;
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
    const waiting = this.#waiting.splice(0);
    this.#busy += waiting.length; // each gives its slot back at once (stopped)
    for (const go of waiting) go();
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
    if (this.#busy < CONCURRENCY) this.#busy++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    if (this.#stopped || ws.readyState !== 'open' || !this.#watched.has(ws.id)) return this.#release(); // closed since the round began
    let check: Promise<boolean>;
    try {
      check = Promise.resolve(this.#check(ws, req));
    } catch (err) {
      check = Promise.reject(err);
    }
    void check.then(() => this.#release(), () => this.#release()); // the slot, once it settles
    let timer: NodeJS.Timeout | undefined;
    try {
      const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), this.#timeoutMs)));
      const ok = await Promise.race([check, late]);
      if (!ok && ws.readyState === 'open' && !this.#stopped) this.#refused(ws);
    } catch {
      this.#failed();
    } finally {
      clearTimeout(timer);
    }
  }

  /** A check settled (or never started): its slot to the first waiting, else free. */
  #release(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#busy--;
  }
}
