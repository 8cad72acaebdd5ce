/**
 * HTTP/1.1 parse errors: one stable code per failure, each with the status a server answers
 * before closing the connection. Codes are never reused (see docs/errors.md).
 */
import { C1mError } from '../../core/index.js';

/** Every parse error code with its wire status and a description. */
export const HTTP_PARSE_ERRORS = {
  ERR_C1M_HTTP_INVALID_METHOD: [400, 'the method is empty or not a token'],
  ERR_C1M_HTTP_INVALID_TARGET: [400, 'the request-target is empty or holds a control byte'],
  ERR_C1M_HTTP_URI_TOO_LONG: [414, 'the request-target is longer than maxUriLength'],
  ERR_C1M_HTTP_INVALID_VERSION: [400, 'the HTTP-version is not HTTP/<digit>.<digit>'],
  ERR_C1M_HTTP_UNSUPPORTED_VERSION: [505, 'the HTTP major version is not 1'],
  ERR_C1M_HTTP_BARE_LF: [400, 'a line ends in LF without CR (only CRLF is accepted)'],
  ERR_C1M_HTTP_BARE_CR: [400, 'a CR is not followed by LF'],
  ERR_C1M_HTTP_INVALID_HEADER_NAME: [400, 'a field name is empty, holds a non-token byte, or has no colon'],
  ERR_C1M_HTTP_HEADER_NAME_WHITESPACE: [400, 'whitespace between a field name and its colon'],
  ERR_C1M_HTTP_INVALID_HEADER_VALUE: [400, 'a field value holds a control byte'],
  ERR_C1M_HTTP_OBS_FOLD: [400, 'a field line starts with whitespace (obsolete line folding)'],
  ERR_C1M_HTTP_HEADERS_TOO_LARGE: [431, 'the head or the trailer section is larger than maxHeaderBytes'],
  ERR_C1M_HTTP_TOO_MANY_HEADERS: [431, 'more field lines than maxHeaders'],
  ERR_C1M_HTTP_MISSING_HOST: [400, 'an HTTP/1.1 request without Host'],
  ERR_C1M_HTTP_DUPLICATE_HOST: [400, 'more than one Host field line'],
  ERR_C1M_HTTP_INVALID_HOST: [400, 'the Host value holds a byte not allowed in uri-host [":" port]'],
  ERR_C1M_HTTP_INVALID_CONTENT_LENGTH: [400, 'Content-Length is not 1*DIGIT'],
  ERR_C1M_HTTP_DUPLICATE_CONTENT_LENGTH: [400, 'more than one Content-Length field line (even identical)'],
  ERR_C1M_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING: [400, 'both Content-Length and Transfer-Encoding'],
  ERR_C1M_HTTP_INVALID_TRANSFER_ENCODING: [400, 'Transfer-Encoding is malformed, repeats chunked, or is sent in HTTP/1.0'],
  ERR_C1M_HTTP_CHUNKED_NOT_LAST: [400, 'Transfer-Encoding does not end with chunked'],
  ERR_C1M_HTTP_UNSUPPORTED_TRANSFER_CODING: [501, 'a transfer coding other than chunked'],
  ERR_C1M_HTTP_BODY_TOO_LARGE: [413, 'the body is larger than maxBodyBytes'],
  ERR_C1M_HTTP_INVALID_CHUNK_SIZE: [400, 'a chunk size is missing or not hexadecimal'],
  ERR_C1M_HTTP_CHUNK_SIZE_OVERFLOW: [400, 'a chunk size has more than 16 hex digits or exceeds 2^53-1'],
  ERR_C1M_HTTP_INVALID_CHUNK_EXTENSION: [400, 'a chunk extension does not follow RFC 9112 §7.1.1'],
  ERR_C1M_HTTP_CHUNK_EXTENSIONS_TOO_LARGE: [413, 'chunk extensions of one message exceed maxHeaderBytes'],
  ERR_C1M_HTTP_INVALID_CHUNK_DATA: [400, 'chunk data is not followed by CRLF'],
} as const satisfies Record<string, readonly [number, string]>;

/** A stable parse error code. */
export type HttpParseErrorCode = keyof typeof HTTP_PARSE_ERRORS;

/**
 * The request bytes break RFC 9112 or a limit. The connection cannot be resynchronised:
 * answer `status` (with `Connection: close`) and close it.
 */
export class HttpParseError extends C1mError {
  declare readonly code: HttpParseErrorCode;
  /** The HTTP status to answer with: 400, 413, 414, 431, 501 or 505. */
  readonly status: number;
  constructor(code: HttpParseErrorCode) {
    const [status, message] = HTTP_PARSE_ERRORS[code];
    super(code, message);
    this.name = 'HttpParseError';
    this.status = status;
  }
}
