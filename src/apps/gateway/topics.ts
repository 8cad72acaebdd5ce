/**
 * The gateway's topics are the WebSocket server's own (`ws.subscribe`, `handler.publish(topic)`,
 * `handler.pubsubStats`, the `onTopicInterest` option; src/protocols/ws/server-pubsub.ts): no
 * JS object per subscription, a publish encoded once and handed to the engine in one
 * broadcast. This file only holds the gateway's defaults for the server's `pubsub` options.
 */
import type { WsPubSubOptions } from '../../protocols/ws/index.js';

/** The server's pub/sub options (`WebSocketServerOptions.pubsub`). */
export type PubsubOptions = WsPubSubOptions;

/**
 * The gateway's defaults, where they differ from the server's: 100 topics per connection (a
 * client that follows a page of feeds) and 4 MiB buffered before a subscriber counts as slow
 * (a gateway's messages are larger than chat lines). Topic names are checked by the gateway's
 * own grammar first (protocol.ts: 1 to 128 characters), well inside the server's limit.
 */
export const GATEWAY_PUBSUB_DEFAULTS: WsPubSubOptions = { maxTopicsPerConnection: 100, maxBufferedBytes: 4 * 1024 * 1024 };
