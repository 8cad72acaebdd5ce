/**
 * The WebSocket echo handler behind `c1m serve ws-echo`: every text message comes back as
 * text, every binary message as binary. A handler module, so that every reactor of a
 * multi-core server builds its own handler (one handler per reactor).
 */
import { createWebSocketHandler, type PerMessageDeflateOptions, type WebSocketHandler } from '../protocols/ws/index.js';

/** `handlerOptions` may set `maxPayload`, `pingInterval`, `perMessageDeflate` (off by default) and `shutdownSpread`. */
export function createHandler(options?: { maxPayload?: number; pingInterval?: number; perMessageDeflate?: boolean | PerMessageDeflateOptions; shutdownSpread?: number }): WebSocketHandler {
  return createWebSocketHandler({
    maxPayload: options?.maxPayload,
    pingInterval: options?.pingInterval,
    perMessageDeflate: options?.perMessageDeflate,
    shutdownSpread: options?.shutdownSpread,
    onMessage(ws, data, isBinary) {
      ws.send(data, isBinary);
    },
  });
}
