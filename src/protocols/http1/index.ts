/**
 * HTTP/1.1 (RFC 9112) without sockets: the request parser, its errors, and response framing.
 */
export {
  PARSER_DEFAULTS,
  RequestParser,
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
  createHttpHandler,
  type HttpHandlerOptions,
  type InPlaceUpgrade,
  type RouteHandler,
  type UpgradeHook,
} from './server.js';
