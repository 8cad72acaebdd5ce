/**
 * `connect`: the connect (and, with `--tls`, handshake) rate. The N connections of the connect
 * phase are held as `hold` holds them; once traffic starts, N loops on a reactor of the
 * scenario's own each connect, wait for the open (the TLS handshake completed, verified as
 * `--tls-ca`/`--insecure` say), close gracefully (close_notify and FIN: the server completes its
 * side of the handshake, and a TLS 1.3 session ticket is still read), and connect again once
 * the connection is gone. A completed open is one counted message: `msgs_per_s` is connects
 * (handshakes) per second, `latency` the time from connect() to the open. With `--tls-resume`
 * the loops share the worker's `tls` options object, so they resume sessions
 * (`connect.resumed`). A failed connect is tallied by code in `connect.failures` and the loop
 * goes on.
 */
import { performance } from 'node:perf_hooks';
import { createReactor, type Reactor } from '../../index.js';
import { addCounts } from '../bench-stats.js';
import type { ConnectTarget, ScenarioSpec } from './types.js';

/** `connect` figures of a run. */
export interface ConnectStats {
  /** Connects of the loops that failed, by code, every phase. */
  failures: Record<string, number>;
  /** `--tls`: handshakes of the loops that resumed a session, every phase. */
  resumed: number;
}

/** The `connect` scenario (see the file comment). */
export const connect: ScenarioSpec = {
  name: 'connect',
  summary: 'N loops of connect (+ TLS handshake with --tls), open, close: connects (handshakes) per second',
  options: ['warmup', 'tls'],
  unit: 'connects',
  create(ctx) {
    const { cfg, meter } = ctx;
    const stats: ConnectStats = { failures: {}, resumed: 0 };
    /** connect() time by connection id, for the loops in flight. */
    const started = new Map<number, number>();
    let running = false;
    let loops: Reactor | undefined;
    let target: ConnectTarget | undefined;

    let resume = false;
    const next = (): void => {
      if (!running || !loops || !target) return;
      try {
        const conn = loops.connect(target);
        started.set(conn.id, performance.now());
      } catch (err) {
        const code = (err as { code?: string }).code ?? 'ERR_CONNECT';
        stats.failures[code] = (stats.failures[code] ?? 0) + 1;
        setTimeout(next, 100); // EMFILE and the like: give it a moment
      }
    };

    return {
      init: () => undefined,
      open() {},
      data() {},
      startTraffic() {
        if (running) return;
        running = true;
        // The worker's target, its `tls` object included (one per worker: shared context and sessions).
        target = ctx.target(cfg.first);
        resume = cfg.tls?.resume === true;
        loops ??= createReactor({
          onOpen(conn) {
            const t0 = started.get(conn.id);
            if (t0 === undefined) return;
            meter.record(Math.max(1, Math.round((performance.now() - t0) * 1e6)), 1);
            meter.msgsTotal++;
            if (meter.measuring) meter.msgs++;
            if (conn.tls?.resumed) stats.resumed++;
            // With --tls-resume the close reads on for the server's TLS 1.3 session tickets
            // (they come after the handshake) until the server's close_notify or FIN.
            conn.close();
          },
          onClose(conn, reason) {
            if (!started.delete(conn.id)) return;
            if (reason.kind !== 'local' && reason.kind !== 'end') {
              const code = reason.code ?? reason.kind;
              stats.failures[code] = (stats.failures[code] ?? 0) + 1;
            }
            next();
          },
        }, { backend: 'native', timerResolution: 50 });
        for (let i = 0; i < cfg.count; i++) next();
      },
      stopTraffic() {
        if (!running) return;
        running = false;
        void loops?.close(1000);
      },
      result: () => stats,
    };
  },
  summarize: ({ extras }) => {
    const failures: Record<string, number> = {};
    let resumed = 0;
    for (const e of extras as ConnectStats[]) {
      addCounts(failures, e.failures);
      resumed += e.resumed;
    }
    return { connect: { failures, resumed } };
  },
};
