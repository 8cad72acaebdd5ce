#!/usr/bin/env node
// Broadcast to many WebSocket subscribers from one server process: deliveries per second and
// the time until the last subscriber has a message, for c1m (`handler.publish(topic)`), the `ws`
// package (a loop of `send` over its clients) and uWebSockets.js (`app.publish`, npm
// `uwebsockets@3.0.6`). One JSON document on stdout, progress on stderr.
//
//   npm run build && node bench/broadcast-peers.mjs [--targets c1m,uws,ws] [--subscribers 19000]
//        [--sizes 64,1024] [--rounds 10] [--burst 1] [--client-procs 2] [--srcips 4] [--pin]
//
// Processes: the server (`--role server --target T`) and --client-procs subscriber processes
// (`--role clients`, on the c1m client engine, subscribers / procs connections each: a process
// may hold 20,000 fds) are children of this script, which drives them over IPC. Every
// subscriber counts the messages it receives; nothing is sampled.
//
// A round: the server is told to publish --burst messages of one size back to back (in one turn
// of its event loop), each to every subscriber; the round ends when every client process has
// counted all of them. t0 is read by the server just before its first publish, and each client
// process reads the time when its count reached the target (CLOCK_MONOTONIC,
// process.hrtime, comparable across processes). Per round: time to the last subscriber =
// max(client times) - t0; deliveries/s = burst x subscribers / that time; and the server
// process's CPU (process.cpuUsage, every thread) over the measured rounds per delivery, which is
// the server's own cost when the subscribers' reads set the time (--pin). Reported: medians
// over the rounds, after one warm-up round. `--pin` starts the server under `taskset -c 0` and
// the subscriber processes under `taskset -c 1` (all their threads), so the server's fan-out does
// not share a CPU with the subscribers that count it. With --burst 1 the rounds measure one message's
// fan-out; with larger bursts, how the server handles a burst (uWebSockets.js merges the
// messages of one loop turn per subscriber into one send; c1m and ws send each message).
import { fork } from 'node:child_process';
import { parseArgs } from 'node:util';
import os from 'node:os';
import { log, median, rpc, sleep } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    target: { type: 'string', default: 'c1m' },
    targets: { type: 'string', default: 'c1m,uws,ws' },
    subscribers: { type: 'string', default: '19000' },
    sizes: { type: 'string', default: '64,1024' },
    rounds: { type: 'string', default: '10' },
    burst: { type: 'string', default: '1' },
    'client-procs': { type: 'string', default: '2' },
    srcips: { type: 'string', default: '4' },
    port: { type: 'string', default: '0' },
    count: { type: 'string', default: '0' },
    first: { type: 'string', default: '0' },
    pin: { type: 'boolean', default: false },
  },
  strict: true,
});

const now = () => Number(process.hrtime.bigint());

/** fork() options that start the child under `taskset -c cpu` with --pin (every thread inherits it). */
const pinned = (cpu) => (opt.pin ? { execPath: 'taskset', execArgv: ['-c', String(cpu), process.execPath] } : {});

/** The server of `target`: { port, subscribers(), publish(buf) }. */
async function startTarget(target) {
  const big = 1 << 30;
  if (target === 'c1m') {
    const { listen, createWebSocketHandler } = await import('../dist/index.js');
    const handler = createWebSocketHandler({
      onOpen(ws) {
        ws.subscribe('all');
      },
      pubsub: { maxBufferedBytes: big },
    });
    const server = await listen(handler, { port: 0, host: '127.0.0.1', backend: 'native', maxOutboundBytes: big });
    return { port: server.address.port, subscribers: () => handler.subscriberCount('all'), publish: (buf) => handler.publish('all', buf) };
  }
  if (target === 'uws') {
    const uWS = (await import('uwebsockets')).default;
    let n = 0;
    const app = uWS.App().ws('/*', {
      compression: 0,
      maxBackpressure: big,
      idleTimeout: 0,
      open(ws) {
        ws.subscribe('all');
        n++;
      },
      close() {
        n--;
      },
    });
    const port = await new Promise((resolve, reject) => app.listen('127.0.0.1', 0, (t) => (t ? resolve(uWS.us_socket_local_port(t)) : reject(new Error('uws listen failed')))));
    return { port, subscribers: () => n, publish: (buf) => app.publish('all', buf, true) };
  }
  if (target === 'ws') {
    const { WebSocketServer } = await import('ws');
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise((r) => wss.once('listening', r));
    return {
      port: wss.address().port,
      subscribers: () => wss.clients.size,
      publish: (buf) => {
        for (const c of wss.clients) c.send(buf, { binary: true });
      },
    };
  }
  throw new Error(`unknown target ${target}`);
}

if (opt.role === 'server') {
  const t = await startTarget(opt.target);
  process.on('message', (m) => {
    if (m.cmd === 'subscribers') {
      process.send({ id: m.id, n: t.subscribers() });
    } else if (m.cmd === 'publish') {
      const buf = Buffer.alloc(m.size, 0x61);
      const t0 = now();
      for (let i = 0; i < m.burst; i++) t.publish(buf);
      const t1 = now();
      process.send({ id: m.id, t0, t1 });
    } else if (m.cmd === 'cpu') {
      const u = process.cpuUsage(); // all threads of the server process, microseconds
      process.send({ id: m.id, us: u.user + u.system });
    } else if (m.cmd === 'stop') {
      process.exit(0);
    }
  });
  process.send({ id: 0, port: t.port });
} else if (opt.role === 'clients') {
  const { createReactor, createWebSocketClientHandler } = await import('../dist/index.js');
  const count = Number(opt.count), first = Number(opt.first), srcips = Number(opt.srcips);
  let open = 0, received = 0, target = Infinity, reply = null;
  const client = createWebSocketClientHandler({
    maxPayload: 1 << 20,
    onOpen() {
      open++;
    },
    onMessage() {
      if (++received === target) {
        const t = now();
        reply({ t, received });
      }
    },
    onClose() {
      open--;
    },
  });
  const reactor = createReactor(client, { backend: 'native' });
  for (let i = 0; i < count; i++) {
    client.connect(reactor, `ws://127.0.0.1:${opt.port}/`, { localAddress: `127.0.0.${2 + ((first + i) % srcips)}` });
    if (i % 500 === 499) while (open < i - 1000) await sleep(10);
  }
  while (open < count) await sleep(20);
  process.on('message', (m) => {
    if (m.cmd === 'expect') {
      target = m.total;
      reply = (r) => process.send({ id: m.id, ...r });
      if (received >= target) reply({ t: now(), received });
    } else if (m.cmd === 'stop') {
      process.exit(0);
    }
  });
  process.send({ id: 0, open });
} else {
  const n = Number(opt.subscribers), procs = Number(opt['client-procs']), rounds = Number(opt.rounds), burst = Number(opt.burst);
  const results = [];
  for (const target of opt.targets.split(',')) {
    const server = fork(new URL(import.meta.url), ['--role', 'server', '--target', target], pinned(0));
    const callServer = rpc(server);
    const { port } = await new Promise((r) => server.once('message', r));
    const clients = [];
    for (let p = 0; p < procs; p++) {
      const count = Math.floor(n / procs) + (p < n % procs ? 1 : 0);
      const first = p * Math.floor(n / procs) + Math.min(p, n % procs);
      const child = fork(new URL(import.meta.url), ['--role', 'clients', '--port', String(port), '--count', String(count), '--first', String(first), '--srcips', opt.srcips], pinned(1));
      clients.push({ child, count, call: rpc(child), ready: new Promise((r) => child.once('message', r)) });
    }
    await Promise.all(clients.map((c) => c.ready));
    while ((await callServer({ cmd: 'subscribers' })).n < n) await sleep(100);
    log(`${target}: ${n} subscribers`);
    let expected = 0;
    for (const size of opt.sizes.split(',').map(Number)) {
      const times = [];
      let cpu0 = 0;
      for (let r = 0; r <= rounds; r++) {
        if (r === 1) cpu0 = (await callServer({ cmd: 'cpu' })).us;
        expected += burst;
        const done = Promise.all(clients.map((c) => c.call({ cmd: 'expect', total: expected * c.count })));
        const { t0, t1 } = await callServer({ cmd: 'publish', size, burst });
        const ends = await done;
        const last = Math.max(...ends.map((e) => e.t));
        if (r > 0) times.push({ lastMs: (last - t0) / 1e6, publishCallMs: (t1 - t0) / 1e6 });
      }
      const serverCpuUs = (await callServer({ cmd: 'cpu' })).us - cpu0;
      const lastMs = median(times.map((x) => x.lastMs));
      const r = {
        target,
        size,
        burst,
        subscribers: n,
        rounds,
        timeToLastSubscriberMs: +lastMs.toFixed(2),
        deliveriesPerSec: Math.round((burst * n) / (lastMs / 1000)),
        publishCallMs: +median(times.map((x) => x.publishCallMs)).toFixed(3),
        // The server process's CPU (user + system, every thread) over the measured rounds, per delivery.
        serverCpuNsPerDelivery: Math.round((serverCpuUs * 1000) / (rounds * burst * n)),
        timeToLastMinMaxMs: [+Math.min(...times.map((x) => x.lastMs)).toFixed(2), +Math.max(...times.map((x) => x.lastMs)).toFixed(2)],
      };
      log(JSON.stringify(r));
      results.push(r);
    }
    for (const c of clients) c.child.send({ cmd: 'stop' });
    server.send({ cmd: 'stop' });
    await Promise.all([server, ...clients.map((c) => c.child)].map((p) => new Promise((r) => p.once('exit', r))));
  }
  const ratios = {};
  for (const r of results.filter((x) => x.target === 'c1m')) {
    for (const o of results.filter((x) => x.target !== 'c1m' && x.size === r.size)) {
      ratios[`c1m/${o.target} ${r.size}B`] = +(r.deliveriesPerSec / o.deliveriesPerSec).toFixed(3);
      ratios[`c1m/${o.target} ${r.size}B server CPU per delivery`] = +(r.serverCpuNsPerDelivery / o.serverCpuNsPerDelivery).toFixed(3);
    }
  }
  process.stdout.write(`${JSON.stringify({ bench: 'broadcast-peers', node: process.version, cpus: os.cpus().length, loadavg: os.loadavg().map((x) => +x.toFixed(2)), clientProcs: procs, pinned: opt.pin, results, ratios }, null, 2)}\n`);
}
