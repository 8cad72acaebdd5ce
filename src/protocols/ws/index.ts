/**
 * WebSocket (RFC 6455) without sockets: frame parsing, frame encoding, the opening handshake.
 * Servers and clients build on these; nothing here does I/O.
 */
export { MAX_CLOSE_REASON, MAX_CONTROL_PAYLOAD, Opcode, isValidCloseCode } from './constants.js';
export { WS_ERROR_CLOSE_CODES, WsProtocolError, type WsErrorCode } from './errors.js';
export {
  DEFLATE_DEFAULTS,
  PERMESSAGE_DEFLATE,
  PerMessageDeflate,
  acceptDeflateResponse,
  checkDeflateResponse,
  deflateOffer,
  formatDeflateParams,
  negotiateDeflate,
  parseExtensions,
  resolveDeflateOptions,
  type DeflateAgreement,
  type DeflateParams,
  type ExtensionOffer,
  type PerMessageDeflateCodecOptions,
  type PerMessageDeflateOptions,
  type ResolvedDeflateOptions,
} from './deflate.js';
export {
  WS_GUID,
  WS_VERSION,
  acceptKey,
  acceptResponse,
  checkAccept,
  generateKey,
  headerHasToken,
  negotiateProtocol,
  parseProtocols,
  quickUpgradeFor,
  validateKey,
  type AcceptResponseOptions,
} from './handshake.js';
export { FrameReceiver, RECEIVER_DEFAULTS, type FrameHandler, type FrameReceiverOptions } from './receiver.js';
export {
  encodeClose,
  encodeFrame,
  encodeHeader,
  encodePing,
  encodePong,
  frameHeaderSize,
  maskPayload,
  writeFrameHeader,
  type ControlFrameOptions,
  type FrameOptions,
} from './sender.js';
export { UTF8_ACCEPT, UTF8_REJECT, isValidUtf8, validateUtf8 } from './utf8.js';
export {
  HOLD_FRAME_BYTES,
  WS_SERVER_DEFAULTS,
  WebSocket,
  createWebSocketHandler,
  publish,
  type UpgradeRejection,
  type WebSocketHandler,
  type WebSocketServerOptions,
  type WsPubSubOptions,
  type WsPubSubStats,
  type WsPublishOptions,
} from './server.js';
export {
  ClientWebSocket,
  WS_CLIENT_DEFAULTS,
  createWebSocketClientHandler,
  type WebSocketClientHandler,
  type WebSocketClientHandlerOptions,
  type WebSocketConnectOptions,
  type WsClientError,
} from './client.js';
export { WsHandshakeError, type WsHandshakeErrorCode } from './client-handshake.js';
export { WebSocketClient, type WebSocketClientData, type WebSocketClientOptions } from './websocket-client.js';
