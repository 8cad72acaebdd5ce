/**
 * One `c1m bench` worker process (forked by `c1m bench`): opens its share of the connections
 * on one native client reactor, runs the scenario on them, and reports to the parent over IPC.
 *
 * Model: the parent drives the phases, the worker only reacts:
 *   config -> (ready) -> go: connect phase, at most `concurrency` connects in flight, transient
 *   failures retried with exponential backoff -> (connected) once every connection settled ->
 *   end-connect: pending connects abandoned -> traffic: the scenario starts sending ->
 *   measure: the measured window opens -> stop: (result), then every connection closes and the
 *   process exits. Progress (counters plus an interval latency histogram) goes up 4 times a second.
 *
 * Invariants: every connection index in [first, first + count) ends in exactly one of
 * `connected` or `failed`; a pending connect holds one in-flight slot until it opens or fails;
 * latency is recorded only for messages whose send time this worker stamped.
 *
 * Hot path (echo): one `onData` per batch per connection: count whole messages by bytes
 * modulo `size`, pop their send times from the connection's FIFO, record, send as many again.
 */
import { performance } from 'node:perf_hooks';
import { createReactor, type CloseReason, type Connection, type Reactor } from '../index.js';
import { encodeHistogram, latencyHistogram } from './bench-stats.js';

/** Scenario names a worker can run. */
export type WorkerScenario = 'hold' | 'echo';

/** What the parent tells a worker to do. Global connection indexes pick source address and payload. */
export interface WorkerConfig {
  scenario: WorkerScenario;
  /** Worker number, 0-based. */
  worker: number;
  host: string;
  port: number;
  /** This worker's connections are the global indexes [first, first + count). */
  first: number;
  count: number;
  /** Source addresses: `sources[index % sources.length]`; empty = let the kernel choose. */
  sources: string[];
  /** Connects in flight at most. */
  concurrency: number;
  /** Retries of a transient connect failure (EADDRNOTAVAIL, EAGAIN, ETIMEDOUT, ECONNREFUSED). */
  retries: number;
  /** Echo: message size in bytes. */
  size: number;
  /** Echo: messages in flight per connection (when `rate` is 0). */
  depth: number;
  /** Echo: messages per second per connection; 0 = closed loop at `depth`. */
  rate: number;
  /** Echo: compare every echoed byte with what was sent. */
  verify: boolean;
}

/** Parent -> worker. */
export type ParentMessage =
  | { type: 'config'; config: WorkerConfig }
  | { type: 'go' }
  | { type: 'end-connect' }
  | { type: 'traffic' }
  | { type: 'measure' }
  | { type: 'stop' };

/** Cumulative counters of one worker. */
export interface WorkerCounters {
  /** Distinct connections attempted (retries not counted). */
  started: number;
  connected: number;
  /** Connections that never opened (after retries). */
  failed: number;
  /** Connects started or waiting for a retry. */
  pending: number;
  /** Connections open now. */
  open: number;
  /** Connect attempts repeated after a transient failure. */
  retries: number;
  /** Echoed messages received, every phase. */
  msgsTotal: number;
}

/** Worker -> parent. */
export type WorkerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'progress'; counters: WorkerCounters; hist: string | null }
  | { type: 'connected'; counters: WorkerCounters }
  | { type: 'result'; result: WorkerResult }
  | { type: 'fatal'; message: string };

/** A worker's final report. */
export interface WorkerResult extends WorkerCounters {
  /** Final connect failures by code (`ECONNREFUSED`, `CONNECT_PHASE_TIMEOUT`, ...). */
  errors: Record<string, number>;
  /** Established connections that closed before the end, by code or kind (`end`, `ECONNRESET`). */
  closeErrors: Record<string, number>;
  /** Messages received inside the measured window. */
  msgs: number;
  /** Length of this worker's measured window, seconds. */
  windowS: number;
  /** Received chunks that differed from what was sent (null without `verify`). */
  verifyErrors: number | null;
  /** Whole messages received with no send outstanding (the server sent more than it got). */
  unexpectedMsgs: number;
  /** Rate mode: messages not sent because a connection had too many outstanding. */
  sendSkipped: number;
  /** Latency histogram of the measured window (ns, encoded), null when empty. */
  hist: string | null;
  /** Rate mode: how late sends left after they were due (ns, encoded), null when empty. */
  lagHist: string | null;
  cpuUserS: number;
  cpuSysS: number;
  rssKb: number;
}

/** Errors worth another connect attempt. */
const TRANSIENT = new Set(['EADDRNOTAVAIL', 'EAGAIN', 'ETIMEDOUT', 'ECONNREFUSED']);
const BACKOFF_MS = 100;
/** Progress reports: often enough that the parent's once-a-second line is never a period behind. */
const PROGRESS_MS = 250;
/** Rate mode: messages outstanding on one connection past which sends are skipped. */
const MAX_OUTSTANDING = 4096;

/** Send times (performance.now() ms) of the messages in flight on one connection, oldest first. */
class SendTimes {
  #buf: Float64Array;
  #head = 0;
  length = 0;
  constructor(capacity: number) {
    this.#buf = new Float64Array(Math.max(1, capacity));
  }
  push(t: number): void {
    if (this.length === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.length) % this.#buf.length] = t;
    this.length++;
  }
  shift(): number {
    const t = this.#buf[this.#head]!;
    this.#head = (this.#head + 1) % this.#buf.length;
    this.length--;
    return t;
  }
  #grow(): void {
    const next = new Float64Array(this.#buf.length * 2);
    for (let i = 0; i < this.length; i++) next[i] = this.#buf[(this.#head + i) % this.#buf.length]!;
    this.#buf = next;
    this.#head = 0;
  }
}

/** Per open connection. */
interface ConnState {
  conn: Connection;
  /** Global connection index. */
  index: number;
  /** Bytes of the current (incomplete) message received so far. */
  partial: number;
  times: SendTimes | null;
  /** Rate mode: when message 0 was due, and how many were due and handled so far. */
  t0: number;
  sent: number;
}

/** What a scenario does with connections; the worker owns connecting and counting. */
interface Scenario {
  /** A connection opened; `trafficOn` says whether traffic has started. */
  open(s: ConnState, trafficOn: boolean): void;
  data(s: ConnState, data: Buffer): void;
  /** Start sending on every open connection. */
  startTraffic(open: Iterable<ConnState>): void;
  /** Stop sending (stop phase). */
  stopTraffic(): void;
}

/** Measurement shared by the worker and its scenario. */
interface Meter {
  /** Record `count` round trips of `ns` nanoseconds each. */
  record(ns: number, count: number): void;
  /** Rate mode: record how late a send left after it was due, in ns. */
  recordLag(ns: number): void;
  msgsTotal: number;
  msgs: number;
  measuring: boolean;
  verifyErrors: number;
  unexpectedMsgs: number;
  sendSkipped: number;
}

const hold = (): Scenario => ({
  open() {},
  data() {},
  startTraffic() {},
  stopTraffic() {},
});

/**
 * Echo: fixed-size messages; the payload of connection i is a rotation of one pattern
 * (byte x of a message is f((x + i) mod size)), so crossed streams show up under `verify`.
 * Closed loop: `depth` in flight, one sent per one received. Open loop (`rate`): messages
 * leave on a fixed schedule whatever the replies do, so a server stall delays every message
 * sent during it instead of slowing the sender down (coordinated omission).
 */
function echo(cfg: WorkerConfig, meter: Meter, states: Map<number, ConnState>): Scenario {
  const { size, depth, rate, verify } = cfg;
  const perWrite = Math.max(depth, Math.min(64, Math.ceil(65536 / size)));
  const pattern = Buffer.allocUnsafe(size * (perWrite + 2));
  for (let i = 0; i < pattern.length; i++) pattern[i] = ((i % size) * 131 + 7) & 0xff;
  const offset = (s: ConnState): number => s.index % size;
  let sending = false;
  let ticker: NodeJS.Timeout | undefined;

  const send = (s: ConnState, n: number, stamp: number): void => {
    const o = offset(s);
    for (let i = 0; i < n; i++) s.times!.push(stamp);
    while (n > 0) {
      const k = Math.min(n, perWrite);
      s.conn.write(pattern.subarray(o, o + k * size));
      n -= k;
    }
  };

  const check = (s: ConnState, data: Buffer): void => {
    const o = offset(s), piece = size * perWrite;
    for (let off = 0; off < data.length; ) {
      const start = o + ((s.partial + off) % size);
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
  const wheel: ConnState[][] = rate > 0 ? Array.from({ length: slots }, () => []) : [];
  /** Slot `t % slots` holds the connections to visit at wheelStart + t ms. */
  let wheelStart = 0, ticks = 0;

  const place = (s: ConnState, earliest: number): void => {
    const t = Math.max(earliest, Math.ceil(s.t0 + s.sent * period - wheelStart));
    wheel[t % slots]!.push(s);
  };

  const visit = (t: number, now: number): void => {
    const slot = wheel[t % slots]!;
    wheel[t % slots] = [];
    for (const s of slot) {
      if (!states.has(s.conn.id)) continue;
      const due = Math.floor((now - s.t0) / period) + 1 - s.sent;
      if (due > 0) {
        meter.recordLag(Math.max(1, Math.round((now - (s.t0 + s.sent * period)) * 1e6)));
        const n = Math.min(due, Math.max(0, MAX_OUTSTANDING - s.times!.length));
        for (let k = 0; k < n; k++) s.times!.push(now);
        const o = offset(s);
        for (let left = n; left > 0; ) {
          const k = Math.min(left, perWrite);
          s.conn.write(pattern.subarray(o, o + k * size));
          left -= k;
        }
        meter.sendSkipped += due - n;
        s.sent += due;
      }
      place(s, t + 1);
    }
  };

  const tick = (): void => {
    const now = performance.now();
    for (; sending && wheelStart + ticks <= now; ticks++) visit(ticks, now);
  };

  const begin = (s: ConnState): void => {
    s.times = new SendTimes(rate > 0 ? 16 : depth);
    if (rate > 0) {
      // A random phase spreads the connections over the period.
      s.t0 = Math.max(performance.now(), wheelStart) + Math.random() * period;
      s.sent = 0;
      place(s, ticks);
    } else {
      send(s, depth, performance.now());
    }
  };

  return {
    open(s, trafficOn) {
      if (trafficOn) begin(s);
    },
    data(s, data) {
      if (!s.times) {
        meter.unexpectedMsgs += Math.floor((s.partial + data.length) / size);
        s.partial = (s.partial + data.length) % size;
        return;
      }
      if (verify) check(s, data);
      const total = s.partial + data.length;
      let done = Math.floor(total / size);
      s.partial = total % size;
      if (done === 0) return;
      const now = performance.now();
      // Messages sent together share a send time: record each run of equal times once.
      let answered = 0, run = 0, runT = 0;
      while (done > 0 && s.times.length > 0) {
        const t = s.times.shift();
        if (run > 0 && t !== runT) {
          meter.record(Math.max(1, Math.round((now - runT) * 1e6)), run);
          run = 0;
        }
        runT = t;
        run++;
        answered++;
        done--;
      }
      if (run > 0) meter.record(Math.max(1, Math.round((now - runT) * 1e6)), run);
      meter.unexpectedMsgs += done;
      meter.msgsTotal += answered;
      if (meter.measuring) meter.msgs += answered;
      if (sending && rate === 0 && answered > 0) send(s, answered, now);
    },
    startTraffic(open) {
      sending = true;
      wheelStart = performance.now() + 1;
      for (const s of open) begin(s);
      if (rate > 0) ticker = setInterval(tick, 1);
    },
    stopTraffic() {
      sending = false;
      if (ticker) clearInterval(ticker);
    },
  };
}

function run(cfg: WorkerConfig, send: (m: WorkerMessage, cb?: () => void) => void): (m: ParentMessage) => void {
  const states = new Map<number, ConnState>();
  /** Connect in progress: connection id -> global index and attempt number. */
  const pending = new Map<number, { index: number; attempt: number }>();
  const retryTimers = new Set<NodeJS.Timeout>();
  const retryReady: { index: number; attempt: number }[] = [];
  const errors: Record<string, number> = {};
  const closeErrors: Record<string, number> = {};
  // Round trips go into `interval` only; every PROGRESS_MS (and at each phase edge) it is
  // rolled into `total` (while measuring) and into the next progress report. One record per
  // value keeps the hot path cheap; the edges keep the measured window exact.
  const total = latencyHistogram(), interval = latencyHistogram(), report = latencyHistogram(), lag = latencyHistogram();
  const meter: Meter = {
    record(ns, count) {
      interval.recordValueWithCount(ns, count);
    },
    recordLag(ns) {
      if (this.measuring) lag.recordValue(ns);
    },
    msgsTotal: 0, msgs: 0, measuring: false, verifyErrors: 0, unexpectedMsgs: 0, sendSkipped: 0,
  };
  let phase: 'idle' | 'connect' | 'connected' | 'stop' = 'idle';
  let trafficOn = false;
  let next = 0, inflight = 0, started = 0, connected = 0, failed = 0, retries = 0;
  let connectReported = false, pumpQueued = false;
  let windowStart = 0, windowEnd = 0;
  let progressTimer: NodeJS.Timeout | undefined;

  const scenario = cfg.scenario === 'echo' ? echo(cfg, meter, states) : hold();

  const tally = (into: Record<string, number>, code: string): void => {
    into[code] = (into[code] ?? 0) + 1;
  };
  const counters = (): WorkerCounters => ({
    started, connected, failed, pending: inflight + retryTimers.size + retryReady.length, open: states.size, retries, msgsTotal: meter.msgsTotal,
  });
  const fail = (code: string): void => {
    failed++;
    tally(errors, code);
  };

  const reactor: Reactor = createReactor(
    {
      onOpen(conn) {
        const p = pending.get(conn.id);
        if (!p) return;
        pending.delete(conn.id);
        inflight--;
        connected++;
        const s: ConnState = { conn, index: p.index, partial: 0, times: null, t0: 0, sent: 0 };
        states.set(conn.id, s);
        scenario.open(s, trafficOn);
        schedulePump();
      },
      onData(conn, data) {
        const s = states.get(conn.id);
        if (s) scenario.data(s, data);
      },
      onClose(conn, reason: CloseReason) {
        const p = pending.get(conn.id);
        if (p) {
          pending.delete(conn.id);
          inflight--;
          const code = phase !== 'connect' ? 'CONNECT_PHASE_TIMEOUT' : (reason.code ?? reason.kind);
          if (phase === 'connect' && TRANSIENT.has(code) && p.attempt < cfg.retries) {
            retries++;
            const delay = BACKOFF_MS * 2 ** p.attempt * (0.5 + Math.random());
            const timer = setTimeout(() => {
              retryTimers.delete(timer);
              retryReady.push({ index: p.index, attempt: p.attempt + 1 });
              schedulePump();
            }, delay);
            retryTimers.add(timer);
          } else {
            fail(code);
          }
          schedulePump();
          return;
        }
        if (!states.delete(conn.id) || phase === 'stop') return;
        tally(closeErrors, reason.code ?? reason.kind);
      },
    },
    {
      backend: 'native',
      // Close events past one batch (4096) reach JS one batch per timer tick: a 50 ms tick
      // keeps tearing down 20,000 connections well under a second (250 ms: ~2.5 s).
      timerResolution: 50,
      onError: (err) => process.stderr.write(`c1m bench worker ${cfg.worker}: ${err.stack ?? err.message}\n`),
    },
  );

  const startConnect = (index: number, attempt: number): void => {
    const localAddress = cfg.sources.length > 0 ? cfg.sources[index % cfg.sources.length] : undefined;
    let conn: Connection;
    try {
      conn = reactor.connect({ host: cfg.host, port: cfg.port, localAddress });
    } catch (err) {
      fail((err as { code?: string }).code ?? 'ERR_CONNECT');
      return;
    }
    inflight++;
    pending.set(conn.id, { index, attempt });
  };

  // Connects start outside event callbacks (never re-entering the reactor from a batch).
  function schedulePump(): void {
    if (pumpQueued || phase !== 'connect') return;
    pumpQueued = true;
    setImmediate(pump);
  }

  function pump(): void {
    pumpQueued = false;
    if (phase !== 'connect') return;
    while (inflight < cfg.concurrency) {
      const retry = retryReady.pop();
      if (retry) startConnect(retry.index, retry.attempt);
      else if (next < cfg.count) {
        started++;
        startConnect(cfg.first + next++, 0);
      } else break;
    }
    if (!connectReported && next === cfg.count && inflight === 0 && retryTimers.size === 0 && retryReady.length === 0) {
      connectReported = true;
      send({ type: 'connected', counters: counters() });
    }
  }

  const endConnect = (): void => {
    if (phase !== 'connect') return;
    phase = 'connected';
    // Whatever has not opened by now failed: never started, waiting for a retry, or in flight.
    for (let i = next; i < cfg.count; i++) fail('CONNECT_PHASE_TIMEOUT');
    next = cfg.count;
    for (const t of retryTimers) {
      clearTimeout(t);
      fail('CONNECT_PHASE_TIMEOUT');
    }
    retryTimers.clear();
    for (let r = retryReady.pop(); r; r = retryReady.pop()) fail('CONNECT_PHASE_TIMEOUT');
    for (const id of pending.keys()) reactor.connection(id).destroy();
  };

  const roll = (): void => {
    if (interval.totalCount === 0) return;
    if (meter.measuring) total.add(interval);
    report.add(interval);
    interval.reset();
  };

  const stop = (): void => {
    if (phase === 'stop') return;
    endConnect();
    phase = 'stop';
    windowEnd = performance.now();
    roll();
    meter.measuring = false;
    scenario.stopTraffic();
    clearInterval(progressTimer);
    const cpu = process.cpuUsage();
    const result: WorkerResult = {
      ...counters(),
      errors, closeErrors,
      msgs: meter.msgs,
      windowS: windowStart > 0 ? (windowEnd - windowStart) / 1000 : 0,
      verifyErrors: cfg.verify ? meter.verifyErrors : null,
      unexpectedMsgs: meter.unexpectedMsgs,
      sendSkipped: meter.sendSkipped,
      hist: encodeHistogram(total),
      lagHist: encodeHistogram(lag),
      cpuUserS: cpu.user / 1e6, cpuSysS: cpu.system / 1e6,
      rssKb: Math.round(process.memoryUsage.rss() / 1024),
    };
    send({ type: 'result', result }, () => {
      void reactor.close(3000).then(() => process.exit(0));
    });
  };

  return (m) => {
    switch (m.type) {
      case 'go':
        if (phase !== 'idle') return;
        phase = 'connect';
        progressTimer = setInterval(() => {
          roll();
          send({ type: 'progress', counters: counters(), hist: encodeHistogram(report) });
          report.reset();
        }, PROGRESS_MS);
        schedulePump();
        break;
      case 'end-connect':
        endConnect();
        break;
      case 'traffic':
        if (trafficOn || phase === 'stop') return;
        trafficOn = true;
        scenario.startTraffic(states.values());
        break;
      case 'measure':
        roll();
        meter.measuring = true;
        windowStart = performance.now();
        break;
      case 'stop':
        stop();
        break;
    }
  };
}

if (process.send) {
  const send = (m: WorkerMessage, cb?: () => void): void => {
    if (process.connected) process.send!(m, undefined, undefined, cb ? () => cb() : undefined);
  };
  // Ctrl-C reaches the whole process group: the parent decides when workers stop.
  process.on('SIGINT', () => {});
  // A parent that went away without a word: nothing left to report to.
  process.on('disconnect', () => process.exit(0));
  let handle: ((m: ParentMessage) => void) | undefined;
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'config' && !handle) {
      try {
        handle = run(m.config, send);
        send({ type: 'ready', pid: process.pid });
      } catch (err) {
        send({ type: 'fatal', message: (err as Error).message }, () => process.exit(1));
      }
      return;
    }
    handle?.(m);
  });
}
