/**
 * A recovery's read of the JetStream history (`JetStreamHistory.fetch`, jetstream.ts) against a
 * fake stream: whether it is complete is decided from the stream as it is after the reads (a
 * message of the topic dropped while they ran makes it incomplete), and what it covers reaches
 * the stream's last message from before the reads when they found the topic's end (so a topic
 * whose last message is behind other topics' needs nothing from the feed below that).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NatsConnection } from 'nats';
import { JetStreamHistory } from '../../src/apps/gateway/jetstream.js';

const T = 'c1m.topic.t';

/** A stream of subjects by seq, with `max` messages kept per subject, and hooks into its reads. */
function fakeStream(subjects: Map<number, string>, max: number, beforeRead: () => void = () => {}) {
  let last = Math.max(...subjects.keys());
  const publish = (subject: string): void => {
    subjects.set(++last, subject);
    const mine = [...subjects].filter(([, v]) => v === subject).map(([k]) => k);
    if (mine.length > max) subjects.delete(mine[0]!);
  };
  const state = (filter?: string) => {
    const seqs = [...subjects.keys()];
    const count = [...subjects.values()].filter((v) => v === filter).length;
    return { first_seq: Math.min(...seqs), last_seq: last, subjects: filter === undefined ? undefined : { [filter]: count } };
  };
  const jsm = {
    streams: {
      add: async () => ({ created: '2026-12-06T00:00:00Z' }),
      info: async (_name: string, o?: { subjects_filter?: string }) => ({ state: state(o?.subjects_filter), config: { max_msgs_per_subject: max } }),
    },
    direct: {
      getMessage: async (_name: string, q: { seq: number; next_by_subj: string }) => {
        beforeRead();
        for (let s = q.seq; s <= last; s++) if (subjects.get(s) === q.next_by_subj) return { seq: s, data: new Uint8Array(), header: { get: () => '' } };
        throw Object.assign(new Error('no message found'), { code: '404' });
      },
    },
  };
  const nc = { jetstreamManager: async () => jsm, jetstream: () => ({}) } as unknown as NatsConnection;
  return { nc, publish };
}

const open = (nc: NatsConnection): Promise<JetStreamHistory> => JetStreamHistory.open(nc, { history: 10, prefix: 'c1m.topic.' }, (_t, seq) => `f${seq}`, () => {});

test('a message of the topic dropped while the reads ran: the recovery is not complete', async () => {
  // Other topics at 1..10; t at 11..19 (9 of 10 kept); the client saw up to 10.
  const subjects = new Map(Array.from({ length: 19 }, (_, i) => [i + 1, i + 1 >= 11 ? T : 'c1m.topic.o'] as [number, string]));
  let injected = false;
  const s = fakeStream(subjects, 10, () => {
    if (injected) return;
    injected = true;
    s.publish(T); // two publishes of t before the first read: the limit drops seq 11
    s.publish(T);
  });
  const h = await open(s.nc);
  const r = await h.fetch('t', 10, h.epoch);
  assert.equal(r.frames.some((f) => f.seq === 11), false, 'seq 11 is gone');
  assert.equal(r.complete, false, 'so the client is told it missed something');
});

test('a topic whose last message is behind other topics\': the fetch covers up to the stream\'s last message', async () => {
  // t at 1..3, other topics at 4..8.
  const subjects = new Map<number, string>([[1, T], [2, T], [3, T], [4, 'c1m.topic.o'], [5, 'c1m.topic.o'], [6, 'c1m.topic.p'], [7, 'c1m.topic.o'], [8, 'c1m.topic.p']]);
  const s = fakeStream(subjects, 10);
  const h = await open(s.nc);
  const r = await h.fetch('t', 1, h.epoch);
  assert.deepEqual(r.frames.map((f) => f.seq), [2, 3]);
  assert.equal(r.complete, true);
  assert.equal(r.after, 3);
  assert.equal(r.covered, 8, 'nothing of t between its last message and the stream\'s');
});
