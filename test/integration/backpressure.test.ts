/**
 * Outbound backpressure against a client that stops reading (node:net socket.pause()).
 * 32 MiB cannot fit in loopback socket buffers, so a paused client forces bytes to queue in the
 * engine: `write` must return false past highWaterMark, buffered bytes must stay bounded by
 * maxOutboundBytes, and past it the connection closes as a slow consumer.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CloseReason, Connection } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, RawClient, deferred, firstDiff, payload, rawClient, startServer, waitFor, within } from '../helpers/net.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

/** Sample `conn.bufferedAmount` every few ms while the connection is open; returns the max seen. */
function sampler(get: () => Connection | undefined): { stop: () => number } {
  let max = 0;
  const t = setInterval(() => {
    const c = get();
    if (c?.open) max = Math.max(max, c.bufferedAmount);
  }, 2);
  return {
    stop: () => {
      clearInterval(t);
      return max;
    },
  };
}

for (const backend of backends) {
  describe(`backpressure (${backend})`, () => {
    test('write returns false past highWaterMark; onDrain fires once the client resumes; every byte arrives', GUARD, async () => {
      const HWM = 64 * 1024, MAX_OUT = 64 * MiB, TOTAL = 32 * MiB;
      const data = payload(TOTAL, 3);
      const results: [ok: boolean, buffered: number][] = [];
      let bufferedAfterWrites = -1;
      let drains = 0;
      let conn: Connection | undefined;
      const written = deferred(), drained = deferred(), closed = deferred<CloseReason>();
      const srv = await startServer(backend, {
        onOpen(c) {
          conn = c;
          for (let off = 0; off < TOTAL; off += CHUNK) {
            const ok = c.write(data.subarray(off, off + CHUNK));
            results.push([ok, c.bufferedAmount]);
          }
          bufferedAfterWrites = c.bufferedAmount;
          written.resolve();
        },
        onDrain(c) {
          drains++;
          assert.equal(c.id, conn?.id);
          drained.resolve();
          c.close();
        },
        onClose: (_c, r) => closed.resolve(r),
      }, { highWaterMark: HWM, maxOutboundBytes: MAX_OUT });
      const s = sampler(() => conn);
      try {
        const client = await rawClient(srv.port, { paused: true });
        await within(written.promise, 'server writes');
        // write() says whether the connection is at or under the mark after queueing.
        for (const [i, [ok, buffered]] of results.entries()) {
          assert.equal(ok, buffered <= HWM, `write #${i}: returned ${ok} with ${buffered} bytes buffered`);
        }
        assert.equal(results.at(-1)![0], false, 'the last write (kernel buffers full) returned false');
        assert.ok(bufferedAfterWrites > HWM, `bufferedAmount ${bufferedAfterWrites} > highWaterMark`);
        assert.ok(bufferedAfterWrites <= MAX_OUT, `bufferedAmount ${bufferedAfterWrites} <= maxOutboundBytes`);
        assert.equal(conn!.open, true);
        // The client has not read a byte: no drain can have happened.
        assert.equal(drains, 0);
        client.collect();
        await within(drained.promise, 'onDrain after the client resumed', 60_000);
        await client.waitClosed(60_000);
        assert.equal(drains, 1);
        assert.equal(client.length, TOTAL);
        assert.equal(firstDiff(client.bytes(), data), -1);
        assert.equal((await closed.promise).kind, 'local');
        const max = s.stop();
        assert.ok(max <= MAX_OUT, `max sampled bufferedAmount ${max} <= ${MAX_OUT}`);
        assert.deepEqual(srv.errors, []);
      } finally {
        s.stop();
        await srv.reactor.close(1000);
      }
    });

    test('a writer that respects write()/onDrain keeps bufferedAmount near highWaterMark', GUARD, async () => {
      const HWM = 32 * 1024, TOTAL = 24 * MiB;
      let sent = 0, falses = 0, drains = 0, maxBuffered = 0;
      let conn: Connection | undefined;
      const chunk = payload(16 * 1024, 9);
      const pump = (c: Connection): void => {
        while (sent < TOTAL) {
          sent += chunk.length;
          const ok = c.write(chunk);
          maxBuffered = Math.max(maxBuffered, c.bufferedAmount);
          if (!ok) {
            falses++;
            return;
          }
        }
        c.close();
      };
      const srv = await startServer(backend, {
        onOpen(c) {
          conn = c;
          pump(c);
        },
        onDrain(c) {
          drains++;
          pump(c);
        },
      }, { highWaterMark: HWM, maxOutboundBytes: 4 * MiB });
      try {
        const client = await rawClient(srv.port, { paused: true });
        // Stalled: the engine holds bytes, a drain is pending, and nothing moved since last look.
        let lastSent = -1;
        await waitFor(() => {
          const stalled = conn !== undefined && conn.bufferedAmount > 0 && falses > drains && sent === lastSent;
          lastSent = sent;
          return stalled;
        }, 'a stalled writer');
        const stalledDrains = drains;
        assert.ok(sent < TOTAL, 'a paused client holds the writer back');
        client.collect();
        await client.waitClosed(60_000);
        assert.equal(client.length, TOTAL);
        assert.ok(drains > stalledDrains, 'onDrain resumed the writer');
        assert.equal(falses, drains, 'every false write was followed by exactly one onDrain');
        // One chunk over the mark at most (the write that returned false).
        assert.ok(maxBuffered <= HWM + chunk.length, `max bufferedAmount ${maxBuffered} <= ${HWM + chunk.length}`);
        assert.equal(conn!.open, false);
        assert.deepEqual(srv.errors, []);
      } finally {
        await srv.reactor.close(1000);
      }
    });

    test("past maxOutboundBytes the connection closes with 'slow-consumer'", GUARD, async () => {
      const HWM = 16 * 1024, MAX_OUT = 256 * 1024, TOTAL = 32 * MiB;
      const chunk = payload(CHUNK, 5);
      let conn: Connection | undefined;
      let attempted = 0;
      let openAfterLoop = true, writeAfterClose: boolean | undefined;
      const closed = deferred<CloseReason>();
      const srv = await startServer(backend, {
        onOpen(c) {
          conn = c;
          // Ignore backpressure: keep writing while the connection is open.
          for (let off = 0; off < TOTAL && c.open; off += CHUNK) {
            attempted += CHUNK;
            c.write(chunk);
          }
          openAfterLoop = c.open;
        },
        onClose(c, r) {
          writeAfterClose = c.write('late');
          closed.resolve(r);
        },
      }, { highWaterMark: HWM, maxOutboundBytes: MAX_OUT });
      const s = sampler(() => conn);
      try {
        // Not awaiting 'connect': the server may reset the connection before the client sees it.
        const client = new RawClient(srv.port, { paused: true });
        const reason = await within(closed.promise, 'slow-consumer close', 60_000);
        assert.equal(reason.kind, 'slow-consumer');
        assert.equal(reason.code, 'ERR_C1M_SLOW_CONSUMER');
        assert.ok(attempted < TOTAL, `stopped writing at ${attempted} bytes: the close was noticed`);
        assert.equal(openAfterLoop, false);
        assert.equal(writeAfterClose, false);
        assert.equal(conn!.open, false);
        assert.equal(conn!.write('x'), false);
        assert.equal(conn!.bufferedAmount, 0);
        const max = s.stop();
        assert.ok(max <= MAX_OUT, `max sampled bufferedAmount ${max} <= ${MAX_OUT}`);
        // The client sees the connection go away (a reset, or an end after what was sent).
        client.collect();
        await client.waitClosed(60_000);
        assert.ok(client.length < TOTAL);
        await waitFor(() => srv.reactor.stats.connections === 0, 'no open connections');
      } finally {
        s.stop();
        await srv.reactor.close(1000);
      }
    });
  });
}
