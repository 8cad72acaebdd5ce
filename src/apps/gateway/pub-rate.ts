/**
 * The rate limit of clients' WebSocket publishes (`pub`, `clientPublishRate`, or a token's
 * `publish_rate` claim): per connection a token bucket that holds up to `rate` publishes (at
 * least 1) and refills at `rate` per second. A `pub` that finds it empty is refused (`limit`),
 * so one client cannot turn its read pace into a topic's whole fan-out capacity.
 *
 * Memory: a bucket exists only for a connection that has published, from its first `pub` until
 * it closes (`forget`): subscribers that never publish cost nothing here.
 *
 * Threading: one gateway (one reactor thread), like the connections it keys.
 */
import { IdMap } from '../../core/index.js';

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, in ms. */
  at: number;
}

export class PublishRate {
  readonly #rate: number;
  readonly #buckets = new IdMap<Bucket>();

  /** `rate` publishes per second per connection unless `take` says otherwise (0: no limit). */
  constructor(rate: number) {
    if (!(rate >= 0 && Number.isFinite(rate))) throw new RangeError(`publish rate ${rate}/s: must be a number >= 0`);
    this.#rate = rate;
  }

  /**
   * Take one publish for connection `id` at `now` (ms, monotonic), at `rate` a second (default:
   * the constructor's; 0: no limit) in bursts of up to `rate` (at least 1); false when its
   * bucket is empty. A connection's rate may change between calls (a refreshed token): the
   * bucket keeps its tokens, capped by the new burst.
   */
  take(id: number, now: number, rate = this.#rate): boolean {
    if (rate === 0) return true;
    const burst = Math.max(1, rate);
    let b = this.#buckets.get(id);
    if (b === undefined) {
      b = { tokens: burst, at: now };
      this.#buckets.set(id, b);
    } else if (now > b.at) {
      b.tokens = Math.min(burst, b.tokens + (now - b.at) * (rate / 1000));
      b.at = now;
    } else if (b.tokens > burst) {
      b.tokens = burst;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Connection `id` closed: drop its bucket (if it ever published). */
  forget(id: number): void {
    this.#buckets.delete(id);
  }

  /** Connections holding a bucket. */
  get size(): number {
    return this.#buckets.size;
  }
}
