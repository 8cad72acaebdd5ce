/**
 * `echo`: fixed-size messages against an echo server; the payload of connection i is a
 * rotation of one pattern (byte x of a message is f((x + i) mod size)), so crossed streams
 * show up under `--verify`. Closed loop: `depth` in flight, one sent per one received. Open
 * loop (`--rate`): messages leave on a fixed schedule whatever the replies do, so a server
 * stall delays every message sent during it instead of slowing the sender down (coordinated
 * omission).
 *
 * Hot path: one `data` per batch per connection: count whole messages by bytes modulo
 * `size`, pop their send times from the connection's FIFO, record, send as many again.
 */
import { performance } from 'node:perf_hooks';
import { answer, SendTimes } from './send-times.js';
import type { Peer, Scenario, ScenarioContext, ScenarioSpec } from './types.js';

/** Rate mode: messages outstanding on one connection past which sends are skipped. */
const MAX_OUTSTANDING = 4096;

interface EchoState {
  /** Bytes of the current (incomplete) message received so far. */
  partial: number;
  /** Send times of the messages in flight; null until traffic starts on this connection. */
  times: SendTimes | null;
  /** Rate mode: when message 0 was due, and how many were due and handled so far. */
  t0: number;
  sent: number;
}

function create(ctx: ScenarioContext): Scenario<EchoState> {
  const { meter } = ctx;
  const { size, depth, rate, verify } = ctx.cfg;
  const perWrite = Math.max(depth, Math.min(64, Math.ceil(65536 / size)));
  const pattern = Buffer.allocUnsafe(size * (perWrite + 2));
  for (let i = 0; i < pattern.length; i++) pattern[i] = ((i % size) * 131 + 7) & 0xff;
  const offset = (p: Peer<EchoState>): number => p.index % size;
  const record = (ns: number, count: number): void => meter.record(ns, count);
  let sending = false;
  let ticker: NodeJS.Timeout | undefined;

  const write = (p: Peer<EchoState>, n: number): void => {
    const o = offset(p);
    while (n > 0) {
      const k = Math.min(n, perWrite);
      p.conn.write(pattern.subarray(o, o + k * size));
      n -= k;
    }
  };

  const send = (p: Peer<EchoState>, n: number, stamp: number): void => {
    for (let i = 0; i < n; i++) p.state.times!.push(stamp);
    write(p, n);
  };

  const check = (p: Peer<EchoState>, data: Buffer): void => {
    const o = offset(p), piece = size * perWrite;
    for (let off = 0; off < data.length; ) {
      const start = o + ((p.state.partial + off) % size);
      const n = Math.min(data.length - off, piece);
      if (!data.subarray(off, off + n).equals(pattern.subarray(start, start + n))) {
        meter.verifyErrors++;
        return;
      }
      off += n;
    }
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
    open(p, trafficOn) {
      if (trafficOn && sending) begin(p);
    },
    data(p, data) {
      const s = p.state;
      if (!s.times) {
        meter.unexpectedMsgs += Math.floor((s.partial + data.length) / size);
        s.partial = (s.partial + data.length) % size;
        return;
      }
      if (verify) check(p, data);
      const total = s.partial + data.length;
      const done = Math.floor(total / size);
      s.partial = total % size;
      if (done === 0) return;
      const now = performance.now();
      const answered = answer(s.times, done, now, record);
      meter.unexpectedMsgs += done - answered;
      meter.msgsTotal += answered;
      if (meter.measuring) meter.msgs += answered;
      if (sending && rate === 0 && answered > 0) send(p, answered, now);
    },
    startTraffic(peers) {
      if (sending) return;
      sending = true;
      wheelStart = performance.now() + 1;
      for (const p of peers) begin(p);
      if (rate > 0) ticker = setInterval(tick, 1);
    },
    stopTraffic() {
      sending = false;
      if (ticker) clearInterval(ticker);
    },
  };
}

/** The `echo` scenario (see the file comment). */
export const echo: ScenarioSpec = {
  name: 'echo',
  summary: 'fixed-size messages against an echo server, closed loop at --depth or open loop at --rate',
  options: ['size', 'depth', 'rate', 'verify', 'warmup'],
  unit: 'msgs',
  create,
};
