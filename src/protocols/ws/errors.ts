/**
 * WebSocket errors. A peer that breaks RFC 6455 gets a `WsProtocolError`: a stable `code`
 * for programs and the `closeCode` to send in our close frame before closing the connection.
 * Misuse of the encoders and handshake helpers (bad arguments) throws a plain `C1mError`
 * with code `ERR_C1M_WS_INVALID_ARGUMENT`.
 *
 * Every code, with its close code (these rows belong in docs/errors.md):
 *
 * | code                                  | close | meaning                                                  |
 * |---------------------------------------|-------|----------------------------------------------------------|
 * | ERR_C1M_WS_RESERVED_BITS              | 1002  | RSV bit set that no negotiated extension defines         |
 * | ERR_C1M_WS_INVALID_OPCODE             | 1002  | reserved opcode (3-7, 11-15)                             |
 * | ERR_C1M_WS_CONTROL_FRAME_TOO_LONG     | 1002  | control frame payload over 125 bytes                     |
 * | ERR_C1M_WS_FRAGMENTED_CONTROL_FRAME   | 1002  | control frame without FIN                                |
 * | ERR_C1M_WS_UNEXPECTED_CONTINUATION    | 1002  | continuation frame with no message in progress           |
 * | ERR_C1M_WS_EXPECTED_CONTINUATION      | 1002  | new text/binary frame inside a fragmented message        |
 * | ERR_C1M_WS_MASK_REQUIRED              | 1002  | a client sent an unmasked frame (we are the server)      |
 * | ERR_C1M_WS_UNEXPECTED_MASK            | 1002  | a server sent a masked frame (we are the client)         |
 * | ERR_C1M_WS_INVALID_LENGTH             | 1002  | 64-bit payload length with its most significant bit set  |
 * | ERR_C1M_WS_INVALID_CLOSE_PAYLOAD      | 1002  | close frame payload of exactly one byte                  |
 * | ERR_C1M_WS_INVALID_CLOSE_CODE         | 1002  | close code not allowed on the wire (RFC 6455 7.4, IANA)  |
 * | ERR_C1M_WS_INVALID_UTF8               | 1007  | text message or close reason is not valid UTF-8          |
 * | ERR_C1M_WS_MESSAGE_TOO_BIG            | 1009  | message would exceed `maxPayload` (also once inflated)  |
 * | ERR_C1M_WS_TOO_MANY_FRAGMENTS         | 1009  | message would exceed `maxFragments` frames               |
 * | ERR_C1M_WS_INVALID_COMPRESSED_DATA    | 1007  | a compressed (RSV1) message is not valid DEFLATE data    |
 * | ERR_C1M_WS_INVALID_ARGUMENT           |   -   | misuse: bad argument to an encoder or handshake helper   |
 */
import { C1mError } from '../../core/index.js';

/** Close code of every protocol error code. */
export const WS_ERROR_CLOSE_CODES = {
  ERR_C1M_WS_RESERVED_BITS: 1002,
  ERR_C1M_WS_INVALID_OPCODE: 1002,
  ERR_C1M_WS_CONTROL_FRAME_TOO_LONG: 1002,
  ERR_C1M_WS_FRAGMENTED_CONTROL_FRAME: 1002,
  ERR_C1M_WS_UNEXPECTED_CONTINUATION: 1002,
  ERR_C1M_WS_EXPECTED_CONTINUATION: 1002,
  ERR_C1M_WS_MASK_REQUIRED: 1002,
  ERR_C1M_WS_UNEXPECTED_MASK: 1002,
  ERR_C1M_WS_INVALID_LENGTH: 1002,
  ERR_C1M_WS_INVALID_CLOSE_PAYLOAD: 1002,
  ERR_C1M_WS_INVALID_CLOSE_CODE: 1002,
  ERR_C1M_WS_INVALID_UTF8: 1007,
  ERR_C1M_WS_MESSAGE_TOO_BIG: 1009,
  ERR_C1M_WS_TOO_MANY_FRAGMENTS: 1009,
  ERR_C1M_WS_INVALID_COMPRESSED_DATA: 1007,
} as const;

/** A stable protocol error code (`ERR_C1M_WS_*`). */
export type WsErrorCode = keyof typeof WS_ERROR_CLOSE_CODES;

/** The peer broke RFC 6455. Send a close frame with `closeCode`, then close the connection. */
export class WsProtocolError extends C1mError {
  declare readonly code: WsErrorCode;
  /** The close code to send to the peer (1002, 1007 or 1009). */
  readonly closeCode: number;
  constructor(code: WsErrorCode, message: string) {
    super(code, message);
    this.name = 'WsProtocolError';
    this.closeCode = WS_ERROR_CLOSE_CODES[code];
  }
}

/** Throw `ERR_C1M_WS_INVALID_ARGUMENT` unless `ok` (misuse of an encoder or helper). */
export function checkArgument(ok: boolean, message: string): void {
  if (!ok) throw new C1mError('ERR_C1M_WS_INVALID_ARGUMENT', message);
}
