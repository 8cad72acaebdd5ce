/**
 * `ping` (used by `c1m bench million`, not on the command line): each `startTraffic` sends one
 * `size`-byte message on every connection that has none outstanding, and times its echo. One
 * round trip per connection per call; nothing else is sent.
 */
import { performance } from 'node:perf_hooks';
import type { Peer, Scenario, ScenarioContext, ScenarioSpec } from './types.js';

interface PingState {
  /** performance.now() of the outstanding message; 0 when none. */
  sentAt: number;
  /** Bytes of the echo received so far. */
  got: number;
}

function create(ctx: ScenarioContext): Scenario<PingState> {
  const { meter } = ctx;
  const { size } = ctx.cfg;
  const message = Buffer.alloc(size, 0x70);
  return {
    init: () => ({ sentAt: 0, got: 0 }),
    open() {},
    data(p: Peer<PingState>, data) {
      const s = p.state;
      if (s.sentAt === 0) {
        meter.unexpectedMsgs += Math.floor((s.got + data.length) / size);
        s.got = (s.got + data.length) % size;
        return;
      }
      s.got += data.length;
      if (s.got < size) return;
      meter.record(Math.max(1, Math.round((performance.now() - s.sentAt) * 1e6)), 1);
      meter.msgsTotal++;
      if (meter.measuring) meter.msgs++;
      meter.unexpectedMsgs += Math.floor(s.got / size) - 1;
      s.got %= size;
      s.sentAt = 0;
    },
    startTraffic(peers) {
      for (const p of peers) {
        if (p.state.sentAt !== 0 || !p.established) continue;
        p.state.sentAt = performance.now();
        p.conn.write(message);
      }
    },
    stopTraffic() {},
  };
}

/** The `ping` scenario (see the file comment). */
export const ping: ScenarioSpec = {
  name: 'ping',
  summary: 'one echo round trip on every connection per traffic command (c1m bench million)',
  options: ['size'],
  unit: 'msgs',
  defaults: { size: 16 },
  create,
};
