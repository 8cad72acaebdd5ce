/**
 * c1m: a network engine for Node.js built to hold a million concurrent connections.
 * The public API is exactly what this module exports.
 */
export { Action } from './core/types.js';
export type {
  CloseReason, Connection, ConnectOptions, EngineOptions, Handler, ListenAddress, Pem, Reactor, ReactorStats, ServerOptions, TcpKeepAlive,
  TlsConnectOptions, TlsInfo, TlsServerOptions,
} from './core/types.js';
export { C1mError, checkOption } from './core/errors.js';
export { IdMap } from './core/id-map.js';
export type { SystemError } from './core/errors.js';
export { createReactor, defaultBackend, listen, serve, nofileLimit, setBatchScheduling, udp, gather, provide, metricsRegistry } from './engine/index.js';
export type { Server, ServeOptions, ServeHandle, UdpServer, WorkerExitInfo } from './engine/index.js';
export type { UdpAddress, UdpBatch, UdpDestination, UdpHandler, UdpOptions, UdpSocket, UdpStats } from './core/udp-types.js';
export { createHttpHandler, HttpRequest, HttpResponse, type HttpHandlerOptions, type RouteHandler, type UpgradeHook } from './protocols/http1/server.js';
export { createWebSocketHandler, publish, WebSocket, WS_SERVER_DEFAULTS, type UpgradeRejection, type WebSocketHandler, type WebSocketServerOptions, type WsPubSubOptions, type WsPubSubStats, type WsPublishOptions } from './protocols/ws/server.js';
export type { PerMessageDeflateOptions } from './protocols/ws/deflate.js';
export { ClientWebSocket, createWebSocketClientHandler, WebSocketClient, WS_CLIENT_DEFAULTS, WsHandshakeError, type WebSocketClientData, type WebSocketClientHandler, type WebSocketClientHandlerOptions, type WebSocketClientOptions, type WebSocketConnectOptions, type WsClientError, type WsHandshakeErrorCode } from './protocols/ws/index.js';
export { PUBSUB_DEFAULTS, TopicTable, checkTopic, type TopicPublishOptions, type TopicTableOptions } from './protocols/pubsub/index.js';
