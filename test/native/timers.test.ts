/**
 * Idle timeouts (native/src/timer.c, a timing wheel with lazy renewal), driven through the
 * addon so every record is seen. The checks are in the reactor's own ticks (read from the
 * control word and the slot's deadline word at each batch), never in wall-clock time: load can
 * make a timeout late, never early.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { GUARD, HOST, sleep, waitFor } from '../helpers/net.js';
import { nativeAvailable } from '../helpers/backends.js';
import { RawReactor, type EventRecord } from './raw-reactor.js';

const TICK = 10;

/** The last OPEN or DATA record of t's connection before t, and the first (its OPEN). */
function history(r: RawReactor, t: EventRecord): { first: EventRecord; last: EventRecord } {
  const k = r.b.constants, i = r.records.indexOf(t);
  const seen = r.records.slice(0, i).filter((rec) => rec.fd === t.fd && rec.gen === t.gen && (rec.kind === k.EV_OPEN || rec.kind === k.EV_DATA));
  return { first: seen[0]!, last: seen[seen.length - 1]! };
}

/** A timeout fired at or after the deadline its last read set, and that deadline was set
 *  `ticks` after a tick no later than the read's batch. */
function checkTimeout(r: RawReactor, t: EventRecord, ticks: number): void {
  const { last } = history(r, t);
  assert.ok(t.tick >= last.deadline, `fd ${t.fd} timed out at tick ${t.tick}, before its deadline ${last.deadline}`);
  assert.ok(last.deadline - ticks <= last.tick, `fd ${t.fd}: deadline ${last.deadline} is ${ticks} ticks after a tick no later than its last read (${last.tick})`);
}

async function connectMany(port: number, n: number): Promise<net.Socket[]> {
  return Promise.all(Array.from({ length: n }, () => new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(port, HOST, () => resolve(s));
    s.on('error', reject);
  })));
}

describe('native timeouts', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  test('each idle connection times out once, never sooner than its timeout after its last read, also when one tick expires more than the event array holds', GUARD, async () => {
    const TICKS = 20, N = 120, ACTIVE = 40;
    // 32 records per batch: the sweep of one tick cannot report 80 expiries at once
    const r = new RawReactor({ events: 32, tickMs: TICK, idleTicks: TICKS });
    const k = r.b.constants;
    const sockets: net.Socket[] = [];
    try {
      const { port } = r.listen();
      sockets.push(...await connectMany(port, N));
      await waitFor(() => r.of(k.EV_OPEN).length === N, 'all accepted');
      // the first ACTIVE sockets keep reading going (renewing their deadline) for 30 ticks
      const active = sockets.slice(0, ACTIVE);
      for (let i = 0; i < 6; i++) {
        for (const s of active) s.write('x');
        await sleep(5 * TICK);
      }
      await waitFor(() => r.of(k.EV_TIMEOUT).length === N, 'every connection timed out');
      await sleep(3 * TICK);
      const timeouts = r.of(k.EV_TIMEOUT);
      assert.equal(new Set(timeouts.map((t) => `${t.fd}/${t.gen}`)).size, N, 'once each');
      assert.equal(r.of(k.EV_TIMEOUT).length, N, 'and no more');
      const activeFds = new Set<number>();
      for (const rec of r.of(k.EV_DATA)) activeFds.add(rec.fd);
      assert.equal(activeFds.size, ACTIVE, 'reads came from the active connections');
      for (const t of timeouts) checkTimeout(r, t, TICKS);
      for (const t of timeouts.filter((x) => activeFds.has(x.fd))) {
        const { first, last } = history(r, t);
        assert.ok(last.deadline > first.deadline, `fd ${t.fd}: reads renewed the deadline (${first.deadline} -> ${last.deadline})`);
      }
      for (const t of timeouts) assert.equal(r.slot(t.fd, r.L.slotTimeoutTicks), 0, 'a fired timeout is disarmed');
    } finally {
      for (const s of sockets) s.destroy();
      r.close();
    }
  });

  test('setTimeout files eagerly: a shorter timeout replaces a longer one, 0 disarms', GUARD, async () => {
    const r = new RawReactor({ tickMs: TICK });
    const k = r.b.constants;
    const sockets: net.Socket[] = [];
    try {
      const { port } = r.listen();
      sockets.push(...await connectMany(port, 3));
      await waitFor(() => r.of(k.EV_OPEN).length === 3, 'all accepted');
      const [short, long, none] = r.of(k.EV_OPEN);
      r.command(k.OP_TIMEOUT, long!.fd, long!.gen, 40 * TICK);
      r.command(k.OP_TIMEOUT, short!.fd, short!.gen, 60_000); // filed far away ...
      r.command(k.OP_TIMEOUT, short!.fd, short!.gen, 20 * TICK); // ... then moved closer
      r.command(k.OP_TIMEOUT, none!.fd, none!.gen, 20 * TICK);
      r.command(k.OP_TIMEOUT, none!.fd, none!.gen, 0);
      assert.equal(r.slot(none!.fd, r.L.slotTimeoutTicks), 0);
      assert.equal(r.slot(short!.fd, r.L.slotTimeoutTicks), 20);
      await waitFor(() => r.of(k.EV_TIMEOUT).length === 2, 'two timeouts');
      assert.deepEqual(r.of(k.EV_TIMEOUT).map((t) => t.fd), [short!.fd, long!.fd], 'the shorter one first');
      assert.equal(r.slot(none!.fd, r.L.slotTimeoutTicks), 0, 'the disarmed one has none');
    } finally {
      for (const s of sockets) s.destroy();
      r.close();
    }
  });

  test('a timeout longer than one turn of the wheel (4096 ticks) is re-filed, not fired early; late ticks are caught up', GUARD, async () => {
    // 1 ms ticks (the addon allows them; the engine's option starts at 10): 5000 ticks > one turn
    const TICKS = 5000, r = new RawReactor({ tickMs: 1, idleTicks: TICKS });
    const k = r.b.constants;
    const sockets: net.Socket[] = [];
    try {
      const { port } = r.listen();
      sockets.push(...await connectMany(port, 2));
      await waitFor(() => r.of(k.EV_OPEN).length === 2, 'accepted');
      const renewed = sockets[0]!;
      for (let i = 0; i < 3; i++) { // reads renew its deadline lazily, past the first one
        await sleep(1000);
        renewed.write('x');
      }
      await waitFor(() => r.of(k.EV_TIMEOUT).length === 2, 'both timed out', 60_000);
      for (const t of r.of(k.EV_TIMEOUT)) checkTimeout(r, t, TICKS);
      const t0 = r.of(k.EV_TIMEOUT).find((t) => t.fd === r.of(k.EV_DATA)[0]?.fd)!;
      const { first, last } = history(r, t0);
      assert.ok(last.deadline > first.deadline, 'reads renewed the deadline');
      assert.equal(r.of(k.EV_DATA).length >= 1, true, 'the renewed one was read');
    } finally {
      for (const s of sockets) s.destroy();
      r.close();
    }
  });
  test('the tick stops while nothing is timed (an idle reactor is not woken), and a timeout filed then restarts it and still fires on time', GUARD, async () => {
    const r = new RawReactor({ tickMs: TICK });
    const k = r.b.constants;
    const sockets: net.Socket[] = [];
    const tick = (): number => r.ctl[r.L.ctlTick]!;
    /** The tick stays put over 20 tick periods (while running it moves every one). */
    const stopped = async (): Promise<boolean> => {
      const t = tick();
      await sleep(20 * TICK);
      return tick() === t;
    };
    const untilStopped = async (what: string): Promise<void> => {
      const start = Date.now();
      while (!(await stopped())) if (Date.now() - start > 20_000) throw new Error(`timed out waiting until ${what}`);
    };
    try {
      const { port } = r.listen();
      await waitFor(() => tick() > 0, 'the tick ran at start');
      await untilStopped('the tick stops with nothing to time');
      sockets.push(...await connectMany(port, 1));
      await waitFor(() => r.of(k.EV_OPEN).length === 1, 'accepted');
      assert.ok(await stopped(), 'a connection without a timeout does not restart it');
      const open = r.of(k.EV_OPEN)[0]!;
      const before = tick();
      r.command(k.OP_TIMEOUT, open.fd, open.gen, 5 * TICK);
      await waitFor(() => r.of(k.EV_TIMEOUT).length === 1, 'the timeout filed while the tick was stopped fires');
      const t = r.of(k.EV_TIMEOUT)[0]!;
      assert.equal(t.fd, open.fd);
      assert.ok(t.tick >= before + 5, `it fired at tick ${t.tick}, 5 ticks after ${before} at the earliest`);
      await untilStopped('the tick stops again once the timeout is gone');
    } finally {
      for (const s of sockets) s.destroy();
      r.close();
    }
  });
});
