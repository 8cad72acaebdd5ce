/**
 * HTTP/1.1 (RFC 9112) without sockets: the request parser, its errors, and response framing.
 */
export {
  PARSER_DEFAULTS,
  RequestParser,
  headEndWithin,
  parseFieldText,
  type Field,
  type RequestHead,
  type RequestParserCallbacks,
  type RequestParserOptions,
} from './parser.js';
export { HTTP_PARSE_ERRORS, HttpParseError, type HttpParseErrorCode } from './errors.js';
export {
  CONTINUE_RESPONSE,
  CRLF,
  STATUS_REASONS,
  encodeChunk,
  encodeChunkHeader,
  encodeLastChunk,
  encodeResponseHead,
  formatResponseHead,
  isValidFieldName,
  isValidFieldValue,
  type ResponseFields,
  type ResponseHeadOptions,
} from './response.js';
export {
  HttpRequest,
  HttpResponse,
  UPGRADE_IN_PLACE,
  UPGRADE_QUICK,
  UPGRADE_TAGGED,
  createHttpHandler,
  type HttpHandlerOptions,
  type InPlaceUpgrade,
  type QuickUpgrade,
  type RouteHandler,
  type UpgradeHook,
} from './server.js';
/**
 * RFC 9110 byte classes (lookup tables indexed by byte) and case-insensitive ASCII compare,
 * shared with the WebSocket opening handshake, which reads its request in place.
 * @internal not part of the supported API: the tables may change shape.
 */
export { FIELD_VALUE, HOST, TARGET, TOKEN, ascii, equalsLower } from './chars.js';
