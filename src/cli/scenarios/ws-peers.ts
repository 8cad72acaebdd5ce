/**
 * The WebSocket side shared by `ws-hold` and `ws-echo`: one lean client handler
 * (`createWebSocketClientHandler`) per worker, through which the worker opens and drives every
 * connection (`Scenario.client`). A connection counts as connected once its 101 was accepted;
 * a failed opening handshake fails its connect under the client's code
 * (`ERR_C1M_WS_HANDSHAKE_*`, never retried).
 *
 * Per-connection state: the client keeps its own in `conn.tag`, and `ws.data` is never set (it
 * would cost a Map entry and an object per connection). What a scenario keeps lives in the
 * worker's `Peer` or in arrays indexed by the local peer index (`p.index - cfg.first`): here,
 * with `keepSockets`, the handles `connect` returned, the only ones usable outside a callback.
 *
 * Whose callback: `onMessage` runs only inside `data`, for the peer being fed (`current`), so
 * the hot path looks nothing up. The other callbacks, once per connection, find their peer with
 * `ctx.peer(ws.id)`; for those reached through `onClose` that holds because the worker hands the
 * client `onClose` before its own bookkeeping.
 *
 * Handshake timeout: none of the client's own; `--connect-timeout` bounds the handshake as it
 * bounds the TCP connect (what is still handshaking then counts as `CONNECT_PHASE_TIMEOUT`).
 */
import { createWebSocketClientHandler, type ClientWebSocket } from '../../index.js';
import { addCounts } from '../bench-stats.js';
import type { Peer, Scenario, ScenarioClient, ScenarioContext, WsStats } from './types.js';

/** What a WebSocket scenario does beyond connecting. */
export interface WsHooks<S> {
  /** The 101 of `p` was accepted; it counts as connected already (unless `held`). */
  open?(p: Peer<S>): void;
  /**
   * True: an upgraded connection does not count as connected yet; the scenario calls
   * `ctx.established` (or `ctx.fail`) itself, e.g. once a subscription is acknowledged.
   */
  held?: boolean;
  /** A whole message for `p`. Lifetime: `data` is valid only during the call. */
  message?(p: Peer<S>, data: Buffer, isBinary: boolean): void;
}

/** The WebSocket client of one worker, as a scenario uses it. */
export interface WsPeers<S> {
  /** For `Scenario.client`. */
  readonly client: ScenarioClient;
  /** Feed bytes of `p` to the client (its callbacks run for `p`); returns the bytes consumed. */
  data(p: Peer<S>, data: Buffer): number;
  /** The handle of `p`, to send outside a callback (only with `keepSockets`). */
  socket(p: Peer<S>): ClientWebSocket;
  /** This worker's figures. */
  stats(): WsStats;
}

const tally = (into: Record<string, number>, key: string | number): void => {
  into[key] = (into[key] ?? 0) + 1;
};

/**
 * A scenario whose WebSockets only listen (held, or fed by someone else's publishes): every
 * upgrade waits for its 101 (or the hooks' `held` condition) to count, and no traffic is sent.
 */
export function listeningScenario<S>(ws: WsPeers<S>): Scenario<S | undefined> {
  return {
    init: () => undefined,
    open: () => false,
    data: (p, data) => ws.data(p as Peer<S>, data),
    startTraffic() {},
    stopTraffic() {},
    result: () => ws.stats(),
    client: ws.client,
  };
}

/** The WebSocket client of one worker (see the file comment). */
export function wsPeers<S>(ctx: ScenarioContext, hooks: WsHooks<S>, keepSockets: boolean): WsPeers<S> {
  const { cfg } = ctx;
  const url = new URL(`${cfg.tls ? 'wss' : 'ws'}://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${cfg.port}${cfg.path}`);
  const stats: WsStats = { upgraded: 0, deflated: 0, handshake_failures: {}, protocol_errors: {}, close_codes: {} };
  /** Handles by local peer index (`keepSockets`). */
  const sockets: ClientWebSocket[] = keepSockets ? new Array<ClientWebSocket>(cfg.count) : [];
  /** The peer whose bytes the client is parsing (inside `data` only). */
  let current: Peer<S> | null = null;
  const peerOf = (ws: ClientWebSocket): Peer<S> | undefined => ctx.peer(ws.id) as Peer<S> | undefined;

  const handler = createWebSocketClientHandler({
    handshakeTimeout: 0,
    // --deflate: every message compressed, no context kept between messages (the default offer).
    perMessageDeflate: cfg.deflate ? { threshold: 0 } : false,
    onOpen(ws) {
      const p = peerOf(ws);
      if (p === undefined) return;
      stats.upgraded++;
      if (ws.extensions !== '') stats.deflated++;
      if (hooks.held !== true) ctx.established(p);
      hooks.open?.(p);
    },
    onMessage: hooks.message
      ? (_ws, data, isBinary) => hooks.message!(current!, data, isBinary)
      : undefined,
    onError(ws, err) {
      // A connect that never opened has no peer: the worker tallies (and retries) it itself.
      const p = peerOf(ws);
      if (p === undefined) return;
      const code = (err as { code?: string }).code ?? 'ERR_C1M_WS';
      if (p.established) tally(stats.protocol_errors, code);
      else if (ctx.fail(p, code)) tally(stats.handshake_failures, code);
    },
    onClose(ws, code) {
      const p = peerOf(ws);
      if (p?.established) tally(stats.close_codes, code);
    },
  });

  return {
    client: {
      handler,
      connect(reactor, target, index) {
        const ws = handler.connect(reactor, url, { address: target.host, localAddress: target.localAddress, tls: target.tls });
        if (keepSockets) sockets[index - cfg.first] = ws;
        return ws.id;
      },
    },
    data(p, data) {
      current = p;
      try {
        return handler.onData!(p.conn, data) as number;
      } finally {
        current = null;
      }
    },
    socket: (p) => sockets[p.index - cfg.first]!,
    stats: () => stats,
  };
}

/** Sum the workers' figures (`ScenarioSpec.summarize`). */
export function mergeWsStats(extras: unknown[]): WsStats {
  const out: WsStats = { upgraded: 0, deflated: 0, handshake_failures: {}, protocol_errors: {}, close_codes: {} };
  for (const e of extras as WsStats[]) {
    out.upgraded += e.upgraded;
    out.deflated += e.deflated ?? 0;
    addCounts(out.handshake_failures, e.handshake_failures);
    addCounts(out.protocol_errors, e.protocol_errors);
    addCounts(out.close_codes, e.close_codes);
  }
  return out;
}
