#!/usr/bin/env node
// Notifying many users, each on a topic of its own (`user.<i>`): one `POST /publish/<topic>`
// per user against `POST /broadcast` with up to 1,000 topics a request (docs/gateway.md). One
// JSON document on stdout, progress on stderr.
//
//   npm run build && node bench/gateway-notify.mjs [--users 10000] [--concurrency 16]
//        [--rounds 2] [--nats] [--out FILE]
//
// Model: one gateway process (`c1m serve gateway --no-auth`, heartbeat off; with --nats a
// private nats-server and `--nats`); a subscriber process (`--role subscribers`) holding
// --users raw WebSockets, the i-th subscribed at connect to `user.<i>`. Then, alternating the
// two ways --rounds times: every user gets one message, sent either as --users publish
// requests or as ceil(users / 1000) broadcast requests, over --concurrency keep-alive
// connections (Node's http.Agent), all queued at once. Timed from the first request to the
// last subscriber's delivery (wall clock, one machine); the gateway's CPU (/proc) and this
// publishing process's CPU over that window. Every user must get exactly its message.
import { fork } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { emit, freePort, log, machineInfo, round, sleep, startGatewayCli, startNatsServer, treeCpuSeconds, wsUpgradeRequest } from './lib.mjs';

const HOST = '127.0.0.1';
const BATCH = 1000;
/** Wall-clock ms with sub-ms precision (comparable across processes of one machine). */
function wallMs() {
  return performance.timeOrigin + performance.now();
}

const { values: opt } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    port: { type: 'string' },
    users: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '2' },
    nats: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});

if (opt.role === 'subscribers') await subscriberRole(Number(opt.port), Number(opt.users));
else await main();

/**
 * Hold `n` WebSockets, the i-th on `user.<i>`; `ready` once every one has its ack. On `expect`
 * (a round number), report `{ done, at }` once every one has had one more message, with the
 * wall-clock time of the last; a message for the wrong user is an error.
 */
async function subscriberRole(port, n) {
  const got = new Int32Array(n);
  let acked = 0, round = 0, complete = 0, lastAt = 0, wrong = 0;
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, HOST);
    let text = '', subscribed = false;
    s.setEncoding('latin1');
    s.on('data', (d) => {
      text += d;
      if (!subscribed) {
        const k = text.indexOf('"op":"ack"');
        if (k === -1) return;
        subscribed = true;
        acked++;
        text = text.slice(k + 10);
      }
      let k;
      while ((k = text.indexOf('"op":"msg"')) !== -1) {
        const end = text.indexOf('}', k); // the topic comes before the data's own braces
        if (end === -1) break;
        if (!text.slice(k, end).includes(`"topic":"user.${i}"`)) wrong++;
        text = text.slice(end + 1);
        if (++got[i] === round) {
          complete++;
          lastAt = wallMs();
        }
      }
    });
    s.on('error', (err) => log(`subscriber ${i}: ${err.message}`));
    s.write(wsUpgradeRequest(HOST, `/ws?topics=user.${i}`));
    if (i % 200 === 199) await sleep(20); // under the listen backlog
  }
  while (acked < n) await sleep(20);
  process.send({ ready: true });
  process.on('message', async (m) => {
    if (m === 'exit') process.exit(0);
    round = m.expect;
    complete = 0;
    process.send({ armed: true });
    while (complete < n) await sleep(2);
    process.send({ done: true, at: lastAt, wrong });
  });
}


async function main() {
  const users = Number(opt.users), concurrency = Number(opt.concurrency), rounds = Number(opt.rounds);
  let nats = null;
  const args = ['--no-auth', '--ping-interval', '0'];
  if (opt.nats) {
    const natsPort = await freePort(HOST);
    nats = await startNatsServer(HOST, natsPort);
    args.push('--nats', `nats://${HOST}:${natsPort}`);
  }
  const port = await freePort(HOST);
  const gw = await startGatewayCli(HOST, port, args);
  const subs = fork(fileURLToPath(import.meta.url), ['--role', 'subscribers', '--port', String(port), '--users', String(users)]);
  const next = () => new Promise((r) => subs.once('message', r));
  await next();
  log(`[notify] ${users} users subscribed${opt.nats ? ' (NATS)' : ''}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const post = (p, body) => new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, method: 'POST', path: p, agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d)).on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${p}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  const data = { title: 'You have a new message', id: 0 };
  const runs = [];
  const load0 = os.loadavg();
  let expect = 0;
  try {
    for (let r = 1; r <= rounds; r++) {
      for (const way of ['publish', 'broadcast']) {
        expect++;
        subs.send({ expect });
        await next();
        await sleep(300);
        data.id = expect;
        const gw0 = treeCpuSeconds(gw.pid) * 1000, me0 = process.cpuUsage(), t0 = wallMs();
        let requests = 0;
        if (way === 'publish') {
          const body = JSON.stringify(data);
          const all = [];
          for (let i = 0; i < users; i++) all.push(post(`/publish/user.${i}`, body));
          requests = all.length;
          await Promise.all(all);
        } else {
          const all = [];
          for (let i = 0; i < users; i += BATCH) {
            const topics = Array.from({ length: Math.min(BATCH, users - i) }, (_, k) => `user.${i + k}`);
            all.push(post('/broadcast', JSON.stringify({ topics, data })));
          }
          requests = all.length;
          await Promise.all(all);
        }
        const answeredMs = wallMs() - t0;
        const done = await next();
        const me = process.cpuUsage(me0);
        const run = {
          way, round: r, users, requests, answered_ms: round(answeredMs, 1), last_delivery_ms: round(done.at - t0, 1),
          gateway_cpu_ms: round(treeCpuSeconds(gw.pid) * 1000 - gw0, 0), publisher_cpu_ms: round((me.user + me.system) / 1000, 0), wrong_user: done.wrong,
        };
        if (done.wrong > 0) throw new Error(`${done.wrong} messages reached the wrong user`);
        log(`[notify] ${JSON.stringify(run)}`);
        runs.push(run);
      }
    }
  } finally {
    subs.send('exit');
    gw.kill('SIGTERM');
    nats?.kill();
  }
  const by = (w) => runs.filter((x) => x.way === w);
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const ratioOf = (k) => round(med(by('publish').map((x) => x[k])) / med(by('broadcast').map((x) => x[k])), 2);
  emit({
    bench: 'gateway-notify', machine: machineInfo(), loadavg_start: load0, loadavg_end: os.loadavg(),
    users, concurrency, nats: opt.nats, batch: BATCH, runs,
    publish_over_broadcast: { last_delivery: ratioOf('last_delivery_ms'), gateway_cpu: ratioOf('gateway_cpu_ms'), publisher_cpu: ratioOf('publisher_cpu_ms') },
  }, opt.out);
  process.exit(0);
}
