/**
 * The gateway's pure parts, without sockets: topic patterns, the client protocol's parsing
 * and encoding, published data as JSON, and the history's bounds (messages, bytes, epochs,
 * streams).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isTopic, topicMatches } from '../../src/apps/gateway/auth.js';
import { Streams } from '../../src/apps/gateway/history.js';
import {
  OpError, encodeAck, encodeAckOne, encodeMsg, encodeWelcome, messageData, parseClientBinary, parseClientOp, parseQuerySub, queryOf, type TopicState,
} from '../../src/apps/gateway/protocol.js';

describe('gateway: topics and patterns', () => {
  test('topic names: dot-separated segments of [A-Za-z0-9_-], at most 128 characters', () => {
    for (const t of ['a', 'news.sport', 'user-42.inbox_1', 'x'.repeat(128)]) assert.ok(isTopic(t), t);
    for (const t of ['', '.a', 'a.', 'a..b', 'a b', 'a.*', 'a.>', 'a:b', 'é', 'x'.repeat(129), 42]) assert.ok(!isTopic(t), String(t));
  });

  test('patterns follow NATS subject rules: * is one segment, a final > one or more', () => {
    const cases: [string, string, boolean][] = [
      ['news.sport', 'news.sport', true], ['news.sport', 'news.tech', false],
      ['news.*', 'news.sport', true], ['news.*', 'news', false], ['news.*', 'news.sport.live', false],
      ['news.>', 'news.sport', true], ['news.>', 'news.sport.live', true], ['news.>', 'news', false],
      ['*.inbox', 'u1.inbox', true], ['*.inbox', 'u1.outbox', false], ['>', 'anything.at.all', true],
      ['a.>.b', 'a.x.b', false], ['*', 'a', true], ['*', 'a.b', false],
    ];
    for (const [p, t, want] of cases) assert.equal(topicMatches(p, t), want, `${p} ~ ${t}`);
  });
});

describe('gateway: client protocol', () => {
  test('ack and welcome: the same text as JSON.stringify of the object', () => {
    const cases: (Record<string, TopicState> | undefined)[] = [
      undefined, {}, { bench: { seq: 0, epoch: 'k3x9' } },
      { 'a.b-c_d': { seq: 12, epoch: 'e"\\\u00e9', recovered: true }, z: { seq: 1, epoch: '', recovered: false }, y: { seq: 2 ** 40, epoch: 'q' } },
    ];
    for (const [i, topics] of cases.entries()) {
      const want = topics === undefined ? JSON.stringify({ op: 'ack', id: i }) : JSON.stringify({ op: 'ack', id: i, topics });
      assert.equal(encodeAck(i, topics), want);
      assert.deepEqual(JSON.parse(encodeAck(i, topics)), JSON.parse(want));
    }
    for (const user of ['', 'alice', 'b"o\\b\n']) assert.equal(encodeWelcome(user), JSON.stringify({ op: 'welcome', user }));
    for (const [id, topic, seq, epoch] of [[0, 'a', 0, 'k3x9'], [7, 'news.sport-1', 2 ** 40, 'e"\\\u00e9']] as const) {
      assert.equal(encodeAckOne(id, topic, seq, epoch), encodeAck(id, { [topic]: { seq, epoch } }));
    }
  });

  test('sub, unsub, pub, ping parse; topics deduplicated; since by topic; pub data normalised JSON text', () => {
    assert.deepEqual(parseClientOp('{"op":"pub","id":3,"topic":"a.b","data":{ "x" : [1, "y"] }}'), { op: 'pub', id: 3, topic: 'a.b', data: '{"x":[1,"y"]}' });
    assert.deepEqual(parseClientOp('{"op":"pub","topic":"a","data":null}'), { op: 'pub', id: 0, topic: 'a', data: 'null' });
    assert.deepEqual(parseClientOp('{"op":"sub","id":1,"topics":["a","b","a"]}'), { op: 'sub', id: 1, topics: ['a', 'b'], since: new Map() });
    const s = parseClientOp('{"op":"sub","id":2,"topics":["a"],"since":{"a":{"seq":5,"epoch":"e-1"}}}');
    assert.deepEqual(s, { op: 'sub', id: 2, topics: ['a'], since: new Map([['a', { seq: 5, epoch: 'e-1' }]]) });
    assert.deepEqual(parseClientOp('{"op":"unsub","topics":["a"]}'), { op: 'unsub', id: 0, topics: ['a'] });
    assert.deepEqual(parseClientOp('{"op":"ping","id":9}'), { op: 'ping', id: 9 });
    assert.deepEqual(parseClientOp('{"op":"refresh","id":4,"token":"a.b.c"}'), { op: 'refresh', id: 4, token: 'a.b.c' });
  });

  test('what cannot be served: an OpError with its wire code and the id it carried', () => {
    const cases: [string, string, number][] = [
      ['nope', 'bad_request', 0], ['[1]', 'bad_request', 0], ['{"op":"sub","id":-1,"topics":["a"]}', 'bad_request', 0],
      ['{"op":"sub","id":3}', 'bad_request', 3], ['{"op":"sub","id":3,"topics":["a.*"]}', 'invalid_topic', 3],
      [`{"op":"sub","id":4,"topics":${JSON.stringify(Array.from({ length: 101 }, (_, i) => `t${i}`))}}`, 'bad_request', 4],
      ['{"op":"sub","id":5,"topics":["a"],"since":{"a":{"seq":"1","epoch":"e"}}}', 'bad_request', 5],
      ['{"op":"pub","id":6}', 'invalid_topic', 6], ['{"op":"pub","id":6,"topic":"a.>","data":1}', 'invalid_topic', 6],
      ['{"op":"pub","id":6,"topic":"a"}', 'bad_request', 6], ['{"op":"publish","id":11,"topic":"a","data":1}', 'bad_request', 11],
      ['{"op":"refresh","id":7}', 'bad_request', 7], ['{"op":"refresh","id":8,"token":""}', 'bad_request', 8],
      ['{"op":"refresh","id":9,"token":42}', 'bad_request', 9], [`{"op":"refresh","id":10,"token":"${'x'.repeat(8193)}"}`, 'bad_request', 10],
    ];
    for (const [text, code, id] of cases) {
      assert.throws(() => parseClientOp(text), (e: unknown) => e instanceof OpError && e.code === code && e.id === id, text);
    }
  });

  test('the connect query: topics=a,b and since=topic:seq:epoch', () => {
    assert.equal(parseQuerySub(new URLSearchParams('token=x')), null);
    const q = parseQuerySub(new URLSearchParams('topics=a,b&since=a:12:ab12-3'));
    assert.deepEqual(q, { op: 'sub', id: 0, topics: ['a', 'b'], since: new Map([['a', { seq: 12, epoch: 'ab12-3' }]]) });
    for (const bad of ['topics=a&since=b:1:e', 'topics=a&since=a:x:e', 'topics=a&since=a:1', 'topics=a,,b']) {
      assert.throws(() => parseQuerySub(new URLSearchParams(bad)), OpError, bad);
    }
  });

  test('the connect query is read as URLSearchParams reads it (what follows the first ?)', () => {
    const names = ['topics', 'since', 'token', 'x'];
    const check = (target: string): void => {
      const q = target.indexOf('?');
      const want = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
      const got = queryOf(target);
      for (const n of names) assert.equal(got.get(n), want.get(n), `${JSON.stringify(target)} ${n}`);
    };
    for (const t of [
      '/ws', '/ws?', '/ws?topics=a', '/ws?topics=a,b&since=a:1:e', '/ws??topics=a', '/ws?&&topics=&topics=b', '/ws?topics',
      '/ws?x=1&topics=a=b&token=t', '/ws?topics=a%2Cb', '/ws?topics=a+b', '/ws?to%70ics=a', '/ws?topics=\u00e9&x=\u00ff', '/ws?a?topics=b',
      '/ws???topics=%2C', '/ws??topics=a+b', '/ws???topics=a',
    ]) check(t);
    const part = fc.constantFrom('topics', 'since', 'token', 'x', '=', '&', '?', '%', '%2C', '+', 'a', ',', ':', '\u00e9');
    fc.assert(fc.property(fc.array(part, { maxLength: 12 }), (parts) => check(`/ws?${parts.join('')}`)), { numRuns: 2000 });
  });

  test('published data: JSON content types must be JSON (normalised), anything else is a JSON string', () => {
    const b = (s: string): Buffer => Buffer.from(s);
    assert.equal(messageData(b('{ "a" : [1, 2] }'), 'application/json'), '{"a":[1,2]}');
    assert.equal(messageData(b('{"a":1}'), 'application/cloudevents+json; charset=utf-8'), '{"a":1}');
    assert.equal(messageData(b('{oops'), 'application/json'), null);
    assert.equal(messageData(b('{"a":1}'), 'text/plain'), '"{\\"a\\":1}"');
    assert.equal(messageData(b('héllo "q"\n'), undefined), '"héllo \\"q\\"\\n"');
    // A frame is one JSON object, whatever the data.
    const frame = encodeMsg('t.x', 3, messageData(b('</script>"'), undefined)!);
    assert.deepEqual(JSON.parse(frame as string), { op: 'msg', topic: 't.x', seq: 3, data: '</script>"' });
  });

  test('binary data: application/octet-stream is kept as bytes and delivered in a binary msg', () => {
    const body = Buffer.from([0, 1, 2, 0xff, 0x7b]);
    for (const ct of ['application/octet-stream', 'Application/Octet-Stream; x=1', ' application/octet-stream ']) {
      assert.equal(messageData(body, ct), body, ct);
    }
    for (const ct of ['application/octet-streams', 'application/octet', 'text/plain']) assert.equal(typeof messageData(body, ct), 'string', ct);
    const seq = 2 ** 40 + 7;
    const f = encodeMsg('dev-7.telemetry', seq, body) as Buffer;
    assert.ok(Buffer.isBuffer(f));
    const n = 'dev-7.telemetry'.length;
    assert.equal(f[0], 0x01);
    assert.equal(f[1], n);
    assert.equal(f.toString('latin1', 2, 2 + n), 'dev-7.telemetry');
    assert.equal(f.readBigUInt64BE(2 + n), BigInt(seq));
    assert.deepEqual(f.subarray(10 + n), body);
    assert.equal(f.length, 10 + n + body.length);
    assert.equal((encodeMsg('t', 1, new Uint8Array(0)) as Buffer).length, 11, 'empty data');
  });

  test('a binary pub: 0x02, id (u32 BE), topic length, topic, data; anything else is refused with the id it carried', () => {
    const pub = (id: number, topic: string, data: number[], kind = 0x02): Buffer => {
      const h = Buffer.alloc(6);
      h[0] = kind;
      h.writeUInt32BE(id, 1);
      h[5] = Buffer.byteLength(topic);
      return Buffer.concat([h, Buffer.from(topic), Buffer.from(data)]);
    };
    const frame = pub(0xfffffffe, 'room.1', [9, 8, 7]);
    const op = parseClientBinary(frame);
    assert.deepEqual({ ...op, data: Array.from((op as { data: Uint8Array }).data) }, { op: 'pub', id: 0xfffffffe, topic: 'room.1', data: [9, 8, 7] });
    frame[12] = 0; // a view of the frame (the gateway copies the reader's bytes first)
    assert.deepEqual(Array.from((op as { data: Uint8Array }).data), [0, 8, 7]);
    assert.deepEqual(Array.from((parseClientBinary(pub(1, 'a', [])) as { data: Uint8Array }).data), [], 'empty data');
    const refused = (b: Uint8Array): [string, number] => {
      try {
        parseClientBinary(b);
      } catch (err) {
        assert.ok(err instanceof OpError);
        return [err.code, err.id];
      }
      assert.fail('accepted');
    };
    assert.deepEqual(refused(pub(5, 'a', [1], 0x01)), ['bad_request', 0], 'not a pub');
    assert.deepEqual(refused(Buffer.from([2, 0, 0, 0, 5, 1])), ['bad_request', 0], 'too short for a topic');
    const over = pub(6, 'abc', []);
    over[5] = 9;
    assert.deepEqual(refused(over), ['bad_request', 6], 'the topic runs past the message');
    assert.deepEqual(refused(pub(7, 'bad..topic', [1])), ['invalid_topic', 7]);
    assert.deepEqual(refused(pub(8, 'caf\u00e9', [1])), ['invalid_topic', 8]);
    assert.deepEqual(refused(new Uint8Array(0)), ['bad_request', 0]);
  });
});

describe('gateway: streams and history', () => {
  const frame = (seq: number): string => `frame-${seq}`;

  test('at most N messages per topic; recovery from a kept position, not from a lost one or another epoch', () => {
    const st = new Streams({ history: 3 }, () => {});
    const s = st.open('t')!;
    for (let i = 0; i < 5; i++) st.append(s, frame);
    assert.equal(s.seq, 5);
    assert.deepEqual(st.recover(s, 2, s.epoch), { recovered: true, frames: ['frame-3', 'frame-4', 'frame-5'] });
    assert.deepEqual(st.recover(s, 4, s.epoch), { recovered: true, frames: ['frame-5'] });
    assert.deepEqual(st.recover(s, 5, s.epoch), { recovered: true, frames: [] });
    assert.deepEqual(st.recover(s, 1, s.epoch), { recovered: false, frames: [] });
    assert.deepEqual(st.recover(s, 6, s.epoch), { recovered: false, frames: [] }, 'ahead of the stream');
    assert.deepEqual(st.recover(s, 4, 'other-1'), { recovered: false, frames: [] });
    st.close();
  });

  test('at most historyBytes per topic; without history only the count', () => {
    const st = new Streams({ history: 100, historyBytes: 20 }, () => {});
    const s = st.open('t')!;
    for (let i = 0; i < 10; i++) st.append(s, () => 'x'.repeat(8));
    assert.equal(s.frames.length, 2);
    assert.ok(s.bytes <= 20);
    assert.deepEqual(st.recover(s, 8, s.epoch).frames.length, 2);
    const none = new Streams({}, () => {});
    const n = none.open('t')!;
    none.append(n, frame);
    assert.equal(n.frames.length, 0);
    assert.deepEqual(none.recover(n, 0, n.epoch), { recovered: false, frames: [] });
    st.close();
  });

  test('streams: dropped with their last subscriber without history, after the ttl with it; a new stream has a new epoch', () => {
    const dropped: string[] = [];
    const none = new Streams({}, (t) => dropped.push(t));
    const a = none.open('a')!;
    a.active = true;
    none.left('a', a);
    assert.deepEqual(dropped, ['a']);
    assert.notEqual(none.open('a')!.epoch, a.epoch);
    const kept = new Streams({ history: 5, ttl: 1000 }, (t) => dropped.push(t));
    const b = kept.open('b')!;
    b.active = true;
    kept.left('b', b);
    kept.sweep(b.used + 999);
    assert.equal(kept.get('b'), b);
    kept.sweep(b.used + 1000);
    assert.equal(kept.get('b'), undefined);
    assert.deepEqual(dropped, ['a', 'b']);
    kept.close();
  });

  test('at most maxStreams: the least recently used inactive stream makes room; none when all are active', () => {
    const dropped: string[] = [];
    const st = new Streams({ history: 1, maxStreams: 2 }, (t) => dropped.push(t));
    const x = st.open('x')!;
    const y = st.open('y')!;
    y.used = x.used + 1;
    assert.ok(st.open('z'));
    assert.deepEqual(dropped, ['x']);
    st.get('y')!.active = true;
    st.get('z')!.active = true;
    assert.equal(st.open('w'), undefined);
    st.close();
  });
});
