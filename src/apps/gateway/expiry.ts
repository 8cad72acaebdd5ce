/**
 * Token expiry on open connections: a WebSocket admitted with a token that has `exp` is closed
 * with 4001 (`unauthorized: expired`) once that second has come, as a connect with the same
 * token would then be refused.
 *
 * Model: WebSockets are filed by their expiry second (one Map of id -> handle per second), and
 * the seconds that have buckets sit in a min-heap; a 1 s timer closes every bucket whose second
 * has come. Adding is O(1) (O(log buckets) for a new second), removal on close O(1), a tick
 * O(expired + log buckets). Memory: one Map entry and the handle per WebSocket with an `exp`
 * (~80 B beside its grant); nothing for tokens without `exp` or an open gateway.
 *
 * Threading: the reactor's thread. The timer is unref'd and runs only while something is filed.
 */

/** What the watch needs of a WebSocket. */
export interface Expiring {
  readonly id: number;
  readonly readyState: 'open' | 'closing' | 'closed';
  close(code?: number, reason?: string): void;
}

/** Close code and reason of an expired token (the same as a connect with it gets). */
export const EXPIRED_CODE = 4001;
export const EXPIRED_REASON = 'unauthorized: expired';

export class ExpiryWatch<W extends Expiring> {
  readonly #buckets = new Map<number, Map<number, W>>();
  /** The seconds of #buckets, a binary min-heap. */
  readonly #heap: number[] = [];
  readonly #now: () => number;
  readonly #onExpired: (ws: W) => void;
  #timer: NodeJS.Timeout | undefined;
  #size = 0;

  /** `now` is the time in seconds since the epoch (a parameter for tests); `onExpired` counts. */
  constructor(onExpired: (ws: W) => void = () => {}, now: () => number = () => Date.now() / 1000) {
    this.#onExpired = onExpired;
    this.#now = now;
  }

  /** WebSockets filed. */
  get size(): number {
    return this.#size;
  }

  /**
   * File `ws` to be closed at `exp` (seconds since the epoch, a JWT's `exp`). Closes it at once
   * when that second has already come.
   */
  add(ws: W, exp: number): void {
    const second = Math.ceil(exp);
    if (second <= this.#now()) {
      this.#expire(ws);
      return;
    }
    let bucket = this.#buckets.get(second);
    if (bucket === undefined) {
      this.#buckets.set(second, (bucket = new Map()));
      this.#push(second);
    }
    if (!bucket.has(ws.id)) this.#size++;
    bucket.set(ws.id, ws);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.tick(), 1000);
      this.#timer.unref();
    }
  }

  /** Forget `ws` (it closed); `exp` as given to `add`. */
  remove(id: number, exp: number): void {
    const second = Math.ceil(exp);
    const bucket = this.#buckets.get(second);
    if (bucket === undefined || !bucket.delete(id)) return;
    this.#size--;
    // Its second stays in the heap until it comes; the tick skips it then.
    if (bucket.size === 0) this.#buckets.delete(second);
    if (this.#size === 0) this.#clear();
  }

  /** Close every WebSocket whose second has come (the timer calls it once a second). */
  tick(): void {
    const now = this.#now();
    const heap = this.#heap;
    while (heap.length > 0 && heap[0]! <= now) {
      const second = this.#pop();
      const bucket = this.#buckets.get(second);
      this.#buckets.delete(second);
      if (bucket === undefined) continue;
      this.#size -= bucket.size;
      for (const ws of bucket.values()) this.#expire(ws);
    }
    if (this.#size === 0) this.#clear();
  }

  /** Nothing filed: no heap, no timer. */
  #clear(): void {
    this.#heap.length = 0;
    this.#buckets.clear();
    this.stop();
  }

  /** Stop the timer (the gateway shuts down; also when nothing is left to watch). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #expire(ws: W): void {
    if (ws.readyState !== 'open') return;
    this.#onExpired(ws);
    ws.close(EXPIRED_CODE, EXPIRED_REASON);
  }

  #push(v: number): void {
    const h = this.#heap;
    let i = h.push(v) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]! <= v) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = v;
  }

  #pop(): number {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const c = l + 1 < h.length && h[l + 1]! < h[l]! ? l + 1 : l;
        if (h[c]! >= last) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
