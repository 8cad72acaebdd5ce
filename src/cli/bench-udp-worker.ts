/**
 * One worker process of `c1m bench udp` (forked by `bench-udp.ts`): its share of the flows,
 * each a connected UDP socket on one reactor of the engine, driven in echo or flood mode.
 *
 * Protocol (IPC): the parent sends `{ type: 'config' }`; the worker opens its sockets and answers
 * `ready` (or `fatal`); on `go` it runs warm-up + measured window on its own timers and answers
 * one `result`, then exits. It exits by itself if the parent goes away.
 *
 * Echo: each flow keeps `depth` slots in flight. A datagram carries [u32 sequence][u32 slot]
 * then padding; an answer whose slot holds that sequence completes it (latency recorded, the
 * slot sends its next sequence); any other answer is `stale` (late after a timeout, duplicated,
 * or foreign). A slot unanswered for `timeoutMs` counts one `lost` and sends its next sequence:
 * loss never stalls a flow. Flood: open loop, `rate` datagrams/s over this worker's flows
 * (scheduled on a 1 ms tick from the elapsed time, so a late tick catches up), or as fast as
 * the sockets take them (each flow pauses on backpressure until `onDrain`).
 *
 * Hot path: sends outside a receive batch leave together at the end of the microtask (one
 * sendmmsg per socket per tick); answers sent inside `onMessages` leave when the batch ends.
 */
import { performance } from 'node:perf_hooks';
import { createReactor, type Reactor, type UdpBatch, type UdpSocket } from '../index.js';
import { encodeHistogram, latencyHistogram, loadHistograms } from './bench-stats.js';

/** What the parent asks of one worker. */
export interface UdpWorkerConfig {
  mode: 'echo' | 'flood';
  host: string;
  port: number;
  /** Flows (sockets) of this worker. */
  flows: number;
  size: number;
  depth: number;
  /** Flood: datagrams/s of this worker; 0: as fast as possible. */
  rate: number;
  warmupS: number;
  durationS: number;
  timeoutMs: number;
}

/** One worker's counters over the measured window. */
export interface UdpWorkerResult {
  sent: number;
  received: number;
  lost: number;
  stale: number;
  /** Datagrams the send queue dropped (stats.drops of the sockets). */
  drops: number;
  errors: Record<string, number>;
  /** Echo: encoded round-trip histogram (ns); null when empty. */
  histogram: string | null;
  elapsedS: number;
  cpuUserS: number;
  cpuSysS: number;
}

export type UdpParentMessage = { type: 'config'; config: UdpWorkerConfig } | { type: 'go' };
export type UdpWorkerMessage = { type: 'ready' } | { type: 'fatal'; message: string } | { type: 'result'; result: UdpWorkerResult };

const send = (m: UdpWorkerMessage): void => {
  process.send?.(m);
};

interface Flow {
  sock: UdpSocket;
  /** Echo: the sequence each slot waits for, and when it was sent (ms, performance.now()). */
  seq: Uint32Array;
  sentAt: Float64Array;
  next: number;
  /** Flood: paused by backpressure until onDrain. */
  blocked: boolean;
}

class Generator {
  readonly #c: UdpWorkerConfig;
  readonly #reactor: Reactor;
  readonly #flows: Flow[] = [];
  readonly #bySock = new Map<number, Flow>();
  readonly #payload: Buffer;
  readonly #hist = latencyHistogram();
  #measuring = false;
  #sent = 0;
  #received = 0;
  #lost = 0;
  #stale = 0;
  #errors: Record<string, number> = {};
  #dropsAtStart = 0;
  #kernelSentAtStart = 0;

  constructor(c: UdpWorkerConfig) {
    this.#c = c;
    this.#reactor = createReactor({});
    this.#payload = Buffer.alloc(c.size, 0x61);
  }

  async open(): Promise<void> {
    const local = this.#c.host.includes(':') ? '::' : '0.0.0.0';
    const handler = {
      onMessages: (sock: UdpSocket, batch: UdpBatch) => this.#onMessages(sock, batch),
      onDrain: (sock: UdpSocket) => {
        const f = this.#bySock.get(sock.id);
        if (f) f.blocked = false;
      },
      onError: (_sock: UdpSocket, err: Error) => {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        this.#errors[code] = (this.#errors[code] ?? 0) + 1;
      },
    };
    for (let i = 0; i < this.#c.flows; i++) {
      const sock = await this.#reactor.udp({ host: local, port: 0, recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 }, handler);
      await sock.connect(this.#c.host, this.#c.port);
      const f: Flow = { sock, seq: new Uint32Array(this.#c.depth), sentAt: new Float64Array(this.#c.depth), next: 1, blocked: false };
      this.#flows.push(f);
      this.#bySock.set(sock.id, f);
    }
  }

  /** Echo: send slot `slot` of `f` with its next sequence. */
  #sendSlot(f: Flow, slot: number, now: number): void {
    const seq = f.next++ >>> 0;
    f.seq[slot] = seq;
    f.sentAt[slot] = now;
    this.#payload.writeUInt32LE(seq, 0);
    this.#payload.writeUInt32LE(slot, 4);
    f.sock.send(this.#payload);
    if (this.#measuring) this.#sent++;
  }

  #onMessages(sock: UdpSocket, batch: UdpBatch): void {
    const f = this.#bySock.get(sock.id);
    if (!f) return;
    if (this.#c.mode === 'flood') {
      if (this.#measuring) this.#stale += batch.length;
      return;
    }
    const now = performance.now();
    for (let i = 0; i < batch.length; i++) {
      const d = batch.data(i);
      const slot = d.length >= 8 ? d.readUInt32LE(4) : -1;
      if (slot < 0 || slot >= f.seq.length || d.readUInt32LE(0) !== f.seq[slot] || f.sentAt[slot] === 0) {
        if (this.#measuring) this.#stale++;
        continue;
      }
      if (this.#measuring) {
        this.#received++;
        this.#hist.recordValue(Math.max(1, Math.round((now - f.sentAt[slot]!) * 1e6)));
      }
      this.#sendSlot(f, slot, now);
    }
  }

  /** Echo: slots unanswered for the timeout are lost; they send their next sequence. */
  #sweep(): void {
    const now = performance.now();
    const limit = now - this.#c.timeoutMs;
    for (const f of this.#flows) {
      for (let s = 0; s < f.sentAt.length; s++) {
        if (f.sentAt[s]! <= limit) {
          if (this.#measuring) this.#lost++;
          this.#sendSlot(f, s, now);
        }
      }
    }
  }

  /** Flood: send `n` datagrams round-robin over the flows not blocked; returns how many left. */
  #flood(n: number, rr: { i: number }): number {
    let done = 0;
    let idle = 0;
    while (done < n && idle < this.#flows.length) {
      const f = this.#flows[rr.i]!;
      rr.i = (rr.i + 1) % this.#flows.length;
      if (f.blocked) {
        idle++;
        continue;
      }
      idle = 0;
      if (!f.sock.send(this.#payload)) f.blocked = true;
      done++;
    }
    return done;
  }

  #sum(k: 'drops' | 'sent'): number {
    let n = 0;
    for (const f of this.#flows) n += f.sock.stats[k];
    return n;
  }

  async run(): Promise<UdpWorkerResult> {
    const c = this.#c;
    const start = performance.now();
    const warmEnd = start + c.warmupS * 1000;
    const end = warmEnd + c.durationS * 1000;
    let measureStart = start;
    let cpu0 = process.cpuUsage();
    const beginMeasure = (): void => {
      this.#measuring = true;
      measureStart = performance.now();
      cpu0 = process.cpuUsage();
      this.#dropsAtStart = this.#sum('drops');
      this.#kernelSentAtStart = this.#sum('sent');
    };
    if (c.warmupS === 0) beginMeasure();
    if (c.mode === 'echo') {
      for (const f of this.#flows) for (let s = 0; s < c.depth; s++) this.#sendSlot(f, s, start);
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          const now = performance.now();
          if (!this.#measuring && now >= warmEnd) beginMeasure();
          if (now >= end) {
            clearInterval(t);
            resolve();
          } else this.#sweep();
        }, Math.max(1, Math.min(50, c.timeoutMs / 4)));
      });
    } else {
      const rr = { i: 0 };
      // The rate is owed from the window's own start (measureStart, after beginMeasure's reads),
      // so `sent` never exceeds rate x the elapsed time reported for the window.
      let due0 = measureStart;
      let done = 0;
      await new Promise<void>((resolve) => {
        const tick = (): void => {
          const now = performance.now();
          if (!this.#measuring && now >= warmEnd) {
            beginMeasure();
            due0 = measureStart;
            done = 0;
          }
          if (now >= end) {
            resolve();
            return;
          }
          // Rate: what is due since the window began; as fast as possible: a burst per flow.
          const want = c.rate > 0 ? Math.floor(((now - due0) / 1000) * c.rate) - done : 64 * this.#flows.length;
          done += this.#flood(Math.max(0, Math.min(want, 65_536)), rr);
          if (c.rate > 0) setTimeout(tick, 1);
          else setImmediate(tick);
        };
        tick();
      });
    }
    this.#measuring = false;
    const elapsedS = (performance.now() - measureStart) / 1000;
    const cpu = process.cpuUsage(cpu0);
    // Flood: sent is what the kernel took in the window (a datagram still queued is not yet sent).
    const drops = this.#sum('drops') - this.#dropsAtStart;
    return {
      sent: c.mode === 'flood' ? this.#sum('sent') - this.#kernelSentAtStart : this.#sent, received: this.#received, lost: this.#lost, stale: this.#stale, drops,
      errors: this.#errors, histogram: encodeHistogram(this.#hist), elapsedS, cpuUserS: cpu.user / 1e6, cpuSysS: cpu.system / 1e6,
    };
  }

  close(): Promise<void> {
    return this.#reactor.close(1000);
  }
}

let gen: Generator | undefined;

process.on('disconnect', () => process.exit(0));
process.on('message', (m: UdpParentMessage) => {
  if (m.type === 'config') {
    loadHistograms().then(async () => {
      gen = new Generator(m.config);
      await gen.open();
      send({ type: 'ready' });
    }).catch((e: Error) => send({ type: 'fatal', message: e.message }));
  } else if (m.type === 'go' && gen) {
    const g = gen;
    g.run().then(async (result) => {
      send({ type: 'result', result });
      await g.close();
      process.disconnect?.();
    }).catch((e: Error) => send({ type: 'fatal', message: e.message }));
  }
});
