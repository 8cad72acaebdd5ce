/**
 * The rate limit of clients' WebSocket publishes (`pub`, `clientPublishRate`, or a token's
 * `publish_rate` claim): a token bucket that holds up to `rate` publishes (at least 1) and
 * refills at `rate` per second. A `pub` that finds it empty is refused (`limit`), so one client
 * cannot turn its read pace into a topic's whole fan-out capacity.
 *
 * Whose bucket: a user's (a token's `sub`), shared by all its connections to this gateway, so
 * that opening more connections does not buy more publishes; on an open gateway, whose clients
 * have no user, each connection's.
 *
 * Memory: a bucket exists only for a publisher. A connection's goes when it closes (`forget`).
 * A user's outlives its connections until it has refilled (dropped by a sweep at most every
 * `SWEEP_MS`, run by the next user's publish or connection's close): closing and reconnecting
 * does not refill it. Tokens of one user with different rates share its bucket, capped by the
 * burst of the rate each publish is taken at.
 * Subscribers that never publish cost nothing here.
 *
 * Across processes and machines (rate-share.ts): with `shareSpent()` on, `takeSpent()` hands
 * over what each user took here since the last call, and `charge` takes what the user took
 * elsewhere off its bucket here, so a user's rate holds over every gateway that shares them.
 *
 * Threading: one gateway (one reactor thread), like the connections it keys.
 */
import { IdMap } from '../../core/index.js';

/** How often, at most, full user buckets are dropped (ms). */
const SWEEP_MS = 10_000;
/** The most refill time one share of another gateway may carry (s): it is told once a second. */
const MAX_SHARE_S = 2;

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, in ms. */
  at: number;
  /** The rate of its last `take`: what it refills at (for the sweep). */
  rate: number;
}

const burstOf = (rate: number): number => Math.max(1, rate);

/** Bring `b` up to `now` at `rate`: refilled, and never above that rate's burst. */
function refill(b: Bucket, now: number, rate: number): void {
  const burst = burstOf(rate);
  if (now > b.at) {
    b.tokens = Math.min(burst, b.tokens + (now - b.at) * (rate / 1000));
    b.at = now;
  } else if (b.tokens > burst) {
    b.tokens = burst;
  }
}

export class PublishRate {
  readonly #rate: number;
  readonly #byConnection = new IdMap<Bucket>();
  readonly #byUser = new Map<string, Bucket>();
  #sweptAt = 0;
  /** Publishes taken per user since the last `takeSpent`, and the rate of the last; null unless `shareSpent()` was called. */
  #spent: Map<string, [count: number, rate: number]> | null = null;

  /** `rate` publishes per second per publisher unless `take` says otherwise (0: no limit). */
  constructor(rate: number) {
    if (!(rate >= 0 && Number.isFinite(rate))) throw new RangeError(`publish rate ${rate}/s: must be a number >= 0`);
    this.#rate = rate;
  }

  /**
   * Take one publish for `who` (a user, or a connection id) at `now` (ms, monotonic), at
   * `rate` a second (default: the constructor's; 0: no limit) in bursts of up to `rate` (at
   * least 1); false when its bucket is empty. The rate may change between calls (a refreshed
   * token): the bucket keeps its tokens, capped by the new burst.
   */
  take(who: string | number, now: number, rate = this.#rate): boolean {
    if (rate === 0) return true;
    const user = typeof who === 'string';
    if (user) this.#maybeSweep(now);
    let b = user ? this.#byUser.get(who) : this.#byConnection.get(who);
    if (b === undefined) {
      b = { tokens: burstOf(rate), at: now, rate };
      if (user) this.#byUser.set(who, b);
      else this.#byConnection.set(who, b);
    } else {
      refill(b, now, rate);
    }
    b.rate = rate;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    if (user && this.#spent !== null) {
      const had = this.#spent.get(who);
      if (had === undefined) this.#spent.set(who, [1, rate]);
      else {
        had[0]++;
        had[1] = rate;
      }
    }
    return true;
  }

  /** Count each user's publishes from now on, for `takeSpent`. */
  shareSpent(): void {
    this.#spent ??= new Map();
  }

  /**
   * What each user took here since the last call, with the rate of its last publish (empty
   * unless `shareSpent()` was called).
   */
  takeSpent(): Map<string, [count: number, rate: number]> {
    const spent = this.#spent ?? new Map<string, [number, number]>();
    if (this.#spent !== null) this.#spent = new Map();
    return spent;
  }

  /** The rate `user`'s bucket refills at (its last `take`'s), if it has one. */
  rateOf(user: string): number | undefined {
    return this.#byUser.get(user)?.rate;
  }

  /**
   * `user` took `n` publishes elsewhere (another gateway process or machine) at `rate` a second
   * there, by `now` (ms, monotonic): they come off its bucket here (a user without one gets one
   * at `rate`). No floor: with k gateways each telling what it granted, the sum is what the user
   * spent, and a floor would forgive part of it (k gateways started together would each grant a
   * burst every two). `n` is capped by what one share can honestly carry (a burst and
   * `MAX_SHARE_S` of refill), so a wrong one costs the user at most that.
   */
  charge(user: string, n: number, rate: number, now: number): void {
    this.#maybeSweep(now);
    let b = this.#byUser.get(user);
    if (b === undefined) {
      if (!(rate > 0)) return;
      b = { tokens: burstOf(rate), at: now, rate };
      this.#byUser.set(user, b);
    } else {
      refill(b, now, b.rate);
    }
    b.tokens -= Math.min(n, burstOf(rate) + rate * MAX_SHARE_S);
  }

  /**
   * Connection `id` closed at `now` (ms, monotonic): drop its bucket (if it ever published).
   * Users' buckets stay until they have refilled; a sweep due by now drops those that have.
   */
  forget(id: number, now = performance.now()): void {
    this.#byConnection.delete(id);
    if (this.#byUser.size > 0) this.#maybeSweep(now);
  }

  /** Publishers holding a bucket: connections and users. */
  get size(): number {
    return this.#byConnection.size + this.#byUser.size;
  }

  /** Drop the user buckets that are full by `now` (they hold nothing a new one would not), at most every SWEEP_MS. */
  #maybeSweep(now: number): void {
    if (now - this.#sweptAt < SWEEP_MS) return;
    this.#sweptAt = now;
    for (const [user, b] of this.#byUser) {
      if (b.tokens + Math.max(0, now - b.at) * (b.rate / 1000) >= burstOf(b.rate)) this.#byUser.delete(user);
    }
  }
}
