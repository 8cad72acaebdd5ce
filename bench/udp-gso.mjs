#!/usr/bin/env node
// What UDP GSO (UDP_SEGMENT) saves a sender: c1m sends runs of equal-size datagrams to one
// destination (a `udpref -m sink` on another CPU) with `gso: true` and `gso: false`, alternating,
// and reports the sender's CPU per datagram (process.cpuUsage: user + system). One JSON document on
// stdout.
//
//   taskset -c 0 node bench/udp-gso.mjs [--size 1400] [--run 64] [--seconds 3] [--reps 3] [--out FILE]
//
// Each tick sends `--run` datagrams (one batch, so consecutive sends to one peer form GSO runs of
// up to 64 segments / 65,000 bytes), then yields to the event loop (setImmediate). The sink is
// udpref from /work/shared/bench (C1M_REF_SRC), pinned to CPU 1; its rx count is checked against
// what was sent.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createReactor } from '../dist/index.js';
import { emit, log, machineInfo, median, round, sleep } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    size: { type: 'string', default: '1400' },
    run: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '3' },
    reps: { type: 'string', default: '3' },
    port: { type: 'string', default: '9188' },
    out: { type: 'string' },
  },
  strict: true,
});
const size = Number(opt.size), run = Number(opt.run), seconds = Number(opt.seconds), reps = Number(opt.reps), port = Number(opt.port);
const UDPREF = path.join(process.env.C1M_REF_SRC ?? '/work/shared/bench', 'udpref');

async function trial(gso) {
  const sink = spawn('taskset', ['-c', '1', UDPREF, '-p', String(port), '-m', 'sink', '-b', '64', '-q'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  sink.stdout.on('data', (d) => (out += d));
  await sleep(300);
  const reactor = createReactor({}, { backend: 'native' });
  const sock = await reactor.udp({ host: '127.0.0.1', sendBufferSize: 4 << 20, gso }, {});
  const to = { address: '127.0.0.1', port };
  const data = Buffer.alloc(size, 0x61);
  const cpu0 = process.cpuUsage();
  const end = Date.now() + seconds * 1000;
  let sent = 0;
  while (Date.now() < end) {
    for (let i = 0; i < run; i++) sock.send(to, data);
    sent += run;
    await new Promise((r) => setImmediate(r));
  }
  await sleep(50);
  const cpu = process.cpuUsage(cpu0);
  const st = sock.stats;
  await reactor.close(1000);
  const exited = new Promise((r) => sink.once('exit', r));
  sink.kill('SIGTERM');
  await exited;
  const ref = JSON.parse(out.trim().split('\n').pop());
  const us = (cpu.user + cpu.system) / st.sent;
  return { gso, staged: sent, sent: st.sent, gso_sent: st.gsoSent, drops: st.drops, send_errors: st.sendErrors, sink_rx: ref.rx, sink_kernel_drops: ref.kernel_drops, sender_cpu_us_per_dgram: round(us, 3), sent_per_s: Math.round(st.sent / seconds) };
}

const runs = [];
for (let rep = 0; rep < reps; rep++) {
  for (const gso of rep % 2 ? [false, true] : [true, false]) {
    const r = await trial(gso);
    log(`[gso] ${gso ? 'on ' : 'off'} ${r.sender_cpu_us_per_dgram} us/datagram, ${r.sent_per_s}/s, sink rx ${r.sink_rx}`);
    runs.push({ rep, ...r });
  }
}
const med = (g) => median(runs.filter((r) => r.gso === g).map((r) => r.sender_cpu_us_per_dgram));
emit({ bench: 'udp-gso', date: new Date().toISOString(), conditions: { size, run, seconds, reps, sender_cpu: 'as started (taskset -c 0)', sink_cpu: 1 }, machine: machineInfo(), summary: { cpu_us_per_dgram_gso: med(true), cpu_us_per_dgram_no_gso: med(false), ratio: round(med(true) / med(false), 3) }, runs }, opt.out);
