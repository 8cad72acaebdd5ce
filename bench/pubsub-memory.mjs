#!/usr/bin/env node
// Memory per topic subscription on the c1m WebSocket server: N WebSockets held open by client
// processes on the c1m client engine, then each subscribes to K topics; the server's JS heap,
// array buffers (the TopicTable's typed arrays live there) and VmRSS are read after three full
// GCs before and after, and the delta is divided by N x K. A warm-up round (subscribe, then
// unsubscribe all) runs before the baseline, so compiled code is not counted as data. Then every
// WebSocket unsubscribes and the heap is read again (no leak: subscriptions and topics back to 0). Each K runs in a fresh
// server process. One JSON document on stdout, progress on stderr.
//
//   npm run build && node bench/pubsub-memory.mjs [--connections 19000] [--topics 1,4]
//        [--spread 0] [--client-procs 2] [--srcips 4] [--backend native]
//
// --spread 0: every WebSocket subscribes to the same K topics (t0..tK-1: K topics of N
// subscribers, the broadcast case); --spread M: WebSocket i subscribes to K of M topics
// ((i*K + j) mod M), so topics are small.
//
//   node --expose-gc bench/pubsub-memory.mjs --role synthetic --connections 1000000 --topics 4
// measures the TopicTable alone (no sockets, ids made up) where RSS is large enough to read.
//
// Processes: this script starts the server (a child, `--role server`) and --client-procs
// clients (`--role clients`, N / procs connections each: one process may hold 20,000 fds).
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { log, rpc, sleep } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    connections: { type: 'string', default: '19000' },
    topics: { type: 'string', default: '1,4' },
    spread: { type: 'string', default: '0' },
    'client-procs': { type: 'string', default: '2' },
    srcips: { type: 'string', default: '4' },
    backend: { type: 'string', default: 'native' },
    port: { type: 'string', default: '0' },
    count: { type: 'string', default: '0' },
    first: { type: 'string', default: '0' },
  },
  strict: true,
});

const c1m = () => import('../dist/index.js');

function rssKb() {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(m[1]);
}

if (opt.role === 'server') {
  const { listen, createWebSocketHandler } = await c1m();
  const handler = createWebSocketHandler({
    onMessage(ws, data) {
      const text = data.toString();
      if (text.startsWith('sub:')) {
        const [, k, spread, index] = text.split(':').map(Number);
        for (let j = 0; j < k; j++) ws.subscribe(spread === 0 ? `t${j}` : `t${(index * k + j) % spread}`);
      } else if (text === 'unsub') {
        for (const t of ws.getTopics()) ws.unsubscribe(t);
      }
    },
  });
  const server = await listen(handler, { port: 0, host: '127.0.0.1', backend: opt.backend });
  process.on('message', (m) => {
    if (m.cmd === 'mem') {
      for (let i = 0; i < 3; i++) globalThis.gc();
      const u = process.memoryUsage();
      const s = handler.pubsubStats;
      process.send({ id: m.id, heapUsed: u.heapUsed, arrayBuffers: u.arrayBuffers, external: u.external, rssKb: rssKb(), clients: handler.clients, subscriptions: s.subscriptions, topics: s.topics });
    } else if (m.cmd === 'stop') {
      server.close(1000).then(() => process.exit(0));
    }
  });
  process.send({ id: 0, port: server.address.port });
} else if (opt.role === 'clients') {
  const { createReactor, createWebSocketClientHandler } = await c1m();
  const count = Number(opt.count), first = Number(opt.first), srcips = Number(opt.srcips);
  let open = 0;
  const client = createWebSocketClientHandler({
    onOpen() {
      open++;
    },
    onClose() {
      open--;
    },
  });
  const reactor = createReactor(client, { backend: 'native' });
  const sockets = [];
  for (let i = 0; i < count; i++) {
    sockets.push(client.connect(reactor, `ws://127.0.0.1:${opt.port}/`, { localAddress: `127.0.0.${2 + ((first + i) % srcips)}` }));
    if (i % 500 === 499) while (open < i - 1000) await sleep(10);
  }
  while (open < count) await sleep(20);
  process.on('message', (m) => {
    if (m.cmd === 'send') {
      sockets.forEach((ws, i) => ws.send(m.text.replace('{i}', String(first + i))));
      process.send({ id: m.id });
    } else if (m.cmd === 'stop') {
      reactor.close(1000).then(() => process.exit(0));
    }
  });
  process.send({ id: 0, open });
} else if (opt.role === 'synthetic') {
  // The TopicTable alone, without sockets, at a size where RSS is not noise: N ids (fds 3..,
  // generation 1) x K shared topics, in this fresh process.
  const { TopicTable } = await c1m();
  const n = Number(opt.connections), k = Number(opt.topics);
  const read = () => {
    for (let i = 0; i < 3; i++) globalThis.gc();
    const u = process.memoryUsage();
    return { data: u.heapUsed + u.arrayBuffers, rss: rssKb() * 1024 };
  };
  const table = new TopicTable({ maxTopicsPerConnection: 64 });
  const fill = () => {
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) table.subscribe(2 ** 32 + 3 + i, `t${j}`);
  };
  fill();
  for (let i = 0; i < n; i++) table.removeAll(2 ** 32 + 3 + i);
  const base = read();
  fill();
  const full = read();
  const pairs = n * k;
  process.stdout.write(`${JSON.stringify({ bench: 'pubsub-memory', mode: 'synthetic', ids: n, topicsPerId: k, subscriptions: table.subscriptions, bytesPerSubscription: { heapPlusArrayBuffers: +((full.data - base.data) / pairs).toFixed(2), rss: +((full.rss - base.rss) / pairs).toFixed(2) } })}\n`);
} else {
  const n = Number(opt.connections), procs = Number(opt['client-procs']), spread = Number(opt.spread);
  const results = [];
  for (const k of opt.topics.split(',').map(Number)) {
    const server = fork(new URL(import.meta.url), ['--role', 'server', '--backend', opt.backend], { execArgv: ['--expose-gc'] });
    const callServer = rpc(server);
    const { port } = await new Promise((r) => server.once('message', r));
    const clients = [];
    for (let p = 0; p < procs; p++) {
      const count = Math.floor(n / procs) + (p < n % procs ? 1 : 0);
      const first = p * Math.floor(n / procs) + Math.min(p, n % procs);
      const child = fork(new URL(import.meta.url), ['--role', 'clients', '--port', String(port), '--count', String(count), '--first', String(first), '--srcips', opt.srcips]);
      clients.push({ child, call: rpc(child), ready: new Promise((r) => child.once('message', r)) });
    }
    await Promise.all(clients.map((c) => c.ready));
    const subscribeAll = async (k) => {
      await Promise.all(clients.map((c) => c.call({ cmd: 'send', text: `sub:${k}:${spread}:{i}` })));
      let m = await callServer({ cmd: 'mem' });
      while (m.subscriptions < n * k) {
        await sleep(200);
        m = await callServer({ cmd: 'mem' });
      }
      return m;
    };
    const unsubscribeAll = async () => {
      await Promise.all(clients.map((c) => c.call({ cmd: 'send', text: 'unsub' })));
      let m = await callServer({ cmd: 'mem' });
      while (m.subscriptions > 0) {
        await sleep(200);
        m = await callServer({ cmd: 'mem' });
      }
      return m;
    };
    let m = await callServer({ cmd: 'mem' });
    while (m.clients < n) {
      await sleep(200);
      m = await callServer({ cmd: 'mem' });
    }
    // A warm-up round first (subscribe, then unsubscribe everything): the code it runs is
    // compiled and its feedback allocated before the baseline, so the delta is the data.
    await subscribeAll(k);
    await unsubscribeAll();
    await sleep(1000);
    const base = await callServer({ cmd: 'mem' });
    log(`k=${k}: ${base.clients} WebSockets, base heap ${base.heapUsed} B, arrayBuffers ${base.arrayBuffers} B, rss ${base.rssKb} kB`);
    await subscribeAll(k);
    await sleep(1000);
    const sub = await callServer({ cmd: 'mem' });
    const un = await unsubscribeAll();
    const pairs = n * k;
    const heapDelta = sub.heapUsed - base.heapUsed, abDelta = sub.arrayBuffers - base.arrayBuffers, rssDelta = (sub.rssKb - base.rssKb) * 1024;
    const r = {
      connections: n,
      topicsPerConnection: k,
      topics: sub.topics,
      subscriptions: sub.subscriptions,
      heapDeltaBytes: heapDelta,
      arrayBuffersDeltaBytes: abDelta,
      bytesPerSubscription: { heapPlusArrayBuffers: +((heapDelta + abDelta) / pairs).toFixed(2), rss: +(rssDelta / pairs).toFixed(2) },
      afterUnsubscribe: { subscriptions: un.subscriptions, topics: un.topics, heapPlusArrayBuffersVsBase: un.heapUsed + un.arrayBuffers - base.heapUsed - base.arrayBuffers },
    };
    log(JSON.stringify(r));
    results.push(r);
    for (const c of clients) c.child.send({ cmd: 'stop' });
    server.send({ cmd: 'stop' });
    await Promise.all([server, ...clients.map((c) => c.child)].map((p) => new Promise((r) => p.once('exit', r))));
  }
  process.stdout.write(`${JSON.stringify({ bench: 'pubsub-memory', backend: opt.backend, spread, node: process.version, results }, null, 2)}\n`);
}
