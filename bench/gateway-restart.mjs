#!/usr/bin/env node
// A gateway restart as its clients see it: every client of gateway A reconnects to gateway B the
// moment A closes it, with A closing all at once (`--shutdown-spread 0`) or spread over S ms.
// One JSON document on stdout, progress on stderr.
//
//   npm run build && node bench/gateway-restart.mjs [--clients 9000] [--spread 5000]
//        [--rounds 2] [--out FILE]
//
// Model: two gateway processes (`c1m serve gateway --no-auth`, heartbeat off, one process
// each), A with the spread under test; a client process (`--role clients`) holding --clients
// raw WebSockets on A, subscribed to `t`. A gets SIGTERM; each client, when A's close frame (or
// its FIN) arrives, connects to B at once (no backoff: the worst case a spread exists for) and
// is back when B's ack for `t` arrives. A connect to B that fails is retried after 100-200 ms.
// Measured per client: out of service = back - closed (wall clock, one machine); the closes'
// span after SIGTERM; reconnects per second at B (the peak over 100 ms windows); B's CPU over
// the window. Trials alternate the two spreads, fresh gateways for each.
import { fork } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { emit, freePort, log, machineInfo, round, sleep, startGatewayCli, treeCpuSeconds, wsUpgradeRequest } from './lib.mjs';

const HOST = '127.0.0.1';
const WINDOW_MS = 100;
/** Wall-clock ms with sub-ms precision (comparable across processes of one machine). */
const wallMs = () => performance.timeOrigin + performance.now();

const { values: opt } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    a: { type: 'string' },
    b: { type: 'string' },
    clients: { type: 'string', default: '9000' },
    spread: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '2' },
    out: { type: 'string' },
  },
});

/**
 * Hold `n` WebSockets on port `a` subscribed to `t`; `ready` once all are acked. Each one that
 * A closes reconnects to `b`; `done` once all are back, with each client's closed/back times.
 */
async function clientRole(a, b, n) {
  const closedAt = new Float64Array(n), backAt = new Float64Array(n);
  let acked = 0, back = 0, retries = 0;
  /** Open client i on `port`; `onAck` once subscribed; `onGone` when the server closes it. */
  const open = (i, port, onAck, onGone) => {
    const s = net.connect(port, HOST);
    let text = '', subscribed = false, gone = false;
    const leave = (failed) => {
      if (gone) return;
      gone = true;
      s.destroy();
      onGone(failed && !subscribed);
    };
    s.setEncoding('latin1');
    s.on('data', (d) => {
      if (subscribed) return leave(false); // nothing is published: anything now is A's close frame
      text += d;
      if (text.includes('"op":"ack"')) {
        subscribed = true;
        onAck();
      }
    });
    s.on('end', () => leave(false));
    s.on('error', () => leave(true));
    s.on('close', () => leave(true));
    s.write(wsUpgradeRequest(HOST, '/ws?topics=t'));
  };
  const toB = (i) => open(i, b, () => {
    backAt[i] = wallMs();
    if (++back === n) report();
  }, (failed) => {
    if (!failed) return; // B closed it after the ack: the trial is over
    retries++;
    setTimeout(() => toB(i), 100 + Math.random() * 100);
  });
  const report = () => process.send({ done: true, closedAt: Array.from(closedAt), backAt: Array.from(backAt), retries });
  for (let i = 0; i < n; i++) {
    open(i, a, () => acked++, () => {
      closedAt[i] = wallMs();
      toB(i);
    });
    if (i % 200 === 199) await sleep(20); // under the listen backlog
  }
  while (acked < n) await sleep(20);
  process.send({ ready: true });
  process.on('message', (m) => m === 'exit' && process.exit(0));
}

/** The p-th percentile of sorted `xs`. */
const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

async function trial(n, spread) {
  const [pa, pb] = [await freePort(HOST), await freePort(HOST)];
  const common = ['--no-auth', '--ping-interval', '0'];
  const gwA = await startGatewayCli(HOST, pa, [...common, '--shutdown-spread', String(spread)]);
  const gwB = await startGatewayCli(HOST, pb, common);
  const clients = fork(fileURLToPath(import.meta.url), ['--role', 'clients', '--a', String(pa), '--b', String(pb), '--clients', String(n)]);
  const next = () => new Promise((r) => clients.once('message', r));
  try {
    await next();
    await sleep(500);
    const b0 = treeCpuSeconds(gwB.pid);
    const aExited = new Promise((r) => gwA.once('exit', () => r(wallMs())));
    const t0 = wallMs();
    gwA.kill('SIGTERM');
    const done = await next();
    const b1 = treeCpuSeconds(gwB.pid);
    const aExit = await aExited;
    const closed = done.closedAt.map((x) => x - t0).sort((x, y) => x - y);
    const backs = done.backAt.map((x) => x - t0).sort((x, y) => x - y);
    const out = done.backAt.map((x, i) => x - done.closedAt[i]).sort((x, y) => x - y);
    const perWindow = new Map();
    for (const x of backs) perWindow.set(Math.floor(x / WINDOW_MS), (perWindow.get(Math.floor(x / WINDOW_MS)) ?? 0) + 1);
    const run = {
      spread_ms: spread, clients: n,
      first_close_ms: round(closed[0], 1), last_close_ms: round(closed.at(-1), 1), last_back_ms: round(backs.at(-1), 1),
      a_exit_ms: round(aExit - t0, 0),
      out_of_service_ms: { p50: round(pct(out, 50), 1), p99: round(pct(out, 99), 1), max: round(out.at(-1), 1) },
      peak_reconnects_per_s: Math.max(...perWindow.values()) * (1000 / WINDOW_MS),
      connect_retries: done.retries,
      b_cpu_ms: round((b1 - b0) * 1000, 0),
    };
    log(`[restart] ${JSON.stringify(run)}`);
    return run;
  } finally {
    clients.send('exit');
    gwA.kill('SIGKILL');
    gwB.kill('SIGTERM');
    await sleep(500);
  }
}

async function main() {
  const n = Number(opt.clients), spread = Number(opt.spread), rounds = Number(opt.rounds);
  const load0 = os.loadavg();
  const runs = [];
  for (let r = 1; r <= rounds; r++) {
    for (const s of [0, spread]) runs.push({ round: r, ...(await trial(n, s)) });
  }
  emit({ bench: 'gateway-restart', machine: machineInfo(), loadavg_start: load0, loadavg_end: os.loadavg(), clients: n, spread_ms: spread, runs }, opt.out);
  process.exit(0);
}

if (opt.role === 'clients') await clientRole(Number(opt.a), Number(opt.b), Number(opt.clients));
else await main();
