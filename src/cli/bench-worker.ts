/**
 * One `c1m bench` worker process (forked by `c1m bench`): opens its share of the connections
 * on one native client reactor, runs the scenario on them, and reports to the parent over IPC.
 *
 * Model: the parent drives the phases, the worker only reacts:
 *   config -> (ready) -> go: connect phase, at most `concurrency` connects in flight, transient
 *   failures retried with exponential backoff -> (connected) once every connection settled ->
 *   end-connect: pending connects abandoned -> traffic: the scenario starts sending ->
 *   measure: the measured window opens -> [quiesce: sending stops, the window closes, what is
 *   in flight still counts] -> stop: (result), then every connection closes and the process
 *   exits. Progress (counters plus an interval latency histogram) goes up 4 times a second.
 *   `c1m bench million` also uses `go` with `upTo` (grow to that many connections, again after
 *   each step), `traffic` once per step, and `snapshot` (a result without stopping, after
 *   which the measured figures restart from zero).
 *
 * Invariants: every connection index in [first, first + count) ends in exactly one of
 * `connected` or `failed` (once asked for); a pending connect (handshake included) holds one
 * in-flight slot until it counts as connected or failed; latency is recorded only for
 * messages whose send time this process stamped (or, for broadcast, carried in the message).
 *
 * What a scenario does with its connections lives in `scenarios/` (one module each). A scenario
 * whose connections belong to a protocol client (`Scenario.client`: the WebSocket client) gets
 * composed under the worker's handler: connections are opened through the client (which queues
 * its upgrade request), bytes reach it through the scenario's `data`, and the engine's other
 * events go to it directly, `onClose` before the worker's own bookkeeping, so the client can
 * still report a handshake failure with its code. The worker stays the reactor's one handler and
 * the one owner of connect slots, retries and counters.
 */
import { performance } from 'node:perf_hooks';
import { createReactor, IdMap, setBatchScheduling, type CloseReason, type Connection, type Handler, type Reactor, type TlsConnectOptions } from '../index.js';
import { encodeHistogram, latencyHistogram, loadHistograms } from './bench-stats.js';
import type { ParentMessage, WorkerConfig, WorkerCounters, WorkerMessage, WorkerResult } from './bench-ipc.js';
import { scenario as scenarioByName, type ConnectTarget, type Meter, type Peer, type ScenarioContext } from './scenarios/index.js';

/** Errors worth another connect attempt. */
const TRANSIENT = new Set(['EADDRNOTAVAIL', 'EAGAIN', 'ETIMEDOUT', 'ECONNREFUSED']);
const BACKOFF_MS = 100;
/** Progress reports: often enough that the parent's once-a-second line is never a period behind. */
const PROGRESS_MS = 250;

type AnyPeer = Peer<unknown>;

function run(cfg: WorkerConfig, send: (m: WorkerMessage, cb?: () => void) => void): (m: ParentMessage) => void {
  const spec = scenarioByName(cfg.scenario);
  if (!spec) throw new Error(`unknown scenario "${cfg.scenario}"`);
  // Both keyed by connection id (an `IdMap`: one lookup per delivery, where a Map hashed a
  // HeapNumber id and a million's clients spent ~4 % of their main threads in the lookup).
  /** Open connections, handshaking ones included. */
  const states = new IdMap<AnyPeer>();
  /** Connects in progress (TCP, or the scenario's handshake): id -> global index, attempt, failure code. */
  const pending = new IdMap<{ index: number; attempt: number; code?: string }>();
  const retryTimers = new Set<NodeJS.Timeout>();
  const retryReady: { index: number; attempt: number }[] = [];
  const errors: Record<string, number> = {};
  const closeErrors: Record<string, number> = {};
  // Latencies go into `interval` only; every PROGRESS_MS (and at each phase edge) it is
  // rolled into `total` (while measuring) and into the next progress report. One record per
  // value keeps the hot path cheap; the edges keep the measured window exact.
  // `measured` holds records whose sender decided they count (broadcast): rolled into `total`
  // whatever this worker's own window says.
  const total = latencyHistogram(), interval = latencyHistogram(), measured = latencyHistogram(), report = latencyHistogram(), lag = latencyHistogram();
  const meter: Meter = {
    record(ns, count) {
      interval.recordValueWithCount(ns, count);
    },
    recordMeasured(ns, count) {
      measured.recordValueWithCount(ns, count);
    },
    recordLag(ns) {
      if (this.measuring) lag.recordValue(ns);
    },
    msgsTotal: 0, msgs: 0, measuring: false, verifyErrors: 0, unexpectedMsgs: 0, sendSkipped: 0,
  };
  let phase: 'idle' | 'connect' | 'connected' | 'stop' = 'idle';
  let trafficOn = false;
  /** Connections of this worker's share asked for so far: [first, first + target). */
  let target = 0;
  let next = 0, inflight = 0, started = 0, connected = 0, failed = 0, retries = 0;
  let tlsHandshakes = 0, tlsResumed = 0;
  // --tls: one options object for every connect of this worker, so they share one TLS context
  // (and, with --tls-resume, its kept sessions).
  const tls: TlsConnectOptions | undefined = cfg.tls
    ? { ca: cfg.tls.ca, servername: cfg.tls.servername, rejectUnauthorized: !cfg.tls.insecure, resume: cfg.tls.resume }
    : undefined;
  let connectReported = false, pumpQueued = false;
  let windowStart = 0, windowEnd = 0;
  let progressTimer: NodeJS.Timeout | undefined;

  const tally = (into: Record<string, number>, code: string): void => {
    into[code] = (into[code] ?? 0) + 1;
  };
  const counters = (): WorkerCounters => ({
    started, connected, failed, pending: inflight + retryTimers.size + retryReady.length, open: states.size, retries, msgsTotal: meter.msgsTotal,
  });
  /** The first reason given for each failure code (OpenSSL's, for a TLS failure). */
  const errorSamples: Record<string, string> = {};
  const fail = (code: string, why?: string): void => {
    failed++;
    tally(errors, code);
    if (why !== undefined && errorSamples[code] === undefined) errorSamples[code] = why;
  };

  const ctx: ScenarioContext = {
    cfg,
    meter,
    established(p) {
      if (p.established || !pending.delete(p.conn.id)) return;
      p.established = true;
      inflight--;
      connected++;
      schedulePump();
    },
    fail(p, code) {
      const e = pending.get(p.conn.id);
      // Once the connect phase is over, a pending connect counts as CONNECT_PHASE_TIMEOUT.
      const counts = e !== undefined && phase === 'connect';
      if (counts) e.code = code;
      p.conn.destroy();
      return counts;
    },
    peer: (id) => states.get(id),
    target: (index) => targetOf(index),
  };
  const scenario = spec.create(ctx);
  const client = scenario.client;

  /** The worker's side of a connection's close: its peer, its connect slot, the tallies. */
  const closed = (conn: Connection, reason: CloseReason): void => {
    const p = states.get(conn.id);
    if (p) {
      states.delete(conn.id);
      p.open = false;
      scenario.close?.(p);
    }
    const e = pending.get(conn.id);
    if (e) {
      pending.delete(conn.id);
      inflight--;
      // A code given by `ctx.fail` (a failed handshake) wins: it was set during the phase.
      const code = e.code ?? (phase !== 'connect' ? 'CONNECT_PHASE_TIMEOUT' : (reason.code ?? reason.kind));
      // Only a connect that never opened is retried; a failed handshake is final.
      if (phase === 'connect' && !p && TRANSIENT.has(code) && e.attempt < cfg.retries) {
        retries++;
        const delay = BACKOFF_MS * 2 ** e.attempt * (0.5 + Math.random());
        const timer = setTimeout(() => {
          retryTimers.delete(timer);
          retryReady.push({ index: e.index, attempt: e.attempt + 1 });
          schedulePump();
        }, delay);
        retryTimers.add(timer);
      } else {
        fail(code, reason.error?.message);
      }
      schedulePump();
      return;
    }
    if (!p || phase === 'stop') return;
    tally(closeErrors, reason.code ?? reason.kind);
  };

  const handler: Handler = {
    onOpen(conn) {
      const e = pending.get(conn.id);
      if (!e) return;
      if (tls) {
        tlsHandshakes++;
        if (conn.tls?.resumed) tlsResumed++;
      }
      const p: AnyPeer = { conn, index: e.index, open: true, established: false, state: scenario.init(e.index) };
      states.set(conn.id, p);
      if (scenario.open(p, trafficOn) !== false) ctx.established(p);
    },
    onData(conn, data) {
      const p = states.get(conn.id);
      return p ? scenario.data(p, data) : undefined;
    },
    onClose: client?.handler.onClose
      ? (conn, reason) => {
        try {
          client.handler.onClose!(conn, reason);
        } finally {
          closed(conn, reason);
        }
      }
      : closed,
  };
  if (client) {
    // The events the worker has no use for go to the protocol client as they come. Only those
    // it defines: a missing one keeps the engine's default (onShutdown: close every connection).
    const h = client.handler;
    if (h.onDrain) handler.onDrain = h.onDrain.bind(h);
    if (h.onEnd) handler.onEnd = h.onEnd.bind(h);
    if (h.onTimeout) handler.onTimeout = h.onTimeout.bind(h);
    if (h.onShutdown) handler.onShutdown = h.onShutdown.bind(h);
    if (h.onReactor) handler.onReactor = h.onReactor.bind(h);
  }

  const reactor: Reactor = createReactor(
    handler,
    {
      backend: 'native',
      // Close events past one batch (4096) reach JS one batch per timer tick: a 50 ms tick
      // keeps tearing down 20,000 connections well under a second (250 ms: ~2.5 s).
      timerResolution: 50,
      onError: (err) => process.stderr.write(`c1m bench worker ${cfg.worker}: ${err.stack ?? err.message}\n`),
    },
  );

  // One connect target per source address, made once: a connect allocates no options object.
  const targets = cfg.sources.length > 0
    ? cfg.sources.map((localAddress) => ({ host: cfg.host, port: cfg.port, localAddress, tls }))
    : [{ host: cfg.host, port: cfg.port, localAddress: undefined, tls }];
  function targetOf(index: number): ConnectTarget {
    return targets[index % targets.length]!;
  }

  const startConnect = (index: number, attempt: number): void => {
    const target = targetOf(index);
    let id: number;
    try {
      id = client ? client.connect(reactor, target, index) : reactor.connect(target).id;
    } catch (err) {
      fail((err as { code?: string }).code ?? 'ERR_CONNECT');
      return;
    }
    inflight++;
    pending.set(id, { index, attempt });
  };

  // Connects start outside event callbacks (never re-entering the reactor from a batch).
  function schedulePump(): void {
    if (pumpQueued || phase !== 'connect') return;
    pumpQueued = true;
    setImmediate(pump);
  }

  function pump(): void {
    pumpQueued = false;
    if (phase !== 'connect') return;
    while (inflight < cfg.concurrency) {
      const retry = retryReady.pop();
      if (retry) startConnect(retry.index, retry.attempt);
      else if (next < target) {
        started++;
        startConnect(cfg.first + next++, 0);
      } else break;
    }
    if (!connectReported && next === target && inflight === 0 && retryTimers.size === 0 && retryReady.length === 0) {
      connectReported = true;
      send({ type: 'connected', counters: counters() });
    }
  }

  const endConnect = (): void => {
    if (phase !== 'connect') return;
    phase = 'connected';
    // Whatever has not opened by now failed: never started, waiting for a retry, or in flight.
    for (let i = next; i < target; i++) fail('CONNECT_PHASE_TIMEOUT');
    next = target;
    for (const t of retryTimers) {
      clearTimeout(t);
      fail('CONNECT_PHASE_TIMEOUT');
    }
    retryTimers.clear();
    for (let r = retryReady.pop(); r; r = retryReady.pop()) fail('CONNECT_PHASE_TIMEOUT');
    for (const [id] of [...pending.entries()]) reactor.connection(id).destroy();
    // Connected: from here the connections mostly wait, and a timer poll takes what arrived
    // meanwhile without a wake-up per event (cfg.pollMs; 0 wakes per event).
    reactor.setPollInterval?.(cfg.pollMs ?? 0);
    // Started with --expose-gc (`c1m bench million`'s clients): collect the ramp's garbage now,
    // while the run holds, rather than have V8 mark and sweep it during the measured traffic.
    (globalThis as { gc?: () => void }).gc?.();
  };

  const roll = (): void => {
    if (measured.totalCount !== 0) {
      total.add(measured);
      report.add(measured);
      measured.reset();
    }
    if (interval.totalCount === 0) return;
    if (meter.measuring) total.add(interval);
    report.add(interval);
    interval.reset();
  };

  const makeResult = (): WorkerResult => {
    roll();
    const end = windowEnd || performance.now();
    const cpu = process.cpuUsage();
    return {
      ...counters(),
      errors: { ...errors }, errorSamples: { ...errorSamples }, closeErrors: { ...closeErrors }, tlsHandshakes, tlsResumed,
      msgs: meter.msgs,
      windowS: windowStart > 0 ? (end - windowStart) / 1000 : 0,
      verifyErrors: cfg.verify ? meter.verifyErrors : null,
      unexpectedMsgs: meter.unexpectedMsgs,
      sendSkipped: meter.sendSkipped,
      hist: encodeHistogram(total),
      lagHist: encodeHistogram(lag),
      extra: scenario.result?.() ?? null,
      cpuUserS: cpu.user / 1e6, cpuSysS: cpu.system / 1e6,
      rssKb: Math.round(process.memoryUsage.rss() / 1024),
    };
  };

  const stop = (): void => {
    if (phase === 'stop') return;
    endConnect();
    phase = 'stop';
    windowEnd ||= performance.now();
    const result = makeResult();
    meter.measuring = false;
    scenario.stopTraffic();
    clearInterval(progressTimer);
    send({ type: 'result', result }, () => {
      void reactor.close(3000).then(() => process.exit(0));
    });
  };

  return (m) => {
    switch (m.type) {
      case 'go': {
        const upTo = Math.min(cfg.count, m.upTo ?? cfg.count);
        if (phase === 'stop' || phase === 'connect' || upTo < target) return;
        if (phase === 'idle') {
          progressTimer = setInterval(() => {
            roll();
            // A run that reads no per-interval latency (`c1m bench million`) is not sent one:
            // encoding it here and decoding it in the parent cost a million's broadcast ~6 %
            // of the box (52 workers, 4 times a second).
            send({ type: 'progress', counters: counters(), hist: cfg.progressLatency === false ? null : encodeHistogram(report) });
            report.reset();
          }, PROGRESS_MS);
        }
        phase = 'connect';
        // Connects wake per event unless told otherwise (cfg.connectPollMs): each step of a
        // handshake is answered at once.
        reactor.setPollInterval?.(cfg.connectPollMs ?? 0);
        target = upTo;
        connectReported = false;
        schedulePump();
        break;
      }
      case 'end-connect':
        endConnect();
        break;
      case 'traffic':
        if (phase === 'stop') return;
        trafficOn = true;
        scenario.startTraffic([...states.entries()].map(([, p]) => p).filter((p) => p.established));
        break;
      case 'measure':
        roll();
        meter.measuring = true;
        windowStart = performance.now();
        break;
      case 'quiesce':
        // The window closes and sending stops; replies still in flight keep counting.
        windowEnd ||= performance.now();
        scenario.stopTraffic();
        break;
      case 'snapshot': {
        send({ type: 'snapshot', result: makeResult() });
        total.reset();
        lag.reset();
        meter.msgs = 0;
        windowStart = meter.measuring ? performance.now() : 0;
        windowEnd = 0;
        break;
      }
      case 'stop':
        stop();
        break;
    }
  };
}

if (process.send) {
  const send = (m: WorkerMessage, cb?: () => void): void => {
    if (process.connected) process.send!(m, undefined, undefined, cb ? () => cb() : undefined);
  };
  // Ctrl-C reaches the whole process group: the parent decides when workers stop.
  process.on('SIGINT', () => {});
  // A parent that went away without a word: nothing left to report to.
  process.on('disconnect', () => process.exit(0));
  let handle: ((m: ParentMessage) => void) | undefined;
  let configured = false;
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'config' && !configured) {
      // The parent sends nothing else before `ready`.
      configured = true;
      loadHistograms().then(() => {
        if (m.config.batchScheduling) setBatchScheduling(true);
        handle = run(m.config, send);
        send({ type: 'ready', pid: process.pid });
      }).catch((err: Error) => {
        send({ type: 'fatal', message: err.message }, () => process.exit(1));
      });
      return;
    }
    handle?.(m);
  });
}
