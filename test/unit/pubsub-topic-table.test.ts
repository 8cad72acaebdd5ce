/**
 * The topic table without sockets: subscribe/unsubscribe/removeAll churn against a reference
 * model (Map of Sets) with fast-check, checking after every step the counts, every topic's
 * subscriber ids (so swap-remove kept each moved member's position right), the interest
 * callbacks, and that everything returns to zero; limits; topic name validation; ids that
 * carry a generation (a reused key never inherits the old subscriptions).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { PUBSUB_DEFAULTS, TopicTable, checkTopic } from '../../src/protocols/pubsub/index.js';
import type { Connection, Reactor } from '../../src/core/index.js';

const TWO32 = 2 ** 32;

type Op =
  | { kind: 'sub'; conn: number; topic: number }
  | { kind: 'unsub'; conn: number; topic: number }
  | { kind: 'close'; conn: number };

/** The model: topic -> set of ids; ids by connection slot, with a generation bumped on close. */
class Model {
  readonly topics = new Map<string, Set<number>>();
  readonly gens: number[];
  readonly events: string[] = [];
  constructor(conns: number) {
    // Generations above 16 bits too (the table keeps their high bits apart).
    this.gens = Array.from({ length: conns }, (_, i) => (i * 70_001) % (2 ** 21 - 1));
  }
  id(conn: number): number {
    // Keys spread over more than one page (1024 keys each).
    return this.gens[conn]! * TWO32 + conn * 97;
  }
  sub(id: number, topic: string): boolean {
    let s = this.topics.get(topic);
    if (s === undefined) {
      s = new Set();
      this.topics.set(topic, s);
      this.events.push(`+${topic}`);
    }
    if (s.has(id)) return false;
    s.add(id);
    return true;
  }
  unsub(id: number, topic: string): boolean {
    const s = this.topics.get(topic);
    if (s === undefined || !s.delete(id)) return false;
    if (s.size === 0) {
      this.topics.delete(topic);
      this.events.push(`-${topic}`);
    }
    return true;
  }
  close(conn: number): number {
    const id = this.id(conn);
    let n = 0;
    for (const [topic, s] of [...this.topics]) if (s.has(id)) {
      this.unsub(id, topic);
      n++;
    }
    this.gens[conn]++;
    return n;
  }
  count(): number {
    let n = 0;
    for (const s of this.topics.values()) n += s.size;
    return n;
  }
}

function check(table: TopicTable, model: Model, topicNames: string[], conns: number): void {
  assert.equal(table.topics, model.topics.size);
  assert.equal(table.subscriptions, model.count());
  for (const name of topicNames) {
    const expected = [...(model.topics.get(name) ?? [])].sort((a, b) => a - b);
    assert.equal(table.subscriberCount(name), expected.length, name);
    assert.deepEqual([...table.subscribers(name)].sort((a, b) => a - b), expected, name);
  }
  for (let c = 0; c < conns; c++) {
    const id = model.id(c);
    const mine = topicNames.filter((t) => model.topics.get(t)?.has(id));
    assert.deepEqual(table.topicsOf(id).sort(), mine.sort());
    assert.equal(table.topicCount(id), mine.length);
    for (const t of topicNames) assert.equal(table.isSubscribed(id, t), mine.includes(t));
  }
}

describe('TopicTable', () => {
  test('churn matches a reference model and returns to zero', () => {
    const CONNS = 24, TOPICS = 9;
    const names = Array.from({ length: TOPICS }, (_, i) => `topic/${i}`);
    const op = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('sub' as const), conn: fc.nat(CONNS - 1), topic: fc.nat(TOPICS - 1) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('unsub' as const), conn: fc.nat(CONNS - 1), topic: fc.nat(TOPICS - 1) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const), conn: fc.nat(CONNS - 1) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 100, maxLength: 400 }), (ops: Op[]) => {
        const events: string[] = [];
        const table = new TopicTable({ onTopicInterest: (t, active) => events.push(`${active ? '+' : '-'}${t}`) });
        const model = new Model(CONNS);
        for (const o of ops) {
          const id = model.id(o.conn);
          if (o.kind === 'sub') assert.equal(table.subscribe(id, names[o.topic]!), model.sub(id, names[o.topic]!));
          else if (o.kind === 'unsub') assert.equal(table.unsubscribe(id, names[o.topic]!), model.unsub(id, names[o.topic]!));
          else assert.equal(table.removeAll(id), model.close(o.conn));
          // Interest events in the same order (a removeAll reports after its removals; the
          // model removes topics in insertion order, the table in its own: compare as sets there).
          assert.deepEqual([...events].sort(), [...model.events].sort());
          check(table, model, names, CONNS);
        }
        for (let c = 0; c < CONNS; c++) {
          table.removeAll(model.id(c));
          model.close(c);
        }
        assert.equal(table.topics, 0);
        assert.equal(table.subscriptions, 0);
        assert.deepEqual([...events].sort(), [...model.events].sort());
        for (const name of names) assert.equal(table.subscribers(name).length, 0);
      }),
      { numRuns: 60 },
    );
  });

  test('swap-remove keeps every position right in a large topic', () => {
    const table = new TopicTable({ maxTopicsPerConnection: 4 });
    const ids = Array.from({ length: 5000 }, (_, i) => i * 7 + 3);
    for (const id of ids) {
      table.subscribe(id, 'big');
      if (id % 3 === 0) table.subscribe(id, 'third');
    }
    // Remove every other id, from the middle outwards, then check the rest is exact.
    const removed = new Set<number>();
    for (let i = 0; i < ids.length; i += 2) {
      const id = ids[(i * 2654435761) % ids.length]!;
      if (removed.has(id)) continue;
      removed.add(id);
      assert.equal(table.unsubscribe(id, 'big'), true);
    }
    const left = ids.filter((id) => !removed.has(id));
    assert.deepEqual([...table.subscribers('big')].sort((a, b) => a - b), left);
    for (const id of left) assert.equal(table.unsubscribe(id, 'big'), true);
    assert.equal(table.subscriberCount('big'), 0);
    assert.equal(table.subscriptions, ids.filter((id) => id % 3 === 0).length);
    for (const id of ids) table.removeAll(id);
    assert.equal(table.subscriptions, 0);
    assert.equal(table.topics, 0);
  });

  test('ids carry a generation: a reused key never inherits subscriptions', () => {
    const interest: string[] = [];
    const table = new TopicTable({ onTopicInterest: (t, a) => interest.push(`${a ? '+' : '-'}${t}`) });
    const old = 0 * TWO32 + 17, reused = 1 * TWO32 + 17;
    table.subscribe(old, 'a');
    table.subscribe(old, 'b');
    assert.equal(table.isSubscribed(reused, 'a'), false);
    assert.equal(table.unsubscribe(reused, 'a'), false);
    assert.equal(table.removeAll(reused), 0);
    assert.deepEqual([...table.subscribers('a')], [old]);
    // The new connection on the same key subscribes: the old one's subscriptions go.
    assert.equal(table.subscribe(reused, 'b'), true);
    assert.deepEqual([...table.subscribers('b')], [reused]);
    assert.equal(table.subscriberCount('a'), 0);
    assert.equal(table.isSubscribed(old, 'b'), false);
    assert.deepEqual(interest, ['+a', '+b', '-a', '-b', '+b']);
    // Every generation an id may carry (ids are below 2^53) comes back exactly.
    const gens = [0, 1, 0xffff, 0x10000, 0x12345, 2 ** 20 - 1, 2 ** 20, 2 ** 21 - 1];
    const ids = gens.map((g, i) => g * TWO32 + 5000 + i);
    for (const id of ids) table.subscribe(id, 'g');
    assert.deepEqual([...table.subscribers('g')].sort((a, b) => a - b), [...ids].sort((a, b) => a - b));
    for (const id of ids) assert.equal(table.isSubscribed(id, 'g'), true);
    for (const id of ids) assert.equal(table.isSubscribed(id + TWO32, 'g'), false);
    for (const id of ids) table.subscribe(id, 'h');
    for (const id of ids) assert.equal(table.removeAll(id), 2);
  });

  test('onTopicInterest runs as a method of the options object', () => {
    const seen: unknown[] = [];
    const options = {
      onTopicInterest(this: unknown, topic: string, active: boolean) {
        seen.push(this, topic, active);
      },
    };
    const table = new TopicTable(options);
    table.subscribe(1, 't');
    table.removeAll(1);
    assert.deepEqual(seen, [options, 't', true, options, 't', false]);
  });

  test('limits: per connection and per table', () => {
    const table = new TopicTable({ maxTopicsPerConnection: 3, maxTopics: 5 });
    for (const t of ['a', 'b', 'c']) assert.equal(table.subscribe(1, t), true);
    assert.equal(table.subscribe(1, 'a'), false, 'already subscribed is not past the limit');
    assert.throws(() => table.subscribe(1, 'd'), { code: 'ERR_C1M_PUBSUB_LIMIT', message: /maxTopicsPerConnection/ });
    table.subscribe(2, 'd');
    table.subscribe(2, 'e');
    assert.throws(() => table.subscribe(3, 'f'), { code: 'ERR_C1M_PUBSUB_LIMIT', message: /maxTopics/ });
    assert.equal(table.subscribe(3, 'a'), true, 'an existing topic is fine at maxTopics');
    table.removeAll(2);
    assert.equal(table.subscribe(3, 'f'), true);
    assert.equal(table.topics, 4);
    assert.equal(PUBSUB_DEFAULTS.maxTopicsPerConnection, 64);
    assert.equal(PUBSUB_DEFAULTS.maxTopics, 100_000);
    const def = new TopicTable();
    for (let i = 0; i < 64; i++) def.subscribe(9, `t${i}`);
    assert.throws(() => def.subscribe(9, 't64'), { code: 'ERR_C1M_PUBSUB_LIMIT' });
    assert.equal(def.topicsOf(9).length, 64);
    assert.equal(def.removeAll(9), 64);
    assert.equal(def.topics, 0);
  });

  test('topic names: UTF-8 up to maxTopicLength bytes, no control characters', () => {
    const table = new TopicTable({ maxTopicLength: 8 });
    assert.equal(table.subscribe(1, 'é'.repeat(4)), true, '8 bytes');
    assert.throws(() => table.subscribe(1, 'é'.repeat(5)), { code: 'ERR_C1M_PUBSUB_TOPIC', message: /8 UTF-8 bytes/ });
    assert.throws(() => table.subscribe(1, '123456789'), { code: 'ERR_C1M_PUBSUB_TOPIC' });
    assert.equal(table.subscribe(1, '😀😀'), true, 'a pair is 4 bytes');
    for (const bad of ['', 'a\nb', 'tab\t', 'nul\u0000', 'del\u007f', 'c1\u0085', '\ud800', 'x\udc00y']) {
      assert.throws(() => table.subscribe(1, bad), { code: 'ERR_C1M_PUBSUB_TOPIC' }, JSON.stringify(bad));
    }
    assert.throws(() => table.subscribe(1, 42 as unknown as string), { code: 'ERR_C1M_PUBSUB_TOPIC' });
    assert.equal(table.topicCount(1), 2);
    assert.doesNotThrow(() => checkTopic('x'.repeat(256)));
    assert.throws(() => checkTopic('x'.repeat(257)), { code: 'ERR_C1M_PUBSUB_TOPIC' });
    assert.throws(() => table.subscribe(-1, 'a'), { code: 'ERR_C1M_INVALID_OPTION' });
    assert.throws(() => table.subscribe(1.5, 'a'), { code: 'ERR_C1M_INVALID_OPTION' });
    assert.throws(() => new TopicTable({ maxTopics: 0 }), { code: 'ERR_C1M_INVALID_OPTION', message: /maxTopics/ });
    assert.throws(() => new TopicTable({ maxTopicsPerConnection: 1.5 }), { code: 'ERR_C1M_INVALID_OPTION' });
  });

  test('publish hands the subscribers to reactor.broadcast, skipping slow ones', () => {
    const buffered = new Map<number, number>([[1, 0], [2, 5000], [3, 10]]);
    const sent: number[][] = [];
    const reactor = {
      broadcast(ids: ArrayLike<number>, _data: Uint8Array | string) {
        sent.push(Array.from(ids));
        return ids.length;
      },
      connection(id: number) {
        return { id, bufferedAmount: buffered.get(id) ?? 0 } as Connection;
      },
      bufferedAmount(id: number) {
        return buffered.get(id) ?? 0;
      },
      backlog(id: number) {
        return buffered.get(id) ?? 0;
      },
    } as unknown as Reactor;
    const table = new TopicTable();
    for (const id of [1, 2, 3]) table.subscribe(id, 'news');
    assert.equal(table.publish(reactor, 'news', 'x'), 3);
    assert.equal(table.publish(reactor, 'none', 'x'), 0);
    const slow: number[] = [];
    assert.equal(table.publish(reactor, 'news', 'x', { maxBufferedBytes: 100, onSlow: (c) => { slow.push(c.id); table.removeAll(c.id); } }), 2);
    assert.deepEqual(slow, [2]);
    assert.deepEqual(sent.map((s) => s.sort()), [[1, 2, 3], [1, 3]]);
    assert.equal(table.subscriberCount('news'), 2);
  });
});
