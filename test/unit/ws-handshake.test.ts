/**
 * Opening handshake helpers: RFC 6455 1.3/4.2.2 fixtures, key validation, subprotocol
 * parsing and negotiation, the exact 101 response bytes.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
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
import { plainUpgrade } from '../../src/protocols/ws/handshake.js';
import { createWebSocketHandler } from '../../src/protocols/ws/server.js';
import type { Connection } from '../../src/core/index.js';

const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const misuse = { code: 'ERR_C1M_WS_INVALID_ARGUMENT' };

describe('keys', () => {
  test('acceptKey: the RFC 6455 1.3 example', () => assert.equal(acceptKey(RFC_KEY), RFC_ACCEPT));
  test('acceptKey: the in-place SHA-1 agrees with node:crypto for 2,000 random keys', () => {
    for (let i = 0; i < 2000; i++) {
      const key = randomBytes(16).toString('base64');
      assert.equal(acceptKey(key), createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64'), key);
    }
  });
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

describe('the server quick path (plainUpgrade) answers as the parser does', () => {
  // Two handlers on fake connections: one takes plainUpgrade for plain heads, the other has an
  // onUpgrade (accepting everything), which sends every head through the HTTP parser.
  type Fake = { id: number; tag: number; open: boolean; out: Buffer[]; closed: boolean; write(b: Uint8Array): boolean; setTimeout(ms: number): void; close(): void; destroy(): void };
  const fake = (): Fake => ({
    id: 1, tag: 0, open: true, out: [], closed: false,
    write(b) { this.out.push(Buffer.from(b)); return true; },
    setTimeout() {},
    close() { this.closed = true; },
    destroy() { this.closed = true; },
  });
  function answer(h: ReturnType<typeof createWebSocketHandler>, head: Buffer): string {
    const conn = fake();
    const c = conn as unknown as Connection;
    h.onOpen?.(c);
    const used = h.onData!(c, head);
    return JSON.stringify([used, conn.tag, conn.closed, Buffer.concat(conn.out).toString('latin1')]);
  }
  const quick = createWebSocketHandler({});
  const parsed = createWebSocketHandler({ onUpgrade: () => undefined });
  const base =
    'GET /chat?room=1 HTTP/1.1\r\nHost: example.com:8080\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n' +
    `Sec-WebSocket-Key: ${RFC_KEY}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\r\n`;

  test('the RFC request is accepted on the quick path with the RFC answer', () => {
    const head = Buffer.from(base, 'latin1');
    assert.ok(plainUpgrade(head, head.length, true) > 0);
    assert.equal(answer(quick, head), answer(parsed, head));
    assert.ok(answer(quick, head).endsWith(`Sec-WebSocket-Accept: ${RFC_ACCEPT}\\r\\n\\r\\n"]`));
  });

  test('variants of the head', () => {
    const variants = [
      base.replace('GET', 'POST'), base.replace('HTTP/1.1', 'HTTP/1.0'), base.replace('HTTP/1.1', 'HTTP/1.2'),
      base.replace('Host: example.com:8080\r\n', ''), base.replace('Host: example.com:8080', 'Host: a b'),
      base.replace('Host: example.com:8080', 'Host:'), base.replace('Host: example.com:8080', 'HOST: x\r\nhost: y'),
      base.replace('Upgrade: websocket', 'Upgrade: h2c, WebSocket '), base.replace('Upgrade: websocket', 'Upgrade: websockets'),
      base.replace('Upgrade: websocket', 'Upgrade: websocket\r\nUpgrade: websocket'), base.replace('Upgrade: websocket\r\n', ''),
      base.replace('Upgrade: websocket', 'Upgrade:'), base.replace('keep-alive, Upgrade', 'keep-alive upgrade'),
      base.replace('keep-alive, Upgrade', 'upgraded'), base.replace('keep-alive, Upgrade', 'close,upgrade'),
      base.replace(RFC_KEY, 'dGhlIHNhbXBsZSBub25jZR=='), base.replace(RFC_KEY, `${RFC_KEY} `), base.replace(RFC_KEY, 'short'),
      base.replace(`Sec-WebSocket-Key: ${RFC_KEY}`, `sec-websocket-key:${RFC_KEY}\r\nSEC-WEBSOCKET-KEY: ${RFC_KEY}`),
      base.replace('Version: 13', 'Version: 8'), base.replace('Version: 13', 'Version: 13\r\nSec-WebSocket-Version: 13'),
      base.replace('Version: 13', 'Version:  13\t'), base.replace('Sec-WebSocket-Version: 13\r\n', ''),
      base.replace('Origin', 'Content-Length: 0\r\nOrigin'), base.replace('Origin', 'Content-Length: 5\r\nOrigin'),
      base.replace('Origin', 'Transfer-Encoding: chunked\r\nOrigin'), base.replace('Origin', 'Sec-WebSocket-Protocol: chat\r\nOrigin'),
      base.replace('Origin', 'Sec-WebSocket-Extensions: permessage-deflate\r\nOrigin'), base.replace('Origin:', 'Origin :'),
      base.replace('Origin: ', 'Origin:\r\n '), base.replace('/chat?room=1', '*'), `\r\n${base}`, base.replace('\r\nHost', '\nHost'),
      base.replace('GET /chat', 'GET  /chat'), base.replace('Origin: http://example.com', 'X: \x01'), base.replace('Origin: http://example.com', 'X: caf\xe9'),
      base.replace('Origin', Array.from({ length: 70 }, (_, i) => `X-${i}: ${i}\r\n`).join('') + 'Origin'),
      base.replace('Origin', Array.from({ length: 120 }, (_, i) => `X-${i}: ${i}\r\n`).join('') + 'Origin'),
      base.replace('/chat?room=1', `/${'a'.repeat(3000)}`), base.replace('/chat?room=1', `/${'a'.repeat(9000)}`),
    ];
    for (const v of variants) {
      const head = Buffer.from(v, 'latin1');
      assert.equal(answer(quick, head), answer(parsed, head), JSON.stringify(v));
    }
  });

  test('every single-byte change of the head (a deterministic sample of replacement bytes)', () => {
    const bytes = Buffer.from(base, 'latin1');
    const replacements = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x2c, 0x3a, 0x3d, 0x41, 0x61, 0x7f, 0xe9];
    let seed = 12345;
    for (let at = 0; at < bytes.length - 4; at++) {
      for (let r = 0; r < 3; r++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const head = Buffer.from(bytes);
        head[at] = replacements[seed % replacements.length];
        if (head.indexOf('\r\n\r\n') !== head.length - 4) continue; // a different head
        assert.equal(answer(quick, head), answer(parsed, head), `byte ${at} -> ${head[at]}`);
      }
      const flipped = Buffer.from(bytes);
      if (flipped[at] >= 0x41 && flipped[at] <= 0x7a) flipped[at] ^= 0x20;
      assert.equal(answer(quick, flipped), answer(parsed, flipped), `case of byte ${at}`);
    }
  });
});
