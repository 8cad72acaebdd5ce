import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CONTINUE_RESPONSE,
  CRLF,
  RequestParser,
  STATUS_REASONS,
  encodeChunk,
  encodeChunkHeader,
  encodeLastChunk,
  encodeResponseHead,
  formatResponseHead,
  isValidFieldName,
  isValidFieldValue,
  type Field,
} from '../../src/protocols/http1/index.js';

const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

test('status line and fields, from pairs', () => {
  const head = encodeResponseHead(200, [
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', 5],
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
  ]);
  assert.equal(
    text(head),
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n',
  );
});

test('status line and fields, from a record (arrays repeat the field)', () => {
  assert.equal(
    formatResponseHead(404, { 'Content-Length': 0, Vary: ['Accept', 'Origin'] }),
    'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nVary: Accept\r\nVary: Origin\r\n\r\n',
  );
});

test('no fields, HTTP/1.0, custom and empty reasons, unregistered status', () => {
  assert.equal(formatResponseHead(204), 'HTTP/1.1 204 No Content\r\n\r\n');
  assert.equal(formatResponseHead(200, [], { versionMinor: 0 }), 'HTTP/1.0 200 OK\r\n\r\n');
  assert.equal(formatResponseHead(200, [], { reason: 'Fine Thanks' }), 'HTTP/1.1 200 Fine Thanks\r\n\r\n');
  assert.equal(formatResponseHead(200, [], { reason: '' }), 'HTTP/1.1 200 \r\n\r\n');
  assert.equal(formatResponseHead(599), 'HTTP/1.1 599 \r\n\r\n');
  // The cache of formatted status lines never leaks a custom reason.
  assert.equal(formatResponseHead(200), 'HTTP/1.1 200 OK\r\n\r\n');
});

test('latin1 values are encoded byte for byte', () => {
  const head = encodeResponseHead(200, [['X-Name', 'caf\xe9']]);
  assert.deepEqual([...head.subarray(head.indexOf('caf') + 3, head.indexOf('caf') + 4)], [0xe9]);
});

test('CRLF injection and invalid names are refused', () => {
  const bad: [string, string][] = [
    ['X-Evil', 'a\r\nSet-Cookie: pwned=1'],
    ['X-Evil', 'a\nb'],
    ['X-Evil', 'a\rb'],
    ['X-Evil', 'a\x00b'],
    ['X-Evil', 'a\x7fb'],
    ['X-Evil', 'snow \u2603'],
    ['X Evil', 'a'],
    ['X-Evil:', 'a'],
    ['X-Evil\r\nInjected', 'a'],
    ['', 'a'],
    ['X-\u00e9', 'a'],
  ];
  for (const [name, value] of bad) {
    assert.throws(() => encodeResponseHead(200, [[name, value]]), { code: 'ERR_C1M_HTTP_INVALID_FIELD' }, JSON.stringify([name, value]));
  }
  assert.throws(() => formatResponseHead(200, [], { reason: 'OK\r\nX: y' }), { code: 'ERR_C1M_HTTP_INVALID_FIELD' });
  assert.throws(() => formatResponseHead(200, { 'X-A': ['ok', 'bad\n'] }), { code: 'ERR_C1M_HTTP_INVALID_FIELD' });
  assert.throws(() => formatResponseHead(200, { 'Content-Length': NaN }), { code: 'ERR_C1M_HTTP_INVALID_FIELD' });
  assert.throws(() => formatResponseHead(200, [['X-A', Infinity]]), { code: 'ERR_C1M_HTTP_INVALID_FIELD' });
  assert.throws(() => formatResponseHead(200, [['X-A', undefined as unknown as string]]), { code: 'ERR_C1M_HTTP_INVALID_FIELD' });
});

test('invalid status codes are refused', () => {
  for (const status of [99, 1000, 200.5, NaN, -200]) {
    assert.throws(() => formatResponseHead(status), { code: 'ERR_C1M_HTTP_INVALID_STATUS' }, String(status));
  }
});

test('field validators', () => {
  assert.equal(isValidFieldName('Content-Type'), true);
  assert.equal(isValidFieldName("!#$%&'*+-.^_`|~09azAZ"), true);
  assert.equal(isValidFieldName(''), false);
  assert.equal(isValidFieldName('a b'), false);
  assert.equal(isValidFieldName('a:b'), false);
  assert.equal(isValidFieldValue(''), true);
  assert.equal(isValidFieldValue('a\tb c\xff'), true);
  assert.equal(isValidFieldValue('a\r'), false);
  assert.equal(isValidFieldValue('\u0100'), false);
});

test('the reason table covers every status the parser answers with', () => {
  for (const status of [100, 101, 200, 400, 413, 414, 417, 431, 500, 501, 505]) assert.ok(STATUS_REASONS[status], String(status));
  assert.equal(STATUS_REASONS[413], 'Content Too Large');
  assert.equal(STATUS_REASONS[431], 'Request Header Fields Too Large');
  assert.ok(Object.isFrozen(STATUS_REASONS));
});

test('100 Continue', () => {
  assert.equal(text(CONTINUE_RESPONSE), 'HTTP/1.1 100 Continue\r\n\r\n');
});

test('chunked framing', () => {
  assert.equal(text(encodeChunkHeader(1)), '1\r\n');
  assert.equal(text(encodeChunkHeader(255)), 'ff\r\n');
  assert.equal(text(encodeChunkHeader(0x10000)), '10000\r\n');
  assert.throws(() => encodeChunkHeader(0), RangeError);
  assert.throws(() => encodeChunkHeader(-1), RangeError);
  assert.throws(() => encodeChunkHeader(1.5), RangeError);
  const data = Buffer.from('hello');
  const pieces = encodeChunk(data);
  assert.equal(pieces.length, 3);
  assert.equal(pieces[1], data, 'the data is not copied');
  assert.equal(text(Buffer.concat(pieces)), '5\r\nhello\r\n');
  assert.deepEqual(encodeChunk(new Uint8Array(0)), []);
  assert.equal(text(CRLF), '\r\n');
  assert.equal(text(encodeLastChunk()), '0\r\n\r\n');
  assert.equal(text(encodeLastChunk([['X-Checksum', 'abc']])), '0\r\nX-Checksum: abc\r\n\r\n');
  assert.throws(() => encodeLastChunk([['X', 'a\r\n']]), { code: 'ERR_C1M_HTTP_INVALID_FIELD' });
});

test('round trip: a chunked body framed here is parsed back by RequestParser', () => {
  const parts = ['hello ', 'chunked ', 'x'.repeat(300)];
  const wire = Buffer.concat([
    Buffer.from('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n'),
    ...parts.flatMap((p) => encodeChunk(Buffer.from(p))),
    encodeLastChunk({ 'X-Count': parts.length }),
  ]);
  let body = '';
  let trailers: Field[] | undefined;
  const parser = new RequestParser({
    onRequest() {},
    onBody: (c) => (body += text(c)),
    onMessageComplete: (t) => (trailers = t),
  });
  assert.equal(parser.execute(wire), wire.length);
  assert.equal(body, parts.join(''));
  assert.deepEqual(trailers, [['X-Count', '3']]);
});
