/**
 * The sending side of the echo-like scenarios (`echo` over TCP bytes, `ws-echo` over WebSocket
 * messages): when messages leave and how their round trips are timed. The scenario supplies
 * how `n` messages go out on a connection (`write`) and tells the loop how many whole replies
 * arrived (`replies`); framing and checking the replies stay with it.
 *
 * Closed loop (`depth`): `depth` in flight, one sent per one answered. Open loop (`--rate`):
 * messages leave on a fixed schedule whatever the replies do, so a server stall delays every
 * message sent during it instead of slowing the sender down (coordinated omission).
 *
 * Invariant: a connection's send times (`EchoState.times`) hold one entry per message in
 * flight, oldest first; replies come back in order (one TCP stream), so each pops the oldest.
 */
import { performance } from 'node:perf_hooks';
import { answer, SendTimes } from './send-times.js';
import type { Peer, ScenarioContext } from './types.js';

/** Rate mode: messages outstanding on one connection past which sends are skipped. */
const MAX_OUTSTANDING = 4096;

/** Per-connection state of an echo-like scenario. */
export interface EchoState {
  /** Byte framing (`echo`): bytes of the current, incomplete message received so far. */
  partial: number;
  /** Send times of the messages in flight; null until traffic starts on this connection. */
  times: SendTimes | null;
  /** Rate mode: when message 0 was due, and how many were due and handled so far. */
  t0: number;
  sent: number;
}

/** The loop of one worker (see the file comment). */
export interface EchoLoop {
  /** State of a connection that just opened. */
  init(): EchoState;
  /** Start traffic on `p`, which became ready after `start` (no-op unless sending). */
  join(p: Peer<EchoState>): void;
  /**
   * `done` whole replies arrived on `p`: time them against the oldest send times, count them,
   * and (closed loop) send as many again. Replies with nothing outstanding are unexpected.
   */
  replies(p: Peer<EchoState>, done: number): void;
  /** Start traffic on `peers` (idempotent). */
  start(peers: Iterable<Peer<EchoState>>): void;
  /** Stop sending (idempotent); replies still count. */
  stop(): void;
}

/**
 * `messages` x `size` bytes of the payload pattern: byte x is f(x mod size). Connection i sends
 * the rotation that starts at offset i mod size, so crossed streams show up under `--verify`.
 */
export function echoPattern(size: number, messages: number): Buffer {
  const pattern = Buffer.allocUnsafe(size * messages);
  for (let i = 0; i < pattern.length; i++) pattern[i] = ((i % size) * 131 + 7) & 0xff;
  return pattern;
}

/** The echo loop of one worker; `write(p, n)` sends `n` messages on `p`. */
export function echoLoop(ctx: ScenarioContext, write: (p: Peer<EchoState>, n: number) => void): EchoLoop {
  const { meter } = ctx;
  const { depth, rate } = ctx.cfg;
  const record = (ns: number, count: number): void => meter.record(ns, count);
  let sending = false;
  let ticker: NodeJS.Timeout | undefined;

  const send = (p: Peer<EchoState>, n: number, stamp: number): void => {
    for (let i = 0; i < n; i++) p.state.times!.push(stamp);
    write(p, n);
  };

  // Open loop: a hashed timing wheel of 1 ms slots covering one period. Each connection sits
  // in the slot of its next due message and is visited once the wheel reaches it, sends what
  // is due, and moves to the slot of its next message. Work is N x rate visits per second,
  // never a scan of every connection per tick. Node timers fire up to ~2 ms late, so latency
  // counts from the actual send (else the sender's own lateness would be charged to the
  // server) and that lateness is recorded on its own (`send lag`): a large lag means this
  // process did not keep up and the latency figures flatter the server.
  const period = rate > 0 ? 1000 / rate : 0;
  const slots = Math.ceil(period) + 1;
  const wheel: Peer<EchoState>[][] = rate > 0 ? Array.from({ length: slots }, () => []) : [];
  /** Slot `t % slots` holds the connections to visit at wheelStart + t ms. */
  let wheelStart = 0, ticks = 0;

  const place = (p: Peer<EchoState>, earliest: number): void => {
    const t = Math.max(earliest, Math.ceil(p.state.t0 + p.state.sent * period - wheelStart));
    wheel[t % slots]!.push(p);
  };

  const visit = (t: number, now: number): void => {
    const slot = wheel[t % slots]!;
    wheel[t % slots] = [];
    for (const p of slot) {
      if (!p.open) continue;
      const s = p.state;
      const due = Math.floor((now - s.t0) / period) + 1 - s.sent;
      if (due > 0) {
        meter.recordLag(Math.max(1, Math.round((now - (s.t0 + s.sent * period)) * 1e6)));
        const n = Math.min(due, Math.max(0, MAX_OUTSTANDING - s.times!.length));
        send(p, n, now);
        meter.sendSkipped += due - n;
        s.sent += due;
      }
      place(p, t + 1);
    }
  };

  const tick = (): void => {
    const now = performance.now();
    for (; sending && wheelStart + ticks <= now; ticks++) visit(ticks, now);
  };

  const begin = (p: Peer<EchoState>): void => {
    p.state.times = new SendTimes(rate > 0 ? 16 : depth);
    if (rate > 0) {
      // A random phase spreads the connections over the period.
      p.state.t0 = Math.max(performance.now(), wheelStart) + Math.random() * period;
      p.state.sent = 0;
      place(p, ticks);
    } else {
      send(p, depth, performance.now());
    }
  };

  return {
    init: () => ({ partial: 0, times: null, t0: 0, sent: 0 }),
    join(p) {
      if (sending) begin(p);
    },
    replies(p, done) {
      const times = p.state.times;
      if (times === null) {
        meter.unexpectedMsgs += done;
        return;
      }
      if (done === 0) return;
      const now = performance.now();
      const answered = answer(times, done, now, record);
      meter.unexpectedMsgs += done - answered;
      meter.msgsTotal += answered;
      if (meter.measuring) meter.msgs += answered;
      if (sending && rate === 0 && answered > 0) send(p, answered, now);
    },
    start(peers) {
      if (sending) return;
      sending = true;
      wheelStart = performance.now() + 1;
      for (const p of peers) begin(p);
      if (rate > 0) ticker = setInterval(tick, 1);
    },
    stop() {
      sending = false;
      if (ticker) clearInterval(ticker);
    },
  };
}
