/**
 * The rate limit of clients' WebSocket publishes (`pub`, `clientPublishRate`): per connection a
 * token bucket that holds up to `burst` publishes and refills at `rate` per second. A `pub`
 * that finds it empty is refused (`limit`), so one client cannot turn its read pace into a
 * topic's whole fan-out capacity.
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
  readonly #perMs: number;
  readonly #burst: number;
  readonly #buckets = new IdMap<Bucket>();

  /** `rate` publishes per second per connection (> 0), up to `burst` at once (default: `rate`, at least 1). */
  constructor(rate: number, burst = Math.max(1, rate)) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError(`publish rate ${rate}/s with burst ${burst}: both must be positive`);
    this.#perMs = rate / 1000;
    this.#burst = burst;
  }

  /** Take one publish for connection `id` at `now` (ms, monotonic); false when its bucket is empty. */
  take(id: number, now: number): boolean {
    let b = this.#buckets.get(id);
    if (b === undefined) {
      b = { tokens: this.#burst, at: now };
      this.#buckets.set(id, b);
    } else if (now > b.at) {
      b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) * this.#perMs);
      b.at = now;
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
