/**
 * The gateway's one seam onto topic pub/sub: everything the gateway does with topics goes
 * through the `Topics` interface below, which is, method for method, the topic API of the
 * WebSocket server being built on the `pubsub` branch (`ws.subscribe`, `ws.unsubscribe`,
 * `ws.isSubscribed`, `handler.publish(topic, ...)`, `handler.subscriberCount`,
 * `handler.pubsubStats`, the `onTopicInterest` option).
 *
 * `LocalTopics` is a stand-in for that API, built on what the server has today
 * (`handler.publish(reactor, ids, message)`): per topic an unordered array of connection ids
 * with an id -> index map, so subscribing and leaving are O(1) (swap-remove, as
 * src/apps/broadcast.ts does) and a publish hands the array to the engine without building
 * one. At the merge of `pubsub` this file shrinks to a pass-through (see docs/gateway.md,
 * "The pub/sub seam"); nothing else in the gateway changes.
 *
 * Invariants: `#topics.get(t).ids` holds exactly the ids subscribed to `t`, and
 * `#byConn.get(id)` exactly the topics `id` is subscribed to; a topic with no subscriber has
 * no entry in `#topics`; `onTopicInterest(t, true)` runs when an entry is created,
 * `(t, false)` when it is deleted.
 */
import { C1mError, type Reactor } from '../../core/index.js';
import type { WebSocket, WebSocketHandler } from '../../protocols/ws/index.js';

/** Options with the pub/sub API's names and defaults (`WebSocketServerOptions.pubsub`). */
export interface PubsubOptions {
  /** Topics one connection may hold. Default 100. */
  maxTopicsPerConnection?: number;
  /** Topics with at least one subscriber, per handler. Default 100000. */
  maxTopics?: number;
  /** Longest topic name in UTF-16 code units. Default 128. */
  maxTopicLength?: number;
  /** What to do with a subscriber past `maxBufferedBytes` at a publish. Default 'close'. */
  slowSubscriber?: 'close' | 'drop';
  /** Buffered bytes past which a subscriber is slow. Default 4 MiB. */
  maxBufferedBytes?: number;
}

export interface PubsubStats {
  topics: number;
  subscriptions: number;
  published: number;
  deliveries: number;
  drops: number;
  slowClosed: number;
}

/** The pub/sub API the gateway uses (the library's, one method each). */
export interface Topics {
  /** True if newly subscribed. Errors: `ERR_C1M_PUBSUB_TOPIC` (bad name), `ERR_C1M_PUBSUB_LIMIT`. */
  subscribe(ws: WebSocket, topic: string): boolean;
  /** True if it was subscribed. */
  unsubscribe(ws: WebSocket, topic: string): boolean;
  isSubscribed(ws: WebSocket, topic: string): boolean;
  /** The WebSocket closed (the library does this itself: a no-op there). */
  closed(ws: WebSocket): void;
  /** Queue `message` (a text frame, encoded once) to every local subscriber; returns how many. */
  publish(topic: string, message: string): number;
  subscriberCount(topic: string): number;
  readonly stats: Readonly<PubsubStats>;
}

interface Subscribers {
  ids: number[];
  slot: Map<number, number>;
}

/** The stand-in for the library's topic API (see the module comment). One per handler. */
export class LocalTopics implements Topics {
  readonly #handler: WebSocketHandler;
  readonly #reactor: () => Reactor;
  readonly #interest: (topic: string, active: boolean) => void;
  readonly #topics = new Map<string, Subscribers>();
  readonly #byConn = new Map<number, Set<string>>();
  readonly #perConn: number;
  readonly #maxTopics: number;
  readonly #maxLength: number;
  readonly #slow: 'close' | 'drop';
  readonly #maxBuffered: number;
  readonly stats: PubsubStats = { topics: 0, subscriptions: 0, published: 0, deliveries: 0, drops: 0, slowClosed: 0 };

  constructor(handler: WebSocketHandler, reactor: () => Reactor, options: PubsubOptions, onTopicInterest: (topic: string, active: boolean) => void) {
    this.#handler = handler;
    this.#reactor = reactor;
    this.#interest = onTopicInterest;
    this.#perConn = options.maxTopicsPerConnection ?? 100;
    this.#maxTopics = options.maxTopics ?? 100_000;
    this.#maxLength = options.maxTopicLength ?? 128;
    this.#slow = options.slowSubscriber ?? 'close';
    this.#maxBuffered = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  }

  subscribe(ws: WebSocket, topic: string): boolean {
    if (typeof topic !== 'string' || topic.length === 0 || topic.length > this.#maxLength) {
      throw new C1mError('ERR_C1M_PUBSUB_TOPIC', `a topic is a string of 1 to ${this.#maxLength} characters`);
    }
    const id = ws.id;
    let mine = this.#byConn.get(id);
    if (mine?.has(topic)) return false;
    if ((mine?.size ?? 0) >= this.#perConn) throw new C1mError('ERR_C1M_PUBSUB_LIMIT', `at most ${this.#perConn} topics per connection`);
    let subs = this.#topics.get(topic);
    if (subs === undefined) {
      if (this.#topics.size >= this.#maxTopics) throw new C1mError('ERR_C1M_PUBSUB_LIMIT', `at most ${this.#maxTopics} topics`);
      subs = { ids: [], slot: new Map() };
      this.#topics.set(topic, subs);
      this.stats.topics++;
      this.#interest(topic, true);
    }
    if (mine === undefined) this.#byConn.set(id, (mine = new Set()));
    mine.add(topic);
    subs.slot.set(id, subs.ids.length);
    subs.ids.push(id);
    this.stats.subscriptions++;
    return true;
  }

  unsubscribe(ws: WebSocket, topic: string): boolean {
    const mine = this.#byConn.get(ws.id);
    if (mine === undefined || !mine.delete(topic)) return false;
    if (mine.size === 0) this.#byConn.delete(ws.id);
    this.#leave(ws.id, topic);
    return true;
  }

  isSubscribed(ws: WebSocket, topic: string): boolean {
    return this.#byConn.get(ws.id)?.has(topic) ?? false;
  }

  closed(ws: WebSocket): void {
    const mine = this.#byConn.get(ws.id);
    if (mine === undefined) return;
    this.#byConn.delete(ws.id);
    for (const topic of mine) this.#leave(ws.id, topic);
  }

  publish(topic: string, message: string): number {
    this.stats.published++;
    const subs = this.#topics.get(topic);
    if (subs === undefined) return 0;
    const reactor = this.#reactor();
    let ids: ArrayLike<number> = subs.ids;
    // Slow subscribers: their buffered bytes are read from the engine (no crossing).
    let slow: number[] | undefined;
    for (const id of subs.ids) if (reactor.connection(id).bufferedAmount > this.#maxBuffered) (slow ??= []).push(id);
    if (slow !== undefined) {
      const skip = new Set(slow);
      ids = subs.ids.filter((id) => !skip.has(id));
      this.stats.drops += slow.length;
      if (this.#slow === 'close') {
        for (const id of slow) {
          // Reset, not a close frame: that would wait behind the bytes it cannot take. Its
          // onClose takes it out of every topic.
          reactor.connection(id).destroy();
          this.stats.slowClosed++;
        }
      }
    }
    const n = this.#handler.publish(reactor, ids, message, false);
    this.stats.deliveries += n;
    return n;
  }

  subscriberCount(topic: string): number {
    return this.#topics.get(topic)?.ids.length ?? 0;
  }

  #leave(id: number, topic: string): void {
    const subs = this.#topics.get(topic)!;
    const i = subs.slot.get(id)!;
    subs.slot.delete(id);
    const last = subs.ids.pop()!;
    if (i < subs.ids.length) {
      subs.ids[i] = last;
      subs.slot.set(last, i);
    }
    this.stats.subscriptions--;
    if (subs.ids.length === 0) {
      this.#topics.delete(topic);
      this.stats.topics--;
      this.#interest(topic, false);
    }
  }
}
