/**
 * `ws-subscribe` (used by `c1m bench million --ws`, not on the command line): open WebSocket
 * connections to the gateway at `--path` (`/ws?topics=<topic>`: a subscription at connect) and
 * hold them. A connection counts as connected once the gateway acknowledged that subscription
 * (its `ack` with id 0, sent after `welcome`; protocol.ts): upgraded AND subscribed. An `error`
 * op before that (or a close) fails the connect under `GATEWAY_<code>`.
 *
 * Deliveries: every `msg` frame is one delivery. Its data is the publisher's `{"t":N}`, N the
 * publish time in ns on CLOCK_MONOTONIC (`process.hrtime.bigint()`, one clock for every process
 * of the box), so the latency recorded is publish -> this client had the whole frame. Every
 * subscriber of a publish gets the same frame, so the frame last parsed is kept and compared
 * (a memcmp) before parsing again: one parse per publish per worker, not per delivery.
 */
import { listeningScenario, mergeWsStats, wsPeers } from './ws-peers.js';
import type { ScenarioSpec } from './types.js';

const ACK = Buffer.from('{"op":"ack","id":0,');
const MSG = Buffer.from('{"op":"msg",');
const ERROR = Buffer.from('{"op":"error",');

const startsWith = (data: Buffer, prefix: Buffer): boolean =>
  data.length >= prefix.length && data.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;

/** The `ws-subscribe` scenario (see the file comment). */
export const wsSubscribe: ScenarioSpec = {
  name: 'ws-subscribe',
  summary: 'open N gateway WebSockets subscribed at connect, count each delivery (c1m bench million --ws)',
  options: ['path'],
  unit: 'deliveries',
  create(ctx) {
    const { meter } = ctx;
    /** The last delivery frame parsed and its publish time (ns, CLOCK_MONOTONIC); null: none. */
    let lastFrame: Buffer | null = null;
    let lastT = 0;
    const ws = wsPeers<unknown>(ctx, {
      held: true,
      message(p, data, isBinary) {
        if (isBinary) {
          meter.unexpectedMsgs++;
          return;
        }
        if (startsWith(data, MSG)) {
          if (lastFrame === null || !data.equals(lastFrame)) {
            let t: unknown;
            try {
              t = (JSON.parse(data.toString('utf8')) as { data?: { t?: unknown } }).data?.t;
            } catch {
              t = undefined;
            }
            if (typeof t !== 'number') {
              meter.unexpectedMsgs++;
              return;
            }
            lastFrame = Buffer.from(data); // `data` is valid only during the call
            lastT = t;
          }
          const ns = Number(process.hrtime.bigint()) - lastT;
          meter.record(Math.max(1, ns), 1);
          meter.msgsTotal++;
          if (meter.measuring) meter.msgs++;
        } else if (startsWith(data, ACK)) {
          ctx.established(p);
        } else if (startsWith(data, ERROR) && !p.established) {
          let code = 'error';
          try {
            code = String((JSON.parse(data.toString('utf8')) as { code?: unknown }).code ?? 'error');
          } catch {
            // keep the generic code
          }
          ctx.fail(p, `GATEWAY_${code.toUpperCase()}`);
        }
        // `welcome`, `pong`, acks of later ops: nothing to count.
      },
    }, false);
    // Connected once the subscription is acknowledged (`held`); the publish comes from the
    // parent, the clients only listen.
    return listeningScenario(ws);
  },
  summarize: ({ extras }) => ({ ws: mergeWsStats(extras) }),
};
