/**
 * The client side of the opening handshake without sockets: URL splitting, the request bytes
 * (with and without a permessage-deflate offer), response head parsing, the RFC 6455 4.1
 * checks of the response, and the check of the server's permessage-deflate answer.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  WsHandshakeError,
  buildRequest,
  checkConnectOptions,
  checkResponse,
  parseResponseHead,
  parseWsUrl,
  type HandshakeResult,
} from '../../src/protocols/ws/client-handshake.js';
import { deflateOffer, resolveDeflateOptions, type PerMessageDeflateOptions } from '../../src/protocols/ws/deflate.js';
import fc from 'fast-check';
import { acceptHead, acceptKey, plain101 } from '../../src/protocols/ws/handshake.js';

// RFC 6455 1.3's sample key and answer.
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

function head(lines: string[]): ReturnType<typeof parseResponseHead> {
  return parseResponseHead(lines.join('\r\n'));
}

const GOOD = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${ACCEPT}`];

/** The response check without a deflate offer: the error, or the selected subprotocol. */
function check(lines: string[], offered: string[] = []): WsHandshakeError | string {
  const r = checkWith(lines, null, offered);
  if (r instanceof WsHandshakeError) return r;
  assert.equal(r.deflate, null, 'no deflate agreed without an offer');
  return r.protocol;
}

function checkWith(lines: string[], deflate: PerMessageDeflateOptions | true | null, offered: string[] = []): WsHandshakeError | HandshakeResult {
  const h = head(lines);
  assert.equal(typeof h, 'object', `parsed: ${String(h)}`);
  return checkResponse(h as Exclude<typeof h, string>, KEY, offered, deflate === null ? null : resolveDeflateOptions(deflate));
}

describe('client handshake', () => {
  test('the sample accept answers the sample key', () => {
    assert.equal(createHash('sha1').update(KEY + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64'), ACCEPT);
    assert.equal(check(GOOD), '');
  });

  test('parses a response head: status, version, fields trimmed, names as sent', () => {
    const h = head(['HTTP/1.1 426 Upgrade Required', 'Sec-WebSocket-Version:  13 ', 'X-Empty:', 'x-Dup: a', 'X-DUP: b']);
    assert.deepEqual(h, {
      versionMinor: 1,
      status: 426,
      headers: [['Sec-WebSocket-Version', '13'], ['X-Empty', ''], ['x-Dup', 'a'], ['X-DUP', 'b']],
    });
    assert.deepEqual(head(['HTTP/1.0 200']), { versionMinor: 0, status: 200, headers: [] });
  });

  test('refuses malformed heads with a description', () => {
    for (const bad of [
      ['HTTP/2 101 Switching'],
      ['HTTP/1.1 1O1 Switching'],
      ['HTTP/1.1 101Switching'],
      ['ICY 200 OK'],
      ['HTTP/1.1 101 OK', 'No colon here'],
      ['HTTP/1.1 101 OK', 'Bad Name: x'],
      ['HTTP/1.1 101 OK', 'Name : x'],
      ['HTTP/1.1 101 OK', ' folded: x'],
      ['HTTP/1.1 101 OK', 'X: a\nb'],
      ['HTTP/1.1 101 OK', 'X: a\0b'],
    ]) {
      assert.equal(typeof head(bad), 'string', JSON.stringify(bad));
    }
  });

  test('checks the response as RFC 6455 4.1 requires', () => {
    const code = (r: WsHandshakeError | string): string => (typeof r === 'string' ? `ok:${r}` : r.code);
    assert.equal(code(check(GOOD.map((l) => l.replace('websocket', 'WebSocket')))), 'ok:');
    assert.equal(code(check([...GOOD.slice(0, 2), 'Connection: keep-alive, Upgrade', GOOD[3]])), 'ok:');
    assert.equal(code(check(['HTTP/1.1 200 OK', 'X-A: 1'])), 'ERR_C1M_WS_HANDSHAKE_STATUS');
    assert.equal(code(check([GOOD[0].replace('1.1', '1.0'), ...GOOD.slice(1)])), 'ERR_C1M_WS_HANDSHAKE_MALFORMED');
    assert.equal(code(check([GOOD[0], GOOD[2], GOOD[3]])), 'ERR_C1M_WS_HANDSHAKE_UPGRADE');
    assert.equal(code(check([GOOD[0], 'Upgrade: websocket, h2c', GOOD[2], GOOD[3]])), 'ERR_C1M_WS_HANDSHAKE_UPGRADE');
    assert.equal(code(check([GOOD[0], GOOD[1], GOOD[3]])), 'ERR_C1M_WS_HANDSHAKE_CONNECTION');
    assert.equal(code(check(GOOD.slice(0, 3))), 'ERR_C1M_WS_HANDSHAKE_ACCEPT');
    assert.equal(code(check([...GOOD, `Sec-WebSocket-Accept: ${ACCEPT}`])), 'ERR_C1M_WS_HANDSHAKE_ACCEPT');
    assert.equal(code(check([...GOOD.slice(0, 3), 'Sec-WebSocket-Accept: AAAA'])), 'ERR_C1M_WS_HANDSHAKE_ACCEPT');
    assert.equal(code(check([...GOOD, 'Sec-WebSocket-Extensions: permessage-deflate'])), 'ERR_C1M_WS_HANDSHAKE_EXTENSION');
    assert.equal(code(check([...GOOD, 'Sec-WebSocket-Protocol: b'], ['a', 'b'])), 'ok:b');
    assert.equal(code(check(GOOD, ['a', 'b'])), 'ok:', 'no subprotocol selected is allowed');
    assert.equal(code(check([...GOOD, 'Sec-WebSocket-Protocol: c'], ['a', 'b'])), 'ERR_C1M_WS_HANDSHAKE_PROTOCOL');
    assert.equal(code(check([...GOOD, 'Sec-WebSocket-Protocol: a'])), 'ERR_C1M_WS_HANDSHAKE_PROTOCOL');
    assert.equal(code(check([...GOOD, 'Sec-WebSocket-Protocol: a, b'], ['a', 'b'])), 'ERR_C1M_WS_HANDSHAKE_PROTOCOL');
    assert.equal(code(check([...GOOD, 'Sec-WebSocket-Protocol: a', 'Sec-WebSocket-Protocol: a'], ['a'])), 'ERR_C1M_WS_HANDSHAKE_PROTOCOL');
    const err = check(['HTTP/1.1 403 Forbidden', 'X-Reason: no', 'x-reason: never']) as WsHandshakeError;
    assert.equal(err.status, 403);
    assert.deepEqual(err.headers, { 'x-reason': 'no, never' });
  });

  test('splits ws: URLs', () => {
    assert.deepEqual(parseWsUrl('ws://127.0.0.1:8080/a/b?c=d'), { hostField: '127.0.0.1:8080', hostname: '127.0.0.1', port: 8080, resource: '/a/b?c=d', authorization: undefined, secure: false });
    assert.deepEqual(parseWsUrl('ws://Example.TEST'), { hostField: 'example.test', hostname: 'example.test', port: 80, resource: '/', authorization: undefined, secure: false });
    assert.deepEqual(parseWsUrl(new URL('http://[::1]:81/x')), { hostField: '[::1]:81', hostname: '::1', port: 81, resource: '/x', authorization: undefined, secure: false });
    assert.deepEqual(parseWsUrl('wss://localhost/s'), { hostField: 'localhost', hostname: 'localhost', port: 443, resource: '/s', authorization: undefined, secure: true });
    assert.deepEqual(parseWsUrl('https://[::1]:8443/'), { hostField: '[::1]:8443', hostname: '::1', port: 8443, resource: '/', authorization: undefined, secure: true });
    assert.equal(parseWsUrl('wss://127.0.0.1:443/').hostField, '127.0.0.1', 'the default port is left out of Host');
    assert.equal(parseWsUrl('ws://u%20s:p@127.0.0.1/').authorization, `Basic ${Buffer.from('u s:p').toString('base64')}`);
    for (const bad of ['ftp://a/', 'file:///x', 'ws://a/#', 'ws://a/#x', 'nonsense', 'ws://%ff@a/']) {
      assert.throws(() => parseWsUrl(bad), { code: 'ERR_C1M_WS_INVALID_URL' }, bad);
    }
  });

  test('builds the request, with the optional fields in order', () => {
    const req = buildRequest(parseWsUrl('ws://10.0.0.1:9000/chat?room=1'), KEY, { protocols: ['a', 'b'], origin: 'http://o.test', headers: { 'X-A': '1' } }).toString('latin1');
    assert.equal(
      req,
      'GET /chat?room=1 HTTP/1.1\r\nHost: 10.0.0.1:9000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, b\r\nOrigin: http://o.test\r\nX-A: 1\r\n\r\n`,
    );
  });

  test('builds the request with a permessage-deflate offer after the subprotocols', () => {
    const target = parseWsUrl('ws://10.0.0.1/');
    const base = 'GET / HTTP/1.1\r\nHost: 10.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n`;
    assert.equal(buildRequest(target, KEY, { protocols: ['p'] }, deflateOffer(resolveDeflateOptions(true))).toString('latin1'),
      `${base}Sec-WebSocket-Protocol: p\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits\r\n\r\n`);
    const tuned = resolveDeflateOptions({ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 10, clientMaxWindowBits: 12 });
    assert.equal(buildRequest(target, KEY, {}, deflateOffer(tuned)).toString('latin1'),
      `${base}Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10; client_max_window_bits=12\r\n\r\n`);
    assert.equal(buildRequest(target, KEY, {}, '').toString('latin1'), `${base}\r\n`);
  });

  test('accepts a permessage-deflate answer to our offer, or its absence (declined)', () => {
    const ext = (v: string): string[] => [...GOOD, `Sec-WebSocket-Extensions: ${v}`];
    assert.deepEqual(checkWith(GOOD, true), { protocol: '', deflate: null }, 'declined: no compression');
    assert.deepEqual(checkWith(ext('permessage-deflate; server_no_context_takeover; client_no_context_takeover'), true), {
      protocol: '',
      deflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 },
    });
    // The ws package's answer to our default offer, with a subprotocol.
    assert.deepEqual(checkWith([...ext('permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10'), 'Sec-WebSocket-Protocol: b'], true, ['a', 'b']), {
      protocol: 'b',
      deflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 10 },
    });
    const takeover = { serverNoContextTakeover: false, clientNoContextTakeover: false };
    assert.deepEqual((checkWith(ext('Permessage-Deflate'), takeover) as HandshakeResult).deflate, {
      serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15,
    });
    assert.deepEqual((checkWith(ext('permessage-deflate; server_max_window_bits=9'), { ...takeover, serverMaxWindowBits: 10 }) as HandshakeResult).deflate, {
      serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 9, clientMaxWindowBits: 15,
    });
  });

  test('fails the handshake on an invalid permessage-deflate answer, saying why', () => {
    const ext = (...values: string[]): string[] => [...GOOD, ...values.map((v) => `Sec-WebSocket-Extensions: ${v}`)];
    const NCT = 'permessage-deflate; server_no_context_takeover; client_no_context_takeover';
    const takeover = { serverNoContextTakeover: false, clientNoContextTakeover: false };
    const cases: [string[], PerMessageDeflateOptions | true | null, RegExp][] = [
      [ext('permessage-deflate'), null, /did not offer/],
      [ext('x-webkit-deflate-frame'), true, /extension x-webkit-deflate-frame, which we did not offer/],
      [ext(`${NCT}, x-foo`), true, /extension x-foo/],
      [ext(NCT, NCT), true, /permessage-deflate 2 times/],
      [ext(`${NCT}; foo`), true, /unknown parameter foo/],
      [ext(`${NCT}; foo=1`), true, /unknown parameter foo/],
      [ext(`${NCT}; server_no_context_takeover`), true, /server_no_context_takeover is repeated/],
      [ext(`${NCT}; client_max_window_bits=10; client_max_window_bits=10`), true, /client_max_window_bits is repeated/],
      [ext(`${NCT}; server_max_window_bits=7`), true, /server_max_window_bits=7: window bits/],
      [ext(`${NCT}; server_max_window_bits=16`), true, /server_max_window_bits=16: window bits/],
      [ext(`${NCT}; client_max_window_bits=010`), true, /client_max_window_bits=010: window bits/],
      [ext(`${NCT}; client_max_window_bits`), true, /client_max_window_bits: a response must give the window bits/],
      [ext('permessage-deflate; server_no_context_takeover=1; client_no_context_takeover'), true, /takes no value/],
      [ext('permessage-deflate; client_no_context_takeover'), true, /server_no_context_takeover was offered and is missing/],
      [ext('permessage-deflate'), { ...takeover, serverMaxWindowBits: 10 }, /server_max_window_bits=10 was offered, the answer has none/],
      [ext('permessage-deflate; server_max_window_bits=11'), { ...takeover, serverMaxWindowBits: 10 }, /the answer has 11/],
      [ext('permessage-deflate; client_max_window_bits=12'), { ...takeover, clientMaxWindowBits: 11 }, /client_max_window_bits=12 is larger than the 11 offered/],
      [ext('permessage-deflate;'), true, /malformed Sec-WebSocket-Extensions/],
      [ext('permessage-deflate; a="1'), true, /malformed/],
    ];
    for (const [lines, deflate, message] of cases) {
      const r = checkWith(lines, deflate);
      const what = lines.slice(GOOD.length).join(' | ');
      assert.ok(r instanceof WsHandshakeError, `${what}: ${JSON.stringify(r)}`);
      assert.equal(r.code, 'ERR_C1M_WS_HANDSHAKE_EXTENSION', what);
      assert.match(r.message, message, what);
      assert.equal(r.status, 101);
    }
  });

  test('validates connect options', () => {
    assert.deepEqual(checkConnectOptions({ protocols: ['a', 'b.v2'] }), ['a', 'b.v2']);
    assert.deepEqual(checkConnectOptions({}), []);
    for (const bad of [
      { protocols: ['a', 'a'] },
      { protocols: [''] },
      { protocols: ['a,b'] },
      { protocols: 'a' },
      { origin: 'x\r\ny' },
      { headers: { Host: 'x' } },
      { headers: { upgrade: 'x' } },
      { headers: { 'Sec-WebSocket-Extensions': 'x' } },
      { headers: { 'Bad Name': 'x' } },
      { headers: { 'X-A': 'a\nb' } },
      { handshakeTimeout: -1 },
      { handshakeTimeout: 1.5 },
    ]) {
      assert.throws(() => checkConnectOptions(bad as never), { code: 'ERR_C1M_INVALID_OPTION' }, JSON.stringify(bad));
    }
  });
});

describe('the client\'s quick path (plain101: a plain 101 checked in place)', () => {
  const bytesOf = (lines: string[]): Buffer => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');

  test('takes the 101s that servers send to a client that offered nothing', () => {
    const answers = [
      GOOD,
      acceptHead(KEY).toString('latin1').split('\r\n').filter((l) => l !== ''), // c1m's own
      ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${ACCEPT}`, 'Date: Sat, 05 Dec 2026 23:40:00 GMT', 'Server: x'],
      ['HTTP/1.1 101', 'upgrade: WebSocket', 'connection: keep-alive, Upgrade', `sec-websocket-accept:${ACCEPT}  `],
    ];
    for (const lines of answers) {
      const b = bytesOf(lines);
      assert.equal(plain101(b, b.length, KEY), true, lines.join(' | '));
      assert.deepEqual(check(lines), '');
    }
  });

  test('leaves to the full check what is not plain, and never takes a response the full check refuses', () => {
    const KEY2 = 'AAAAAAAAAAAAAAAAAAAAAA==';
    const POOL: [string, string][] = [
      ['Upgrade', 'websocket'], ['Upgrade', 'WebSocket'], ['Upgrade', 'websocket, h2c'], ['Upgrade', 'web socket'], ['Connection', 'Upgrade'], ['Connection', 'keep-alive, upgrade'],
      ['Connection', 'close upgrade'], ['Connection', 'keep-alive'], ['Sec-WebSocket-Accept', ACCEPT], ['Sec-WebSocket-Accept', acceptKey(KEY2)], ['Sec-WebSocket-Accept', `${ACCEPT}\xa0`],
      ['sec-websocket-accept', ACCEPT.toLowerCase()], ['Sec-WebSocket-Protocol', 'chat'], ['Sec-WebSocket-Extensions', 'permessage-deflate'], ['Sec-WebSocket-Extensions', ''],
      ['X-Pad', ' \t spaced \t '], ['X-Empty', ''], ['Bad Name', 'x'], ['X-Obs', '\xe9t\xe9'],
    ];
    const plain: [string, string][] = [['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Accept', ACCEPT]];
    const response = fc.record({
      status: fc.constantFrom('HTTP/1.1 101 Switching Protocols', 'HTTP/1.1 101', 'HTTP/1.1 101 ', 'HTTP/1.0 101 Switching Protocols', 'HTTP/1.1 200 OK', 'HTTP/1.1 1010', 'HTTP/1.1 101\tx'),
      fields: fc.tuple(fc.subarray(plain, { minLength: 2 }), fc.array(fc.constantFrom(...POOL), { maxLength: 4 }), fc.boolean())
        .map(([p, extra, first]) => (first ? [...extra, ...p] : [...p, ...extra])),
      key: fc.constantFrom(KEY, KEY2),
    });
    let taken = 0;
    fc.assert(
      fc.property(response, ({ status, fields, key }) => {
        const lines = [status, ...fields.map(([n, v]) => `${n}: ${v}`)];
        const b = bytesOf(lines);
        if (!plain101(b, b.length, key)) return;
        taken++;
        const h = head(lines);
        assert.equal(typeof h, 'object', lines.join(' | '));
        assert.deepEqual(checkResponse(h as Exclude<typeof h, string>, key, [], null), { protocol: '', deflate: null }, lines.join(' | '));
      }),
      { numRuns: 3000 },
    );
    assert.ok(taken > 30, `only ${taken} plain responses generated (about 90 expected)`);
  });
});
