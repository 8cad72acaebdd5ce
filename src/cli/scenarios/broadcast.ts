/**
 * `broadcast`: every connection subscribes to a broadcast server (`c1m serve broadcast`); one
 * connection (global index 0, in worker 0) publishes at `rate` per second, and every
 * connection, the publisher included, receives each publish. Measured: the latency of every
 * delivery, and per publish the time until its last receiver had it.
 *
 * Wire format (a line per publish): the publisher sends
 * `PUB <seq> <sec> <nsec> <m> <padding>\n`, the server writes `<seq> <sec> <nsec> <m> ...\n`
 * to every connection. `<sec> <nsec>` is the send time from `process.hrtime()`, which on
 * Linux reads CLOCK_MONOTONIC: one clock for every process of the box, so a receiver in
 * another worker process subtracts it from its own `process.hrtime()` directly. (Not
 * `performance.now()`: its origin is per process.) `<m>` is 1 for a publish sent inside the
 * publisher's measured window: only those count, in whichever worker they arrive, so the
 * figures do not depend on the workers' windows lining up.
 *
 * Each worker keeps, per measured publish, the largest delivery latency it saw and how many
 * of its connections got it; the parent merges them (max, sum) and counts a publish complete
 * when every connection open at the end got it.
 */
import { performance } from 'node:perf_hooks';
import type { Histogram } from 'hdr-histogram-js';
import { latencyHistogram, summarize } from '../bench-stats.js';
import type { BroadcastStats, Peer, Scenario, ScenarioContext, ScenarioSpec } from './types.js';

const NL = 0x0a;
const SPACE = 0x20;

/** What a worker reports. */
interface BroadcastExtra {
  /** Worker 0 only: publishes sent in the measured window, and that window in seconds. */
  published: number;
  publishWindowS: number;
  /** Per measured publish seen here: seq, largest latency (ns), deliveries. */
  seq: number[];
  maxNs: number[];
  count: number[];
}

/** Parse the unsigned decimal at `data[at]`; `cursor` moves past it and one space. */
let cursor = 0;
function readUint(data: Buffer, at: number, end: number): number {
  let v = 0, i = at;
  for (; i < end; i++) {
    const c = data[i]!;
    if (c === SPACE) break;
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  if (i === at) return -1;
  cursor = i + 1;
  return v;
}

function create(ctx: ScenarioContext): Scenario<undefined> {
  const { meter, cfg } = ctx;
  const period = 1000 / cfg.rate;
  const perSeq = new Map<number, { maxNs: number; count: number }>();
  let publisher: Peer<undefined> | undefined;
  let sending = false, ticker: NodeJS.Timeout | undefined;
  let t0 = 0, seq = 0, published = 0, measuredFrom = 0, measuredTo = 0;

  const publish = (): void => {
    const [sec, nsec] = process.hrtime();
    const m = meter.measuring ? 1 : 0;
    let line = `PUB ${seq++} ${sec} ${nsec} ${m} `;
    // `size` is the delivered line's length: everything after "PUB ", newline included.
    const pad = cfg.size - (line.length - 4) - 1;
    if (pad > 0) line += 'x'.repeat(pad);
    publisher!.conn.write(`${line}\n`);
    if (m === 1) {
      if (published === 0) measuredFrom = performance.now();
      published++;
      measuredTo = performance.now();
    }
  };

  const tick = (): void => {
    if (!sending || !publisher?.open) return;
    const due = Math.floor((performance.now() - t0) / period) + 1 - seq;
    for (let i = 0; i < due; i++) publish();
  };

  return {
    init: () => undefined,
    open(p, trafficOn) {
      if (p.index === 0) {
        publisher = p;
        if (trafficOn && sending) tick();
      }
    },
    data(_p, data) {
      let start = 0;
      const [sec, nsec] = process.hrtime();
      for (let nl = data.indexOf(NL); nl !== -1; nl = data.indexOf(NL, start)) {
        const n = readUint(data, start, nl);
        const s = n < 0 ? -1 : readUint(data, cursor, nl);
        const ns = s < 0 ? -1 : readUint(data, cursor, nl);
        const m = ns < 0 ? -1 : readUint(data, cursor, nl);
        start = nl + 1;
        if (m < 0) {
          meter.unexpectedMsgs++;
          continue;
        }
        meter.msgsTotal++;
        if (m !== 1) continue;
        const lat = Math.max(1, (sec - s) * 1e9 + (nsec - ns));
        // The publisher's window decides: this worker's `measure` may not have come yet.
        meter.recordMeasured(lat, 1);
        meter.msgs++;
        const e = perSeq.get(n);
        if (e) {
          e.count++;
          if (lat > e.maxNs) e.maxNs = lat;
        } else {
          perSeq.set(n, { maxNs: lat, count: 1 });
        }
      }
      return start;
    },
    startTraffic() {
      if (sending) return;
      sending = true;
      t0 = performance.now();
      if (cfg.first === 0) ticker = setInterval(tick, Math.max(1, Math.min(10, period)));
      tick();
    },
    stopTraffic() {
      sending = false;
      if (ticker) clearInterval(ticker);
    },
    result(): BroadcastExtra {
      const seqs = [...perSeq.keys()];
      return {
        published,
        publishWindowS: published > 0 ? (measuredTo - measuredFrom) / 1000 + 1 / cfg.rate : 0,
        seq: seqs,
        maxNs: seqs.map((k) => perSeq.get(k)!.maxNs),
        count: seqs.map((k) => perSeq.get(k)!.count),
      };
    },
  };
}

/** The `broadcast` scenario (see the file comment). */
export const broadcast: ScenarioSpec = {
  name: 'broadcast',
  summary: 'N subscribers of c1m serve broadcast; one publishes at --rate/s; delivery and last-receiver latency',
  options: ['size', 'rate', 'warmup'],
  unit: 'deliveries',
  defaults: { size: 64, rate: 10 },
  drain: true,
  create,
  summarize({ extras, openAtEnd, rate }) {
    const xs = extras as BroadcastExtra[];
    const merged = new Map<number, { maxNs: number; count: number }>();
    let published = 0, windowS = 0, deliveries = 0;
    for (const x of xs) {
      published += x.published;
      windowS = Math.max(windowS, x.publishWindowS);
      for (let i = 0; i < x.seq.length; i++) {
        deliveries += x.count[i]!;
        const e = merged.get(x.seq[i]!);
        if (e) {
          e.count += x.count[i]!;
          e.maxNs = Math.max(e.maxNs, x.maxNs[i]!);
        } else {
          merged.set(x.seq[i]!, { maxNs: x.maxNs[i]!, count: x.count[i]! });
        }
      }
    }
    const last: Histogram = latencyHistogram();
    let complete = 0;
    for (const e of merged.values()) {
      if (e.count < openAtEnd) continue;
      complete++;
      last.recordValue(e.maxNs);
    }
    const stats: BroadcastStats = {
      receivers: openAtEnd,
      rate,
      published,
      complete,
      deliveries,
      deliveries_per_s: windowS > 0 ? Math.round(deliveries / windowS) : 0,
      last_receiver: summarize(last),
    };
    last.destroy();
    return { broadcast: stats };
  },
};
