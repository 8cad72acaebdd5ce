/**
 * A reactor driven straight through the addon, without the native backend: the tests in this
 * folder use it to see every event record and to stage commands by hand, with the layout from
 * src/core/layout.ts (so they also exercise it).
 */
import { loadBinding, type Binding, type NativeHandle } from '../../src/core/binding.js';
import { ctlBytes, layoutOf, type Layout } from '../../src/core/layout.js';

/** One event record, decoded, with what JS saw when its batch arrived: the reactor's tick and
 *  the deadline word of the record's slot (meaningful while the slot has a timeout). */
export interface EventRecord {
  kind: number;
  fd: number;
  gen: number;
  a: number;
  b: number;
  c: number;
  tick: number;
  deadline: number;
  /** Which batch (JS crossing) it came in, counted from 1. */
  batch: number;
}

export interface RawOptions {
  /** Event array capacity in records (default 4096). */
  events?: number;
  tickMs?: number;
  idleTicks?: number;
  quietOpen?: boolean;
}

export class RawReactor {
  readonly b: Binding;
  readonly L: Layout;
  readonly h: NativeHandle;
  readonly slots: Uint32Array;
  readonly ctl: Int32Array;
  readonly records: EventRecord[] = [];
  readonly #ev: Int32Array;
  readonly #send: Int32Array;
  #closed = false;

  constructor(opts: RawOptions = {}) {
    this.b = loadBinding()!;
    const L = (this.L = layoutOf(this.b.constants));
    const [soft] = this.b.raiseNofile();
    const nslots = Math.max(soft, 1024);
    const slots = new ArrayBuffer(nslots * L.slotBytes);
    const events = new ArrayBuffer((opts.events ?? 4096) * L.evBytes);
    const send = new ArrayBuffer(1 << 16);
    const ctl = new ArrayBuffer(ctlBytes(L));
    this.slots = new Uint32Array(slots);
    this.ctl = new Int32Array(ctl);
    this.#ev = new Int32Array(events);
    this.#send = new Int32Array(send);
    const cfg = {
      nslots, maxIn: 1 << 20, maxOut: 1 << 24, highWater: 1 << 16, tickMs: opts.tickMs ?? 10, idleTicks: opts.idleTicks ?? 0,
      nodelay: 1, readBudget: 65536, quietOpen: opts.quietOpen ? 1 : 0,
    };
    this.h = this.b.create(cfg, slots, new ArrayBuffer(4 << 20), events, send, ctl, (n) => this.#onBatch(n));
  }

  #batches = 0;

  #onBatch(n: number): void {
    const L = this.L, ev = this.#ev, tick = this.ctl[L.ctlTick]!, batch = ++this.#batches;
    for (let i = 0; i < n; i++) {
      const w = i * L.evWords, fd = ev[w + L.evFd]!;
      const deadline = fd >= 0 && fd * L.slotWords < this.slots.length ? this.slots[fd * L.slotWords + L.slotDeadline]! : 0;
      this.records.push({ kind: ev[w + L.evKind]!, fd, gen: ev[w + L.evGen]!, a: ev[w + L.dataOffset]!, b: ev[w + L.dataLength]!, c: ev[w + L.dataConsumed]!, tick, deadline, batch });
    }
  }

  /** Records of one kind (a `constants.EV_*`). */
  of(kind: number): EventRecord[] {
    return this.records.filter((r) => r.kind === kind);
  }

  get id(): number {
    return this.b.id(this.h);
  }

  listen(targets: number[] = [], policy = this.b.constants.LB_ROUND_ROBIN, deferAccept = 0): { fd: number; port: number } {
    const [fd, port] = this.b.listen(this.h, '127.0.0.1', 0, 511, false, targets, policy, deferAccept, 0, 0, 0);
    return { fd, port };
  }

  /** Stage one command without payload and apply it now. */
  command(op: number, fd: number, gen: number, len: number): void {
    const L = this.L, at = this.ctl[L.ctlSendUsed]!, i = at >> 2;
    this.#send[i + L.cmdOp] = op;
    this.#send[i + L.cmdFd] = fd;
    this.#send[i + L.cmdGen] = gen;
    this.#send[i + L.cmdLen] = len;
    this.ctl[L.ctlSendUsed] = at + L.cmdBytes;
    this.b.flush(this.h);
  }

  slot(fd: number, field: number): number {
    return this.slots[fd * this.L.slotWords + field]!;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.b.close(this.h);
  }
}
