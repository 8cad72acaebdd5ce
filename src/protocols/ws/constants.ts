/**
 * RFC 6455 numbers shared by the receiver, the sender and the handshake.
 */

/** Frame opcodes (RFC 6455 5.2). Every other value is reserved. */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** Largest control frame payload (RFC 6455 5.5). */
export const MAX_CONTROL_PAYLOAD = 125;

/** Largest close reason in UTF-8 bytes: a control payload minus the 2-byte code. */
export const MAX_CLOSE_REASON = 123;

/**
 * True when `code` may appear in a close frame on the wire (RFC 6455 7.4 and the IANA
 * registry): 1000-1003, 1007-1014 and 3000-4999. 1004 is reserved, 1005, 1006 and 1015 are
 * for reporting only, 1016-2999 are unassigned, and nothing below 1000 or from 5000 exists.
 */
export function isValidCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
  );
}
