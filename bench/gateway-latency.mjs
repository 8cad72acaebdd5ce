#!/usr/bin/env node
// Publish-to-delivery latency of the gateway (`c1m serve gateway`): in one process without a
// broker, against the same publishes going through NATS to one and to two gateway processes.
// One JSON document on stdout, progress on stderr.
//
//   npm run build && node bench/gateway-latency.mjs [--modes inproc,nats-1,nats-2,nats-2-direct,inproc-ws,nats-2-ws]
//        [--subscribers 200] [--count 2000] [--rate 500] [--size 64] [--history N] [--binary] [--out FILE]
//
// Modes:
//   inproc         1 gateway process, no broker; publishes by HTTP (`POST /publish/lat`)
//   nats-1         1 gateway process with --nats; HTTP publish -> NATS -> back to the process
//   nats-2         2 gateway processes (--processes 2) with --nats; HTTP publish; the
//                  subscribers are spread over both processes by SO_REUSEPORT
//   nats-2-direct  as nats-2, published straight to NATS (subject c1m.topic.lat) by a backend
//   inproc-ws      as inproc, published by a client over its WebSocket (`{"op":"pub"}`, the
//                  gateway with --client-publish), each pub's ack awaited before the next
//   nats-2-ws      as nats-2, published over a client's WebSocket as in inproc-ws (the
//                  publisher's connection lands on either process)
//
// --history N (N > 0): the NATS modes run the gateways with --history N, so the history and
// the numbering live in NATS JetStream (nats-server -js, memory stream): each process's
// interest is a JetStream consumer and an HTTP publish is a JetStream publish (ack awaited).
//
// --binary: every message is binary data (docs/gateway.md, "Binary messages"): published as
// `application/octet-stream` (HTTP, the NATS header) or as a binary `pub`, delivered as a
// binary `msg`; the data is n (i32) and the send time (u64), big-endian, then padding to --size.
//
// Model: a subscriber process (`--role subscribers`, the `ws` package) holds --subscribers
// WebSocket connections subscribed to the topic `lat`. This process publishes --count messages
// at --rate per second (HTTP keep-alive, one request at a time, or the `nats` client); each
// message carries its send time on CLOCK_MONOTONIC (process.hrtime, the same clock in every
// process), and each subscriber's delivery latency is receive time minus send time. So a
// latency includes the publisher's HTTP request (or NATS publish), the broker hop when there
// is one, the gateway's fan-out and the subscriber's receive. Reported per mode: delivered of
// expected, p50/p90/p99/max in microseconds over all deliveries, and the first delivery's
// latency per message (the fastest subscriber) at p50/p99.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { REPO_DIR, emit, freePort, log, machineInfo, rpc, sleep } from './lib.mjs';

// The CLI's server spawner and private nats-server (lib.mjs has checked that dist/ is built).
const { spawnServer } = await import(pathToFileURL(path.join(REPO_DIR, 'dist', 'cli', 'bench-proc.js')).href);
const { startNats } = await import(pathToFileURL(path.join(REPO_DIR, 'dist', 'cli', 'bench-million-ws.js')).href);

const { values: opt } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    modes: { type: 'string', default: 'inproc,nats-1,nats-2,nats-2-direct,inproc-ws,nats-2-ws' },
    subscribers: { type: 'string', default: '200' },
    count: { type: 'string', default: '2000' },
    rate: { type: 'string', default: '500' },
    size: { type: 'string', default: '64' },
    history: { type: 'string', default: '0' },
    binary: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});

const HOST = '127.0.0.1';
const TOPIC = 'lat';

if (opt.role === 'subscribers') await subscriberRole();
else await main();

// ---------------------------------------------------------------- subscriber process

async function subscriberRole() {
  const { default: WebSocket } = await import('ws');
  let sockets = [];
  let lat = [];
  let first = new Map(); // message number -> earliest latency
  let received = 0;
  const onMsg = (data, isBinary) => {
    const now = process.hrtime.bigint();
    let d;
    if (isBinary) {
      if (data[0] !== 0x01) return;
      const at = 10 + data[1]; // 0x01, topic length, topic, seq (8 bytes), then the data
      d = { n: data.readInt32BE(at), t: data.readBigUInt64BE(at + 4) };
    } else {
      const m = JSON.parse(data.toString());
      if (m.op !== 'msg') return;
      d = m.data;
    }
    const us = Number(now - BigInt(d.t)) / 1000;
    lat.push(us);
    received++;
    const f = first.get(d.n);
    if (f === undefined || us < f) first.set(d.n, us);
  };
  process.on('message', async (msg) => {
    if (msg.op === 'open') {
      const subscribed = [];
      for (let i = 0; i < msg.n; i++) {
        const ws = new WebSocket(`ws://${HOST}:${msg.port}/ws?topics=${TOPIC}`);
        ws.on('error', () => {});
        subscribed.push(new Promise((resolve, reject) => {
          ws.on('message', (data) => {
            const m = JSON.parse(data.toString());
            if (m.op === 'ack') resolve();
            else if (m.op === 'error') reject(new Error(JSON.stringify(m)));
          });
          ws.once('close', () => reject(new Error('closed before the ack')));
        }));
        sockets.push(ws);
        if (i % 50 === 49) await sleep(5);
      }
      await Promise.all(subscribed);
      for (const ws of sockets) {
        ws.removeAllListeners('message');
        ws.on('message', onMsg);
      }
      process.send({ id: msg.id, ok: true });
    } else if (msg.op === 'wait') {
      const deadline = Date.now() + msg.timeoutMs;
      while (received < msg.expected && Date.now() < deadline) await sleep(20);
      const firsts = [...first.values()];
      process.send({ id: msg.id, received, lat: pct(lat), first: pct(firsts) });
      lat = [];
      first = new Map();
      received = 0;
    } else if (msg.op === 'close') {
      for (const ws of sockets) ws.terminate();
      sockets = [];
      process.send({ id: msg.id, ok: true });
    }
  });
  process.send({ ready: true });
}

function pct(xs) {
  if (xs.length === 0) return null;
  const v = Float64Array.from(xs).sort();
  const at = (p) => Math.round(v[Math.min(v.length - 1, Math.floor(p * v.length))]);
  return { n: v.length, p50_us: at(0.5), p90_us: at(0.9), p99_us: at(0.99), max_us: Math.round(v[v.length - 1]) };
}

// ---------------------------------------------------------------- main

async function main() {
  const modes = opt.modes.split(',');
  const known = ['inproc', 'nats-1', 'nats-2', 'nats-2-direct', 'inproc-ws', 'nats-2-ws'];
  const brokered = (m) => m.startsWith('nats');
  for (const m of modes) if (!known.includes(m)) usage(`unknown mode ${m}`);
  const subscribers = positive('subscribers');
  const count = positive('count');
  const rate = positive('rate');
  const size = positive('size');
  const history = Number(opt.history);
  if (!Number.isInteger(history) || history < 0) usage('--history must be a non-negative integer');
  // Forked children and spawned servers (the CLI's spawnServer: own process groups).
  const children = [];
  const servers = [];
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const sv of servers) sv.kill();
  };
  process.on('exit', killAll);
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { killAll(); process.exit(130); });

  const results = {};
  try {
    let nats;
    let natsUrl;
    if (modes.some(brokered)) {
      // The CLI's own (c1m bench million --ws): a private nats-server on a free loopback port.
      if (history > 0) {
        // JetStream on, its store in a fresh temporary directory (the stream is memory).
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'c1m-bench-js-'));
        process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
        const port = await freePort(HOST);
        nats = await spawnServer(`nats-server -a ${HOST} -p ${port} -js -sd ${dir}`, process.stderr, 'nats-server');
        natsUrl = `nats://${HOST}:${port}`;
      } else {
        ({ server: nats, url: natsUrl } = await startNats(process.stderr));
      }
      servers.push(nats);
    }
    const sub = fork(new URL(import.meta.url).pathname, ['--role', 'subscribers'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(sub);
    await new Promise((resolve) => sub.once('message', resolve));
    const ask = rpc(sub);
    for (const mode of modes) {
      log(`[bench] ${mode}: ${subscribers} subscribers, ${count} publishes at ${rate}/s, ${size} B`);
      const port = await freePort(HOST);
      const args = ['serve', 'gateway', '--host', HOST, '--port', String(port), '--no-auth'];
      if (brokered(mode)) args.push('--nats', natsUrl);
      if (brokered(mode) && history > 0) args.push('--history', String(history));
      if (mode.startsWith('nats-2')) args.push('--processes', '2');
      if (mode.endsWith('-ws')) args.push('--client-publish', '--client-publish-rate', '0'); // the bench's rate, not the default limit
      const gw = await spawnServer([process.execPath, path.join(REPO_DIR, 'bin', 'c1m.js'), ...args].join(' '), process.stderr, 'gateway');
      servers.push(gw);
      await ask({ op: 'open', port, n: subscribers });
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      let nc;
      let natsHeaders;
      if (mode === 'nats-2-direct') {
        const nats = await import('nats');
        nc = await nats.connect({ servers: natsUrl });
        natsHeaders = nats.headers();
        natsHeaders.set('Content-Type', opt.binary ? 'application/octet-stream' : 'application/json');
      }
      const pub = mode.endsWith('-ws') ? await wsPublisher(port) : null;
      const pad = 'x'.repeat(Math.max(0, size - 40));
      const bin = Buffer.alloc(Math.max(12, size));
      const publishOne = async (n) => {
        let body;
        if (opt.binary) {
          bin.writeInt32BE(n, 0);
          bin.writeBigUInt64BE(process.hrtime.bigint(), 4);
          body = bin;
        } else {
          body = `{"n":${n},"t":"${process.hrtime.bigint()}","p":"${pad}"}`;
        }
        if (nc) nc.publish(`c1m.topic.${TOPIC}`, body, { headers: natsHeaders });
        else if (pub) await pub.publish(body);
        else await post(agent, port, body);
      };
      // Warm-up: 100 publishes, not counted.
      for (let n = 0; n < 100; n++) await publishOne(-1 - n);
      if (nc) await nc.flush();
      await ask({ op: 'wait', expected: 100 * subscribers, timeoutMs: 10_000 });
      const t0 = performance.now();
      const gap = 1000 / rate;
      for (let n = 0; n < count; n++) {
        const due = t0 + n * gap;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        await publishOne(n);
      }
      if (nc) await nc.flush();
      const r = await ask({ op: 'wait', expected: count * subscribers, timeoutMs: 30_000 });
      const elapsed = (performance.now() - t0) / 1000;
      results[mode] = {
        processes: mode.startsWith('nats-2') ? 2 : 1,
        broker: brokered(mode),
        jetstream_history: brokered(mode) && history > 0 ? history : 0,
        data: opt.binary ? 'binary' : 'json',
        publish_via: mode === 'nats-2-direct' ? 'nats' : mode.endsWith('-ws') ? 'websocket' : 'http',
        expected: count * subscribers,
        delivered: r.received,
        publishes_per_s: Math.round(count / elapsed),
        latency: r.lat,
        first_delivery: r.first,
      };
      log(`[bench] ${mode}: delivered ${r.received}/${count * subscribers}, p50 ${r.lat?.p50_us} us, p99 ${r.lat?.p99_us} us, max ${r.lat?.max_us} us`);
      await ask({ op: 'close' });
      if (nc) await nc.close();
      pub?.close();
      agent.destroy();
      await gw.stop();
      await sleep(200);
    }
    sub.kill();
    await nats?.stop();
  } finally {
    killAll();
  }
  emit({
    bench: 'gateway-latency',
    date: new Date().toISOString(),
    machine: machineInfo(),
    load: os.loadavg(),
    params: { subscribers, count, rate, size, history, binary: opt.binary },
    results,
  }, opt.out);
}

function post(agent, port, body) {
  return new Promise((resolve, reject) => {
    const type = typeof body === 'string' ? 'application/json' : 'application/octet-stream';
    const req = http.request({ host: HOST, port, method: 'POST', path: `/publish/${TOPIC}`, agent, headers: { 'content-type': type, 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`publish: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A gateway client that publishes with `pub` messages, one at a time (each ack awaited). */
async function wsPublisher(port) {
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(`ws://${HOST}:${port}/ws`);
  let id = 0;
  let waiting = null;
  await new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.op === 'welcome') resolve();
      else if (waiting !== null && m.id === waiting.id) {
        const w = waiting;
        waiting = null;
        if (m.op === 'ack') w.resolve();
        else w.reject(new Error(`pub refused: ${JSON.stringify(m)}`));
      }
    });
  });
  return {
    publish(body) {
      return new Promise((resolve, reject) => {
        waiting = { id: ++id, resolve, reject };
        if (typeof body === 'string') {
          ws.send(`{"op":"pub","id":${id},"topic":"${TOPIC}","data":${body}}`);
        } else {
          // A binary pub: 0x02, id (u32), topic length, topic, data.
          const head = Buffer.alloc(6 + TOPIC.length);
          head[0] = 0x02;
          head.writeUInt32BE(id, 1);
          head[5] = TOPIC.length;
          head.write(TOPIC, 6, 'latin1');
          ws.send(Buffer.concat([head, body]));
        }
      });
    },
    close: () => ws.terminate(),
  };
}

function positive(name) {
  const n = Number(opt[name]);
  if (!Number.isInteger(n) || n < 1) usage(`--${name} must be a positive integer`);
  return n;
}

function usage(msg) {
  log(`gateway-latency: ${msg}`);
  process.exit(2);
}
