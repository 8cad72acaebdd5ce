/**
 * `IdMap`: connection id -> value, for the engine's and the protocols' per-connection side
 * tables (`conn.context`, a WebSocket's `Extra`) that hold an entry only for a moment: set when
 * a request starts or an upgrade is pending, deleted a few calls later. Public (`c1m`'s
 * `IdMap`) for handlers' own tables: `c1m bench`'s workers keep every open connection in one.
 *
 * Why not a `Map`: V8 shrinks a Map's hash table when a delete leaves it less than half full,
 * and rebuilds it when deleted entries fill it, and once the Map lives in the old generation
 * (any long-lived server's does) each new table is allocated there directly. A Map that is set
 * and emptied once per connection therefore leaves ~100-150 B of old-space garbage per
 * connection, which only the next full GC reclaims: ~6 MB after 19,000 WebSocket upgrades in
 * one gateway process, RSS a user sees (docs/websocket.md, "What a user sees").
 *
 * Model: open addressing with linear probing over a Float64Array of keys (NaN = empty; ids are
 * integers below 2^53) and an array of values; deletion shifts the rest of the probe run back
 * (no tombstones), so set/delete churn allocates nothing. The table doubles when more than
 * half full and never shrinks: its size follows the peak number of entries, not the churn.
 * Hot path: one multiply and, at load <= 1/2, about two probes per operation.
 *
 * Threading: one thread, like the reactor whose connections it keys.
 */

const EMPTY = Number.NaN;
const MIN_CAPACITY = 16;

/** Slot of `id` in a table of `mask + 1` (a power of two): its low 32 bits (the fd on the native backend), mixed. */
const home = (id: number, mask: number): number => (Math.imul(id >>> 0, 0x9e3779b1) >>> 7) & mask;

export class IdMap<V> {
  #keys = new Float64Array(MIN_CAPACITY).fill(EMPTY);
  #vals: (V | undefined)[] = new Array<V | undefined>(MIN_CAPACITY).fill(undefined);
  #mask = MIN_CAPACITY - 1;
  #size = 0;

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** The table's slots (for tests: it follows the peak entry count, never the churn). */
  get capacity(): number {
    return this.#mask + 1;
  }

  #find(id: number): number {
    const keys = this.#keys, mask = this.#mask;
    let i = home(id, mask);
    for (;;) {
      const k = keys[i]!;
      if (k === id || k !== k) return i;
      i = (i + 1) & mask;
    }
  }

  get(id: number): V | undefined {
    const i = this.#find(id);
    return this.#keys[i] === id ? this.#vals[i] : undefined;
  }

  has(id: number): boolean {
    return this.#keys[this.#find(id)] === id;
  }

  set(id: number, value: V): this {
    let i = this.#find(id);
    if (this.#keys[i] !== id) {
      if ((this.#size + 1) * 2 > this.#mask + 1) {
        this.#grow();
        i = this.#find(id);
      }
      this.#keys[i] = id;
      this.#size++;
    }
    this.#vals[i] = value;
    return this;
  }

  delete(id: number): boolean {
    const keys = this.#keys, vals = this.#vals, mask = this.#mask;
    let i = this.#find(id);
    if (keys[i] !== id) return false;
    // Backward shift: move each later entry of the run whose home is not in (i, j] into the hole.
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const k = keys[j]!;
      if (k !== k) break;
      const h = home(k, mask);
      const stays = i <= j ? i < h && h <= j : i < h || h <= j;
      if (stays) continue;
      keys[i] = k;
      vals[i] = vals[j];
      i = j;
    }
    keys[i] = EMPTY;
    vals[i] = undefined;
    this.#size--;
    return true;
  }

  /**
   * Each entry's id, then value, in table order (not insertion order). Do not set or delete
   * while iterating: a delete shifts later entries back, a set may grow the table.
   */
  *entries(): IterableIterator<[number, V]> {
    const keys = this.#keys, vals = this.#vals;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (k === k) yield [k, vals[i]!];
    }
  }

  #grow(): void {
    const oldKeys = this.#keys, oldVals = this.#vals;
    const cap = (this.#mask + 1) * 2;
    this.#keys = new Float64Array(cap).fill(EMPTY);
    this.#vals = new Array<V | undefined>(cap).fill(undefined);
    this.#mask = cap - 1;
    for (let i = 0; i < oldKeys.length; i++) {
      const k = oldKeys[i]!;
      if (k !== k) continue;
      const j = this.#find(k);
      this.#keys[j] = k;
      this.#vals[j] = oldVals[i];
    }
  }
}
