/**
 * Topic history shared by every gateway process and machine on one NATS: a JetStream stream
 * (`--nats` with `--history N`). docs/gateway.md, "History in JetStream".
 *
 * The model. One stream (default `C1M_HISTORY`) captures every topic subject (`<prefix>>`),
 * keeps the last `history` messages of each subject (`max_msgs_per_subject`) within a byte
 * bound for the whole stream, and drops the oldest first. A message's `seq` is its stream
 * sequence: monotonic per stream, shared by every topic, so a topic's seqs rise with gaps. The
 * epoch is `<stream name>-<its creation time, digits only>`: a stream deleted and created again
 * (a memory stream after a NATS restart) has another epoch, and a position of the old one is
 * refused, never applied to the new one.
 *
 * Live delivery. A process's interest in a topic is a feed: an ephemeral push consumer of the
 * stream filtered on the topic's subject, no acks, delivering to an inbox this process
 * subscribes. It is created at the first hold of the topic (a local subscriber, or a `sub`
 * being served) and deleted after the last release. A feed remembers `last`, the highest seq it
 * has delivered here (at its start: the stream's last seq), so it resumes at `last + 1` after a
 * reconnect or a gap in the consumer's delivery count, and a ring of the frames it delivered
 * recently (`history` of them) that bridges a recovery's fetch and the live stream.
 *
 * Recovery (`fetch`) reads the topic's messages after `since` with direct gets (`next_by_subj`),
 * then decides whether that is all of them, from what the stream holds after the reads:
 * complete when a message of the topic at or before `since` is still there (a subject's
 * messages are dropped oldest first, and the byte bound drops a prefix of the stream), or when
 * the stream has dropped nothing after `since` (its first seq <= since + 1) and the subject has
 * fewer than `history` messages (so the per-subject limit has dropped none since). The stream's
 * last seq before the reads bounds what they cover (`covered`): a topic with no message between
 * its last one and that position needs nothing from the feed's ring below it.
 *
 * Threading: one instance per gateway (per reactor thread or process), on that thread.
 */
import {
  AckPolicy, DeliverPolicy, DiscardPolicy, StorageType, createInbox, headers as natsHeaders, nanos,
  type JetStreamClient, type JetStreamManager, type Msg, type NatsConnection, type StreamConfig, type Subscription,
} from 'nats';
import { deliverLater } from './inbound.js';
import type { Frame } from './protocol.js';

export interface JetStreamHistoryOptions {
  /** Messages kept per topic (`max_msgs_per_subject`), at least 1. */
  history: number;
  /** The stream's name ([A-Za-z0-9_-]). Default `C1M_HISTORY`. */
  stream?: string;
  /** `memory` (default) or `file`. */
  storage?: 'memory' | 'file';
  /** Bytes the whole stream keeps (`max_bytes`). Default 256 MiB. */
  streamBytes?: number;
  /** Subject prefix of topics; it ends with a dot. */
  prefix: string;
  /**
   * Whether the NATS connection is up (the broker's view). While it is not, a fetch or a new
   * feed fails at once instead of waiting for JetStream's request timeout. Default: always.
   */
  connected?: () => boolean;
}

/** A frame delivered or recovered: its stream seq and the frame (`{"op":"msg",...}` or a binary `msg`). */
export interface SeqFrame {
  seq: number;
  frame: Frame;
}

/** What a recovery read from the stream (before it is joined to the live feed: `join`). */
export interface Fetched {
  /** Whether the stream still held every message of the topic after `since`. */
  complete: boolean;
  frames: SeqFrame[];
  /** Every message of the topic up to the reads' end is in `frames`; the feed's ring continues after `after`. */
  after: number;
  /**
   * The stream position up to which the topic has no message outside `frames` (at least
   * `after`; the stream's last seq before the reads when they reached the topic's end).
   */
  covered: number;
  epoch: string;
}

/** What the caller turns a stream message into: its frame, or null when it is not deliverable. */
export type FrameOf = (topic: string, seq: number, data: Uint8Array, contentType: string | undefined) => Frame | null;
/** A frame the feed delivered (with the publisher's time, if the message says it). */
export type OnFrame = (topic: string, seq: number, frame: Frame, publishedAt: number | undefined) => void;

interface Feed {
  /** Holds: local subscribers plus `sub` ops being served. */
  refs: number;
  /** Bumped at every (re)start and stop: a push or a start of an older generation is stale. */
  gen: number;
  /** The running start, or its result; null: not started (NATS unreachable). */
  ready: Promise<void> | null;
  /** Highest seq delivered here; -1 until the first start knows the stream's last seq. */
  last: number;
  /** Recent frames delivered here, oldest first; every delivery with seq > `floor` is in it. */
  ring: SeqFrame[];
  floor: number;
  /** The consumer's delivery count seen last (a jump is a message lost on the way). */
  cseq: number;
  sub: Subscription | null;
  consumer: string | null;
}

/** Stream seq and consumer delivery count of a pushed message, from its `$JS.ACK...` reply subject. */
function pushInfo(reply: string | undefined): { seq: number; cseq: number } | null {
  const t = reply?.split('.');
  if (t === undefined || t[0] !== '$JS' || t[1] !== 'ACK') return null;
  // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> (9 tokens), or with
  // <domain>.<account hash> after ACK and a token at the end (12).
  const at = t.length === 9 ? 5 : t.length >= 11 ? 7 : -1;
  if (at < 0) return null;
  return { seq: Number(t[at]), cseq: Number(t[at + 1]) };
}

const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** What a direct get returns (the manager has `direct` since nats.js 2.9; its type does not say so). */
type DirectGet = (stream: string, q: { seq: number; next_by_subj: string }) => Promise<{ seq: number; data: Uint8Array; header: { get(k: string): string } }>;

export class JetStreamHistory {
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;
  readonly #config: Partial<StreamConfig> & { name: string };
  readonly #prefix: string;
  readonly #history: number;
  readonly #frameOf: FrameOf;
  readonly #onFrame: OnFrame;
  readonly #feeds = new Map<string, Feed>();
  readonly #connected: () => boolean;
  #epoch: string;
  /**
   * While a reconnect's ensure runs: settles once the stream is known to exist with `#epoch`.
   * A publish or a fetch waits for it, so an ack from a stream re-created by the reconnect is
   * never answered with the old stream's epoch. Null otherwise.
   */
  #settled: Promise<void> | null = null;
  /** Reconnects so far: an ensure loop whose number is no longer the last one stops. */
  #settling = 0;
  #closed = false;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }, epoch: string, o: JetStreamHistoryOptions, frameOf: FrameOf, onFrame: OnFrame) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = nc.jetstream();
    this.#config = config;
    this.#prefix = o.prefix;
    this.#history = o.history;
    this.#frameOf = frameOf;
    this.#onFrame = onFrame;
    this.#connected = o.connected ?? (() => true);
    this.#epoch = epoch;
  }

  /**
   * Create or update the stream (idempotent: every process of every gateway does it at start),
   * and learn its epoch. Errors: rejects with a message naming the stream when JetStream is not
   * enabled on the server, or the options are invalid.
   */
  static async open(nc: NatsConnection, o: JetStreamHistoryOptions, frameOf: FrameOf, onFrame: OnFrame): Promise<JetStreamHistory> {
    const name = o.stream ?? 'C1M_HISTORY';
    if (!STREAM_NAME.test(name)) throw new Error(`the history stream's name must be 1 to 64 of [A-Za-z0-9_-], not ${JSON.stringify(name)}`);
    if (!Number.isSafeInteger(o.history) || o.history < 1) throw new Error('history in JetStream needs history >= 1');
    if (o.streamBytes !== undefined && !(Number.isSafeInteger(o.streamBytes) && o.streamBytes >= 1024)) throw new Error('the history stream\'s byte bound must be at least 1024');
    if (!o.prefix.endsWith('.')) throw new Error(`history in JetStream needs a NATS prefix ending with a dot (its stream captures <prefix>>), not ${JSON.stringify(o.prefix)}`);
    const config = {
      name,
      subjects: [`${o.prefix}>`],
      max_msgs_per_subject: o.history,
      max_bytes: o.streamBytes ?? 256 * 1024 * 1024,
      discard: DiscardPolicy.Old,
      storage: o.storage === 'file' ? StorageType.File : StorageType.Memory,
      allow_direct: true,
      num_replicas: 1,
    };
    let jsm: JetStreamManager;
    try {
      jsm = await nc.jetstreamManager();
    } catch (err) {
      throw new Error(`history in JetStream: the NATS server has no JetStream (start it with -js): ${(err as Error).message}`);
    }
    const epoch = await JetStreamHistory.#ensure(jsm, config);
    return new JetStreamHistory(nc, jsm, config, epoch, o, frameOf, onFrame);
  }

  static async #ensure(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<string> {
    let created: string;
    try {
      created = (await jsm.streams.add(config)).created;
    } catch (err) {
      // Another process made it with other limits (another --history): ours win, as at any start.
      if ((err as { api_error?: { err_code?: number } }).api_error?.err_code !== 10058) {
        throw new Error(`history stream ${config.name}: ${(err as Error).message}`);
      }
      created = (await jsm.streams.update(config.name, config)).created;
    }
    // Two gateways starting together: the one whose add meets the stream while the other's
    // creates it can be answered with the zero time (0001-01-01), which is no epoch. Ask again.
    for (let i = 0; created.startsWith('0001-') && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 20));
      created = (await jsm.streams.info(config.name)).created;
    }
    if (created.startsWith('0001-')) throw new Error(`history stream ${config.name}: the server gives no creation time`);
    return `${config.name}-${created.replace(/\D/g, '')}`;
  }

  /** The current stream's epoch. */
  get epoch(): string {
    return this.#epoch;
  }

  /** Feeds with a consumer running (the metric `c1m_gateway_nats_subscriptions`). */
  get consumers(): number {
    let n = 0;
    for (const f of this.#feeds.values()) if (f.consumer !== null) n++;
    return n;
  }

  /** The highest seq delivered here for `topic` (its position for an ack), or -1 when the feed is not started. */
  position(topic: string): number {
    return this.#feeds.get(topic)?.last ?? -1;
  }

  /** Hold `topic`'s feed, starting it if needed; the start's failure is retried at the next reconnect. */
  hold(topic: string): void {
    void this.acquire(topic).catch(() => {});
  }

  /**
   * Hold `topic`'s feed and wait until it runs. Errors: rejects (and releases) when JetStream
   * cannot be reached; the caller answers `unavailable`.
   */
  async acquire(topic: string): Promise<void> {
    let f = this.#feeds.get(topic);
    if (f === undefined) {
      f = { refs: 0, gen: 0, ready: null, last: -1, ring: [], floor: -1, cseq: 0, sub: null, consumer: null };
      this.#feeds.set(topic, f);
    }
    f.refs++;
    if (f.ready === null) this.#start(topic, f);
    try {
      await f.ready;
    } catch (err) {
      this.release(topic);
      throw err;
    }
  }

  /**
   * `acquire` every one of `topics` (distinct). Errors: rejects with the first failure, having
   * released those it held: on success the caller releases all of them.
   */
  async acquireAll(topics: readonly string[]): Promise<void> {
    // A feed to start while NATS is down would wait for JetStream's request timeout: refuse now.
    if (!this.#connected() && topics.some((t) => (this.#feeds.get(t)?.ready ?? null) === null)) throw new Error('NATS is not connected');
    const held: string[] = [];
    const r = await Promise.allSettled(topics.map((t) => this.acquire(t).then(() => held.push(t))));
    const failed = r.find((x) => x.status === 'rejected');
    if (failed === undefined) return;
    for (const t of held) this.release(t);
    throw failed.reason;
  }

  /** End one hold of `topic`; after the last its consumer is deleted. */
  release(topic: string): void {
    const f = this.#feeds.get(topic);
    if (f === undefined || --f.refs > 0) return;
    this.#feeds.delete(topic);
    this.#stop(f);
  }

  /**
   * Publish to the stream (JetStream's ack: the stream has it). Returns its seq; this process's
   * own feed delivers it whenever the consumer pushes it (not awaited: nothing the HTTP answer
   * says depends on it). Errors: rejects when NATS or the stream does not answer in `timeoutMs`.
   */
  async publish(topic: string, data: Uint8Array, contentType: string | undefined, publishedAt: number, timeoutMs = 2000): Promise<{ seq: number; epoch: string }> {
    const h = natsHeaders();
    if (contentType !== undefined) h.set('Content-Type', contentType);
    h.set('C1m-Published-At', String(publishedAt));
    await this.#ready(timeoutMs);
    const epoch = this.#epoch;
    const { seq } = await this.#js.publish(this.#prefix + topic, data, { headers: h, timeout: timeoutMs });
    return { seq, epoch };
  }

  /**
   * Read `topic`'s messages after `since` from the stream (at most `2 * history`: anything
   * newer the feed's ring gives). Errors: rejects when JetStream cannot be reached.
   */
  async fetch(topic: string, since: number, epoch: string): Promise<Fetched> {
    await this.#ready(2000);
    const e = this.#epoch;
    const fail: Fetched = { complete: false, frames: [], after: since, covered: since, epoch: e };
    if (epoch !== e) return fail;
    const subject = this.#prefix + topic;
    // The stream's last message before the reads: they then reach at least that far.
    const before = (await this.#jsm.streams.info(this.#config.name)).state.last_seq;
    if (since > before) return fail; // a position this stream never reached
    const frames: SeqFrame[] = [];
    let after = since, exhausted = false;
    for (let n = 0; n < 2 * this.#history; n++) {
      const m = await this.#direct(subject, after + 1);
      if (m === null) {
        exhausted = true;
        break;
      }
      after = m.seq;
      const frame = this.#frameOf(topic, m.seq, m.data, m.header.get('Content-Type') || undefined);
      if (frame !== null) frames.push({ seq: m.seq, frame });
    }
    // What the stream holds after the reads: a message dropped while they ran counts.
    const info = await this.#jsm.streams.info(this.#config.name, { subjects_filter: subject });
    const st = info.state;
    // The per-subject limit in force (another gateway may have started with another --history).
    const limit = Math.min(this.#history, info.config.max_msgs_per_subject > 0 ? info.config.max_msgs_per_subject : Infinity);
    let complete = st.first_seq <= since + 1 && (st.subjects?.[subject] ?? 0) < limit;
    if (!complete) {
      const first = await this.#direct(subject, 1);
      complete = first !== null && first.seq <= since;
    }
    // Read to the end: no message of the topic lies between its last one and the stream's last.
    const covered = exhausted ? Math.max(after, before) : after;
    return { complete: complete && this.#epoch === e, frames, after, covered, epoch: e };
  }

  /**
   * Join a fetch to what the feed delivered since (call with the topic held, right before
   * subscribing the client): the ack's seq, whether recovery is complete, and the frames to
   * send in order. Frames above the feed's position are left to the live stream.
   */
  join(topic: string, r: Fetched): { seq: number; recovered: boolean; frames: Frame[] } {
    const f = this.#feeds.get(topic)!;
    const seq = f.last;
    const frames = r.frames.filter((x) => x.seq <= seq).map((x) => x.frame);
    let recovered = r.complete && r.epoch === this.#epoch;
    if (seq > r.after) {
      if (f.floor > r.covered) recovered = false; // the ring no longer reaches back to the fetch
      else for (const x of f.ring) if (x.seq > r.after && x.seq <= seq) frames.push(x.frame);
    }
    return { seq, recovered, frames: recovered ? frames : [] };
  }

  /**
   * NATS is back: make sure the stream exists (a memory stream does not survive a NATS restart:
   * then its epoch changes and every feed starts again from the new stream's first message),
   * and restart every held feed where it stopped.
   */
  reconnected(): Promise<void> {
    const settling = ++this.#settling;
    const settled = this.#resettle(settling).finally(() => {
      if (settling === this.#settling) this.#settled = null;
    });
    this.#settled = settled;
    return settled;
  }

  /** Wait for the stream after a reconnect, at most `ms`. Errors: rejects when it is not back. */
  async #ready(ms: number): Promise<void> {
    if (!this.#connected()) throw new Error('NATS is not connected');
    const settled = this.#settled;
    if (settled === null) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the history stream is not back after the reconnect yet')), ms);
    });
    try {
      await Promise.race([settled, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #resettle(settling: number): Promise<void> {
    let epoch: string;
    // Right after a restart JetStream may not answer yet: ask again (there may be no next
    // reconnect to do it) until it does, a newer reconnect takes over, or this is closed.
    for (let wait = 100; ; wait = Math.min(wait * 2, 2000)) {
      if (this.#closed || this.#nc.isClosed() || settling !== this.#settling) return;
      try {
        epoch = await JetStreamHistory.#ensure(this.#jsm, this.#config);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
    if (epoch !== this.#epoch) {
      this.#epoch = epoch;
      for (const f of this.#feeds.values()) {
        f.last = 0;
        f.ring = [];
        f.floor = 0;
      }
    }
    for (const [topic, f] of this.#feeds) {
      this.#stop(f);
      this.#start(topic, f);
    }
  }

  /** Stop every feed (shutdown); their consumers are deleted. */
  close(): void {
    this.#closed = true;
    for (const f of this.#feeds.values()) this.#stop(f);
    this.#feeds.clear();
  }

  async #direct(subject: string, seq: number): Promise<{ seq: number; data: Uint8Array; header: { get(k: string): string } } | null> {
    try {
      const direct = (this.#jsm as unknown as { direct: { getMessage: DirectGet } }).direct;
      return await direct.getMessage(this.#config.name, { seq, next_by_subj: subject });
    } catch (err) {
      if ((err as { code?: string }).code === '404') return null;
      throw err;
    }
  }

  #start(topic: string, f: Feed): void {
    const gen = ++f.gen;
    const ready = (async () => {
      const inbox = createInbox();
      // Queued, then run after the read (inbound.ts): a publish's ack is never behind its delivery.
      const sub = this.#nc.subscribe(inbox, { callback: (err, m) => err === null && deliverLater(() => this.#push(topic, f, gen, m)) });
      f.sub = sub;
      f.cseq = 0;
      const from = f.last >= 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: f.last + 1 } : { deliver_policy: DeliverPolicy.New };
      let info;
      try {
        info = await this.#jsm.consumers.add(this.#config.name, {
          ...from,
          deliver_subject: inbox,
          filter_subject: this.#prefix + topic,
          ack_policy: AckPolicy.None,
          inactive_threshold: nanos(10_000), // a process gone: its consumers go after 10 s
          mem_storage: true,
        });
      } catch (err) {
        sub.unsubscribe();
        if (f.gen === gen) {
          f.sub = null;
          f.ready = null;
        }
        throw err;
      }
      if (f.gen !== gen) {
        // Stopped (or restarted) meanwhile: this consumer is nobody's.
        sub.unsubscribe();
        void this.#jsm.consumers.delete(this.#config.name, info.name).catch(() => {});
        return;
      }
      f.consumer = info.name;
      if (f.last < 0) f.last = f.floor = info.delivered.stream_seq; // DeliverNew: the stream's last seq
    })();
    ready.catch(() => {});
    f.ready = ready;
  }

  #stop(f: Feed): void {
    f.gen++;
    f.sub?.unsubscribe();
    f.sub = null;
    if (f.consumer !== null && !this.#nc.isClosed()) void this.#jsm.consumers.delete(this.#config.name, f.consumer).catch(() => {});
    f.consumer = null;
    f.ready = null;
  }

  #push(topic: string, f: Feed, gen: number, m: Msg): void {
    if (f.gen !== gen) return;
    const info = pushInfo(m.reply);
    if (info === null) return;
    if (info.cseq !== f.cseq + 1 && f.consumer !== null) {
      // A delivery lost on the way (the server dropped it for a slow consumer): start again where we are.
      this.#stop(f);
      this.#start(topic, f);
      return;
    }
    f.cseq = info.cseq;
    if (info.seq <= f.last) return;
    f.last = info.seq;
    const h = m.headers;
    const frame = this.#frameOf(topic, info.seq, m.data, h?.get('Content-Type') || undefined);
    if (frame !== null) {
      f.ring.push({ seq: info.seq, frame });
      if (f.ring.length > this.#history) f.floor = f.ring.shift()!.seq;
      const at = h?.get('C1m-Published-At');
      this.#onFrame(topic, info.seq, frame, at ? Number(at) : undefined);
    }
  }
}
