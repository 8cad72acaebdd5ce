/**
 * Topic streams: the sequence numbers of a topic's messages in this process, and, with
 * `history > 0`, the last messages themselves, so that a client that reconnects with the
 * position it had reached gets what it missed (Centrifugo's "recovery").
 *
 * A stream is `(epoch, seq)`: `seq` counts the topic's messages from 1; `epoch` names this
 * stream of this process, so a position taken from another process, or from a stream that was
 * dropped and started again, is never mistaken for one of this stream (the client then gets
 * `recovered: false`). Epochs are `<12 hex digits of this process>-<hex counter>`.
 *
 * Memory: at most `history` messages and `historyBytes` bytes of frames per topic, and at
 * most `maxStreams` streams; a stream with no subscriber is dropped `ttl` ms after it was last
 * used (a sweep, one timer per process), and at once when there is no history to keep.
 *
 * What is stored is the delivery frame (`{"op":"msg",...}`, or a binary `msg`), so recovery
 * sends the very frames live subscribers got.
 */
import { randomBytes } from 'node:crypto';
import type { Frame } from './protocol.js';

export interface HistoryOptions {
  /** Messages kept per topic. 0 (default): none, streams only count. */
  history?: number;
  /** Bytes of frames kept per topic. Default 1 MiB. */
  historyBytes?: number;
  /** How long a stream without subscribers is kept, in ms. Default 300000. */
  ttl?: number;
  /** Most streams at once; past it the least recently used stream without subscribers goes. Default 100000. */
  maxStreams?: number;
}

export interface Stream {
  readonly epoch: string;
  /** The last message's seq (0: none yet). */
  seq: number;
  /** Kept frames, oldest first, with their seqs (`frames[i]` has seq `first + i`). */
  frames: Frame[];
  first: number;
  bytes: number;
  /** It has local subscribers (set by the caller from `onTopicInterest`). */
  active: boolean;
  /** When it was last published to or left (ms). */
  used: number;
}

/** What a position (`since`) recovers. */
export type Recovery = { recovered: true; frames: Frame[] } | { recovered: false; frames: [] };

const PROCESS_EPOCH = randomBytes(6).toString('hex');

export class Streams {
  readonly #streams = new Map<string, Stream>();
  readonly #history: number;
  readonly #maxBytes: number;
  readonly #ttl: number;
  readonly #max: number;
  readonly #onDrop: (topic: string) => void;
  #counter = 0;
  #timer: NodeJS.Timeout | null = null;

  /** `onDrop(topic)` runs when a stream is dropped (its broker interest may end). */
  constructor(o: HistoryOptions, onDrop: (topic: string) => void) {
    this.#history = o.history ?? 0;
    this.#maxBytes = o.historyBytes ?? 1024 * 1024;
    this.#ttl = o.ttl ?? 300_000;
    this.#max = o.maxStreams ?? 100_000;
    this.#onDrop = onDrop;
  }

  get size(): number {
    return this.#streams.size;
  }

  get keepsHistory(): boolean {
    return this.#history > 0;
  }

  get(topic: string): Stream | undefined {
    return this.#streams.get(topic);
  }

  /** The topic's stream, made if needed. Returns undefined when the stream limit is reached. */
  open(topic: string): Stream | undefined {
    let s = this.#streams.get(topic);
    if (s !== undefined) return s;
    if (this.#streams.size >= this.#max && !this.#evictOne()) return undefined;
    s = { epoch: `${PROCESS_EPOCH}-${(++this.#counter).toString(16)}`, seq: 0, frames: [], first: 1, bytes: 0, active: false, used: Date.now() };
    this.#streams.set(topic, s);
    if (this.#history > 0 && this.#timer === null) {
      this.#timer = setInterval(() => this.sweep(Date.now()), Math.max(1000, Math.min(60_000, this.#ttl / 4))).unref();
    }
    return s;
  }

  /** Number the next message of `s`; keep its frame when history is on. Returns the seq. */
  append(s: Stream, frameOf: (seq: number) => Frame): Frame {
    const seq = ++s.seq;
    const frame = frameOf(seq);
    s.used = Date.now();
    if (this.#history > 0) {
      s.frames.push(frame);
      s.bytes += frame.length;
      while (s.frames.length > this.#history || (s.bytes > this.#maxBytes && s.frames.length > 0)) {
        s.bytes -= s.frames.shift()!.length;
        s.first++;
      }
    }
    // Nothing kept (no history, or a frame over historyBytes): the next seq is the first one
    // a recovery could give.
    if (s.frames.length === 0) s.first = seq + 1;
    return frame;
  }

  /** The frames after `since` in epoch `epoch`, if this stream still has all of them. */
  recover(s: Stream, since: number, epoch: string): Recovery {
    if (epoch !== s.epoch || since > s.seq || since < 0) return { recovered: false, frames: [] };
    if (since === s.seq) return { recovered: true, frames: [] };
    if (since + 1 < s.first) return { recovered: false, frames: [] };
    return { recovered: true, frames: s.frames.slice(since + 1 - s.first) };
  }

  /** The last subscriber left `s`: without history the stream goes with it. */
  left(topic: string, s: Stream): void {
    s.active = false;
    s.used = Date.now();
    if (!s.active && this.#history === 0) this.#drop(topic);
  }

  /** Drop streams without subscribers unused for `ttl` ms. */
  sweep(now: number): void {
    for (const [topic, s] of this.#streams) if (!s.active && now - s.used >= this.#ttl) this.#drop(topic);
  }

  /** Stop the sweep timer and forget every stream (shutdown). */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#streams.clear();
  }

  #evictOne(): boolean {
    let oldest: [string, Stream] | undefined;
    for (const e of this.#streams) if (!e[1].active && (oldest === undefined || e[1].used < oldest[1].used)) oldest = e;
    if (oldest === undefined) return false;
    this.#drop(oldest[0]);
    return true;
  }

  #drop(topic: string): void {
    this.#streams.delete(topic);
    this.#onDrop(topic);
  }
}
