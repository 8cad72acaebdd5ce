/**
 * `ws-hold`: open the connections, complete a WebSocket opening handshake on each (`GET --path`
 * with `Upgrade: websocket`), and hold them idle. A connection counts as connected once its 101
 * was accepted; handshake failures count as failed connects under the client's code.
 */
import { listeningScenario, mergeWsStats, wsPeers } from './ws-peers.js';
import type { ScenarioSpec } from './types.js';

/** The `ws-hold` scenario. */
export const wsHold: ScenarioSpec = {
  name: 'ws-hold',
  summary: 'open N WebSockets (handshake included) and hold them idle (c1m serve ws-echo)',
  options: ['path', 'deflate', 'tls'],
  unit: null,
  create(ctx) {
    // Connected once the 101 arrives.
    return listeningScenario(wsPeers(ctx, {}, false));
  },
  summarize: ({ extras }) => ({ ws: mergeWsStats(extras) }),
};
