import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HTTP_PARSE_ERRORS,
  HttpParseError,
  RequestParser,
  type Field,
  type HttpParseErrorCode,
  type RequestHead,
  type RequestParserOptions,
} from '../../src/protocols/http1/index.js';
import { C1mError } from '../../src/core/errors.js';

type Event = ['request', RequestHead] | ['body', string] | ['complete', Field[] | undefined];

interface Outcome {
  events: Event[];
  error: { code: string; status: number } | null;
  /** Stream offset of the first byte after an upgrade message, or null. */
  upgradeAt: number | null;
  /** Largest tail the parser left unconsumed. */
  maxPending: number;
}

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/**
 * Feed `chunks` the way the engine does: unconsumed bytes are presented again, followed by the
 * next chunk. Consecutive body pieces are merged so that outcomes compare across splits.
 */
function run(chunks: readonly Uint8Array[], options?: RequestParserOptions): Outcome {
  const events: Event[] = [];
  const parser = new RequestParser(
    {
      onRequest: (head) => events.push(['request', head]),
      onBody: (chunk) => {
        const text = Buffer.from(chunk).toString('latin1');
        const last = events[events.length - 1];
        if (last !== undefined && last[0] === 'body') last[1] += text;
        else events.push(['body', text]);
      },
      onMessageComplete: (trailers) => events.push(['complete', trailers]),
    },
    options,
  );
  const out: Outcome = { events, error: null, upgradeAt: null, maxPending: 0 };
  let pending: Buffer = Buffer.alloc(0);
  let base = 0; // stream offset of pending[0]
  for (const chunk of chunks) {
    const data = pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([pending, chunk]);
    let n: number;
    try {
      n = parser.execute(data);
    } catch (err) {
      assert.ok(err instanceof HttpParseError, `unexpected ${String(err)}`);
      out.error = { code: err.code, status: err.status };
      // Dead for good: the same error again.
      assert.throws(() => parser.execute(bytes('GET / HTTP/1.1\r\n\r\n')), (again) => again === err);
      return out;
    }
    assert.ok(n >= 0 && n <= data.length);
    base += n;
    pending = data.subarray(n);
    out.maxPending = Math.max(out.maxPending, pending.length);
    if (parser.upgraded) {
      out.upgradeAt = base;
      assert.equal(parser.execute(pending), 0, 'an upgraded parser consumes nothing');
      return out;
    }
  }
  return out;
}

/** The whole fixture, split in two at every offset, and one byte at a time. */
function* splits(data: Buffer): Generator<Buffer[]> {
  yield [data];
  for (let k = 1; k < data.length; k++) yield [data.subarray(0, k), data.subarray(k)];
  yield Array.from(data, (_, k) => data.subarray(k, k + 1));
}

/** Parse `fixture` every way and check every way gives the same outcome; return it. */
function parseAllWays(fixture: string | Buffer, options?: RequestParserOptions): Outcome {
  const data = typeof fixture === 'string' ? bytes(fixture) : fixture;
  const whole = run([data], options);
  for (const chunks of splits(data)) {
    const split = run(chunks, options);
    const sizes = chunks.map((c) => c.length).join('+');
    assert.deepEqual(split.events, whole.events, `events differ when split ${sizes}`);
    assert.deepEqual(split.error, whole.error, `error differs when split ${sizes}`);
    assert.equal(split.upgradeAt, whole.upgradeAt, `upgrade offset differs when split ${sizes}`);
  }
  return whole;
}

function parseOk(fixture: string | Buffer, options?: RequestParserOptions): Outcome {
  const out = parseAllWays(fixture, options);
  assert.equal(out.error, null, `unexpected ${out.error?.code}`);
  return out;
}

function parseError(fixture: string | Buffer, code: HttpParseErrorCode, status: number, options?: RequestParserOptions): void {
  const out = parseAllWays(fixture, options);
  assert.deepEqual(out.error, { code, status }, JSON.stringify(fixture).slice(0, 200));
  assert.equal(HTTP_PARSE_ERRORS[code][0], status);
}

function head(partial: Partial<RequestHead>): RequestHead {
  return {
    method: 'GET',
    target: '/',
    versionMinor: 1,
    headers: [],
    host: null,
    contentLength: null,
    chunked: false,
    keepAlive: true,
    upgrade: false,
    upgradeProtocol: null,
    expectContinue: false,
    ...partial,
  };
}

// ---------------------------------------------------------------------------------------------
// Valid requests

test('a simple GET', () => {
  const out = parseOk('GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n');
  assert.deepEqual(out.events, [
    [
      'request',
      head({
        target: '/index.html?q=1',
        headers: [
          ['Host', 'example.com'],
          ['Accept', '*/*'],
        ],
        host: 'example.com',
      }),
    ],
    ['complete', undefined],
  ]);
  assert.equal(out.maxPending, 0);
});

test('field values: OWS trimmed, inner whitespace, tabs, obs-text and empty values kept', () => {
  const out = parseOk('GET / HTTP/1.1\r\nhost:h\r\nX-A: \t a  b \t\r\nX-Empty:\r\nX-Sp:   \r\nX-Obs: caf\xe9\xff\r\n\r\n');
  const [, h] = out.events[0] as ['request', RequestHead];
  assert.deepEqual(h.headers, [
    ['host', 'h'],
    ['X-A', 'a  b'],
    ['X-Empty', ''],
    ['X-Sp', ''],
    ['X-Obs', 'caf\xe9\xff'],
  ]);
});

test('methods and targets: HEAD, custom tokens, absolute-form, asterisk-form, authority-form, raw UTF-8', () => {
  const cases: [string, string, string][] = [
    ['HEAD', '/x', 'HEAD'],
    ['PURGE', '/cache', 'PURGE'],
    ['M-SEARCH', '*', 'M-SEARCH'],
    ['OPTIONS', '*', 'OPTIONS'],
    ['GET', 'http://example.com:8080/a/b?c#d', 'GET'],
    ['DELETE', '/caf\xc3\xa9', 'DELETE'],
  ];
  for (const [method, target] of cases) {
    const out = parseOk(`${method} ${target} HTTP/1.1\r\nHost: h\r\n\r\n`);
    const [, h] = out.events[0] as ['request', RequestHead];
    assert.equal(h.method, method);
    assert.equal(h.target, target);
    assert.equal(Buffer.from(h.target, 'latin1').toString('latin1'), target);
    assert.equal(out.events.length, 2);
  }
});

test('Content-Length body', () => {
  const out = parseOk('POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world');
  assert.deepEqual(out.events, [
    ['request', head({ method: 'POST', target: '/upload', headers: [['Host', 'h'], ['Content-Length', '11']], host: 'h', contentLength: 11 })],
    ['body', 'hello world'],
    ['complete', undefined],
  ]);
});

test('Content-Length: 0 and leading zeros', () => {
  let out = parseOk('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n');
  assert.deepEqual(out.events.map((e) => e[0]), ['request', 'complete']);
  assert.equal((out.events[0] as ['request', RequestHead])[1].contentLength, 0);
  out = parseOk('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 003\r\n\r\nabc');
  assert.deepEqual(out.events.slice(1), [['body', 'abc'], ['complete', undefined]]);
});

test('a binary body (hex fixture) is delivered byte for byte', () => {
  const fixture = Buffer.concat([
    bytes('PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\n'),
    Buffer.from('000d0a0a0dff7f80', 'hex'),
  ]);
  const out = parseOk(fixture);
  assert.deepEqual(out.events[1], ['body', Buffer.from('000d0a0a0dff7f80', 'hex').toString('latin1')]);
});

test('chunked body with extensions and trailers', () => {
  const fixture =
    'POST /chunks HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '5;name=value;flag\r\nhello\r\n' +
    '1 ; a = "q\\"uo;ted" ; b\r\n \r\n' +
    'A\r\n0123456789\r\n' +
    '0;last=yes\r\nExpires: never\r\nX-Checksum:  abc \r\n\r\n';
  const out = parseOk(fixture);
  assert.deepEqual(out.events, [
    [
      'request',
      head({ method: 'POST', target: '/chunks', headers: [['Host', 'h'], ['Transfer-Encoding', 'chunked']], host: 'h', chunked: true }),
    ],
    ['body', 'hello 0123456789'],
    ['complete', [['Expires', 'never'], ['X-Checksum', 'abc']]],
  ]);
});

test('chunked body: hex digits of both cases, no trailers, Transfer-Encoding case and list syntax', () => {
  const out = parseOk('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , CHUNKED ,\r\n\r\n1a\r\n' + 'x'.repeat(26) + '\r\n0000\r\n\r\n');
  assert.deepEqual(out.events.slice(1), [['body', 'x'.repeat(26)], ['complete', undefined]]);
  const h = (out.events[0] as ['request', RequestHead])[1];
  assert.equal(h.chunked, true);
  assert.equal(h.contentLength, null);
});

test('pipelining: several requests in one buffer, in order', () => {
  const fixture =
    'GET /1 HTTP/1.1\r\nHost: h\r\n\r\n' +
    'POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc' +
    'POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n' +
    '\r\nHEAD /4 HTTP/1.1\r\nHost: h\r\n\r\n';
  const out = parseOk(fixture);
  const summary = out.events.map((e) => (e[0] === 'request' ? `${e[1].method} ${e[1].target}` : e[0] === 'body' ? `body ${e[1]}` : 'complete'));
  assert.deepEqual(summary, ['GET /1', 'complete', 'POST /2', 'body abc', 'complete', 'POST /3', 'body de', 'complete', 'HEAD /4', 'complete']);
});

test('empty lines before a request line are skipped', () => {
  const out = parseOk('\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n');
  assert.equal(out.events.length, 2);
});

test('keep-alive rules for HTTP/1.0 and 1.1', () => {
  const cases: [string, string, boolean][] = [
    ['1.1', '', true],
    ['1.1', 'Connection: close\r\n', false],
    ['1.1', 'Connection: keep-alive\r\n', true],
    ['1.1', 'Connection: Keep-Alive, CLOSE\r\n', false],
    ['1.1', 'Connection: foo\r\nConnection: close\r\n', false],
    ['1.0', '', false],
    ['1.0', 'Connection: keep-alive\r\n', true],
    ['1.0', 'Connection: Keep-Alive\r\n', true],
    ['1.0', 'Connection: keep-alive, close\r\n', false],
  ];
  for (const [version, fields, keepAlive] of cases) {
    const out = parseOk(`GET / HTTP/${version}\r\nHost: h\r\n${fields}\r\n`);
    const h = (out.events[0] as ['request', RequestHead])[1];
    assert.equal(h.keepAlive, keepAlive, `${version} ${JSON.stringify(fields)}`);
    assert.equal(h.versionMinor, version === '1.0' ? 0 : 1);
  }
});

test('HTTP/1.0 needs no Host', () => {
  const out = parseOk('GET / HTTP/1.0\r\n\r\n');
  assert.deepEqual(out.events, [['request', head({ versionMinor: 0, keepAlive: false })], ['complete', undefined]]);
});

test('HTTP/1.2 and later minors are handled as HTTP/1.1', () => {
  const out = parseOk('GET / HTTP/1.9\r\nHost: h\r\n\r\n');
  assert.equal((out.events[0] as ['request', RequestHead])[1].versionMinor, 1);
});

test('after a message that closes the connection, later bytes are discarded', () => {
  const out = parseOk('GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n\x00garbage');
  assert.deepEqual(out.events.map((e) => e[0]), ['request', 'complete']);
  assert.equal(out.maxPending, 0);
});

test('Expect: 100-continue', () => {
  const out = parseOk('PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok');
  const h = (out.events[0] as ['request', RequestHead])[1];
  assert.equal(h.expectContinue, true);
  assert.deepEqual(out.events.slice(1), [['body', 'ok'], ['complete', undefined]]);
  // Ignored in HTTP/1.0 (RFC 9110 §10.1.1), and other expectations are not 100-continue.
  for (const f of ['PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n', 'PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue-x\r\n\r\n']) {
    assert.equal((parseOk(f).events[0] as ['request', RequestHead])[1].expectContinue, false);
  }
});

test('Upgrade: the parser stops and reports where the new protocol begins', () => {
  const request =
    'GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
  const frames = '\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58GET / HTTP/1.1\r\n';
  const out = parseOk(request + frames);
  assert.equal(out.upgradeAt, request.length);
  const h = (out.events[0] as ['request', RequestHead])[1];
  assert.equal(h.upgrade, true);
  assert.equal(h.upgradeProtocol, 'websocket');
  assert.deepEqual(out.events.map((e) => e[0]), ['request', 'complete']);
  // Upgrade with nothing after the head: the offset is the end of the data.
  assert.equal(parseOk(request).upgradeAt, request.length);
});

test('Upgrade with a body: the switch happens after the body', () => {
  const request = 'POST / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nContent-Length: 4\r\n\r\nbody';
  const out = parseOk(request + 'PRI * HTTP/2.0');
  assert.equal(out.upgradeAt, request.length);
  assert.deepEqual(out.events.map((e) => e[0]), ['request', 'body', 'complete']);
});

test('Upgrade without the Connection option, or in HTTP/1.0, is not an upgrade', () => {
  for (const f of [
    'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n',
    'GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade, keep-alive\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n',
  ]) {
    const out = parseOk(f);
    assert.equal(out.upgradeAt, null);
    assert.equal((out.events[0] as ['request', RequestHead])[1].upgrade, false);
    assert.equal(out.events.length, 4);
  }
});

test('CONNECT switches to a tunnel after its head', () => {
  const request = 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n';
  const out = parseOk(request + '\x16\x03\x01');
  assert.equal(out.upgradeAt, request.length);
  const h = (out.events[0] as ['request', RequestHead])[1];
  assert.equal(h.method, 'CONNECT');
  assert.equal(h.target, 'example.com:443');
  assert.equal(h.upgrade, true);
});

test('declining an upgrade: reset() and go on from the returned offset', () => {
  const events: string[] = [];
  const parser = new RequestParser({
    onRequest: (h) => events.push(h.target),
    onBody: () => {},
    onMessageComplete: () => events.push('complete'),
  });
  const data = bytes('GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n');
  const offset = parser.execute(data);
  assert.equal(parser.upgraded, true);
  assert.equal(parser.execute(data.subarray(offset)), 0);
  parser.reset();
  assert.equal(parser.execute(data.subarray(offset)), data.length - offset);
  assert.deepEqual(events, ['/ws', 'complete', '/next', 'complete']);
  assert.equal(parser.idle, true);
});

test('limits: exactly at each limit is accepted', () => {
  const base = 'GET / HTTP/1.1\r\nHost: h\r\n\r\n';
  parseOk(base, { maxHeaderBytes: base.length });
  parseOk('\r\n' + base, { maxHeaderBytes: base.length + 2 });
  parseOk(`GET /${'a'.repeat(99)} HTTP/1.1\r\nHost: h\r\n\r\n`, { maxUriLength: 100 });
  parseOk('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n12345', { maxBodyBytes: 5 });
  parseOk('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n12\r\n3\r\n345\r\n0\r\n\r\n', { maxBodyBytes: 5 });
  parseOk('GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n', { maxHeaders: 3 });
  const trailers = 'X: 1\r\n\r\n';
  parseOk(`POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${trailers}`, { maxHeaderBytes: 100 });
  parseOk(`POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n${trailers}`, { maxHeaders: 2 });
});

test('limits: one byte (or field) past each limit fails with its status', () => {
  const base = 'GET / HTTP/1.1\r\nHost: h\r\n\r\n';
  parseError(base, 'ERR_C1M_HTTP_HEADERS_TOO_LARGE', 431, { maxHeaderBytes: base.length - 1 });
  parseError('\r\n' + base, 'ERR_C1M_HTTP_HEADERS_TOO_LARGE', 431, { maxHeaderBytes: base.length + 1 });
  parseError(`GET /${'a'.repeat(100)} HTTP/1.1\r\nHost: h\r\n\r\n`, 'ERR_C1M_HTTP_URI_TOO_LONG', 414, { maxUriLength: 100 });
  parseError('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\n123456', 'ERR_C1M_HTTP_BODY_TOO_LARGE', 413, { maxBodyBytes: 5 });
  parseError(
    'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n12\r\n4\r\n3456\r\n0\r\n\r\n',
    'ERR_C1M_HTTP_BODY_TOO_LARGE',
    413,
    { maxBodyBytes: 5 },
  );
  parseError('GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n', 'ERR_C1M_HTTP_TOO_MANY_HEADERS', 431, { maxHeaders: 3 });
  parseError('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\nY: 2\r\n\r\n', 'ERR_C1M_HTTP_TOO_MANY_HEADERS', 431, {
    maxHeaders: 1,
  });
  parseError(
    `POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ${'v'.repeat(70)}\r\n\r\n`,
    'ERR_C1M_HTTP_HEADERS_TOO_LARGE',
    431,
    { maxHeaderBytes: 64 },
  );
  parseError(
    `POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(70)}\r\nx\r\n0\r\n\r\n`,
    'ERR_C1M_HTTP_CHUNK_EXTENSIONS_TOO_LARGE',
    413,
    { maxHeaderBytes: 64 },
  );
});

test('limits: default values', () => {
  const uri = run([bytes(`GET /${'a'.repeat(8 * 1024)} HTTP/1.1\r\nHost: h\r\n\r\n`)]);
  assert.deepEqual(uri.error, { code: 'ERR_C1M_HTTP_URI_TOO_LONG', status: 414 });
  assert.equal(run([bytes(`GET /${'a'.repeat(8 * 1024 - 1)} HTTP/1.1\r\nHost: h\r\n\r\n`)]).error, null);
  const big = run([bytes(`GET / HTTP/1.1\r\nHost: h\r\nX: ${'v'.repeat(16 * 1024)}\r\n\r\n`)]);
  assert.deepEqual(big.error, { code: 'ERR_C1M_HTTP_HEADERS_TOO_LARGE', status: 431 });
  const many = run([bytes(`GET / HTTP/1.1\r\n${'A: b\r\n'.repeat(101)}\r\n`)]);
  assert.deepEqual(many.error, { code: 'ERR_C1M_HTTP_TOO_MANY_HEADERS', status: 431 });
  const body = run([bytes(`POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ${1024 * 1024 + 1}\r\n\r\n`)]);
  assert.deepEqual(body.error, { code: 'ERR_C1M_HTTP_BODY_TOO_LARGE', status: 413 });
  // A Content-Length past 2^53 is too large, not malformed.
  const huge = run([bytes('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n')]);
  assert.deepEqual(huge.error, { code: 'ERR_C1M_HTTP_BODY_TOO_LARGE', status: 413 });
});

test('a head that never ends is refused once it passes maxHeaderBytes, and the tail held back stays bounded', () => {
  const options = { maxHeaderBytes: 256 };
  const chunks = [bytes('GET / HTTP/1.1\r\nHost: h\r\nX-Long: ')];
  for (let k = 0; k < 100; k++) chunks.push(bytes('abcd'));
  const out = run(chunks, options);
  assert.deepEqual(out.error, { code: 'ERR_C1M_HTTP_HEADERS_TOO_LARGE', status: 431 });
  assert.ok(out.maxPending <= 256);
  // Completed lines are consumed: only the incomplete line is held back.
  const partial = run([bytes('GET / HTTP/1.1\r\nHost: h\r\nX-Partial: abc')]);
  assert.equal(partial.maxPending, 'X-Partial: abc'.length);
});

// ---------------------------------------------------------------------------------------------
// Errors: every rejection, with its code and status, at every split.

const GET = 'GET / HTTP/1.1\r\nHost: h\r\n';
const POST = 'POST / HTTP/1.1\r\nHost: h\r\n';

const ERROR_CASES: [name: string, fixture: string, code: HttpParseErrorCode, status: number][] = [
  // Request-smuggling defences (RFC 9112 §6.3, §11.2)
  ['Content-Length with Transfer-Encoding', `${POST}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`, 'ERR_C1M_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING', 400],
  ['Transfer-Encoding with Content-Length', `${POST}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n`, 'ERR_C1M_HTTP_CONTENT_LENGTH_WITH_TRANSFER_ENCODING', 400],
  ['identical duplicate Content-Length', `${POST}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, 'ERR_C1M_HTTP_DUPLICATE_CONTENT_LENGTH', 400],
  ['conflicting Content-Length', `${POST}Content-Length: 3\r\ncontent-length: 4\r\n\r\nabc`, 'ERR_C1M_HTTP_DUPLICATE_CONTENT_LENGTH', 400],
  ['Content-Length list', `${POST}Content-Length: 3, 3\r\n\r\nabc`, 'ERR_C1M_HTTP_INVALID_CONTENT_LENGTH', 400],
  ['Content-Length with a sign', `${POST}Content-Length: +3\r\n\r\nabc`, 'ERR_C1M_HTTP_INVALID_CONTENT_LENGTH', 400],
  ['negative Content-Length', `${POST}Content-Length: -1\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CONTENT_LENGTH', 400],
  ['hex Content-Length', `${POST}Content-Length: 0x10\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CONTENT_LENGTH', 400],
  ['Content-Length with inner space', `${POST}Content-Length: 1 2\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CONTENT_LENGTH', 400],
  ['empty Content-Length', `${POST}Content-Length: \r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CONTENT_LENGTH', 400],
  ['unknown transfer coding', `${POST}Transfer-Encoding: gzip, chunked\r\n\r\n`, 'ERR_C1M_HTTP_UNSUPPORTED_TRANSFER_CODING', 501],
  ['a coding with parameters', `${POST}Transfer-Encoding: x;q=1, chunked\r\n\r\n`, 'ERR_C1M_HTTP_UNSUPPORTED_TRANSFER_CODING', 501],
  ['chunked not last', `${POST}Transfer-Encoding: chunked, gzip\r\n\r\n`, 'ERR_C1M_HTTP_CHUNKED_NOT_LAST', 400],
  ['chunked not last across lines', `${POST}Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n`, 'ERR_C1M_HTTP_CHUNKED_NOT_LAST', 400],
  ['only a non-chunked coding', `${POST}Transfer-Encoding: identity\r\n\r\n`, 'ERR_C1M_HTTP_CHUNKED_NOT_LAST', 400],
  ['empty Transfer-Encoding', `${POST}Transfer-Encoding: \r\n\r\n`, 'ERR_C1M_HTTP_CHUNKED_NOT_LAST', 400],
  ['chunked twice', `${POST}Transfer-Encoding: chunked, chunked\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_TRANSFER_ENCODING', 400],
  ['chunked twice across lines', `${POST}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_TRANSFER_ENCODING', 400],
  ['malformed Transfer-Encoding', `${POST}Transfer-Encoding: chun ked\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_TRANSFER_ENCODING', 400],
  ['Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'ERR_C1M_HTTP_INVALID_TRANSFER_ENCODING', 400],
  ['obs-fold', `${GET}X-Folded: a\r\n b\r\n\r\n`, 'ERR_C1M_HTTP_OBS_FOLD', 400],
  ['obs-fold with a tab', `${GET}X-Folded: a\r\n\tb\r\n\r\n`, 'ERR_C1M_HTTP_OBS_FOLD', 400],
  ['whitespace before the first field', 'GET / HTTP/1.1\r\n Host: h\r\n\r\n', 'ERR_C1M_HTTP_OBS_FOLD', 400],
  ['space between name and colon', `GET / HTTP/1.1\r\nHost : h\r\n\r\n`, 'ERR_C1M_HTTP_HEADER_NAME_WHITESPACE', 400],
  ['tab between name and colon', `${POST}Content-Length\t: 3\r\n\r\nabc`, 'ERR_C1M_HTTP_HEADER_NAME_WHITESPACE', 400],
  ['NUL in a value', `${GET}X: a\x00b\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_HEADER_VALUE', 400],
  ['CTL in a value', `${GET}X: a\x01b\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_HEADER_VALUE', 400],
  ['DEL in a value', `${GET}X: a\x7fb\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_HEADER_VALUE', 400],
  ['vertical tab in a value', `${GET}X: a\x0bb\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_HEADER_VALUE', 400],
  ['bare CR in a value', `${GET}X: a\rb\r\n\r\n`, 'ERR_C1M_HTTP_BARE_CR', 400],
  ['invalid method byte', 'G@T / HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_INVALID_METHOD', 400],
  ['method with a parenthesis', 'GET( / HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_INVALID_METHOD', 400],
  ['empty method', ' / HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_INVALID_METHOD', 400],
  ['NUL before the method', '\x00GET / HTTP/1.1\r\n\r\n', 'ERR_C1M_HTTP_INVALID_METHOD', 400],
  ['invalid field-name byte', `${GET}X(a): b\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_HEADER_NAME', 400],
  ['quote in a field name', `${GET}X"a: b\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_HEADER_NAME', 400],
  ['empty field name', `${GET}: b\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_HEADER_NAME', 400],
  ['field line without colon', `${GET}NoColon\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_HEADER_NAME', 400],
  ['non-ASCII field name', `${GET}X\xe9: b\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_HEADER_NAME', 400],
  ['bare LF ending the request line', 'GET / HTTP/1.1\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_BARE_LF', 400],
  ['bare LF ending a field line', 'GET / HTTP/1.1\r\nHost: h\n\r\n', 'ERR_C1M_HTTP_BARE_LF', 400],
  ['bare LF ending the head', 'GET / HTTP/1.1\r\nHost: h\r\n\n', 'ERR_C1M_HTTP_BARE_LF', 400],
  ['bare LF as an empty line', '\nGET / HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_BARE_LF', 400],
  ['bare LF after a chunk size', `${POST}Transfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n`, 'ERR_C1M_HTTP_BARE_LF', 400],
  ['bare LF after chunk data', `${POST}Transfer-Encoding: chunked\r\n\r\n1\r\nx\n0\r\n\r\n`, 'ERR_C1M_HTTP_BARE_LF', 400],
  ['bare LF in a chunk extension', `${POST}Transfer-Encoding: chunked\r\n\r\n1;a\nx\r\n0\r\n\r\n`, 'ERR_C1M_HTTP_BARE_LF', 400],
  ['bare LF ending a trailer', `${POST}Transfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n`, 'ERR_C1M_HTTP_BARE_LF', 400],
  ['CR without LF after the version', 'GET / HTTP/1.1\rHost: h\r\n\r\n', 'ERR_C1M_HTTP_BARE_CR', 400],
  ['CR without LF ending the head', 'GET / HTTP/1.1\r\nHost: h\r\n\rx', 'ERR_C1M_HTTP_BARE_CR', 400],
  ['missing Host in HTTP/1.1', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n', 'ERR_C1M_HTTP_MISSING_HOST', 400],
  ['two Host lines', 'GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n', 'ERR_C1M_HTTP_DUPLICATE_HOST', 400],
  ['Host with a space', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 'ERR_C1M_HTTP_INVALID_HOST', 400],
  ['Host with userinfo', 'GET / HTTP/1.1\r\nHost: user@a\r\n\r\n', 'ERR_C1M_HTTP_INVALID_HOST', 400],
  ['Host with a path', 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', 'ERR_C1M_HTTP_INVALID_HOST', 400],
  ['non-hex chunk size', `${POST}Transfer-Encoding: chunked\r\n\r\nx\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CHUNK_SIZE', 400],
  ['empty chunk size', `${POST}Transfer-Encoding: chunked\r\n\r\n\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CHUNK_SIZE', 400],
  ['negative chunk size', `${POST}Transfer-Encoding: chunked\r\n\r\n-1\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CHUNK_SIZE', 400],
  ['chunk size with a 0x prefix', `${POST}Transfer-Encoding: chunked\r\n\r\n0x1\r\nx\r\n0\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CHUNK_SIZE', 400],
  ['chunk size past 2^53', `${POST}Transfer-Encoding: chunked\r\n\r\n20000000000000\r\n`, 'ERR_C1M_HTTP_CHUNK_SIZE_OVERFLOW', 400],
  ['chunk size of 17 digits', `${POST}Transfer-Encoding: chunked\r\n\r\n00000000000000001\r\nx\r\n`, 'ERR_C1M_HTTP_CHUNK_SIZE_OVERFLOW', 400],
  ['chunk size wrapping 2^64', `${POST}Transfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n`, 'ERR_C1M_HTTP_CHUNK_SIZE_OVERFLOW', 400],
  ['chunk longer than its size', `${POST}Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CHUNK_DATA', 400],
  ['empty extension name', `${POST}Transfer-Encoding: chunked\r\n\r\n1;\r\nx\r\n0\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CHUNK_EXTENSION', 400],
  ['whitespace not followed by ;', `${POST}Transfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CHUNK_EXTENSION', 400],
  ['extension without value after =', `${POST}Transfer-Encoding: chunked\r\n\r\n1;a=\r\nx\r\n0\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CHUNK_EXTENSION', 400],
  ['unterminated quoted extension', `${POST}Transfer-Encoding: chunked\r\n\r\n1;a="x\r\nx\r\n0\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CHUNK_EXTENSION', 400],
  ['CTL in an extension', `${POST}Transfer-Encoding: chunked\r\n\r\n1;a\x01\r\nx\r\n0\r\n\r\n`, 'ERR_C1M_HTTP_INVALID_CHUNK_EXTENSION', 400],
  ['HTTP/2.0 request line', 'GET / HTTP/2.0\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_UNSUPPORTED_VERSION', 505],
  ['HTTP/0.9 version', 'GET / HTTP/0.9\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_UNSUPPORTED_VERSION', 505],
  ['HTTP/2 prior-knowledge preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'ERR_C1M_HTTP_UNSUPPORTED_VERSION', 505],
  ['lowercase version', 'GET / http/1.1\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_INVALID_VERSION', 400],
  ['two-digit minor', 'GET / HTTP/1.10\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_INVALID_VERSION', 400],
  ['short version', 'GET / HTTP/1\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_INVALID_VERSION', 400],
  ['space after the version', 'GET / HTTP/1.1 \r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_INVALID_VERSION', 400],
  ['HTTP/0.9 request without version', 'GET /\r\n\r\n', 'ERR_C1M_HTTP_INVALID_TARGET', 400],
  ['two spaces after the method', 'GET  / HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_INVALID_TARGET', 400],
  ['CTL in the target', 'GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_INVALID_TARGET', 400],
  ['tab in the target', 'GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_INVALID_TARGET', 400],
  ['DEL in the target', 'GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n', 'ERR_C1M_HTTP_INVALID_TARGET', 400],
];

for (const [name, fixture, code, status] of ERROR_CASES) {
  test(`rejects ${name}: ${code} (${status}), at every split`, () => parseError(fixture, code, status));
}

test('no request callback fires for a request that fails after its head', () => {
  const out = run([bytes(`${POST}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n`)]);
  assert.deepEqual(out.events, []);
});

test('requests before a bad one are delivered in full', () => {
  const out = run([bytes(`${GET}\r\nGET /b HTTP/1.1\r\nHost : h\r\n\r\n`)]);
  assert.deepEqual(out.events.map((e) => e[0]), ['request', 'complete']);
  assert.equal(out.error?.code, 'ERR_C1M_HTTP_HEADER_NAME_WHITESPACE');
});

test('the error carries code, status, name and is a C1mError', () => {
  const parser = new RequestParser({ onRequest() {}, onBody() {}, onMessageComplete() {} });
  let caught: unknown;
  try {
    parser.execute(bytes('GET / HTTP/3.0\r\n'));
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof HttpParseError);
  assert.ok(caught instanceof C1mError);
  assert.equal(caught.name, 'HttpParseError');
  assert.equal(caught.code, 'ERR_C1M_HTTP_UNSUPPORTED_VERSION');
  assert.equal(caught.status, 505);
  assert.throws(() => parser.execute(bytes('GET / HTTP/1.1\r\nHost: h\r\n\r\n')), (err) => err === caught);
  parser.reset();
  assert.equal(parser.execute(bytes('GET / HTTP/1.1\r\nHost: h\r\n\r\n')), 27);
});

test('every error code is unique, prefixed, and maps to a wire status', () => {
  const statuses = new Set([400, 413, 414, 431, 501, 505]);
  for (const [code, [status, description]] of Object.entries(HTTP_PARSE_ERRORS)) {
    assert.match(code, /^ERR_C1M_HTTP_[A-Z0-9_]+$/);
    assert.ok(statuses.has(status), code);
    assert.ok(description.length > 0);
  }
});

// ---------------------------------------------------------------------------------------------
// Contract

test('a callback exception propagates and kills the parser', () => {
  const boom = new Error('boom');
  const parser = new RequestParser({
    onRequest() {
      throw boom;
    },
    onBody() {},
    onMessageComplete() {},
  });
  assert.throws(() => parser.execute(bytes(GET + '\r\n')), (err) => err === boom);
  assert.throws(() => parser.execute(bytes(GET + '\r\n')), (err) => err === boom);
});

test('misuse: re-entrant execute, or fewer bytes than were left unconsumed', () => {
  const parser: RequestParser = new RequestParser({
    onRequest() {
      parser.execute(bytes('x'));
    },
    onBody() {},
    onMessageComplete() {},
  });
  assert.throws(() => parser.execute(bytes(GET + '\r\n')), { code: 'ERR_C1M_HTTP_PARSER_MISUSE' });

  const p2 = new RequestParser({ onRequest() {}, onBody() {}, onMessageComplete() {} });
  assert.equal(p2.execute(bytes('GET /partial')), 0);
  assert.throws(() => p2.execute(bytes('GET')), { code: 'ERR_C1M_HTTP_PARSER_MISUSE' });
});

test('the same bytes presented again without new ones: nothing consumed, nothing rescanned', () => {
  const parser = new RequestParser({ onRequest() {}, onBody() {}, onMessageComplete() {} });
  const line = bytes('GET / HTTP/1.1\r\nHost: h\r\nX-Pending: ab');
  const n = parser.execute(line);
  assert.equal(n, 'GET / HTTP/1.1\r\nHost: h\r\n'.length);
  const tail = line.subarray(n);
  assert.equal(parser.execute(tail), 0);
  assert.equal(parser.execute(tail), 0);
  assert.equal(parser.execute(Buffer.concat([tail, bytes('c\r\n\r\n')])), tail.length + 5);
  assert.equal(parser.idle, true);
});

test('plain Uint8Array input works and onBody views are Uint8Arrays', () => {
  const chunks: Uint8Array[] = [];
  const parser = new RequestParser({ onRequest() {}, onBody: (c) => chunks.push(c.slice()), onMessageComplete() {} });
  const data = new Uint8Array(bytes(`${POST}Content-Length: 2\r\n\r\nhi`));
  assert.equal(parser.execute(data), data.length);
  assert.deepEqual(chunks.map((c) => Buffer.from(c).toString()), ['hi']);
});

test('options are validated once, with exact messages', () => {
  const cb = { onRequest() {}, onBody() {}, onMessageComplete() {} };
  assert.throws(() => new RequestParser(cb, { maxHeaderBytes: 0 }), { code: 'ERR_C1M_INVALID_OPTION', message: /maxHeaderBytes/ });
  assert.throws(() => new RequestParser(cb, { maxUriLength: 1.5 }), { code: 'ERR_C1M_INVALID_OPTION', message: /maxUriLength/ });
  assert.throws(() => new RequestParser(cb, { maxBodyBytes: -1 }), { code: 'ERR_C1M_INVALID_OPTION', message: /maxBodyBytes/ });
  assert.throws(() => new RequestParser(cb, { maxHeaders: 0 }), { code: 'ERR_C1M_INVALID_OPTION', message: /maxHeaders/ });
});
