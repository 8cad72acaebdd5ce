/**
 * permessage-deflate (RFC 7692) without sockets: the Sec-WebSocket-Extensions grammar, the
 * server's negotiation (every parameter, invalid values, several offers, none), the client's
 * offer and response check, and the codec against the RFC 7692 7.2.3 byte examples and a
 * continuous zlib stream (context takeover).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as zc, createDeflateRaw, inflateRawSync } from 'node:zlib';
import {
  DEFLATE_DEFAULTS,
  PerMessageDeflate,
  acceptDeflateResponse,
  checkDeflateResponse,
  deflateOffer,
  negotiateDeflate,
  parseExtensions,
  resolveDeflateOptions,
  type DeflateParams,
  type PerMessageDeflateOptions,
} from '../../src/protocols/ws/index.js';
import { reachesThreshold } from '../../src/protocols/ws/deflate.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const TAIL = hex('0000ffff');
const NO_TAKEOVER: DeflateParams = { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
const TAKEOVER: DeflateParams = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };

/** What the server answers to `header` under `options`: the response value, or null. */
function answer(header: string, options: PerMessageDeflateOptions | true = true): string | null {
  const offers = parseExtensions(header);
  assert.ok(offers !== null, `parse ${header}`);
  return negotiateDeflate(offers, resolveDeflateOptions(options))?.response ?? null;
}

describe('parseExtensions', () => {
  test('none', () => {
    assert.deepEqual(parseExtensions(undefined), []);
    assert.deepEqual(parseExtensions(''), []);
    assert.deepEqual(parseExtensions(' , ,'), []);
  });
  test('names and parameters are lower-cased, values kept, order kept', () => {
    assert.deepEqual(parseExtensions('Permessage-Deflate; Client_Max_Window_Bits; server_max_window_bits=10, x-foo'), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', true], ['server_max_window_bits', '10']] },
      { name: 'x-foo', params: [] },
    ]);
  });
  test('whitespace around separators, quoted values, joined header lines', () => {
    assert.deepEqual(parseExtensions('permessage-deflate ;\tclient_max_window_bits = "10" ;server_no_context_takeover , permessage-deflate'), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', '10'], ['server_no_context_takeover', true]] },
      { name: 'permessage-deflate', params: [] },
    ]);
    assert.deepEqual(parseExtensions('a; b="\\1\\2"'), [{ name: 'a', params: [['b', '12']] }]);
  });
  test('malformed values are null', () => {
    for (const bad of ['permessage-deflate;', 'permessage-deflate; =1', 'permessage-deflate; a=', 'permessage-deflate; a="1', 'permessage-deflate; a="1 2"',
      'permessage-deflate; a="1,2"', 'permessage-deflate a', ';a', 'permessage-deflate; a=1 b', 'perm@ssage', 'permessage-deflate; a=1=2',
      'permessage-deflate; a="\\']) {
      assert.equal(parseExtensions(bad), null, bad);
    }
  });
});

describe('negotiateDeflate (server)', () => {
  test('a bare offer: both no-context-takeover are added by default', () => {
    assert.equal(answer('permessage-deflate'), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  });
  test('no offer, or only other extensions: declined', () => {
    assert.equal(answer(''), null);
    assert.equal(answer('x-webkit-deflate-frame, permessage-foo'), null);
  });
  test('context takeover when configured and not refused by the offer', () => {
    const opts = { serverNoContextTakeover: false, clientNoContextTakeover: false };
    assert.equal(answer('permessage-deflate', opts), 'permessage-deflate');
    assert.equal(answer('permessage-deflate; server_no_context_takeover', opts), 'permessage-deflate; server_no_context_takeover');
    assert.equal(answer('permessage-deflate; client_no_context_takeover', opts), 'permessage-deflate; client_no_context_takeover');
  });
  test('server_max_window_bits: echoed, lowered to ours; 8 declined', () => {
    assert.equal(answer('permessage-deflate; server_max_window_bits=10'),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10');
    assert.equal(answer('permessage-deflate; server_max_window_bits=12', { serverMaxWindowBits: 11 }),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11');
    assert.equal(answer('permessage-deflate; server_max_window_bits=8'), null);
    // Not offered: our smaller window needs no announcement (the client inflates with 15).
    assert.equal(answer('permessage-deflate', { serverMaxWindowBits: 9 }), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  });
  test('client_max_window_bits: with and without a value', () => {
    const takeover = { clientNoContextTakeover: false, serverNoContextTakeover: false };
    assert.equal(answer('permessage-deflate; client_max_window_bits', takeover), 'permessage-deflate');
    assert.equal(answer('permessage-deflate; client_max_window_bits', { ...takeover, clientMaxWindowBits: 10 }), 'permessage-deflate; client_max_window_bits=10');
    assert.equal(answer('permessage-deflate; client_max_window_bits=12', { ...takeover, clientMaxWindowBits: 10 }), 'permessage-deflate; client_max_window_bits=10');
    assert.equal(answer('permessage-deflate; client_max_window_bits=9', { ...takeover, clientMaxWindowBits: 10 }), 'permessage-deflate');
    assert.equal(answer('permessage-deflate; client_max_window_bits=8', takeover), 'permessage-deflate');
    // Our limit cannot be sent to a client that did not offer the parameter: no takeover instead.
    assert.equal(answer('permessage-deflate', { ...takeover, clientMaxWindowBits: 10 }), 'permessage-deflate; client_no_context_takeover');
  });
  test('the agreed parameters', () => {
    const offers = parseExtensions('permessage-deflate; server_max_window_bits=10; client_max_window_bits=12')!;
    assert.deepEqual(negotiateDeflate(offers, resolveDeflateOptions({ clientMaxWindowBits: 11 }))?.params, {
      serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 11,
    });
  });
  test('invalid offers are declined, and the next one is tried', () => {
    const bad = [
      'permessage-deflate; foo',
      'permessage-deflate; server_no_context_takeover=1',
      'permessage-deflate; client_no_context_takeover="x"',
      'permessage-deflate; server_max_window_bits',
      'permessage-deflate; server_max_window_bits=7',
      'permessage-deflate; server_max_window_bits=16',
      'permessage-deflate; server_max_window_bits=010',
      'permessage-deflate; server_max_window_bits=+9',
      'permessage-deflate; client_max_window_bits=0',
      'permessage-deflate; client_max_window_bits=abc',
      'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
      'permessage-deflate; client_max_window_bits; client_max_window_bits=10',
    ];
    for (const offer of bad) {
      assert.equal(answer(offer), null, offer);
      assert.equal(answer(`${offer}, permessage-deflate; client_max_window_bits`),
        'permessage-deflate; server_no_context_takeover; client_no_context_takeover', `${offer} then a valid one`);
    }
    assert.equal(answer('permessage-deflate; server_max_window_bits="10"'),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10');
  });
  test('the first acceptable offer wins (client preference)', () => {
    assert.equal(answer('permessage-deflate; server_max_window_bits=10, permessage-deflate'),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10');
  });
});

describe('options', () => {
  test('defaults', () => {
    assert.deepEqual(resolveDeflateOptions(true), { ...DEFLATE_DEFAULTS });
    assert.equal(resolveDeflateOptions({ threshold: 0 }).threshold, 0);
  });
  test('bad values name the field', () => {
    const cases: [PerMessageDeflateOptions, RegExp][] = [
      [{ serverNoContextTakeover: 1 as unknown as boolean }, /serverNoContextTakeover/],
      [{ clientNoContextTakeover: 'no' as unknown as boolean }, /clientNoContextTakeover/],
      [{ serverMaxWindowBits: 8 }, /serverMaxWindowBits/],
      [{ serverMaxWindowBits: 16 }, /serverMaxWindowBits/],
      [{ clientMaxWindowBits: 7 }, /clientMaxWindowBits/],
      [{ threshold: -1 }, /threshold/],
      [{ level: 10 }, /level/],
      [{ memLevel: 0 }, /memLevel/],
    ];
    for (const [opts, message] of cases) assert.throws(() => resolveDeflateOptions(opts), { code: 'ERR_C1M_INVALID_OPTION', message });
    assert.throws(() => resolveDeflateOptions(null as unknown as true), { code: 'ERR_C1M_INVALID_OPTION' });
  });
});

describe('client offer and response', () => {
  const defaults = resolveDeflateOptions(true);
  const takeover = resolveDeflateOptions({ serverNoContextTakeover: false, clientNoContextTakeover: false });
  test('deflateOffer', () => {
    assert.equal(deflateOffer(defaults), 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits');
    assert.equal(deflateOffer(resolveDeflateOptions({ serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 10, clientMaxWindowBits: 9 })),
      'permessage-deflate; server_max_window_bits=10; client_max_window_bits=9');
  });
  test('our server answers our client', () => {
    for (const opts of [defaults, takeover, resolveDeflateOptions({ serverMaxWindowBits: 10, clientMaxWindowBits: 9, serverNoContextTakeover: false })]) {
      const agreement = negotiateDeflate(parseExtensions(deflateOffer(opts))!, opts)!;
      assert.deepEqual(acceptDeflateResponse(agreement.response, opts), agreement.params, deflateOffer(opts));
    }
  });
  test('declined: false', () => {
    assert.equal(acceptDeflateResponse(undefined, defaults), false);
    assert.equal(acceptDeflateResponse('', defaults), false);
  });
  test('accepted responses', () => {
    assert.deepEqual(acceptDeflateResponse('permessage-deflate', takeover), TAKEOVER);
    assert.deepEqual(acceptDeflateResponse('permessage-deflate; server_no_context_takeover; client_max_window_bits=10', takeover),
      { ...TAKEOVER, serverNoContextTakeover: true, clientMaxWindowBits: 10 });
    // Unsolicited server_no_context_takeover and server_max_window_bits only restrict the server.
    assert.deepEqual(acceptDeflateResponse('permessage-deflate; server_no_context_takeover; server_max_window_bits=9', takeover),
      { ...TAKEOVER, serverNoContextTakeover: true, serverMaxWindowBits: 9 });
  });
  test('invalid responses: null (fail the connection)', () => {
    const small = resolveDeflateOptions({ serverMaxWindowBits: 10, clientMaxWindowBits: 10 });
    const cases: [string, typeof defaults][] = [
      ['x-foo', takeover],
      ['permessage-deflate, permessage-deflate', takeover],
      ['permessage-deflate; foo', takeover],
      ['permessage-deflate; client_max_window_bits', takeover],
      ['permessage-deflate; client_max_window_bits=16', takeover],
      ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', takeover],
      ['permessage-deflate', defaults], // we asked for server_no_context_takeover
      ['permessage-deflate; client_max_window_bits=10', small], // server_max_window_bits=10 missing
      ['permessage-deflate; server_max_window_bits=11', small], // larger than offered
      ['permessage-deflate; server_max_window_bits=10; client_max_window_bits=11', small],
      ['permessage-deflate;', takeover],
    ];
    for (const [response, opts] of cases) assert.equal(acceptDeflateResponse(response, opts), null, response);
    // checkDeflateResponse says why, for the handshake error's message.
    for (const [response, opts] of cases) {
      const why = checkDeflateResponse(response, opts);
      assert.equal(typeof why, 'string', response);
      assert.ok((why as string).length > 10, `${response}: ${String(why)}`);
    }
    assert.match(checkDeflateResponse('permessage-deflate; foo', takeover) as string, /unknown parameter foo/);
    assert.match(checkDeflateResponse('permessage-deflate', defaults) as string, /server_no_context_takeover was offered/);
    assert.deepEqual(checkDeflateResponse('permessage-deflate', takeover), TAKEOVER);
    assert.equal(checkDeflateResponse(undefined, takeover), false);
  });
  test('reachesThreshold counts UTF-8 bytes of strings', () => {
    assert.equal(reachesThreshold(Buffer.alloc(10), 10), true);
    assert.equal(reachesThreshold(Buffer.alloc(9), 10), false);
    assert.equal(reachesThreshold('a'.repeat(10), 10), true);
    assert.equal(reachesThreshold('é'.repeat(5), 10), true); // 10 bytes in 5 code units
    assert.equal(reachesThreshold('é'.repeat(4) + 'a', 10), false); // 9 bytes
    assert.equal(reachesThreshold('€€€', 10), false); // 9 bytes
    assert.equal(reachesThreshold('€€€a', 10), true);
    assert.equal(reachesThreshold('', 0), true);
  });
});

describe('PerMessageDeflate codec', () => {
  const server = new PerMessageDeflate({ role: 'server', params: NO_TAKEOVER });
  test('RFC 7692 7.2.3.1: "Hello" compressed, tail removed', () => {
    assert.equal(server.compress(Buffer.from('Hello')).toString('hex'), 'f248cdc9c90700');
    assert.equal(server.decompress(hex('f248cdc9c90700'), 100).toString(), 'Hello');
  });
  test('RFC 7692 7.2.3.3-7.2.3.5: stored block, BFINAL block, two blocks', () => {
    assert.equal(server.decompress(hex('000500faff48656c6c6f00'), 100).toString(), 'Hello');
    assert.equal(server.decompress(hex('f348cdc9c9070000'), 100).toString(), 'Hello');
    assert.equal(server.decompress(hex('f24805000000ffffcac9c90700'), 100).toString(), 'Hello');
  });
  test('empty message, exact limit, past the limit (1009), corrupt data (1007)', () => {
    assert.equal(server.decompress(hex('00'), 0).length, 0);
    assert.equal(server.decompress(server.compress(Buffer.alloc(1000, 1)), 1000).length, 1000);
    assert.throws(() => server.decompress(server.compress(Buffer.alloc(1000, 1)), 999), { code: 'ERR_C1M_WS_MESSAGE_TOO_BIG', closeCode: 1009 });
    assert.throws(() => server.decompress(server.compress(Buffer.alloc(1, 1)), 0), { code: 'ERR_C1M_WS_MESSAGE_TOO_BIG', closeCode: 1009 });
    assert.throws(() => server.decompress(hex('ffffffff'), 100), { code: 'ERR_C1M_WS_INVALID_COMPRESSED_DATA', closeCode: 1007 });
  });
  test('a bomb stops at the limit', () => {
    const bomb = server.compress(Buffer.alloc(64 * 1024 * 1024));
    assert.ok(bomb.length < 100_000, `${bomb.length}`);
    assert.throws(() => server.decompress(bomb, 1024 * 1024), { code: 'ERR_C1M_WS_MESSAGE_TOO_BIG' });
  });
  test('round trips of many sizes, every window, stateless', () => {
    for (const bits of [9, 10, 12, 15]) {
      const codec = new PerMessageDeflate({ role: 'server', params: { ...NO_TAKEOVER, serverMaxWindowBits: bits } });
      assert.equal(codec.stateful, false);
      for (const size of [0, 1, 100, 1000, 5000, 70_000, 300_000]) {
        const data = Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + (i >> 6)) & 0x3f));
        const packed = codec.compress(data);
        // A client inflating with exactly the agreed window must decode it.
        const out = inflateRawSync(Buffer.concat([packed, TAIL]), { windowBits: Math.max(bits, 9), finishFlush: zc.Z_SYNC_FLUSH });
        assert.ok(out.equals(data), `bits ${bits} size ${size}`);
        assert.ok(codec.decompress(packed, size).equals(data));
      }
    }
  });
  test('context takeover: our messages decode as one continuous stream (RFC 7692 7.2.3.2)', () => {
    const codec = new PerMessageDeflate({ role: 'server', params: { ...NO_TAKEOVER, serverNoContextTakeover: false } });
    assert.equal(codec.stateful, true);
    const first = codec.compress(Buffer.from('Hello'));
    const second = codec.compress(Buffer.from('Hello'));
    assert.equal(first.toString('hex'), 'f248cdc9c90700');
    assert.ok(second.length < first.length, second.toString('hex'));
    const messages = ['Hello', 'Hello', 'x'.repeat(40_000), 'Hello world', 'y'.repeat(10), 'Hello world'];
    const c2 = new PerMessageDeflate({ role: 'server', params: { ...NO_TAKEOVER, serverNoContextTakeover: false, serverMaxWindowBits: 10 } });
    const stream = Buffer.concat(messages.flatMap((m) => [c2.compress(Buffer.from(m)), TAIL]));
    assert.equal(inflateRawSync(stream, { windowBits: 10, finishFlush: zc.Z_SYNC_FLUSH }).toString(), messages.join(''));
  });
  test('context takeover: inflating a peer\'s continuous stream (RFC 7692 7.2.3.2 bytes, then zlib)', async () => {
    const rfc = new PerMessageDeflate({ role: 'server', params: TAKEOVER });
    assert.equal(rfc.decompress(hex('f248cdc9c90700'), 100).toString(), 'Hello');
    assert.equal(rfc.decompress(hex('f200110000'), 100).toString(), 'Hello');
    // A stateless codec cannot read the second message: it refers to the first.
    assert.throws(() => server.decompress(hex('f200110000'), 100), { code: 'ERR_C1M_WS_INVALID_COMPRESSED_DATA' });

    const peer = createDeflateRaw({ windowBits: 9 });
    const flush = (data: Buffer): Promise<Buffer> => new Promise((resolve) => {
      const chunks: Buffer[] = [];
      const onData = (c: Buffer): number => chunks.push(c);
      peer.on('data', onData);
      peer.write(data);
      peer.flush(zc.Z_SYNC_FLUSH, () => {
        peer.off('data', onData);
        const all = Buffer.concat(chunks);
        assert.ok(all.subarray(-4).equals(TAIL));
        resolve(all.subarray(0, -4));
      });
    });
    const ours = new PerMessageDeflate({ role: 'server', params: { ...TAKEOVER, clientMaxWindowBits: 9 } });
    const messages = ['abcdefgh'.repeat(20), 'abcdefgh'.repeat(20), 'z'.repeat(2000), 'abcdefgh'.repeat(3), 'q'.repeat(300) + 'z'.repeat(100)];
    for (const m of messages) assert.equal(ours.decompress(await flush(Buffer.from(m)), 1 << 20).toString(), m);
    peer.close();
  });
  test('client role compresses with the client window; 8 bits cannot be produced', () => {
    const client = new PerMessageDeflate({ role: 'client', params: { ...NO_TAKEOVER, clientMaxWindowBits: 8 } });
    assert.equal(client.canCompress, false);
    assert.throws(() => client.compress(Buffer.from('x')), { code: 'ERR_C1M_WS_INVALID_ARGUMENT' });
    assert.equal(client.decompress(hex('f248cdc9c90700'), 5).toString(), 'Hello');
    assert.equal(server.canCompress, true);
  });
  test('each role compresses with its agreed window: a repeat farther back than the window is not found', () => {
    // zlib inflates a distance past its window within one call, so look at the size instead:
    // random bytes repeated 2000 bytes later compress to one copy only with a window over 2000.
    let x = 0x9e3779b9;
    const r = Buffer.from(Array.from({ length: 2000 }, () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x & 0xff;
    }));
    const data = Buffer.concat([r, r]);
    const size = (role: 'server' | 'client', bits: number): number => {
      const params = { ...NO_TAKEOVER, serverMaxWindowBits: role === 'server' ? bits : 15, clientMaxWindowBits: role === 'client' ? bits : 15 };
      const packed = new PerMessageDeflate({ role, params }).compress(data);
      assert.ok(inflateRawSync(Buffer.concat([packed, TAIL]), { finishFlush: zc.Z_SYNC_FLUSH }).equals(data));
      return packed.length;
    };
    for (const role of ['server', 'client'] as const) {
      assert.ok(size(role, 15) < 2500, `${role} 15 bits: ${size(role, 15)}`);
      assert.ok(size(role, 12) < 2500, `${role} 12 bits: ${size(role, 12)}`);
      assert.ok(size(role, 11) > 3500, `${role} 11 bits (zlib reaches 262 bytes short of the window): ${size(role, 11)}`);
      assert.ok(size(role, 10) > 3500, `${role} 10 bits: ${size(role, 10)}`);
    }
  });
  test('bad options', () => {
    assert.throws(() => new PerMessageDeflate({ role: 'peer' as 'server', params: NO_TAKEOVER }), { code: 'ERR_C1M_INVALID_OPTION' });
    assert.throws(() => new PerMessageDeflate({ role: 'server', params: { ...NO_TAKEOVER, serverMaxWindowBits: 16 } }), { code: 'ERR_C1M_INVALID_OPTION' });
    assert.throws(() => new PerMessageDeflate({ role: 'server', params: NO_TAKEOVER, level: 11 }), { code: 'ERR_C1M_INVALID_OPTION' });
  });
});
