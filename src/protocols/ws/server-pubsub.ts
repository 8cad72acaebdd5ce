/**
 * Topics on the WebSocket server: `ws.subscribe(topic)` and `handler.publish(topic, ...)`, on a
 * `TopicTable` (src/protocols/pubsub) keyed by the WebSockets' connection ids. This file holds
 * what is WebSocket-specific: the frame encoded once per publish, compression once per distinct
 * permessage-deflate agreement, the slow-subscriber policy, and the counters.
 *
 * Model: a WebSocket is a member of its topics exactly while it is open. The server removes
 * its subscriptions when it stops being open (our close frame sent, the peer's received, a
 * protocol failure, terminate) and again, as a no-op or for a connection that vanished without
 * a handshake, when the connection closes; so a publish never writes a data frame after a close
 * frame, and needs no per-subscriber state check.
 *
 * Hot path: `publish` makes one pass over the topic's ids (the table builds them), reading
 * each subscriber's `reactor.backlog` (and its tag when compressing), then one
 * `reactor.broadcast` per distinct frame: one crossing for every local subscriber.
 *
 * Backpressure: a publish never waits. A subscriber whose backlog (`reactor.backlog`: what
 * the kernel refused, and what this turn staged behind it) is past `maxBufferedBytes` does not
 * get the message, so a subscriber already behind gains at most one message past the limit,
 * and one the kernel keeps up with is never slow, however large a burst; with the `'close'` policy it is then closed
 * with 1013 (Try Again Later), with `'drop'` it stays and only misses messages while past it.
 */
import { C1mError, checkOption, type Connection, type Reactor } from '../../core/index.js';
import { PUBSUB_DEFAULTS, TopicTable } from '../pubsub/index.js';
import { Opcode } from './constants.js';
import type { PerMessageDeflate, ResolvedDeflateOptions } from './deflate.js';
import { encodeFrame } from './sender.js';

/** The WebSocket server's `pubsub` option: limits and the slow-subscriber policy. */
export interface WsPubSubOptions {
  /** Most topics per WebSocket; past it `subscribe` throws `ERR_C1M_PUBSUB_LIMIT`. Default 64. */
  maxTopicsPerConnection?: number;
  /** Most topics with a subscriber on this handler; past it `subscribe` throws `ERR_C1M_PUBSUB_LIMIT`. Default 100,000. */
  maxTopics?: number;
  /** Longest topic name in UTF-8 bytes; longer ones throw `ERR_C1M_PUBSUB_TOPIC`. Default 256. */
  maxTopicLength?: number;
  /**
   * What to do with a subscriber past `maxBufferedBytes` when a message is published: `'close'`
   * (default) closes it with 1013, `'drop'` skips the message for it. Either way the message
   * is not queued for it and the publish does not wait.
   */
  slowSubscriber?: 'close' | 'drop';
  /**
   * Backlog past which a subscriber is slow: bytes the kernel has refused, plus what this turn
   * staged behind them (`reactor.backlog`). Default 1 MiB.
   */
  maxBufferedBytes?: number;
}

/** Options of `handler.publish(topic, message, options)`. */
export interface WsPublishOptions {
  /** Send a binary message. Default: true for bytes, false for a string. */
  binary?: boolean;
  /**
   * Compress once and send the compressed frame to the subscribers whose permessage-deflate
   * agreement has no server context takeover (the others get the plain frame, as do all when
   * deflating does not make the message smaller). Default false. Ignores `threshold`.
   */
  compress?: boolean;
}

/** Counters of a WebSocket handler's topics (`handler.pubsubStats`). */
export interface WsPubSubStats {
  /** Topics with at least one subscriber. */
  topics: number;
  /** (WebSocket, topic) pairs. */
  subscriptions: number;
  /** `publish(topic, ...)` calls. */
  published: number;
  /** Messages queued to subscribers by those calls. */
  deliveries: number;
  /** Messages not queued to a slow subscriber (policy `'drop'`). */
  drops: number;
  /** Subscribers closed with 1013 for being slow (policy `'close'`). */
  slowClosed: number;
}

/** What the publisher needs of the server's handler-wide state. */
export interface WsTopicHost {
  readonly reactor: Reactor | null;
  readonly deflate: ResolvedDeflateOptions | null;
  /** The connection's permessage-deflate codec, or null. */
  codec(conn: Connection, tag: number): PerMessageDeflate | null;
  /** Close an open WebSocket with 1013 (it leaves its topics). */
  closeSlow(conn: Connection): void;
}

const CODE_TRY_AGAIN_LATER = 1013;

/** Validate the `pubsub` option once; returns the policy and the buffer limit. */
function resolvePolicy(opts: WsPubSubOptions): { slowClose: boolean; maxBuffered: number } {
  const policy = opts.slowSubscriber ?? PUBSUB_DEFAULTS.slowSubscriber;
  const maxBuffered = opts.maxBufferedBytes ?? PUBSUB_DEFAULTS.maxBufferedBytes;
  checkOption(policy === 'close' || policy === 'drop', 'pubsub.slowSubscriber', "'close' or 'drop'", policy);
  checkOption(Number.isInteger(maxBuffered) && maxBuffered >= 0, 'pubsub.maxBufferedBytes', 'a non-negative integer', maxBuffered);
  return { slowClose: policy === 'close', maxBuffered };
}

/** A WebSocket handler's topics. Internal: the server exposes it through its own methods. */
export class WsTopics {
  readonly table: TopicTable;
  readonly #slowClose: boolean;
  readonly #maxBuffered: number;
  #published = 0;
  #deliveries = 0;
  #drops = 0;
  #slowClosed = 0;

  constructor(opts: WsPubSubOptions | undefined, onTopicInterest: ((topic: string, active: boolean) => void) | undefined) {
    checkOption(opts === undefined || (typeof opts === 'object' && opts !== null), 'pubsub', 'an object', opts);
    const o = opts ?? {};
    const { slowClose, maxBuffered } = resolvePolicy(o);
    checkOption(onTopicInterest === undefined || typeof onTopicInterest === 'function', 'onTopicInterest', 'a function', typeof onTopicInterest);
    let table: TopicTable;
    try {
      table = new TopicTable({
        maxTopicsPerConnection: o.maxTopicsPerConnection,
        maxTopics: o.maxTopics,
        maxTopicLength: o.maxTopicLength,
        onTopicInterest,
      });
    } catch (err) {
      // Name the option as the user wrote it.
      if (err instanceof C1mError) throw new C1mError(err.code, err.message.replace('option "', 'option "pubsub.'));
      throw err;
    }
    this.table = table;
    this.#slowClose = slowClose;
    this.#maxBuffered = maxBuffered;
  }

  get stats(): WsPubSubStats {
    return {
      topics: this.table.topics,
      subscriptions: this.table.subscriptions,
      published: this.#published,
      deliveries: this.#deliveries,
      drops: this.#drops,
      slowClosed: this.#slowClosed,
    };
  }

  /** `handler.publish(topic, message, options)`: returns the subscribers it was queued for. */
  publish(host: WsTopicHost, topic: string, message: Uint8Array | string, options?: WsPublishOptions): number {
    checkOption(typeof message === 'string' || message instanceof Uint8Array, 'message', 'a string or a Uint8Array', typeof message);
    checkOption(options === undefined || (typeof options === 'object' && options !== null), 'options', 'an object', options);
    this.#published++;
    const ids = this.table.subscribers(topic);
    const n = ids.length;
    if (n === 0) return 0;
    const reactor = host.reactor;
    if (reactor === null) {
      throw new C1mError('ERR_C1M_WS_INVALID_ARGUMENT', 'publish(topic) needs the handler\'s reactor: pass it to handler.onReactor (createReactor and listen do)');
    }
    const opcode = (options?.binary ?? typeof message !== 'string') ? Opcode.Binary : Opcode.Text;
    const max = this.#maxBuffered;
    const compress = options?.compress === true && host.deflate !== null;
    // Subscribers keep their place in `ids` (compacted in place) unless slow or compressed.
    let slow: Connection[] | null = null;
    let groups: Map<number, [PerMessageDeflate, number[]]> | null = null;
    let k = 0;
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      if (reactor.backlog(id) > max) {
        (slow ??= []).push(reactor.connection(id));
        continue;
      }
      if (compress) {
        const conn = reactor.connection(id);
        const codec = host.codec(conn, conn.tag);
        if (codec !== null && !codec.stateful) {
          const bits = codec.params.serverMaxWindowBits;
          const group = (groups ??= new Map()).get(bits);
          if (group === undefined) groups.set(bits, [codec, [id]]);
          else group[1].push(id);
          continue;
        }
      }
      ids[k++] = id;
    }
    let sent = 0;
    let plain: ArrayLike<number> = ids.subarray(0, k);
    if (groups !== null) {
      const raw = typeof message === 'string' ? Buffer.from(message, 'utf8') : message;
      for (const [codec, list] of groups.values()) {
        const body = codec.compress(raw);
        if (body.length < raw.length) {
          sent += reactor.broadcast(list, encodeFrame(opcode, body, { rsv1: true }));
        } else {
          // Not smaller: these go plain too (RSV1 is per message).
          const merged = Array.from(plain);
          for (const id of list) merged.push(id);
          plain = merged;
        }
      }
    }
    if (plain.length !== 0) sent += reactor.broadcast(plain, encodeFrame(opcode, message));
    this.#deliveries += sent;
    if (slow !== null) {
      // After the broadcasts: closing changes the table (the subscriber leaves its topics).
      if (this.#slowClose) {
        for (const conn of slow) {
          host.closeSlow(conn);
          this.#slowClosed++;
        }
      } else {
        this.#drops += slow.length;
      }
    }
    return sent;
  }
}

export { CODE_TRY_AGAIN_LATER };
