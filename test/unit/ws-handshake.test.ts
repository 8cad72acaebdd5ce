/**
 * Opening handshake helpers: RFC 6455 1.3/4.2.2 fixtures, key validation, subprotocol
 * parsing and negotiation, the exact 101 response bytes.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WS_VERSION,
  acceptKey,
  acceptResponse,
  checkAccept,
  generateKey,
  headerHasToken,
  negotiateProtocol,
  parseProtocols,
  validateKey,
} from '../../src/protocols/ws/index.js';

const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const misuse = { code: 'ERR_C1M_WS_INVALID_ARGUMENT' };

describe('keys', () => {
  test('acceptKey: the RFC 6455 1.3 example', () => assert.equal(acceptKey(RFC_KEY), RFC_ACCEPT));
  test('validateKey accepts the canonical base64 of 16 bytes only', () => {
    assert.ok(validateKey(RFC_KEY));
    assert.ok(validateKey('AAAAAAAAAAAAAAAAAAAAAA=='));
    assert.ok(validateKey('/+/+/+/+/+/+/+/+/+/+/w=='));
    for (const bad of [undefined, '', 'dGhlIHNhbXBsZSBub25jZQ=', 'dGhlIHNhbXBsZSBub25jZQ', 'dGhlIHNhbXBsZSBub25jZQ===',
      'dGhlIHNhbXBsZSBub25jZR==', 'dGhlIHNhbXBsZSBub25j-Q==', ' dGhlIHNhbXBsZSBub25jZQ==', 'dGhlIHNhbXBsZSBub25jZQ== ',
      'dGhlIHNhbXBsZSBub25jZWU=', 'dGhlIHNhbXBsZSBub25jZWVl']) {
      assert.equal(validateKey(bad), false, String(bad));
    }
  });
  test('generateKey gives valid, distinct keys', () => {
    const keys = new Set(Array.from({ length: 100 }, generateKey));
    assert.equal(keys.size, 100);
    for (const k of keys) assert.ok(validateKey(k), k);
  });
  test('checkAccept', () => {
    assert.ok(checkAccept(RFC_KEY, RFC_ACCEPT));
    assert.ok(checkAccept(RFC_KEY, ` ${RFC_ACCEPT} `));
    assert.equal(checkAccept(RFC_KEY, RFC_ACCEPT.toLowerCase()), false);
    assert.equal(checkAccept(RFC_KEY, undefined), false);
    assert.equal(checkAccept(generateKey(), RFC_ACCEPT), false);
  });
  test('version', () => assert.equal(WS_VERSION, '13'));
});

describe('header tokens and subprotocols', () => {
  test('headerHasToken', () => {
    assert.ok(headerHasToken('Upgrade', 'upgrade'));
    assert.ok(headerHasToken('keep-alive, Upgrade', 'upgrade'));
    assert.ok(headerHasToken('WebSocket', 'websocket'));
    assert.equal(headerHasToken('upgrades', 'upgrade'), false);
    assert.equal(headerHasToken(undefined, 'upgrade'), false);
  });
  test('parseProtocols', () => {
    assert.deepEqual(parseProtocols(undefined), []);
    assert.deepEqual(parseProtocols(''), []);
    assert.deepEqual(parseProtocols('chat'), ['chat']);
    assert.deepEqual(parseProtocols('chat, superchat'), ['chat', 'superchat']);
    assert.deepEqual(parseProtocols(' chat ,\tsuperchat\t'), ['chat', 'superchat']);
    assert.deepEqual(parseProtocols('a,,b, ,'), ['a', 'b']);
    assert.deepEqual(parseProtocols('v1.json.api, Chat'), ['v1.json.api', 'Chat']);
    for (const bad of ['chat, chat', 'a b', 'chat/1', 'chat;q=1', '"chat"', 'ch\u00e4t', 'a,\rb']) {
      assert.equal(parseProtocols(bad), null, bad);
    }
  });
  test('negotiateProtocol follows the client order, case-sensitively', () => {
    assert.equal(negotiateProtocol(['chat', 'superchat'], ['superchat', 'chat']), 'chat');
    assert.equal(negotiateProtocol(['x', 'superchat'], ['superchat', 'chat']), 'superchat');
    assert.equal(negotiateProtocol(['Chat'], ['chat']), undefined);
    assert.equal(negotiateProtocol([], ['chat']), undefined);
  });
});

describe('acceptResponse', () => {
  test('exact bytes', () => {
    assert.equal(
      acceptResponse(RFC_KEY).toString('latin1'),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\n\r\n`,
    );
    assert.equal(
      acceptResponse(RFC_KEY, { protocol: 'chat', extensions: 'permessage-deflate; client_max_window_bits=15', headers: { 'X-Server': 'c1m' } }).toString('latin1'),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${RFC_ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n` +
        'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15\r\nX-Server: c1m\r\n\r\n',
    );
  });
  test('misuse throws rather than splitting the response', () => {
    assert.throws(() => acceptResponse('short'), misuse);
    assert.throws(() => acceptResponse(RFC_KEY, { protocol: 'a b' }), misuse);
    assert.throws(() => acceptResponse(RFC_KEY, { extensions: 'x\r\nSet-Cookie: a=b' }), misuse);
    assert.throws(() => acceptResponse(RFC_KEY, { headers: { 'X-A': 'ok\nInjected: 1' } }), misuse);
    assert.throws(() => acceptResponse(RFC_KEY, { headers: { 'Bad Name': 'v' } }), misuse);
  });
});
