/**
 * The gateway's topics are the WebSocket server's own (`ws.subscribe`, `handler.publish(topic)`,
 * `handler.pubsubStats`, the `onTopicInterest` option; src/protocols/ws/server-pubsub.ts): no
 * JS object per subscription, a publish encoded once and handed to the engine in one
 * broadcast. This file holds the gateway's defaults for the server's `pubsub` options, and its
 * one rule on top of them: a client's topics are subscribed all or none.
 */
import type { WebSocket, WsPubSubOptions } from '../../protocols/ws/index.js';

/** The server's pub/sub options (`WebSocketServerOptions.pubsub`). */
export type PubsubOptions = WsPubSubOptions;

/**
 * The gateway's defaults, where they differ from the server's: 100 topics per connection (a
 * client that follows a page of feeds) and 4 MiB buffered before a subscriber counts as slow
 * (a gateway's messages are larger than chat lines). Topic names are checked by the gateway's
 * own grammar first (protocol.ts: 1 to 128 characters), well inside the server's limit.
 */
export const GATEWAY_PUBSUB_DEFAULTS: WsPubSubOptions = { maxTopicsPerConnection: 100, maxBufferedBytes: 4 * 1024 * 1024 };

/**
 * Subscribe `ws` to every one of `topics`, or to none: what `subscribe` threw then (a limit,
 * or a name the server refuses), with the ones added before it taken back; else null.
 */
export function subscribeOrNone(ws: WebSocket<unknown>, topics: readonly string[]): unknown {
  const added: string[] = [];
  try {
    for (const t of topics) if (ws.subscribe(t)) added.push(t);
    return null;
  } catch (err) {
    for (const t of added) ws.unsubscribe(t);
    return err;
  }
}
