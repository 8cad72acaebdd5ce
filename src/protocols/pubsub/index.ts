/**
 * Publish/subscribe for any handler: topics and their subscribers as compact sets of connection
 * ids (`TopicTable`), published with `reactor.broadcast`. The WebSocket server's `subscribe` /
 * `publish(topic)` are built on it. Public as `c1m/pubsub` and from `c1m`.
 */
export { PUBSUB_DEFAULTS, TopicTable, checkTopic, type TopicPublishOptions, type TopicTableOptions } from './topic-table.js';
