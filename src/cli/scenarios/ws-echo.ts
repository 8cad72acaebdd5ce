/**
 * `ws-echo`: `echo` over WebSocket. Each connection upgrades (as `ws-hold`), then sends binary
 * messages of `--size` bytes, closed loop at `--depth` or open loop at `--rate`
 * (`echo-loop.ts`), against a server that sends each message back (`c1m serve ws-echo`).
 * Replies are whole messages, so there is no byte framing: during one `data` the client's
 * `onMessage` counts the messages of that batch, and the batch goes to the loop once, as
 * `echo` hands it its whole messages.
 *
 * Every message of connection i is the rotation of the echo pattern at offset i mod size;
 * `--verify` compares each reply with it (and wants it binary, of `--size` bytes).
 */
import { echoLoop, echoPattern, type EchoState } from './echo-loop.js';
import { mergeWsStats, wsPeers } from './ws-peers.js';
import type { Peer, Scenario, ScenarioContext, ScenarioSpec } from './types.js';

function create(ctx: ScenarioContext): Scenario<EchoState> {
  const { meter } = ctx;
  const { size, verify } = ctx.cfg;
  const pattern = echoPattern(size, 2);
  const messageOf = (p: Peer<EchoState>): Buffer => {
    const o = p.index % size;
    return pattern.subarray(o, o + size);
  };
  /** Replies seen in the current `data` call. */
  let got = 0;

  const ws = wsPeers<EchoState>(ctx, {
    open: (p) => loop.join(p),
    message(p, data, isBinary) {
      got++;
      if (verify && p.state.times !== null && (!isBinary || !data.equals(messageOf(p)))) meter.verifyErrors++;
    },
  }, true);

  const loop = echoLoop(ctx, (p, n) => {
    const sock = ws.socket(p), message = messageOf(p);
    for (let i = 0; i < n; i++) sock.send(message, true);
  });

  return {
    init: loop.init,
    // Connected once the 101 arrives; traffic starts then (`open` hook above).
    open: () => false,
    data(p, data) {
      got = 0;
      const consumed = ws.data(p, data);
      if (got > 0) loop.replies(p, got);
      return consumed;
    },
    startTraffic: (peers) => loop.start(peers),
    stopTraffic: () => loop.stop(),
    result: () => ws.stats(),
    client: ws.client,
  };
}

/** The `ws-echo` scenario (see the file comment). */
export const wsEcho: ScenarioSpec = {
  name: 'ws-echo',
  summary: 'binary WebSocket messages echoed, closed loop at --depth or open loop at --rate (c1m serve ws-echo)',
  options: ['size', 'depth', 'rate', 'verify', 'warmup', 'path', 'deflate', 'tls'],
  unit: 'msgs',
  create,
  summarize: ({ extras }) => ({ ws: mergeWsStats(extras) }),
};
