/**
 * `echo`: fixed-size messages against an echo server, closed loop at `--depth` or open loop at
 * `--rate` (`echo-loop.ts`). The server only echoes bytes, so replies are framed by counting:
 * one `data` per batch per connection counts whole messages by bytes modulo `size` and hands
 * them to the loop, which pops their send times, records, and sends as many again.
 *
 * The payload of connection i is a rotation of one pattern (`echoPattern`), so crossed streams
 * show up under `--verify`, which compares every received byte.
 */
import { echoLoop, echoPattern, type EchoState } from './echo-loop.js';
import type { Peer, Scenario, ScenarioContext, ScenarioSpec } from './types.js';

function create(ctx: ScenarioContext): Scenario<EchoState> {
  const { meter } = ctx;
  const { size, depth, verify } = ctx.cfg;
  // Messages per write: whole bursts in one `conn.write`, up to about 64 KiB.
  const perWrite = Math.max(depth, Math.min(64, Math.ceil(65536 / size)));
  const pattern = echoPattern(size, perWrite + 2);
  const offset = (p: Peer<EchoState>): number => p.index % size;

  const loop = echoLoop(ctx, (p, n) => {
    const o = offset(p);
    while (n > 0) {
      const k = Math.min(n, perWrite);
      p.conn.write(pattern.subarray(o, o + k * size));
      n -= k;
    }
  });

  const check = (p: Peer<EchoState>, data: Buffer): void => {
    const o = offset(p), piece = size * perWrite;
    for (let off = 0; off < data.length; ) {
      const start = o + ((p.state.partial + off) % size);
      const n = Math.min(data.length - off, piece);
      if (!data.subarray(off, off + n).equals(pattern.subarray(start, start + n))) {
        meter.verifyErrors++;
        return;
      }
      off += n;
    }
  };

  return {
    init: loop.init,
    open(p, trafficOn) {
      if (trafficOn) loop.join(p);
    },
    data(p, data) {
      const s = p.state;
      if (verify && s.times !== null) check(p, data);
      const total = s.partial + data.length;
      s.partial = total % size;
      loop.replies(p, Math.floor(total / size));
    },
    startTraffic: (peers) => loop.start(peers),
    stopTraffic: () => loop.stop(),
  };
}

/** The `echo` scenario (see the file comment). */
export const echo: ScenarioSpec = {
  name: 'echo',
  summary: 'fixed-size messages against an echo server, closed loop at --depth or open loop at --rate',
  options: ['size', 'depth', 'rate', 'verify', 'warmup', 'tls'],
  unit: 'msgs',
  create,
};
