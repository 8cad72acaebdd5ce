/**
 * `ws-hold`: open the connections, complete a WebSocket opening handshake on each (`GET --path`
 * with `Upgrade: websocket`), and hold them idle. A connection counts as connected once its 101
 * was accepted; handshake failures count as failed connects under the client's code.
 */
import { mergeWsStats, wsPeers } from './ws-peers.js';
import type { ScenarioSpec } from './types.js';

/** The `ws-hold` scenario. */
export const wsHold: ScenarioSpec = {
  name: 'ws-hold',
  summary: 'open N WebSockets (handshake included) and hold them idle (c1m serve ws-echo)',
  options: ['path', 'deflate', 'tls'],
  unit: null,
  create(ctx) {
    const ws = wsPeers(ctx, {}, false);
    return {
      init: () => undefined,
      // Connected once the 101 arrives.
      open: () => false,
      data: (p, data) => ws.data(p, data),
      startTraffic() {},
      stopTraffic() {},
      result: () => ws.stats(),
      client: ws.client,
    };
  },
  summarize: ({ extras }) => ({ ws: mergeWsStats(extras) }),
};
