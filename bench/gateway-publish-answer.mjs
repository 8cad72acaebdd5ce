#!/usr/bin/env node
// How long an HTTP publish to a gateway with --nats takes to be answered while the publishing
// process has many local subscribers of the topic (docs/gateway.md, "Exactly once"). One JSON
// document on stdout, progress on stderr.
//
//   npm run build && node bench/gateway-publish-answer.mjs [--subscribers 19000] [--count 30]
//        [--history N] [--builds DIR[,DIR...]] [--rounds 2] [--out FILE]
//
// Model: a private nats-server (with -js when --history N > 0: then the gateway's history is a
// JetStream stream and a publish is a JetStream publish); one gateway process
// (`c1m serve gateway --nats`, heartbeat off) from each build in --builds (repo roots with a
// built dist/; default this repo), in turn, --rounds times (so builds compared are measured in
// the same run, alternating); a subscriber process (`--role subscribers`, raw WebSocket
// upgrades subscribed to the topic at connect) with --subscribers connections to it; then
// --count publishes, one at a time over one keep-alive connection, 300 ms apart (so each
// publish's local deliveries are over before the next), each timed from request to answer
// (process.hrtime). Reported per build and round: p50/p90/max of the answer time, the last
// answer's body, and the bytes the subscribers received (every delivery arrived: the same for
// every build).
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { REPO_DIR, emit, freePort, log, machineInfo, sleep, startNatsServer } from './lib.mjs';

const HOST = '127.0.0.1';
const TOPIC = 'answer';

const { values: opt } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    port: { type: 'string' },
    subscribers: { type: 'string', default: '19000' },
    count: { type: 'string', default: '30' },
    history: { type: 'string', default: '0' },
    builds: { type: 'string', default: REPO_DIR },
    rounds: { type: 'string', default: '2' },
    out: { type: 'string' },
  },
});

if (opt.role === 'subscribers') await subscriberRole(Number(opt.port), Number(opt.subscribers));
else await main();

/** Hold `n` WebSockets subscribed to the topic; say `ready` once every one has its ack; report bytes on `bytes`. */
async function subscriberRole(port, n) {
  let acked = 0, bytes = 0;
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, HOST);
    let head = '';
    s.on('data', (d) => {
      bytes += d.length;
      if (head !== null) {
        head += d.toString('latin1');
        if (head.includes('"ack"')) {
          head = null;
          acked++;
        }
      }
    });
    s.on('error', (err) => log(`subscriber: ${err.message}`));
    s.write(`GET /ws?topics=${TOPIC} HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    if (i % 200 === 199) await sleep(20); // under the listen backlog
  }
  while (acked < n) await sleep(50);
  process.send({ ready: true });
  process.on('message', (m) => {
    if (m === 'bytes') process.send({ bytes });
    else if (m === 'exit') process.exit(0);
  });
}

async function main() {
  const subscribers = Number(opt.subscribers), count = Number(opt.count), history = Number(opt.history), rounds = Number(opt.rounds);
  const builds = opt.builds.split(',').map((b) => path.resolve(b));
  for (const b of builds) if (!fs.existsSync(path.join(b, 'dist', 'cli', 'run.js'))) throw new Error(`${b}: no dist/cli/run.js (npm run build there)`);
  const natsPort = await freePort(HOST);
  const jsDir = history > 0 ? fs.mkdtempSync(path.join(os.tmpdir(), 'c1m-answer-js-')) : null;
  const nats = await startNatsServer(HOST, natsPort, jsDir ? ['-js', '-sd', jsDir] : []);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = JSON.stringify({ x: 'y'.repeat(50) });
  const publish = (port) => new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: HOST, port, method: 'POST', path: `/publish/${TOPIC}`, agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d)).on('end', () => resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
  const runs = [];
  const load0 = os.loadavg();
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const build of builds) {
        const port = await freePort(HOST);
        const args = [path.join(build, 'dist', 'cli', 'run.js'), 'serve', 'gateway', '--port', String(port), '--host', HOST,
          '--nats', `nats://${HOST}:${natsPort}`, '--no-auth', '--ping-interval', '0', ...(history > 0 ? ['--history', String(history)] : [])];
        const gw = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        gw.stdout.on('data', (d) => (out += d));
        while (!/listening/.test(out)) {
          if (gw.exitCode !== null) throw new Error(`the gateway of ${build} exited`);
          await sleep(50);
        }
        const subs = fork(fileURLToPath(import.meta.url), ['--role', 'subscribers', '--port', String(port), '--subscribers', String(subscribers)]);
        await new Promise((r) => subs.once('message', r));
        log(`[answer] ${build} round ${round}: ${subscribers} subscribed`);
        await sleep(500);
        const times = [];
        let last = '';
        for (let i = 0; i < count; i++) {
          const r = await publish(port);
          if (r.status !== 200) throw new Error(`publish: ${r.status} ${r.text}`);
          times.push(r.ms);
          last = r.text;
          await sleep(300);
        }
        await sleep(500);
        subs.send('bytes');
        const { bytes } = await new Promise((r) => subs.once('message', r));
        subs.send('exit');
        gw.kill('SIGTERM');
        await new Promise((r) => gw.once('exit', r));
        times.sort((a, b) => a - b);
        const q = (p) => Math.round(times[Math.min(times.length - 1, Math.floor(p * times.length))] * 100) / 100;
        const run = { build, round, p50_ms: q(0.5), p90_ms: q(0.9), max_ms: q(1), last_answer: JSON.parse(last), subscriber_bytes: bytes };
        log(`[answer] ${JSON.stringify(run)}`);
        runs.push(run);
      }
    }
  } finally {
    nats.kill();
    if (jsDir) fs.rmSync(jsDir, { recursive: true, force: true });
  }
  emit({
    bench: 'gateway-publish-answer', machine: machineInfo(), loadavg_start: load0, loadavg_end: os.loadavg(),
    subscribers, count, history, runs,
  }, opt.out);
  process.exit(0);
}
