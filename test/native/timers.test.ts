/**
 * Idle timeouts (native/src/timer.c, a timing wheel with lazy renewal), driven through the
 * addon so every record is seen. Load can only make timeouts late, so the checks are lower
 * bounds and orders, never upper time limits.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { GUARD, HOST, sleep, waitFor } from '../helpers/net.js';
import { nativeAvailable } from '../helpers/backends.js';
import { RawReactor } from './raw-reactor.js';

const TICK = 10;

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
      for (const t of timeouts) {
        const seen = r.records.filter((rec) => rec.fd === t.fd && rec.gen === t.gen && (rec.kind === k.EV_OPEN || rec.kind === k.EV_DATA) && rec.at <= t.at);
        const last = seen[seen.length - 1]!;
        // deadline = tick of the last read + TICKS; the tick may have been about to advance
        assert.ok(t.at - last.at >= (TICKS - 1) * TICK - 2, `fd ${t.fd} timed out ${(t.at - last.at).toFixed(1)} ms after its last read`);
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
});
