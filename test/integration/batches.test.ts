/**
 * More events than one batch holds (the native event array has 4,096 records) are delivered
 * without waiting for the timer tick: with a 60 s tick, closing 6,000 connections must still
 * complete promptly (the bounded wait fails only if delivery stalls until a tick).
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
  });
}
