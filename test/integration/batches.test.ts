/**
 * More events than one batch holds (the native event array has 4,096 records) are delivered
 * without waiting for the timer tick: with a 60 s tick, closing 6,000 connections must still
 * complete promptly (the bounded wait fails only if delivery stalls until a tick). The native
 * reactor is edge-triggered, so readiness it harvests but has no room for must be carried to the
 * next poll: thousands of connections becoming readable together must all be read.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { createReactor } from '../../src/index.js';
import { backends } from '../helpers/backends.js';
import { GUARD, HOST, waitFor, within } from '../helpers/net.js';

for (const backend of backends) {
  describe(`batches (${backend})`, () => {
    test('6,000 closes in one go reach onClose without waiting for a timer tick', GUARD, async () => {
      let closes = 0;
      const reactor = createReactor({ onClose: () => void closes++ }, { backend, timerResolution: 60_000 });
      const { port } = await reactor.listen({ port: 0, host: HOST });
      const socks: Socket[] = [];
      for (let i = 0; i < 6000; i++) socks.push(connect({ port, host: HOST }));
      await Promise.all(socks.map((s) => new Promise((res, rej) => s.once('connect', res).once('error', rej))));
      await waitFor(() => reactor.stats.connections === 6000, '6000 accepted');
      await within(reactor.close(30_000), 'close() of 6000 connections', 20_000);
      assert.equal(closes, 6000);
      for (const s of socks) s.destroy();
    });

    test('3,000 connections sending at once, among accepts: every byte is read', GUARD, async () => {
      let bytes = 0;
      const reactor = createReactor({ onData: (_c, d) => void (bytes += d.length) }, { backend, timerResolution: 60_000 });
      const { port } = await reactor.listen({ port: 0, host: HOST });
      try {
        // Accepts and data land in the same polls: accept records can fill a batch while
        // harvested data edges wait their turn.
        const socks: Socket[] = [];
        for (let i = 0; i < 3000; i++) {
          const s = connect({ port, host: HOST });
          s.once('connect', () => s.write(Buffer.alloc(1 + (i % 7), i)));
          socks.push(s);
        }
        await Promise.all(socks.map((s) => new Promise((res, rej) => s.once('connect', res).once('error', rej))));
        const want = socks.reduce((n, _s, i) => n + 1 + (i % 7), 0);
        await waitFor(() => bytes === want, `${want} bytes read (have ${bytes})`);
        // A second wave on the connections now open: 3,000 edges at once, no accepts.
        for (const s of socks) s.write('z');
        await waitFor(() => bytes === want + 3000, `second wave read (have ${bytes - want} of 3000)`);
        for (const s of socks) s.destroy();
      } finally {
        await reactor.close(5000);
      }
    });
  });
}
