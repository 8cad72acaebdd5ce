/**
 * `http`: keep-alive HTTP/1.1 GET requests, `depth` pipelined per connection (closed loop: a
 * new request leaves for each response), against `c1m serve http` or any HTTP/1.1 server.
 * Responses are framed incrementally (`ResponseScanner`); each one pops the oldest send time
 * (responses come back in request order), so latency is per request. Every status is tallied;
 * a response the scanner cannot frame drops the connection (`parse_errors`).
 */
import { performance } from 'node:perf_hooks';
import { ResponseScanner } from './http-response.js';
import { answer, SendTimes } from './send-times.js';
import type { HttpStats, Peer, Scenario, ScenarioContext, ScenarioSpec } from './types.js';

interface HttpState {
  scanner: ResponseScanner;
  /** Send times of the requests in flight; null until traffic starts on this connection. */
  times: SendTimes | null;
}

function create(ctx: ScenarioContext): Scenario<HttpState> {
  const { meter, cfg } = ctx;
  const host = cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host;
  const one = Buffer.from(`GET ${cfg.path} HTTP/1.1\r\nHost: ${host}:${cfg.port}\r\n\r\n`, 'latin1');
  const burst = Buffer.concat(Array.from({ length: cfg.depth }, () => one));
  const stats: HttpStats = { status: {}, non_2xx: 0, parse_errors: 0 };
  const onStatus = (status: number): void => {
    stats.status[status] = (stats.status[status] ?? 0) + 1;
    if (status < 200 || status > 299) stats.non_2xx++;
  };
  const record = (ns: number, count: number): void => meter.record(ns, count);
  let sending = false;

  const send = (p: Peer<HttpState>, n: number, now: number): void => {
    const times = p.state.times!;
    for (let i = 0; i < n; i++) times.push(now);
    if (n === cfg.depth) {
      p.conn.write(burst);
    } else {
      for (let i = 0; i < n; i++) p.conn.write(one);
    }
  };

  const begin = (p: Peer<HttpState>): void => {
    p.state.times = new SendTimes(cfg.depth);
    send(p, cfg.depth, performance.now());
  };

  return {
    init: () => ({ scanner: new ResponseScanner(onStatus), times: null }),
    open(p, trafficOn) {
      if (trafficOn && sending) begin(p);
    },
    data(p, data) {
      const s = p.state;
      const done = s.scanner.execute(data);
      if (done > 0) {
        const now = performance.now();
        const answered = s.times ? answer(s.times, done, now, record) : 0;
        meter.unexpectedMsgs += done - answered;
        meter.msgsTotal += answered;
        if (meter.measuring) meter.msgs += answered;
        if (sending && answered > 0 && !s.scanner.closing) send(p, answered, now);
      }
      if (s.scanner.error !== null) {
        stats.parse_errors++;
        p.conn.destroy();
      }
    },
    startTraffic(peers) {
      if (sending) return;
      sending = true;
      for (const p of peers) begin(p);
    },
    stopTraffic() {
      sending = false;
    },
    result: () => stats,
  };
}

/** The `http` scenario (see the file comment). */
export const http: ScenarioSpec = {
  name: 'http',
  summary: 'keep-alive HTTP/1.1 GET requests, --depth pipelined per connection (c1m serve http)',
  options: ['depth', 'warmup', 'path', 'tls'],
  unit: 'requests',
  create,
  summarize({ extras }) {
    const out: HttpStats = { status: {}, non_2xx: 0, parse_errors: 0 };
    for (const e of extras as HttpStats[]) {
      for (const [code, n] of Object.entries(e.status)) out.status[code] = (out.status[code] ?? 0) + n;
      out.non_2xx += e.non_2xx;
      out.parse_errors += e.parse_errors;
    }
    return { http: out };
  },
};
