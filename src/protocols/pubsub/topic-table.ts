/**
 * Topics and their subscribers, for any handler: a `TopicTable` maps topic names to sets of
 * connection ids without a JS object per connection or per subscription, and hands a topic's
 * subscribers to `reactor.broadcast` (one crossing for all of them). The WebSocket server's
 * `ws.subscribe` / `handler.publish(topic)` are built on it; a plain TCP handler uses it with
 * `conn.id` directly (subscribe in `onData`, `removeAll` in `onClose`).
 *
 * Model:
 *   - A connection is keyed by the low 32 bits of its id (the fd on the native backend, a
 *     counter on the portable one) and remembers the high bits (the generation) of the id that
 *     subscribed, so a publish builds exactly the ids that subscribed: a closed fd reused by a
 *     new connection never receives the old connection's messages (the engine skips a stale
 *     id), even before `removeAll` ran for the old one.
 *   - A topic is an index into parallel per-topic arrays: its members, an `Int32Array` of keys
 *     in no order (swap-remove), and its name. Empty topics are deleted and their index reused.
 *   - Per key, 10 bytes in pages of 1024 keys (a page exists only while one of its keys has a
 *     subscription): two 32-bit words `a`, `b` and the low 16 bits of the generation. The
 *     generation's high 5 bits are bits 26-30 of `b`; its low 26 bits (`b & LOW`) are a
 *     position or a count. `a === 0`: no subscription; `a > 0`: one subscription, to topic
 *     `a - 1`, at position `b & LOW` of its members; `a < 0`: a block of `b & LOW` (topic,
 *     position) pairs at word `-a - 1` of the block pool, with room for the smallest power of
 *     two >= that count (at least 2).
 *   So a subscription costs 4 bytes in its topic's members plus, for a connection with one
 *   subscription, 10 bytes of its page; with k > 1, 10/k + 8 (2/k rounded up to a power of
 *   two) bytes. Growth slack comes on top (members grow by 1/8 past 1024 entries, the pool by
 *   64 KiB steps; the pool is released when no connection has more than one topic).
 *   Ids are below 2^53, so a generation has at most 21 bits; a topic has at most 2^26 members.
 *
 * Invariants:
 *   - `members[t][i] = key` with `i < sizes[t]` exactly when key's page entry lists (t, i);
 *   - a key with a subscription has `a !== 0`; its page counts it in the page's last word;
 *   - `topicIndex` holds exactly the topics with at least one subscriber.
 *
 * Hot path: `subscribers(topic)` (one pass over the members, building ids in a reused
 * Float64Array). `subscribe`/`unsubscribe` are O(topics of the connection) (a scan of at most
 * `maxTopicsPerConnection` pairs) plus O(1) on the topic side.
 *
 * Threading: a table belongs to one reactor's thread.
 */
import { C1mError, checkOption, type Connection, type Reactor } from '../../core/index.js';

/** Options of `TopicTable`. Every limit has a default (`PUBSUB_DEFAULTS`). */
export interface TopicTableOptions {
  /** Most topics one connection may subscribe to; past it `subscribe` throws `ERR_C1M_PUBSUB_LIMIT`. Default 64. */
  maxTopicsPerConnection?: number;
  /** Most topics with at least one subscriber in this table; past it `subscribe` throws `ERR_C1M_PUBSUB_LIMIT`. Default 100,000. */
  maxTopics?: number;
  /** Longest topic name in UTF-8 bytes; longer names throw `ERR_C1M_PUBSUB_TOPIC`. Default 256. */
  maxTopicLength?: number;
  /**
   * `active` true: the first subscriber of `topic` just subscribed; false: its last one just
   * left (unsubscribe, or `removeAll`). Runs after the table changed; what it throws reaches
   * the caller of `subscribe`/`unsubscribe`/`removeAll` (the change stays).
   */
  onTopicInterest?(topic: string, active: boolean): void;
}

/** Defaults of the pub/sub limits (`TopicTableOptions`, and the WebSocket server's `pubsub`). */
export const PUBSUB_DEFAULTS = {
  maxTopicsPerConnection: 64,
  maxTopics: 100_000,
  maxTopicLength: 256,
  slowSubscriber: 'close',
  maxBufferedBytes: 1024 * 1024,
} as const;

/** Options of `TopicTable.publish`. */
export interface TopicPublishOptions {
  /**
   * A subscriber whose `bufferedAmount` is past this many bytes does not get the message
   * (and `onSlow` is told). Default: no limit.
   */
  maxBufferedBytes?: number;
  /** A subscriber skipped for `maxBufferedBytes`; close it here if it should not stay. */
  onSlow?(conn: Connection): void;
}

const TWO32 = 2 ** 32;
const PAGE_BITS = 10;
const PAGE = 1 << PAGE_BITS;
const PAGE_MASK = PAGE - 1;
/** Words per key in a page: a, b. The page's last word counts keys with subscriptions. */
const W = 2;
const PAGE_WORDS = PAGE * W + 1;
/** `b`: the low 26 bits are a position or a count, bits 26-30 the generation's high bits. */
const LOW = (1 << 26) - 1;
const HI_SHIFT = 26;
const POOL_STEP = 16 * 1024;
// Control characters (C0, DEL, C1) are refused in topic names.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// A surrogate not in a pair has no UTF-8 encoding.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Throw `ERR_C1M_PUBSUB_TOPIC` unless `topic` is a valid name of at most `max` UTF-8 bytes. */
export function checkTopic(topic: unknown, max: number = PUBSUB_DEFAULTS.maxTopicLength): asserts topic is string {
  if (typeof topic !== 'string') throw new C1mError('ERR_C1M_PUBSUB_TOPIC', `a topic must be a string, got ${typeof topic}`);
  if (topic.length === 0) throw new C1mError('ERR_C1M_PUBSUB_TOPIC', 'a topic must not be empty');
  if (topic.length > max || (topic.length * 3 > max && Buffer.byteLength(topic) > max)) {
    throw new C1mError('ERR_C1M_PUBSUB_TOPIC', `topic is longer than ${max} UTF-8 bytes`);
  }
  if (LONE_SURROGATE.test(topic)) throw new C1mError('ERR_C1M_PUBSUB_TOPIC', 'topic is not valid UTF-8 (a lone surrogate)');
  if (CONTROL.test(topic)) throw new C1mError('ERR_C1M_PUBSUB_TOPIC', 'topic contains a control character');
}

/** Block capacity (pairs) for `n` subscriptions: the smallest power of two >= n, at least 2. */
function capacity(n: number): number {
  return n <= 2 ? 2 : 1 << (32 - Math.clz32(n - 1));
}

/**
 * Topics and their subscribers (see the file comment for the layout). Connections are named
 * by `conn.id`.
 *
 * Lifetime: subscriptions stay until `unsubscribe` or `removeAll`; call `removeAll(conn.id)`
 * in `onClose` (the WebSocket server does it for its WebSockets). A connection's stale
 * subscriptions are dropped when a new connection with the same key subscribes.
 * Threading: the reactor's thread only.
 * Errors: `subscribe` throws `ERR_C1M_PUBSUB_TOPIC` for an invalid name and
 * `ERR_C1M_PUBSUB_LIMIT` past `maxTopicsPerConnection` or `maxTopics`.
 */
export class TopicTable {
  readonly #maxPerConnection: number;
  readonly #maxTopics: number;
  readonly #maxLength: number;
  readonly #onInterest: ((topic: string, active: boolean) => void) | undefined;
  /** `this` of `onTopicInterest`: the options object, as for a method of it. */
  readonly #options: TopicTableOptions;

  readonly #topicIndex = new Map<string, number>();
  readonly #names: string[] = [];
  readonly #members: Int32Array[] = [];
  #sizes = new Int32Array(16);
  readonly #freeTopics: number[] = [];

  readonly #pages: (Int32Array | undefined)[] = [];
  /** The low 16 bits of each key's generation, per page. */
  readonly #genLo: (Uint16Array | undefined)[] = [];
  /** Blocks allocated from the pool; at 0 the pool is released. */
  #blocks = 0;
  #pool = new Int32Array(0);
  #poolTop = 0;
  /** Free blocks by log2 of their capacity. */
  readonly #freeBlocks: number[][] = [];

  #subscriptions = 0;
  #ids = new Float64Array(64);

  constructor(options: TopicTableOptions = {}) {
    checkOption(typeof options === 'object' && options !== null, 'options', 'an object', options);
    const perConnection = options.maxTopicsPerConnection ?? PUBSUB_DEFAULTS.maxTopicsPerConnection;
    const maxTopics = options.maxTopics ?? PUBSUB_DEFAULTS.maxTopics;
    const maxLength = options.maxTopicLength ?? PUBSUB_DEFAULTS.maxTopicLength;
    checkOption(Number.isInteger(perConnection) && perConnection >= 1 && perConnection <= 65536, 'maxTopicsPerConnection', 'an integer from 1 to 65536', perConnection);
    checkOption(Number.isInteger(maxTopics) && maxTopics >= 1 && maxTopics <= 2 ** 30, 'maxTopics', 'an integer from 1 to 2^30', maxTopics);
    checkOption(Number.isInteger(maxLength) && maxLength >= 1 && maxLength <= 65536, 'maxTopicLength', 'an integer from 1 to 65536', maxLength);
    checkOption(options.onTopicInterest === undefined || typeof options.onTopicInterest === 'function', 'onTopicInterest', 'a function', typeof options.onTopicInterest);
    this.#maxPerConnection = perConnection;
    this.#maxTopics = maxTopics;
    this.#maxLength = maxLength;
    this.#onInterest = options.onTopicInterest;
    this.#options = options;
  }

  /** The longest topic name accepted, in UTF-8 bytes. */
  get maxTopicLength(): number {
    return this.#maxLength;
  }

  /** Topics with at least one subscriber. */
  get topics(): number {
    return this.#topicIndex.size;
  }

  /** (connection, topic) pairs. */
  get subscriptions(): number {
    return this.#subscriptions;
  }

  /** Subscribers of `topic` (0 for an unknown or invalid name). */
  subscriberCount(topic: string): number {
    const t = this.#topicIndex.get(topic);
    return t === undefined ? 0 : this.#sizes[t]!;
  }

  /**
   * Subscribe connection `id` to `topic`. Returns true if newly subscribed, false if it
   * already was.
   * Errors: `ERR_C1M_PUBSUB_TOPIC` for an invalid name (see `checkTopic`),
   * `ERR_C1M_PUBSUB_LIMIT` when the connection has `maxTopicsPerConnection` topics or a new
   * topic would pass `maxTopics`, `ERR_C1M_INVALID_OPTION` for an id that is not a
   * non-negative integer.
   */
  subscribe(id: number, topic: string): boolean {
    checkTopic(topic, this.#maxLength);
    checkId(id);
    const key = id % TWO32, gen = (id - key) / TWO32;
    let page = this.#pages[key >>> PAGE_BITS];
    const at = (key & PAGE_MASK) * W;
    if (page !== undefined && page[at] !== 0 && this.#genOf(key, page, at) !== gen) {
      // A connection that closed without removeAll held this key: its subscriptions are stale.
      this.#removeKey(key);
      page = this.#pages[key >>> PAGE_BITS];
    }
    const existing = this.#topicIndex.get(topic);
    const count = page === undefined ? 0 : this.#countAt(page, at);
    if (existing !== undefined && count !== 0 && this.#find(page!, at, existing) >= 0) return false;
    if (count >= this.#maxPerConnection) {
      throw new C1mError('ERR_C1M_PUBSUB_LIMIT', `connection already has ${count} topics (maxTopicsPerConnection)`);
    }
    let t = existing;
    if (t === undefined) {
      if (this.#topicIndex.size >= this.#maxTopics) {
        throw new C1mError('ERR_C1M_PUBSUB_LIMIT', `${this.#topicIndex.size} topics already (maxTopics)`);
      }
      t = this.#newTopic(topic);
    }
    if (page === undefined) {
      page = new Int32Array(PAGE_WORDS);
      this.#pages[key >>> PAGE_BITS] = page;
      this.#genLo[key >>> PAGE_BITS] = new Uint16Array(PAGE);
    }
    const pos = this.#pushMember(t, key);
    if (count === 0) {
      this.#genLo[key >>> PAGE_BITS]![key & PAGE_MASK] = gen & 0xffff;
      page[at] = t + 1;
      page[at + 1] = ((gen >>> 16) << HI_SHIFT) | pos;
      page[PAGE_WORDS - 1]++;
    } else {
      this.#addPair(page, at, count, t, pos);
    }
    this.#subscriptions++;
    if (existing === undefined) this.#onInterest?.call(this.#options, topic, true);
    return true;
  }

  /** Unsubscribe `id` from `topic`. Returns true if it was subscribed. */
  unsubscribe(id: number, topic: string): boolean {
    const t = this.#topicIndex.get(topic);
    if (t === undefined) return false;
    const found = this.#locate(id);
    if (found === null) return false;
    const page = found;
    const at = this.#at;
    const a = page[at]!;
    let pos: number;
    if (a > 0) {
      if (a - 1 !== t) return false;
      pos = page[at + 1]! & LOW;
      page[at] = 0;
      page[at + 1] = 0;
      this.#releaseEntry(id % TWO32, page);
    } else {
      const i = this.#find(page, at, t);
      if (i < 0) return false;
      pos = this.#removePair(page, at, i);
    }
    this.#subscriptions--;
    this.#removeMember(t, pos);
    return true;
  }

  /** True when `id` is subscribed to `topic`. */
  isSubscribed(id: number, topic: string): boolean {
    const t = this.#topicIndex.get(topic);
    if (t === undefined) return false;
    const page = this.#locate(id);
    return page !== null && this.#find(page, this.#at, t) >= 0;
  }

  /** How many topics `id` is subscribed to. */
  topicCount(id: number): number {
    const page = this.#locate(id);
    return page === null ? 0 : this.#countAt(page, this.#at);
  }

  /** The topics `id` is subscribed to, in no particular order. */
  topicsOf(id: number): string[] {
    const page = this.#locate(id);
    if (page === null) return [];
    const at = this.#at;
    const a = page[at]!;
    if (a > 0) return [this.#names[a - 1]!];
    const out: string[] = [];
    const pool = this.#pool, off = -a - 1;
    for (let i = 0, n = page[at + 1]! & LOW; i < n; i++) out.push(this.#names[pool[off + 2 * i]!]!);
    return out;
  }

  /**
   * Remove every subscription of `id` (call it when the connection closes). Returns how many
   * there were. A no-op for an id whose key now belongs to another connection.
   */
  removeAll(id: number): number {
    const page = this.#locate(id);
    if (page === null) return 0;
    return this.#removeKey(id % TWO32);
  }

  /**
   * The ids subscribed to `topic`, in no particular order: for `reactor.broadcast`.
   *
   * Lifetime: a view of a buffer this table reuses; valid until the next call on this table.
   */
  subscribers(topic: string): Float64Array {
    const t = this.#topicIndex.get(topic);
    if (t === undefined) return this.#ids.subarray(0, 0);
    const n = this.#sizes[t]!;
    if (this.#ids.length < n) this.#ids = new Float64Array(Math.max(n, this.#ids.length * 2));
    const ids = this.#ids, members = this.#members[t]!, pages = this.#pages, genLo = this.#genLo;
    for (let i = 0; i < n; i++) {
      const key = members[i]!;
      const gen = genLo[key >>> PAGE_BITS]![key & PAGE_MASK]! + (pages[key >>> PAGE_BITS]![(key & PAGE_MASK) * W + 1]! >>> HI_SHIFT) * 65536;
      ids[i] = gen * TWO32 + key;
    }
    return ids.subarray(0, n);
  }

  /**
   * Write `data` to every subscriber of `topic` with one `reactor.broadcast` (one crossing on
   * the native backend). Returns the number of connections it was queued for.
   *
   * Backpressure: with `options.maxBufferedBytes`, subscribers past it are skipped (and given
   * to `options.onSlow`); the check reads each subscriber's `reactor.backlog`: what the
   * kernel has refused, with what this turn staged behind it (earlier publishes included).
   */
  publish(reactor: Reactor, topic: string, data: Uint8Array | string, options?: TopicPublishOptions): number {
    let ids = this.subscribers(topic);
    if (ids.length === 0) return 0;
    const max = options?.maxBufferedBytes;
    if (max !== undefined) ids = this.#withoutSlow(reactor, ids, max, options!.onSlow);
    return ids.length === 0 ? 0 : reactor.broadcast(ids, data);
  }

  /** `ids` without the connections past `max` buffered bytes (compacted in place). */
  #withoutSlow(reactor: Reactor, ids: Float64Array, max: number, onSlow: ((conn: Connection) => void) | undefined): Float64Array {
    let k = 0;
    const slow: Connection[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (reactor.backlog(id) > max) slow.push(reactor.connection(id));
      else ids[k++] = id;
    }
    // Told after the pass: onSlow may change the table (close, unsubscribe) and reuse #ids.
    const kept = ids.subarray(0, k);
    if (slow.length !== 0 && onSlow !== undefined) {
      const copy = Float64Array.from(kept);
      for (const conn of slow) onSlow(conn);
      return copy;
    }
    return kept;
  }

  // ---- keys ----

  /** Word offset of the last located key in its page (set by #locate). */
  #at = 0;

  /** The page of `id`'s key when it has subscriptions of this very id (generation), else null; sets #at. */
  #locate(id: number): Int32Array | null {
    if (!(id >= 0)) return null;
    const key = id % TWO32;
    const page = this.#pages[key >>> PAGE_BITS];
    if (page === undefined) return null;
    const at = (key & PAGE_MASK) * W;
    if (page[at] === 0 || this.#genOf(key, page, at) !== (id - key) / TWO32) return null;
    this.#at = at;
    return page;
  }

  /** The generation of the connection that holds `key`'s subscriptions. */
  #genOf(key: number, page: Int32Array, at: number): number {
    return this.#genLo[key >>> PAGE_BITS]![key & PAGE_MASK]! + (page[at + 1]! >>> HI_SHIFT) * 65536;
  }

  #countAt(page: Int32Array, at: number): number {
    const a = page[at]!;
    return a === 0 ? 0 : a > 0 ? 1 : page[at + 1]! & LOW;
  }

  /** Index of topic `t` among the key's subscriptions, or -1. */
  #find(page: Int32Array, at: number, t: number): number {
    const a = page[at]!;
    if (a === 0) return -1;
    if (a > 0) return a - 1 === t ? 0 : -1;
    const pool = this.#pool, off = -a - 1;
    for (let i = 0, n = page[at + 1]! & LOW; i < n; i++) if (pool[off + 2 * i] === t) return i;
    return -1;
  }

  /** Remove every subscription of `key`; returns how many. */
  #removeKey(key: number): number {
    const page = this.#pages[key >>> PAGE_BITS]!;
    const at = (key & PAGE_MASK) * W;
    const a = page[at]!;
    if (a === 0) return 0;
    // Collect first: removing members moves other keys' pairs, never this key's, but the
    // interest callbacks must run once the table is consistent.
    let pairs: number[];
    if (a > 0) {
      pairs = [a - 1, page[at + 1]! & LOW];
    } else {
      const off = -a - 1, n = page[at + 1]! & LOW;
      pairs = Array.from(this.#pool.subarray(off, off + 2 * n));
      this.#freeBlock(off, capacity(n));
    }
    page[at] = 0;
    page[at + 1] = 0;
    this.#releaseEntry(key, page);
    const n = pairs.length / 2;
    this.#subscriptions -= n;
    const gone: string[] = [];
    for (let i = 0; i < n; i++) {
      const t = pairs[2 * i]!;
      // The member moved by an earlier swap-remove of this loop is never this key's.
      const name = this.#dropMember(t, pairs[2 * i + 1]!);
      if (name !== null) gone.push(name);
    }
    if (this.#onInterest !== undefined) for (const name of gone) this.#onInterest.call(this.#options, name, false);
    return n;
  }

  /** A key lost its last subscription: count it out of its page, free an empty page. */
  #releaseEntry(key: number, page: Int32Array): void {
    if (--page[PAGE_WORDS - 1]! === 0) {
      this.#pages[key >>> PAGE_BITS] = undefined;
      this.#genLo[key >>> PAGE_BITS] = undefined;
    }
  }

  // ---- blocks of (topic, position) pairs ----

  #addPair(page: Int32Array, at: number, count: number, t: number, pos: number): void {
    const a = page[at]!;
    let off: number;
    if (a > 0) {
      // From one inline pair to a block of two.
      off = this.#allocBlock(2);
      this.#pool[off] = a - 1;
      this.#pool[off + 1] = page[at + 1]! & LOW;
    } else {
      off = -a - 1;
      if (count === capacity(count) && count >= 2) {
        const moved = this.#allocBlock(count * 2);
        this.#pool.copyWithin(moved, off, off + 2 * count);
        this.#freeBlock(off, count);
        off = moved;
      }
    }
    const pool = this.#pool;
    pool[off + 2 * count] = t;
    pool[off + 2 * count + 1] = pos;
    page[at] = -off - 1;
    page[at + 1] = (page[at + 1]! & ~LOW) | (count + 1);
  }

  /** Remove pair `i` of a block; returns its position. Shrinks to a smaller block or inline. */
  #removePair(page: Int32Array, at: number, i: number): number {
    let off = -page[at]! - 1;
    const hi = page[at + 1]! & ~LOW;
    const n = page[at + 1]! & LOW;
    const pool = this.#pool;
    const pos = pool[off + 2 * i + 1]!;
    const last = n - 1;
    if (i !== last) {
      pool[off + 2 * i] = pool[off + 2 * last]!;
      pool[off + 2 * i + 1] = pool[off + 2 * last + 1]!;
    }
    if (last === 1) {
      page[at] = pool[off]! + 1;
      page[at + 1] = hi | pool[off + 1]!;
      this.#freeBlock(off, capacity(n));
      return pos;
    }
    if (capacity(last) !== capacity(n)) {
      const moved = this.#allocBlock(capacity(last));
      this.#pool.copyWithin(moved, off, off + 2 * last);
      this.#freeBlock(off, capacity(n));
      off = moved;
    }
    page[at] = -off - 1;
    page[at + 1] = hi | last;
    return pos;
  }

  /** A block of `cap` pairs (a power of two): its word offset in the pool. */
  #allocBlock(cap: number): number {
    this.#blocks++;
    const list = this.#freeBlocks[31 - Math.clz32(cap)];
    if (list !== undefined && list.length !== 0) return list.pop()!;
    const words = 2 * cap;
    if (this.#poolTop + words > this.#pool.length) {
      const grown = new Int32Array(this.#pool.length + Math.max(POOL_STEP, words, this.#pool.length >> 3));
      grown.set(this.#pool.subarray(0, this.#poolTop));
      this.#pool = grown;
    }
    const off = this.#poolTop;
    this.#poolTop += words;
    return off;
  }

  #freeBlock(off: number, cap: number): void {
    if (--this.#blocks === 0) {
      // No connection has more than one topic: give the pool back.
      this.#pool = new Int32Array(0);
      this.#poolTop = 0;
      this.#freeBlocks.length = 0;
      return;
    }
    (this.#freeBlocks[31 - Math.clz32(cap)] ??= []).push(off);
  }

  // ---- topics ----

  #newTopic(name: string): number {
    const t = this.#freeTopics.pop() ?? this.#names.length;
    if (t >= this.#sizes.length) {
      const sizes = new Int32Array(this.#sizes.length * 2);
      sizes.set(this.#sizes);
      this.#sizes = sizes;
    }
    this.#names[t] = name;
    this.#members[t] = new Int32Array(4);
    this.#sizes[t] = 0;
    this.#topicIndex.set(name, t);
    return t;
  }

  /** Append `key` to topic `t`'s members; returns its position. */
  #pushMember(t: number, key: number): number {
    const n = this.#sizes[t]!;
    if (n > LOW) throw new C1mError('ERR_C1M_PUBSUB_LIMIT', `a topic has at most ${LOW + 1} subscribers`);
    let m = this.#members[t]!;
    if (n === m.length) {
      // x1.5 past 1024: the arrays a topic outgrows are garbage until the next full GC (their
      // objects have lived through scavenges by then), 2x the final size in all at x1.5 but 8x
      // at x1.125 (~0.5 MiB for 19,000 subscribers), for at most a third of slack.
      const grown = new Int32Array(n < 1024 ? n * 2 : n + (n >> 1));
      grown.set(m);
      this.#members[t] = m = grown;
    }
    m[n] = key;
    this.#sizes[t] = n + 1;
    return n;
  }

  /** Swap-remove position `pos` of topic `t`, fixing the moved key's pair. */
  #removeMember(t: number, pos: number): void {
    const name = this.#dropMember(t, pos);
    if (name !== null) this.#onInterest?.call(this.#options, name, false);
  }

  /** Swap-remove without callbacks; returns the topic's name when it became empty (and was deleted). */
  #dropMember(t: number, pos: number): string | null {
    const m = this.#members[t]!;
    const last = this.#sizes[t]! - 1;
    if (pos !== last) {
      const moved = m[last]!;
      m[pos] = moved;
      const page = this.#pages[moved >>> PAGE_BITS]!;
      const at = (moved & PAGE_MASK) * W;
      const a = page[at]!;
      if (a > 0) page[at + 1] = (page[at + 1]! & ~LOW) | pos;
      else this.#pool[-a - 1 + 2 * this.#find(page, at, t) + 1] = pos;
    }
    this.#sizes[t] = last;
    if (last === 0) {
      const name = this.#names[t]!;
      this.#topicIndex.delete(name);
      this.#names[t] = '';
      this.#members[t] = EMPTY;
      this.#freeTopics.push(t);
      return name;
    }
    if (m.length >= 64 && last <= m.length >> 2) this.#members[t] = m.slice(0, last * 2);
    return null;
  }
}

const EMPTY = new Int32Array(0);

function checkId(id: number): void {
  checkOption(Number.isInteger(id) && id >= 0 && id < 2 ** 53, 'id', 'a connection id (a non-negative integer)', id);
}
