#!/usr/bin/env node
// What a WebSocket client process spends answering its server's heartbeat: pongs written by
// the engine (a handler without `onPing`, native backend) against pongs written by JS (the
// same handler with an `onPing` hook, which turns the engine's answer off).
//
// Model: a server process (`createWebSocketHandler({ pingInterval })`, native backend: the
// engine writes an empty ping to every connection silent for an interval) and, per trial, a
// fresh client process holding --conns connections that send nothing. Once all are open the
// client waits two intervals, then measures its own CPU (process.cpuUsage) over --window
// seconds. Pings answered by the engine are seen by no JS on either side, so the divisor is
// the expected count (conns x window / interval) in both modes; the JS mode also reports the
// pings it counted, and both report the client's crossings into JS. Trials alternate the
// modes. One JSON document on stdout, progress on stderr.
//
//   npm run build && node bench/ws-client-pong.mjs [--conns 10000] [--interval 1000]
//        [--window 10] [--trials 2] [--out FILE]
import { fork } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { REPO_DIR, emit, log, machineInfo, sleep } from './lib.mjs';

const lib = await import(pathToFileURL(path.join(REPO_DIR, 'dist', 'index.js')).href);
const { values: o } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    mode: { type: 'string', default: 'engine' },
    port: { type: 'string', default: '0' },
    conns: { type: 'string', default: '10000' },
    interval: { type: 'string', default: '1000' },
    window: { type: 'string', default: '10' },
    trials: { type: 'string', default: '2' },
    out: { type: 'string' },
  },
});
const conns = Number(o.conns), interval = Number(o.interval), windowS = Number(o.window);

if (o.role === 'server') {
  const handler = lib.createWebSocketHandler({ pingInterval: interval });
  const server = await lib.listen(handler, { port: 0, host: '127.0.0.1', backend: 'native' });
  process.send({ port: server.address.port });
} else if (o.role === 'client') {
  let open = 0, pings = 0;
  const handler = lib.createWebSocketClientHandler({
    onOpen: () => void open++,
    ...(o.mode === 'js' ? { onPing: () => void pings++ } : {}),
  });
  const reactor = lib.createReactor(handler, { backend: 'native' });
  const url = `ws://127.0.0.1:${o.port}/`;
  for (let i = 0; i < conns; i++) {
    handler.connect(reactor, url);
    if (i % 500 === 499) await sleep(20);
  }
  while (open < conns) await sleep(50);
  await sleep(2 * interval);
  const p0 = pings, b0 = reactor.stats.batches, c0 = process.cpuUsage(), t0 = performance.now();
  await sleep(windowS * 1000);
  const c1 = process.cpuUsage(), t1 = performance.now();
  process.send({ open, window_s: (t1 - t0) / 1000, user_s: (c1.user - c0.user) / 1e6, sys_s: (c1.system - c0.system) / 1e6, pings_seen_by_js: pings - p0, crossings: reactor.stats.batches - b0 });
  setTimeout(() => process.exit(0), 100);
} else {
  const server = fork(process.argv[1], ['--role', 'server', '--interval', String(interval)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port } = await new Promise((res) => server.once('message', res));
  const trials = [];
  try {
    for (let t = 0; t < Number(o.trials); t++) {
      for (const mode of t % 2 === 0 ? ['engine', 'js'] : ['js', 'engine']) {
        log(`trial ${t + 1}: ${mode}: ${conns} connections, ping every ${interval} ms`);
        const child = fork(process.argv[1], ['--role', 'client', '--mode', mode, '--port', String(port), '--conns', String(conns), '--interval', String(interval), '--window', String(windowS)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const r = await new Promise((res, rej) => child.once('message', res).once('exit', (c) => rej(new Error(`client exited ${c}`))));
        const expected = (conns * r.window_s * 1000) / interval;
        const row = { trial: t + 1, mode, ...r, pings_expected: Math.round(expected), cpu_us_per_ping: Math.round(((r.user_s + r.sys_s) * 1e6 / expected) * 100) / 100, user_us_per_ping: Math.round((r.user_s * 1e6 / expected) * 100) / 100 };
        log(JSON.stringify(row));
        trials.push(row);
        await new Promise((res) => child.once('exit', res));
        await sleep(2000);
      }
    }
  } finally {
    server.kill();
  }
  const doc = { benchmark: 'ws-client-pong', command: `node bench/ws-client-pong.mjs --conns ${conns} --interval ${interval} --window ${windowS} --trials ${o.trials}`, date: new Date().toISOString(), machine: machineInfo(), trials };
  emit(doc, o.out);
}
